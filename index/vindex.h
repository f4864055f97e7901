/* vindex.h — a thin wrapper over the FAISS C API: an ID-mapped inner-product
 * index whose ids are the store's chunk ids, saved crash-safely. Private to
 * index/. */
#ifndef MB_VINDEX_H
#define MB_VINDEX_H

#include <stdint.h>

#include "mb_error.h"

typedef struct mb_vindex_t mb_vindex_t;

/* factory: a FAISS factory string for the inner index ("Flat"). */
mb_vindex_t *mb_vindex_new(int dim, const char *factory, mb_err_t *err);
/* Loads a saved index; fails (MB_EIO) on a missing/corrupt file or wrong dim. */
mb_vindex_t *mb_vindex_load(const char *path, int dim, mb_err_t *err);
void mb_vindex_destroy(mb_vindex_t **self_p);

int mb_vindex_add(mb_vindex_t *self, size_t n, const float *x, const int64_t *ids,
                  mb_err_t *err);
int mb_vindex_remove(mb_vindex_t *self, size_t n, const int64_t *ids, mb_err_t *err);
/* One query; labels -1 past the end of the results. */
int mb_vindex_search(const mb_vindex_t *self, const float *q, int k, float *scores,
                     int64_t *labels, mb_err_t *err);
int64_t mb_vindex_count(const mb_vindex_t *self);
/* Writes to path.tmp, fsyncs, renames over path, fsyncs the directory. */
int mb_vindex_save(const mb_vindex_t *self, const char *path, mb_err_t *err);

#endif
