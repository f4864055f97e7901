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

#endif
