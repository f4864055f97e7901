/* bench_index — the index service's search and ingest paths against raw
 * FAISS, in one run.
 *
 * For Flat and HNSW32 over N random unit vectors (default 100,000 x 256):
 *   raw      FAISS C API directly: IDMap2,<type>, add_with_ids, search k=10
 *   moebus   mb_index (what the index worker runs per request): SQLite store
 *            + FTS5 + FAISS on add; FAISS + store lookups + JSON on search
 * Reports search latency median/p99 and QPS (one query at a time), ingest
 * chunks/s, the ratios, and HNSW32's recall@10 against exact Flat results.
 * Figures, not a test; CI runs it with --quick.
 *
 * Then the same index served by a real `moebus broker` + `moebus index`
 * process: search latency over the bus, and what the bus adds. And once on a
 * real corpus (../shared/data/dict/english through the builtin embedder),
 * skipped with a message where the data is absent.
 *
 * usage: bench_index MOEBUS_BINARY [N] [--quick]
 */
#include <faiss/c_api/AutoTune_c.h>
#include <faiss/c_api/Index_c.h>
#include <faiss/c_api/index_factory_c.h>
#include <faiss/c_api/index_io_c.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "embed.h"
#include "home.h"
#include "index.h"
#include "mb_client.h"
#include "reader.h"

#define DIM 256
#define K 10

static double s_now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static uint64_t s_rng = 88172645463325252ULL;
static double s_gauss(void) {
    /* xorshift + Box-Muller: reproducible without libc's rand state */
    s_rng ^= s_rng << 13, s_rng ^= s_rng >> 7, s_rng ^= s_rng << 17;
    double u1 = ((double)(s_rng >> 11) + 1) / 9007199254740993.0;
    s_rng ^= s_rng << 13, s_rng ^= s_rng >> 7, s_rng ^= s_rng << 17;
    double u2 = (double)(s_rng >> 11) / 9007199254740992.0;
    return sqrt(-2 * log(u1)) * cos(6.283185307179586 * u2);
}

static void s_unit_vectors(float *x, size_t n) {
    for (size_t i = 0; i < n; i++) {
        double norm = 0;
        for (int d = 0; d < DIM; d++) {
            x[i * DIM + d] = (float)s_gauss();
            norm += (double)x[i * DIM + d] * x[i * DIM + d];
        }
        for (int d = 0; d < DIM; d++)
            x[i * DIM + d] /= (float)sqrt(norm);
    }
}

static int s_cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

typedef struct {
    double median, p99, qps, ingest;
} fig_t;

static void s_lat(double *us, int n, fig_t *f) {
    double total = 0;
    for (int i = 0; i < n; i++)
        total += us[i];
    qsort(us, (size_t)n, sizeof *us, s_cmp);
    f->median = us[n / 2];
    f->p99 = us[(int)(n * 0.99)];
    f->qps = n / (total / 1e6);
}

static void s_raw(const char *type, const float *x, size_t n, const float *q, int nq,
                  int64_t *labels_out, fig_t *f) {
    char desc[64];
    snprintf(desc, sizeof desc, "IDMap2,%s", type);
    FaissIndex *idx = NULL;
    faiss_index_factory(&idx, DIM, desc, METRIC_INNER_PRODUCT);
    if (strstr(type, "HNSW")) {
        FaissParameterSpace *ps = NULL;
        faiss_ParameterSpace_new(&ps);
        faiss_ParameterSpace_set_index_parameter(ps, idx, "efSearch",
                                                 128); /* as moebus */
        faiss_ParameterSpace_free(ps);
    }
    int64_t *ids = malloc(n * sizeof *ids);
    for (size_t i = 0; i < n; i++)
        ids[i] = (int64_t)i + 1;
    double t0 = s_now_us();
    for (size_t at = 0; at < n; at += 1000)
        faiss_Index_add_with_ids(idx, (idx_t)(n - at < 1000 ? n - at : 1000),
                                 x + at * DIM, ids + at);
    f->ingest = (double)n / ((s_now_us() - t0) / 1e6);
    double *us = malloc((size_t)nq * sizeof *us);
    float scores[K];
    for (int i = 0; i < nq; i++) {
        double s = s_now_us();
        faiss_Index_search(idx, 1, q + (size_t)i * DIM, K, scores,
                           labels_out + (size_t)i * K);
        us[i] = s_now_us() - s;
    }
    s_lat(us, nq, f);
    free(us);
    free(ids);
    faiss_Index_free(idx);
}

static double s_recall(const int64_t *exact, const int64_t *got, int nq);

/* The doc ids (numbers here) of a result list, -1 past its end. */
static void s_labels(json_t *r, int64_t *out) {
    for (int j = 0; j < K; j++) {
        json_t *hit = json_array_get(r, (size_t)j);
        out[j] = hit ? atoll(json_string_value(json_object_get(hit, "doc_id"))) : -1;
    }
}

static const char *s_moebus_bin;

/* Raw FAISS search over the very index moebus built (its saved file): the
 * same graph, so the difference is moebus's own cost. A separately built
 * HNSW is a different graph (multi-threaded construction is not
 * deterministic) and searches at a different cost. */
static void s_raw_same(const char *path, const char *type, const float *q, int nq,
                       fig_t *f) {
    FaissIndex *idx = NULL;
    if (faiss_read_index_fname(path, 0, &idx) != 0) {
        fprintf(stderr, "bench: cannot read %s\n", path);
        exit(1);
    }
    FaissParameterSpace *ps = NULL;
    faiss_ParameterSpace_new(&ps);
    if (strstr(type, "HNSW"))
        faiss_ParameterSpace_set_index_parameter(ps, idx, "efSearch", 256);
    faiss_ParameterSpace_free(ps);
    double *us = malloc((size_t)nq * sizeof *us);
    float scores[K];
    int64_t labels[K];
    for (int i = 0; i < nq; i++) {
        double t0 = s_now_us();
        faiss_Index_search(idx, 1, q + (size_t)i * DIM, K, scores, labels);
        us[i] = s_now_us() - t0;
    }
    s_lat(us, nq, f);
    free(us);
    faiss_Index_free(idx);
}

/* Serves home's "bench" domain with real processes and times nq searches
 * through the broker. */
static void s_bus(const char *home, const float *q, int nq, fig_t *f) {
    const char *ep = "tcp://127.0.0.1:27511";
    pid_t b = fork();
    if (b == 0) {
        execl(s_moebus_bin, "moebus", "broker", "--endpoint", ep, (char *)NULL);
        _exit(127);
    }
    pid_t w = fork();
    if (w == 0) {
        setenv("MOEBUS_LOG", "warn", 1);
        setenv("MOEBUS_EXPERT_JOBS", "0", 1); /* the bench brings its own vectors */
        execl(s_moebus_bin, "moebus", "index", "--domain", "bench", "--home", home,
              "--endpoint", ep, (char *)NULL);
        _exit(127);
    }
    mb_client_t *c = mb_client_new(ep, NULL);
    for (int i = 0; i < 600; i++) { /* loading 100k vectors takes a moment */
        mb_body_t *req = mb_body_new(json_pack("{s:s}", "service", "index.bench")),
                  *r = NULL;
        mb_client_call(c, "mmi.service", &req, &r, 500, NULL);
        int live = r && json_is_true(json_object_get(mb_body_json(r), "live"));
        mb_body_destroy(&r);
        if (live) break;
        usleep(100000);
    }
    double *us = malloc((size_t)nq * sizeof *us);
    for (int i = -20; i < nq; i++) {
        const float *v = q + (size_t)(i < 0 ? 0 : i) * DIM;
        mb_body_t *req = mb_body_new(json_pack("{s:s, s:s, s:i, s:i}", "op", "search",
                                               "mode", "dense", "k", K, "dim", DIM)),
                  *r = NULL;
        mb_body_add_vectors(req, v, DIM);
        double t0 = s_now_us();
        if (mb_client_call(c, "index.bench", &req, &r, 30000, NULL) != 0) {
            fprintf(stderr, "bench: search over the bus failed\n");
            exit(1);
        }
        if (i >= 0) us[i] = s_now_us() - t0;
        mb_body_destroy(&r);
    }
    s_lat(us, nq, f);
    free(us);
    mb_client_destroy(&c);
    kill(w, SIGTERM);
    waitpid(w, NULL, 0);
    kill(b, SIGTERM);
    waitpid(b, NULL, 0);
}

static void s_moebus(const char *type, const float *x, size_t n, const float *q, int nq,
                     int64_t *labels_out, const int64_t *sweep_exact, fig_t *f,
                     fig_t *bus, fig_t *same) {
    char home[] = "/tmp/mb-bench-index-XXXXXX";
    if (!mkdtemp(home)) exit(1);
    mb_err_t err;
    mb_domain_info_t info = {.name = "bench", .embed = "hash", .dim = DIM};
    snprintf(info.index_type, sizeof info.index_type, "%s", type);
    if (mb_catalog_domain_add(home, &info, &err) != 0) {
        fprintf(stderr, "bench: %s\n", err.msg);
        exit(1);
    }
    char dir[512];
    mb_home_domain_dir(home, "bench", dir, sizeof dir);
    mb_index_t *ix = mb_index_open(dir, DIM, type, &err);
    if (!ix) {
        fprintf(stderr, "bench: %s\n", err.msg);
        exit(1);
    }
    enum { B = 1000 };
    mb_doc_t docs[B];
    char ids[B][16], texts[B][32];
    const char *chunk[B][1];
    double t0 = s_now_us();
    for (size_t at = 0; at < n; at += B) {
        size_t m = n - at < B ? n - at : B;
        for (size_t i = 0; i < m; i++) {
            snprintf(ids[i], sizeof ids[i], "%zu", at + i + 1);
            snprintf(texts[i], sizeof texts[i], "chunk %zu", at + i + 1);
            chunk[i][0] = texts[i];
            docs[i] =
                (mb_doc_t){ids[i], "bench", "h", NULL, 1, chunk[i], x + (at + i) * DIM};
        }
        mb_add_result_t res;
        if (mb_index_add(ix, docs, m, "bench", &res, &err) != 0) {
            fprintf(stderr, "bench: add: %s\n", err.msg);
            exit(1);
        }
    }
    f->ingest = (double)n / ((s_now_us() - t0) / 1e6);
    double *us = malloc((size_t)nq * sizeof *us);
    for (int i = 0; i < nq; i++) {
        mb_query_t mq = {.mode = MB_MODE_DENSE, .vector = q + (size_t)i * DIM, .k = K};
        json_t *r = NULL;
        double s = s_now_us();
        mb_index_query(ix, &mq, &r, &err);
        us[i] = s_now_us() - s;
        s_labels(r, labels_out + (size_t)i * K);
        json_decref(r);
    }
    s_lat(us, nq, f);
    if (sweep_exact) {
        /* efSearch sweep through the same path: recall against exact results */
        int efs[] = {16, 32, 64, 128, 256, 512};
        int64_t *lab = malloc((size_t)nq * K * sizeof *lab);
        for (size_t e = 0; e < sizeof efs / sizeof *efs; e++) {
            for (int i = 0; i < nq; i++) {
                mb_query_t mq = {
                    .mode = MB_MODE_DENSE, .vector = q + (size_t)i * DIM, .k = K};
                mq.params.efsearch = efs[e];
                json_t *r = NULL;
                double s = s_now_us();
                mb_index_query(ix, &mq, &r, &err);
                us[i] = s_now_us() - s;
                s_labels(r, lab + (size_t)i * K);
                json_decref(r);
            }
            fig_t fe;
            s_lat(us, nq, &fe);
            printf("         efSearch %-4d median %6.0f us  recall@10 %.4f\n", efs[e],
                   fe.median, s_recall(sweep_exact, lab, nq));
        }
        free(lab);
    }
    free(us);
    mb_index_close(&ix);
    char file[600];
    snprintf(file, sizeof file, "%s/index.faiss", dir);
    s_raw_same(file, type, q, nq, same);
    if (bus) s_bus(home, q, nq, bus);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", home);
    if (system(cmd) != 0) fprintf(stderr, "bench: cannot remove %s\n", dir);
}

static double s_recall(const int64_t *exact, const int64_t *got, int nq) {
    long hit = 0;
    for (int i = 0; i < nq; i++)
        for (int a = 0; a < K; a++)
            for (int b = 0; b < K; b++)
                if (got[i * K + a] == exact[i * K + b] && exact[i * K + b] >= 0) {
                    hit++;
                    break;
                }
    return (double)hit / (double)(nq * K);
}

static void s_suite(const float *x, size_t n, const float *q, int nq, int bus) {
    int64_t *exact = malloc((size_t)nq * K * sizeof *exact);
    int64_t *got = malloc((size_t)nq * K * sizeof *got);
    printf("%-8s %-7s %12s %12s %10s %14s\n", "type", "path", "median(us)", "p99(us)",
           "QPS", "ingest(ch/s)");
    const char *types[2] = {"Flat", "HNSW32"};
    for (int t = 0; t < 2; t++) {
        fig_t raw, mb, b = {0}, same;
        s_raw(types[t], x, n, q, nq, t == 0 ? exact : got,
              &raw); /* ingest, exact labels */
        s_moebus(types[t], x, n, q, nq, got, t == 1 ? exact : NULL, &mb, bus ? &b : NULL,
                 &same);
        /* search: raw FAISS on the same index file; ingest: a raw build */
        printf("%-8s %-7s %12.0f %12.0f %10.0f %14.0f\n", types[t], "raw", same.median,
               same.p99, same.qps, raw.ingest);
        printf("%-8s %-7s %12.0f %12.0f %10.0f %14.0f\n", types[t], "moebus", mb.median,
               mb.p99, mb.qps, mb.ingest);
        printf("%-8s %-7s %11.2fx %11.2fx %9.2fx %13.2fx   (moebus/raw; QPS, ingest: "
               "raw/moebus)\n",
               types[t], "ratio", mb.median / same.median, mb.p99 / same.p99,
               same.qps / mb.qps, raw.ingest / mb.ingest);
        if (bus)
            printf("%-8s %-7s %12.0f %12.0f %10.0f   the bus adds %.0f us (median)\n",
                   types[t], "bus", b.median, b.p99, b.qps, b.median - mb.median);
        if (t == 0)
            printf("%-8s recall@10 of moebus Flat vs raw Flat: %.4f\n", "",
                   s_recall(exact, got, nq));
        else
            printf("%-8s recall@10 vs exact Flat at the default efSearch (256): %.4f\n",
                   "", s_recall(exact, got, nq));
    }
    free(exact);
    free(got);
}

/* BEIR corpus/queries through the builtin embedder. */
typedef struct {
    mb_embed_t *emb;
    float *x;
    size_t n, cap;
} real_t;

static int s_real_doc(void *arg, const mb_rdoc_t *d) {
    real_t *r = arg;
    if (r->n == r->cap) return 1;
    const char *t[1] = {d->text};
    mb_embed_batch(r->emb, t, 1, MB_EMBED_PASSAGE, r->x + r->n * DIM, NULL);
    r->n++;
    return 0;
}

static void s_real(int quick) {
    const char *roots[] = {getenv("MOEBUS_SHARED_DATA"), "../shared/data",
                           "../../shared/data", "../../../shared/data"};
    char corpus[512] = "", queries[512];
    for (size_t i = 0; i < sizeof roots / sizeof *roots; i++) {
        if (!roots[i]) continue;
        snprintf(corpus, sizeof corpus, "%s/dict/english/corpus.jsonl.gz", roots[i]);
        snprintf(queries, sizeof queries, "%s/dict/english/queries.jsonl.gz", roots[i]);
        if (access(corpus, R_OK) == 0) break;
        corpus[0] = 0;
    }
    if (!*corpus) {
        printf("\nreal corpus: SKIPPED (no ../shared/data/dict/english; set "
               "MOEBUS_SHARED_DATA)\n");
        return;
    }
    real_t docs = {mb_embed_new("hash", DIM, NULL), NULL, 0, quick ? 2000 : 100000};
    docs.x = malloc(docs.cap * DIM * sizeof(float));
    char *p1[1] = {corpus};
    mb_reader_stats_t st;
    mb_reader_run(p1, 1, s_real_doc, &docs, &st);
    real_t qs = {docs.emb, malloc(1000 * DIM * sizeof(float)), 0, quick ? 100 : 1000};
    char *p2[1] = {queries};
    mb_reader_run(p2, 1, s_real_doc, &qs, &st);
    printf(
        "\nreal corpus: %s, %zu documents and %zu queries through the builtin embedder\n",
        corpus, docs.n, qs.n);
    s_suite(docs.x, docs.n, qs.x, (int)qs.n, 0);
    mb_embed_destroy(&docs.emb);
    free(docs.x);
    free(qs.x);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: bench_index MOEBUS_BINARY [N] [--quick]\n");
        return 2;
    }
    s_moebus_bin = argv[1];
    int quick = strcmp(argv[argc - 1], "--quick") == 0;
    size_t n =
        quick ? 5000 : (argc > 2 && atol(argv[2]) > 0 ? (size_t)atol(argv[2]) : 100000);
    int nq = quick ? 100 : 1000;
    setvbuf(stdout, NULL, _IOLBF, 0);
    float *x = malloc(n * DIM * sizeof *x), *q = malloc((size_t)nq * DIM * sizeof *q);
    s_unit_vectors(x, n);
    s_unit_vectors(q, (size_t)nq);
    printf("bench_index: %zu random unit vectors x %d dims, %d queries, k=%d, one query "
           "at a "
           "time, OMP_NUM_THREADS=%s\n\n",
           n, DIM, nq, K,
           getenv("OMP_NUM_THREADS") ? getenv("OMP_NUM_THREADS") : "(unset)");
    s_suite(x, n, q, nq, 1);
    s_real(quick);
    printf("\ntargets: moebus search path <= 1.25x raw FAISS; HNSW32 recall@10 >= 0.95; "
           "ingest "
           ">= 5000 chunks/s\n");
    free(x);
    free(q);
    return 0;
}
