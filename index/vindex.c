/* vindex.c — FAISS C API wrapper. */
#include "vindex.h"

#include <faiss/c_api/AutoTune_c.h>
#include <faiss/c_api/Index_c.h>
#include <faiss/c_api/error_c.h>
#include <faiss/c_api/impl/AuxIndexStructures_c.h>
#include <faiss/c_api/index_factory_c.h>
#include <faiss/c_api/index_io_c.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct mb_vindex_t {
    FaissIndex *index;
    int dim;
};

static int s_faiss_err(mb_err_t *err, int code, const char *what) {
    const char *m = faiss_get_last_error();
    return mb_err_set(err, code, "%s: %s", what, m ? m : "unknown FAISS error");
}

mb_vindex_t *mb_vindex_new(int dim, const char *factory, mb_err_t *err) {
    char desc[256];
    snprintf(desc, sizeof desc, "IDMap2,%s", factory);
    FaissIndex *idx = NULL;
    if (faiss_index_factory(&idx, dim, desc, METRIC_INNER_PRODUCT) != 0) {
        s_faiss_err(err, MB_EBADREQ, "cannot create FAISS index");
        return NULL;
    }
    mb_vindex_t *self = calloc(1, sizeof *self);
    self->index = idx;
    self->dim = dim;
    return self;
}

mb_vindex_t *mb_vindex_load(const char *path, int dim, mb_err_t *err) {
    if (access(path, R_OK) != 0) {
        mb_err_set(err, MB_EIO, "%s does not exist", path);
        return NULL;
    }
    FaissIndex *idx = NULL;
    if (faiss_read_index_fname(path, 0, &idx) != 0) {
        s_faiss_err(err, MB_EIO, "cannot read FAISS index");
        return NULL;
    }
    if (faiss_Index_d(idx) != dim) {
        mb_err_set(err, MB_EIO, "%s has dimension %d, the store says %d", path,
                   faiss_Index_d(idx), dim);
        faiss_Index_free(idx);
        return NULL;
    }
    mb_vindex_t *self = calloc(1, sizeof *self);
    self->index = idx;
    self->dim = dim;
    return self;
}

void mb_vindex_destroy(mb_vindex_t **self_p) {
    if (!self_p || !*self_p) return;
    faiss_Index_free((*self_p)->index);
    free(*self_p);
    *self_p = NULL;
}

int mb_vindex_add(mb_vindex_t *self, size_t n, const float *x, const int64_t *ids,
                  mb_err_t *err) {
    if (n == 0) return 0;
    if (faiss_Index_add_with_ids(self->index, (idx_t)n, x, ids) != 0)
        return s_faiss_err(err, MB_EINTERNAL, "FAISS add failed");
    return 0;
}

int mb_vindex_remove(mb_vindex_t *self, size_t n, const int64_t *ids, mb_err_t *err) {
    if (n == 0) return 0;
    FaissIDSelectorBatch *sel = NULL;
    if (faiss_IDSelectorBatch_new(&sel, n, ids) != 0)
        return s_faiss_err(err, MB_EINTERNAL, "FAISS selector failed");
    size_t removed = 0;
    int rc = faiss_Index_remove_ids(self->index, (FaissIDSelector *)sel, &removed);
    faiss_IDSelector_free((FaissIDSelector *)sel);
    if (rc != 0) return s_faiss_err(err, MB_EINTERNAL, "FAISS remove failed");
    return 0;
}

int mb_vindex_search(const mb_vindex_t *self, const float *q, int k, float *scores,
                     int64_t *labels, mb_err_t *err) {
    if (faiss_Index_search(self->index, 1, q, k, scores, labels) != 0)
        return s_faiss_err(err, MB_EINTERNAL, "FAISS search failed");
    return 0;
}

int64_t mb_vindex_count(const mb_vindex_t *self) {
    return faiss_Index_ntotal(self->index);
}

static int s_fsync_path(const char *path, int flags) {
    int fd = open(path, flags);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

int mb_vindex_save(const mb_vindex_t *self, const char *path, mb_err_t *err) {
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    if (faiss_write_index_fname(self->index, tmp) != 0)
        return s_faiss_err(err, MB_EIO, "cannot write FAISS index");
    if (s_fsync_path(tmp, O_RDONLY) != 0 || rename(tmp, path) != 0) {
        unlink(tmp);
        return mb_err_set(err, MB_EIO, "cannot install %s", path);
    }
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    s_fsync_path(dirname(dir), O_RDONLY | O_DIRECTORY);
    return 0;
}
