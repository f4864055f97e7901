/* wordvec.c — loading GloVe text files and SIF sentence vectors. */
#include "wordvec.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DIM 1024
#define SIF_A 1e-3

struct mb_wordvec_t {
    int dim;
    size_t n;
    char **words;
    float *vecs;     /* n x dim, each L2-normalised */
    float *weight;   /* SIF weight by rank */
    uint32_t *table; /* open addressing: index + 1, 0 = empty */
    size_t tsize;
};

static uint64_t s_hash(const char *s, size_t n) {
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h;
}

static long s_find(const mb_wordvec_t *w, const char *s, size_t n) {
    size_t i = s_hash(s, n) & (w->tsize - 1);
    while (w->table[i]) {
        const char *c = w->words[w->table[i] - 1];
        if (strncmp(c, s, n) == 0 && c[n] == 0) return (long)w->table[i] - 1;
        i = (i + 1) & (w->tsize - 1);
    }
    return -1;
}

mb_wordvec_t *mb_wordvec_load(const char *path, mb_err_t *err) {
    FILE *f = fopen(path, "r");
    if (!f) {
        mb_err_set(err, MB_ENOTFOUND, "cannot read word vectors %s", path);
        return NULL;
    }
    mb_wordvec_t *w = calloc(1, sizeof *w);
    size_t cap = 0;
    char *line = NULL;
    size_t lcap = 0;
    ssize_t len;
    float tmp[MAX_DIM];
    while ((len = getline(&line, &lcap, f)) > 0) {
        char *sp = strchr(line, ' ');
        if (!sp || sp == line) continue;
        *sp = 0;
        int d = 0;
        char *p = sp + 1, *end;
        while (d < MAX_DIM) {
            float v = strtof(p, &end);
            if (end == p) break;
            tmp[d++] = v;
            p = end;
        }
        if (w->dim == 0) w->dim = d;
        if (d != w->dim || d == 0) {
            mb_err_set(err, MB_EBADREQ, "%s: line %zu has %d numbers, not %d", path,
                       w->n + 1, d, w->dim);
            free(line);
            fclose(f);
            mb_wordvec_destroy(&w);
            return NULL;
        }
        if (w->n == cap) {
            cap = cap ? cap * 2 : 65536;
            w->words = realloc(w->words, cap * sizeof *w->words);
            w->vecs = realloc(w->vecs, cap * (size_t)w->dim * sizeof *w->vecs);
        }
        double nn = 0;
        for (int i = 0; i < d; i++)
            nn += (double)tmp[i] * tmp[i];
        nn = nn > 0 ? sqrt(nn) : 1;
        for (int i = 0; i < d; i++)
            w->vecs[w->n * (size_t)d + i] = (float)(tmp[i] / nn);
        w->words[w->n++] = strdup(line);
    }
    free(line);
    fclose(f);
    if (w->n == 0) {
        mb_err_set(err, MB_EBADREQ, "%s holds no word vectors", path);
        mb_wordvec_destroy(&w);
        return NULL;
    }
    w->tsize = 1;
    while (w->tsize < w->n * 2)
        w->tsize <<= 1;
    w->table = calloc(w->tsize, sizeof *w->table);
    w->weight = malloc(w->n * sizeof *w->weight);
    /* Zipf: p(rank r) = 1 / (r * H_n) */
    double hn = log((double)w->n) + 0.5772;
    for (size_t i = 0; i < w->n; i++) {
        double p = 1.0 / ((double)(i + 1) * hn);
        w->weight[i] = (float)(SIF_A / (SIF_A + p));
        size_t j = s_hash(w->words[i], strlen(w->words[i])) & (w->tsize - 1);
        while (w->table[j])
            j = (j + 1) & (w->tsize - 1);
        w->table[j] = (uint32_t)(i + 1);
    }
    return w;
}

void mb_wordvec_destroy(mb_wordvec_t **self_p) {
    if (!self_p || !*self_p) return;
    mb_wordvec_t *w = *self_p;
    for (size_t i = 0; i < w->n; i++)
        free(w->words[i]);
    free(w->words);
    free(w->vecs);
    free(w->weight);
    free(w->table);
    free(w);
    *self_p = NULL;
}

int mb_wordvec_dim(const mb_wordvec_t *self) {
    return self->dim;
}
size_t mb_wordvec_words(const mb_wordvec_t *self) {
    return self->n;
}

int mb_wordvec_embed(const mb_wordvec_t *w, const char *text, float *out) {
    memset(out, 0, (size_t)w->dim * sizeof *out);
    int found = 0;
    char word[64];
    const unsigned char *p = (const unsigned char *)text;
    while (*p) {
        size_t n = 0;
        while (*p &&
               !(((*p | 0x20) >= 'a' && (*p | 0x20) <= 'z') || (*p >= '0' && *p <= '9')))
            p++;
        while (*p && ((((*p | 0x20) >= 'a' && (*p | 0x20) <= 'z') ||
                       (*p >= '0' && *p <= '9')) ||
                      (*p == '-' && n > 0))) {
            if (n < sizeof word - 1)
                word[n++] = (char)((*p >= 'A' && *p <= 'Z') ? *p | 0x20 : *p);
            p++;
        }
        if (n == 0) continue;
        long i = s_find(w, word, n);
        if (i < 0) continue;
        const float *v = w->vecs + (size_t)i * (size_t)w->dim;
        for (int d = 0; d < w->dim; d++)
            out[d] += w->weight[i] * v[d];
        found++;
    }
    double nn = 0;
    for (int d = 0; d < w->dim; d++)
        nn += (double)out[d] * out[d];
    if (nn > 0)
        for (int d = 0; d < w->dim; d++)
            out[d] = (float)(out[d] / sqrt(nn));
    return found;
}
