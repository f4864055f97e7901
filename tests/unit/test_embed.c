/* Unit tests of the builtin embedder and the text pipeline. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <math.h>
#include <string.h>

#include "embed.h"
#include "text.h"

#define DIM 256

static double s_dot(const float *a, const float *b) {
    double s = 0;
    for (int i = 0; i < DIM; i++)
        s += (double)a[i] * b[i];
    return s;
}

static void test_deterministic_normalised(void **state) {
    (void)state;
    mb_err_t err;
    mb_embed_t *a = mb_embed_new("hash", DIM, &err), *b = mb_embed_new("hash", DIM, &err);
    assert_int_equal(mb_embed_dim(a), DIM);
    assert_non_null(strstr(mb_embed_version(a), "d256"));
    const char *t[1] = {"The quick brown fox jumps over the lazy dog"};
    float va[DIM], vb[DIM];
    assert_int_equal(mb_embed_batch(a, t, 1, MB_EMBED_PASSAGE, va, &err), 0);
    assert_int_equal(mb_embed_batch(b, t, 1, MB_EMBED_PASSAGE, vb, &err), 0);
    assert_memory_equal(va, vb, sizeof va);
    assert_true(fabs(s_dot(va, va) - 1.0) < 1e-5);
    mb_embed_destroy(&a);
    mb_embed_destroy(&b);
    assert_null(a);
}

static void test_lexical_overlap(void **state) {
    (void)state;
    mb_embed_t *e = mb_embed_new("hash", DIM, NULL);
    const char *t[4] = {"compilers optimise loops", "the compiler optimised a loop",
                        "elephants live in africa", "COMPILERS Optimise LOOPS!"};
    float v[4][DIM];
    assert_int_equal(mb_embed_batch(e, t, 4, MB_EMBED_PASSAGE, &v[0][0], NULL), 0);
    /* stemming + case folding: same words in other forms match */
    assert_true(s_dot(v[0], v[3]) > 0.999);
    assert_true(s_dot(v[0], v[1]) > 0.9);
    assert_true(fabs(s_dot(v[0], v[2])) < 0.3);
    mb_embed_destroy(&e);
}

static void test_edge_inputs(void **state) {
    (void)state;
    mb_err_t err;
    assert_null(mb_embed_new("hash", 4, &err));
    assert_int_equal(err.code, MB_EBADREQ);
    assert_null(mb_embed_new("magic", DIM, &err));
    assert_non_null(strstr(err.msg, "magic"));
    mb_embed_t *e = mb_embed_new("hash", DIM, NULL);
    const char *empty[2] = {"", "the of and"}; /* no tokens after stop words */
    float v[2][DIM];
    assert_int_equal(mb_embed_batch(e, empty, 2, MB_EMBED_PASSAGE, &v[0][0], NULL), 0);
    for (int i = 0; i < DIM; i++)
        assert_true(v[0][i] == 0 && v[1][i] == 0);
    const char *bad[1] = {"caf\xc3"};
    assert_int_equal(mb_embed_batch(e, bad, 1, MB_EMBED_PASSAGE, &v[0][0], &err),
                     MB_EBADREQ);
    mb_embed_destroy(&e);
}

static void s_collect(const char *tok, size_t len, void *arg) {
    char *out = arg;
    strncat(out, tok, len);
    strcat(out, "|");
}

static void test_tokenizer(void **state) {
    (void)state;
    mb_text_t *t = mb_text_new();
    char out[512] = "";
    const char *s = "Ça, c'est l'Été! Running runners ran; e-mail 42 ﬁle";
    assert_int_equal(mb_text_tokenize(t, s, strlen(s), s_collect, out, NULL), 0);
    /* accents stripped, case folded, ligature decomposed, stemmed */
    assert_non_null(strstr(out, "ca|"));
    assert_non_null(strstr(out, "ete|"));
    assert_non_null(strstr(out, "run|"));
    assert_non_null(strstr(out, "runner|"));
    assert_non_null(strstr(out, "42|"));
    assert_non_null(strstr(out, "file|"));
    mb_text_destroy(&t);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_deterministic_normalised),
        cmocka_unit_test(test_lexical_overlap),
        cmocka_unit_test(test_edge_inputs),
        cmocka_unit_test(test_tokenizer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
