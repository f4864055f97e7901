/* metrics.h — ranking metrics as BEIR computes them (pytrec_eval/trec_eval):
 * graded relevance from the qrels (a judgement <= 0 is not relevant), a
 * ranking of distinct document ids, best first.
 *   nDCG@k    sum over ranks i <= k of rel_i / log2(i + 1), divided by the
 *             same sum over the qrels' relevances sorted descending
 *   recall@k  relevant documents in the top k / relevant documents judged
 *   MRR@k     1 / rank of the first relevant document in the top k, else 0
 * (trec_eval breaks score ties by document id; moebus reports its own order,
 * which is what a client sees.) */
#ifndef MB_METRICS_H
#define MB_METRICS_H

#include <stddef.h>

typedef struct {
    const char *doc_id;
    int rel;
} mb_qrel_t;

double mb_metric_ndcg(const char *const *ranked, size_t n, const mb_qrel_t *qrels,
                      size_t nq, int k);
double mb_metric_recall(const char *const *ranked, size_t n, const mb_qrel_t *qrels,
                        size_t nq, int k);
double mb_metric_mrr(const char *const *ranked, size_t n, const mb_qrel_t *qrels,
                     size_t nq, int k);

#endif
