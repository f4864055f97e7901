/* router_worker.c — `moebus router`: the learned router on the bus.
 *
 *   {"op":"route","query":Q, "p"?, "max_domains"?, "router"?:"learned"|"pilot",
 *    "domains"?:[..], "shared"?:D}
 *      -> {"model", "router", "scores":{d:p}, "chosen":[..], "gate":{"p_in",
 *          "features":{..}}}
 *   {"op":"train", "labels"?:[[query, domain], ..]}   retrain now
 *   {"op":"status"}
 *
 * The model lives in the catalog (`models`, name "router"). Every second a
 * watcher thread compares what the model was trained on with the catalog:
 * the domains that have passages, their expert versions, their sizes. When
 * that changed and has then stayed the same for a second (an ingest in
 * progress is not trained on halfway), it trains a new model; requests keep
 * being answered by the previous one until the new one is swapped in,
 * between two requests. The request path never reads the catalog.
 */
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "embed.h"
#include "home.h"
#include "mb_log.h"
#include "mb_mdp.h"
#include "rmodel.h"
#include "router.h"
#include "services.h"
#include "svc.h"

#define CHECK_MS 1000

static const char *s_usage =
    "usage: moebus router [--home DIR] [--endpoint E]\n"
    "\n"
    "Serves `router` on the bus: a probability per domain for a query, top-p\n"
    "selection, and the retrieval gate's features. Trains itself from the\n"
    "domains' passages and retrains when domains are added, removed, grow or\n"
    "change expert.\n"
    "\n"
    "  --home DIR      moebus home (default $MOEBUS_HOME or ./moebus-data)\n"
    "  --endpoint E    broker endpoint (default $MOEBUS_ENDPOINT or "
    "tcp://127.0.0.1:5555)\n"
    "\n"
    "environment: MOEBUS_ROUTER_PSEUDO (pseudo-queries per domain, 800),\n"
    "  MOEBUS_ROUTER_SAMPLE (passages read per domain, 20000),\n"
    "  MOEBUS_WORD_VECTORS (GloVe-format text file: the pilots' shared base\n"
    "  encoder; also `moebus config set router.word_vectors PATH`, read at start)\n";

/* Settings (`moebus config`). */
typedef struct {
    double p;
    size_t maxd;
    int kind;
    char shared[MB_DOMAIN_NAME_MAX + 1];
} cfg_t;

typedef struct {
    const char *home;
    mb_rmodel_t *model; /* handler thread only */
    pthread_t watcher;
    volatile int quit;
    pthread_mutex_t mu; /* guards the fields below */
    int training, want;
    mb_rmodel_t *fresh; /* trained, not yet serving */
    char error[512];
    char sig[8192];      /* what the current (or training) model is for */
    char seen_sig[8192]; /* the last signature observed */
    int64_t seen_ms;
    cfg_t cfg;
    mb_wordvec_t *wv; /* the pilots' base encoder, loaded once at start */
    char wv_path[1024];
} router_t;

static void s_settings(const char *home, cfg_t *c) {
    char buf[64];
    *c = (cfg_t){.p = 0.9, .maxd = 3, .kind = MB_ROUTER_LEARNED};
    if (mb_catalog_setting_get(home, "router.p", buf, sizeof buf) == 0 && atof(buf) > 0 &&
        atof(buf) <= 1)
        c->p = atof(buf);
    if (mb_catalog_setting_get(home, "router.max_domains", buf, sizeof buf) == 0 &&
        atol(buf) >= 1)
        c->maxd = (size_t)atol(buf);
    if (mb_catalog_setting_get(home, "router.kind", buf, sizeof buf) == 0 &&
        strcmp(buf, "pilot") == 0)
        c->kind = MB_ROUTER_PILOT;
    mb_catalog_setting_get(home, "router.shared", c->shared, sizeof c->shared);
}

/* The catalog's domains with their directories (for training and loading);
 * *ds, *rd and *dirs malloc'ed. */
static size_t s_domains(const char *home, mb_domain_info_t **ds, mb_rdomain_t **rd,
                        char (**dirs)[4096]) {
    size_t n = 0;
    mb_err_t err;
    *ds = NULL;
    mb_catalog_domains(home, ds, &n, &err);
    *rd = calloc(n ? n : 1, sizeof **rd);
    *dirs = calloc(n ? n : 1, sizeof **dirs);
    for (size_t i = 0; i < n; i++) {
        mb_home_domain_dir(home, (*ds)[i].name, (*dirs)[i], sizeof(*dirs)[i]);
        (*rd)[i].name = (*ds)[i].name;
        (*rd)[i].dir = (*dirs)[i];
    }
    return n;
}

/* One signature line: name, expert version, size bucket. Small domains:
 * every change counts; then the bucket (log2 of the chunk count) makes
 * growth by 2x a change. Returns the new offset. */
static size_t s_sig_line(char *out, size_t off, size_t sz, const char *name,
                         const char *version, long long chunks) {
    long long bucket = chunks < 1000
                           ? chunks
                           : 1000 + (63 - __builtin_clzll((unsigned long long)chunks));
    return off + (size_t)snprintf(out + off, off < sz ? sz - off : 0, "%s %s %lld\n",
                                  name, version, bucket);
}

/* One line per domain with passages: name, expert version, size bucket. The
 * bucket (log2 of the chunk count) makes growth by 2x a change. */
static void s_signature(const char *home, char *out, size_t sz) {
    mb_domain_info_t *ds = NULL;
    size_t n = 0;
    mb_err_t err;
    out[0] = 0;
    if (mb_catalog_domains(home, &ds, &n, &err) != 0) return;
    size_t off = 0;
    for (size_t i = 0; i < n; i++) {
        char dir[4096], path[4200];
        mb_home_domain_dir(home, ds[i].name, dir, sizeof dir);
        snprintf(path, sizeof path, "%s/store.db", dir);
        sqlite3 *db = NULL;
        long long chunks = 0;
        if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK) {
            sqlite3_busy_timeout(db, 1000);
            sqlite3_stmt *s = NULL;
            if (sqlite3_prepare_v2(db, "SELECT max(id) FROM chunks", -1, &s, NULL) ==
                    SQLITE_OK &&
                sqlite3_step(s) == SQLITE_ROW)
                chunks = sqlite3_column_int64(s, 0);
            sqlite3_finalize(s);
        }
        sqlite3_close(db);
        if (chunks <= 0) continue;
        mb_expert_spec_t spec;
        if (mb_expert_read(dir, &spec, &err) != 0) spec.version[0] = 0;
        off = s_sig_line(out, off, sz, ds[i].name, spec.version, chunks);
        if (off >= sz) break;
    }
    free(ds);
}

/* Trains on the catalog as it is now, saves the model in the catalog and
 * hands it to the handler thread (fresh). Runs on the watcher thread. */
static void s_train_now(router_t *r) {
    mb_domain_info_t *ds;
    mb_rdomain_t *rd;
    char(*dirs)[4096];
    size_t n = s_domains(r->home, &ds, &rd, &dirs);
    mb_err_t err = {0};
    char **lq = NULL, **ld = NULL;
    size_t nl = 0;
    mb_catalog_labels_get(r->home, &lq, &ld, &nl, &err);
    mb_rlabel_t *labels = calloc(nl ? nl : 1, sizeof *labels);
    for (size_t i = 0; i < nl; i++)
        labels[i].query = lq[i], labels[i].domain = ld[i];
    const char *ep = getenv("MOEBUS_ROUTER_PSEUDO"), *es = getenv("MOEBUS_ROUTER_SAMPLE");
    mb_rtrain_opts_t opts = {.pseudo_per_domain = ep ? (size_t)atol(ep) : 0,
                             .sample = es ? (size_t)atol(es) : 0,
                             .labels = labels,
                             .nlabels = nl,
                             .wordvec = r->wv};
    mb_rmodel_t *m = mb_rmodel_train(rd, n, &opts, &err);
    if (m) {
        void *blob = NULL;
        size_t size = 0;
        if (mb_rmodel_save(m, &blob, &size, &err) != 0 ||
            mb_catalog_model_put(r->home, "router", mb_rmodel_version(m), blob, size,
                                 &err) != 0)
            mb_warn("router model not saved: %s", err.msg);
        free(blob);
        mb_rmodel_stats_t st;
        mb_rmodel_stats(m, &st);
        mb_info("trained %s on %zu domains, %zu queries in %.0f ms (held-out top-1 "
                "%.3f, pilot %.3f, T %.2f, gate in %.3f out %.3f)",
                mb_rmodel_version(m), mb_rmodel_ndomains(m), st.examples, st.train_ms,
                st.heldout_acc, st.pilot_acc, st.temperature, st.gate_in_rate,
                st.gate_out_rate);
    } else if (err.code != MB_ENOTFOUND) {
        mb_warn("router training failed: %s", err.msg);
    }
    pthread_mutex_lock(&r->mu);
    if (m) {
        mb_rmodel_destroy(&r->fresh);
        r->fresh = m;
        r->error[0] = 0;
    } else {
        snprintf(r->error, sizeof r->error, "%s", err.msg);
    }
    r->training = 0;
    pthread_mutex_unlock(&r->mu);
    for (size_t i = 0; i < nl; i++)
        free(lq[i]), free(ld[i]);
    free(lq);
    free(ld);
    free(labels);
    free(rd);
    free(dirs);
    free(ds);
}

/* The watcher thread: once a second (sooner when a train request comes),
 * re-reads the settings and the catalog's signature, off the request path,
 * and trains when the signature changed and has then held still for a
 * second (an ingest in progress is not trained on halfway) or when asked.
 * Requests keep being answered by the previous model meanwhile. */
static void *s_watch(void *arg) {
    router_t *r = arg;
    while (!r->quit && !mb_svc_stop) {
        for (int i = 0; i < CHECK_MS / 100 && !r->quit && !mb_svc_stop; i++) {
            pthread_mutex_lock(&r->mu);
            int want = r->want;
            pthread_mutex_unlock(&r->mu);
            if (want) break;
            usleep(100000);
        }
        if (r->quit || mb_svc_stop) break;
        cfg_t c;
        s_settings(r->home, &c);
        char sig[8192];
        s_signature(r->home, sig, sizeof sig);
        int64_t now = mb_clock_ms();
        pthread_mutex_lock(&r->mu);
        r->cfg = c;
        if (strcmp(sig, r->seen_sig) != 0) {
            snprintf(r->seen_sig, sizeof r->seen_sig, "%s", sig);
            r->seen_ms = now;
        }
        int stale = strcmp(sig, r->sig) != 0 && sig[0] != 0;
        int train = r->want || (stale && now - r->seen_ms >= CHECK_MS);
        if (train) {
            snprintf(r->sig, sizeof r->sig, "%s", sig);
            r->training = 1;
            r->want = 0;
        }
        pthread_mutex_unlock(&r->mu);
        if (train) s_train_now(r);
    }
    return NULL;
}

/* Serves a freshly trained model from the next request on. */
static void s_swap(router_t *r) {
    pthread_mutex_lock(&r->mu);
    if (r->fresh) {
        mb_rmodel_destroy(&r->model);
        r->model = r->fresh;
        r->fresh = NULL;
    }
    pthread_mutex_unlock(&r->mu);
}

static void s_idle(void *state) {
    s_swap(state);
}

/* Parses p / max_domains / router of a request (defaults from settings). */
static int s_params(router_t *r, json_t *j, double *p, size_t *maxd, int *kind,
                    char *errmsg, size_t esz) {
    pthread_mutex_lock(&r->mu);
    *p = r->cfg.p;
    *maxd = r->cfg.maxd;
    *kind = r->cfg.kind;
    pthread_mutex_unlock(&r->mu);
    json_t *v = json_object_get(j, "p");
    if (v) {
        if (!json_is_number(v) || !(json_number_value(v) > 0) ||
            json_number_value(v) > 1) {
            snprintf(errmsg, esz, "\"p\" must be a number in (0, 1]");
            return -1;
        }
        *p = json_number_value(v);
    }
    v = json_object_get(j, "max_domains");
    if (v) {
        if (!json_is_integer(v) || json_integer_value(v) < 1 ||
            json_integer_value(v) > 64) {
            snprintf(errmsg, esz, "\"max_domains\" must be an integer in 1..64");
            return -1;
        }
        *maxd = (size_t)json_integer_value(v);
    }
    const char *k = mb_json_str(j, "router", NULL);
    if (k) {
        if (strcmp(k, "learned") == 0)
            *kind = MB_ROUTER_LEARNED;
        else if (strcmp(k, "pilot") == 0)
            *kind = MB_ROUTER_PILOT;
        else {
            snprintf(errmsg, esz, "\"router\" must be learned or pilot");
            return -1;
        }
    }
    return 0;
}

static mb_body_t *s_route(router_t *r, json_t *j) {
    mb_body_t *bad;
    const char *query = mb_svc_query(j, &bad);
    if (!query) return bad;
    double p;
    size_t maxd;
    int kind;
    char msg[256];
    if (s_params(r, j, &p, &maxd, &kind, msg, sizeof msg) != 0)
        return mb_body_error(MB_EBADREQ, "%s", msg);
    mb_rmodel_t *m = r->model;
    if (!m)
        return mb_body_error(MB_EUNAVAIL, "the router has no model yet (%s)",
                             r->error[0]   ? r->error
                             : r->training ? "training"
                                           : "no domain has passages");
    size_t nd = mb_rmodel_ndomains(m);
    unsigned char *allowed = NULL;
    json_t *jd = json_object_get(j, "domains");
    if (jd) {
        if (!json_is_array(jd))
            return mb_body_error(MB_EBADREQ, "\"domains\" must be an array of names");
        allowed = calloc(nd, 1);
        size_t i, any = 0;
        json_t *v;
        json_array_foreach(jd, i, v) {
            int d = json_is_string(v) ? mb_rmodel_find(m, json_string_value(v)) : -1;
            if (d >= 0) allowed[d] = 1, any++;
        }
        if (!any) {
            free(allowed);
            return mb_body_error(MB_EUNKDOMAIN,
                                 "none of \"domains\" is known to the router");
        }
    }
    /* "exclude" (disabled domains): out of the selection, but the gate still
     * judges the query against everything indexed. Otherwise disabling the
     * domain that covers a query looks, to a gate trained on "the query's
     * domain removed" as its negative, exactly like a query nothing covers,
     * and the query would go unanswered rather than to the other domains. */
    unsigned char *select = NULL;
    json_t *jx = json_object_get(j, "exclude");
    if (jx) {
        if (!json_is_array(jx)) {
            free(allowed);
            return mb_body_error(MB_EBADREQ, "\"exclude\" must be an array of names");
        }
        select = malloc(nd);
        for (size_t d = 0; d < nd; d++)
            select[d] = allowed ? allowed[d] : 1;
        size_t i, left = 0;
        json_t *v;
        json_array_foreach(jx, i, v) {
            int d = json_is_string(v) ? mb_rmodel_find(m, json_string_value(v)) : -1;
            if (d >= 0) select[d] = 0;
        }
        for (size_t d = 0; d < nd; d++)
            left += select[d];
        if (!left) {
            free(allowed);
            free(select);
            return mb_body_error(MB_EUNKDOMAIN, "every domain is excluded");
        }
    }
    double *probs = calloc(nd, sizeof *probs);
    size_t *order = calloc(nd, sizeof *order);
    mb_rgate_t gate;
    mb_err_t err;
    int64_t t0 = mb_clock_us();
    int rc = mb_rmodel_score(m, query, kind, allowed, p, maxd, probs, &gate, &err);
    /* the scores are a softmax whose per-domain features shift by the same
     * amount for every domain when the set changes (shared weights), so the
     * exclusion is a renormalisation, not a second scoring */
    if (rc == 0 && select) mb_router_restrict(probs, nd, select);
    int64_t us = mb_clock_us() - t0;
    free(allowed);
    free(select);
    if (rc != 0) {
        free(probs);
        free(order);
        return mb_body_error(rc, "%s", err.msg);
    }
    size_t nsel = mb_router_top_p(probs, nd, p, maxd, order);
    json_t *scores = json_object(), *chosen = json_array(), *feat = json_object();
    for (size_t d = 0; d < nd; d++)
        json_object_set_new(scores, mb_rmodel_domain(m, d), json_real(probs[d]));
    for (size_t s = 0; s < nsel; s++)
        if (probs[order[s]] > 0)
            json_array_append_new(chosen, json_string(mb_rmodel_domain(m, order[s])));
    /* the always-on shared domain (DeepSeekMoE's shared expert) */
    char shared[MB_DOMAIN_NAME_MAX + 1];
    pthread_mutex_lock(&r->mu);
    snprintf(shared, sizeof shared, "%s", mb_json_str(j, "shared", r->cfg.shared));
    pthread_mutex_unlock(&r->mu);
    if (shared[0]) {
        int in = 0;
        size_t i;
        json_t *v;
        json_array_foreach(chosen, i, v) in |= strcmp(json_string_value(v), shared) == 0;
        if (!in) json_array_append_new(chosen, json_string(shared));
    }
    const char *const *names = mb_rmodel_gate_names();
    for (int f = 0; f < MB_RGATE_NFEAT; f++)
        json_object_set_new(feat, names[f], json_real(gate.feat[f]));
    mb_body_t *reply = mb_body_ok(json_pack(
        "{s:s, s:s, s:o, s:o, s:{s:f, s:o}, s:f, s:f, s:I, s:s?}", "model",
        mb_rmodel_version(m), "router", kind == MB_ROUTER_PILOT ? "pilot" : "learned",
        "scores", scores, "chosen", chosen, "gate", "p_in", gate.p_in, "features", feat,
        "p", p, "threshold", mb_rmodel_threshold(m), "route_us", (json_int_t)us, "shared",
        shared[0] ? shared : NULL));
    free(probs);
    free(order);
    return reply;
}

static mb_body_t *s_status(router_t *r) {
    pthread_mutex_lock(&r->mu);
    json_t *o = json_pack("{s:s, s:s}", "state",
                          r->training ? "training" : (r->error[0] ? "failed" : "idle"),
                          "error", r->error);
    pthread_mutex_unlock(&r->mu);
    if (r->model) {
        mb_rmodel_stats_t st;
        mb_rmodel_stats(r->model, &st);
        json_t *ds = json_array();
        for (size_t d = 0; d < mb_rmodel_ndomains(r->model); d++)
            json_array_append_new(ds, json_string(mb_rmodel_domain(r->model, d)));
        json_object_set_new(o, "model", json_string(mb_rmodel_version(r->model)));
        json_object_set_new(o, "domains", ds);
        json_object_set_new(
            o, "training",
            json_pack("{s:I, s:I, s:f, s:f, s:f, s:f, s:f, s:f}", "examples",
                      (json_int_t)st.examples, "heldout", (json_int_t)st.heldout,
                      "heldout_top1", st.heldout_acc, "pilot_top1", st.pilot_acc,
                      "temperature", st.temperature, "gate_in_rate", st.gate_in_rate,
                      "gate_out_rate", st.gate_out_rate, "train_ms", st.train_ms));
    } else {
        json_object_set_new(o, "model", json_null());
    }
    return mb_body_ok(o);
}

static mb_body_t *s_train(router_t *r, json_t *j) {
    json_t *jl = json_object_get(j, "labels");
    if (jl) {
        if (!json_is_array(jl))
            return mb_body_error(MB_EBADREQ,
                                 "\"labels\" must be an array of [query, domain] pairs");
        size_t n = json_array_size(jl);
        char **q = calloc(n ? n : 1, sizeof *q), **d = calloc(n ? n : 1, sizeof *d);
        for (size_t i = 0; i < n; i++) {
            json_t *pair = json_array_get(jl, i);
            const char *qs = json_string_value(json_array_get(pair, 0));
            const char *ds = json_string_value(json_array_get(pair, 1));
            if (!json_is_array(pair) || !qs || !ds || !*qs || !mb_domain_name_valid(ds)) {
                free(q);
                free(d);
                return mb_body_error(MB_EBADREQ,
                                     "label %zu is not a [query, domain] pair", i + 1);
            }
            q[i] = (char *)qs;
            d[i] = (char *)ds;
        }
        mb_err_t err;
        int rc = mb_catalog_labels_set(r->home, q, d, n, &err);
        free(q);
        free(d);
        if (rc != 0) return mb_body_error(rc, "%s", err.msg);
    }
    pthread_mutex_lock(&r->mu);
    int busy = r->training;
    r->want = 1;
    pthread_mutex_unlock(&r->mu);
    return mb_body_ok(json_pack("{s:s, s:s?}", "state", busy ? "queued" : "training",
                                "model", r->model ? mb_rmodel_version(r->model) : NULL));
}

static mb_body_t *s_handle(void *state, mb_body_t *req, mb_worker_t *worker) {
    (void)worker;
    router_t *r = state;
    s_swap(r);
    json_t *j = mb_body_json(req);
    const char *op = mb_json_str(j, "op", "route");
    if (strcmp(op, "route") == 0) return s_route(r, j);
    if (strcmp(op, "status") == 0) return s_status(r);
    if (strcmp(op, "train") == 0) return s_train(r, j);
    return mb_body_error(MB_EBADREQ, "unknown op '%s' (route, train, status)", op);
}

int mb_router_main(int argc, char **argv) {
    mb_svc_opts_t o;
    int done, prc = mb_svc_parse(argc, argv, s_usage, 0, &o, &done);
    if (done) return prc;
    mb_log_init("router");
    mb_svc_signals();
    router_t r = {.home = o.home};
    pthread_mutex_init(&r.mu, NULL);
    s_settings(o.home, &r.cfg);
    /* word vectors for the pilots: $MOEBUS_WORD_VECTORS, else the setting */
    const char *wvp = getenv("MOEBUS_WORD_VECTORS");
    if (wvp && *wvp)
        snprintf(r.wv_path, sizeof r.wv_path, "%s", wvp);
    else
        mb_catalog_setting_get(o.home, "router.word_vectors", r.wv_path,
                               sizeof r.wv_path);
    if (r.wv_path[0]) {
        mb_err_t werr;
        int64_t t0 = mb_clock_ms();
        r.wv = mb_wordvec_load(r.wv_path, &werr);
        if (r.wv)
            mb_info("word vectors %s: %zu words, dim %d, loaded in %lld ms", r.wv_path,
                    mb_wordvec_words(r.wv), mb_wordvec_dim(r.wv),
                    (long long)(mb_clock_ms() - t0));
        else
            mb_warn("word vectors not loaded (%s): hashed pilots", werr.msg);
    }
    /* the last model, if any: serves at once; retrained if stale */
    void *blob = NULL;
    size_t size = 0;
    mb_err_t err;
    if (mb_catalog_model_get(o.home, "router", &blob, &size, &err) == 0) {
        mb_domain_info_t *ds;
        mb_rdomain_t *rd;
        char(*dirs)[4096];
        size_t n = s_domains(o.home, &ds, &rd, &dirs);
        r.model = mb_rmodel_load(blob, size, rd, n, r.wv, &err);
        if (r.model) {
            /* its signature, rebuilt from what it was trained on */
            size_t off = 0;
            for (size_t d = 0; d < mb_rmodel_ndomains(r.model) && off < sizeof r.sig; d++)
                off = s_sig_line(r.sig, off, sizeof r.sig, mb_rmodel_domain(r.model, d),
                                 mb_rmodel_domain_expert(r.model, d),
                                 mb_rmodel_domain_chunks(r.model, d));
            mb_info("loaded %s (%zu domains)", mb_rmodel_version(r.model),
                    mb_rmodel_ndomains(r.model));
            /* pilots made in another base space than the one configured now:
             * retrain (the stored model serves meanwhile) */
            if (mb_rmodel_uses_wordvec(r.model) != (r.wv != NULL)) r.want = 1;
        } else {
            mb_warn("stored router model not loaded (%s): retraining", err.msg);
        }
        free(rd);
        free(dirs);
        free(ds);
        free(blob);
    }
    if (pthread_create(&r.watcher, NULL, s_watch, &r) != 0) {
        mb_error("cannot start the router's watcher thread");
        return 1;
    }
    int rc = mb_svc_run(o.endpoint, "router", s_handle, s_idle, &r);
    r.quit = 1;
    pthread_join(r.watcher, NULL);
    mb_rmodel_destroy(&r.model);
    mb_rmodel_destroy(&r.fresh);
    mb_wordvec_destroy(&r.wv);
    pthread_mutex_destroy(&r.mu);
    return rc;
}
