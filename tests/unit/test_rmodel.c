/* test_rmodel.c — the learned router and gate model (router/rmodel.c) on
 * three synthetic domains with their own vocabularies and a shared one:
 * routing accuracy on unseen queries, calibrated probabilities, masks,
 * persistence, the pilot router and the gate's scope signal. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "rmodel.h"
#include "router.h"
#include "wordvec.h"
#include "store.h"
#include "testutil.h"

static const char *s_vocab[3][16] = {
    {"saucepan", "simmer", "garlic", "braise", "oven", "whisk", "dough", "saffron",
     "marinade", "skillet", "broth", "caramel", "pastry", "ginger", "roast", "vinegar"},
    {"nebula", "telescope", "orbit", "galaxy", "comet", "asteroid", "pulsar", "quasar",
     "redshift", "planet", "eclipse", "meteor", "supernova", "lunar", "solar", "cosmic"},
    {"plaintiff", "statute", "verdict", "tort", "appeal", "jury", "contract", "lawsuit",
     "defendant", "clause", "court", "judge", "liability", "testimony", "warrant",
     "subpoena"}};
static const char *s_shared[8] = {"great", "time",  "people", "world",
                                  "small", "large", "light",  "heavy"};
static const char *s_names[3] = {"cooking", "astronomy", "law"};
static char s_home[256];
static char s_dirs[3][512];

static unsigned s_lcg(unsigned *s) {
    return *s = *s * 1103515245u + 12345u;
}

/* 150 passages of 12 words per domain: 8 of its own, 4 shared. */
static int s_setup(void **state) {
    (void)state;
    tu_mkdtemp(s_home, sizeof s_home, "rmodel");
    unsigned seed = 7;
    for (int d = 0; d < 3; d++) {
        snprintf(s_dirs[d], sizeof s_dirs[d], "%s/%s", s_home, s_names[d]);
        mkdir(s_dirs[d], 0755);
        char path[600];
        snprintf(path, sizeof path, "%s/store.db", s_dirs[d]);
        mb_err_t err;
        mb_store_t *st = mb_store_open(path, 16, &err);
        assert_non_null(st);
        mb_store_begin(st, &err);
        for (int p = 0; p < 150; p++) {
            char text[1024] = "", id[32];
            for (int w = 0; w < 12; w++) {
                const char *word = (w % 3 == 2) ? s_shared[s_lcg(&seed) >> 16 & 7]
                                                : s_vocab[d][s_lcg(&seed) >> 16 & 15];
                strcat(text, word);
                strcat(text, w % 6 == 5 ? ". " : " ");
            }
            snprintf(id, sizeof id, "%s:%d", s_names[d], p);
            int64_t row, cid;
            assert_int_equal(mb_store_doc_insert(st, id, "", "", NULL, &row, &err), 0);
            assert_int_equal(
                mb_store_chunk_insert(st, row, 0, text, NULL, "", &cid, &err), 0);
        }
        mb_store_commit(st, &err);
        mb_store_close(&st);
    }
    return 0;
}

static int s_teardown(void **state) {
    (void)state;
    tu_rmrf(s_home);
    return 0;
}

static mb_rmodel_t *s_train(size_t nd) {
    mb_rdomain_t rd[3];
    for (size_t d = 0; d < nd; d++)
        rd[d] = (mb_rdomain_t){s_names[d], s_dirs[d]};
    mb_rtrain_opts_t o = {.pseudo_per_domain = 150};
    mb_err_t err;
    mb_rmodel_t *m = mb_rmodel_train(rd, nd, &o, &err);
    if (!m) fail_msg("train: %s", err.msg);
    return m;
}

static void test_routes_unseen_queries(void **state) {
    (void)state;
    mb_rmodel_t *m = s_train(3);
    assert_int_equal(mb_rmodel_ndomains(m), 3);
    /* queries made of two domain words each, not taken from any passage */
    unsigned seed = 99;
    int hit = 0, n = 0;
    double probs[3];
    for (int d = 0; d < 3; d++)
        for (int i = 0; i < 20; i++) {
            char q[128];
            snprintf(q, sizeof q, "%s %s", s_vocab[d][s_lcg(&seed) >> 16 & 15],
                     s_vocab[d][s_lcg(&seed) >> 16 & 15]);
            mb_rgate_t g;
            mb_err_t err;
            assert_int_equal(
                mb_rmodel_score(m, q, MB_ROUTER_LEARNED, NULL, 0.9, 3, probs, &g, &err),
                0);
            double sum = probs[0] + probs[1] + probs[2];
            assert_true(fabs(sum - 1.0) < 1e-9);
            int best = probs[0] >= probs[1] && probs[0] >= probs[2] ? 0
                       : probs[1] >= probs[2]                       ? 1
                                                                    : 2;
            hit += mb_rmodel_find(m, s_names[d]) == best;
            n++;
        }
    assert_true(hit >= 57); /* 95% of 60 */
    mb_rmodel_stats_t st;
    mb_rmodel_stats(m, &st);
    assert_true(st.examples >= 300);
    assert_true(st.temperature > 0);
    mb_rmodel_destroy(&m);
}

static void test_mask_and_pilot(void **state) {
    (void)state;
    mb_rmodel_t *m = s_train(3);
    double probs[3];
    unsigned char allowed[3] = {1, 1, 1};
    int law = mb_rmodel_find(m, "law");
    allowed[law] = 0;
    mb_err_t err;
    assert_int_equal(mb_rmodel_score(m, "jury verdict", MB_ROUTER_LEARNED, allowed, 0.9,
                                     3, probs, NULL, &err),
                     0);
    assert_true(probs[law] == 0);
    assert_true(fabs(probs[0] + probs[1] + probs[2] - 1) < 1e-9);
    /* excluding after scoring (the router's "exclude") is the same
     * distribution as scoring with the mask, for both routers */
    for (int kind = MB_ROUTER_LEARNED; kind <= MB_ROUTER_PILOT; kind++) {
        double masked[3], full[3];
        assert_int_equal(mb_rmodel_score(m, "jury verdict appeal comet", kind, allowed,
                                         0.9, 3, masked, NULL, &err),
                         0);
        assert_int_equal(mb_rmodel_score(m, "jury verdict appeal comet", kind, NULL, 0.9,
                                         3, full, NULL, &err),
                         0);
        mb_router_restrict(full, 3, allowed);
        for (int d = 0; d < 3; d++)
            assert_true(fabs(full[d] - masked[d]) < 1e-9);
    }
    /* the pilot router: probabilities, and the nearest pilots win */
    assert_int_equal(mb_rmodel_score(m, "comet nebula", MB_ROUTER_PILOT, NULL, 0.9, 3,
                                     probs, NULL, &err),
                     0);
    int astro = mb_rmodel_find(m, "astronomy");
    assert_true(probs[astro] > probs[(astro + 1) % 3] &&
                probs[astro] > probs[(astro + 2) % 3]);
    /* invalid UTF-8 is refused */
    assert_int_equal(
        mb_rmodel_score(m, "bad \xff\xfe", 0, NULL, 0.9, 3, probs, NULL, &err),
        MB_EBADREQ);
    mb_rmodel_destroy(&m);
}

static void test_gate_scope(void **state) {
    (void)state;
    /* trained without law: law queries are out of scope */
    mb_rmodel_t *m = s_train(2);
    double probs[2];
    mb_rgate_t in, out;
    mb_err_t err;
    double in_sum = 0, out_sum = 0;
    for (int i = 0; i < 16; i++) {
        char q[128];
        snprintf(q, sizeof q, "%s %s", s_vocab[0][i], s_vocab[1][(i + 3) & 15]);
        assert_int_equal(mb_rmodel_score(m, q, 0, NULL, 0.9, 3, probs, &in, &err), 0);
        snprintf(q, sizeof q, "%s %s", s_vocab[2][i], s_vocab[2][(i + 5) & 15]);
        assert_int_equal(mb_rmodel_score(m, q, 0, NULL, 0.9, 3, probs, &out, &err), 0);

        in_sum += in.p_in >= mb_rmodel_threshold(m);
        out_sum += out.p_in < mb_rmodel_threshold(m);
        assert_true(in.p_in > out.p_in);
    }
    assert_true(in_sum >= 15);
    assert_true(out_sum >= 12);
    mb_rmodel_destroy(&m);
}

static void test_save_load_roundtrip(void **state) {
    (void)state;
    mb_rmodel_t *m = s_train(3);
    void *blob;
    size_t size;
    mb_err_t err;
    assert_int_equal(mb_rmodel_save(m, &blob, &size, &err), 0);
    mb_rdomain_t rd[3];
    for (int d = 0; d < 3; d++)
        rd[d] = (mb_rdomain_t){s_names[d], s_dirs[d]};
    mb_rmodel_t *l = mb_rmodel_load(blob, size, rd, 3, NULL, &err);
    assert_non_null(l);
    assert_string_equal(mb_rmodel_version(l), mb_rmodel_version(m));
    double a[3], b[3];
    mb_rgate_t ga, gb;
    assert_int_equal(mb_rmodel_score(m, "garlic orbit", 0, NULL, 0.9, 3, a, &ga, &err),
                     0);
    assert_int_equal(mb_rmodel_score(l, "garlic orbit", 0, NULL, 0.9, 3, b, &gb, &err),
                     0);
    for (int d = 0; d < 3; d++)
        assert_true(fabs(a[d] - b[d]) < 1e-6);
    assert_true(fabs(ga.p_in - gb.p_in) < 1e-6);
    mb_rmodel_destroy(&l);
    /* damaged blobs are refused, never crash */
    ((unsigned char *)blob)[size / 2] ^= 0x5a;
    assert_null(mb_rmodel_load(blob, size, rd, 3, NULL, &err));
    assert_int_equal(err.code, MB_EVERSION);
    assert_null(mb_rmodel_load(blob, 10, rd, 3, NULL, &err));
    free(blob);
    mb_rmodel_destroy(&m);
}

static void test_no_passages(void **state) {
    (void)state;
    mb_rdomain_t rd = {"empty", "/nonexistent/dir"};
    mb_err_t err;
    assert_null(mb_rmodel_train(&rd, 1, NULL, &err));
    assert_int_equal(err.code, MB_ENOTFOUND);
}

static void test_wordvec_small(void **state) {
    (void)state;
    char path[400];
    snprintf(path, sizeof path, "%s/vec.txt", s_home);
    FILE *f = fopen(path, "w");
    fputs("the 1 0 0\ncat 0 1 0.1\ndog 0 0.9 0.2\ncar 0.1 0 1\n", f);
    fclose(f);
    mb_err_t err;
    mb_wordvec_t *w = mb_wordvec_load(path, &err);
    assert_non_null(w);
    assert_int_equal(mb_wordvec_dim(w), 3);
    assert_int_equal(mb_wordvec_words(w), 4);
    float a[3], b[3], c[3];
    assert_int_equal(mb_wordvec_embed(w, "The CAT!", a), 2);
    assert_int_equal(mb_wordvec_embed(w, "a dog", b), 1);
    assert_int_equal(mb_wordvec_embed(w, "car", c), 1);
    double ab = a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
    double ac = a[0] * c[0] + a[1] * c[1] + a[2] * c[2];
    assert_true(ab > ac);
    /* nothing known: the zero vector */
    assert_int_equal(mb_wordvec_embed(w, "zebra quagga", a), 0);
    assert_true(a[0] == 0 && a[1] == 0 && a[2] == 0);
    mb_wordvec_destroy(&w);
    f = fopen(path, "w");
    fputs("the 1 0 0\ncat 0 1\n", f);
    fclose(f);
    assert_null(mb_wordvec_load(path, &err));
    assert_int_equal(err.code, MB_EBADREQ);
    assert_null(mb_wordvec_load("/nonexistent/vec.txt", &err));
}

/* The real GloVe file, where ../shared/models has it: pilots in its space. */
static void test_wordvec_glove(void **state) {
    (void)state;
    mb_err_t err;
    mb_wordvec_t *w = mb_wordvec_load(MOEBUS_GLOVE, &err);
    if (!w) {
        printf("SKIP: %s absent\n", MOEBUS_GLOVE);
        skip();
    }
    float cat[100], dog[100], car[100];
    mb_wordvec_embed(w, "cat", cat);
    mb_wordvec_embed(w, "dog", dog);
    mb_wordvec_embed(w, "banana", car);
    double cd = 0, cb = 0;
    for (int i = 0; i < 100; i++)
        cd += cat[i] * dog[i], cb += cat[i] * car[i];
    assert_true(cd > 0.8 && cb < 0.5);
    /* a model trained with them routes and survives save/load */
    mb_rdomain_t rd[3];
    for (int d = 0; d < 3; d++)
        rd[d] = (mb_rdomain_t){s_names[d], s_dirs[d]};
    mb_rtrain_opts_t o = {.pseudo_per_domain = 150, .wordvec = w};
    mb_rmodel_t *m = mb_rmodel_train(rd, 3, &o, &err);
    assert_non_null(m);
    assert_true(mb_rmodel_uses_wordvec(m));
    void *blob;
    size_t size;
    assert_int_equal(mb_rmodel_save(m, &blob, &size, &err), 0);
    mb_rmodel_t *l = mb_rmodel_load(blob, size, rd, 3, w, &err);
    double a[3], b[3];
    assert_int_equal(mb_rmodel_score(m, "jury and telescope", MB_ROUTER_PILOT, NULL, 0.9,
                                     3, a, NULL, &err),
                     0);
    assert_int_equal(mb_rmodel_score(l, "jury and telescope", MB_ROUTER_PILOT, NULL, 0.9,
                                     3, b, NULL, &err),
                     0);
    for (int d = 0; d < 3; d++)
        assert_true(fabs(a[d] - b[d]) < 1e-6);
    mb_rmodel_destroy(&l);
    /* loaded without the vectors: the pilots are off, scoring still works */
    l = mb_rmodel_load(blob, size, rd, 3, NULL, &err);
    assert_non_null(l);
    assert_int_equal(
        mb_rmodel_score(l, "jury", MB_ROUTER_LEARNED, NULL, 0.9, 3, b, NULL, &err), 0);
    mb_rmodel_destroy(&l);
    free(blob);
    mb_rmodel_destroy(&m);
    mb_wordvec_destroy(&w);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_routes_unseen_queries),
        cmocka_unit_test(test_mask_and_pilot),
        cmocka_unit_test(test_gate_scope),
        cmocka_unit_test(test_save_load_roundtrip),
        cmocka_unit_test(test_no_passages),
        cmocka_unit_test(test_wordvec_small),
        cmocka_unit_test(test_wordvec_glove),
    };
    return cmocka_run_group_tests(tests, s_setup, s_teardown);
}
