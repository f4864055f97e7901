/* The builtin LSA expert: fit, embed, persistence, acronym keys, edges. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "embed.h"
#include "lsa.h"
#include "testutil.h"

#define DIM 256

/* Three topics, each with its own vocabulary, plus a few acronym entries. */
static const char *s_topic[3][8] = {
    {"bread dough flour yeast oven bake", "knead the dough and let the yeast rise",
     "bake bread in a hot oven", "flour water yeast salt make dough",
     "sourdough bread needs a starter and flour", "oven temperature for baking bread",
     "rye flour makes a dense bread", "yeast ferments sugar in the dough"},
    {"telescope star galaxy nebula orbit", "a telescope observes distant galaxies",
     "stars fuse hydrogen in their cores", "the orbit of a planet around a star",
     "nebula of gas and dust between stars", "galaxy clusters and dark matter",
     "planet moon orbit gravity", "astronomers point the telescope at a nebula"},
    {"compiler parser lexer syntax tree", "the parser builds a syntax tree",
     "a lexer splits source into tokens", "compiler optimisation of the syntax tree",
     "tokens from the lexer feed the parser", "a compiler emits machine code",
     "syntax errors stop the compiler", "the parser reads tokens"},
};

static const char *s_texts[27];
static size_t s_n;

static void s_corpus(void) {
    s_n = 0;
    for (int t = 0; t < 3; t++)
        for (int i = 0; i < 8; i++)
            s_texts[s_n++] = s_topic[t][i];
    s_texts[s_n++] = "Public Remote-Access Computer Standards Association (org., USA)";
    s_texts[s_n++] = "Java standard DataBase Connectivity (DB, Java, Sun)";
    s_texts[s_n++] = "General Purpose computation on Graphics Processing Units (GPU)";
}

static double s_dot(const float *a, const float *b) {
    double s = 0;
    for (int i = 0; i < DIM; i++)
        s += (double)a[i] * b[i];
    return s;
}

static mb_lsa_t *s_fit(void) {
    s_corpus();
    mb_lsa_opts_t o;
    mb_lsa_opts_default(&o);
    o.dim = DIM;
    o.hash_dims = 64;
    mb_err_t err;
    mb_lsa_t *m = mb_lsa_fit(s_texts, s_n, &o, &err);
    if (!m) fail_msg("fit: %s", err.msg);
    return m;
}

/* Index of the passage closest to query. */
static size_t s_nearest(const mb_lsa_t *m, const char *query) {
    float q[DIM], v[DIM];
    assert_int_equal(mb_lsa_embed(m, &query, 1, 1, q, NULL), 0);
    size_t best = 0;
    double bs = -2;
    for (size_t i = 0; i < s_n; i++) {
        assert_int_equal(mb_lsa_embed(m, &s_texts[i], 1, 0, v, NULL), 0);
        double s = s_dot(q, v);
        if (s > bs) bs = s, best = i;
    }
    return best;
}

static void test_fit_embed(void **state) {
    (void)state;
    mb_lsa_t *m = s_fit();
    assert_int_equal(mb_lsa_dim(m), DIM);
    assert_true(mb_lsa_vocab(m) > 20);
    assert_true(mb_lsa_rank(m) > 2 && mb_lsa_rank(m) <= DIM - 64);
    float v[3][DIM];
    assert_int_equal(mb_lsa_embed(m, s_texts, 3, 0, &v[0][0], NULL), 0);
    for (int i = 0; i < 3; i++)
        assert_float_equal(s_dot(v[i], v[i]), 1.0, 1e-4);
    /* a query without any literal overlap with passage 2 ("bake bread in a
     * hot oven") still lands in its topic: latent, not lexical */
    size_t hit = s_nearest(m, "yeast flour");
    assert_true(hit < 8);
    assert_true(s_nearest(m, "galaxy telescope") >= 8 &&
                s_nearest(m, "galaxy telescope") < 16);
    assert_true(s_nearest(m, "lexer tokens") >= 16 && s_nearest(m, "lexer tokens") < 24);
    /* unknown words only: the zero vector */
    const char *none = "zzzqqq xxyyzz";
    assert_int_equal(mb_lsa_embed(m, &none, 1, 1, &v[0][0], NULL), 0);
    for (int d = 0; d < DIM; d++)
        assert_true(v[0][d] == 0);
    mb_lsa_destroy(&m);
}

/* Rank (0 = best) of passage want for query. */
static int s_rank(const mb_lsa_t *m, const char *query, size_t want) {
    float q[DIM], v[DIM];
    double sw;
    assert_int_equal(mb_lsa_embed(m, &query, 1, 1, q, NULL), 0);
    mb_lsa_embed(m, &s_texts[want], 1, 0, v, NULL);
    sw = s_dot(q, v);
    int rank = 0;
    for (size_t i = 0; i < s_n; i++) {
        mb_lsa_embed(m, &s_texts[i], 1, 0, v, NULL);
        rank += i != want && s_dot(q, v) > sw;
    }
    return rank;
}

static void test_acronyms(void **state) {
    (void)state;
    mb_lsa_t *m = s_fit();
    /* The acronym is nowhere in the passage: only its key can match. Keys
     * live in the sketch, where in a corpus this tiny almost every word is
     * rare and collides with something; so: among the best 3 of 27. (On the
     * real acronyms set this takes dense nDCG@10 from 0.12 to 0.40.) */
    assert_true(s_rank(m, "pracsa", 24) < 3);
    assert_true(s_rank(m, "JDBC", 25) < 3);
    assert_true(s_rank(m, "gpgpu", 26) < 3);
    /* the key decides: with another acronym the passage drops back */
    assert_true(s_rank(m, "pracsa", 25) > 0);
    mb_lsa_destroy(&m);
}

static void test_save_load(void **state) {
    (void)state;
    char dir[256], path[300];
    tu_mkdtemp(dir, sizeof dir, "lsa");
    snprintf(path, sizeof path, "%s/m.bin", dir);
    mb_lsa_t *m = s_fit();
    mb_err_t err;
    assert_int_equal(mb_lsa_save(m, path, &err), 0);
    mb_lsa_t *l = mb_lsa_load(path, &err);
    assert_non_null(l);
    float a[DIM], b[DIM];
    const char *q = "the parser and the telescope";
    mb_lsa_embed(m, &q, 1, 1, a, NULL);
    mb_lsa_embed(l, &q, 1, 1, b, NULL);
    assert_memory_equal(a, b, sizeof a);
    mb_lsa_destroy(&l);
    /* a flipped byte fails the checksum; a truncated file is refused */
    FILE *f = fopen(path, "r+b");
    fseek(f, 200, SEEK_SET);
    int c = fgetc(f);
    fseek(f, 200, SEEK_SET);
    fputc(c ^ 0x5a, f);
    fclose(f);
    assert_null(mb_lsa_load(path, &err));
    assert_int_equal(err.code, MB_EIO);
    assert_int_equal(truncate(path, 100), 0);
    assert_null(mb_lsa_load(path, &err));
    mb_lsa_destroy(&m);
    tu_rmrf(dir);
}

static void test_edges(void **state) {
    (void)state;
    mb_err_t err;
    const char *one[] = {"lonely"};
    assert_null(mb_lsa_fit(one, 1, NULL, &err));
    assert_int_equal(err.code, MB_EBADREQ);
    const char *bad[] = {"caf\xc3", "ok text here"};
    assert_null(mb_lsa_fit(bad, 2, NULL, &err));
    assert_int_equal(err.code, MB_EBADREQ);
    /* the expert interface: builtin without a model file is "not fitted" */
    mb_expert_spec_t spec = {.backend = "builtin", .dim = 64};
    assert_null(mb_embed_open(&spec, "/tmp", &err));
    assert_int_equal(err.code, MB_ENOTFOUND);
}

static void test_fit_through_interface(void **state) {
    (void)state;
    char dir[256];
    tu_mkdtemp(dir, sizeof dir, "lsa-if");
    s_corpus();
    mb_expert_spec_t spec = {.backend = "builtin", .dim = DIM};
    mb_err_t err;
    assert_int_equal(mb_embed_fit(&spec, dir, s_texts, s_n, &err), 0);
    assert_true(strncmp(spec.version, "lsa-", 4) == 0);
    assert_int_equal(spec.fit_chunks, (long)s_n);
    assert_int_equal(mb_expert_write(dir, &spec, &err), 0);
    mb_expert_spec_t back;
    assert_int_equal(mb_expert_read(dir, &back, &err), 0);
    assert_string_equal(back.version, spec.version);
    mb_embed_t *e = mb_embed_open(&back, dir, &err);
    assert_non_null(e);
    assert_string_equal(mb_embed_version(e), spec.version);
    float v[DIM];
    const char *q = "pracsa";
    assert_int_equal(mb_embed_batch(e, &q, 1, MB_EMBED_QUERY, v, &err), 0);
    assert_float_equal(s_dot(v, v), 1.0, 1e-4);
    mb_embed_destroy(&e);
    tu_rmrf(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fit_embed), cmocka_unit_test(test_acronyms),
        cmocka_unit_test(test_save_load), cmocka_unit_test(test_edges),
        cmocka_unit_test(test_fit_through_interface)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
