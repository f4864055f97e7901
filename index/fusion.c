/* fusion.c — reciprocal-rank fusion. */
#include "fusion.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char *key;
    json_t *hit;
    double fused;
    double raw;
} fused_t;

static int s_cmp(const void *a, const void *b) {
    const fused_t *x = a, *y = b;
    if (x->fused != y->fused) return x->fused < y->fused ? 1 : -1;
    if (x->raw != y->raw) return x->raw < y->raw ? 1 : -1;
    return strcmp(x->key, y->key);
}

/* Adds every hit of list with weight w * normalised score into all[]. */
/* Sorts the entries, returns the best k as a new array (each with the fused
 * "score", and "raw_score" when asked) and frees all of them. */
static json_t *s_emit(fused_t *all, size_t n, int k, int with_raw) {
    qsort(all, n, sizeof *all, s_cmp);
    json_t *out = json_array();
    for (size_t i = 0; i < n; i++) {
        if ((int)i < k) {
            if (with_raw)
                json_object_set_new(all[i].hit, "raw_score", json_real(all[i].raw));
            json_object_set_new(all[i].hit, "score", json_real(all[i].fused));
            json_array_append(out, all[i].hit);
        }
        json_decref(all[i].hit);
        free(all[i].key);
    }
    free(all);
    return out;
}

/* Finds the entry of hit (key: label, doc_id, chunk) or adds a copy of it;
 * returns its index. A hit seen again keeps the fields it did not have (the
 * other channel's score) and the better raw score. */
static size_t s_entry(fused_t *all, size_t *n, const char *label, json_t *hit,
                      double raw) {
    char key[1024];
    snprintf(key, sizeof key, "%s\x1f%s\x1f%lld", label ? label : "",
             json_string_value(json_object_get(hit, "doc_id")),
             (long long)json_integer_value(json_object_get(hit, "chunk")));
    /* Linear scan is fine for the list sizes here (a few k per list). */
    size_t j = 0;
    while (j < *n && strcmp(all[j].key, key) != 0)
        j++;
    if (j == *n) {
        all[j].key = strdup(key);
        all[j].hit = json_deep_copy(hit);
        if (label) json_object_set_new(all[j].hit, "domain", json_string(label));
        all[j].raw = raw;
        (*n)++;
    } else {
        json_object_update_missing(all[j].hit, hit);
        if (raw > all[j].raw) all[j].raw = raw;
    }
    return j;
}

/* Adds every hit of list with weight w * its min-max normalised score. */
static void s_add_weighted(fused_t *all, size_t *n, json_t *list, double w) {
    double lo = 0, hi = 0;
    size_t i;
    json_t *hit;
    json_array_foreach(list, i, hit) {
        double v = json_number_value(json_object_get(hit, "score"));
        if (i == 0 || v < lo) lo = v;
        if (i == 0 || v > hi) hi = v;
    }
    json_array_foreach(list, i, hit) {
        double v = json_number_value(json_object_get(hit, "score"));
        double norm = hi > lo ? (v - lo) / (hi - lo) : 1.0;
        all[s_entry(all, n, NULL, hit, norm)].fused += w * norm;
    }
}

json_t *mb_fusion_weighted(json_t *a, json_t *b, double alpha, int k) {
    size_t cap = (a ? json_array_size(a) : 0) + (b ? json_array_size(b) : 0);
    fused_t *all = calloc(cap ? cap : 1, sizeof *all);
    size_t n = 0;
    if (a) s_add_weighted(all, &n, a, alpha);
    if (b) s_add_weighted(all, &n, b, 1.0 - alpha);
    return s_emit(all, n, k, 0);
}

json_t *mb_fusion_convex(json_t *dense, json_t *lexical, double alpha, int k) {
    size_t cap =
        (dense ? json_array_size(dense) : 0) + (lexical ? json_array_size(lexical) : 0);
    fused_t *all = calloc(cap ? cap : 1, sizeof *all);
    size_t n = 0, i;
    json_t *hit;
    if (dense) json_array_foreach(dense, i, hit) {
            double v = json_number_value(json_object_get(hit, "score"));
            all[s_entry(all, &n, NULL, hit, v)].fused += alpha * v;
        }
    double top = 0;
    if (lexical) json_array_foreach(lexical, i, hit) {
            double v = json_number_value(json_object_get(hit, "score"));
            if (v > top) top = v;
        }
    if (lexical && top > 0) json_array_foreach(lexical, i, hit) {
            double v = json_number_value(json_object_get(hit, "score")) / top;
            all[s_entry(all, &n, NULL, hit, v)].fused += (1.0 - alpha) * v;
        }
    return s_emit(all, n, k, 0);
}

json_t *mb_fusion_rrf(json_t *const *lists, const char *const *labels, size_t nlists,
                      int k, int rrf_k) {
    return mb_fusion_rrf_weighted(lists, labels, NULL, nlists, k, rrf_k);
}

json_t *mb_fusion_rrf_weighted(json_t *const *lists, const char *const *labels,
                               const double *weights, size_t nlists, int k, int rrf_k) {
    size_t cap = 0;
    for (size_t l = 0; l < nlists; l++)
        cap += lists[l] ? json_array_size(lists[l]) : 0;
    fused_t *all = calloc(cap ? cap : 1, sizeof *all);
    size_t n = 0;
    for (size_t l = 0; l < nlists; l++) {
        if (!lists[l]) continue;
        size_t rank;
        json_t *hit;
        json_array_foreach(lists[l], rank, hit) {
            double raw = json_number_value(json_object_get(hit, "score"));
            size_t j = s_entry(all, &n, labels ? labels[l] : NULL, hit, raw);
            all[j].fused += (weights ? weights[l] : 1.0) / (rrf_k + (double)rank + 1.0);
        }
    }
    return s_emit(all, n, k, 1);
}
