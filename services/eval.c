/* eval.c — `moebus eval`: retrieval quality on BEIR-layout data, measured
 * through the running service (gate -> embed/index over the bus), so the
 * figures are what a client gets.
 *
 * A dataset directory holds corpus.jsonl[.gz], queries.jsonl[.gz] and
 * qrels-test.tsv (or qrels/test.tsv: query-id, corpus-id, score). Only the
 * queries with a judgement are asked, as BEIR does. */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "home.h"
#include "mb_client.h"
#include "mb_mdp.h"
#include "mb_mem.h"
#include "metrics.h"
#include "rmodel.h"
#include "router.h"
#include "services.h"
#include "svc.h"

static const char *s_usage =
    "usage: moebus eval DATASET_DIR --domain NAME [--mode M] [--json]\n"
    "       moebus eval --mix DIR1 DIR2 ... [--mode M] [--json]\n"
    "\n"
    "Measures retrieval quality on BEIR-layout data (corpus.jsonl[.gz],\n"
    "queries.jsonl[.gz], qrels-test.tsv or qrels/test.tsv) through the running\n"
    "service: nDCG@10, recall@100 and MRR@10 as BEIR computes them, and the\n"
    "latency of each search (median, p99).\n"
    "\n"
    "The corpus is ingested first (a no-op when it already is), and eval waits\n"
    "until the domain's expert is fitted and every chunk embedded.\n"
    "\n"
    "  --domain NAME   the domain to load and search (created if missing)\n"
    "  --mix           each DIR becomes its own domain (named after the folder);\n"
    "                  queries are pooled and searched over all domains and over\n"
    "                  the query's own domain only (oracle), and where the router\n"
    "                  sends it (routed; with the router's top-1 accuracy and the\n"
    "                  domains searched per query), per dataset and overall\n"
    "  --router K      learned (default) or pilot, for the routed column\n"
    "  --p P           top-p for the routed column (default: the service's, 0.9)\n"
    "  --mode M        hybrid (default), dense, lexical, or all (each in turn)\n"
    "  --embed B       expert for domains eval creates (default builtin)\n"
    "  --limit N       ask only the first N judged queries\n"
    "  --router-report DIR...  router accuracy in-process on HOME's stores (the\n"
    "                  domains eval --mix made): learned and pilot top-1, top-p\n"
    "                  coverage and domains per query, route latency\n"
    "                  A DIR whose domain HOME lacks counts as out of scope: the\n"
    "                  share of its queries the gate sends to internal is shown\n"
    "  --labels FILE   with --router-report: labelled queries (query<TAB>domain)\n"
    "                  join the training and are left out of the figures\n"
    "  --gate-loo      with --router-report: also retrain without each domain in\n"
    "                  turn and report the gate's decisions on its queries\n"
    "  --json          machine-readable output\n"
    "  --home DIR      moebus home (default $MOEBUS_HOME or ./moebus-data)\n"
    "  --endpoint E    broker endpoint (default $MOEBUS_ENDPOINT or "
    "tcp://127.0.0.1:5555)\n";

#define EVAL_K 100
#define CALL_MS 30000

typedef struct {
    char *id, *text;
    mb_qrel_t *qrels;
    size_t nq;
} query_t;

typedef struct {
    char name[MB_DOMAIN_NAME_MAX + 1];
    char dir[4096], corpus[4200];
    query_t *q;
    size_t n;
} dataset_t;

static int s_find(const char *dir, const char *const *names, char *out, size_t sz) {
    for (size_t i = 0; names[i]; i++) {
        snprintf(out, sz, "%s/%s", dir, names[i]);
        if (access(out, R_OK) == 0) return 0;
    }
    return -1;
}

static void s_free(dataset_t *d) {
    for (size_t i = 0; i < d->n; i++) {
        free(d->q[i].id);
        free(d->q[i].text);
        for (size_t j = 0; j < d->q[i].nq; j++)
            free((char *)d->q[i].qrels[j].doc_id);
        free(d->q[i].qrels);
    }
    free(d->q);
}

static query_t *s_query(dataset_t *d, const char *id) {
    for (size_t i = 0; i < d->n; i++)
        if (strcmp(d->q[i].id, id) == 0) return &d->q[i];
    return NULL;
}

/* Reads qrels first (they decide which queries count), then their texts. */
static int s_load(dataset_t *d, const char *dir, size_t limit) {
    snprintf(d->dir, sizeof d->dir, "%s", dir);
    static const char *cn[] = {"corpus.jsonl.gz", "corpus.jsonl", NULL};
    static const char *qn[] = {"queries.jsonl.gz", "queries.jsonl", NULL};
    static const char *rn[] = {"qrels-test.tsv", "qrels/test.tsv", NULL};
    char qpath[4200], rpath[4200];
    if (s_find(dir, cn, d->corpus, sizeof d->corpus) ||
        s_find(dir, qn, qpath, sizeof qpath) || s_find(dir, rn, rpath, sizeof rpath)) {
        fprintf(stderr,
                "moebus eval: %s lacks corpus.jsonl[.gz], queries.jsonl[.gz] or "
                "qrels-test.tsv / qrels/test.tsv\n",
                dir);
        return -1;
    }
    FILE *f = fopen(rpath, "r");
    char line[8192];
    size_t cap = 0;
    while (f && fgets(line, sizeof line, f)) {
        char qid[1024], did[1024];
        int rel;
        if (sscanf(line, "%1023s %1023s %d", qid, did, &rel) != 3) continue; /* header */
        query_t *q = s_query(d, qid);
        if (!q) {
            if (d->n == cap)
                d->q = mb_xrealloc(d->q, (cap = cap ? cap * 2 : 256) * sizeof *d->q);
            q = &d->q[d->n++];
            memset(q, 0, sizeof *q);
            q->id = strdup(qid);
        }
        q->qrels = mb_xrealloc(q->qrels, (q->nq + 1) * sizeof *q->qrels);
        q->qrels[q->nq++] = (mb_qrel_t){strdup(did), rel};
    }
    if (f) fclose(f);
    gzFile g = gzopen(qpath, "rb");
    char *buf = malloc(1 << 20);
    while (g && gzgets(g, buf, 1 << 20)) {
        json_t *j = json_loads(buf, 0, NULL);
        query_t *q = j ? s_query(d, mb_json_str(j, "_id", "")) : NULL;
        if (q && !q->text && json_is_string(json_object_get(j, "text")))
            q->text = strdup(mb_json_str(j, "text", ""));
        json_decref(j);
    }
    if (g) gzclose(g);
    free(buf);
    /* keep judged queries that have a text, in qrels order */
    size_t w = 0;
    for (size_t i = 0; i < d->n; i++) {
        int relevant = 0;
        for (size_t j = 0; j < d->q[i].nq; j++)
            relevant |= d->q[i].qrels[j].rel > 0;
        if (d->q[i].text && relevant && (!limit || w < limit)) {
            d->q[w++] = d->q[i];
        } else {
            free(d->q[i].id);
            free(d->q[i].text);
            for (size_t j = 0; j < d->q[i].nq; j++)
                free((char *)d->q[i].qrels[j].doc_id);
            free(d->q[i].qrels);
        }
    }
    d->n = w;
    if (w == 0) {
        fprintf(stderr, "moebus eval: %s has no judged queries\n", dir);
        return -1;
    }
    return 0;
}

static int s_live(mb_client_t *c, const char *service, int timeout_ms) {
    int64_t until = mb_clock_ms() + timeout_ms;
    while (mb_clock_ms() < until) {
        mb_body_t *req = mb_body_new(json_pack("{s:s}", "service", service)), *r = NULL;
        mb_client_call(c, "mmi.service", &req, &r, 2000, NULL);
        int live = r && json_is_true(json_object_get(mb_body_json(r), "live"));
        mb_body_destroy(&r);
        if (live) return 1;
        usleep(200000);
    }
    return 0;
}

static json_t *s_stats(mb_client_t *c, const char *domain) {
    char svc[128];
    snprintf(svc, sizeof svc, "index.%s", domain);
    mb_body_t *req = mb_body_new(json_pack("{s:s}", "op", "stats")), *r = NULL;
    json_t *out = NULL;
    if (mb_client_call(c, svc, &req, &r, CALL_MS, NULL) == 0)
        out = json_incref(mb_body_json(r));
    mb_body_destroy(&r);
    return out;
}

/* Creates the domain if needed, ingests the corpus, waits for the expert. */
static int s_prepare(mb_client_t *c, const char *home, const char *endpoint,
                     const char *embed, dataset_t *d, int quiet) {
    mb_domain_info_t info;
    mb_err_t err;
    if (mb_catalog_domain_get(home, d->name, &info, NULL) != 0) {
        memset(&info, 0, sizeof info);
        snprintf(info.name, sizeof info.name, "%s", d->name);
        snprintf(info.embed, sizeof info.embed, "%s", embed);
        snprintf(info.index_type, sizeof info.index_type, "Flat");
        info.dim = MB_DEFAULT_DIM;
        if (mb_catalog_domain_add(home, &info, &err) != 0) {
            fprintf(stderr, "moebus eval: %s\n", err.msg);
            return -1;
        }
    }
    char isvc[128], esvc[128];
    snprintf(isvc, sizeof isvc, "index.%s", d->name);
    snprintf(esvc, sizeof esvc, "embed.%s", d->name);
    if (!s_live(c, isvc, 20000) || !s_live(c, esvc, 20000)) {
        fprintf(stderr,
                "moebus eval: no workers for domain %s (is `moebus serve` running?)\n",
                d->name);
        return -1;
    }
    int64_t t0 = mb_clock_ms();
    char *argv[] = {"ingest",         "--quiet", "--home",  (char *)home, "--endpoint",
                    (char *)endpoint, d->name,   d->corpus, NULL};
    optind = 0; /* getopt again, from the start */
    if (mb_ingest_main(8, argv) != 0) return -1;
    int64_t t_ingest = mb_clock_ms() - t0;
    /* Wait for the expert: fitted, every chunk embedded, no job running. */
    int asked = 0;
    for (;;) {
        json_t *st = s_stats(c, d->name);
        if (!st) return -1;
        json_t *job = json_object_get(st, "job");
        const char *state = mb_json_str(job, "state", "idle");
        const char *expert = mb_json_str(st, "expert", "");
        json_int_t chunks = mb_json_int(st, "chunks", 0),
                   stored = mb_json_int(st, "vectors_stored", 0);
        int ready = strcmp(state, "idle") == 0 && *expert && stored == chunks;
        if (strcmp(state, "failed") == 0) {
            fprintf(stderr, "moebus eval: %s: expert job failed: %s (searching anyway)\n",
                    d->name, mb_json_str(job, "error", "?"));
            ready = 1;
        }
        if (ready) {
            if (!quiet)
                fprintf(stderr,
                        "%s: %lld chunks, ingest %.1f s, expert %s ready after %.1f s\n",
                        d->name, (long long)chunks, t_ingest / 1000.0, expert,
                        (mb_clock_ms() - t0) / 1000.0);
            json_decref(st);
            return 0;
        }
        if (!asked && strcmp(state, "idle") == 0 && mb_clock_ms() - t0 > 3000) {
            /* not started by itself (e.g. fewer chunks than the fit minimum) */
            mb_body_t *req = mb_body_new(json_pack("{s:s}", "op", "refit")), *r = NULL;
            mb_client_call(c, isvc, &req, &r, CALL_MS, NULL);
            mb_body_destroy(&r);
            asked = 1;
        }
        json_decref(st);
        usleep(300000);
    }
}

/* One search; fills ranked (distinct doc ids, best first); returns µs or -1. */
/* What the router did for the last routed search. */
static char s_routed_top[MB_DOMAIN_NAME_MAX + 1];
static int64_t s_routed_searched;
static const char *s_router_kind; /* --router */
static double s_route_p;          /* --p (0: the service's default) */

/* domain: one domain; all: a JSON array of names; neither: routed. */
static int64_t s_search_in(mb_client_t *c, const char *query, const char *mode,
                           const char *domain, json_t *all, char ***ranked, size_t *n) {
    json_t *j = json_pack("{s:s, s:s, s:i, s:s, s:i}", "op", "search", "query", query,
                          "k", EVAL_K, "mode", mode, "timeout_ms", CALL_MS);
    if (domain) json_object_set_new(j, "domains", json_pack("[s]", domain));
    if (all) json_object_set(j, "domains", all);
    if (!domain && !all) {
        /* routing alone is measured here: the gate's decisions are measured
         * by --gate-loo */
        json_object_set_new(j, "retrieve", json_string("always"));
        if (s_router_kind) json_object_set_new(j, "router", json_string(s_router_kind));
        if (s_route_p > 0) json_object_set_new(j, "p", json_real(s_route_p));
    }
    mb_body_t *req = mb_body_new(j), *r = NULL;
    int64_t t0 = mb_clock_us();
    mb_err_t err;
    int rc = mb_client_call(c, "gate", &req, &r, CALL_MS + 1000, &err);
    int64_t us = mb_clock_us() - t0;
    *ranked = NULL;
    *n = 0;
    if (rc != 0) {
        fprintf(stderr, "moebus eval: search '%s': %s\n", query, err.msg);
        mb_body_destroy(&r);
        return -1;
    }
    json_t *res = json_object_get(mb_body_json(r), "results");
    if (!domain && !all) {
        /* the router's top domain: the best of its scores */
        json_t *sc =
            json_object_get(json_object_get(mb_body_json(r), "router"), "scores");
        const char *key, *best = "";
        double bp = -1;
        json_t *v;
        int ties = 0;
        json_object_foreach(sc, key, v) {
            if (json_real_value(v) > bp) {
                bp = json_real_value(v);
                best = key;
                ties = 0;
            }
            if (json_real_value(v) == bp) ties++;
        }
        if (ties > 1) best = ""; /* a tie at the top is no decision */
        snprintf(s_routed_top, sizeof s_routed_top, "%s", best);
        s_routed_searched = mb_json_int(mb_body_json(r), "domains_searched", 0);
    }
    *ranked = calloc(json_array_size(res) + 1, sizeof **ranked);
    size_t i;
    json_t *hit;
    json_array_foreach(res, i, hit) {
        /* a document's best chunk stands for it; the domain prefixes the id
         * only when searching many (ids are unique per domain) */
        const char *id = mb_json_str(hit, "doc_id", "");
        int dup = 0;
        for (size_t k = 0; k < *n && !dup; k++)
            dup = strcmp((*ranked)[k], id) == 0;
        if (!dup) (*ranked)[(*n)++] = strdup(id);
    }
    mb_body_destroy(&r);
    return us;
}

static int64_t s_search(mb_client_t *c, const char *query, const char *mode,
                        const char *domain, char ***ranked, size_t *n) {
    return s_search_in(c, query, mode, domain, NULL, ranked, n);
}

static void s_ranked_free(char **r, size_t n) {
    for (size_t i = 0; i < n; i++)
        free(r[i]);
    free(r);
}

static int s_cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

typedef struct {
    double ndcg, recall, mrr;
    size_t n, failed;
    int64_t *lat;
} score_t;

static void s_score_add(score_t *s, char **ranked, size_t nr, const query_t *q,
                        int64_t us) {
    s->ndcg += mb_metric_ndcg((const char *const *)ranked, nr, q->qrels, q->nq, 10);
    s->recall += mb_metric_recall((const char *const *)ranked, nr, q->qrels, q->nq, 100);
    s->mrr += mb_metric_mrr((const char *const *)ranked, nr, q->qrels, q->nq, 10);
    s->lat = mb_xrealloc(s->lat, (s->n + 1) * sizeof *s->lat);
    s->lat[s->n++] = us;
}

static json_t *s_score_json(score_t *s) {
    size_t n = s->n ? s->n : 1;
    qsort(s->lat, s->n, sizeof *s->lat, s_cmp_i64);
    double med = s->n ? s->lat[s->n / 2] / 1000.0 : 0;
    double p99 = s->n ? s->lat[(size_t)((double)(s->n - 1) * 0.99)] / 1000.0 : 0;
    json_t *j = json_pack("{s:f, s:f, s:f, s:I, s:I, s:{s:f, s:f}}", "ndcg@10",
                          s->ndcg / n, "recall@100", s->recall / n, "mrr@10", s->mrr / n,
                          "queries", (json_int_t)s->n, "failed", (json_int_t)s->failed,
                          "latency_ms", "median", med, "p99", p99);
    free(s->lat);
    s->lat = NULL;
    return j;
}

static void s_print(json_t *out) {
    char *s = json_dumps(out, JSON_INDENT(2));
    puts(s);
    free(s);
}

static int s_single(mb_client_t *c, const char *home, const char *endpoint,
                    const char *embed, const char *dir, const char *domain,
                    const char *mode, size_t limit, int as_json) {
    dataset_t d = {0};
    snprintf(d.name, sizeof d.name, "%s", domain);
    if (s_load(&d, dir, limit) != 0 ||
        s_prepare(c, home, endpoint, embed, &d, as_json) != 0) {
        s_free(&d);
        return 1;
    }
    static const char *all[] = {"lexical", "dense", "hybrid"};
    const char *one[] = {mode};
    const char *const *modes = strcmp(mode, "all") == 0 ? all : one;
    size_t nm = strcmp(mode, "all") == 0 ? 3 : 1;
    json_t *out =
        json_pack("{s:s, s:s, s:{}}", "dataset", dir, "domain", domain, "modes");
    if (!as_json)
        printf("%-10s %-8s %7s %8s %10s %8s %9s %9s\n", "domain", "mode", "queries",
               "nDCG@10", "recall@100", "MRR@10", "p50 ms", "p99 ms");
    for (size_t m = 0; m < nm; m++) {
        score_t s = {0};
        for (size_t i = 0; i < d.n; i++) {
            char **ranked;
            size_t nr;
            int64_t us = s_search(c, d.q[i].text, modes[m], domain, &ranked, &nr);
            if (us < 0) s.failed++;
            s_score_add(&s, ranked, nr, &d.q[i], us < 0 ? 0 : us);
            s_ranked_free(ranked, nr);
        }
        json_t *j = s_score_json(&s);
        json_object_set_new(json_object_get(out, "modes"), modes[m], j);
        if (!as_json)
            printf("%-10s %-8s %7lld %8.4f %10.4f %8.4f %9.2f %9.2f\n", domain, modes[m],
                   (long long)mb_json_int(j, "queries", 0),
                   json_real_value(json_object_get(j, "ndcg@10")),
                   json_real_value(json_object_get(j, "recall@100")),
                   json_real_value(json_object_get(j, "mrr@10")),
                   json_real_value(
                       json_object_get(json_object_get(j, "latency_ms"), "median")),
                   json_real_value(
                       json_object_get(json_object_get(j, "latency_ms"), "p99")));
    }
    if (as_json) s_print(out);
    json_decref(out);
    s_free(&d);
    return 0;
}

/* A folder name as a domain name: lower case, other characters -> '-'. */
static void s_domain_name(const char *dir, char *out, size_t sz) {
    size_t l = strlen(dir);
    while (l > 1 && dir[l - 1] == '/')
        l--;
    const char *b = dir;
    for (size_t i = 0; i < l; i++)
        if (dir[i] == '/') b = dir + i + 1;
    size_t n = 0;
    for (; b < dir + l && n + 1 < sz && n < MB_DOMAIN_NAME_MAX; b++) {
        char ch = *b;
        if (ch >= 'A' && ch <= 'Z') ch |= 0x20;
        int ok = (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_';
        out[n++] = ok ? ch : '-';
    }
    out[n] = 0;
    if (n == 0 || out[0] == '-' || out[0] == '_') { /* must start alphanumeric */
        memmove(out + 1, out, n + 1 < sz - 1 ? n + 1 : sz - 2);
        out[0] = 'd';
        out[sz - 1] = 0;
    }
}

/* Waits (up to 5 minutes) until the router's model covers every dataset's
 * domain: it retrains by itself a few seconds after ingest settles. */
static void s_wait_router(mb_client_t *c, dataset_t *ds, size_t nd, int as_json) {
    for (int i = 0; i < 600; i++) {
        mb_body_t *req = mb_body_new(json_pack("{s:s}", "op", "status")), *r = NULL;
        mb_err_t err;
        int covered = 0;
        if (mb_client_call(c, "router", &req, &r, 5000, &err) == 0) {
            json_t *doms = json_object_get(mb_body_json(r), "domains");
            const char *st = mb_json_str(mb_body_json(r), "state", "");
            for (size_t d = 0; d < nd; d++) {
                size_t k;
                json_t *v;
                json_array_foreach(doms, k, v) if (strcmp(json_string_value(v),
                                                          ds[d].name) == 0) covered++;
            }
            if (strcmp(st, "training") == 0) covered = 0;
        }
        mb_body_destroy(&r);
        if (covered == (int)nd) return;
        if (i == 0 && !as_json)
            fprintf(stderr, "moebus eval: waiting for the router...\n");
        usleep(500000);
    }
    fprintf(stderr, "moebus eval: the router does not cover every domain; routed figures "
                    "are for what it has\n");
}

static int s_mix(mb_client_t *c, const char *home, const char *endpoint,
                 const char *embed, char **dirs, size_t nd, const char *mode,
                 size_t limit, int as_json) {
    /* a shell glob over a data folder also names files (SOURCE.txt): skip them */
    size_t keep = 0;
    for (size_t i = 0; i < nd; i++) {
        struct stat sb;
        if (stat(dirs[i], &sb) == 0 && S_ISDIR(sb.st_mode))
            dirs[keep++] = dirs[i];
        else if (!as_json)
            fprintf(stderr, "moebus eval: skipping %s (not a directory)\n", dirs[i]);
    }
    nd = keep;
    dataset_t *ds = calloc(nd ? nd : 1, sizeof *ds);
    int rc = nd ? 0 : 1;
    for (size_t i = 0; i < nd && rc == 0; i++) {
        s_domain_name(dirs[i], ds[i].name, sizeof ds[i].name);
        if (s_load(&ds[i], dirs[i], limit) != 0 ||
            s_prepare(c, home, endpoint, embed, &ds[i], as_json) != 0)
            rc = 1;
    }
    if (rc != 0) goto done;
    json_t *out = json_pack("{s:s, s:[]}", "mode", mode, "datasets");
    json_t *alld = json_array();
    for (size_t i = 0; i < nd; i++)
        json_array_append_new(alld, json_string(ds[i].name));
    /* the router must know every domain before routed figures mean anything */
    s_wait_router(c, ds, nd, as_json);
    score_t tot_all = {0}, tot_or = {0}, tot_rt = {0};
    size_t tot_hit = 0, tot_q = 0;
    int64_t tot_dom = 0;
    if (!as_json)
        printf("%-12s %7s %12s %12s %12s %8s %8s %10s  (nDCG@10, %s, %s router)\n",
               "dataset", "queries", "all-domains", "oracle", "routed", "top-1",
               "domains", "p50 ms", mode, s_router_kind ? s_router_kind : "learned");
    for (size_t i = 0; i < nd; i++) {
        score_t all = {0}, orc = {0}, rt = {0};
        size_t hit = 0;
        int64_t dom = 0;
        for (size_t q = 0; q < ds[i].n; q++) {
            char **ranked;
            size_t nr;
            /* all domains: a hit from another domain is simply not relevant
             * (its id cannot be in this query's qrels) */
            int64_t us = s_search_in(c, ds[i].q[q].text, mode, NULL, alld, &ranked, &nr);
            if (us < 0) all.failed++;
            s_score_add(&all, ranked, nr, &ds[i].q[q], us < 0 ? 0 : us);
            s_score_add(&tot_all, ranked, nr, &ds[i].q[q], us < 0 ? 0 : us);
            s_ranked_free(ranked, nr);
            us = s_search(c, ds[i].q[q].text, mode, ds[i].name, &ranked, &nr);
            if (us < 0) orc.failed++;
            s_score_add(&orc, ranked, nr, &ds[i].q[q], us < 0 ? 0 : us);
            s_score_add(&tot_or, ranked, nr, &ds[i].q[q], us < 0 ? 0 : us);
            s_ranked_free(ranked, nr);
            s_routed_top[0] = 0;
            s_routed_searched = 0;
            us = s_search_in(c, ds[i].q[q].text, mode, NULL, NULL, &ranked, &nr);
            if (us < 0) rt.failed++;
            s_score_add(&rt, ranked, nr, &ds[i].q[q], us < 0 ? 0 : us);
            s_score_add(&tot_rt, ranked, nr, &ds[i].q[q], us < 0 ? 0 : us);
            s_ranked_free(ranked, nr);
            hit += strcmp(s_routed_top, ds[i].name) == 0;
            dom += s_routed_searched;
        }
        tot_hit += hit;
        tot_dom += dom;
        tot_q += ds[i].n;
        double qn = ds[i].n ? (double)ds[i].n : 1;
        json_t *ja = s_score_json(&all), *jo = s_score_json(&orc),
               *jr = s_score_json(&rt);
        if (!as_json)
            printf("%-12s %7zu %12.4f %12.4f %12.4f %8.3f %8.2f %10.2f\n", ds[i].name,
                   ds[i].n, json_real_value(json_object_get(ja, "ndcg@10")),
                   json_real_value(json_object_get(jo, "ndcg@10")),
                   json_real_value(json_object_get(jr, "ndcg@10")), hit / qn, dom / qn,
                   json_real_value(
                       json_object_get(json_object_get(jr, "latency_ms"), "median")));
        json_array_append_new(json_object_get(out, "datasets"),
                              json_pack("{s:s, s:s, s:o, s:o, s:o, s:f, s:f}", "dataset",
                                        dirs[i], "domain", ds[i].name, "all", ja,
                                        "oracle", jo, "routed", jr, "router_top1",
                                        hit / qn, "avg_domains", dom / qn));
    }
    double tq = tot_q ? (double)tot_q : 1;
    json_t *ta = s_score_json(&tot_all), *to = s_score_json(&tot_or),
           *tr = s_score_json(&tot_rt);
    if (!as_json)
        printf("%-12s %7zu %12.4f %12.4f %12.4f %8.3f %8.2f %10.2f\n", "overall", tot_q,
               json_real_value(json_object_get(ta, "ndcg@10")),
               json_real_value(json_object_get(to, "ndcg@10")),
               json_real_value(json_object_get(tr, "ndcg@10")), tot_hit / tq,
               tot_dom / tq,
               json_real_value(
                   json_object_get(json_object_get(tr, "latency_ms"), "median")));
    json_object_set_new(out, "overall",
                        json_pack("{s:o, s:o, s:o, s:f, s:f, s:s}", "all", ta, "oracle",
                                  to, "routed", tr, "router_top1", tot_hit / tq,
                                  "avg_domains", tot_dom / tq, "router",
                                  s_router_kind ? s_router_kind : "learned"));
    json_decref(alld);
    if (as_json) s_print(out);
    json_decref(out);
done:
    for (size_t i = 0; i < nd; i++)
        s_free(&ds[i]);
    free(ds);
    return rc;
}

/* Router and gate accuracy in-process, on HOME's stores (the domains must
 * be ingested: eval --mix does it). Each dataset's queries belong to the
 * domain named after its folder. Learned vs pilot top-1, what top-p picks,
 * and, for each domain left out of training in turn, the gate's decisions
 * on the in-scope and on the left-out queries. */
static const char *s_labels_path; /* --labels */

static int s_router_report(const char *home, char **dirs, size_t nd, size_t limit,
                           int gate_loo, int as_json) {
    dataset_t *ds = calloc(nd ? nd : 1, sizeof *ds);
    mb_rdomain_t *rd = calloc(nd ? nd : 1, sizeof *rd);
    char(*ddir)[4096] = calloc(nd ? nd : 1, sizeof *ddir);
    int rc = 0;
    json_t *out = json_object();
    mb_rmodel_t *m = NULL;
    mb_rlabel_t *labels = NULL;
    size_t nlabels = 0;
    mb_wordvec_t *wv = NULL;
    for (size_t i = 0; i < nd; i++) {
        s_domain_name(dirs[i], ds[i].name, sizeof ds[i].name);
        if (s_load(&ds[i], dirs[i], limit) != 0) {
            rc = 1;
            goto done;
        }
        mb_home_domain_dir(home, ds[i].name, ddir[i], sizeof ddir[i]);
        rd[i].name = ds[i].name;
        rd[i].dir = ddir[i];
    }
    mb_err_t err;
    /* the router worker's knobs, so a report trains what the service would */
    const char *ep = getenv("MOEBUS_ROUTER_PSEUDO"), *es = getenv("MOEBUS_ROUTER_SAMPLE");
    mb_rtrain_opts_t opts = {.pseudo_per_domain = ep ? (size_t)atol(ep) : 0,
                             .sample = es ? (size_t)atol(es) : 0};
    /* labelled queries train the router and are left out of the figures */
    size_t lcap = 0;
    FILE *lf = s_labels_path ? fopen(s_labels_path, "r") : NULL;
    if (s_labels_path && !lf) {
        fprintf(stderr, "moebus eval: cannot read %s\n", s_labels_path);
        rc = 1;
        goto done;
    }
    char lline[4096];
    while (lf && fgets(lline, sizeof lline, lf)) {
        lline[strcspn(lline, "\r\n")] = 0;
        char *tab = strrchr(lline, '\t');
        if (!tab || tab == lline) continue;
        *tab = 0;
        if (nlabels == lcap)
            labels = mb_xrealloc(labels, (lcap = lcap ? lcap * 2 : 256) * sizeof *labels);
        labels[nlabels].query = strdup(lline);
        labels[nlabels++].domain = strdup(tab + 1);
    }
    if (lf) fclose(lf);
    opts.labels = labels;
    opts.nlabels = nlabels;
    const char *wvp = getenv("MOEBUS_WORD_VECTORS");
    if (wvp && *wvp) {
        wv = mb_wordvec_load(wvp, &err);
        if (!wv) fprintf(stderr, "moebus eval: %s: hashed pilots\n", err.msg);
        opts.wordvec = wv;
    }
    int64_t t0 = mb_clock_us();
    m = mb_rmodel_train(rd, nd, &opts, &err);
    double train_ms = (double)(mb_clock_us() - t0) / 1000.0;
    if (!m) {
        fprintf(stderr, "moebus eval: router training failed: %s\n", err.msg);
        rc = 1;
        goto done;
    }
    size_t nm = mb_rmodel_ndomains(m);
    double *probs = calloc(nm, sizeof *probs);
    size_t *order = calloc(nm, sizeof *order);
    size_t total = 0, hit[2] = {0}, cover[2] = {0}, chosen[2] = {0}, retr = 0;
    size_t lat_n = 0;
    int64_t *lat = NULL;
    json_t *per = json_array();
    if (!as_json)
        printf("%-12s %7s %9s %9s %9s %9s %8s\n", "domain", "queries", "learned", "pilot",
               "covered", "domains", "retrieve");
    for (size_t i = 0; i < nd; i++) {
        int truth = mb_rmodel_find(m, ds[i].name);
        size_t h[2] = {0}, cv = 0, ch = 0, rt = 0;
        size_t counted = 0;
        for (size_t q = 0; q < ds[i].n; q++) {
            int labelled = 0;
            for (size_t l = 0; l < nlabels && !labelled; l++)
                labelled = strcmp(labels[l].query, ds[i].q[q].text) == 0;
            if (labelled) continue;
            counted++;
            for (int kind = 0; kind < 2; kind++) {
                mb_rgate_t g;
                int64_t s0 = mb_clock_us();
                if (mb_rmodel_score(m, ds[i].q[q].text, kind, NULL, 0.9, 3, probs, &g,
                                    &err) != 0)
                    continue;
                if (kind == 0) {
                    lat = mb_xrealloc(lat, (lat_n + 1) * sizeof *lat);
                    lat[lat_n++] = mb_clock_us() - s0;
                }
                /* a tie at the top is no decision (a query no word of which
                 * the pilots' base space knows scores every domain alike) */
                size_t best = 0, ties = 0;
                for (size_t d = 1; d < nm; d++)
                    if (probs[d] > probs[best]) best = d;
                for (size_t d = 0; d < nm; d++)
                    ties += probs[d] == probs[best];
                h[kind] += (int)best == truth && ties == 1;
                size_t nsel = mb_router_top_p(probs, nm, 0.9, 3, order);
                int in = 0;
                for (size_t s = 0; s < nsel; s++)
                    in |= (int)order[s] == truth;
                if (kind == 0) {
                    cv += in;
                    ch += nsel;
                    rt += g.p_in >= mb_rmodel_threshold(m);
                } else {
                    cover[1] += in;
                    chosen[1] += nsel;
                }
            }
        }
        double n = (double)(counted ? counted : 1);
        if (truth < 0) {
            /* a dataset with no domain in HOME: its queries are out of scope,
             * and the share the gate sends to internal is what counts */
            if (!as_json)
                printf("%-12s %7zu %9s %9s %9s %9s %8.3f  (not indexed: %.3f internal)\n",
                       ds[i].name, counted, "-", "-", "-", "-", rt / n, 1 - rt / n);
            json_array_append_new(per,
                                  json_pack("{s:s, s:I, s:b, s:f}", "domain", ds[i].name,
                                            "queries", (json_int_t)ds[i].n, "indexed", 0,
                                            "internal_rate", 1 - rt / n));
            continue;
        }
        total += counted;
        hit[0] += h[0], hit[1] += h[1], cover[0] += cv, chosen[0] += ch, retr += rt;
        if (!as_json)
            printf("%-12s %7zu %9.3f %9.3f %9.3f %9.2f %8.3f\n", ds[i].name, counted,
                   h[0] / n, h[1] / n, cv / n, ch / n, rt / n);
        json_array_append_new(
            per, json_pack("{s:s, s:I, s:f, s:f, s:f, s:f, s:f}", "domain", ds[i].name,
                           "queries", (json_int_t)counted, "learned_top1", h[0] / n,
                           "pilot_top1", h[1] / n, "top_p_covers", cv / n, "avg_domains",
                           ch / n, "retrieve_rate", rt / n));
    }
    double tn = (double)(total ? total : 1);
    double med = 0;
    if (lat_n) {
        qsort(lat, lat_n, sizeof *lat, s_cmp_i64);
        med = (double)lat[lat_n / 2];
    }
    mb_rmodel_stats_t st;
    mb_rmodel_stats(m, &st);
    if (!as_json) {
        printf("%-12s %7zu %9.3f %9.3f %9.3f %9.2f %8.3f\n", "overall", total,
               hit[0] / tn, hit[1] / tn, cover[0] / tn, chosen[0] / tn, retr / tn);
        printf("router: %zu domains, trained in %.0f ms on %zu pseudo-queries "
               "(held-out top-1 %.3f, pilot %.3f, T %.2f); route median %.1f us\n",
               nm, train_ms, st.examples, st.heldout_acc, st.pilot_acc, st.temperature,
               med);
    }
    json_object_set_new(out, "domains", per);
    json_object_set_new(out, "overall",
                        json_pack("{s:I, s:f, s:f, s:f, s:f, s:f, s:f, s:f}", "queries",
                                  (json_int_t)total, "learned_top1", hit[0] / tn,
                                  "pilot_top1", hit[1] / tn, "top_p_covers",
                                  cover[0] / tn, "avg_domains", chosen[0] / tn,
                                  "retrieve_rate", retr / tn, "train_ms", train_ms,
                                  "route_median_us", med));
    free(lat);
    free(probs);
    free(order);
    if (gate_loo && nd > 2) {
        /* each domain left out of the index in turn: a model without it */
        json_t *loo = json_array();
        if (!as_json)
            printf("\ngate, one domain left out: %-10s %9s %9s\n", "left out", "in->retr",
                   "out->int");
        for (size_t x = 0; x < nd; x++) {
            mb_rdomain_t *sub = calloc(nd, sizeof *sub);
            size_t ns = 0;
            for (size_t i = 0; i < nd; i++)
                if (i != x) sub[ns++] = rd[i];
            mb_rmodel_t *lm = mb_rmodel_train(sub, ns, &opts, &err);
            free(sub);
            if (!lm) continue;
            double *pp = calloc(mb_rmodel_ndomains(lm), sizeof *pp);
            size_t in_n = 0, in_r = 0, out_n = 0, out_i = 0;
            for (size_t i = 0; i < nd; i++)
                for (size_t q = 0; q < ds[i].n; q++) {
                    mb_rgate_t g;
                    if (mb_rmodel_score(lm, ds[i].q[q].text, 0, NULL, 0.9, 3, pp, &g,
                                        &err) != 0)
                        continue;
                    if (i == x)
                        out_n++, out_i += g.p_in < mb_rmodel_threshold(lm);
                    else
                        in_n++, in_r += g.p_in >= mb_rmodel_threshold(lm);
                }
            free(pp);
            mb_rmodel_destroy(&lm);
            double a = in_n ? (double)in_r / in_n : 0,
                   b = out_n ? (double)out_i / out_n : 0;
            if (!as_json) printf("%37s %9.3f %9.3f\n", ds[x].name, a, b);
            json_array_append_new(loo, json_pack("{s:s, s:f, s:f}", "left_out",
                                                 ds[x].name, "in_scope_retrieved", a,
                                                 "left_out_internal", b));
        }
        json_object_set_new(out, "gate_leave_one_out", loo);
    }
    if (as_json) s_print(out);
done:
    for (size_t l = 0; l < nlabels; l++)
        free((char *)labels[l].query), free((char *)labels[l].domain);
    free(labels);
    json_decref(out);
    mb_rmodel_destroy(&m);
    mb_wordvec_destroy(&wv);
    for (size_t i = 0; i < nd; i++)
        s_free(&ds[i]);
    free(ds);
    free(rd);
    free(ddir);
    return rc;
}

int mb_eval_main(int argc, char **argv) {
    if (mb_svc_wants_help(argc, argv, s_usage)) return 0;
    const char *home = mb_default_home(), *endpoint = mb_default_endpoint();
    const char *domain = NULL, *mode = "hybrid", *embed = "builtin";
    int as_json = 0, mix = 0, router_report = 0, gate_loo = 0;
    size_t limit = 0;
    static struct option opts[] = {
        {"home", required_argument, 0, 'H'},    {"endpoint", required_argument, 0, 'e'},
        {"domain", required_argument, 0, 'd'},  {"mode", required_argument, 0, 'm'},
        {"embed", required_argument, 0, 'b'},   {"limit", required_argument, 0, 'l'},
        {"json", no_argument, 0, 'j'},          {"mix", no_argument, 0, 'x'},
        {"router-report", no_argument, 0, 'R'}, {"router", required_argument, 0, 'r'},
        {"gate-loo", no_argument, 0, 'G'},      {"p", required_argument, 0, 'p'},
        {"labels", required_argument, 0, 'L'},  {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "H:e:d:m:b:l:jxRGr:p:L:", opts, NULL)) != -1) {
        switch (c) {
        case 'H':
            home = optarg;
            break;
        case 'e':
            endpoint = optarg;
            break;
        case 'd':
            domain = optarg;
            break;
        case 'm':
            mode = optarg;
            break;
        case 'b':
            embed = optarg;
            break;
        case 'l':
            limit = (size_t)atol(optarg);
            break;
        case 'j':
            as_json = 1;
            break;
        case 'x':
            mix = 1;
            break;
        case 'R':
            router_report = 1;
            break;
        case 'L':
            s_labels_path = optarg;
            break;
        case 'p':
            s_route_p = atof(optarg);
            if (!(s_route_p > 0 && s_route_p <= 1)) {
                fputs("moebus eval: --p must be in (0, 1]\n", stderr);
                return 2;
            }
            break;
        case 'r':
            if (strcmp(optarg, "learned") != 0 && strcmp(optarg, "pilot") != 0) {
                fputs("moebus eval: --router must be learned or pilot\n", stderr);
                return 2;
            }
            s_router_kind = optarg;
            break;
        case 'G':
            router_report = gate_loo = 1;
            break;
        default:
            fputs(s_usage, stderr);
            return 2;
        }
    }
    int nd = argc - optind;
    if (router_report) {
        if (nd < 2) {
            fputs(s_usage, stderr);
            return 2;
        }
        return s_router_report(home, argv + optind, (size_t)nd, limit, gate_loo, as_json);
    }
    int mode_ok = strcmp(mode, "hybrid") == 0 || strcmp(mode, "dense") == 0 ||
                  strcmp(mode, "lexical") == 0 || (!mix && strcmp(mode, "all") == 0);
    if (nd < 1 || !mode_ok || (!mix && (!domain || nd != 1))) {
        fputs(s_usage, stderr);
        return 2;
    }
    if (domain && !mb_domain_name_valid(domain)) {
        fprintf(stderr, "moebus eval: invalid domain name '%s'\n", domain);
        return 2;
    }
    mb_err_t err;
    mb_client_t *client = mb_client_new(endpoint, &err);
    if (!client) {
        fprintf(stderr, "moebus eval: %s\n", err.msg);
        return 1;
    }
    int rc = mix ? s_mix(client, home, endpoint, embed, argv + optind, (size_t)nd, mode,
                         limit, as_json)
                 : s_single(client, home, endpoint, embed, argv[optind], domain, mode,
                            limit, as_json);
    mb_client_destroy(&client);
    return rc;
}
