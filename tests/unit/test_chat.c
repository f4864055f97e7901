/* test_chat.c — the generators' chat client (services/chat.c) against a real
 * local HTTP server (fake_embed_server.py): answers, retries, timeouts,
 * garbage, refusals and the API key. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "testutil.h"

#include "chat.h"
#include "mb_mdp.h"

static mb_chat_t *s_new(const char *model, const char *key_env, const char *suffix,
                        mb_err_t *err) {
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", tu_fake_port, suffix);
    mb_chat_opts_t o = {.url = url, .model = model, .api_key_env = key_env, .retries = 2};
    return mb_chat_new(&o, err);
}

static json_t *s_msgs(const char *q) {
    return json_pack("[{s:s, s:s}, {s:s, s:s}]", "role", "system", "content", "be brief",
                     "role", "user", "content", q);
}

static void test_answers_on_every_url_form(void **state) {
    (void)state;
    const char *forms[] = {"", "/", "/v1", "/v1/chat/completions"};
    for (size_t i = 0; i < 4; i++) {
        mb_err_t err;
        mb_chat_t *c = s_new("ok", NULL, forms[i], &err);
        assert_non_null(c);
        char *text = NULL;
        json_t *usage = NULL, *m = s_msgs("Question: what is a farad?");
        assert_int_equal(mb_chat_complete(c, m, 64, 5000, &text, &usage, &err), 0);
        assert_string_equal(text, "ANSWER(0 passages): what is a farad?");
        assert_non_null(json_object_get(usage, "completion_tokens"));
        free(text);
        json_decref(usage);
        json_decref(m);
        mb_chat_destroy(&c);
    }
}

static void test_retries_a_503_then_answers(void **state) {
    (void)state;
    mb_err_t err;
    mb_chat_t *c = s_new("flaky", NULL, "/v1", &err);
    char *text = NULL;
    json_t *m = s_msgs("Question: q");
    assert_int_equal(mb_chat_complete(c, m, 0, 5000, &text, NULL, &err), 0);
    assert_non_null(strstr(text, "ANSWER"));
    free(text);
    json_decref(m);
    mb_chat_destroy(&c);
}

static void test_failures_are_clear_errors(void **state) {
    (void)state;
    struct {
        const char *model;
        int timeout, code;
        const char *needle;
    } cases[] = {
        {"down", 5000, MB_EUNAVAIL, "HTTP 503"},
        {"garbage", 5000, MB_EINTERNAL, "not a chat completion"},
        {"nochoice", 5000, MB_EINTERNAL, "not a chat completion"},
        {"auth", 5000, MB_EBADREQ, "invalid api key"},
        {"slow", 800, MB_ETIMEOUT, "within 800 ms"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        mb_err_t err = {0};
        mb_chat_t *c = s_new(cases[i].model, NULL, "/v1", &err);
        char *text = NULL;
        json_t *m = s_msgs("Question: q");
        int64_t t0 = mb_clock_ms();
        int rc = mb_chat_complete(c, m, 0, cases[i].timeout, &text, NULL, &err);
        int64_t took = mb_clock_ms() - t0;
        if (rc != cases[i].code || !strstr(err.msg, cases[i].needle))
            fail_msg("%s: rc %d (%s)", cases[i].model, rc, err.msg);
        assert_null(text);
        /* the overall deadline holds, retries included */
        assert_true(took < cases[i].timeout + 1500);
        json_decref(m);
        mb_chat_destroy(&c);
    }
}

static void test_api_key_from_environment_never_in_errors(void **state) {
    (void)state;
    mb_err_t err;
    unsetenv("MB_TEST_CHAT_KEY");
    assert_null(s_new("auth", "MB_TEST_CHAT_KEY", "/v1", &err));
    assert_non_null(strstr(err.msg, "MB_TEST_CHAT_KEY"));
    setenv("MB_TEST_CHAT_KEY", "sekret", 1);
    mb_chat_t *c = s_new("auth", "MB_TEST_CHAT_KEY", "/v1", &err);
    char *text = NULL;
    json_t *m = s_msgs("Question: q");
    assert_int_equal(mb_chat_complete(c, m, 0, 5000, &text, NULL, &err), 0);
    free(text);
    mb_chat_destroy(&c);
    setenv("MB_TEST_CHAT_KEY", "wrong-key-123", 1);
    c = s_new("auth", "MB_TEST_CHAT_KEY", "/v1", &err);
    assert_int_equal(mb_chat_complete(c, m, 0, 5000, &text, NULL, &err), MB_EBADREQ);
    assert_null(strstr(err.msg, "wrong-key-123"));
    json_decref(m);
    mb_chat_destroy(&c);
}

static void test_bad_options(void **state) {
    (void)state;
    mb_err_t err;
    mb_chat_opts_t o = {.url = "ftp://x", .model = "m"};
    assert_null(mb_chat_new(&o, &err));
    o.url = "http://x";
    o.model = "";
    assert_null(mb_chat_new(&o, &err));
    /* nothing listens on port 1: unavailable, quickly */
    o.model = "m";
    o.url = "http://127.0.0.1:1/v1";
    o.retries = 1;
    mb_chat_t *c = mb_chat_new(&o, &err);
    char *text = NULL;
    json_t *m = s_msgs("q");
    assert_int_equal(mb_chat_complete(c, m, 0, 3000, &text, NULL, &err), MB_EUNAVAIL);
    json_decref(m);
    mb_chat_destroy(&c);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_answers_on_every_url_form),
        cmocka_unit_test(test_retries_a_503_then_answers),
        cmocka_unit_test(test_failures_are_clear_errors),
        cmocka_unit_test(test_api_key_from_environment_never_in_errors),
        cmocka_unit_test(test_bad_options),
    };
    return cmocka_run_group_tests(tests, tu_fake_setup, tu_fake_teardown);
}
