/* mb_mem.h — growth of working buffers.
 *
 * Policy (as in redis's zmalloc): when growing a buffer fails the process is
 * out of memory and cannot do anything useful, so it says so and aborts
 * instead of carrying a NULL into later writes. Allocation failures of whole
 * requests are still reported as errors by the code that can recover. */
#ifndef MB_MEM_H
#define MB_MEM_H

#include <stdio.h>
#include <stdlib.h>

static inline void *mb_xrealloc(void *p, size_t n) {
    void *q = realloc(p, n ? n : 1);
    if (!q) {
        fprintf(stderr, "moebus: out of memory (growing a buffer to %zu bytes)\n", n);
        abort();
    }
    return q;
}

#endif
