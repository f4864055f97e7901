/* vindex.c — FAISS C API wrapper: any factory string, training fallback,
 * tombstones, per-search parameters. */
#include "vindex.h"

#include <faiss/c_api/AutoTune_c.h>
#include <faiss/c_api/Index_c.h>
#include <faiss/c_api/error_c.h>
#include <faiss/c_api/impl/AuxIndexStructures_c.h>
#include <faiss/c_api/index_factory_c.h>
#include <faiss/c_api/index_io_c.h>
#include <fcntl.h>
#include <libgen.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Defaults chosen for recall: FAISS's own (nprobe 1, efSearch 16) trade far
 * too much recall for speed for a retrieval service. efSearch 256 is the
 * smallest that reached recall@10 >= 0.95 on a real corpus in bench_index
 * (dict/english, 8,000 entries: 128 gave 0.886, 256 gave 0.953). */
#define MB_DEFAULT_NPROBE 32
#define MB_DEFAULT_EFSEARCH 256

struct mb_vindex_t {
    FaissIndex *main;     /* IDMap2,<factory>, or <factory> for IVF types */
    FaissIndex *fallback; /* IDMap2,Flat while main is untrained, else NULL */
    int dim;
    char factory[128];
    int64_t stale;
    int has_nprobe, has_efsearch;
    /* Search parameters are fields of the index: a search that overrides them
     * holds this lock so concurrent searches never see each other's values. */
    pthread_mutex_t param_lock;
};

static int s_faiss_err(mb_err_t *err, int code, const char *what) {
    const char *m = faiss_get_last_error();
    return mb_err_set(err, code, "%s: %s", what, m ? m : "unknown FAISS error");
}

static FaissIndex *s_active(const mb_vindex_t *self) {
    return self->fallback ? self->fallback : self->main;
}

/* IVF indexes store ids natively, and must: IDMap2's remove_ids compacts its
 * id map as if the inner index renumbered its vectors the way Flat does, which
 * IVF does not, so after a delete every later id is off by the removals (the
 * DESIGN.md pitfall; test_index_types catches it). Everything else needs the
 * IDMap2 wrapper to carry the store's chunk ids. */
static FaissIndex *s_make(int dim, const char *factory, mb_err_t *err) {
    char desc[256];
    snprintf(desc, sizeof desc, "%s%s", strstr(factory, "IVF") ? "" : "IDMap2,", factory);
    FaissIndex *idx = NULL;
    if (faiss_index_factory(&idx, dim, desc, METRIC_INNER_PRODUCT) != 0) {
        s_faiss_err(err, MB_EBADREQ, "invalid FAISS index type");
        return NULL;
    }
    return idx;
}

/* Sets a parameter if the index has it; returns 1 if it did. */
static int s_set_param(FaissIndex *idx, const char *name, double v) {
    FaissParameterSpace *ps = NULL;
    if (faiss_ParameterSpace_new(&ps) != 0) return 0;
    int ok = faiss_ParameterSpace_set_index_parameter(ps, idx, name, v) == 0;
    faiss_ParameterSpace_free(ps);
    return ok;
}

/* Which parameters the index has follows from its factory string; asking
 * FAISS to set one it lacks works too but prints an error line each time. */
static void s_defaults(mb_vindex_t *self) {
    self->has_nprobe = strstr(self->factory, "IVF") &&
                       s_set_param(self->main, "nprobe", MB_DEFAULT_NPROBE);
    self->has_efsearch = strstr(self->factory, "HNSW") &&
                         s_set_param(self->main, "efSearch", MB_DEFAULT_EFSEARCH);
}

static mb_vindex_t *s_new(int dim, const char *factory) {
    mb_vindex_t *self = calloc(1, sizeof *self);
    self->dim = dim;
    snprintf(self->factory, sizeof self->factory, "%s", factory);
    pthread_mutex_init(&self->param_lock, NULL);
    return self;
}

mb_vindex_t *mb_vindex_new(int dim, const char *factory, mb_err_t *err) {
    FaissIndex *main = s_make(dim, factory, err);
    if (!main) return NULL;
    mb_vindex_t *self = s_new(dim, factory);
    self->main = main;
    if (!faiss_Index_is_trained(main)) {
        self->fallback = s_make(dim, "Flat", err);
        if (!self->fallback) {
            mb_vindex_destroy(&self);
            return NULL;
        }
    }
    s_defaults(self);
    return self;
}

mb_vindex_t *mb_vindex_load(const char *path, int dim, const char *factory, int fallback,
                            mb_err_t *err) {
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
    mb_vindex_t *self = NULL;
    if (fallback) {
        self = mb_vindex_new(dim, factory, err);
        if (!self || !self->fallback) {
            faiss_Index_free(idx);
            mb_vindex_destroy(&self);
            mb_err_set(err, MB_EIO, "%s holds a fallback but %s needs no training", path,
                       factory);
            return NULL;
        }
        faiss_Index_free(self->fallback);
        self->fallback = idx;
    } else {
        self = s_new(dim, factory);
        self->main = idx;
        s_defaults(self);
    }
    return self;
}

void mb_vindex_destroy(mb_vindex_t **self_p) {
    if (!self_p || !*self_p) return;
    mb_vindex_t *self = *self_p;
    if (self->main) faiss_Index_free(self->main);
    if (self->fallback) faiss_Index_free(self->fallback);
    pthread_mutex_destroy(&self->param_lock);
    free(self);
    *self_p = NULL;
}

int mb_vindex_add(mb_vindex_t *self, size_t n, const float *x, const int64_t *ids,
                  mb_err_t *err) {
    if (n == 0) return 0;
    if (faiss_Index_add_with_ids(s_active(self), (idx_t)n, x, ids) != 0)
        return s_faiss_err(err, MB_EINTERNAL, "FAISS add failed");
    return 0;
}

int mb_vindex_remove(mb_vindex_t *self, size_t n, const int64_t *ids, mb_err_t *err) {
    if (n == 0) return 0;
    FaissIDSelectorBatch *sel = NULL;
    if (faiss_IDSelectorBatch_new(&sel, n, ids) != 0)
        return s_faiss_err(err, MB_EINTERNAL, "FAISS selector failed");
    size_t removed = 0;
    int rc = faiss_Index_remove_ids(s_active(self), (FaissIDSelector *)sel, &removed);
    faiss_IDSelector_free((FaissIDSelector *)sel);
    if (rc != 0) {
        /* HNSW and some others cannot remove: keep tombstones. */
        self->stale += (int64_t)n;
        return 1;
    }
    return 0;
}

int mb_vindex_search(const mb_vindex_t *self, const float *q, int k,
                     const mb_search_params_t *params, float *scores, int64_t *labels,
                     mb_err_t *err) {
    FaissIndex *idx = s_active(self);
    int custom =
        params && !self->fallback && (params->nprobe > 0 || params->efsearch > 0);
    if (custom) {
        if (params->nprobe > 0 && !self->has_nprobe)
            return mb_err_set(err, MB_EBADREQ, "nprobe does not apply to index type %s",
                              self->factory);
        if (params->efsearch > 0 && !self->has_efsearch)
            return mb_err_set(err, MB_EBADREQ, "efSearch does not apply to index type %s",
                              self->factory);
        pthread_mutex_lock((pthread_mutex_t *)&self->param_lock);
        if (params->nprobe > 0) s_set_param(idx, "nprobe", params->nprobe);
        if (params->efsearch > 0) s_set_param(idx, "efSearch", params->efsearch);
    }
    int rc = faiss_Index_search(idx, 1, q, k, scores, labels);
    if (custom) {
        if (params->nprobe > 0) s_set_param(idx, "nprobe", MB_DEFAULT_NPROBE);
        if (params->efsearch > 0) s_set_param(idx, "efSearch", MB_DEFAULT_EFSEARCH);
        pthread_mutex_unlock((pthread_mutex_t *)&self->param_lock);
    }
    if (rc != 0) return s_faiss_err(err, MB_EINTERNAL, "FAISS search failed");
    return 0;
}

int64_t mb_vindex_count(const mb_vindex_t *self) {
    return faiss_Index_ntotal(s_active(self));
}

int64_t mb_vindex_stale(const mb_vindex_t *self) {
    return self->stale;
}

void mb_vindex_set_stale(mb_vindex_t *self, int64_t stale) {
    self->stale = stale > 0 ? stale : 0;
}

int mb_vindex_untrained(const mb_vindex_t *self) {
    return self->fallback != NULL;
}

int64_t mb_vindex_min_train(const mb_vindex_t *self) {
    /* FAISS's k-means wants 39 points per centroid. */
    int64_t need = 0;
    const char *ivf = strstr(self->factory, "IVF");
    if (ivf) need = 39 * strtol(ivf + 3, NULL, 10);
    const char *pq = strstr(self->factory, "PQ");
    if (pq) {
        char *end = NULL;
        strtol(pq + 2, &end, 10);
        long bits = (end && *end == 'x') ? strtol(end + 1, NULL, 10) : 8;
        if (bits < 1 || bits > 16) bits = 8;
        int64_t pq_need = 39 * ((int64_t)1 << bits);
        if (need < pq_need) need = pq_need;
    }
    return need > 0 ? need : 1000;
}

int mb_vindex_train(mb_vindex_t *self, size_t n, const float *x, mb_err_t *err) {
    if (!self->fallback) return 0;
    if (faiss_Index_train(self->main, (idx_t)n, x) != 0)
        return s_faiss_err(err, MB_EINTERNAL, "FAISS training failed");
    faiss_Index_free(self->fallback);
    self->fallback = NULL;
    self->stale = 0;
    s_defaults(self);
    return 0;
}

const char *mb_vindex_factory(const mb_vindex_t *self) {
    return self->factory;
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
    if (faiss_write_index_fname(s_active(self), tmp) != 0)
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
