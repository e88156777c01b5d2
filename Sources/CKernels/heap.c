// ck_heap_retain_freed_memory: see ckernels.h. mallopt lives in <malloc.h>, which Swift's Glibc module does not
// export.
#include "ckernels.h"
#if defined(__GLIBC__)
#include <malloc.h>
#endif

void ck_heap_retain_freed_memory(void) {
#if defined(__GLIBC__)
    mallopt(M_MMAP_THRESHOLD, 32 << 20);  // glibc's largest allowed threshold on 64-bit
    mallopt(M_TRIM_THRESHOLD, 0x7fffffff);
#endif
}
