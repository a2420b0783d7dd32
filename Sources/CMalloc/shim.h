#include <malloc.h>

/// Makes glibc's allocator keep freed memory instead of handing it straight back to the
/// kernel: the top of a heap is trimmed only when more than `trim_bytes` are free there,
/// each heap grows by `top_pad_bytes` more than it needs, and only blocks of `mmap_bytes` or
/// more get their own mapping (which is unmapped on free). Returns 1 when every setting took.
static inline int vigil_malloc_keep_freed(int trim_bytes, int top_pad_bytes, int mmap_bytes) {
    return mallopt(M_TRIM_THRESHOLD, trim_bytes) & mallopt(M_TOP_PAD, top_pad_bytes) & mallopt(M_MMAP_THRESHOLD, mmap_bytes);
}
