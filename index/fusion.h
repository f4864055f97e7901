/* fusion.h — merging ranked lists (per domain, or dense + lexical). */
#ifndef MB_FUSION_H
#define MB_FUSION_H

#include <jansson.h>
#include <stddef.h>

/* Reciprocal-rank fusion: each hit's fused score is the sum over lists of
 * 1 / (rrf_k + rank), rank from 1. lists[i] are JSON arrays of hit objects
 * with "doc_id", "chunk" and "score", best first; labels[i] (may be NULL) is
 * written into each hit as "domain" and is part of the dedupe key. Ties break
 * on the best raw score, so when every list contributes its rank-1 hit the
 * strongest match still comes first. Returns a new array of at most k hits,
 * each with "score" (fused) and "raw_score". */
json_t *mb_fusion_rrf(json_t *const *lists, const char *const *labels, size_t nlists,
                      int k, int rrf_k);

/* The same with a weight per list (the router's probability of each
 * domain): a hit scores the sum of weight / (rrf_k + rank). NULL weights:
 * all 1. */
json_t *mb_fusion_rrf_weighted(json_t *const *lists, const char *const *labels,
                               const double *weights, size_t nlists, int k, int rrf_k);

/* Weighted fusion of two channels: each list's scores are min-max normalised
 * to 0..1 (a list with one distinct score maps it to 1), then a hit scores
 * alpha * a + (1 - alpha) * b, a hit missing from a list counting 0 there.
 * Returns a new array of at most k hits, best first, each with "score". */
json_t *mb_fusion_weighted(json_t *a, json_t *b, double alpha, int k);

/* Convex fusion of a dense and a lexical list: alpha * cosine + (1 - alpha)
 * * BM25 / (the query's best BM25). Unlike min-max, the cosine keeps its
 * absolute meaning (a weak best dense hit stays weak), and the lexical score
 * is relative to the query's own best match, since BM25 has no fixed scale.
 * A hit missing from a list counts 0 there. Scores stay in 0..1 whatever the
 * corpus (BM25 of a tiny corpus can be ~1e-6), so when the gate merges
 * domains a domain's lexical best match (>= 1 - alpha) outranks another's
 * dense-only hits. */
json_t *mb_fusion_convex(json_t *dense, json_t *lexical, double alpha, int k);

#endif
