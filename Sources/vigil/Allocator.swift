import CMalloc

/// The server's allocator is jemalloc, linked into the binary (`Sources/CMalloc`).
///
/// glibc's malloc, even asked to keep freed memory (a trim threshold of 128 MiB, a top pad of
/// 64 MiB, own mappings only from 4 MiB), spent more of the server's CPU: objects made on one
/// thread are freed on another (an event is decoded and normalized where it is admitted and
/// freed by the pipeline), and a thousand small blocks come and go per batch. Interleaved
/// runs on the 2-core VM, 2026-12-04: `bench detect` 43.1–44.6 µs of server CPU per event
/// against 44.3–46.7 with glibc, `bench syslog` 46.2–46.4 µs per line against 48.4–49.2.
/// Tune it with jemalloc's own `MALLOC_CONF` (for example `MALLOC_CONF=dirty_decay_ms:1000`).
enum Allocator {
    /// "jemalloc 5.3.0-0-g54eaed1d8b56...", or nil when malloc is not jemalloc's.
    static var description: String? {
        guard let version = vigil_jemalloc_version() else { return nil }
        return "jemalloc " + String(cString: version)
    }
}
