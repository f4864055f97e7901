/* index_worker.c — `moebus index --domain D`: serves index.<D>.
 *
 *   {"op":"add","dim":D,"docs":[{"id","source","hash","meta","chunks":[..]}]}
 *       + one frame with every chunk's vector, in order
 *   {"op":"needs","docs":[{"id","hash"}]}  -> {"needed":[ids to (re)send]}
 *   {"op":"search","dim":D,"k":K} + one frame with the query vector
 *       "expert": version of the query vector (optional; a mismatch is
 *       `version`: the domain's expert changed, embed again)
 *   {"op":"stats"}                         counts + the expert job's state
 *   {"op":"refit"}                         fit / re-embed now (lifecycle.h)
 * The FAISS file is saved after writes go quiet and on shutdown; a crash in
 * between is repaired from the store on the next start (see index.h).
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "home.h"
#include "index.h"
#include "lifecycle.h"
#include "mb_log.h"
#include "mb_mdp.h"
#include "services.h"
#include "svc.h"

#define MAX_DOCS 10000
#define SAVE_AFTER_QUIET_MS 2000

static const char *s_usage =
    "usage: moebus index --domain NAME [--home DIR] [--endpoint E]\n"
    "Environment: MOEBUS_INDEX_THREADS (default 2) threads serve requests in\n"
    "parallel: searches run side by side, writes one at a time.\n"
    "\n"
    "Serves index.NAME on the bus: the domain's document store (SQLite) and\n"
    "vector index (FAISS) under HOME/domains/NAME.\n"
    "\n"
    "  --domain NAME   domain to serve (required)\n"
    "  --home DIR      moebus home (default $MOEBUS_HOME or ./moebus-data)\n"
    "  --endpoint E    broker endpoint (default $MOEBUS_ENDPOINT or "
    "tcp://127.0.0.1:5555)\n";

typedef struct {
    mb_index_t *index; /* thread-safe: searches in parallel, one writer */
    mb_lifecycle_t *lc;
    _Atomic int64_t last_write_ms;
} state_t;

static mb_body_t *s_add(state_t *st, mb_body_t *req) {
    json_t *j = mb_body_json(req);
    int dim = mb_index_dim(st->index);
    json_t *docs = json_object_get(j, "docs");
    if (!json_is_array(docs) || json_array_size(docs) == 0)
        return mb_body_error(MB_EBADREQ, "\"docs\" must be a non-empty array");
    size_t n = json_array_size(docs);
    if (n > MAX_DOCS)
        return mb_body_error(MB_EBADREQ, "at most %d docs per add, got %zu", MAX_DOCS, n);
    if (mb_json_int(j, "dim", 0) != dim)
        return mb_body_error(MB_EBADREQ, "\"dim\" must be the domain's dimension %d",
                             dim);
    size_t nfloats = 0;
    const float *vecs = mb_body_vectors(req, 0, &nfloats);
    /* no frame: text only (the domain's expert is not fitted yet) */
    if (mb_body_vector_frames(req) > 1 || (mb_body_vector_frames(req) == 1 && !vecs))
        return mb_body_error(MB_EBADREQ, "add takes one vector frame (or none)");
    mb_doc_t *dv = calloc(n, sizeof *dv);
    const char **texts = NULL;
    size_t total = 0;
    mb_body_t *reply = NULL;
    for (size_t i = 0; i < n; i++) {
        json_t *d = json_array_get(docs, i);
        json_t *chunks = json_object_get(d, "chunks");
        if (!json_is_object(d) || !json_is_string(json_object_get(d, "id")) ||
            !json_is_array(chunks)) {
            reply = mb_body_error(MB_EBADREQ,
                                  "docs[%zu] needs \"id\" (string) and \"chunks\" "
                                  "(array of strings)",
                                  i);
            goto cleanup;
        }
        total += json_array_size(chunks);
    }
    if (vecs && total * (size_t)dim != nfloats) {
        reply = mb_body_error(MB_EBADREQ, "%zu chunks need %zu floats, the frame has %zu",
                              total, total * (size_t)dim, nfloats);
        goto cleanup;
    }
    texts = calloc(total ? total : 1, sizeof *texts);
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        json_t *d = json_array_get(docs, i);
        json_t *chunks = json_object_get(d, "chunks");
        json_t *meta = json_object_get(d, "meta");
        dv[i].doc_id = json_string_value(json_object_get(d, "id"));
        dv[i].source = mb_json_str(d, "source", "");
        dv[i].hash = mb_json_str(d, "hash", NULL);
        dv[i].meta = meta && json_is_object(meta) ? json_dumps(meta, JSON_COMPACT) : NULL;
        dv[i].nchunks = json_array_size(chunks);
        dv[i].chunks = texts + at;
        dv[i].vectors = vecs ? vecs + at * (size_t)dim : NULL;
        for (size_t c = 0; c < dv[i].nchunks; c++) {
            texts[at] = json_string_value(json_array_get(chunks, c));
            if (!texts[at]) {
                reply = mb_body_error(MB_EBADREQ, "docs[%zu].chunks[%zu] is not a string",
                                      i, c);
                goto cleanup;
            }
            at++;
        }
    }
    mb_add_result_t res;
    mb_err_t err;
    const char *expert = mb_json_str(j, "model", "");
    if (mb_index_add(st->index, dv, n, expert, &res, &err) != 0) {
        reply = mb_body_error(err.code, "%s", err.msg);
        goto cleanup;
    }
    st->last_write_ms = mb_clock_ms();
    reply = mb_body_ok(json_pack("{s:I, s:I, s:I, s:I}", "added", (json_int_t)res.added,
                                 "replaced", (json_int_t)res.replaced, "unchanged",
                                 (json_int_t)res.unchanged, "chunks",
                                 (json_int_t)res.chunks));
cleanup:
    for (size_t i = 0; i < n; i++)
        free((char *)dv[i].meta);
    free(dv);
    free(texts);
    return reply;
}

static mb_body_t *s_needs(state_t *st, mb_body_t *req) {
    json_t *docs = json_object_get(mb_body_json(req), "docs");
    if (!json_is_array(docs))
        return mb_body_error(MB_EBADREQ, "\"docs\" must be an array of {id, hash}");
    json_t *needed = json_array();
    size_t i;
    json_t *d;
    json_array_foreach(docs, i, d) {
        const char *id = mb_json_str(d, "id", NULL);
        if (!id) {
            json_decref(needed);
            return mb_body_error(MB_EBADREQ, "docs[%zu] needs an \"id\" string", i);
        }
        if (mb_index_needs(st->index, id, mb_json_str(d, "hash", NULL)))
            json_array_append_new(needed, json_string(id));
    }
    return mb_body_ok(json_pack("{s:o}", "needed", needed));
}

/* {"source_prefix"?, "after"?, "limit"?} -> {"docs": [{id, source, row}]}:
 * pages through documents (after = the last row seen) for ingest's
 * --delete-missing. */
static mb_body_t *s_docs(state_t *st, mb_body_t *req) {
    json_t *j = mb_body_json(req);
    json_int_t after = mb_json_int(j, "after", 0), limit = mb_json_int(j, "limit", 1000);
    if (limit < 1 || limit > 10000)
        return mb_body_error(MB_EBADREQ, "\"limit\" must be in 1..10000");
    json_t *out = json_array();
    mb_err_t err;
    int n = mb_index_docs_list(st->index, mb_json_str(j, "source_prefix", ""), after,
                               (size_t)limit, out, &err);
    if (n < 0) {
        json_decref(out);
        return mb_body_error(n, "%s", err.msg);
    }
    return mb_body_ok(json_pack("{s:o}", "docs", out));
}

/* {"doc_prefix": S, "source_prefix": S, "meta": {KEY: scalar}}; NULL if ok. */
static mb_body_t *s_parse_filter(json_t *jf, mb_filter_t *f) {
    if (!json_is_object(jf))
        return mb_body_error(MB_EBADREQ, "\"filter\" must be an object");
    const char *key;
    json_t *v;
    json_object_foreach(jf, key, v) {
        if (strcmp(key, "doc_prefix") == 0 && json_is_string(v))
            f->doc_prefix = json_string_value(v);
        else if (strcmp(key, "source_prefix") == 0 && json_is_string(v))
            f->source_prefix = json_string_value(v);
        else if (strcmp(key, "meta") == 0 && json_is_object(v)) {
            const char *mk;
            json_t *mv;
            json_object_foreach(
                v, mk,
                mv) if (!(json_is_string(mv) || json_is_number(mv) ||
                          json_is_boolean(
                              mv))) return mb_body_error(MB_EBADREQ,
                                                         "filter.meta.%s must be a "
                                                         "string, number or boolean",
                                                         mk);
            f->meta = v;
        } else
            return mb_body_error(MB_EBADREQ,
                                 "unknown or mistyped filter field '%s' (doc_prefix, "
                                 "source_prefix: strings; meta: object)",
                                 key);
    }
    return NULL;
}

static mb_body_t *s_delete(state_t *st, mb_body_t *req) {
    json_t *ids = json_object_get(mb_body_json(req), "ids");
    if (!json_is_array(ids) || json_array_size(ids) == 0 ||
        json_array_size(ids) > MAX_DOCS)
        return mb_body_error(MB_EBADREQ, "\"ids\" must be an array of 1..%d document ids",
                             MAX_DOCS);
    size_t n = json_array_size(ids);
    const char **v = malloc(n * sizeof *v);
    for (size_t i = 0; i < n; i++) {
        v[i] = json_string_value(json_array_get(ids, i));
        if (!v[i]) {
            free(v);
            return mb_body_error(MB_EBADREQ, "ids[%zu] is not a string", i);
        }
    }
    size_t chunks = 0;
    mb_err_t err;
    int rc = mb_index_delete(st->index, v, n, &chunks, &err);
    free(v);
    if (rc != 0) return mb_body_error(rc, "%s", err.msg);
    st->last_write_ms = mb_clock_ms();
    return mb_body_ok(
        json_pack("{s:I, s:I}", "deleted", (json_int_t)n, "chunks", (json_int_t)chunks));
}

static mb_body_t *s_search(state_t *st, mb_body_t *req) {
    json_t *j = mb_body_json(req);
    int dim = mb_index_dim(st->index);
    mb_query_t q = {.k = 10, .rrf_k = 60, .alpha = MB_FUSION_ALPHA};
    /* Default: hybrid when the request has both a query text and a vector,
     * else whichever channel it has the input for. */
    int has_text = json_is_string(json_object_get(j, "query"));
    const char *dflt =
        mb_body_vector_frames(req) > 0 ? (has_text ? "hybrid" : "dense") : "lexical";
    int mode = mb_search_mode_parse(mb_json_str(j, "mode", dflt));
    if (mode < 0)
        return mb_body_error(MB_EBADREQ, "\"mode\" must be dense, lexical or hybrid");
    q.mode = (mb_search_mode_t)mode;
    size_t nf = 0;
    q.vector = mb_body_vectors(req, 0, &nf);
    /* Hybrid without a vector is lexical (the expert is not fitted yet). */
    if ((q.mode == MB_MODE_DENSE && (!q.vector || nf != (size_t)dim)) ||
        (q.mode == MB_MODE_HYBRID && q.vector && nf != (size_t)dim))
        return mb_body_error(MB_EBADREQ,
                             "%s search needs one vector frame of %d floats (got %zu)",
                             q.mode == MB_MODE_DENSE ? "dense" : "hybrid", dim, nf);
    const char *qexpert = mb_json_str(j, "expert", NULL);
    if (q.vector && qexpert) {
        char have[192];
        mb_index_expert(st->index, have, sizeof have);
        if (*have && strcmp(have, qexpert) != 0)
            return mb_body_error(MB_EVERSION,
                                 "the query vector was made by expert %s; the domain's "
                                 "vectors by %s: embed again",
                                 qexpert, have);
    }
    json_t *jq = json_object_get(j, "query");
    if (jq && !json_is_string(jq))
        return mb_body_error(MB_EBADREQ, "\"query\" must be a string");
    q.query = json_string_value(jq);
    json_t *jk = json_object_get(j, "k");
    json_int_t k = jk ? (json_is_integer(jk) ? json_integer_value(jk) : -1) : 10;
    if (k <= 0 || k > MB_INDEX_MAX_K)
        return mb_body_error(MB_EBADREQ, "\"k\" must be an integer in 1..%d",
                             MB_INDEX_MAX_K);
    q.k = (int)k;
    const char *fusion = mb_json_str(j, "fusion", "convex");
    if (strcmp(fusion, "convex") == 0)
        q.fusion = MB_FUSION_CONVEX;
    else if (strcmp(fusion, "rrf") == 0)
        q.fusion = MB_FUSION_RRF;
    else if (strcmp(fusion, "weighted") == 0)
        q.fusion = MB_FUSION_WEIGHTED;
    else
        return mb_body_error(MB_EBADREQ, "\"fusion\" must be convex, rrf or weighted");
    if (strcmp(fusion, "weighted") == 0) q.alpha = 0.5;
    json_t *ja = json_object_get(j, "alpha");
    if (ja) {
        if (!json_is_number(ja) || json_number_value(ja) < 0 || json_number_value(ja) > 1)
            return mb_body_error(MB_EBADREQ, "\"alpha\" must be a number in 0..1");
        q.alpha = json_number_value(ja);
    }
    json_t *jr = json_object_get(j, "rrf_k");
    if (jr) {
        if (!json_is_integer(jr) || json_integer_value(jr) < 1 ||
            json_integer_value(jr) > 10000)
            return mb_body_error(MB_EBADREQ, "\"rrf_k\" must be an integer in 1..10000");
        q.rrf_k = (int)json_integer_value(jr);
    }
    json_t *jn = json_object_get(j, "nprobe"), *je = json_object_get(j, "efSearch");
    if (jn) {
        if (!json_is_integer(jn) || json_integer_value(jn) < 1 ||
            json_integer_value(jn) > 65536)
            return mb_body_error(MB_EBADREQ, "\"nprobe\" must be an integer in 1..65536");
        q.params.nprobe = (int)json_integer_value(jn);
    }
    if (je) {
        if (!json_is_integer(je) || json_integer_value(je) < 1 ||
            json_integer_value(je) > 65536)
            return mb_body_error(MB_EBADREQ,
                                 "\"efSearch\" must be an integer in 1..65536");
        q.params.efsearch = (int)json_integer_value(je);
    }
    mb_filter_t filter = {0};
    json_t *jf = json_object_get(j, "filter");
    if (jf) {
        mb_body_t *bad = s_parse_filter(jf, &filter);
        if (bad) return bad;
        q.filter = &filter;
    }
    int64_t t0 = mb_clock_us();
    json_t *results = NULL;
    mb_err_t err;
    if (mb_index_query(st->index, &q, &results, &err) != 0)
        return mb_body_error(err.code, "%s", err.msg);
    return mb_body_ok(json_pack("{s:o, s:I}", "results", results, "took_us",
                                (json_int_t)(mb_clock_us() - t0)));
}

static mb_body_t *s_handle(void *state, mb_body_t *req, mb_worker_t *worker) {
    (void)worker;
    state_t *st = state;
    const char *op = mb_json_str(mb_body_json(req), "op", "");
    if (strcmp(op, "search") == 0) return s_search(st, req);
    /* A busy worker may never be idle: check for due expert jobs here too
     * (rate-limited inside). */
    if (strcmp(op, "refit") != 0)
        mb_lifecycle_check(st->lc, 0, mb_clock_ms() - st->last_write_ms, NULL);
    if (strcmp(op, "add") == 0) return s_add(st, req);
    if (strcmp(op, "needs") == 0) return s_needs(st, req);
    if (strcmp(op, "docs") == 0) return s_docs(st, req);
    if (strcmp(op, "settle") == 0) {
        /* an ingest says it is done: no need to wait for writes to go quiet
         * before the expert's automatic job (a first fit) is considered */
        st->last_write_ms = 0;
        mb_lifecycle_check(st->lc, 0, INT64_MAX, NULL);
        return mb_body_ok(json_pack("{s:o}", "job", mb_lifecycle_status(st->lc)));
    }
    if (strcmp(op, "delete") == 0) return s_delete(st, req);
    if (strcmp(op, "stats") == 0) {
        json_t *s = mb_index_stats(st->index);
        json_object_set_new(s, "job", mb_lifecycle_status(st->lc));
        return mb_body_ok(s);
    }
    if (strcmp(op, "refit") == 0) {
        mb_err_t err;
        int rc = mb_lifecycle_check(st->lc, 1, 0, &err);
        if (rc < 0) return mb_body_error(-rc, "%s", err.msg);
        return mb_body_ok(json_pack("{s:o}", "job", mb_lifecycle_status(st->lc)));
    }
    return mb_body_error(
        MB_EBADREQ,
        "unknown op '%s' (search, add, delete, needs, docs, settle, stats, refit)", op);
}

static void s_idle(void *state) {
    state_t *st = state;
    if (mb_index_dirty(st->index) &&
        mb_clock_ms() - st->last_write_ms > SAVE_AFTER_QUIET_MS) {
        mb_err_t err;
        if (mb_index_save(st->index, &err) != 0) mb_warn("save failed: %s", err.msg);
    }
    mb_lifecycle_check(st->lc, 0, mb_clock_ms() - st->last_write_ms, NULL);
}

int mb_index_main(int argc, char **argv) {
    mb_svc_opts_t o;
    int done, rc = mb_svc_parse(argc, argv, s_usage, 1, &o, &done);
    if (done) return rc;
    const char *home = o.home, *endpoint = o.endpoint, *domain = o.domain;
    char name[128];
    snprintf(name, sizeof name, "index %s", domain);
    mb_log_init(name);
    mb_svc_signals();
    mb_err_t err;
    mb_domain_info_t info;
    if (mb_catalog_domain_get(home, domain, &info, &err) != 0) {
        mb_error("%s", err.msg);
        return 1;
    }
    char dir[4096];
    mb_home_domain_dir(home, domain, dir, sizeof dir);
    state_t st = {0};
    st.index = mb_index_open(dir, info.dim, info.index_type, &err);
    if (!st.index) {
        mb_error("cannot open index in %s: %s", dir, err.msg);
        return 1;
    }
    st.lc = mb_lifecycle_new(home, domain, dir, st.index);
    char service[128];
    snprintf(service, sizeof service, "index.%s", domain);
    int threads =
        getenv("MOEBUS_INDEX_THREADS") ? atoi(getenv("MOEBUS_INDEX_THREADS")) : 2;
    if (threads < 1 || threads > 64) threads = 2;
    rc = mb_svc_run_threads(endpoint, service, s_handle, s_idle, &st, threads);
    mb_lifecycle_destroy(&st.lc); /* cancels a job; its pending vectors stay */
    mb_index_close(&st.index);    /* saves */
    return rc;
}
