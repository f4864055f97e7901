/* The http expert (libcurl) against a real local HTTP server
 * (fake_embed_server.py): batches, out-of-order items, timeouts, 429 then
 * success, 5xx exhaustion, malformed JSON, wrong dimension, short replies,
 * API key from the environment. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "embed.h"
#include "testutil.h"

#define DIM 16

static mb_embed_t *s_open(const char *model, const char *key_env, mb_err_t *err) {
    mb_expert_spec_t spec = {.backend = "http", .dim = DIM};
    snprintf(spec.url, sizeof spec.url, "http://127.0.0.1:%d/v1", tu_fake_port);
    snprintf(spec.model, sizeof spec.model, "%s", model);
    if (key_env) snprintf(spec.api_key_env, sizeof spec.api_key_env, "%s", key_env);
    return mb_embed_open(&spec, NULL, err);
}

static void test_batches(void **state) {
    (void)state;
    setenv("MOEBUS_HTTP_BATCH", "7", 1); /* 100 texts -> 15 requests, 4 in flight */
    mb_err_t err;
    mb_embed_t *e = s_open("ok", NULL, &err);
    assert_non_null(e);
    assert_string_equal(mb_embed_version(e), "http:ok:d16");
    const char *texts[100];
    char buf[100][16];
    for (int i = 0; i < 100; i++) {
        snprintf(buf[i], sizeof buf[i], "text %d", i);
        texts[i] = buf[i];
    }
    float *v = malloc(100 * DIM * sizeof *v);
    assert_int_equal(mb_embed_batch(e, texts, 100, MB_EMBED_PASSAGE, v, &err), 0);
    /* normalised, in input order (the server answers reversed, with index) */
    float one[DIM];
    for (int i = 0; i < 100; i += 33) {
        double n = 0;
        for (int d = 0; d < DIM; d++)
            n += (double)v[i * DIM + d] * v[i * DIM + d];
        assert_float_equal(n, 1.0, 1e-5);
        assert_int_equal(mb_embed_batch(e, &texts[i], 1, MB_EMBED_QUERY, one, &err), 0);
        assert_memory_equal(one, v + i * DIM, sizeof one);
    }
    free(v);
    mb_embed_destroy(&e);
    unsetenv("MOEBUS_HTTP_BATCH");
}

static void test_timeout(void **state) {
    (void)state;
    setenv("MOEBUS_HTTP_TIMEOUT_MS", "300", 1);
    setenv("MOEBUS_HTTP_RETRIES", "1", 1);
    mb_err_t err;
    mb_embed_t *e = s_open("slow", NULL, &err);
    const char *t = "x";
    float v[DIM];
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    assert_int_equal(mb_embed_batch(e, &t, 1, MB_EMBED_QUERY, v, &err), MB_ETIMEOUT);
    clock_gettime(CLOCK_MONOTONIC, &b);
    double secs = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
    assert_true(secs < 2.5); /* 2 attempts x 300 ms + 250 ms backoff, not 3 s each */
    assert_non_null(strstr(err.msg, "2 attempts"));
    mb_embed_destroy(&e);
    unsetenv("MOEBUS_HTTP_TIMEOUT_MS");
    unsetenv("MOEBUS_HTTP_RETRIES");
}

static void test_retry_then_ok(void **state) {
    (void)state;
    mb_err_t err;
    mb_embed_t *e = s_open("flaky", NULL, &err);
    const char *t[2] = {"flaky one", "flaky two"};
    float v[2 * DIM];
    assert_int_equal(mb_embed_batch(e, t, 2, MB_EMBED_PASSAGE, v, &err), 0);
    mb_embed_destroy(&e);
    setenv("MOEBUS_HTTP_RETRIES", "2", 1);
    e = s_open("down", NULL, &err);
    assert_int_equal(mb_embed_batch(e, t, 1, MB_EMBED_PASSAGE, v, &err), MB_EUNAVAIL);
    assert_non_null(strstr(err.msg, "HTTP 503"));
    assert_non_null(strstr(err.msg, "3 attempts"));
    mb_embed_destroy(&e);
    unsetenv("MOEBUS_HTTP_RETRIES");
}

static void test_bad_replies(void **state) {
    (void)state;
    mb_err_t err;
    const char *t[2] = {"a", "b"};
    float v[2 * DIM];
    mb_embed_t *e = s_open("garbage", NULL, &err);
    assert_int_equal(mb_embed_batch(e, t, 2, MB_EMBED_PASSAGE, v, &err), MB_EUNAVAIL);
    assert_non_null(strstr(err.msg, "malformed"));
    mb_embed_destroy(&e);
    e = s_open("wrongdim", NULL, &err);
    assert_int_equal(mb_embed_batch(e, t, 2, MB_EMBED_PASSAGE, v, &err), MB_EBADREQ);
    assert_non_null(strstr(err.msg, "returns 17 dimensions; the domain has 16"));
    mb_embed_destroy(&e);
    e = s_open("short", NULL, &err);
    assert_int_equal(mb_embed_batch(e, t, 2, MB_EMBED_PASSAGE, v, &err), MB_EUNAVAIL);
    assert_non_null(strstr(err.msg, "returned 1 embeddings for 2 texts"));
    mb_embed_destroy(&e);
}

static void test_api_key(void **state) {
    (void)state;
    mb_err_t err;
    const char *t = "k";
    float v[DIM];
    unsetenv("MB_TEST_KEY");
    assert_null(s_open("auth", "MB_TEST_KEY", &err));
    assert_non_null(strstr(err.msg, "MB_TEST_KEY"));
    setenv("MB_TEST_KEY", "wrong", 1);
    mb_embed_t *e = s_open("auth", "MB_TEST_KEY", &err);
    assert_int_equal(mb_embed_batch(e, &t, 1, MB_EMBED_QUERY, v, &err), MB_EBADREQ);
    assert_non_null(strstr(err.msg, "HTTP 401: invalid api key"));
    assert_null(strstr(err.msg, "wrong")); /* the key never appears in messages */
    mb_embed_destroy(&e);
    setenv("MB_TEST_KEY", "sekret", 1);
    e = s_open("auth", "MB_TEST_KEY", &err);
    assert_int_equal(mb_embed_batch(e, &t, 1, MB_EMBED_QUERY, v, &err), 0);
    mb_embed_destroy(&e);
    /* a server that is not there */
    mb_expert_spec_t spec = {.backend = "http", .dim = DIM, .model = "ok"};
    snprintf(spec.url, sizeof spec.url, "http://127.0.0.1:1/v1");
    setenv("MOEBUS_HTTP_RETRIES", "0", 1);
    e = mb_embed_open(&spec, NULL, &err);
    assert_int_equal(mb_embed_batch(e, &t, 1, MB_EMBED_QUERY, v, &err), MB_EUNAVAIL);
    mb_embed_destroy(&e);
    unsetenv("MOEBUS_HTTP_RETRIES");
    snprintf(spec.url, sizeof spec.url, "ftp://x");
    assert_null(mb_embed_open(&spec, NULL, &err));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_batches), cmocka_unit_test(test_timeout),
        cmocka_unit_test(test_retry_then_ok), cmocka_unit_test(test_bad_replies),
        cmocka_unit_test(test_api_key)};
    return cmocka_run_group_tests(tests, tu_fake_setup, tu_fake_teardown);
}
