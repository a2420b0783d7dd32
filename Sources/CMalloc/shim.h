#include <stddef.h>

/// jemalloc's control interface, as `<jemalloc/jemalloc.h>` declares it (that header also
/// declares `malloc` and friends, which would clash with the C library's in Swift's view).
int mallctl(const char *name, void *oldp, size_t *oldlenp, void *newp, size_t newlen);

/// The version of jemalloc serving this process's allocations; NULL if it is not there.
static inline const char *vigil_jemalloc_version(void) {
    const char *version = NULL;
    size_t size = sizeof(version);
    return mallctl("version", &version, &size, NULL, 0) == 0 ? version : NULL;
}
