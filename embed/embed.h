/* embed.h — the embedding expert interface. A domain's expert turns text into
 * L2-normalised float vectors of a fixed dimension. Backends:
 *   builtin  LSA fitted on the domain's own text (lsa.h); needs a model file
 *   hash     hashed term vectors: no fit, deterministic (tests, tiny domains)
 *   http     an OpenAI-compatible /v1/embeddings server (embed_http.c)
 * Callers never change when a domain's expert does. */
#ifndef MB_EMBED_H
#define MB_EMBED_H

#include <stddef.h>

#include "mb_error.h"

typedef struct mb_embed_t mb_embed_t;

/* What a domain's expert is. version names the exact model that makes a
 * vector; it is stored beside every vector, and a vector is only ever
 * compared with vectors of the same version. */
typedef struct {
    char backend[32]; /* "builtin" | "hash" | "http" */
    int dim;
    char url[512];        /* http: base URL (…/v1 or …/v1/embeddings) */
    char model[128];      /* http: model name */
    char api_key_env[64]; /* http: environment variable holding the key */
    char model_file[256]; /* builtin: fitted model, relative to the domain dir */
    char version[192];
    long fit_chunks; /* builtin: passages the fit saw (for refit on growth) */
} mb_expert_spec_t;

typedef enum { MB_EMBED_PASSAGE = 0, MB_EMBED_QUERY = 1 } mb_embed_kind_t;

/* Opens the expert the spec names. dir: the domain directory (builtin's
 * model file is read from there). builtin without a model file: MB_ENOTFOUND
 * ("not fitted yet"). */
mb_embed_t *mb_embed_open(const mb_expert_spec_t *spec, const char *dir, mb_err_t *err);
/* Shorthand for an unfitted backend: "hash" (or "http" is refused: it needs
 * a URL). */
mb_embed_t *mb_embed_new(const char *backend, int dim, mb_err_t *err);
void mb_embed_destroy(mb_embed_t **self_p);

int mb_embed_dim(const mb_embed_t *self);
const char *mb_embed_version(const mb_embed_t *self);

/* Embeds n texts into out (n * dim floats, row-major). A text with no token
 * the expert knows embeds to the zero vector. */
int mb_embed_batch(mb_embed_t *self, const char *const *texts, size_t n,
                   mb_embed_kind_t kind, float *out, mb_err_t *err);

/* The version a spec without a fit stands for ("hash-v2-d256",
 * "http:MODEL:d768"); builtin versions come from fits. */
void mb_expert_spec_version(mb_expert_spec_t *spec);

/* DIR/expert.json: the expert the domain's vectors were made with. Written
 * atomically (temp + rename). Reading a missing file is MB_ENOTFOUND. */
int mb_expert_read(const char *dir, mb_expert_spec_t *spec, mb_err_t *err);
int mb_expert_write(const char *dir, const mb_expert_spec_t *spec, mb_err_t *err);
/* The same for another file name in dir (expert.pending.json). */
int mb_expert_read_file(const char *dir, const char *name, mb_expert_spec_t *spec,
                        mb_err_t *err);
int mb_expert_write_file(const char *dir, const char *name, const mb_expert_spec_t *spec,
                         mb_err_t *err);

/* Fits a builtin expert on texts and saves it as DIR/spec->model_file; sets
 * spec->version. */
int mb_embed_fit(mb_expert_spec_t *spec, const char *dir, const char *const *texts,
                 size_t n, mb_err_t *err);

#endif
