/* metrics.c — see metrics.h. Query-sized inputs: linear scans are fine. */
#include "metrics.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int s_rel(const char *doc, const mb_qrel_t *q, size_t nq) {
    for (size_t i = 0; i < nq; i++)
        if (strcmp(q[i].doc_id, doc) == 0) return q[i].rel;
    return 0;
}

static int s_cmp_desc(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    return (x < y) - (x > y);
}

double mb_metric_ndcg(const char *const *ranked, size_t n, const mb_qrel_t *qrels,
                      size_t nq, int k) {
    double dcg = 0, idcg = 0;
    for (size_t i = 0; i < n && i < (size_t)k; i++) {
        int r = s_rel(ranked[i], qrels, nq);
        if (r > 0) dcg += r / log2((double)i + 2);
    }
    int *rels = malloc((nq ? nq : 1) * sizeof *rels);
    for (size_t i = 0; i < nq; i++)
        rels[i] = qrels[i].rel;
    qsort(rels, nq, sizeof *rels, s_cmp_desc);
    for (size_t i = 0; i < nq && i < (size_t)k; i++)
        if (rels[i] > 0) idcg += rels[i] / log2((double)i + 2);
    free(rels);
    return idcg > 0 ? dcg / idcg : 0;
}

double mb_metric_recall(const char *const *ranked, size_t n, const mb_qrel_t *qrels,
                        size_t nq, int k) {
    size_t relevant = 0, found = 0;
    for (size_t i = 0; i < nq; i++)
        relevant += qrels[i].rel > 0;
    for (size_t i = 0; i < n && i < (size_t)k; i++)
        found += s_rel(ranked[i], qrels, nq) > 0;
    return relevant ? (double)found / (double)relevant : 0;
}

double mb_metric_mrr(const char *const *ranked, size_t n, const mb_qrel_t *qrels,
                     size_t nq, int k) {
    for (size_t i = 0; i < n && i < (size_t)k; i++)
        if (s_rel(ranked[i], qrels, nq) > 0) return 1.0 / ((double)i + 1);
    return 0;
}
