/* Unit tests: the client's deadline and correlation logic, against a bare
 * ROUTER socket the test drives by hand (no broker). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <string.h>

#include "mb_client.h"
#include "mb_mdp.h"

#define EP "inproc://test-client"

/* Receives one request on the fake broker; returns its client identity and
 * parsed "id". */
static zframe_t *s_take(zsock_t *router, json_int_t *id) {
    zmsg_t *m = zmsg_recv(router);
    assert_non_null(m);
    zframe_t *who = zmsg_pop(m);
    char *hdr = zmsg_popstr(m);
    assert_string_equal(hdr, MB_MDPC);
    free(hdr);
    zframe_t *cmd = zmsg_pop(m);
    assert_int_equal(zframe_data(cmd)[0], MB_MDPC_REQUEST);
    zframe_destroy(&cmd);
    free(zmsg_popstr(m)); /* service */
    char *body = zmsg_popstr(m);
    json_t *j = json_loads(body, 0, NULL);
    *id = json_integer_value(json_object_get(j, "id"));
    json_decref(j);
    free(body);
    zmsg_destroy(&m);
    return who;
}

/* Sends a FINAL reply with the given JSON body to client `who`. */
static void s_reply(zsock_t *router, zframe_t *who, const char *body) {
    zmsg_t *m = zmsg_new();
    zframe_t *w = zframe_dup(who);
    zmsg_append(m, &w);
    zmsg_addstr(m, MB_MDPC);
    zmsg_addmem(m, (char[]){MB_MDPC_FINAL}, 1);
    zmsg_addstr(m, "svc");
    zmsg_addstr(m, body);
    zmsg_send(&m, router);
}

static void s_answer(zsock_t *router, zframe_t *who, json_int_t id, const char *tag) {
    json_t *j = json_pack("{s:b, s:I, s:s}", "ok", 1, "id", id, "tag", tag);
    char *s = json_dumps(j, 0);
    s_reply(router, who, s);
    free(s);
    json_decref(j);
}

static void test_call_times_out_on_deadline(void **state) {
    (void)state;
    zsock_t *router = zsock_new_router(EP "1");
    mb_client_t *c = mb_client_new(EP "1", NULL);
    mb_body_t *req = mb_body_new(NULL), *reply = NULL;
    mb_err_t err;
    int64_t t0 = mb_clock_ms();
    int rc = mb_client_call(c, "svc", &req, &reply, 200, &err);
    int64_t took = mb_clock_ms() - t0;
    assert_int_equal(rc, MB_ETIMEOUT);
    assert_null(reply);
    assert_null(req); /* ownership taken */
    assert_true(took >= 195 && took < 1000);
    assert_non_null(strstr(err.msg, "200 ms"));
    mb_client_destroy(&c);
    zsock_destroy(&router);
}

static void test_late_reply_is_not_taken_for_next(void **state) {
    (void)state;
    zsock_t *router = zsock_new_router(EP "2");
    mb_client_t *c = mb_client_new(EP "2", NULL);
    mb_body_t *req = mb_body_new(NULL), *reply = NULL;
    int64_t id1 = mb_client_send(c, "svc", &req, NULL);
    json_int_t seen;
    zframe_t *who = s_take(router, &seen);
    assert_int_equal(seen, id1);
    mb_body_t *got = NULL;
    assert_int_equal(mb_client_gather(c, &id1, 1, &got, mb_clock_ms() + 50), 0);
    s_answer(router, who, id1, "late"); /* arrives after the caller gave up */
    req = mb_body_new(NULL);
    int64_t id2 = mb_client_send(c, "svc", &req, NULL);
    assert_true(id2 != id1);
    json_int_t seen2;
    zframe_t *who2 = s_take(router, &seen2);
    s_answer(router, who2, id2, "fresh");
    assert_int_equal(mb_client_gather(c, &id2, 1, &reply, mb_clock_ms() + 1000), 1);
    assert_string_equal(mb_json_str(mb_body_json(reply), "tag", ""), "fresh");
    mb_body_destroy(&reply);
    zframe_destroy(&who);
    zframe_destroy(&who2);
    mb_client_destroy(&c);
    zsock_destroy(&router);
}

static void test_gather_matches_out_of_order(void **state) {
    (void)state;
    zsock_t *router = zsock_new_router(EP "3");
    mb_client_t *c = mb_client_new(EP "3", NULL);
    int64_t ids[3];
    zframe_t *who[3];
    json_int_t seen[3];
    for (int i = 0; i < 3; i++) {
        mb_body_t *req = mb_body_new(NULL);
        ids[i] = mb_client_send(c, "svc", &req, NULL);
    }
    for (int i = 0; i < 3; i++)
        who[i] = s_take(router, &seen[i]);
    /* answer 2 then 0; never 1 */
    s_answer(router, who[2], seen[2], "two");
    s_answer(router, who[0], seen[0], "zero");
    mb_body_t *replies[3];
    int64_t t0 = mb_clock_ms();
    assert_int_equal(mb_client_gather(c, ids, 3, replies, t0 + 300), 2);
    assert_true(mb_clock_ms() - t0 >= 295); /* waited for the missing one */
    assert_string_equal(mb_json_str(mb_body_json(replies[0]), "tag", ""), "zero");
    assert_null(replies[1]);
    assert_string_equal(mb_json_str(mb_body_json(replies[2]), "tag", ""), "two");
    for (int i = 0; i < 3; i++) {
        mb_body_destroy(&replies[i]);
        zframe_destroy(&who[i]);
    }
    mb_client_destroy(&c);
    zsock_destroy(&router);
}

static void test_error_reply_code(void **state) {
    (void)state;
    zsock_t *router = zsock_new_router(EP "4");
    mb_client_t *c = mb_client_new(EP "4", NULL);
    mb_body_t *req = mb_body_new(NULL), *reply = NULL;
    int64_t id = mb_client_send(c, "svc", &req, NULL);
    json_int_t seen;
    zframe_t *who = s_take(router, &seen);
    char body[200];
    snprintf(body, sizeof body,
             "{\"ok\":false,\"id\":%lld,\"error\":{\"code\":\"unavailable\",\"message\":"
             "\"m\"}}",
             (long long)id);
    s_reply(router, who, body);
    assert_int_equal(mb_client_gather(c, &id, 1, &reply, mb_clock_ms() + 1000), 1);
    mb_err_t err;
    assert_int_equal(mb_body_status(reply, &err), MB_EUNAVAIL);
    mb_body_destroy(&reply);
    zframe_destroy(&who);
    mb_client_destroy(&c);
    zsock_destroy(&router);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_call_times_out_on_deadline),
        cmocka_unit_test(test_late_reply_is_not_taken_for_next),
        cmocka_unit_test(test_gather_matches_out_of_order),
        cmocka_unit_test(test_error_reply_code),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
