/* embed_impl.h — what a backend provides (private to embed/). */
#ifndef MB_EMBED_IMPL_H
#define MB_EMBED_IMPL_H

#include "embed.h"

typedef struct {
    const char *name;
    int (*batch)(void *state, const char *const *texts, size_t n, mb_embed_kind_t kind,
                 float *out, mb_err_t *err);
    void (*destroy)(void *state);
} mb_embed_ops_t;

/* hashed-term backend */
void *mb_embed_hash_new(int dim, mb_err_t *err);
extern const mb_embed_ops_t mb_embed_hash_ops;

/* OpenAI-compatible HTTP backend */
void *mb_embed_http_new(const mb_expert_spec_t *spec, mb_err_t *err);
extern const mb_embed_ops_t mb_embed_http_ops;

#endif
