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
    "                  the query's own domain only (oracle), per dataset and overall\n"
    "  --mode M        hybrid (default), dense, lexical, or all (each in turn)\n"
    "  --embed B       expert for domains eval creates (default builtin)\n"
    "  --limit N       ask only the first N judged queries\n"
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
static int64_t s_search(mb_client_t *c, const char *query, const char *mode,
                        const char *domain, char ***ranked, size_t *n) {
    json_t *j = json_pack("{s:s, s:s, s:i, s:s, s:i}", "op", "search", "query", query,
                          "k", EVAL_K, "mode", mode, "timeout_ms", CALL_MS);
    if (domain) json_object_set_new(j, "domains", json_pack("[s]", domain));
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
    json_t *out = json_pack("{s:s, s:[], s:n}", "mode", mode, "datasets", "routed");
    score_t tot_all = {0}, tot_or = {0};
    if (!as_json)
        printf("%-12s %7s %12s %12s %10s  (nDCG@10, %s; routed: no router yet)\n",
               "dataset", "queries", "all-domains", "oracle", "p50 ms", mode);
    for (size_t i = 0; i < nd; i++) {
        score_t all = {0}, orc = {0};
        for (size_t q = 0; q < ds[i].n; q++) {
            char **ranked;
            size_t nr;
            /* all domains: a hit from another domain is simply not relevant
             * (its id cannot be in this query's qrels) */
            int64_t us = s_search(c, ds[i].q[q].text, mode, NULL, &ranked, &nr);
            if (us < 0) all.failed++;
            s_score_add(&all, ranked, nr, &ds[i].q[q], us < 0 ? 0 : us);
            s_score_add(&tot_all, ranked, nr, &ds[i].q[q], us < 0 ? 0 : us);
            s_ranked_free(ranked, nr);
            us = s_search(c, ds[i].q[q].text, mode, ds[i].name, &ranked, &nr);
            if (us < 0) orc.failed++;
            s_score_add(&orc, ranked, nr, &ds[i].q[q], us < 0 ? 0 : us);
            s_score_add(&tot_or, ranked, nr, &ds[i].q[q], us < 0 ? 0 : us);
            s_ranked_free(ranked, nr);
        }
        json_t *ja = s_score_json(&all), *jo = s_score_json(&orc);
        if (!as_json)
            printf("%-12s %7zu %12.4f %12.4f %10.2f\n", ds[i].name, ds[i].n,
                   json_real_value(json_object_get(ja, "ndcg@10")),
                   json_real_value(json_object_get(jo, "ndcg@10")),
                   json_real_value(
                       json_object_get(json_object_get(ja, "latency_ms"), "median")));
        json_array_append_new(json_object_get(out, "datasets"),
                              json_pack("{s:s, s:s, s:o, s:o}", "dataset", dirs[i],
                                        "domain", ds[i].name, "all", ja, "oracle", jo));
    }
    json_t *ta = s_score_json(&tot_all), *to = s_score_json(&tot_or);
    if (!as_json)
        printf("%-12s %7lld %12.4f %12.4f %10.2f\n", "overall",
               (long long)mb_json_int(ta, "queries", 0),
               json_real_value(json_object_get(ta, "ndcg@10")),
               json_real_value(json_object_get(to, "ndcg@10")),
               json_real_value(
                   json_object_get(json_object_get(ta, "latency_ms"), "median")));
    json_object_set_new(out, "overall", json_pack("{s:o, s:o}", "all", ta, "oracle", to));
    if (as_json) s_print(out);
    json_decref(out);
done:
    for (size_t i = 0; i < nd; i++)
        s_free(&ds[i]);
    free(ds);
    return rc;
}

int mb_eval_main(int argc, char **argv) {
    if (mb_svc_wants_help(argc, argv, s_usage)) return 0;
    const char *home = mb_default_home(), *endpoint = mb_default_endpoint();
    const char *domain = NULL, *mode = "hybrid", *embed = "builtin";
    int as_json = 0, mix = 0;
    size_t limit = 0;
    static struct option opts[] = {{"home", required_argument, 0, 'H'},
                                   {"endpoint", required_argument, 0, 'e'},
                                   {"domain", required_argument, 0, 'd'},
                                   {"mode", required_argument, 0, 'm'},
                                   {"embed", required_argument, 0, 'b'},
                                   {"limit", required_argument, 0, 'l'},
                                   {"json", no_argument, 0, 'j'},
                                   {"mix", no_argument, 0, 'x'},
                                   {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "H:e:d:m:b:l:jx", opts, NULL)) != -1) {
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
        default:
            fputs(s_usage, stderr);
            return 2;
        }
    }
    int nd = argc - optind;
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
