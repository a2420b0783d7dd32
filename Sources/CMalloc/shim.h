#if __has_include(<malloc.h>)
#include <malloc.h>
#endif

/// Makes glibc's allocator keep freed memory instead of handing it straight back to the
/// kernel: the top of the main heap is trimmed only when more than `trim_bytes` are free
/// there, `top_pad_bytes` are kept at the top of every heap when it is trimmed (and added when
/// one is made), and only blocks of `mmap_bytes` or more get their own mapping (which is
/// unmapped on free). Returns 1 when every setting took, 0 on a C library without them.
static inline int vigil_malloc_keep_freed(int trim_bytes, int top_pad_bytes, int mmap_bytes) {
#if defined(M_TRIM_THRESHOLD) && defined(M_TOP_PAD) && defined(M_MMAP_THRESHOLD)
    return mallopt(M_TRIM_THRESHOLD, trim_bytes) & mallopt(M_TOP_PAD, top_pad_bytes) & mallopt(M_MMAP_THRESHOLD, mmap_bytes);
#else
    (void)trim_bytes;
    (void)top_pad_bytes;
    (void)mmap_bytes;
    return 0;
#endif
}
