/* testutil.h — helpers shared by the unit tests (header-only). */
#ifndef MB_TESTUTIL_H
#define MB_TESTUTIL_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

/* A fresh directory under /tmp; prefix names the test. */
static inline void tu_mkdtemp(char *dir, size_t size, const char *prefix) {
    snprintf(dir, size, "/tmp/mb-test-%s-XXXXXX", prefix);
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        abort();
    }
}

static inline int tu_rmrf(const char *dir) {
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd);
}

/* A reproducible unit vector of dim floats from seed (LCG, no libc state). */
static inline void tu_unit_vector(float *v, int dim, unsigned seed) {
    double n = 0;
    for (int i = 0; i < dim; i++) {
        seed = seed * 1103515245u + 12345u;
        v[i] = (float)((seed >> 8) % 2001) / 1000.0f - 1.0f;
        n += (double)v[i] * v[i];
    }
    for (int i = 0; i < dim; i++)
        v[i] /= (float)sqrt(n);
}

#endif
