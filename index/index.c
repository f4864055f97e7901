/* index.c — store + FAISS kept in step. */
#include "index.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <pthread.h>
#include <time.h>

#include "fusion.h"
#include "mb_log.h"
#include "mb_mem.h"
#include "store.h"
#include "vindex.h"

/* Concurrency: any number of threads may search while one writes.
 *  - wlock: one writer at a time (adds, deletes, saves, upkeep); it uses the
 *    `store` connection.
 *  - vlock: the FAISS index; searches hold it shared, mutations and the swap
 *    of a rebuilt index hold it exclusively (never across SQLite I/O).
 *  - each searching thread has its own read connection (thread-local), and
 *    a search runs in one read transaction: a WAL snapshot, so its hits never
 *    mix two versions of a document. */
struct mb_index_t {
    char *dir;
    char factory[128];
    char faiss_path[4096];
    char store_path[4096];
    mb_store_t *store; /* the writer's connection */
    mb_vindex_t *vindex;
    int dim;
    volatile int dirty;
    pthread_mutex_t wlock;
    pthread_rwlock_t vlock;
    pthread_key_t rkey;
    pthread_mutex_t rlist_lock;
    mb_store_t **readers;
    size_t nreaders;
};

static int s_save(mb_index_t *self, mb_err_t *err);

/* The calling thread's read connection, opened on first use. */
static mb_store_t *s_reader(mb_index_t *self, mb_err_t *err) {
    mb_store_t *r = pthread_getspecific(self->rkey);
    if (r) return r;
    r = mb_store_open(self->store_path, self->dim, err);
    if (!r) return NULL;
    pthread_setspecific(self->rkey, r);
    pthread_mutex_lock(&self->rlist_lock);
    self->readers =
        mb_xrealloc(self->readers, (self->nreaders + 1) * sizeof *self->readers);
    self->readers[self->nreaders++] = r;
    pthread_mutex_unlock(&self->rlist_lock);
    return r;
}

static int64_t mb_clock_ms_index(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int s_add_cb(void *arg, size_t n, const int64_t *ids, const float *vecs,
                    mb_err_t *err) {
    return mb_vindex_add(arg, n, vecs, ids, err);
}

/* Reservoir sample of the stored vectors (fixed seed: reproducible). */
typedef struct {
    float *x;
    size_t cap, n, seen;
    uint64_t rng;
    int dim;
} sample_t;

static int s_sample_cb(void *arg, size_t n, const int64_t *ids, const float *vecs,
                       mb_err_t *err) {
    (void)ids;
    (void)err;
    sample_t *sm = arg;
    for (size_t i = 0; i < n; i++, sm->seen++) {
        size_t slot = sm->n;
        if (sm->n == sm->cap) {
            sm->rng = sm->rng * 6364136223846793005ULL + 1442695040888963407ULL;
            slot = (size_t)((sm->rng >> 11) % sm->seen);
            if (slot >= sm->cap) continue;
        } else {
            sm->n++;
        }
        memcpy(sm->x + slot * (size_t)sm->dim, vecs + i * (size_t)sm->dim,
               (size_t)sm->dim * sizeof(float));
    }
    return 0;
}

/* Trains fresh on a reservoir sample of the vectors each() yields (the
 * stored ones, or a re-embed's pending ones); wlock held. */
static int s_train(mb_index_t *self, mb_vindex_t *fresh,
                   int (*each)(mb_store_t *, mb_store_vec_fn *, void *, mb_err_t *),
                   int64_t total, mb_err_t *err) {
    int64_t t0 = mb_clock_ms_index(), need = mb_vindex_min_train(fresh);
    sample_t sm = {.cap = (size_t)(need * 4 > 200000 ? 200000 : need * 4),
                   .rng = 42,
                   .dim = self->dim};
    sm.x = malloc(sm.cap * (size_t)self->dim * sizeof(float));
    int rc = each(self->store, s_sample_cb, &sm, err);
    if (rc == 0) rc = mb_vindex_train(fresh, sm.n, sm.x, err);
    free(sm.x);
    if (rc == 0)
        mb_info("trained %s on %zu of %lld vectors in %lld ms", self->factory, sm.n,
                (long long)total, (long long)(mb_clock_ms_index() - t0));
    return rc;
}

/* Builds a new FAISS index of the configured type from the store (writer
 * connection; the caller holds wlock): trained on a reservoir sample when the
 * store has enough vectors, else the flat fallback. Searches keep using the
 * current index meanwhile; the caller swaps the result in. */
static int s_build(mb_index_t *self, mb_vindex_t **out, mb_err_t *err) {
    *out = NULL;
    mb_vindex_t *fresh = mb_vindex_new(self->dim, self->factory, err);
    if (!fresh) return err ? err->code : MB_EINTERNAL;
    int64_t chunks = mb_store_count_vectors(self->store);
    int64_t need = mb_vindex_min_train(fresh);
    int rc = 0;
    if (mb_vindex_untrained(fresh) && chunks >= need)
        rc = s_train(self, fresh, mb_store_each_vector, chunks, err);
    if (rc == 0) rc = mb_store_each_vector(self->store, s_add_cb, fresh, err);
    if (rc != 0) {
        mb_vindex_destroy(&fresh);
        return rc;
    }
    *out = fresh;
    return 0;
}

/* Replaces the FAISS index with a fresh build; wlock held. */
static int s_rebuild(mb_index_t *self, mb_err_t *err) {
    mb_vindex_t *fresh = NULL;
    int rc = s_build(self, &fresh, err);
    if (rc != 0) return rc;
    pthread_rwlock_wrlock(&self->vlock);
    mb_vindex_t *old = self->vindex;
    self->vindex = fresh;
    self->dirty = 1;
    pthread_rwlock_unlock(&self->vlock);
    mb_vindex_destroy(&old);
    return 0;
}

/* Once an untrained index type has enough vectors, train it (off to the
 * side) and switch; wlock held. */
static int s_maybe_train(mb_index_t *self, mb_err_t *err) {
    if (!mb_vindex_untrained(self->vindex)) return 0;
    if (mb_store_count_vectors(self->store) < mb_vindex_min_train(self->vindex)) return 0;
    int rc = s_rebuild(self, err);
    if (rc == 0) mb_info("%s now serves searches", self->factory);
    return rc;
}

/* Loads index.faiss if it is current, else rebuilds it from the store. */
static int s_load_or_rebuild(mb_index_t *self, mb_err_t *err) {
    int64_t gen = mb_store_meta_int(self->store, "generation", 0);
    int64_t fgen = mb_store_meta_int(self->store, "faiss_generation", -1);
    int64_t fcount = mb_store_meta_int(self->store, "faiss_count", -1);
    int fallback = (int)mb_store_meta_int(self->store, "faiss_fallback", 0);
    char ffactory[128];
    mb_store_meta_text(self->store, "faiss_factory", ffactory, sizeof ffactory);
    int64_t chunks = mb_store_count_vectors(self->store);
    mb_err_t lerr;
    const char *why = NULL;
    if (*ffactory && strcmp(ffactory, self->factory) != 0) {
        why = "the index type changed";
    } else {
        self->vindex =
            mb_vindex_load(self->faiss_path, self->dim, self->factory, fallback, &lerr);
        if (!self->vindex)
            why = lerr.msg;
        else if (fgen != gen)
            why = "it is older than the store (generation differs)";
        else if (mb_vindex_count(self->vindex) != fcount || fcount < chunks)
            why = "its vector count differs from what was saved";
    }
    if (!why) {
        /* vectors beyond the store's chunks are tombstones (HNSW deletes) */
        mb_vindex_set_stale(self->vindex, fcount - chunks);
        return 0;
    }
    if (chunks > 0 || self->vindex)
        mb_warn("rebuilding %s (%s) from the store: %s", self->faiss_path, self->factory,
                why);
    int rc = s_rebuild(self, err);
    if (rc != 0) return rc;
    if (chunks > 0)
        mb_info("rebuilt %s: %lld vectors", self->faiss_path, (long long)chunks);
    return s_save(self, err);
}

int mb_index_check_factory(int dim, const char *factory, mb_err_t *err) {
    mb_vindex_t *v = mb_vindex_new(dim, factory, err);
    if (!v) return err ? err->code : MB_EBADREQ;
    mb_vindex_destroy(&v);
    return 0;
}

mb_index_t *mb_index_open(const char *dir, int dim, const char *factory, mb_err_t *err) {
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        mb_err_set(err, MB_EIO, "cannot create %s: %s", dir, strerror(errno));
        return NULL;
    }
    mb_index_t *self = calloc(1, sizeof *self);
    self->dir = strdup(dir);
    char path[4096];
    snprintf(path, sizeof path, "%s/store.db", dir);
    snprintf(self->faiss_path, sizeof self->faiss_path, "%s/index.faiss", dir);
    snprintf(self->store_path, sizeof self->store_path, "%s", path);
    pthread_mutex_init(&self->wlock, NULL);
    pthread_rwlock_init(&self->vlock, NULL);
    pthread_mutex_init(&self->rlist_lock, NULL);
    pthread_key_create(&self->rkey, NULL);
    self->store = mb_store_open(path, dim, err);
    if (!self->store) goto fail;
    self->dim = mb_store_dim(self->store);
    /* The index type: as asked, else as the store last had it, else Flat. */
    char have[128];
    mb_store_meta_text(self->store, "faiss_factory", have, sizeof have);
    snprintf(self->factory, sizeof self->factory, "%s",
             factory && *factory ? factory : (*have ? have : "Flat"));
    if (mb_index_check_factory(self->dim, self->factory, err) != 0) goto fail;
    if (s_load_or_rebuild(self, err) != 0) goto fail;
    return self;
fail:
    mb_index_close(&self);
    return NULL;
}

void mb_index_close(mb_index_t **self_p) {
    if (!self_p || !*self_p) return;
    mb_index_t *self = *self_p;
    if (self->vindex && self->dirty) {
        mb_err_t err;
        if (s_save(self, &err) != 0) mb_warn("save on close failed: %s", err.msg);
    }
    mb_vindex_destroy(&self->vindex);
    mb_store_close(&self->store);
    /* the searching threads have stopped: close their connections */
    for (size_t i = 0; i < self->nreaders; i++)
        mb_store_close(&self->readers[i]);
    free(self->readers);
    pthread_key_delete(self->rkey);
    pthread_mutex_destroy(&self->wlock);
    pthread_rwlock_destroy(&self->vlock);
    pthread_mutex_destroy(&self->rlist_lock);
    free(self->dir);
    free(self);
    *self_p = NULL;
}

/* Writes the FAISS file and records what it holds; wlock held. Searches may
 * run meanwhile (writing the file only reads the index). */
static int s_save(mb_index_t *self, mb_err_t *err) {
    int64_t gen = mb_store_meta_int(self->store, "generation", 0);
    pthread_rwlock_rdlock(&self->vlock);
    int64_t count = mb_vindex_count(self->vindex);
    int untrained = mb_vindex_untrained(self->vindex);
    int rc = mb_vindex_save(self->vindex, self->faiss_path, err);
    pthread_rwlock_unlock(&self->vlock);
    /* Record what the file holds only after it is in place: a crash between
     * the two leaves the old record, and the next open rebuilds. */
    if (rc == 0) rc = mb_store_meta_set_int(self->store, "faiss_generation", gen, err);
    if (rc == 0) rc = mb_store_meta_set_int(self->store, "faiss_count", count, err);
    if (rc == 0)
        rc = mb_store_meta_set_int(self->store, "faiss_fallback", untrained, err);
    if (rc == 0)
        rc = mb_store_meta_set_text(self->store, "faiss_factory", self->factory, err);
    if (rc == 0) self->dirty = 0;
    return rc;
}

int mb_index_save(mb_index_t *self, mb_err_t *err) {
    pthread_mutex_lock(&self->wlock);
    int rc = s_save(self, err);
    pthread_mutex_unlock(&self->wlock);
    return rc;
}

int mb_index_maintain(mb_index_t *self, mb_err_t *err) {
    pthread_mutex_lock(&self->wlock);
    /* Tombstones cost search time and memory: rebuild once they are a fifth
     * of the index (HNSW cannot remove in place). */
    int64_t stale = mb_vindex_stale(self->vindex), n = mb_vindex_count(self->vindex);
    int rc = 0;
    if (stale > 0 && stale * 5 >= n) {
        mb_info("compacting %s: %lld of %lld vectors are deleted", self->faiss_path,
                (long long)stale, (long long)n);
        rc = s_rebuild(self, err);
    }
    if (rc == 0 && self->dirty) rc = s_save(self, err);
    pthread_mutex_unlock(&self->wlock);
    return rc;
}

int mb_index_dim(const mb_index_t *self) {
    return self->dim;
}

int mb_index_dirty(const mb_index_t *self) {
    return self->dirty;
}

int mb_index_needs(mb_index_t *self, const char *doc_id, const char *hash) {
    int64_t row;
    char have[80];
    mb_store_t *r = s_reader(self, NULL);
    int found = r ? mb_store_doc_find(r, doc_id, &row, have, NULL) : -1;
    return found != 1 || !hash || strcmp(have, hash) != 0;
}

int mb_index_docs_list(mb_index_t *self, const char *source_prefix, int64_t after,
                       size_t limit, json_t *out, mb_err_t *err) {
    mb_store_t *r = s_reader(self, err);
    if (!r) return err ? err->code : MB_EIO;
    return mb_store_docs_list(r, source_prefix, after, limit, out, err);
}

static int s_validate(const mb_index_t *self, const mb_doc_t *docs, size_t n,
                      mb_err_t *err) {
    for (size_t i = 0; i < n; i++) {
        const mb_doc_t *d = &docs[i];
        if (!d->doc_id || !*d->doc_id)
            return mb_err_set(err, MB_EBADREQ, "document %zu has an empty id", i);
        if (d->nchunks == 0)
            return mb_err_set(err, MB_EBADREQ, "document %s has no chunks", d->doc_id);
        for (size_t c = 0; c < d->nchunks; c++)
            if (!d->chunks[c] || !*d->chunks[c])
                return mb_err_set(err, MB_EBADREQ, "document %s chunk %zu has empty text",
                                  d->doc_id, c);
        if (!d->vectors != !docs[0].vectors)
            return mb_err_set(err, MB_EBADREQ,
                              "documents %s and %s: either every document has vectors or "
                              "none does",
                              docs[0].doc_id, d->doc_id);
        size_t nf = d->vectors ? d->nchunks * (size_t)self->dim : 0;
        for (size_t f = 0; f < nf; f++)
            if (!isfinite(d->vectors[f]))
                return mb_err_set(err, MB_EBADREQ,
                                  "document %s has a NaN or infinite vector component",
                                  d->doc_id);
    }
    return 0;
}

int mb_index_add(mb_index_t *self, const mb_doc_t *docs, size_t n, const char *expert,
                 mb_add_result_t *res, mb_err_t *err) {
    memset(res, 0, sizeof *res);
    int rc = s_validate(self, docs, n, err);
    if (rc != 0) return rc;
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += docs[i].nchunks;
    int64_t *new_ids = malloc((total ? total : 1) * sizeof *new_ids);
    float *new_vecs = malloc((total ? total : 1) * (size_t)self->dim * sizeof *new_vecs);
    int64_t *old_ids = NULL;
    size_t nnew = 0, nold = 0, oldcap = 0;

    int with_vectors = n > 0 && docs[0].vectors;
    pthread_mutex_lock(&self->wlock);
    {
        /* One expert per domain: a vector is only comparable with vectors of
         * the same version. The first vectors a domain gets set it. */
        char have[192];
        mb_store_meta_text(self->store, "expert", have, sizeof have);
        if (*have && with_vectors && strcmp(have, expert ? expert : "") != 0) {
            rc = mb_err_set(err, MB_EVERSION,
                            "vectors made by expert %s; the domain's expert is now %s: "
                            "embed again",
                            expert ? expert : "(none)", have);
            goto unlock;
        }
        if (*have && !with_vectors && n > 0) {
            rc = mb_err_set(err, MB_EVERSION,
                            "the domain's expert %s is fitted: send vectors", have);
            goto unlock;
        }
        if ((rc = mb_store_begin(self->store, err)) != 0) goto unlock;
        if (!*have && with_vectors && expert && *expert)
            rc = mb_store_meta_set_text(self->store, "expert", expert, err);
    }
    for (size_t i = 0; i < n && rc == 0; i++) {
        const mb_doc_t *d = &docs[i];
        int64_t row;
        char hash[80];
        int found = mb_store_doc_find(self->store, d->doc_id, &row, hash, err);
        if (found < 0) {
            rc = found;
            break;
        }
        if (found && d->hash && strcmp(hash, d->hash) == 0) {
            res->unchanged++;
            continue;
        }
        if (found) {
            int64_t *ids = NULL;
            size_t nids = 0;
            if ((rc = mb_store_doc_chunks(self->store, row, &ids, &nids, err)) != 0)
                break;
            if (nold + nids > oldcap) {
                oldcap = (nold + nids) * 2;
                old_ids = mb_xrealloc(old_ids, oldcap * sizeof *old_ids);
            }
            memcpy(old_ids + nold, ids, nids * sizeof *ids);
            nold += nids;
            free(ids);
            if ((rc = mb_store_doc_delete(self->store, row, err)) != 0) break;
            res->replaced++;
        } else {
            res->added++;
        }
        if ((rc = mb_store_doc_insert(self->store, d->doc_id, d->source, d->hash, d->meta,
                                      &row, err)) != 0)
            break;
        for (size_t c = 0; c < d->nchunks && rc == 0; c++) {
            const float *v = d->vectors ? d->vectors + c * (size_t)self->dim : NULL;
            int64_t id;
            rc = mb_store_chunk_insert(self->store, row, (int)c, d->chunks[c], v, expert,
                                       &id, err);
            res->chunks++;
            if (!v) continue; /* stored for lexical search only */
            new_ids[nnew] = id;
            memcpy(new_vecs + nnew * (size_t)self->dim, v,
                   (size_t)self->dim * sizeof(float));
            nnew++;
        }
    }
    if (rc == 0 && (res->chunks > 0 || nold > 0)) {
        int64_t gen = mb_store_meta_int(self->store, "generation", 0) + 1;
        rc = mb_store_meta_set_int(self->store, "generation", gen, err);
    }
    if (rc != 0) {
        mb_store_rollback(self->store);
        memset(res, 0, sizeof *res);
        goto unlock;
    }
    if ((rc = mb_store_commit(self->store, err)) != 0) {
        mb_store_rollback(self->store);
        memset(res, 0, sizeof *res);
        goto unlock;
    }
    /* Committed: the store is the truth now. Apply to FAISS; if that fails
     * the next open rebuilds from the store, so report but keep the data. */
    if (nnew || nold) self->dirty = 1;
    pthread_rwlock_wrlock(&self->vlock);
    if ((rc = mb_vindex_remove(self->vindex, nold, old_ids, err)) >= 0)
        rc = mb_vindex_add(self->vindex, nnew, new_vecs, new_ids, err);
    pthread_rwlock_unlock(&self->vlock);
    if (rc == 0) rc = s_maybe_train(self, err);
unlock:
    pthread_mutex_unlock(&self->wlock);
    free(new_ids);
    free(new_vecs);
    free(old_ids);
    return rc;
}

/* Dense channel. FAISS 1.7.3's C API cannot restrict a search to an id set,
 * so a filtered search over-fetches and filters the hits through the store,
 * growing the fetch (x4) until k hits pass or the whole index was seen: the
 * answer is exact, the cost grows only as the filter gets selective. */
static int s_dense(mb_index_t *self, const float *q, int k, const mb_filter_t *filter,
                   const mb_search_params_t *params, json_t **results, mb_err_t *err) {
    *results = NULL;
    if (k <= 0 || k > MB_INDEX_MAX_K)
        return mb_err_set(err, MB_EBADREQ, "k must be in 1..%d", MB_INDEX_MAX_K);
    double norm = 0;
    for (int i = 0; i < self->dim; i++) {
        if (!isfinite(q[i]))
            return mb_err_set(err, MB_EBADREQ,
                              "query vector has a NaN or infinite component");
        norm += (double)q[i] * q[i];
    }
    /* The zero vector (no word of the query is known to the expert) is
     * equally far from everything: no dense hits rather than arbitrary ones. */
    if (norm == 0) {
        *results = json_array();
        return 0;
    }
    mb_store_t *reader = s_reader(self, err);
    if (!reader) return err ? err->code : MB_EIO;
    mb_lookup_t *lk = mb_store_lookup_new(reader, filter, err);
    if (!lk) return err ? err->code : MB_EIO;
    pthread_rwlock_rdlock(&self->vlock);
    int64_t total = mb_vindex_count(self->vindex);
    /* Over-fetch when hits may be dropped: filters, or tombstones. */
    int64_t fetch = (filter || mb_vindex_stale(self->vindex) > 0) ? (int64_t)k * 4 : k;
    pthread_rwlock_unlock(&self->vlock);
    if (fetch < k) fetch = k;
    int rc = 0;
    for (;;) {
        if (fetch > total) fetch = total > k ? total : k;
        float *scores = malloc((size_t)fetch * sizeof *scores);
        int64_t *labels = malloc((size_t)fetch * sizeof *labels);
        pthread_rwlock_rdlock(&self->vlock);
        rc = mb_vindex_search(self->vindex, q, (int)fetch, params, scores, labels, err);
        pthread_rwlock_unlock(&self->vlock);
        json_t *arr = rc == 0 ? json_array() : NULL;
        for (int64_t i = 0; rc == 0 && i < fetch && labels[i] >= 0; i++) {
            if ((int)json_array_size(arr) == k) break;
            json_t *hit = mb_store_lookup(lk, labels[i]);
            if (!hit) continue; /* filtered out, or deleted under us */
            json_object_set_new(hit, "score", json_real(scores[i]));
            json_array_append_new(arr, hit);
        }
        free(scores);
        free(labels);
        if (rc != 0) break;
        if ((int)json_array_size(arr) == k || fetch >= total) {
            *results = arr;
            break;
        }
        json_decref(arr);
        fetch *= 4;
    }
    mb_store_lookup_destroy(&lk);
    return rc;
}

int mb_index_search(mb_index_t *self, const float *q, int k, json_t **results,
                    mb_err_t *err) {
    return s_dense(self, q, k, NULL, NULL, results, err);
}

int mb_index_delete(mb_index_t *self, const char *const *doc_ids, size_t n,
                    size_t *chunks, mb_err_t *err) {
    *chunks = 0;
    int64_t *old = NULL;
    size_t nold = 0, cap = 0;
    pthread_mutex_lock(&self->wlock);
    int rc = mb_store_begin(self->store, err);
    if (rc != 0) {
        pthread_mutex_unlock(&self->wlock);
        return rc;
    }
    for (size_t i = 0; i < n && rc == 0; i++) {
        int64_t row;
        char hash[80];
        int found = mb_store_doc_find(self->store, doc_ids[i], &row, hash, err);
        if (found < 0) {
            rc = found;
            break;
        }
        if (!found) {
            rc = mb_err_set(err, MB_ENOTFOUND, "no document '%s' (nothing was deleted)",
                            doc_ids[i]);
            break;
        }
        int64_t *ids = NULL;
        size_t nids = 0;
        if ((rc = mb_store_doc_chunks(self->store, row, &ids, &nids, err)) != 0) break;
        if (nold + nids > cap)
            old = mb_xrealloc(old, (cap = (nold + nids) * 2) * sizeof *old);
        memcpy(old + nold, ids, nids * sizeof *ids);
        nold += nids;
        free(ids);
        rc = mb_store_doc_delete(self->store, row, err);
    }
    if (rc == 0) {
        int64_t gen = mb_store_meta_int(self->store, "generation", 0) + 1;
        rc = mb_store_meta_set_int(self->store, "generation", gen, err);
    }
    if (rc == 0) rc = mb_store_commit(self->store, err);
    if (rc != 0) {
        mb_store_rollback(self->store);
        pthread_mutex_unlock(&self->wlock);
        free(old);
        return rc;
    }
    self->dirty = 1;
    *chunks = nold;
    pthread_rwlock_wrlock(&self->vlock);
    rc = mb_vindex_remove(self->vindex, nold, old, err);
    pthread_rwlock_unlock(&self->vlock);
    pthread_mutex_unlock(&self->wlock);
    free(old);
    return rc > 0 ? 0 : rc; /* tombstones are fine: searches skip them */
}

int mb_search_mode_parse(const char *s) {
    if (!s) return -1;
    if (strcmp(s, "dense") == 0) return MB_MODE_DENSE;
    if (strcmp(s, "lexical") == 0) return MB_MODE_LEXICAL;
    if (strcmp(s, "hybrid") == 0) return MB_MODE_HYBRID;
    return -1;
}

/* Lexical channel as a JSON list of hits, best first. */
static int s_lexical(mb_index_t *self, const char *query, const mb_filter_t *filter,
                     int k, json_t **out, mb_err_t *err) {
    int64_t *ids = malloc((size_t)k * sizeof *ids);
    double *scores = malloc((size_t)k * sizeof *scores);
    int n = 0;
    mb_store_t *reader = s_reader(self, err);
    int rc = reader ? mb_store_lexical(reader, query, filter, k, ids, scores, &n, err)
                    : MB_EIO;
    if (rc == 0) {
        *out = json_array();
        for (int i = 0; i < n; i++) {
            json_t *hit = mb_store_chunk_json(reader, ids[i]);
            if (!hit) continue;
            json_object_set_new(hit, "score", json_real(scores[i]));
            json_array_append_new(*out, hit);
        }
    }
    free(ids);
    free(scores);
    return rc;
}

/* Copies each hit's "score" into `channel` so a fused result keeps both. */
static void s_tag(json_t *list, const char *channel) {
    size_t i;
    json_t *hit;
    json_array_foreach(list, i, hit)
        json_object_set(hit, channel, json_object_get(hit, "score"));
}

static int s_query(mb_index_t *self, const mb_query_t *q, json_t **results,
                   mb_err_t *err);

int mb_index_query(mb_index_t *self, const mb_query_t *q, json_t **results,
                   mb_err_t *err) {
    mb_store_t *reader = s_reader(self, err);
    if (!reader) return err ? err->code : MB_EIO;
    /* one read transaction = one snapshot for every lookup of this search */
    mb_store_read_begin(reader);
    int rc = s_query(self, q, results, err);
    mb_store_read_end(reader);
    return rc;
}

static int s_query(mb_index_t *self, const mb_query_t *q, json_t **results,
                   mb_err_t *err) {
    *results = NULL;
    if (q->k <= 0 || q->k > MB_INDEX_MAX_K)
        return mb_err_set(err, MB_EBADREQ, "k must be in 1..%d", MB_INDEX_MAX_K);
    int need_vec = q->mode != MB_MODE_LEXICAL, need_text = q->mode != MB_MODE_DENSE;
    if (need_vec && !q->vector && q->mode == MB_MODE_DENSE)
        return mb_err_set(err, MB_EBADREQ, "dense search needs a query vector");
    if (need_text && (!q->query || !*q->query))
        return mb_err_set(err, MB_EBADREQ,
                          "lexical and hybrid search need the query text");
    if (q->mode == MB_MODE_DENSE)
        return s_dense(self, q->vector, q->k, q->filter, &q->params, results, err);
    if (q->mode == MB_MODE_LEXICAL)
        return s_lexical(self, q->query, q->filter, q->k, results, err);
    /* Hybrid: fusion needs more than k candidates per channel to work with. */
    int kc = q->k * 2 < 50 ? 50 : q->k * 2;
    if (kc > MB_INDEX_MAX_K) kc = MB_INDEX_MAX_K;
    json_t *lists[2] = {NULL, NULL};
    /* hybrid without a vector (the expert is not fitted yet): lexical only */
    int rc = q->vector
                 ? s_dense(self, q->vector, kc, q->filter, &q->params, &lists[0], err)
                 : 0;
    if (!lists[0]) lists[0] = json_array();
    if (rc == 0) rc = s_lexical(self, q->query, q->filter, kc, &lists[1], err);
    if (rc == 0) {
        s_tag(lists[0], "dense");
        s_tag(lists[1], "lexical");
        if (q->fusion == MB_FUSION_WEIGHTED)
            *results = mb_fusion_weighted(lists[0], lists[1], q->alpha, q->k);
        else if (q->fusion == MB_FUSION_RRF)
            *results = mb_fusion_rrf(lists, NULL, 2, q->k, q->rrf_k > 0 ? q->rrf_k : 60);
        else
            *results = mb_fusion_convex(lists[0], lists[1], q->alpha, q->k);
    }
    json_decref(lists[0]);
    json_decref(lists[1]);
    return rc;
}

void mb_index_expert(mb_index_t *self, char *buf, size_t bufsz) {
    mb_store_t *r = s_reader(self, NULL);
    if (!r) r = self->store;
    mb_store_meta_text(r, "expert", buf, bufsz);
}

int mb_index_each_text(mb_index_t *self,
                       int (*fn)(void *arg, int64_t id, const char *text), void *arg,
                       mb_err_t *err) {
    mb_store_t *r = s_reader(self, err);
    if (!r) return err ? err->code : MB_EIO;
    mb_store_read_begin(r); /* one snapshot */
    int rc = mb_store_each_text(r, fn, arg, err);
    mb_store_read_end(r);
    return rc;
}

/* Embeds up to batch chunks that have no pending vector; wlock is taken
 * for the two store steps only unless held (the final catch-up). Returns
 * the number embedded (0: none left) or a negative error code. */
static int64_t s_reembed_batch(mb_index_t *self, size_t batch, int held,
                               mb_index_embed_fn *embed, void *arg, mb_vindex_t *into,
                               mb_err_t *err) {
    int64_t *ids = NULL;
    char **texts = NULL;
    size_t n = 0;
    if (!held) pthread_mutex_lock(&self->wlock);
    int rc = mb_store_unembedded(self->store, batch, &ids, &texts, &n, err);
    if (!held) pthread_mutex_unlock(&self->wlock);
    float *v = NULL;
    if (rc == 0 && n > 0) {
        v = malloc(n * (size_t)self->dim * sizeof *v);
        rc = embed(arg, (const char *const *)texts, n, v, err);
        for (size_t i = 0; rc == 0 && i < n * (size_t)self->dim; i++)
            if (!isfinite(v[i]))
                rc = mb_err_set(err, MB_EINTERNAL, "the expert produced a NaN");
    }
    if (rc == 0 && n > 0) {
        if (!held) pthread_mutex_lock(&self->wlock);
        if ((rc = mb_store_begin(self->store, err)) == 0) {
            rc = mb_store_pending_put(self->store, n, ids, v, err);
            if (rc == 0)
                rc = mb_store_commit(self->store, err);
            else
                mb_store_rollback(self->store);
        }
        if (!held) pthread_mutex_unlock(&self->wlock);
        if (rc == 0 && into) rc = mb_vindex_add(into, n, v, ids, err);
    }
    for (size_t i = 0; i < n; i++)
        free(texts[i]);
    free(texts);
    free(ids);
    free(v);
    return rc != 0 ? -(int64_t)abs(rc) : (int64_t)n;
}

static int s_pending_add_cb(void *arg, size_t n, const int64_t *ids, const float *vecs,
                            mb_err_t *err) {
    return mb_vindex_add(arg, n, vecs, ids, err);
}

int mb_index_reembed(mb_index_t *self, const char *version, mb_index_embed_fn *embed,
                     mb_index_progress_fn *progress, void *arg, volatile int *cancel,
                     mb_err_t *err) {
    enum { BATCH = 512 };
    int rc = 0;
    int64_t t0 = mb_clock_ms_index();
    /* Resume only a run for the same expert version. */
    pthread_mutex_lock(&self->wlock);
    char was[192];
    mb_store_meta_text(self->store, "pending_expert", was, sizeof was);
    if (strcmp(was, version) != 0) {
        if ((rc = mb_store_begin(self->store, err)) == 0) {
            rc = mb_store_pending_clear(self->store, err);
            if (rc == 0)
                rc = mb_store_meta_set_text(self->store, "pending_expert", version, err);
            if (rc == 0)
                rc = mb_store_commit(self->store, err);
            else
                mb_store_rollback(self->store);
        }
    }
    int64_t total = mb_store_count_chunks(self->store);
    int64_t done = mb_store_count_pending(self->store);
    pthread_mutex_unlock(&self->wlock);
    if (rc != 0) return rc;
    if (done > 0)
        mb_info("re-embed to %s: resuming at %lld of %lld chunks", version,
                (long long)done, (long long)total);
    /* Phase 1: the bulk, writes interleaved. */
    for (;;) {
        if (cancel && *cancel) return mb_err_set(err, MB_EUNAVAIL, "re-embed cancelled");
        int64_t got = s_reembed_batch(self, BATCH, 0, embed, arg, NULL, err);
        if (got < 0) return (int)-got;
        if (got == 0) break;
        done += got;
        if (progress) progress(arg, done, total > done ? total : done);
    }
    /* Phase 2: with writes held, catch up and build the new index. */
    pthread_mutex_lock(&self->wlock);
    mb_vindex_t *fresh = mb_vindex_new(self->dim, self->factory, err);
    if (!fresh) {
        pthread_mutex_unlock(&self->wlock);
        return err ? err->code : MB_EINTERNAL;
    }
    int64_t got;
    while ((got = s_reembed_batch(self, BATCH, 1, embed, arg, NULL, err)) > 0)
        done += got;
    if (got < 0) rc = (int)-got;
    int64_t have = rc == 0 ? mb_store_count_pending(self->store) : 0;
    int64_t need = mb_vindex_min_train(fresh);
    if (rc == 0 && mb_vindex_untrained(fresh) && have >= need)
        rc = s_train(self, fresh, mb_store_each_pending, have, err);
    if (rc == 0) rc = mb_store_each_pending(self->store, s_pending_add_cb, fresh, err);
    if (rc == 0 && (rc = mb_store_begin(self->store, err)) == 0) {
        rc = mb_store_pending_apply(self->store, version, err);
        if (rc == 0) rc = mb_store_meta_set_text(self->store, "expert", version, err);
        if (rc == 0) rc = mb_store_meta_set_text(self->store, "pending_expert", "", err);
        if (rc == 0) {
            int64_t gen = mb_store_meta_int(self->store, "generation", 0) + 1;
            rc = mb_store_meta_set_int(self->store, "generation", gen, err);
        }
        if (rc == 0)
            rc = mb_store_commit(self->store, err);
        else
            mb_store_rollback(self->store);
    }
    if (rc == 0) {
        pthread_rwlock_wrlock(&self->vlock);
        mb_vindex_t *old = self->vindex;
        self->vindex = fresh;
        fresh = NULL;
        self->dirty = 1;
        pthread_rwlock_unlock(&self->vlock);
        mb_vindex_destroy(&old);
        rc = s_save(self, err);
    }
    pthread_mutex_unlock(&self->wlock);
    mb_vindex_destroy(&fresh);
    if (rc == 0)
        mb_info("re-embedded %lld chunks with %s in %lld ms", (long long)have, version,
                (long long)(mb_clock_ms_index() - t0));
    return rc;
}

json_t *mb_index_stats(mb_index_t *self) {
    struct stat st;
    int64_t file = stat(self->faiss_path, &st) == 0 ? (int64_t)st.st_size : 0;
    mb_store_t *r = s_reader(self, NULL);
    if (!r) r = self->store; /* cannot open a reader: fall back (rare) */
    pthread_rwlock_rdlock(&self->vlock);
    int untrained = mb_vindex_untrained(self->vindex);
    int64_t vectors = mb_vindex_count(self->vindex),
            stale = mb_vindex_stale(self->vindex);
    int64_t train_at = untrained ? mb_vindex_min_train(self->vindex) : 0;
    pthread_rwlock_unlock(&self->vlock);
    /* A FAISS index's serialised size is close to its size in memory, so the
     * file of the last save stands in for memory use. */
    char expert[192];
    mb_store_meta_text(r, "expert", expert, sizeof expert);
    return json_pack(
        "{s:s, s:I, s:I, s:I, s:I, s:I, s:i, s:s, s:b, s:s, s:I, s:I, s:I, s:I, s:I}",
        "expert", expert, "vectors_stored", (json_int_t)mb_store_count_vectors(r),
        "documents", (json_int_t)mb_store_count_docs(r), "chunks",
        (json_int_t)mb_store_count_chunks(r), "vectors", (json_int_t)vectors, "stale",
        (json_int_t)stale, "dim", self->dim, "index_type", self->factory, "trained",
        !untrained, "serving", untrained ? "Flat (until trained)" : self->factory,
        "train_at", (json_int_t)train_at, "generation",
        (json_int_t)mb_store_meta_int(r, "generation", 0), "store_bytes",
        (json_int_t)mb_store_disk_bytes(r), "index_file_bytes", (json_int_t)file,
        "memory_bytes_estimate", (json_int_t)file);
}
