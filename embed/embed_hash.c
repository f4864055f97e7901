/* embed_hash.c — the interim builtin expert: hashed term vectors.
 *
 * Each stemmed token is hashed (FNV-1a 64) to MB_HASH_PROBES buckets, each
 * with its own sign, carrying (1 + ln tf) / sqrt(probes); the vector is
 * L2-normalised. Signed hashing keeps collisions unbiased, so the inner
 * product approximates the weighted overlap of the terms. Several probes per
 * token matter for short texts: with one bucket, a single collision between
 * two unrelated words makes a 3-word definition look like a strong match;
 * with four, a spurious match needs several independent collisions. No IDF: it needs no
 * fitting and is deterministic across processes and machines: the `hash`
 * backend, for tests and domains too small to fit the builtin LSA expert. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "embed_impl.h"
#include "mb_mem.h"
#include "text.h"

#define MB_HASH_PROBES 4

typedef struct {
    int dim;
    mb_text_t *text;
    /* scratch: token hashes of the current text */
    uint64_t *hashes;
    size_t nh, cap;
} hash_state_t;

static void s_on_token(const char *tok, size_t len, void *arg) {
    hash_state_t *st = arg;
    if (st->nh == st->cap) {
        size_t cap = st->cap ? st->cap * 2 : 256;
        uint64_t *h = mb_xrealloc(st->hashes, cap * sizeof *h);
        if (!h) return;
        st->hashes = h;
        st->cap = cap;
    }
    st->hashes[st->nh++] = mb_text_hash(tok, len);
}

static int s_cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

void *mb_embed_hash_new(int dim, mb_err_t *err) {
    hash_state_t *st = calloc(1, sizeof *st);
    st->dim = dim;
    st->text = mb_text_new();
    if (!st->text) {
        free(st);
        mb_err_set(err, MB_EINTERNAL, "cannot create the English stemmer");
        return NULL;
    }
    return st;
}

static int s_batch(void *state, const char *const *texts, size_t n, mb_embed_kind_t kind,
                   float *out, mb_err_t *err) {
    (void)kind; /* queries and passages embed alike */
    hash_state_t *st = state;
    for (size_t t = 0; t < n; t++) {
        float *v = out + t * (size_t)st->dim;
        memset(v, 0, (size_t)st->dim * sizeof(float));
        st->nh = 0;
        int rc =
            mb_text_tokenize(st->text, texts[t], strlen(texts[t]), s_on_token, st, err);
        if (rc != 0) return rc;
        if (st->nh > 1) qsort(st->hashes, st->nh, sizeof *st->hashes, s_cmp_u64);
        for (size_t i = 0; i < st->nh;) {
            size_t j = i;
            while (j < st->nh && st->hashes[j] == st->hashes[i])
                j++;
            uint64_t h = st->hashes[i];
            float w = (1.0f + logf((float)(j - i))) * 0.5f; /* 1/sqrt(MB_HASH_PROBES) */
            for (int p = 0; p < MB_HASH_PROBES; p++) {
                /* derive independent probes by re-mixing the token hash */
                h = (h ^ (h >> 31)) * 0x9e3779b97f4a7c15ULL + (uint64_t)p;
                h ^= h >> 29;
                v[(h >> 1) % (uint64_t)st->dim] += (h & 1) ? w : -w;
            }
            i = j;
        }
        double norm = 0;
        for (int d = 0; d < st->dim; d++)
            norm += (double)v[d] * v[d];
        if (norm > 0) {
            float inv = (float)(1.0 / sqrt(norm));
            for (int d = 0; d < st->dim; d++)
                v[d] *= inv;
        }
    }
    return 0;
}

static void s_destroy(void *state) {
    hash_state_t *st = state;
    mb_text_destroy(&st->text);
    free(st->hashes);
    free(st);
}

const mb_embed_ops_t mb_embed_hash_ops = {"hash-v2", s_batch, s_destroy};
