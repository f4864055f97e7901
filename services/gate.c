/* gate.c — `moebus gate`: the front door for search.
 *
 * {"op":"search","query":Q,"k":10,"domains":[..]?,"timeout_ms":5000?}
 *
 * Route (uniform for now, top-p rule applied), then for the chosen domains in
 * parallel: embed.<d> for the query vector, index.<d> for the top k; fuse by
 * reciprocal rank; reply with results, the router's scores, what was searched,
 * any per-domain failures (marked partial, never dropped silently) and
 * per-stage timings. Every wait has one deadline so a dead domain costs at
 * most the request's timeout, and other domains still answer.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fusion.h"
#include "index.h"
#include "home.h"
#include "mb_client.h"
#include "mb_log.h"
#include "mb_mdp.h"
#include "router.h"
#include "services.h"
#include "svc.h"

#define MAX_QUERY_BYTES 16384
#define MAX_K 1000
#define RRF_K 60

static const char *s_usage =
    "usage: moebus gate [--home DIR] [--endpoint E]\n"
    "\n"
    "Serves `gate` on the bus: routes a query to domains, searches them in\n"
    "parallel and fuses the results.\n"
    "\n"
    "  --home DIR      moebus home (default $MOEBUS_HOME or ./moebus-data)\n"
    "  --endpoint E    broker endpoint (default $MOEBUS_ENDPOINT or "
    "tcp://127.0.0.1:5555)\n";

typedef struct {
    const char *home;
    mb_client_t *client;
} gate_t;

static void s_fail(json_t *errors, const char *domain, const char *stage, int code,
                   const char *msg) {
    json_array_append_new(errors,
                          json_pack("{s:s, s:s, s:s, s:s}", "domain", domain, "stage",
                                    stage, "code", mb_err_name(code), "message", msg));
}

/* Error of a missing or failed reply. */
static int s_reply_code(mb_body_t *reply, char *msg, size_t msgsz, const char *service,
                        int timeout_ms) {
    if (!reply) {
        snprintf(msg, msgsz, "no reply from %s within %d ms", service, timeout_ms);
        return MB_ETIMEOUT;
    }
    mb_err_t err;
    int rc = mb_body_status(reply, &err);
    if (rc != 0) snprintf(msg, msgsz, "%s", err.msg);
    return rc;
}

static mb_body_t *s_search(gate_t *g, mb_body_t *req) {
    int64_t t0 = mb_clock_us();
    json_t *j = mb_body_json(req);
    json_t *jq = json_object_get(j, "query");
    if (!json_is_string(jq) || json_string_length(jq) == 0)
        return mb_body_error(MB_EBADREQ, "\"query\" must be a non-empty string");
    if (json_string_length(jq) > MAX_QUERY_BYTES)
        return mb_body_error(MB_EBADREQ, "\"query\" is longer than %d bytes",
                             MAX_QUERY_BYTES);
    const char *query = json_string_value(jq);
    json_t *jk = json_object_get(j, "k");
    json_int_t k = jk ? (json_is_integer(jk) ? json_integer_value(jk) : -1) : 10;
    if (k <= 0 || k > MAX_K)
        return mb_body_error(MB_EBADREQ, "\"k\" must be an integer in 1..%d", MAX_K);
    json_t *jt = json_object_get(j, "timeout_ms");
    json_int_t timeout = jt ? (json_is_integer(jt) ? json_integer_value(jt) : -1) : 5000;
    if (timeout < 1 || timeout > 600000)
        return mb_body_error(MB_EBADREQ,
                             "\"timeout_ms\" must be an integer in 1..600000");
    int64_t deadline = mb_clock_ms() + timeout;
    const char *mode = mb_json_str(j, "mode", "hybrid");
    if (mb_search_mode_parse(mode) < 0)
        return mb_body_error(MB_EBADREQ, "\"mode\" must be dense, lexical or hybrid");
    int lexical_only = strcmp(mode, "lexical") == 0;

    /* Candidate domains: the catalog, or the request's subset of it. */
    mb_domain_info_t *all = NULL;
    size_t nall = 0;
    mb_err_t err;
    if (mb_catalog_domains(g->home, &all, &nall, &err) != 0)
        return mb_body_error(err.code, "%s", err.msg);
    json_t *jd = json_object_get(j, "domains");
    mb_domain_info_t *cand = calloc(nall ? nall : 1, sizeof *cand);
    size_t ncand = 0;
    if (jd) {
        if (!json_is_array(jd)) {
            free(all);
            free(cand);
            return mb_body_error(MB_EBADREQ,
                                 "\"domains\" must be an array of domain names");
        }
        size_t i;
        json_t *v;
        json_array_foreach(jd, i, v) {
            const char *name = json_string_value(v);
            size_t a = 0;
            while (name && a < nall && strcmp(all[a].name, name) != 0)
                a++;
            if (!name || a == nall) {
                mb_body_t *e = mb_body_error(MB_EUNKDOMAIN, "unknown domain '%s'",
                                             name ? name : "(not a string)");
                free(all);
                free(cand);
                return e;
            }
            int dup = 0;
            for (size_t c = 0; c < ncand; c++)
                dup |= strcmp(cand[c].name, name) == 0;
            if (!dup) cand[ncand++] = all[a];
        }
    } else {
        memcpy(cand, all, nall * sizeof *all);
        ncand = nall;
    }
    free(all);

    /* Route: uniform scores for now; top-p with p = 1 keeps every domain. */
    double *probs = calloc(ncand ? ncand : 1, sizeof *probs);
    size_t *order = calloc(ncand ? ncand : 1, sizeof *order);
    mb_router_uniform(ncand, probs);
    size_t nsel = ncand ? mb_router_top_p(probs, ncand, 1.0, 0, order) : 0;
    json_t *scores = json_object();
    for (size_t i = 0; i < ncand; i++)
        json_object_set_new(scores, cand[i].name, json_real(probs[i]));
    int64_t t_route = mb_clock_us();

    json_t *errors = json_array();
    json_t *searched = json_array();
    int64_t *ids = calloc(nsel ? nsel : 1, sizeof *ids);
    mb_body_t **replies = calloc(nsel ? nsel : 1, sizeof *replies);
    mb_body_t **embeds = calloc(nsel ? nsel : 1, sizeof *embeds);
    json_t **lists = calloc(nsel ? nsel : 1, sizeof *lists);
    const char **labels = calloc(nsel ? nsel : 1, sizeof *labels);
    char service[128], msg[512];

    /* Stage 1: embed the query with every chosen domain's expert (not
     * needed for lexical search). */
    for (size_t s = 0; s < nsel; s++) {
        const mb_domain_info_t *d = &cand[order[s]];
        labels[s] = d->name;
        json_array_append_new(searched, json_string(d->name));
        ids[s] = 0;
        if (lexical_only) continue;
        snprintf(service, sizeof service, "embed.%s", d->name);
        mb_body_t *r = mb_body_new(json_pack("{s:s, s:[s], s:s}", "op", "embed", "texts",
                                             query, "kind", "query"));
        ids[s] = mb_client_send(g->client, service, &r, NULL);
    }
    if (!lexical_only) mb_client_gather(g->client, ids, nsel, embeds, deadline);
    int64_t t_embed = mb_clock_us();

    /* Stage 2: search each domain that produced a vector (or, in hybrid
     * mode, whose expert is not fitted yet: lexical only, noted). An index
     * whose expert changed since the embed says `version`: those domains are
     * embedded and searched once more. */
    json_t *notes = json_object();
    size_t ok = 0;
    int64_t t_index = mb_clock_us();
    for (int round = 0; round < 2; round++) {
        size_t again = 0;
        for (size_t s = 0; s < nsel; s++) {
            if (round == 1 && ids[s] != -2) {
                ids[s] = -1;
                continue;
            }
            ids[s] = -1;
            snprintf(service, sizeof service, "embed.%s", labels[s]);
            int rc = lexical_only ? 0
                                  : s_reply_code(embeds[s], msg, sizeof msg, service,
                                                 (int)timeout);
            size_t nf = 0;
            const float *v =
                rc == 0 && !lexical_only ? mb_body_vectors(embeds[s], 0, &nf) : NULL;
            const char *dmode = mode;
            if (rc == 0 && !lexical_only && (!v || nf == 0)) {
                if (strcmp(mode, "dense") == 0) {
                    rc = MB_EUNAVAIL;
                    snprintf(msg, sizeof msg,
                             "domain %s has no dense expert yet (not fitted): search "
                             "lexical or hybrid",
                             labels[s]);
                } else {
                    json_object_set_new(
                        notes, labels[s],
                        json_string("expert not fitted yet: lexical only"));
                }
            }
            if (rc != 0) {
                s_fail(errors, labels[s], "embed", rc, msg);
                continue;
            }
            snprintf(service, sizeof service, "index.%s", labels[s]);
            mb_body_t *r = mb_body_new(json_pack("{s:s, s:I, s:s, s:s}", "op", "search",
                                                 "k", k, "mode", dmode, "query", query));
            /* passed through as given; the index validates them */
            static const char *pass[] = {"filter", "nprobe", "efSearch",
                                         "fusion", "alpha",  "rrf_k"};
            for (size_t p = 0; p < sizeof pass / sizeof *pass; p++) {
                json_t *pv = json_object_get(j, pass[p]);
                if (pv) json_object_set(mb_body_json(r), pass[p], pv);
            }
            if (v) {
                json_t *model = json_object_get(mb_body_json(embeds[s]), "model");
                if (json_is_string(model))
                    json_object_set(mb_body_json(r), "expert", model);
                json_object_set_new(mb_body_json(r), "dim", json_integer((json_int_t)nf));
                mb_body_add_vectors(r, v, nf);
            }
            ids[s] = mb_client_send(g->client, service, &r, NULL);
        }
        {
            /* gather clears its slots: collect this round's replies aside */
            mb_body_t **got = calloc(nsel ? nsel : 1, sizeof *got);
            mb_client_gather(g->client, ids, nsel, got, deadline);
            for (size_t s = 0; s < nsel; s++)
                if (ids[s] >= 0) replies[s] = got[s];
            free(got);
        }
        t_index = mb_clock_us();
        for (size_t s = 0; s < nsel; s++) {
            if (ids[s] < 0) continue; /* failed at embed */
            snprintf(service, sizeof service, "index.%s", labels[s]);
            int rc = s_reply_code(replies[s], msg, sizeof msg, service, (int)timeout);
            if (rc == MB_EVERSION && round == 0) {
                /* re-embed this domain's query with its new expert */
                mb_body_destroy(&replies[s]);
                mb_body_destroy(&embeds[s]);
                snprintf(service, sizeof service, "embed.%s", labels[s]);
                mb_body_t *r = mb_body_new(json_pack("{s:s, s:[s], s:s}", "op", "embed",
                                                     "texts", query, "kind", "query"));
                int64_t id = mb_client_send(g->client, service, &r, NULL);
                mb_client_gather(g->client, &id, 1, &embeds[s], deadline);
                ids[s] = -2;
                again++;
                continue;
            }
            if (rc != 0) {
                s_fail(errors, labels[s], "index", rc, msg);
                continue;
            }
            lists[s] = json_object_get(mb_body_json(replies[s]), "results");
            ok++;
        }
        if (!again) break;
    }

    /* Stage 3: fuse. */
    json_t *results = mb_fusion_rrf(lists, labels, nsel, (int)k, RRF_K);
    int64_t t_fuse = mb_clock_us();
    mb_body_t *reply;
    if (ok == 0 && json_array_size(errors) > 0) {
        json_t *first = json_array_get(errors, 0);
        reply =
            mb_body_error(mb_err_from_name(mb_json_str(first, "code", "internal")),
                          "no domain answered: %s", mb_json_str(first, "message", ""));
        json_object_set(mb_body_json(reply), "errors", errors);
        json_decref(results);
    } else {
        json_t *timings = json_pack(
            "{s:I, s:I, s:I, s:I, s:I}", "route_us", (json_int_t)(t_route - t0),
            "embed_us", (json_int_t)(t_embed - t_route), "index_us",
            (json_int_t)(t_index - t_embed), "fuse_us", (json_int_t)(t_fuse - t_index),
            "total_us", (json_int_t)(mb_clock_us() - t0));
        reply = mb_body_ok(json_pack(
            "{s:s, s:s, s:o, s:b, s:O, s:{s:o, s:s}, s:{s:s, s:O}, s:o}", "query", query,
            "mode", mode, "results", results, "partial", json_array_size(errors) > 0,
            "errors", errors, "router", "scores", scores, "model", "uniform", "gate",
            "decision", "retrieve", "domains", searched, "timings", timings));
        if (json_object_size(notes) > 0)
            json_object_set(mb_body_json(reply), "notes", notes);
        scores = NULL;
    }
    json_decref(scores);
    json_decref(notes);
    json_decref(errors);
    json_decref(searched);
    for (size_t s = 0; s < nsel; s++) {
        mb_body_destroy(&replies[s]);
        mb_body_destroy(&embeds[s]);
    }
    free(ids);
    free(replies);
    free(embeds);
    free(lists);
    free(labels);
    free(probs);
    free(order);
    free(cand);
    return reply;
}

static mb_body_t *s_handle(void *state, mb_body_t *req, mb_worker_t *worker) {
    (void)worker; /* its pulse thread heartbeats while we wait on the domains */
    const char *op = mb_json_str(mb_body_json(req), "op", "search");
    if (strcmp(op, "search") == 0) return s_search(state, req);
    return mb_body_error(MB_EBADREQ, "unknown op '%s' (search)", op);
}

int mb_gate_main(int argc, char **argv) {
    mb_svc_opts_t o;
    int done, prc = mb_svc_parse(argc, argv, s_usage, 0, &o, &done);
    if (done) return prc;
    const char *home = o.home, *endpoint = o.endpoint;
    mb_log_init("gate");
    mb_svc_signals();
    mb_err_t err;
    gate_t g = {.home = home, .client = mb_client_new(endpoint, &err)};
    if (!g.client) {
        mb_error("%s", err.msg);
        return 1;
    }
    int rc = mb_svc_run(endpoint, "gate", s_handle, NULL, &g);
    mb_client_destroy(&g.client);
    return rc;
}
