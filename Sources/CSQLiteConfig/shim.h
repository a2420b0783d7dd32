#include <sqlite3.h>

/// Turns off SQLite's allocation statistics. With them on (the default of Debian's build),
/// every allocation SQLite makes takes one process-wide mutex that the threads of all
/// connections contend for. Only works before the process opens its first connection;
/// returns SQLITE_MISUSE after that.
static inline int vigil_sqlite_disable_memstatus(void) {
    return sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}
