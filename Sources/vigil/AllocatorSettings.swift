import CMalloc

/// How the server asks glibc's allocator to keep freed memory.
///
/// By default glibc hands memory back to the kernel eagerly: the free top of the main heap
/// once it passes 128 KiB (a bar that rises as large blocks are freed), a thread's heap (64 MiB
/// at most) once it is empty, and every block of 128 KiB or more (a request body, a spool
/// frame, a batch's rows) is a mapping of its own, unmapped when freed. The server frees
/// megabytes per batch, and kept faulting freshly zeroed pages back in: in profiles of
/// `bench detect`, 4–6 % of its CPU went to page faults, 1–3 % with these settings.
///
/// With a top pad of 64 MiB a thread's heap is never trimmed or deleted, the main heap keeps
/// up to 128 MiB free at its top, and only blocks of 4 MiB or more are mapped on their own.
/// The cost is memory the process keeps after a peak (the peak itself does not change: about
/// 630 MiB against 710 in `bench detect`, 580 against 580 in `bench syslog`).
enum AllocatorSettings {
    static let trimBytes: Int32 = 128 << 20
    static let topPadBytes: Int32 = 64 << 20
    static let mmapBytes: Int32 = 4 << 20

    /// Applies the settings, unless the operator tuned glibc's malloc with `GLIBC_TUNABLES`:
    /// theirs win. True when the settings were applied.
    static func apply(environment: [String: String]) -> Bool {
        if environment["GLIBC_TUNABLES"]?.contains("glibc.malloc.") == true { return false }
        return vigil_malloc_keep_freed(trimBytes, topPadBytes, mmapBytes) == 1
    }
}
