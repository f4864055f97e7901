/* vindex.h — the FAISS side of a domain index (private to index/).
 *
 * Builds any FAISS factory string so that ids are the store's chunk ids (IVF
 * types natively, the others wrapped in IDMap2).
 * Index types that need training (IVF, PQ, SQ…) cannot take vectors before
 * they are trained, so until the domain has enough vectors for training a
 * flat IDMap2 "fallback" serves adds and searches; mb_vindex_train switches
 * to the configured index. Types that cannot remove ids (HNSW) keep deleted
 * vectors as tombstones: the store no longer has them, so searches skip them,
 * and a rebuild from the store drops them. */
#ifndef MB_VINDEX_H
#define MB_VINDEX_H

#include <stdint.h>

#include "index.h" /* mb_search_params_t */
#include "mb_error.h"

typedef struct mb_vindex_t mb_vindex_t;

/* factory: a FAISS factory string for the inner index ("Flat", "HNSW32",
 * "IVF1024,PQ32", "SQ8"…). Fails with MB_EBADREQ when FAISS rejects it. */
mb_vindex_t *mb_vindex_new(int dim, const char *factory, mb_err_t *err);
/* Loads a saved index. fallback: the file holds the flat fallback (the
 * configured index was not trained yet). */
mb_vindex_t *mb_vindex_load(const char *path, int dim, const char *factory, int fallback,
                            mb_err_t *err);
void mb_vindex_destroy(mb_vindex_t **self_p);

int mb_vindex_add(mb_vindex_t *self, size_t n, const float *x, const int64_t *ids,
                  mb_err_t *err);
/* 0 when removed; 1 when the index type cannot remove and the vectors stay
 * as tombstones; negative on error. */
int mb_vindex_remove(mb_vindex_t *self, size_t n, const int64_t *ids, mb_err_t *err);
int mb_vindex_search(const mb_vindex_t *self, const float *q, int k,
                     const mb_search_params_t *params, float *scores, int64_t *labels,
                     mb_err_t *err);
int64_t mb_vindex_count(const mb_vindex_t *self);
/* Tombstones: vectors still in FAISS whose chunk is gone. */
int64_t mb_vindex_stale(const mb_vindex_t *self);
/* After a load: how many of the vectors are tombstones. */
void mb_vindex_set_stale(mb_vindex_t *self, int64_t stale);

/* 1 while the flat fallback is serving (the configured index needs training). */
int mb_vindex_untrained(const mb_vindex_t *self);
/* Vectors needed before training is worth it (IVF: 39 per list; PQ: 39 per
 * centroid of 256; others: 1000). */
int64_t mb_vindex_min_train(const mb_vindex_t *self);
/* Trains the configured index on x and makes it the (empty) active index;
 * the caller then adds every vector again. */
int mb_vindex_train(mb_vindex_t *self, size_t n, const float *x, mb_err_t *err);
const char *mb_vindex_factory(const mb_vindex_t *self);

/* Writes to path.tmp, fsyncs, renames over path, fsyncs the directory. */
int mb_vindex_save(const mb_vindex_t *self, const char *path, mb_err_t *err);

#endif
