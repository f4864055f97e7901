/* Ranking metrics against hand-computed values (BEIR / pytrec_eval rules). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <math.h>

#include "metrics.h"

static void test_ndcg(void **state) {
    (void)state;
    /* one relevant doc at rank 3: 1/log2(4) = 0.5; ideal 1 */
    const char *r1[] = {"x", "y", "a", "z"};
    mb_qrel_t q1[] = {{"a", 1}};
    assert_float_equal(mb_metric_ndcg(r1, 4, q1, 1, 10), 0.5, 1e-12);
    /* graded: rel a=2 at rank 2, b=1 at rank 1.
     * DCG = 1/log2(2) + 2/log2(3) = 1 + 1.2618595; IDCG = 2 + 1/log2(3) */
    const char *r2[] = {"b", "a"};
    mb_qrel_t q2[] = {{"a", 2}, {"b", 1}, {"c", 0}};
    double want = (1 + 2 / log2(3)) / (2 + 1 / log2(3));
    assert_float_equal(mb_metric_ndcg(r2, 2, q2, 3, 10), want, 1e-12);
    /* beyond the cutoff counts nothing; the ideal is cut too */
    const char *r3[] = {"x", "a"};
    assert_float_equal(mb_metric_ndcg(r3, 2, q1, 1, 1), 0.0, 1e-12);
    /* 3 relevant, 2 found at ranks 1, 2, cutoff 2: IDCG over 2 slots -> 1.0 */
    const char *r4[] = {"a", "b", "c"};
    mb_qrel_t q4[] = {{"a", 1}, {"b", 1}, {"c", 1}};
    assert_float_equal(mb_metric_ndcg(r4, 3, q4, 3, 2), 1.0, 1e-12);
    /* empty ranking */
    assert_float_equal(mb_metric_ndcg(NULL, 0, q1, 1, 10), 0.0, 1e-12);
}

static void test_recall_mrr(void **state) {
    (void)state;
    const char *r[] = {"x", "b", "y", "a"};
    mb_qrel_t q[] = {{"a", 1}, {"b", 2}, {"c", 1}, {"d", 0}};
    /* 2 of the 3 relevant (d is judged not relevant) */
    assert_float_equal(mb_metric_recall(r, 4, q, 4, 100), 2.0 / 3.0, 1e-12);
    assert_float_equal(mb_metric_recall(r, 4, q, 4, 2), 1.0 / 3.0, 1e-12);
    assert_float_equal(mb_metric_mrr(r, 4, q, 4, 10), 0.5, 1e-12);
    assert_float_equal(mb_metric_mrr(r, 4, q, 4, 1), 0.0, 1e-12);
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_ndcg),
                                       cmocka_unit_test(test_recall_mrr)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
