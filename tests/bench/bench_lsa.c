/* bench_lsa — the builtin expert's costs: fit time on N documents, model
 * size, and embedding throughput per core, against the raw component it is
 * built on (tokenising the same text: normalisation + stemming alone).
 *
 *   bench_lsa [--quick] [--docs N] PATH...   (PATH: anything `moebus ingest`
 *   reads; default /usr/share/dictd/gcide.index, 126k entries)
 * Medians of 3 runs for the embedding figures; the fit is run once (it is
 * seconds long and its variance is small next to that). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lsa.h"
#include "reader.h"
#include "text.h"

typedef struct {
    char **texts;
    size_t n, cap, docs, max_docs;
} corpus_t;

static int s_on_doc(void *arg, const mb_rdoc_t *d) {
    corpus_t *c = arg;
    if (c->docs >= c->max_docs) return 1;
    c->docs++;
    char **chunks;
    size_t nc = mb_chunk_text(d->text, 200, 40, &chunks);
    for (size_t i = 0; i < nc; i++) {
        if (c->n == c->cap) {
            c->cap = c->cap ? c->cap * 2 : 4096;
            c->texts = realloc(c->texts, c->cap * sizeof *c->texts);
        }
        c->texts[c->n++] = chunks[i];
    }
    free(chunks);
    return 0;
}

static double s_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void s_tok(const char *t, size_t l, void *a) {
    (void)t;
    *(size_t *)a += l;
}

static int s_cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    size_t max_docs = 60000;
    int quick = 0, first = 1;
    for (; first < argc && argv[first][0] == '-'; first++) {
        if (strcmp(argv[first], "--quick") == 0) {
            quick = 1;
            max_docs = 3000;
        } else if (strcmp(argv[first], "--docs") == 0 && first + 1 < argc) {
            max_docs = (size_t)atol(argv[++first]);
        } else {
            fprintf(stderr, "usage: bench_lsa [--quick] [--docs N] PATH...\n");
            return 2;
        }
    }
    char *dflt[] = {"/usr/share/dictd/gcide.index"};
    char **paths = first < argc ? argv + first : dflt;
    size_t npaths = first < argc ? (size_t)(argc - first) : 1;
    if (access(paths[0], R_OK) != 0) {
        printf("bench_lsa: SKIP: %s not found (apt-get install dict-gcide)\n", paths[0]);
        return 77;
    }
    corpus_t c = {.max_docs = max_docs};
    mb_reader_stats_t st;
    mb_reader_run(paths, npaths, s_on_doc, &c, &st);
    printf("bench_lsa: %zu documents, %zu chunks from %s\n", c.docs, c.n, paths[0]);

    mb_lsa_opts_t o;
    mb_lsa_opts_default(&o);
    mb_err_t err;
    double t0 = s_now();
    mb_lsa_t *m = mb_lsa_fit((const char *const *)c.texts, c.n, &o, &err);
    double fit = s_now() - t0;
    if (!m) {
        fprintf(stderr, "fit failed: %s\n", err.msg);
        return 1;
    }
    char path[] = "/tmp/mb-bench-lsa-XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    mb_lsa_save(m, path, &err);
    struct stat sb;
    stat(path, &sb);
    unlink(path);
    printf("fit: %.2f s for %zu chunks (vocabulary %zu, rank %d, dim %d); model file "
           "%.1f MB\n",
           fit, c.n, mb_lsa_vocab(m), mb_lsa_rank(m), mb_lsa_dim(m),
           (double)sb.st_size / 1e6);

    /* Throughput on one thread, medians of 3: the raw tokenizer, then the
     * expert (tokenise + BM25 + projection). */
    size_t n = quick ? (c.n < 2000 ? c.n : 2000) : (c.n < 20000 ? c.n : 20000);
    float *out = malloc(n * (size_t)mb_lsa_dim(m) * sizeof *out);
    double raw[3], emb[3];
    mb_text_t *tx = mb_text_new();
    for (int r = 0; r < 3; r++) {
        size_t sink = 0;
        t0 = s_now();
        for (size_t i = 0; i < n; i++)
            mb_text_tokenize(tx, c.texts[i], strlen(c.texts[i]), s_tok, &sink, NULL);
        raw[r] = (double)n / (s_now() - t0);
        t0 = s_now();
        mb_lsa_embed(m, (const char *const *)c.texts, n, 0, out, NULL);
        emb[r] = (double)n / (s_now() - t0);
    }
    qsort(raw, 3, sizeof *raw, s_cmp);
    qsort(emb, 3, sizeof *emb, s_cmp);
    printf("embed, one core, median of 3 over %zu chunks: raw tokenizer %.0f chunks/s, "
           "LSA expert %.0f chunks/s (%.2fx the raw tokenizer's time)\n",
           n, raw[1], emb[1], raw[1] / emb[1]);
    mb_text_destroy(&tx);
    free(out);
    mb_lsa_destroy(&m);
    for (size_t i = 0; i < c.n; i++)
        free(c.texts[i]);
    free(c.texts);
    return 0;
}
