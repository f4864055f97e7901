/* rmodel.c — training and scoring of the learned router and the gate.
 *
 * Pseudo-queries. People ask a domain with a few words: a term, a name, a
 * short phrase, an acronym. So from each sampled passage we draw one of:
 *   - a salient word (40%): one of the passage's three rarest content words
 *     (rarity over all domains: the words that tell domains apart);
 *   - a salient pair (25%): two adjacent content words, rarest pair first;
 *   - a leading phrase (25%): 2-5 consecutive words from near the start,
 *     stop words kept (natural-language queries, titles);
 *   - an acronym (10%): one of the passage's acronym keys, as a word.
 * A pseudo-query's own passage is removed from its domain's term counts when
 * its features are computed (leave-one-out), so the router does not learn
 * "the query's words are always in the domain": a real query's answer may be
 * the only passage that holds them, or none may (a headword).
 *
 * Per-domain features g_d (shared weights, conditional logit):
 *   cov  idf-weighted share of the query's terms the domain has seen
 *   key  1 when one of the query's words is an acronym key of the domain
 *   nb   mean log-probability of the terms under the domain's counts,
 *        centred over the allowed domains (a naive-Bayes signal)
 *   cen  cosine of the query and the domain centroid in the domain's own
 *        expert space (builtin and hash experts; http experts are not called
 *        per query: the feature is 0 there)
 *   pil  cosine to the nearest of the domain's pilot embeddings (below)
 * plus per-domain weights over hashed unigram, bigram and acronym-key
 * features. Trained with AdaGrad; a temperature is fitted on 15% held out.
 *
 * Pilots (RouterRetriever, instance-level): queries and pilots live in one
 * shared base space: pretrained word vectors (SIF-weighted mean, wordvec.h)
 * when the router is given them, else a hashed term space (signed hashing,
 * idf weights); each domain's training pseudo-queries are clustered
 * (spherical k-means, 16) and the centroids are its pilots.
 *
 * Gate: in-scope examples are held-out pseudo-queries scored over every
 * domain; out-of-scope examples are the same queries with their own domain
 * removed (allowed mask and leave-one-out counts), which is what a query
 * about a domain nobody indexed looks like to the others. Binary logistic
 * regression over standardised features. */
#include "rmodel.h"

#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>

#include "embed.h"
#include "mb_mem.h"
#include "router.h"
#include "text.h"
#include "wordvec.h"

#define HBITS 18
#define HSIZE (1u << HBITS)
#define HMASK (HSIZE - 1)
#define NG 6 /* per-domain features */
#define NF MB_RGATE_NFEAT
#define BDIM 256  /* pilot base space: hashed; word vectors use their own dim <= this */
#define NPILOT 16 /* pilots per domain */
#define MAGIC "MBRT0002"
#define MAX_QTERMS 64

static const char *s_gate_names[NF] = {"top_prob",   "entropy",  "coverage",
                                       "acronym",    "centroid", "pilot",
                                       "likelihood", "terms",    "unknown"};

const char *const *mb_rmodel_gate_names(void) {
    return s_gate_names;
}

typedef struct {
    char name[72];
    char dir[4096];
    char version[192]; /* expert version of the centroid ("" = none) */
    int dim;
    float *centroid;
    mb_embed_t *expert;
    float *pilots; /* npilots x BDIM */
    int npilots;
    uint32_t *df; /* HSIZE */
    double n;     /* passages counted */
    int64_t chunks;
    float *w; /* HSIZE */
    float bias;
} rdom_t;

struct mb_rmodel_t {
    size_t nd;
    rdom_t *d;
    uint32_t *df_all;
    double n_all;
    double v[NG];
    double temp, ptemp;
    double gmean[NF], gstd[NF], gw[NF], gb;
    double threshold;       /* default gate threshold on p_in */
    const mb_wordvec_t *wv; /* the pilots' base encoder (not owned), or NULL */
    int bdim;               /* base space dim: BDIM hashed, or the word vectors' */
    int base_wv;            /* trained with word vectors */
    char version[64];
    mb_rmodel_stats_t st;
    mb_text_t *text;
};

/* A query as features. */
typedef struct {
    uint32_t t[MAX_QTERMS]; /* stem buckets, distinct */
    double idf[MAX_QTERMS];
    size_t nt;
    uint32_t k[MAX_QTERMS]; /* acronym-key buckets */
    size_t nk;
    uint32_t x[3 * MAX_QTERMS]; /* LR features */
    size_t nx;
    float base[BDIM];
} rq_t;

/* ---- small helpers ---- */

static uint64_t s_rng(uint64_t *s) {
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}
static double s_unif(uint64_t *s) {
    return (double)(s_rng(s) >> 11) / 9007199254740992.0;
}

static int s_cmp_u32(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}
static size_t s_uniq(uint32_t *v, size_t n) {
    if (n == 0) return 0;
    qsort(v, n, sizeof *v, s_cmp_u32);
    size_t m = 1;
    for (size_t i = 1; i < n; i++)
        if (v[i] != v[m - 1]) v[m++] = v[i];
    return m;
}
static int s_has(const uint32_t *v, size_t n, uint32_t x) {
    return n && bsearch(&x, v, n, sizeof *v, s_cmp_u32) != NULL;
}
static int64_t s_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- tokenisation into buckets ---- */

typedef struct {
    uint32_t *v;
    size_t n, cap;
} bucket_acc_t;

static void s_acc_push(bucket_acc_t *a, uint32_t b) {
    if (a->n == a->cap) {
        a->cap = a->cap ? a->cap * 2 : 64;
        a->v = mb_xrealloc(a->v, a->cap * sizeof *a->v);
    }
    a->v[a->n++] = b;
}

static void s_on_term(const char *tok, size_t len, void *arg) {
    bucket_acc_t *a = arg;
    s_acc_push(a, (uint32_t)(mb_text_hash(tok, len) & HMASK));
}

/* The buckets of a passage's stems and acronym keys, sorted and distinct. */
static size_t s_passage_terms(mb_text_t *tx, const char *text, uint32_t **out) {
    bucket_acc_t a = {0};
    mb_err_t err;
    mb_text_tokenize(tx, text, strlen(text), s_on_term, &a, &err);
    mb_text_acronyms(text, strlen(text), 0, s_on_term, &a);
    a.n = s_uniq(a.v, a.n);
    *out = a.v;
    return a.n;
}

typedef struct {
    rq_t *q;
    char prev[128];
    size_t prevlen;
} qacc_t;

static void s_on_qstem(const char *tok, size_t len, void *arg) {
    qacc_t *a = arg;
    rq_t *q = a->q;
    uint32_t b = (uint32_t)(mb_text_hash(tok, len) & HMASK);
    int dup = 0;
    for (size_t i = 0; i < q->nt; i++)
        dup |= q->t[i] == b;
    if (!dup && q->nt < MAX_QTERMS) q->t[q->nt++] = b;
    if (q->nx < 3 * MAX_QTERMS) q->x[q->nx++] = b;
    if (a->prevlen && len < 60 && q->nx < 3 * MAX_QTERMS) {
        char bg[128];
        memcpy(bg, a->prev, a->prevlen);
        bg[a->prevlen] = 1;
        memcpy(bg + a->prevlen + 1, tok, len);
        q->x[q->nx++] = (uint32_t)(mb_text_hash(bg, a->prevlen + 1 + len) & HMASK);
    }
    if (len < 60) {
        memcpy(a->prev, tok, len);
        a->prevlen = len;
    } else {
        a->prevlen = 0;
    }
}

static void s_on_qkey(const char *tok, size_t len, void *arg) {
    rq_t *q = arg;
    uint32_t b = (uint32_t)(mb_text_hash(tok, len) & HMASK);
    if (q->nk < MAX_QTERMS) q->k[q->nk++] = b;
    if (q->nx < 3 * MAX_QTERMS) q->x[q->nx++] = b;
}

/* idf over every domain's counts. */
static double s_idf(const mb_rmodel_t *m, uint32_t b) {
    return log(1.0 + m->n_all / (1.0 + (double)m->df_all[b]));
}

/* The shared base space of the pilots: the word vectors when configured
 * (a real shared encoder, as RouterRetriever has), else signed hashing of
 * idf-weighted stems. */
static void s_base(const mb_rmodel_t *m, rq_t *q, const char *text) {
    memset(q->base, 0, sizeof q->base);
    if (m->wv) {
        mb_wordvec_embed(m->wv, text, q->base);
        return;
    }
    double nn = 0;
    for (size_t i = 0; i < q->nt; i++) {
        uint64_t h = (uint64_t)q->t[i] * 0x9E3779B97F4A7C15ull;
        for (int r = 0; r < 2; r++) {
            uint32_t pos = (uint32_t)(h >> (r ? 40 : 8)) % BDIM;
            float sg = (h >> (r ? 63 : 62)) & 1 ? -1.0f : 1.0f;
            q->base[pos] += sg * (float)q->idf[i];
        }
    }
    for (int i = 0; i < BDIM; i++)
        nn += (double)q->base[i] * q->base[i];
    if (nn > 0)
        for (int i = 0; i < BDIM; i++)
            q->base[i] = (float)(q->base[i] / sqrt(nn));
}

static int s_query(mb_rmodel_t *m, const char *text, rq_t *q, mb_err_t *err) {
    memset(q, 0, sizeof *q);
    qacc_t a = {.q = q};
    int rc = mb_text_tokenize(m->text, text, strlen(text), s_on_qstem, &a, err);
    if (rc != 0) return rc;
    mb_text_acronyms(text, strlen(text), 1, s_on_qkey, q);
    /* the query's length as a feature of its own: collections differ in how
     * their users ask (keywords, questions, claims) */
    if (q->nx < 3 * MAX_QTERMS) {
        char lb[16];
        int ll = snprintf(lb, sizeof lb, "\002len%zu", q->nt < 12 ? q->nt : 12);
        q->x[q->nx++] = (uint32_t)(mb_text_hash(lb, (size_t)ll) & HMASK);
    }
    q->nx = s_uniq(q->x, q->nx);
    for (size_t i = 0; i < q->nt; i++)
        q->idf[i] = s_idf(m, q->t[i]);
    s_base(m, q, text);
    return 0;
}

/* ---- features ---- */

static double s_dot(const float *a, const float *b, int n) {
    double s = 0;
    for (int i = 0; i < n; i++)
        s += (double)a[i] * b[i];
    return s;
}

/* Per-domain features of q for domain d; ex: the source passage's buckets
 * to leave out of d's counts (NULL: none). cen: precomputed. */
static void s_gfeat(const mb_rmodel_t *m, const rq_t *q, size_t d, const uint32_t *ex,
                    size_t nex, double cen, double *g) {
    const rdom_t *D = &m->d[d];
    double n = D->n - (ex ? 1 : 0);
    double covw = 0, tot = 0, nb = 0, bm = 0;
    for (size_t i = 0; i < q->nt; i++) {
        double df = (double)D->df[q->t[i]] - (ex && s_has(ex, nex, q->t[i]) ? 1 : 0);
        tot += q->idf[i];
        if (df > 0) covw += q->idf[i];
        nb += log((df + 0.5) / (n + 1.0));
        /* BM25's idf in this domain for the terms it has: what its best
         * lexical match would score, roughly */
        if (df > 0) bm += log(1.0 + (n - df + 0.5) / (df + 0.5));
    }
    g[5] = q->nt ? bm / (double)q->nt : 0;
    g[0] = tot > 0 ? covw / tot : 0;
    g[1] = 0;
    for (size_t i = 0; i < q->nk; i++) {
        double df = (double)D->df[q->k[i]] - (ex && s_has(ex, nex, q->k[i]) ? 1 : 0);
        if (df > 0) g[1] = 1;
    }
    g[2] = q->nt ? nb / (double)q->nt : 0;
    g[3] = cen;
    double best = 0;
    for (int p = 0; p < D->npilots; p++) {
        double c = s_dot(q->base, D->pilots + (size_t)p * BDIM, m->bdim);
        if (c > best) best = c;
    }
    g[4] = best;
}

/* Centre the nb feature over the allowed domains (its level depends on the
 * query, not on the domain). */
static void s_centre(size_t nd, const unsigned char *allowed, double (*g)[NG]) {
    double s = 0;
    size_t c = 0;
    for (size_t d = 0; d < nd; d++)
        if (!allowed || allowed[d]) s += g[d][2], c++;
    if (c)
        for (size_t d = 0; d < nd; d++)
            g[d][2] -= s / (double)c;
}

static double s_lin(const mb_rmodel_t *m, const rq_t *q, size_t d, const double *g) {
    const rdom_t *D = &m->d[d];
    double s = D->bias, inv = q->nx ? 1.0 / sqrt((double)q->nx) : 0;
    for (size_t i = 0; i < q->nx; i++)
        s += D->w[q->x[i]] * inv;
    for (int j = 0; j < NG; j++)
        s += m->v[j] * g[j];
    return s;
}

static void s_softmax(const double *z, size_t n, const unsigned char *allowed, double t,
                      double *p) {
    double mx = -1e300, sum = 0;
    for (size_t i = 0; i < n; i++)
        if ((!allowed || allowed[i]) && z[i] > mx) mx = z[i];
    for (size_t i = 0; i < n; i++) {
        p[i] = (!allowed || allowed[i]) ? exp((z[i] - mx) / t) : 0;
        sum += p[i];
    }
    for (size_t i = 0; i < n; i++)
        p[i] = sum > 0 ? p[i] / sum : 0;
}

static void s_gate_feat(const mb_rmodel_t *m, const rq_t *q, const double *p,
                        const unsigned char *allowed, double (*g)[NG],
                        const double *nbraw, double pp, size_t maxd, const uint32_t *ex,
                        size_t nex, size_t exd, double *f) {
    size_t nd = m->nd, na = 0;
    unsigned char sel[64];
    size_t order[64], nsel = mb_router_top_p(p, nd, pp, maxd, order);
    memset(sel, 0, nd);
    for (size_t i = 0; i < nsel; i++)
        sel[order[i]] = p[order[i]] > 0;
    double top = 0, ent = 0;
    for (size_t d = 0; d < nd; d++) {
        if (allowed && !allowed[d]) continue;
        na++;
        if (p[d] > top) top = p[d];
        if (p[d] > 0) ent -= p[d] * log(p[d]);
    }
    f[0] = top;
    f[1] = na > 1 ? ent / log((double)na) : 0;
    /* With two domains, an out-of-scope training example (its domain
     * removed) leaves one: full confidence and no entropy by construction,
     * which the gate would learn as "confident means out of scope". */
    if (m->nd <= 2) f[0] = f[1] = 0;
    f[2] = f[3] = f[4] = f[5] = 0;
    f[6] = -30;
    for (size_t d = 0; d < nd; d++) {
        if (!sel[d]) continue;
        if (g[d][0] > f[2]) f[2] = g[d][0];
        if (g[d][1] > f[3]) f[3] = g[d][1];
        if (g[d][3] > f[4]) f[4] = g[d][3];
        if (g[d][4] > f[5]) f[5] = g[d][4];
        if (nbraw[d] > f[6]) f[6] = nbraw[d];
    }
    f[7] = log(1.0 + (double)q->nt);
    /* terms no allowed domain has seen */
    size_t unk = 0;
    for (size_t i = 0; i < q->nt; i++) {
        int seen = 0;
        for (size_t d = 0; d < nd && !seen; d++) {
            if (allowed && !allowed[d]) continue;
            double df = (double)m->d[d].df[q->t[i]] -
                        (ex && d == exd && s_has(ex, nex, q->t[i]) ? 1 : 0);
            seen = df > 0;
        }
        unk += !seen;
    }
    f[8] = q->nt ? (double)unk / (double)q->nt : 1;
}

static double s_gate_p(const mb_rmodel_t *m, const double *f) {
    double z = m->gb;
    for (int i = 0; i < NF; i++)
        z += m->gw[i] * (f[i] - m->gmean[i]) / m->gstd[i];
    return 1.0 / (1.0 + exp(-z));
}

/* Cosine of q with each domain's centroid, in each domain's expert space. */
static void s_centroid_cos(mb_rmodel_t *m, const char *const *texts, size_t nq,
                           double *out /* nq x nd */) {
    for (size_t d = 0; d < m->nd; d++) {
        rdom_t *D = &m->d[d];
        for (size_t i = 0; i < nq; i++)
            out[i * m->nd + d] = 0;
        if (!D->expert || !D->centroid) continue;
        size_t bs = nq < 256 ? nq : 256; /* one query when routing */
        float *buf = malloc(bs * (size_t)D->dim * sizeof *buf);
        for (size_t i = 0; i < nq; i += bs) {
            size_t c = nq - i < bs ? nq - i : bs;
            mb_err_t err;
            if (mb_embed_batch(D->expert, texts + i, c, MB_EMBED_QUERY, buf, &err) != 0)
                continue;
            for (size_t r = 0; r < c; r++)
                out[(i + r) * m->nd + d] =
                    s_dot(buf + r * (size_t)D->dim, D->centroid, D->dim);
        }
        free(buf);
    }
}

/* ---- scoring ---- */

int mb_rmodel_score(mb_rmodel_t *self, const char *query, int router,
                    const unsigned char *allowed, double p, size_t max_domains,
                    double *probs, mb_rgate_t *gate, mb_err_t *err) {
    size_t nd = self->nd;
    rq_t q;
    int rc = s_query(self, query, &q, err);
    if (rc != 0) return rc;
    double(*g)[NG] = calloc(nd, sizeof *g);
    double *z = calloc(nd, sizeof *z), *cen = calloc(nd, sizeof *cen),
           *nbraw = calloc(nd, sizeof *nbraw);
    s_centroid_cos(self, &query, 1, cen);
    for (size_t d = 0; d < nd; d++) {
        s_gfeat(self, &q, d, NULL, 0, cen[d], g[d]);
        nbraw[d] = g[d][2];
    }
    s_centre(nd, allowed, g);
    double *lp = calloc(nd, sizeof *lp);
    for (size_t d = 0; d < nd; d++)
        z[d] = s_lin(self, &q, d, g[d]);
    s_softmax(z, nd, allowed, self->temp, lp);
    if (router == MB_ROUTER_PILOT) {
        for (size_t d = 0; d < nd; d++)
            z[d] = g[d][4];
        s_softmax(z, nd, allowed, self->ptemp, probs);
    } else {
        memcpy(probs, lp, nd * sizeof *lp);
    }
    if (gate) {
        /* the gate's features always come from the learned router: its model
         * was trained on them */
        s_gate_feat(self, &q, lp, allowed, g, nbraw, p, max_domains, NULL, 0, 0,
                    gate->feat);
        gate->p_in = s_gate_p(self, gate->feat);
    }
    free(g);
    free(z);
    free(cen);
    free(nbraw);
    free(lp);
    return 0;
}

/* ---- training ---- */

typedef struct {
    char **texts; /* sampled passages */
    size_t n, cap;
    int64_t seen, max_id;
} sample_t;

static int s_read_sample(const char *dir, size_t cap, uint64_t *rng, sample_t *s,
                         mb_err_t *err) {
    char path[4200];
    snprintf(path, sizeof path, "%s/store.db", dir);
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        sqlite3_close(db);
        return 0; /* no store yet: no passages */
    }
    sqlite3_busy_timeout(db, 5000);
    sqlite3_stmt *st = NULL;
    int rc = 0;
    if (sqlite3_prepare_v2(db, "SELECT text, id FROM chunks", -1, &st, NULL) !=
        SQLITE_OK) {
        /* a store being created: treat as empty */
        goto cleanup;
    }
    s->texts = calloc(cap, sizeof *s->texts);
    s->cap = cap;
    int step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        const char *t = (const char *)sqlite3_column_text(st, 0);
        if (!t) continue;
        s->seen++;
        if (sqlite3_column_int64(st, 1) > s->max_id)
            s->max_id = sqlite3_column_int64(st, 1);
        if (s->n < cap) {
            s->texts[s->n++] = strdup(t);
        } else {
            uint64_t r = s_rng(rng) % (uint64_t)s->seen;
            if (r < cap) {
                free(s->texts[r]);
                s->texts[r] = strdup(t);
            }
        }
    }
    if (step != SQLITE_DONE)
        rc = mb_err_set(err, MB_EIO, "cannot read %s: %s", path, sqlite3_errmsg(db));
cleanup:
    sqlite3_finalize(st);
    sqlite3_close(db);
    return rc;
}

static void s_sample_free(sample_t *s) {
    for (size_t i = 0; i < s->n; i++)
        free(s->texts[i]);
    free(s->texts);
}

typedef struct {
    const char *start;
    size_t len;
    double w;
} word_t;

static void s_first_stem(const char *tok, size_t len, void *arg) {
    uint32_t *b = arg;
    if (*b == UINT32_MAX) *b = (uint32_t)(mb_text_hash(tok, len) & HMASK);
}

static int s_wordch(unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c >= 0x80;
}

static void s_on_key(const char *tok, size_t len, void *arg) {
    char **best = arg;
    if (len >= 4 && len <= 9 && !*best) { /* "~" + 3..8 letters */
        *best = malloc(len);
        memcpy(*best, tok + 1, len - 1);
        (*best)[len - 1] = 0;
    }
}

/* One pseudo-query from a passage (malloc'ed), or NULL. */
static char *s_pseudo(mb_rmodel_t *m, const char *text, uint64_t *rng) {
    word_t words[200];
    size_t nw = 0;
    const unsigned char *p = (const unsigned char *)text;
    while (*p && nw < 200) {
        while (*p && !s_wordch(*p))
            p++;
        if (!*p) break;
        const unsigned char *s = p;
        while (*p && (s_wordch(*p) || ((*p == '-' || *p == '\'') && s_wordch(p[1]))))
            p++;
        size_t len = (size_t)(p - s);
        if (len > 40) continue;
        uint32_t b = UINT32_MAX;
        mb_err_t err;
        mb_text_tokenize(m->text, (const char *)s, len, s_first_stem, &b, &err);
        words[nw].start = (const char *)s;
        words[nw].len = len;
        words[nw].w = b == UINT32_MAX ? 0 : s_idf(m, b);
        nw++;
    }
    if (nw == 0) return NULL;
    double r = s_unif(rng);
    const char *from = NULL;
    size_t flen = 0;
    if (r >= 0.90) { /* acronym key */
        char *key = NULL;
        mb_text_acronyms(text, strlen(text), 0, s_on_key, &key);
        if (key) return key;
        r = 0; /* none: a salient word */
    }
    if (r >= 0.65) { /* leading phrase */
        size_t first = 0;
        while (first < nw && words[first].w <= 0)
            first++;
        if (first == nw) return NULL;
        size_t start = first + s_rng(rng) % 4;
        if (start >= nw) start = first;
        size_t len = 2 + s_rng(rng) % 4;
        size_t end = start + len < nw ? start + len : nw;
        from = words[start].start;
        flen = (size_t)(words[end - 1].start + words[end - 1].len - from);
    } else if (r >= 0.40) { /* salient pair */
        size_t best = nw, second = nw;
        for (size_t i = 0; i + 1 < nw; i++) {
            if (words[i].w <= 0 || words[i + 1].w <= 0) continue;
            double sc = words[i].w + words[i + 1].w;
            if (best == nw || sc > words[best].w + words[best + 1].w) {
                second = best;
                best = i;
            } else if (second == nw || sc > words[second].w + words[second + 1].w) {
                second = i;
            }
        }
        if (best != nw) {
            size_t pick = (second != nw && (s_rng(rng) & 1)) ? second : best;
            from = words[pick].start;
            flen = (size_t)(words[pick + 1].start + words[pick + 1].len - from);
        }
    }
    if (!from) { /* salient word: one of the three rarest content words */
        size_t top[3] = {0}, nt = 0;
        for (size_t i = 0; i < nw; i++) {
            if (words[i].w <= 0) continue;
            size_t j = nt < 3 ? nt++ : 3;
            while (j > 0 && words[top[j - 1]].w < words[i].w) {
                if (j < 3) top[j] = top[j - 1];
                j--;
            }
            if (j < 3) top[j] = i;
        }
        if (nt == 0) return NULL;
        size_t pick = top[s_rng(rng) % nt];
        from = words[pick].start;
        flen = words[pick].len;
    }
    if (flen == 0 || flen > 200) return NULL;
    char *out = malloc(flen + 1);
    for (size_t i = 0; i < flen; i++) {
        unsigned char c = (unsigned char)from[i];
        out[i] = (char)((c >= 'A' && c <= 'Z') ? c | 0x20 : (c == '\n' ? ' ' : c));
    }
    out[flen] = 0;
    return out;
}

typedef struct {
    char *text;
    int y;
    uint32_t *ex; /* source passage buckets (owned) */
    size_t nex;
    int heldout;
    int pilot; /* builds the pilots; not a training example of the LR */
    rq_t q;
} example_t;

static void s_dom_free(rdom_t *D) {
    free(D->centroid);
    free(D->pilots);
    free(D->df);
    free(D->w);
    mb_embed_destroy(&D->expert);
}

void mb_rmodel_destroy(mb_rmodel_t **self_p) {
    if (!self_p || !*self_p) return;
    mb_rmodel_t *m = *self_p;
    for (size_t d = 0; d < m->nd; d++)
        s_dom_free(&m->d[d]);
    free(m->d);
    free(m->df_all);
    mb_text_destroy(&m->text);
    free(m);
    *self_p = NULL;
}

/* Opens the domain's expert from its expert.json; no expert (unfitted
 * builtin, http, or anything failing) leaves the dense feature off. */
static void s_open_expert(rdom_t *D) {
    mb_expert_spec_t spec;
    mb_err_t err;
    D->expert = NULL;
    if (mb_expert_read(D->dir, &spec, &err) != 0) return;
    /* the version the router's signature compares, even without a centroid */
    snprintf(D->version, sizeof D->version, "%s", spec.version);
    if (strcmp(spec.backend, "http") == 0) return; /* not per query: see above */
    D->expert = mb_embed_open(&spec, D->dir, &err);
    if (!D->expert) return;
    D->dim = mb_embed_dim(D->expert);
    snprintf(D->version, sizeof D->version, "%s", mb_embed_version(D->expert));
}

static void s_centroid(rdom_t *D, const sample_t *s) {
    if (!D->expert || s->n == 0) return;
    size_t n = s->n < 2000 ? s->n : 2000;
    float *buf = malloc(n * (size_t)D->dim * sizeof *buf);
    mb_err_t err;
    if (mb_embed_batch(D->expert, (const char *const *)s->texts, n, MB_EMBED_PASSAGE, buf,
                       &err) != 0) {
        free(buf);
        return;
    }
    double *c = calloc((size_t)D->dim, sizeof *c), nn = 0;
    for (size_t i = 0; i < n; i++)
        for (int j = 0; j < D->dim; j++)
            c[j] += buf[i * (size_t)D->dim + j];
    for (int j = 0; j < D->dim; j++)
        nn += c[j] * c[j];
    if (nn > 0) {
        D->centroid = malloc((size_t)D->dim * sizeof *D->centroid);
        for (int j = 0; j < D->dim; j++)
            D->centroid[j] = (float)(c[j] / sqrt(nn));
    }
    free(c);
    free(buf);
}

/* Spherical k-means of the domain's training queries in the base space. */
static void s_pilots(rdom_t *D, example_t *ex, size_t n, int y, int bdim, uint64_t *rng) {
    size_t *idx = malloc((n ? n : 1) * sizeof *idx), c = 0;
    for (size_t i = 0; i < n; i++)
        if (ex[i].y == y && ex[i].pilot && ex[i].q.nt > 0) idx[c++] = i;
    int k = c < NPILOT ? (int)c : NPILOT;
    D->npilots = k;
    D->pilots = calloc((size_t)(k ? k : 1) * BDIM, sizeof *D->pilots);
    if (k == 0) {
        free(idx);
        return;
    }
    for (int j = 0; j < k; j++)
        memcpy(D->pilots + (size_t)j * BDIM, ex[idx[s_rng(rng) % c]].q.base,
               sizeof(float) * BDIM);
    int *as = calloc(c, sizeof *as);
    double *acc = malloc((size_t)k * BDIM * sizeof *acc);
    for (int it = 0; it < 10; it++) {
        for (size_t i = 0; i < c; i++) {
            double best = -2;
            for (int j = 0; j < k; j++) {
                double s = s_dot(ex[idx[i]].q.base, D->pilots + (size_t)j * BDIM, bdim);
                if (s > best) best = s, as[i] = j;
            }
        }
        memset(acc, 0, (size_t)k * BDIM * sizeof *acc);
        for (size_t i = 0; i < c; i++)
            for (int t = 0; t < BDIM; t++)
                acc[(size_t)as[i] * BDIM + t] += ex[idx[i]].q.base[t];
        for (int j = 0; j < k; j++) {
            double nn = 0;
            for (int t = 0; t < BDIM; t++)
                nn += acc[(size_t)j * BDIM + t] * acc[(size_t)j * BDIM + t];
            if (nn <= 0) continue; /* empty cluster keeps its centre */
            for (int t = 0; t < BDIM; t++)
                D->pilots[(size_t)j * BDIM + t] =
                    (float)(acc[(size_t)j * BDIM + t] / sqrt(nn));
        }
    }
    free(acc);
    free(as);
    free(idx);
}

/* NLL of held-out labels at temperature t over logits z (n x nd). */
static double s_nll(const double *z, const int *y, size_t n, size_t nd, double t) {
    double nll = 0, *p = malloc(nd * sizeof *p);
    for (size_t i = 0; i < n; i++) {
        s_softmax(z + i * nd, nd, NULL, t, p);
        nll -= log(p[y[i]] + 1e-12);
    }
    free(p);
    return nll;
}

static double s_fit_temp(const double *z, const int *y, size_t n, size_t nd) {
    if (n == 0) return 1.0;
    double lo = log(0.01), hi = log(100.0);
    const double gr = 0.6180339887498949;
    for (int it = 0; it < 60; it++) {
        double a = hi - gr * (hi - lo), b = lo + gr * (hi - lo);
        if (s_nll(z, y, n, nd, exp(a)) < s_nll(z, y, n, nd, exp(b)))
            hi = b;
        else
            lo = a;
    }
    return exp((lo + hi) / 2);
}

mb_rmodel_t *mb_rmodel_train(const mb_rdomain_t *domains, size_t n,
                             const mb_rtrain_opts_t *opts, mb_err_t *err) {
    int64_t t0 = s_now_ms();
    size_t per = opts && opts->pseudo_per_domain ? opts->pseudo_per_domain : 800;
    size_t cap = opts && opts->sample ? opts->sample : 20000;
    uint64_t rng = 0x9E3779B97F4A7C15ull ^ (opts ? opts->seed : 0);
    if (n > 64) {
        mb_err_set(err, MB_EBADREQ, "the router handles at most 64 domains (%zu)", n);
        return NULL;
    }
    mb_rmodel_t *m = calloc(1, sizeof *m);
    m->text = mb_text_new();
    m->d = calloc(n ? n : 1, sizeof *m->d);
    m->df_all = calloc(HSIZE, sizeof *m->df_all);
    m->wv = opts && opts->wordvec && mb_wordvec_dim(opts->wordvec) <= BDIM ? opts->wordvec
                                                                           : NULL;
    m->bdim = m->wv ? mb_wordvec_dim(m->wv) : BDIM;
    m->base_wv = m->wv != NULL;
    sample_t *smp = calloc(n ? n : 1, sizeof *smp);
    example_t *ex = NULL;
    size_t nex = 0, excap = 0;
    double *zbuf = NULL, *cen = NULL;
    int *ybuf = NULL;
    double(*G)[NG] = NULL;

    /* 1. sample each domain's passages and count terms */
    for (size_t i = 0; i < n; i++) {
        sample_t s = {0};
        if (s_read_sample(domains[i].dir, cap, &rng, &s, err) != 0) goto fail;
        if (s.n == 0) {
            s_sample_free(&s);
            continue;
        }
        rdom_t *D = &m->d[m->nd];
        snprintf(D->name, sizeof D->name, "%s", domains[i].name);
        snprintf(D->dir, sizeof D->dir, "%s", domains[i].dir);
        D->df = calloc(HSIZE, sizeof *D->df);
        D->w = calloc(HSIZE, sizeof *D->w);
        D->n = (double)s.n;
        D->chunks = s.max_id; /* what the router's signature compares */
        for (size_t p = 0; p < s.n; p++) {
            uint32_t *b;
            size_t nb = s_passage_terms(m->text, s.texts[p], &b);
            for (size_t j = 0; j < nb; j++)
                D->df[b[j]]++, m->df_all[b[j]]++;
            free(b);
        }
        m->n_all += D->n;
        smp[m->nd++] = s;
    }
    if (m->nd == 0) {
        mb_err_set(err, MB_ENOTFOUND, "no domain has passages to learn from");
        goto fail;
    }

    /* 2. experts and centroids */
    for (size_t d = 0; d < m->nd; d++) {
        s_open_expert(&m->d[d]);
        s_centroid(&m->d[d], &smp[d]);
    }

    /* 3. pseudo-queries (sources in random order) and labels */
    for (size_t d = 0; d < m->nd; d++) {
        sample_t *s = &smp[d];
        size_t *perm = malloc(s->n * sizeof *perm);
        for (size_t i = 0; i < s->n; i++)
            perm[i] = i;
        for (size_t i = s->n; i > 1; i--) {
            size_t j = s_rng(&rng) % i, t = perm[i - 1];
            perm[i - 1] = perm[j], perm[j] = t;
        }
        size_t made = 0;
        for (size_t i = 0; i < s->n && made < per; i++) {
            char *q = s_pseudo(m, s->texts[perm[i]], &rng);
            if (!q) continue;
            if (nex == excap)
                ex = mb_xrealloc(ex, (excap = excap ? excap * 2 : 1024) * sizeof *ex);
            example_t *e = &ex[nex];
            memset(e, 0, sizeof *e);
            e->text = q;
            e->y = (int)d;
            e->nex = s_passage_terms(m->text, s->texts[perm[i]], &e->ex);
            double u = s_unif(&rng);
            e->heldout = u < 0.15;
            e->pilot = u >= 0.15 && u < 0.45;
            if (s_query(m, q, &e->q, err) != 0 || e->q.nx == 0) {
                free(e->text);
                free(e->ex);
                continue;
            }
            nex++;
            made++;
        }
        free(perm);
    }
    size_t nlab = 0;
    for (size_t i = 0; opts && i < opts->nlabels; i++) {
        int d = mb_rmodel_find(m, opts->labels[i].domain);
        if (d < 0 || !opts->labels[i].query) continue;
        if (nex == excap)
            ex = mb_xrealloc(ex, (excap = excap ? excap * 2 : 1024) * sizeof *ex);
        example_t *e = &ex[nex];
        memset(e, 0, sizeof *e);
        e->text = strdup(opts->labels[i].query);
        e->y = d;
        e->heldout = s_unif(&rng) < 0.15;
        if (s_query(m, e->text, &e->q, err) != 0 || e->q.nt + e->q.nk == 0) {
            free(e->text);
            continue;
        }
        nex++;
        nlab++;
    }
    (void)nlab;
    if (nex == 0) {
        mb_err_set(err, MB_ENOTFOUND, "no pseudo-query could be drawn from the passages");
        goto fail;
    }

    /* 4. pilots from the training split */
    for (size_t d = 0; d < m->nd; d++)
        s_pilots(&m->d[d], ex, nex, (int)d, m->bdim, &rng);

    /* 5. per-domain features of every example (dense cosine in batches) */
    size_t nd = m->nd;
    cen = calloc(nex * nd, sizeof *cen);
    {
        const char **texts = malloc(nex * sizeof *texts);
        for (size_t i = 0; i < nex; i++)
            texts[i] = ex[i].text;
        s_centroid_cos(m, texts, nex, cen);
        free(texts);
    }
    G = calloc(nex * nd, sizeof *G);
    for (size_t i = 0; i < nex; i++) {
        for (size_t d = 0; d < nd; d++)
            s_gfeat(m, &ex[i].q, d, (int)d == ex[i].y ? ex[i].ex : NULL,
                    (int)d == ex[i].y ? ex[i].nex : 0, cen[i * nd + d], G[i * nd + d]);
        s_centre(nd, NULL, G + i * nd);
    }

    /* 6. multinomial LR with AdaGrad */
    {
        double *gv = calloc(NG, sizeof *gv);
        float **gw = calloc(nd, sizeof *gw);
        double *gb = calloc(nd, sizeof *gb);
        for (size_t d = 0; d < nd; d++)
            gw[d] = calloc(HSIZE, sizeof **gw);
        double *z = malloc(nd * sizeof *z), *p = malloc(nd * sizeof *p);
        size_t *order = malloc(nex * sizeof *order);
        for (size_t i = 0; i < nex; i++)
            order[i] = i;
        /* The hashed-term weights learn slowly: with a fast rate they memorise
         * the pseudo-queries' words and the shared per-domain features (the
         * ones that carry over to real queries) stop learning. On the dict
         * set: real-query top-1 0.30 at 0.5/0.1, 0.51 at 0.03/1. */
        const double lr = 0.03, l2 = 1e-5, vlr = 1.0;
        for (int epoch = 0; epoch < 12; epoch++) {
            for (size_t i = nex; i > 1; i--) {
                size_t j = s_rng(&rng) % i, t = order[i - 1];
                order[i - 1] = order[j], order[j] = t;
            }
            for (size_t oi = 0; oi < nex; oi++) {
                example_t *e = &ex[order[oi]];
                if (e->heldout || e->pilot) continue;
                double(*g)[NG] = G + order[oi] * nd;
                for (size_t d = 0; d < nd; d++)
                    z[d] = s_lin(m, &e->q, d, g[d]);
                s_softmax(z, nd, NULL, 1.0, p);
                double inv = 1.0 / sqrt((double)e->q.nx);
                double dv[NG] = {0};
                for (size_t d = 0; d < nd; d++) {
                    double r = p[d] - (e->y == (int)d);
                    rdom_t *D = &m->d[d];
                    for (size_t k = 0; k < e->q.nx; k++) {
                        uint32_t b = e->q.x[k];
                        double gr = r * inv + l2 * D->w[b];
                        gw[d][b] += (float)(gr * gr);
                        D->w[b] -= (float)(lr * gr / sqrt(gw[d][b] + 1e-8));
                    }
                    gb[d] += r * r;
                    D->bias -= (float)(lr * r / sqrt(gb[d] + 1e-8));
                    for (int j = 0; j < NG; j++)
                        dv[j] += r * g[d][j];
                }
                for (int j = 0; j < NG; j++) {
                    gv[j] += dv[j] * dv[j];
                    m->v[j] -= vlr * dv[j] / sqrt(gv[j] + 1e-8);
                }
            }
        }
        free(order);
        free(z);
        free(p);
        for (size_t d = 0; d < nd; d++)
            free(gw[d]);
        free(gw);
        free(gb);
        free(gv);
    }

    /* 7. calibration and held-out accuracy */
    size_t nh = 0;
    for (size_t i = 0; i < nex; i++)
        nh += ex[i].heldout;
    zbuf = calloc((nh ? nh : 1) * nd, sizeof *zbuf);
    double *pz = calloc((nh ? nh : 1) * nd, sizeof *pz);
    ybuf = calloc(nh ? nh : 1, sizeof *ybuf);
    size_t h = 0, hit = 0, phit = 0;
    for (size_t i = 0; i < nex; i++) {
        if (!ex[i].heldout) continue;
        size_t best = 0, pbest = 0;
        for (size_t d = 0; d < nd; d++) {
            zbuf[h * nd + d] = s_lin(m, &ex[i].q, d, G[i * nd + d]);
            pz[h * nd + d] = G[i * nd + d][4];
            if (zbuf[h * nd + d] > zbuf[h * nd + best]) best = d;
            if (pz[h * nd + d] > pz[h * nd + pbest]) pbest = d;
        }
        hit += (int)best == ex[i].y;
        phit += (int)pbest == ex[i].y;
        ybuf[h++] = ex[i].y;
    }
    m->temp = s_fit_temp(zbuf, ybuf, nh, nd);
    m->ptemp = s_fit_temp(pz, ybuf, nh, nd);
    free(pz);
    m->st.examples = nex;
    m->st.heldout = nh;
    m->st.heldout_acc = nh ? (double)hit / (double)nh : 0;
    m->st.pilot_acc = nh ? (double)phit / (double)nh : 0;
    m->st.temperature = m->temp;

    /* 8. the gate: held-out in-scope vs the same with their domain removed.
     * Each also appears with a word no domain has appended: real queries
     * carry words the corpus lacks, pseudo-queries never do, and without
     * these the gate learns that any unknown word means out of scope. */
    if (nh > 0 && nd > 1) {
        size_t ng = 4 * nh;
        double(*F)[NF] = calloc(ng, sizeof *F);
        int *gy = calloc(ng, sizeof *gy), *gclean = calloc(ng, sizeof *gclean);
        unsigned char *mask = malloc(nd);
        double *p = malloc(nd * sizeof *p), *z = malloc(nd * sizeof *z);
        double(*g)[NG] = malloc(nd * sizeof *g);
        double *nbraw = malloc(nd * sizeof *nbraw);
        double *cn = malloc(nd * sizeof *cn);
        size_t k = 0;
        for (size_t i = 0; i < nex; i++) {
            if (!ex[i].heldout) continue;
            for (int noisy = 0; noisy < 2; noisy++) {
                rq_t nq, *q = &ex[i].q;
                const double *cen_row = cen + i * nd;
                if (noisy) {
                    char text[512], word[12];
                    int wl = 6 + (int)(s_rng(&rng) % 4);
                    for (int c = 0; c < wl; c++)
                        word[c] = (char)('a' + s_rng(&rng) % 26);
                    word[wl] = 0;
                    snprintf(text, sizeof text, "%s %s", ex[i].text, word);
                    if (s_query(m, text, &nq, err) != 0) continue;
                    const char *tp = text;
                    s_centroid_cos(m, &tp, 1, cn);
                    q = &nq;
                    cen_row = cn;
                }
                for (int out = 0; out < 2; out++) {
                    memset(mask, 1, nd);
                    if (out) mask[ex[i].y] = 0;
                    for (size_t d = 0; d < nd; d++) {
                        s_gfeat(m, q, d, (int)d == ex[i].y ? ex[i].ex : NULL,
                                (int)d == ex[i].y ? ex[i].nex : 0, cen_row[d], g[d]);
                        nbraw[d] = g[d][2];
                    }
                    s_centre(nd, mask, g);
                    for (size_t d = 0; d < nd; d++)
                        z[d] = s_lin(m, q, d, g[d]);
                    s_softmax(z, nd, mask, m->temp, p);
                    s_gate_feat(m, q, p, mask, g, nbraw, 0.9, 3, ex[i].ex, ex[i].nex,
                                (size_t)ex[i].y, F[k]);
                    gclean[k] = !noisy;
                    gy[k++] = !out;
                }
            }
        }
        free(cn);
        for (int j = 0; j < NF; j++) {
            double s = 0, s2 = 0;
            for (size_t i = 0; i < k; i++)
                s += F[i][j], s2 += F[i][j] * F[i][j];
            m->gmean[j] = s / (double)k;
            double var = s2 / (double)k - m->gmean[j] * m->gmean[j];
            m->gstd[j] = var > 1e-12 ? sqrt(var) : 1;
        }
        /* batch gradient descent: features are few and standardised */
        for (int it = 0; it < 500; it++) {
            double gr[NF] = {0}, grb = 0;
            for (size_t i = 0; i < k; i++) {
                double r = s_gate_p(m, F[i]) - gy[i];
                grb += r;
                for (int j = 0; j < NF; j++)
                    gr[j] += r * (F[i][j] - m->gmean[j]) / m->gstd[j];
            }
            m->gb -= 0.5 * grb / (double)k;
            for (int j = 0; j < NF; j++)
                m->gw[j] -= 0.5 * (gr[j] / (double)k + 1e-2 * m->gw[j]);
        }
        /* Default threshold: the one that keeps 98% of the in-scope held-out
         * queries retrieving (as drawn: the ones with an added unknown word
         * teach the model, they do not set its operating point). Sending a query that has
         * an answer to an internal expert costs more than an unneeded search. */
        double *pin = malloc((k / 2 + 1) * sizeof *pin);
        size_t npin = 0;
        for (size_t i = 0; i < k; i++)
            if (gy[i] && gclean[i]) pin[npin++] = s_gate_p(m, F[i]);
        for (size_t a = 1; a < npin; a++)
            for (size_t b = a; b > 0 && pin[b - 1] > pin[b]; b--) {
                double t = pin[b];
                pin[b] = pin[b - 1];
                pin[b - 1] = t;
            }
        m->threshold = npin ? pin[(size_t)(0.02 * (double)npin)] : 0.5;
        /* ...but never more than even odds: on small, cleanly separated
         * domains every held-out query scores ~1 and the 2% point would
         * turn away any real query with a word the corpus lacks */
        if (m->threshold > 0.5) m->threshold = 0.5;
        free(pin);
        size_t in_ok = 0, out_ok = 0;
        for (size_t i = 0; i < k; i++) {
            int ret = s_gate_p(m, F[i]) >= m->threshold;
            if (gy[i])
                in_ok += ret;
            else
                out_ok += !ret;
        }
        m->st.gate_in_rate = (double)in_ok / (double)(k / 2);
        m->st.gate_out_rate = (double)out_ok / (double)(k / 2);
        free(F);
        free(gy);
        free(gclean);
        free(mask);
        free(p);
        free(z);
        free(g);
        free(nbraw);
    } else {
        for (int j = 0; j < NF; j++)
            m->gstd[j] = 1;
        m->gb = 10; /* one domain: nothing to learn "out of scope" from */
        m->threshold = 0.5;
    }

    snprintf(m->version, sizeof m->version, "router-%lld", (long long)time(NULL));
    m->st.train_ms = (double)(s_now_ms() - t0);
cleanup:
    for (size_t i = 0; i < nex; i++) {
        free(ex[i].text);
        free(ex[i].ex);
    }
    free(ex);
    free(G);
    free(cen);
    free(zbuf);
    free(ybuf);
    for (size_t d = 0; d < n; d++)
        s_sample_free(&smp[d]);
    free(smp);
    return m;

fail:
    mb_rmodel_destroy(&m);
    goto cleanup;
}

/* ---- accessors ---- */

size_t mb_rmodel_ndomains(const mb_rmodel_t *self) {
    return self->nd;
}
const char *mb_rmodel_domain(const mb_rmodel_t *self, size_t i) {
    return self->d[i].name;
}
int mb_rmodel_find(const mb_rmodel_t *self, const char *name) {
    for (size_t d = 0; d < self->nd; d++)
        if (strcmp(self->d[d].name, name) == 0) return (int)d;
    return -1;
}
const char *mb_rmodel_domain_expert(const mb_rmodel_t *self, size_t i) {
    return self->d[i].version;
}
int64_t mb_rmodel_domain_chunks(const mb_rmodel_t *self, size_t i) {
    return self->d[i].chunks;
}
const char *mb_rmodel_version(const mb_rmodel_t *self) {
    return self->version;
}
int mb_rmodel_uses_wordvec(const mb_rmodel_t *self) {
    return self->base_wv;
}
double mb_rmodel_threshold(const mb_rmodel_t *self) {
    return self->threshold;
}
void mb_rmodel_stats(const mb_rmodel_t *self, mb_rmodel_stats_t *st) {
    *st = self->st;
}

/* ---- persistence ---- */

typedef struct {
    unsigned char *p;
    size_t n, cap;
} buf_t;

static void s_put(buf_t *b, const void *v, size_t n) {
    if (b->n + n > b->cap) {
        while (b->n + n > b->cap)
            b->cap = b->cap ? b->cap * 2 : 1 << 16;
        b->p = mb_xrealloc(b->p, b->cap);
    }
    memcpy(b->p + b->n, v, n);
    b->n += n;
}

/* Sparse arrays (most buckets are 0): count, then (index, value) pairs. */
static void s_put_sparse(buf_t *b, const void *arr, size_t elsz) {
    const unsigned char *a = arr;
    uint32_t cnt = 0;
    static const unsigned char zero[8];
    for (uint32_t i = 0; i < HSIZE; i++)
        cnt += memcmp(a + i * elsz, zero, elsz) != 0;
    s_put(b, &cnt, 4);
    for (uint32_t i = 0; i < HSIZE; i++)
        if (memcmp(a + i * elsz, zero, elsz) != 0) {
            s_put(b, &i, 4);
            s_put(b, a + i * elsz, elsz);
        }
}

int mb_rmodel_save(const mb_rmodel_t *m, void **blob, size_t *size, mb_err_t *err) {
    buf_t b = {0};
    uint32_t u;
    s_put(&b, MAGIC, 8);
    u = (uint32_t)m->nd;
    s_put(&b, &u, 4);
    s_put(&b, m->version, sizeof m->version);
    s_put(&b, m->v, sizeof m->v);
    s_put(&b, &m->temp, 8);
    s_put(&b, &m->ptemp, 8);
    s_put(&b, m->gmean, sizeof m->gmean);
    s_put(&b, m->gstd, sizeof m->gstd);
    s_put(&b, m->gw, sizeof m->gw);
    s_put(&b, &m->gb, 8);
    s_put(&b, &m->threshold, 8);
    int32_t bd[2] = {m->bdim, m->base_wv};
    s_put(&b, bd, sizeof bd);
    s_put(&b, &m->st, sizeof m->st);
    for (size_t d = 0; d < m->nd; d++) {
        const rdom_t *D = &m->d[d];
        s_put(&b, D->name, sizeof D->name);
        s_put(&b, D->version, sizeof D->version);
        s_put(&b, &D->n, 8);
        s_put(&b, &D->chunks, 8);
        s_put(&b, &D->bias, 4);
        int32_t dim = D->centroid ? D->dim : 0;
        s_put(&b, &dim, 4);
        if (dim) s_put(&b, D->centroid, (size_t)dim * 4);
        s_put(&b, &D->npilots, 4);
        s_put(&b, D->pilots, (size_t)D->npilots * BDIM * 4);
        s_put_sparse(&b, D->df, 4);
        s_put_sparse(&b, D->w, 4);
    }
    uLongf zn = compressBound(b.n);
    unsigned char *z = malloc(zn + 8);
    uint64_t raw = b.n;
    memcpy(z, &raw, 8);
    if (compress2(z + 8, &zn, b.p, b.n, 6) != Z_OK) {
        free(b.p);
        free(z);
        return mb_err_set(err, MB_EINTERNAL, "cannot compress the router model");
    }
    free(b.p);
    *blob = z;
    *size = zn + 8;
    return 0;
}

typedef struct {
    const unsigned char *p;
    size_t n, off;
    int bad;
} rd_t;

static void s_get(rd_t *r, void *v, size_t n) {
    if (r->bad || r->off + n > r->n) {
        r->bad = 1;
        memset(v, 0, n);
        return;
    }
    memcpy(v, r->p + r->off, n);
    r->off += n;
}

static void s_get_sparse(rd_t *r, void *arr, size_t elsz) {
    uint32_t cnt, i;
    s_get(r, &cnt, 4);
    if (cnt > HSIZE) r->bad = 1;
    for (uint32_t k = 0; k < cnt && !r->bad; k++) {
        s_get(r, &i, 4);
        if (i >= HSIZE) {
            r->bad = 1;
            break;
        }
        s_get(r, (unsigned char *)arr + (size_t)i * elsz, elsz);
    }
}

mb_rmodel_t *mb_rmodel_load(const void *blob, size_t size, const mb_rdomain_t *domains,
                            size_t n, const mb_wordvec_t *wv, mb_err_t *err) {
    if (size < 16) {
        mb_err_set(err, MB_EVERSION, "router model too short");
        return NULL;
    }
    uint64_t raw;
    memcpy(&raw, blob, 8);
    if (raw > (1ull << 31)) {
        mb_err_set(err, MB_EVERSION, "router model damaged");
        return NULL;
    }
    unsigned char *p = malloc(raw ? raw : 1);
    uLongf pn = raw;
    if (uncompress(p, &pn, (const unsigned char *)blob + 8, size - 8) != Z_OK ||
        pn != raw || raw < 12 || memcmp(p, MAGIC, 8) != 0) {
        free(p);
        mb_err_set(err, MB_EVERSION, "router model damaged or of another format");
        return NULL;
    }
    rd_t r = {.p = p, .n = raw, .off = 8};
    mb_rmodel_t *m = calloc(1, sizeof *m);
    uint32_t nd;
    s_get(&r, &nd, 4);
    if (nd == 0 || nd > 64) r.bad = 1;
    m->d = calloc(nd ? nd : 1, sizeof *m->d);
    m->df_all = calloc(HSIZE, sizeof *m->df_all);
    m->text = mb_text_new();
    s_get(&r, m->version, sizeof m->version);
    m->version[sizeof m->version - 1] = 0;
    s_get(&r, m->v, sizeof m->v);
    s_get(&r, &m->temp, 8);
    s_get(&r, &m->ptemp, 8);
    s_get(&r, m->gmean, sizeof m->gmean);
    s_get(&r, m->gstd, sizeof m->gstd);
    s_get(&r, m->gw, sizeof m->gw);
    s_get(&r, &m->gb, 8);
    s_get(&r, &m->threshold, 8);
    int32_t bd[2];
    s_get(&r, bd, sizeof bd);
    m->bdim = bd[0];
    m->base_wv = bd[1];
    if (m->bdim < 1 || m->bdim > BDIM) r.bad = 1;
    /* pilots made with word vectors need the same ones; without them the
     * pilot feature is off until the router retrains */
    if (m->base_wv && wv && mb_wordvec_dim(wv) == m->bdim) m->wv = wv;
    s_get(&r, &m->st, sizeof m->st);
    for (uint32_t d = 0; d < nd && !r.bad; d++) {
        rdom_t *D = &m->d[d];
        m->nd = d + 1;
        s_get(&r, D->name, sizeof D->name);
        D->name[sizeof D->name - 1] = 0;
        s_get(&r, D->version, sizeof D->version);
        D->version[sizeof D->version - 1] = 0;
        s_get(&r, &D->n, 8);
        s_get(&r, &D->chunks, 8);
        s_get(&r, &D->bias, 4);
        int32_t dim;
        s_get(&r, &dim, 4);
        if (dim < 0 || dim > 65536) r.bad = 1;
        if (dim > 0 && !r.bad) {
            D->dim = dim;
            D->centroid = malloc((size_t)dim * 4);
            s_get(&r, D->centroid, (size_t)dim * 4);
        }
        s_get(&r, &D->npilots, 4);
        if (D->npilots < 0 || D->npilots > NPILOT) r.bad = 1;
        D->pilots = calloc((size_t)(D->npilots > 0 ? D->npilots : 1) * BDIM, 4);
        if (!r.bad) s_get(&r, D->pilots, (size_t)D->npilots * BDIM * 4);
        D->df = calloc(HSIZE, sizeof *D->df);
        D->w = calloc(HSIZE, sizeof *D->w);
        s_get_sparse(&r, D->df, 4);
        s_get_sparse(&r, D->w, 4);
        for (uint32_t i = 0; i < HSIZE && !r.bad; i++)
            m->df_all[i] += D->df[i];
        m->n_all += D->n;
    }
    free(p);
    if (m->base_wv && !m->wv)
        for (size_t d = 0; d < m->nd; d++)
            m->d[d].npilots = 0;
    if (r.bad || !(m->temp > 0) || !(m->ptemp > 0)) {
        mb_rmodel_destroy(&m);
        mb_err_set(err, MB_EVERSION, "router model damaged");
        return NULL;
    }
    /* experts: the same version as at training, else no dense feature (the
     * router retrains when a domain's expert changes) */
    for (size_t d = 0; d < m->nd; d++) {
        rdom_t *D = &m->d[d];
        for (size_t i = 0; i < n; i++) {
            if (strcmp(domains[i].name, D->name) != 0) continue;
            snprintf(D->dir, sizeof D->dir, "%s", domains[i].dir);
            if (!D->centroid) break;
            char want[192];
            snprintf(want, sizeof want, "%s", D->version);
            s_open_expert(D);
            if (!D->expert || strcmp(want, D->version) != 0 ||
                mb_embed_dim(D->expert) != D->dim) {
                mb_embed_destroy(&D->expert);
                snprintf(D->version, sizeof D->version, "%s", want);
            }
            break;
        }
    }
    return m;
}
