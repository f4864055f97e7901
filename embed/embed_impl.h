/* embed_impl.h — what a backend provides (private to embed/). */
#ifndef MB_EMBED_IMPL_H
#define MB_EMBED_IMPL_H

#include "embed.h"

typedef struct {
    const char *name;
    int (*batch)(void *state, const char *const *texts, size_t n, float *out,
                 mb_err_t *err);
    void (*destroy)(void *state);
} mb_embed_ops_t;

/* builtin hashed-term backend */
void *mb_embed_hash_new(int dim, mb_err_t *err);
extern const mb_embed_ops_t mb_embed_hash_ops;

#endif
