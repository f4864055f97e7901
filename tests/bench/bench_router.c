/* bench_router — the learned router's costs: retraining for N domains
 * (default 10) and the time to route one query, against the raw component
 * every query pays anyway (tokenising it: normalisation + stemming).
 *
 *   bench_router [--quick] [--domains N] [--passages P]
 *   bench_router --endpoint E     (a running service: the route op's round
 *                                  trip against the broker's own mmi.service)
 *
 * The domains are synthetic (each its own 400-word vocabulary drawn with a
 * Zipf law, plus a shared one, 40 words per passage) with a hash expert, so
 * the dense centroid feature is computed as in service; the figures are
 * about cost, not accuracy (`moebus eval --router-report` measures that on
 * real data). Medians of 3 trainings and of every routed query. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "embed.h"
#include "mb_client.h"
#include "mb_mdp.h"
#include "rmodel.h"
#include "store.h"
#include "text.h"

static unsigned s_lcg(unsigned *s) {
    return *s = *s * 1103515245u + 12345u;
}

/* a pronounceable word from an id */
static void s_word(unsigned id, char *out) {
    static const char *syl[] = {"ka", "lo", "mi", "ne", "ru", "sa", "to", "vi",
                                "ze", "po", "qu", "di", "fa", "gu", "hy", "jo"};
    int n = 0;
    out[0] = 0;
    do {
        strcat(out, syl[id & 15]);
        id >>= 4;
        n++;
    } while (id && n < 5);
}

static unsigned s_zipf(unsigned *seed, unsigned n) {
    double u = (double)(s_lcg(seed) >> 8) / 16777216.0;
    return (unsigned)(pow((double)n, u)) - 1;
}

static void s_noop(const char *tok, size_t len, void *arg) {
    (void)tok;
    (void)len;
    (void)arg;
}

static int s_cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The route op through the bus against the raw broker round trip (an
 * mmi.service request the broker answers itself), same run, medians. */
static int s_bus(const char *endpoint) {
    static const char *qs[] = {
        "wideband atm",         "disk farm", "flaxen", "target company",
        "the color of the sky", "heaven"};
    mb_err_t err;
    mb_client_t *c = mb_client_new(endpoint, &err);
    if (!c) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    enum { N = 600 };
    static double rt[N], raw[N], in[N];
    for (int i = 0; i < N; i++) {
        mb_body_t *req = mb_body_new(
                      json_pack("{s:s, s:s}", "op", "route", "query", qs[i % 6])),
                  *rep = NULL;
        int64_t t0 = mb_clock_us();
        if (mb_client_call(c, "router", &req, &rep, 5000, &err) != 0) {
            fprintf(stderr, "route: %s\n", err.msg);
            mb_body_destroy(&rep);
            mb_client_destroy(&c);
            return 1;
        }
        rt[i] = (double)(mb_clock_us() - t0);
        in[i] = (double)mb_json_int(mb_body_json(rep), "route_us", 0);
        mb_body_destroy(&rep);
        req = mb_body_new(json_pack("{s:s}", "service", "router"));
        t0 = mb_clock_us();
        mb_client_call(c, "mmi.service", &req, &rep, 5000, &err);
        raw[i] = (double)(mb_clock_us() - t0);
        mb_body_destroy(&rep);
    }
    qsort(rt, N, sizeof *rt, s_cmp);
    qsort(raw, N, sizeof *raw, s_cmp);
    qsort(in, N, sizeof *in, s_cmp);
    printf("bench_router --endpoint %s: %d requests each\n", endpoint, N);
    printf(
        "  route through the bus: median %.0f us (scoring inside the router %.0f us)\n",
        rt[N / 2], in[N / 2]);
    printf("  raw broker round trip (mmi.service): median %.0f us -> route/raw %.1fx\n",
           raw[N / 2], rt[N / 2] / (raw[N / 2] > 0 ? raw[N / 2] : 1));
    mb_client_destroy(&c);
    return 0;
}

int main(int argc, char **argv) {
    int quick = 0, nd = 10, np = 2000;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0)
            quick = 1;
        else if (strcmp(argv[i], "--domains") == 0 && i + 1 < argc)
            nd = atoi(argv[++i]);
        else if (strcmp(argv[i], "--passages") == 0 && i + 1 < argc)
            np = atoi(argv[++i]);
        else if (strcmp(argv[i], "--endpoint") == 0 && i + 1 < argc)
            return s_bus(argv[i + 1]);
        else {
            fprintf(stderr,
                    "usage: bench_router [--quick] [--domains N] [--passages P]\n");
            return 2;
        }
    }
    if (quick) np = 300;
    if (nd < 2 || nd > 64 || np < 10) return 2;
    char home[] = "/tmp/mb-bench-router-XXXXXX";
    if (!mkdtemp(home)) return 1;
    char(*dirs)[512] = calloc((size_t)nd, sizeof *dirs);
    char(*names)[32] = calloc((size_t)nd, sizeof *names);
    mb_rdomain_t *rd = calloc((size_t)nd, sizeof *rd);
    unsigned seed = 11;
    mb_err_t err;
    for (int d = 0; d < nd; d++) {
        snprintf(names[d], sizeof names[d], "domain%02d", d);
        snprintf(dirs[d], sizeof dirs[d], "%s/%s", home, names[d]);
        mkdir(dirs[d], 0755);
        char path[600];
        snprintf(path, sizeof path, "%s/store.db", dirs[d]);
        mb_store_t *st = mb_store_open(path, 256, &err);
        mb_store_begin(st, &err);
        for (int p = 0; p < np; p++) {
            char text[2048] = "", w[16], id[32];
            for (int k = 0; k < 40; k++) {
                /* a third shared, the rest the domain's own */
                unsigned wid = k % 3 == 0 ? 100000 + s_zipf(&seed, 400)
                                          : (unsigned)d * 1000 + s_zipf(&seed, 400);
                s_word(wid * 2654435761u >> 12, w);
                strcat(text, w);
                strcat(text, " ");
            }
            snprintf(id, sizeof id, "%d", p);
            int64_t row, cid;
            mb_store_doc_insert(st, id, "", "", NULL, &row, &err);
            mb_store_chunk_insert(st, row, 0, text, NULL, "", &cid, &err);
        }
        mb_store_commit(st, &err);
        mb_store_close(&st);
        mb_expert_spec_t spec = {.backend = "hash", .dim = 256};
        mb_expert_spec_version(&spec);
        mb_expert_write(dirs[d], &spec, &err);
        rd[d] = (mb_rdomain_t){names[d], dirs[d]};
    }
    int runs = quick ? 1 : 3;
    double train[3];
    mb_rmodel_t *m = NULL;
    for (int r = 0; r < runs; r++) {
        mb_rmodel_destroy(&m);
        int64_t t0 = mb_clock_us();
        m = mb_rmodel_train(rd, (size_t)nd, NULL, &err);
        train[r] = (double)(mb_clock_us() - t0) / 1000.0;
        if (!m) {
            fprintf(stderr, "train: %s\n", err.msg);
            return 1;
        }
    }
    qsort(train, (size_t)runs, sizeof *train, s_cmp);
    /* queries: 1-3 words of one domain's vocabulary */
    int nq = quick ? 300 : 3000;
    char(*qs)[64] = calloc((size_t)nq, sizeof *qs);
    for (int i = 0; i < nq; i++) {
        int d = i % nd, words = 1 + i % 3;
        qs[i][0] = 0;
        for (int k = 0; k < words; k++) {
            char w[16];
            s_word(((unsigned)d * 1000 + s_zipf(&seed, 400)) * 2654435761u >> 12, w);
            if (k) strcat(qs[i], " ");
            strcat(qs[i], w);
        }
    }
    double *lat = calloc((size_t)nq, sizeof *lat), *raw = calloc((size_t)nq, sizeof *raw);
    double *probs = calloc((size_t)nd, sizeof *probs);
    mb_text_t *tx = mb_text_new();
    int hit = 0;
    for (int i = 0; i < nq; i++) {
        struct timespec a, b;
        clock_gettime(CLOCK_MONOTONIC, &a);
        mb_text_tokenize(tx, qs[i], strlen(qs[i]), s_noop, NULL, &err);
        clock_gettime(CLOCK_MONOTONIC, &b);
        raw[i] =
            (double)(b.tv_sec - a.tv_sec) * 1e6 + (double)(b.tv_nsec - a.tv_nsec) / 1e3;
        mb_rgate_t g;
        clock_gettime(CLOCK_MONOTONIC, &a);
        mb_rmodel_score(m, qs[i], MB_ROUTER_LEARNED, NULL, 0.9, 3, probs, &g, &err);
        clock_gettime(CLOCK_MONOTONIC, &b);
        lat[i] =
            (double)(b.tv_sec - a.tv_sec) * 1e6 + (double)(b.tv_nsec - a.tv_nsec) / 1e3;
        int best = 0;
        for (int d = 1; d < nd; d++)
            if (probs[d] > probs[best]) best = d;
        hit += mb_rmodel_find(m, names[i % nd]) == best;
    }
    qsort(lat, (size_t)nq, sizeof *lat, s_cmp);
    qsort(raw, (size_t)nq, sizeof *raw, s_cmp);
    mb_rmodel_stats_t st;
    mb_rmodel_stats(m, &st);
    void *blob;
    size_t size;
    mb_rmodel_save(m, &blob, &size, &err);
    printf("bench_router: %d domains x %d passages (synthetic, hash expert)\n", nd, np);
    printf("  retrain (median of %d): %.0f ms, %zu pseudo-queries; model %.1f MB in the "
           "catalog\n",
           runs, train[runs / 2], st.examples, (double)size / 1048576.0);
    printf("  route one query: median %.1f us, p99 %.1f us (learned router + gate "
           "features)\n",
           lat[nq / 2], lat[nq * 99 / 100]);
    printf("  raw tokenize:    median %.1f us  -> route/raw %.1fx\n", raw[nq / 2],
           lat[nq / 2] / (raw[nq / 2] > 0 ? raw[nq / 2] : 1e-3));
    printf("  top-1 on %d synthetic queries: %.3f (sanity: the vocabularies are "
           "disjoint)\n",
           nq, (double)hit / nq);
    int ok = (double)hit / nq > 0.9;
    free(blob);
    mb_text_destroy(&tx);
    mb_rmodel_destroy(&m);
    free(lat);
    free(raw);
    free(probs);
    free(qs);
    free(rd);
    free(names);
    free(dirs);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", home);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", home);
    return ok ? 0 : 1;
}
