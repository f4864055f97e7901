/* embed.h — the embedding expert interface. A domain's expert turns text into
 * L2-normalised float vectors of a fixed dimension. Backends live behind this
 * interface ("builtin" today; an HTTP backend and a fitted LSA expert come
 * later) so callers never change when a domain's expert does. */
#ifndef MB_EMBED_H
#define MB_EMBED_H

#include <stddef.h>

#include "mb_error.h"

typedef struct mb_embed_t mb_embed_t;

/* backend: "builtin". dim: output dimension (8..4096). */
mb_embed_t *mb_embed_new(const char *backend, int dim, mb_err_t *err);
void mb_embed_destroy(mb_embed_t **self_p);

int mb_embed_dim(const mb_embed_t *self);
/* Identifies the model that made a vector (stored beside each vector). */
const char *mb_embed_version(const mb_embed_t *self);

/* Embeds n texts into out (n * dim floats, row-major). A text with no tokens
 * embeds to the zero vector. */
int mb_embed_batch(mb_embed_t *self, const char *const *texts, size_t n, float *out,
                   mb_err_t *err);

#endif
