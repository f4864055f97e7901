/* lsa.h — the builtin domain expert: latent semantic analysis fitted on the
 * domain's own text.
 *
 * Fit: tokens (text.h: NFKC, case fold, stop words, Snowball stems, plus
 * acronym keys) -> vocabulary capped by document frequency -> BM25-saturated
 * term weights with the domain's IDF -> randomised truncated SVD (Halko,
 * Martinsson & Tropp 2011) on OpenBLAS/LAPACK -> a term-to-dense projection.
 * Embed: the text's BM25 term vector times the projection, L2-normalised.
 * Queries and passages go through the same map, so inner product is the
 * cosine of the two texts in the domain's latent space. */
#ifndef MB_LSA_H
#define MB_LSA_H

#include <stddef.h>
#include <stdint.h>

#include "mb_error.h"

typedef struct mb_lsa_t mb_lsa_t;

typedef struct {
    int dim;          /* output dimension (default 256) */
    int max_vocab;    /* keep at most this many terms, most frequent first (30000) */
    int min_df;       /* drop terms seen in fewer documents (2) */
    int power_iters;  /* subspace iterations of the randomised SVD (3) */
    int oversample;   /* extra random directions (24) */
    double k1, b;     /* BM25 saturation (1.2, 0.75) */
    double sv_power;  /* scale component i by sigma_i^(sv_power-1) (0.5) */
    int hash_dims;    /* trailing dims for the sketch of out-of-vocabulary terms (64) */
    double hash_beta; /* the sketch's share of the inner product (0.5) */
    uint64_t seed;    /* random seed (fits are reproducible) */
} mb_lsa_opts_t;

/* Defaults for every field (dim = 256). */
void mb_lsa_opts_default(mb_lsa_opts_t *o);

/* Fits on n texts (each one passage). MB_EBADREQ when the texts have fewer
 * than 2 distinct terms between them. The rank is at most min(terms, n):
 * the remaining components of each vector are zero. */
mb_lsa_t *mb_lsa_fit(const char *const *texts, size_t n, const mb_lsa_opts_t *o,
                     mb_err_t *err);
/* Model file: written to PATH.tmp, fsynced, renamed over PATH. */
int mb_lsa_save(const mb_lsa_t *self, const char *path, mb_err_t *err);
mb_lsa_t *mb_lsa_load(const char *path, mb_err_t *err);
void mb_lsa_destroy(mb_lsa_t **self_p);

int mb_lsa_dim(const mb_lsa_t *self);
size_t mb_lsa_vocab(const mb_lsa_t *self);
/* The fit's rank and the number of passages it saw. */
int mb_lsa_rank(const mb_lsa_t *self);
size_t mb_lsa_docs(const mb_lsa_t *self);

/* Embeds n texts into out (n * dim). is_query: a query also offers each of
 * its words as an acronym key (see text.h). A text with no known term
 * embeds to the zero vector. Thread-safe (the model is read-only). */
int mb_lsa_embed(const mb_lsa_t *self, const char *const *texts, size_t n, int is_query,
                 float *out, mb_err_t *err);

#endif
