/* lsa.c — fit, save, load and apply the builtin LSA expert (see lsa.h).
 *
 * The randomised SVD works on A (passages x terms, sparse CSR, rows L2-
 * normalised BM25 weights) from the term side: Y = A^T Omega, then
 * power_iters rounds of Q = orth(Y), Z = orth(A Q), Y = A^T Z, which sharpens
 * the spectrum so the top components come out accurate. With Q = orth(Y)
 * (terms x l), A Q = U S W^T is small; its Gram matrix (l x l) gives S and W,
 * and the term projection is P = Q W S^(p-1) for the top dim components: a
 * passage's coordinates x P are its U S^p coordinates. p < 1 flattens the
 * spectrum, which keeps the few largest (most generic) topics from dominating
 * every similarity. All dense algebra is double (orthogonality survives the
 * power iterations); the stored projection is float.
 */
#include "lsa.h"

#include <errno.h>
#include <lapacke.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "mb_mem.h"
#include "text.h"

/* Fortran BLAS (OpenBLAS), column-major. */
extern void dgemm_(const char *ta, const char *tb, const int *m, const int *n,
                   const int *k, const double *alpha, const double *a, const int *lda,
                   const double *b, const int *ldb, const double *beta, double *c,
                   const int *ldc);
extern void dsyrk_(const char *uplo, const char *trans, const int *n, const int *k,
                   const double *alpha, const double *a, const int *lda,
                   const double *beta, double *c, const int *ldc);
extern void dtrsm_(const char *side, const char *uplo, const char *transa,
                   const char *diag, const int *m, const int *n, const double *alpha,
                   const double *a, const int *lda, double *b, const int *ldb);

#define LSA_MAGIC "MBLSA002" /* 002: rare-term hashes are mb_text_hash */

/* ---- string -> id map (open addressing) --------------------------------- */

typedef struct {
    char **keys;
    int *ids;
    size_t cap, n;
} strmap_t;

static void s_map_init(strmap_t *m, size_t cap) {
    m->cap = 16;
    while (m->cap < cap * 2)
        m->cap *= 2;
    m->keys = calloc(m->cap, sizeof *m->keys);
    m->ids = calloc(m->cap, sizeof *m->ids);
    m->n = 0;
}

static void s_map_free(strmap_t *m) {
    for (size_t i = 0; i < m->cap; i++)
        free(m->keys[i]);
    free(m->keys);
    free(m->ids);
    memset(m, 0, sizeof *m);
}

static size_t s_map_slot(const strmap_t *m, const char *k, size_t n) {
    size_t i = mb_text_hash(k, n) & (m->cap - 1);
    while (m->keys[i] && (strncmp(m->keys[i], k, n) != 0 || m->keys[i][n] != 0))
        i = (i + 1) & (m->cap - 1);
    return i;
}

static int s_map_get(const strmap_t *m, const char *k, size_t n) {
    size_t i = s_map_slot(m, k, n);
    return m->keys[i] ? m->ids[i] : -1;
}

/* Returns the id of k, inserting it with id m->n when new. */
static int s_map_put(strmap_t *m, const char *k, size_t n) {
    if ((m->n + 1) * 2 > m->cap) {
        strmap_t g;
        s_map_init(&g, m->cap);
        for (size_t i = 0; i < m->cap; i++)
            if (m->keys[i]) {
                size_t j = s_map_slot(&g, m->keys[i], strlen(m->keys[i]));
                g.keys[j] = m->keys[i];
                g.ids[j] = m->ids[i];
            }
        g.n = m->n;
        free(m->keys);
        free(m->ids);
        *m = g;
    }
    size_t i = s_map_slot(m, k, n);
    if (!m->keys[i]) {
        m->keys[i] = strndup(k, n);
        m->ids[i] = (int)m->n++;
    }
    return m->ids[i];
}

/* ---- the model --------------------------------------------------------- */

struct mb_lsa_t {
    int dim, rank;
    size_t nterms, ndocs;
    double k1, b, avgdl;
    int hash_dims;    /* trailing components holding the exact-term sketch */
    double hash_beta; /* its share of the inner product */
    float idf_rare;   /* IDF of a term seen in one passage */
    uint64_t *rare;   /* sorted hashes of the terms the fit saw but did not keep */
    size_t nrare;
    strmap_t vocab; /* term -> row of proj */
    char **terms;   /* row -> term (for saving) */
    float *idf;     /* nterms */
    float *proj;    /* nterms x dim, row-major */
};

void mb_lsa_opts_default(mb_lsa_opts_t *o) {
    o->dim = 256;
    o->max_vocab = 30000;
    o->min_df = 2;
    o->power_iters = 3;
    o->oversample = 24;
    o->k1 = 1.2;
    o->b = 0.75;
    o->sv_power = 0.5;
    o->hash_dims = 64;
    o->hash_beta = 0.5;
    o->seed = 0x6d6f65627573ULL; /* "moebus" */
}

int mb_lsa_dim(const mb_lsa_t *self) {
    return self->dim;
}
size_t mb_lsa_vocab(const mb_lsa_t *self) {
    return self->nterms;
}
int mb_lsa_rank(const mb_lsa_t *self) {
    return self->rank;
}
size_t mb_lsa_docs(const mb_lsa_t *self) {
    return self->ndocs;
}

void mb_lsa_destroy(mb_lsa_t **self_p) {
    if (!self_p || !*self_p) return;
    mb_lsa_t *self = *self_p;
    /* vocab owns the strings; terms[] points into them */
    s_map_free(&self->vocab);
    free(self->terms);
    free(self->idf);
    free(self->proj);
    free(self->rare);
    free(self);
    *self_p = NULL;
}

/* ---- tokenising into (term, tf) lists ---------------------------------- */

typedef struct {
    strmap_t *map; /* fit: grows; embed: fixed (unknown terms dropped) */
    int grow;
    int *ids;
    size_t n, cap;
    size_t len;     /* tokens seen (document length for BM25) */
    uint64_t *rare; /* embed: hashes of terms outside the vocabulary */
    size_t nrare, rcap;
} toks_t;

static void s_tok(const char *tok, size_t len, void *arg) {
    toks_t *t = arg;
    t->len++;
    int id = t->grow ? s_map_put(t->map, tok, len) : s_map_get(t->map, tok, len);
    if (id < 0) {
        if (t->nrare == t->rcap) {
            t->rcap = t->rcap ? t->rcap * 2 : 32;
            t->rare = mb_xrealloc(t->rare, t->rcap * sizeof *t->rare);
        }
        t->rare[t->nrare++] = mb_text_hash(tok, len);
        return;
    }
    if (t->n == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 64;
        t->ids = mb_xrealloc(t->ids, t->cap * sizeof *t->ids);
    }
    t->ids[t->n++] = id;
}

static int s_cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static int s_cmp_int(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    return x < y ? -1 : x > y;
}

/* Tokenises text into t->ids (sorted, with repeats: tf = run length). */
static int s_tokens(mb_text_t *tx, const char *text, int is_query, toks_t *t,
                    mb_err_t *err) {
    t->n = t->len = t->nrare = 0;
    size_t len = strlen(text);
    int rc = mb_text_tokenize(tx, text, len, s_tok, t, err);
    if (rc != 0) return rc;
    size_t words = t->len;
    mb_text_acronyms(text, len, is_query, s_tok, t);
    t->len = words; /* acronym keys do not lengthen the passage */
    if (t->n > 1) qsort(t->ids, t->n, sizeof *t->ids, s_cmp_int);
    if (t->nrare > 1) qsort(t->rare, t->nrare, sizeof *t->rare, s_cmp_u64);
    return 0;
}

static double s_bm25_tf(double tf, double dl, double avgdl, double k1, double b) {
    return tf * (k1 + 1) / (tf + k1 * (1 - b + b * dl / (avgdl > 0 ? avgdl : 1)));
}

/* ---- embedding --------------------------------------------------------- */

/* Adds the signed 2-probe sketch of hash h with weight w into v[0..n). */
static void s_sketch(double *v, int n, uint64_t h, double w) {
    for (int p = 0; p < 2; p++) {
        h = (h ^ (h >> 31)) * 0x9e3779b97f4a7c15ULL + (uint64_t)p;
        h ^= h >> 29;
        v[(h >> 1) % (uint64_t)n] += (h & 1) ? w : -w;
    }
}

static void s_scale_unit(double *v, int n, double to) {
    double norm = 0;
    for (int d = 0; d < n; d++)
        norm += v[d] * v[d];
    if (norm <= 0) return;
    double f = to / sqrt(norm);
    for (int d = 0; d < n; d++)
        v[d] *= f;
}

int mb_lsa_embed(const mb_lsa_t *self, const char *const *texts, size_t n, int is_query,
                 float *out, mb_err_t *err) {
    mb_text_t *tx = mb_text_new();
    if (!tx) return mb_err_set(err, MB_EINTERNAL, "cannot create the English stemmer");
    toks_t t = {.map = (strmap_t *)&self->vocab, .grow = 0};
    int dim = self->dim, hd = self->hash_dims, ld = dim - hd;
    double *acc = malloc((size_t)dim * sizeof *acc);
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        float *v = out + i * (size_t)dim;
        if ((rc = s_tokens(tx, texts[i], is_query, &t, err)) != 0) break;
        memset(acc, 0, (size_t)dim * sizeof *acc);
        for (size_t a = 0; a < t.n;) {
            size_t e = a;
            while (e < t.n && t.ids[e] == t.ids[a])
                e++;
            int id = t.ids[a];
            double w = self->idf[id] * s_bm25_tf((double)(e - a), (double)t.len,
                                                 self->avgdl, self->k1, self->b);
            const float *p = self->proj + (size_t)id * (size_t)dim;
            for (int d = 0; d < ld; d++)
                acc[d] += w * p[d];
            a = e;
        }
        /* Terms the latent space cannot hold (seen in one passage, or new
         * since the fit: rare names, acronym keys) keep their identity in a
         * signed hash sketch: an exact match still counts. */
        for (size_t a = 0; hd > 0 && a < t.nrare;) {
            size_t e = a;
            while (e < t.nrare && t.rare[e] == t.rare[a])
                e++;
            /* a term no passage had cannot match: it would only add noise */
            if (!bsearch(&t.rare[a], self->rare, self->nrare, sizeof *self->rare,
                         s_cmp_u64)) {
                a = e;
                continue;
            }
            double w = self->idf_rare * s_bm25_tf((double)(e - a), (double)t.len,
                                                  self->avgdl, self->k1, self->b);
            s_sketch(acc + ld, hd, t.rare[a], w);
            a = e;
        }
        s_scale_unit(acc, ld, sqrt(1 - self->hash_beta));
        if (hd > 0) s_scale_unit(acc + ld, hd, sqrt(self->hash_beta));
        s_scale_unit(acc, dim, 1.0);
        for (int d = 0; d < dim; d++)
            v[d] = (float)acc[d];
    }
    free(acc);
    free(t.ids);
    free(t.rare);
    mb_text_destroy(&tx);
    return rc;
}

/* ---- fitting ----------------------------------------------------------- */

typedef struct {
    size_t n, nterms;
    size_t *rowp; /* n + 1 */
    int *col;
    double *val;
} csr_t;

static void s_csr_free(csr_t *a) {
    free(a->rowp);
    free(a->col);
    free(a->val);
}

/* Y (nterms x l, row-major) = A^T X (X: n x l). */
static void s_atx(const csr_t *a, const double *x, int l, double *y) {
    memset(y, 0, a->nterms * (size_t)l * sizeof *y);
    for (size_t i = 0; i < a->n; i++) {
        const double *xr = x + i * (size_t)l;
        for (size_t p = a->rowp[i]; p < a->rowp[i + 1]; p++) {
            double v = a->val[p];
            double *yr = y + (size_t)a->col[p] * (size_t)l;
            for (int c = 0; c < l; c++)
                yr[c] += v * xr[c];
        }
    }
}

/* Z (n x l) = A Q (Q: nterms x l). */
static void s_ax(const csr_t *a, const double *q, int l, double *z) {
    for (size_t i = 0; i < a->n; i++) {
        double *zr = z + i * (size_t)l;
        memset(zr, 0, (size_t)l * sizeof *zr);
        for (size_t p = a->rowp[i]; p < a->rowp[i + 1]; p++) {
            double v = a->val[p];
            const double *qr = q + (size_t)a->col[p] * (size_t)l;
            for (int c = 0; c < l; c++)
                zr[c] += v * qr[c];
        }
    }
}

/* Orthonormalises the columns of m (rows x l, row-major) in place. */
/* CholeskyQR2: G = M^T M, G = U^T U, M := M U^-1, twice. Three BLAS-3
 * calls per pass on the tall matrix instead of Householder QR (which the
 * row-major LAPACKE wrappers also transpose in and out: 235 MB each way for
 * GCIDE), and they use every BLAS thread. Any basis of M's column space
 * will do for the range finder, so a right triangular factor is fine. The
 * second pass repairs the first's loss of orthogonality; when M is too
 * ill-conditioned for that (Cholesky fails, or the result is not
 * orthonormal to 1e-8), returns 1 and Householder QR takes over, from a
 * basis of the same space. M is row-major rows x l, which column-major
 * BLAS sees as A = M^T (l x rows, lda l). */
static int s_orth_chol(double *m, size_t rows, int l) {
    if (rows < (size_t)l * 4 || rows > INT32_MAX) return 1;
    int ni = (int)rows, info = 0;
    const double one = 1, zero = 0;
    const char up = 'U', no = 'N', tr = 'T', left = 'L';
    double *g = malloc((size_t)l * (size_t)l * sizeof *g);
    int bad = 0;
    for (int pass = 0; pass < 3 && !bad; pass++) {
        dsyrk_(&up, &no, &l, &ni, &one, m, &l, &zero, g, &l); /* G = A A^T */
        if (pass == 2) {                                      /* check */
            for (int i = 0; i < l && !bad; i++)
                for (int j = i; j < l && !bad; j++)
                    bad = fabs(g[(size_t)j * l + i] - (i == j)) > 1e-8;
            break;
        }
        info = LAPACKE_dpotrf(LAPACK_COL_MAJOR, 'U', l, g, l);
        if (info != 0) {
            bad = 1;
            break;
        }
        dtrsm_(&left, &up, &tr, &no, &l, &ni, &one, g, &l, m, &l); /* A = U^-T A */
    }
    free(g);
    return bad;
}

static int s_orth(double *m, size_t rows, int l, mb_err_t *err) {
    if (s_orth_chol(m, rows, l) == 0) return 0;
    double *tau = malloc((size_t)l * sizeof *tau);
    lapack_int rc = LAPACKE_dgeqrf(LAPACK_ROW_MAJOR, (lapack_int)rows, l, m, l, tau);
    if (rc == 0) rc = LAPACKE_dorgqr(LAPACK_ROW_MAJOR, (lapack_int)rows, l, l, m, l, tau);
    free(tau);
    if (rc != 0) return mb_err_set(err, MB_EINTERNAL, "QR factorisation failed (%d)", rc);
    return 0;
}

static uint64_t s_rng(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static double s_gauss(uint64_t *s) {
    double u1 = ((double)(s_rng(s) >> 11) + 0.5) / 9007199254740992.0;
    double u2 = ((double)(s_rng(s) >> 11) + 0.5) / 9007199254740992.0;
    return sqrt(-2 * log(u1)) * cos(6.283185307179586 * u2);
}

typedef struct {
    int id;
    int df;
} dfent_t;

static int s_cmp_df(const void *a, const void *b) {
    const dfent_t *x = a, *y = b;
    if (x->df != y->df) return x->df > y->df ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

mb_lsa_t *mb_lsa_fit(const char *const *texts, size_t n, const mb_lsa_opts_t *opts,
                     mb_err_t *err) {
    mb_lsa_opts_t o;
    if (opts)
        o = *opts;
    else
        mb_lsa_opts_default(&o);
    if (o.dim < 8 || o.dim > 4096 || o.hash_dims < 0 || o.hash_dims > o.dim / 2 ||
        o.hash_beta < 0 || o.hash_beta >= 1) {
        mb_err_set(
            err, MB_EBADREQ,
            "LSA dimension %d outside 8..4096 or sketch %d dims / share %g invalid",
            o.dim, o.hash_dims, o.hash_beta);
        return NULL;
    }
    mb_text_t *tx = mb_text_new();
    if (!tx) {
        mb_err_set(err, MB_EINTERNAL, "cannot create the English stemmer");
        return NULL;
    }
    mb_lsa_t *self = NULL;
    strmap_t all;
    s_map_init(&all, 1 << 16);
    toks_t t = {.map = &all, .grow = 1};
    /* Pass 1: tokenise every passage into (term, tf) runs under provisional ids. */
    size_t *rowp = malloc((n + 1) * sizeof *rowp), cap = 1 << 20, nnz = 0;
    int *col = malloc(cap * sizeof *col);
    int *tf = malloc(cap * sizeof *tf);
    size_t *dl = malloc((n ? n : 1) * sizeof *dl);
    int *df = NULL;
    char **names = NULL;
    int *remap = NULL;
    dfent_t *order = NULL;
    csr_t a = {0};
    double *omega = NULL, *y = NULL, *z = NULL, *g = NULL, *w = NULL, *p = NULL;
    double total_len = 0;
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        rowp[i] = nnz;
        if ((rc = s_tokens(tx, texts[i], 0, &t, err)) != 0) goto cleanup;
        dl[i] = t.len;
        total_len += (double)t.len;
        for (size_t s = 0; s < t.n;) {
            size_t e = s;
            while (e < t.n && t.ids[e] == t.ids[s])
                e++;
            if (nnz == cap) {
                cap *= 2;
                col = mb_xrealloc(col, cap * sizeof *col);
                tf = mb_xrealloc(tf, cap * sizeof *tf);
            }
            col[nnz] = t.ids[s];
            tf[nnz++] = (int)(e - s);
            s = e;
        }
    }
    rowp[n] = nnz;

    /* Vocabulary: terms in >= min_df passages, the most frequent max_vocab.
     * Terms in nearly every passage carry no topic; BM25's IDF makes them
     * weigh almost nothing, so they are kept rather than second-guessed. */
    names = calloc(all.n ? all.n : 1, sizeof *names); /* id -> term */
    for (size_t s = 0; s < all.cap; s++)
        if (all.keys[s]) names[all.ids[s]] = all.keys[s];
    df = calloc(all.n ? all.n : 1, sizeof *df);
    for (size_t q = 0; q < nnz; q++)
        df[col[q]]++;
    order = malloc((all.n ? all.n : 1) * sizeof *order);
    size_t nkeep = 0;
    for (size_t id = 0; id < all.n; id++)
        if (df[id] >= o.min_df && names[id][0] != '~')
            order[nkeep++] = (dfent_t){(int)id, df[id]};
    qsort(order, nkeep, sizeof *order, s_cmp_df);
    if (nkeep > (size_t)o.max_vocab) nkeep = (size_t)o.max_vocab;
    if (nkeep < 2 || n < 2) {
        rc =
            mb_err_set(err, MB_EBADREQ,
                       "too little text to fit: %zu passages, %zu terms in >= %d of them",
                       n, nkeep, o.min_df);
        goto cleanup;
    }
    remap = malloc(all.n * sizeof *remap);
    for (size_t id = 0; id < all.n; id++)
        remap[id] = -1;
    for (size_t r = 0; r < nkeep; r++)
        remap[order[r].id] = (int)r;
    self = calloc(1, sizeof *self);
    self->rare = malloc((all.n - nkeep + 1) * sizeof *self->rare);
    for (size_t s = 0; s < all.cap; s++)
        if (all.keys[s] && remap[all.ids[s]] < 0)
            self->rare[self->nrare++] = mb_text_hash(all.keys[s], strlen(all.keys[s]));
    qsort(self->rare, self->nrare, sizeof *self->rare, s_cmp_u64);

    self->dim = o.dim;
    self->nterms = nkeep;
    self->ndocs = n;
    self->k1 = o.k1;
    self->b = o.b;
    self->avgdl = n ? total_len / (double)n : 1;
    self->hash_dims = o.hash_dims;
    self->hash_beta = o.hash_beta;
    self->idf_rare = (float)log(1.0 + ((double)n - 0.5) / 1.5);
    self->idf = malloc(nkeep * sizeof *self->idf);
    self->terms = malloc(nkeep * sizeof *self->terms);
    s_map_init(&self->vocab, nkeep);
    {
        for (size_t r = 0; r < nkeep; r++) {
            const char *nm = names[order[r].id];
            int id = s_map_put(&self->vocab, nm, strlen(nm));
            (void)id; /* == r: inserted in order */
            double d = order[r].df;
            self->idf[r] = (float)log(1.0 + ((double)n - d + 0.5) / (d + 0.5));
        }
        for (size_t s = 0; s < self->vocab.cap; s++)
            if (self->vocab.keys[s])
                self->terms[self->vocab.ids[s]] = self->vocab.keys[s];
    }

    /* A: kept terms only, BM25 weights, rows L2-normalised (so long passages
     * do not dominate the factorisation). */
    a.n = n;
    a.nterms = nkeep;
    a.rowp = malloc((n + 1) * sizeof *a.rowp);
    a.col = malloc((nnz ? nnz : 1) * sizeof *a.col);
    a.val = malloc((nnz ? nnz : 1) * sizeof *a.val);
    size_t an = 0;
    for (size_t i = 0; i < n; i++) {
        a.rowp[i] = an;
        double norm = 0;
        for (size_t q = rowp[i]; q < rowp[i + 1]; q++) {
            int r = remap[col[q]];
            if (r < 0) continue;
            double v =
                self->idf[r] * s_bm25_tf(tf[q], (double)dl[i], self->avgdl, o.k1, o.b);
            a.col[an] = r;
            a.val[an++] = v;
            norm += v * v;
        }
        if (norm > 0)
            for (size_t q = a.rowp[i]; q < an; q++)
                a.val[q] /= sqrt(norm);
    }
    a.rowp[n] = an;

    /* Randomised range finder on the term side. */
    int l = o.dim + o.oversample;
    int maxrank = (int)(nkeep < n ? nkeep : n);
    if (l > maxrank) l = maxrank;
    uint64_t seed = o.seed;
    omega = malloc(n * (size_t)l * sizeof *omega);
    y = malloc(nkeep * (size_t)l * sizeof *y);
    z = malloc(n * (size_t)l * sizeof *z);
    for (size_t q = 0; q < n * (size_t)l; q++)
        omega[q] = s_gauss(&seed);
    s_atx(&a, omega, l, y);
    for (int it = 0; it < o.power_iters; it++) {
        if ((rc = s_orth(y, nkeep, l, err)) != 0) goto cleanup;
        s_ax(&a, y, l, z);
        if ((rc = s_orth(z, n, l, err)) != 0) goto cleanup;
        s_atx(&a, z, l, y);
    }
    if ((rc = s_orth(y, nkeep, l, err)) != 0) goto cleanup;
    /* B = A Q (n x l); G = B^T B = W S^2 W^T. */
    s_ax(&a, y, l, z);
    g = malloc((size_t)l * (size_t)l * sizeof *g);
    {
        /* row-major B is column-major B^T (l x n): G = (B^T)(B^T)^T */
        const char tn = 'N', tt = 'T';
        const double one = 1, zero = 0;
        int ni = (int)n;
        dgemm_(&tn, &tt, &l, &l, &ni, &one, z, &l, z, &l, &zero, g, &l);
    }
    double *ev = malloc((size_t)l * sizeof *ev);
    /* G symmetric: row- and column-major agree. Eigenvalues ascend. */
    lapack_int lrc = LAPACKE_dsyevd(LAPACK_ROW_MAJOR, 'V', 'U', l, g, l, ev);
    if (lrc != 0) {
        free(ev);
        rc = mb_err_set(err, MB_EINTERNAL, "eigen-decomposition failed (%d)", (int)lrc);
        goto cleanup;
    }
    /* W_k S^(p-1): the top min(dim, l) components, largest first. */
    int rank = o.dim - self->hash_dims < l ? o.dim - self->hash_dims : l;
    w = calloc((size_t)l * (size_t)o.dim, sizeof *w); /* l x dim row-major */
    int kept = 0;
    for (int c = 0; c < rank; c++) {
        int e = l - 1 - c;
        if (ev[e] <= 1e-12 * (ev[l - 1] > 0 ? ev[l - 1] : 1)) break;
        double sigma = sqrt(ev[e]);
        double scale = pow(sigma, o.sv_power - 1.0);
        for (int r = 0; r < l; r++)
            w[(size_t)r * o.dim + c] = g[(size_t)r * l + e] * scale;
        kept++;
    }
    free(ev);
    self->rank = kept;
    /* P = Q W (nkeep x dim), row-major: as column-major, P^T = W^T Q^T. */
    p = malloc(nkeep * (size_t)o.dim * sizeof *p);
    {
        const char tn = 'N';
        const double one = 1, zero = 0;
        int nk = (int)nkeep, dm = o.dim;
        dgemm_(&tn, &tn, &dm, &nk, &l, &one, w, &dm, y, &l, &zero, p, &dm);
    }
    self->proj = malloc(nkeep * (size_t)o.dim * sizeof *self->proj);
    for (size_t q = 0; q < nkeep * (size_t)o.dim; q++)
        self->proj[q] = (float)p[q];

cleanup:
    if (rc != 0) mb_lsa_destroy(&self);
    s_map_free(&all);
    free(t.ids);
    free(rowp);
    free(col);
    free(tf);
    free(dl);
    free(df);
    free(names);
    free(remap);
    free(order);
    s_csr_free(&a);
    free(omega);
    free(y);
    free(z);
    free(g);
    free(w);
    free(p);
    mb_text_destroy(&tx);
    return self;
}

/* ---- persistence ------------------------------------------------------- */
/* Layout (little-endian): magic[8], u32 dim, u32 rank, u64 nterms, u64 ndocs,
 * f64 k1, b, avgdl, hash_dims, hash_beta, idf_rare; per term: u16 len + bytes; f32
 * idf[nterms]; u64 nrare + u64 rare_hashes[nrare] (sorted); f32 proj[nterms*dim]; u32
 * crc32 of everything before it. */

typedef struct {
    FILE *f;
    uLong crc;
    int bad;
} wr_t;

static void s_w(wr_t *w, const void *p, size_t n) {
    if (w->bad || fwrite(p, 1, n, w->f) != n) {
        w->bad = 1;
        return;
    }
    w->crc = crc32(w->crc, p, (uInt)n);
}

int mb_lsa_save(const mb_lsa_t *self, const char *path, mb_err_t *err) {
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    wr_t w = {.f = fopen(tmp, "wb"), .crc = crc32(0, NULL, 0)};
    if (!w.f) return mb_err_set(err, MB_EIO, "cannot write %s: %s", tmp, strerror(errno));
    uint32_t u32[2] = {(uint32_t)self->dim, (uint32_t)self->rank};
    uint64_t u64[2] = {self->nterms, self->ndocs};
    double f64[6] = {self->k1,        self->b,         self->avgdl,
                     self->hash_dims, self->hash_beta, self->idf_rare};
    s_w(&w, LSA_MAGIC, 8);
    s_w(&w, u32, sizeof u32);
    s_w(&w, u64, sizeof u64);
    s_w(&w, f64, sizeof f64);
    for (size_t i = 0; i < self->nterms; i++) {
        uint16_t len = (uint16_t)strlen(self->terms[i]);
        s_w(&w, &len, sizeof len);
        s_w(&w, self->terms[i], len);
    }
    s_w(&w, self->idf, self->nterms * sizeof *self->idf);
    uint64_t nr = self->nrare;
    s_w(&w, &nr, sizeof nr);
    for (size_t off = 0; off < nr; off += 1 << 16) {
        size_t k = nr - off < (1u << 16) ? nr - off : 1u << 16;
        s_w(&w, self->rare + off, k * sizeof *self->rare);
    }
    /* large: write in slices (crc32 takes a uInt length) */
    size_t total = self->nterms * (size_t)self->dim;
    for (size_t off = 0; off < total; off += 1 << 20) {
        size_t k = total - off < (1u << 20) ? total - off : 1u << 20;
        s_w(&w, self->proj + off, k * sizeof(float));
    }
    uint32_t crc = (uint32_t)w.crc;
    if (!w.bad && fwrite(&crc, sizeof crc, 1, w.f) != 1) w.bad = 1;
    if (!w.bad && (fflush(w.f) != 0 || fsync(fileno(w.f)) != 0)) w.bad = 1;
    if (fclose(w.f) != 0) w.bad = 1;
    if (w.bad || rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        return mb_err_set(err, MB_EIO, "cannot write %s: %s", path, strerror(e));
    }
    return 0;
}

typedef struct {
    FILE *f;
    uLong crc;
    int bad;
} rd_t;

static void s_r(rd_t *r, void *p, size_t n) {
    if (r->bad || fread(p, 1, n, r->f) != n) {
        r->bad = 1;
        return;
    }
    r->crc = crc32(r->crc, p, (uInt)n);
}

mb_lsa_t *mb_lsa_load(const char *path, mb_err_t *err) {
    rd_t r = {.f = fopen(path, "rb"), .crc = crc32(0, NULL, 0)};
    if (!r.f) {
        mb_err_set(err, MB_EIO, "cannot read %s: %s", path, strerror(errno));
        return NULL;
    }
    mb_lsa_t *self = calloc(1, sizeof *self);
    char magic[8];
    uint32_t u32[2];
    uint64_t u64[2];
    double f64[6];
    s_r(&r, magic, 8);
    s_r(&r, u32, sizeof u32);
    s_r(&r, u64, sizeof u64);
    s_r(&r, f64, sizeof f64);
    if (r.bad || memcmp(magic, LSA_MAGIC, 8) != 0 || u32[0] < 8 || u32[0] > 4096 ||
        u64[0] > 100000000ULL) {
        mb_err_set(err, MB_EIO, "%s is not a moebus LSA model", path);
        goto fail;
    }
    self->dim = (int)u32[0];
    self->rank = (int)u32[1];
    self->nterms = u64[0];
    self->ndocs = u64[1];
    self->k1 = f64[0];
    self->b = f64[1];
    self->avgdl = f64[2];
    self->hash_dims = (int)f64[3];
    self->hash_beta = f64[4];
    self->idf_rare = (float)f64[5];
    if (self->hash_dims < 0 || self->hash_dims > self->dim / 2 ||
        !(self->hash_beta >= 0) || self->hash_beta >= 1) {
        mb_err_set(err, MB_EIO, "%s has an invalid sketch size", path);
        goto fail;
    }
    s_map_init(&self->vocab, self->nterms);
    self->terms = calloc(self->nterms ? self->nterms : 1, sizeof *self->terms);
    char buf[65536];
    for (size_t i = 0; i < self->nterms && !r.bad; i++) {
        uint16_t len;
        s_r(&r, &len, sizeof len);
        if (r.bad) break;
        s_r(&r, buf, len);
        s_map_put(&self->vocab, buf, len);
    }
    for (size_t s = 0; s < self->vocab.cap; s++)
        if (self->vocab.keys[s]) self->terms[self->vocab.ids[s]] = self->vocab.keys[s];
    self->idf = malloc((self->nterms ? self->nterms : 1) * sizeof *self->idf);
    s_r(&r, self->idf, self->nterms * sizeof *self->idf);
    uint64_t nr = 0;
    s_r(&r, &nr, sizeof nr);
    if (r.bad || nr > 100000000ULL) {
        mb_err_set(err, MB_EIO, "%s is truncated or corrupt", path);
        goto fail;
    }
    self->nrare = nr;
    self->rare = malloc((nr ? nr : 1) * sizeof *self->rare);
    for (size_t off = 0; off < nr && !r.bad; off += 1 << 16) {
        size_t k = nr - off < (1u << 16) ? nr - off : 1u << 16;
        s_r(&r, self->rare + off, k * sizeof *self->rare);
    }
    size_t total = self->nterms * (size_t)self->dim;
    self->proj = malloc((total ? total : 1) * sizeof *self->proj);
    for (size_t off = 0; off < total && !r.bad; off += 1 << 20) {
        size_t k = total - off < (1u << 20) ? total - off : 1u << 20;
        s_r(&r, self->proj + off, k * sizeof(float));
    }
    uint32_t want = (uint32_t)r.crc, crc = 0;
    if (r.bad || fread(&crc, sizeof crc, 1, r.f) != 1 || crc != want ||
        self->vocab.n != self->nterms) {
        mb_err_set(err, MB_EIO, "%s is truncated or corrupt (checksum)", path);
        goto fail;
    }
    fclose(r.f);
    return self;
fail:
    fclose(r.f);
    mb_lsa_destroy(&self);
    return NULL;
}
