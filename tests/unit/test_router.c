/* Unit tests: top-p domain selection and reciprocal-rank fusion. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <string.h>

#include "fusion.h"
#include "router.h"

static void test_top_p(void **state) {
    (void)state;
    size_t order[4];
    double p1[4] = {0.1, 0.6, 0.25, 0.05};
    assert_int_equal(mb_router_top_p(p1, 4, 0.9, 0, order), 3);
    assert_int_equal(order[0], 1);
    assert_int_equal(order[1], 2);
    assert_int_equal(order[2], 0);
    assert_int_equal(mb_router_top_p(p1, 4, 0.5, 0, order), 1);
    assert_int_equal(mb_router_top_p(p1, 4, 0.99, 2, order), 2); /* capped */
    assert_int_equal(mb_router_top_p(p1, 4, 0.0, 0, order), 1);  /* at least one */
    double u[3];
    mb_router_uniform(3, u);
    assert_int_equal(mb_router_top_p(u, 3, 1.0, 0, order), 3); /* all, despite rounding */
    assert_int_equal(order[0], 0);                             /* stable on ties */
    assert_int_equal(order[2], 2);
}

static json_t *s_hit(const char *doc, int chunk, double score) {
    return json_pack("{s:s, s:i, s:f, s:s}", "doc_id", doc, "chunk", chunk, "score",
                     score, "text", "t");
}

static void test_rrf(void **state) {
    (void)state;
    json_t *a =
        json_pack("[o,o,o]", s_hit("x", 0, 0.9), s_hit("y", 0, 0.8), s_hit("z", 0, 0.1));
    json_t *b = json_pack("[o,o]", s_hit("p", 0, 0.95), s_hit("x", 0, 0.5));
    json_t *lists[2] = {a, b};
    const char *labels[2] = {"A", "B"};
    json_t *out = mb_fusion_rrf(lists, labels, 2, 3, 60);
    assert_int_equal(json_array_size(out), 3);
    /* rank-1 tie between A:x and B:p broken by raw score: p (0.95) first */
    json_t *first = json_array_get(out, 0);
    assert_string_equal(json_string_value(json_object_get(first, "doc_id")), "p");
    assert_string_equal(json_string_value(json_object_get(first, "domain")), "B");
    assert_true(json_real_value(json_object_get(first, "raw_score")) > 0.94);
    /* same doc id in two domains is two results (domain is part of the key) */
    json_t *second = json_array_get(out, 1);
    assert_string_equal(json_string_value(json_object_get(second, "doc_id")), "x");
    json_decref(out);
    /* same label twice: x is found in both lists and fused into one hit */
    const char *same[2] = {"A", "A"};
    out = mb_fusion_rrf(lists, same, 2, 10, 60);
    assert_int_equal(json_array_size(out), 4);
    first = json_array_get(out, 0);
    assert_string_equal(json_string_value(json_object_get(first, "doc_id")), "x");
    double expect = 1.0 / 61 + 1.0 / 62;
    assert_true(json_real_value(json_object_get(first, "score")) - expect < 1e-12);
    json_decref(out);
    json_t *none[2] = {NULL, a};
    out = mb_fusion_rrf(none, labels, 2, 10, 60);
    assert_int_equal(json_array_size(out), 3);
    json_decref(out);
    json_decref(a);
    json_decref(b);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_top_p),
        cmocka_unit_test(test_rrf),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
