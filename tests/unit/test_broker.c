/* Unit tests of the broker's protocol behaviour: the real broker loop in a
 * thread, real sockets, real worker library, fast heartbeats. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "broker.h"
#include "mb_client.h"
#include "mb_mdp.h"
#include "mb_worker.h"

/* each test binds its own port: ZeroMQ releases a closed port asynchronously */
static char EP[64];
static int s_port = 27431; /* below the ephemeral range (32768+) */
#define HB 100

static mb_broker_t *s_broker;
static volatile sig_atomic_t s_stop;
static pthread_t s_thread;

static void *s_broker_thread(void *arg) {
    (void)arg;
    mb_broker_run(s_broker, &s_stop);
    return NULL;
}

static int setup(void **state) {
    (void)state;
    setenv("MOEBUS_HEARTBEAT_MS", "100", 1);
    snprintf(EP, sizeof EP, "tcp://127.0.0.1:%d", s_port++);
    s_stop = 0;
    s_broker = mb_broker_new(EP, 300, NULL);
    assert_non_null(s_broker);
    pthread_create(&s_thread, NULL, s_broker_thread, NULL);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    s_stop = 1;
    pthread_join(s_thread, NULL);
    mb_broker_destroy(&s_broker);
    return 0;
}

typedef struct {
    const char *service;
    volatile int stop;
    int served;
    char tag[16];
} echo_t;

static void *s_echo_thread(void *arg) {
    echo_t *e = arg;
    mb_worker_t *w = mb_worker_new(EP, e->service, NULL);
    while (!e->stop) {
        mb_body_t *req = NULL;
        if (mb_worker_recv(w, &req, 50) != 0) continue;
        json_t *j = json_deep_copy(mb_body_json(req));
        json_object_set_new(j, "worker", json_string(e->tag));
        mb_body_t *reply = mb_body_ok(j);
        size_t n;
        const float *v = mb_body_vectors(req, 0, &n);
        if (v) mb_body_add_vectors(reply, v, n);
        mb_body_destroy(&req);
        mb_worker_reply(w, &reply);
        e->served++;
    }
    mb_worker_destroy(&w);
    return NULL;
}

static int s_call(mb_client_t *c, const char *service, json_t *j, mb_body_t **reply,
                  int ms) {
    mb_body_t *req = mb_body_new(j);
    return mb_client_call(c, service, &req, reply, ms, NULL);
}

static void test_request_reply_and_balance(void **state) {
    (void)state;
    echo_t a = {.service = "echo", .tag = "a"}, b = {.service = "echo", .tag = "b"};
    pthread_t ta, tb;
    pthread_create(&ta, NULL, s_echo_thread, &a);
    pthread_create(&tb, NULL, s_echo_thread, &b);
    mb_client_t *c = mb_client_new(EP, NULL);
    /* wait until both registered */
    for (int i = 0; i < 100; i++) {
        mb_body_t *r = NULL;
        s_call(c, "mmi.service", json_pack("{s:s}", "service", "echo"), &r, 1000);
        json_int_t n = r ? mb_json_int(mb_body_json(r), "workers", 0) : 0;
        mb_body_destroy(&r);
        if (n == 2) break;
        zclock_sleep(20);
    }
    float v[3] = {1, 2, 3};
    for (int i = 0; i < 20; i++) {
        mb_body_t *req = mb_body_new(json_pack("{s:i}", "n", i)), *reply = NULL;
        mb_body_add_vectors(req, v, 3);
        assert_int_equal(mb_client_call(c, "echo", &req, &reply, 2000, NULL), 0);
        assert_int_equal(mb_json_int(mb_body_json(reply), "n", -1), i);
        size_t n;
        const float *got = mb_body_vectors(reply, 0, &n);
        assert_int_equal(n, 3);
        assert_memory_equal(got, v, sizeof v);
        mb_body_destroy(&reply);
    }
    /* both workers got work (LRU dispatch) */
    assert_true(a.served > 0 && b.served > 0);
    assert_int_equal(a.served + b.served, 20);
    a.stop = b.stop = 1;
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    mb_client_destroy(&c);
}

static void *s_slow_thread(void *arg) {
    echo_t *e = arg;
    mb_worker_t *w = mb_worker_new(EP, e->service, NULL);
    while (!e->stop) {
        mb_body_t *req = NULL;
        if (mb_worker_recv(w, &req, 50) != 0) continue;
        zclock_sleep(8 * HB); /* a long handler: 8 heartbeat intervals, no manual beats */
        mb_body_destroy(&req);
        mb_body_t *reply = mb_body_ok(json_pack("{s:s}", "slow", "done"));
        mb_worker_reply(w, &reply);
        e->served++;
    }
    mb_worker_destroy(&w);
    return NULL;
}

static void test_long_handler_stays_alive(void **state) {
    (void)state;
    echo_t slow = {.service = "slow"};
    pthread_t t;
    pthread_create(&t, NULL, s_slow_thread, &slow);
    mb_client_t *c = mb_client_new(EP, NULL);
    mb_body_t *r = NULL;
    mb_err_t err;
    for (int i = 0; i < 2; i++) {
        mb_body_t *req = mb_body_new(NULL);
        assert_int_equal(mb_client_call(c, "slow", &req, &r, 5000, &err), 0);
        assert_string_equal(mb_json_str(mb_body_json(r), "slow", ""), "done");
        mb_body_destroy(&r);
    }
    slow.stop = 1;
    pthread_join(t, NULL);
    mb_client_destroy(&c);
}

static void test_mmi(void **state) {
    (void)state;
    mb_client_t *c = mb_client_new(EP, NULL);
    mb_body_t *r = NULL;
    assert_int_equal(
        s_call(c, "mmi.service", json_pack("{s:s}", "service", "nobody"), &r, 1000), 0);
    assert_false(json_is_true(json_object_get(mb_body_json(r), "live")));
    mb_body_destroy(&r);
    assert_int_equal(s_call(c, "mmi.services", NULL, &r, 1000), 0);
    assert_true(json_is_array(json_object_get(mb_body_json(r), "services")));
    mb_body_destroy(&r);
    assert_int_equal(s_call(c, "mmi.nothing", NULL, &r, 1000), MB_EUNKSERVICE);
    mb_body_destroy(&r);
    mb_client_destroy(&c);
}

static void test_unknown_service_bounded_wait(void **state) {
    (void)state;
    mb_client_t *c = mb_client_new(EP, NULL);
    mb_body_t *r = NULL;
    mb_err_t err;
    mb_body_t *req = mb_body_new(NULL);
    int64_t t0 = mb_clock_ms();
    int rc = mb_client_call(c, "no.such.service", &req, &r, 3000, &err);
    int64_t took = mb_clock_ms() - t0;
    assert_int_equal(rc, MB_EUNKSERVICE);
    /* broker wait is 300 ms; what matters is that the broker answered, not
     * the client's 3 s deadline (a loaded CI machine can add a second) */
    assert_true(took >= 280 && took < 2900);
    mb_body_destroy(&r);
    mb_client_destroy(&c);
}

/* A raw worker that takes a request and then goes silent (as if killed). */
/* A bare worker socket registered for service (the tests drive it by hand). */
static zsock_t *s_raw_worker(const char *service) {
    zsock_t *w = zsock_new_dealer(EP);
    zmsg_t *ready = zmsg_new();
    zmsg_addstr(ready, MB_MDPW);
    zmsg_addmem(ready, (char[]){MB_MDPW_READY}, 1);
    zmsg_addstr(ready, service);
    zmsg_send(&ready, w);
    zsock_set_rcvtimeo(w, 2000);
    return w;
}

/* Reads until a REQUEST arrives (skipping heartbeats). */
static void s_await_request(zsock_t *w) {
    for (;;) {
        zmsg_t *m = zmsg_recv(w);
        assert_non_null(m);
        zmsg_first(m);
        int is_req = zframe_data(zmsg_next(m))[0] == MB_MDPW_REQUEST;
        zmsg_destroy(&m);
        if (is_req) return;
    }
}

static void test_worker_death_mid_request(void **state) {
    (void)state;
    zsock_t *w = s_raw_worker("mortal");
    mb_client_t *c = mb_client_new(EP, NULL);
    mb_body_t *req = mb_body_new(NULL);
    int64_t id = mb_client_send(c, "mortal", &req, NULL);
    /* the worker receives the request, then dies */
    s_await_request(w);
    int64_t t0 = mb_clock_ms();
    mb_body_t *reply = NULL;
    assert_int_equal(mb_client_gather(c, &id, 1, &reply, t0 + 3000), 1);
    int64_t took = mb_clock_ms() - t0;
    mb_err_t err;
    assert_int_equal(mb_body_status(reply, &err), MB_EUNAVAIL);
    /* detected by heartbeats (3 x 100 ms), before the 3 s client deadline;
     * the bound is loose for sanitizer builds on a loaded machine */
    assert_true(took < 2900);
    mb_body_destroy(&reply);
    /* the service is now known but dead: unavailable, not unknown */
    req = mb_body_new(NULL);
    assert_int_equal(mb_client_call(c, "mortal", &req, &reply, 3000, &err), MB_EUNAVAIL);
    mb_body_destroy(&reply);
    zsock_destroy(&w);
    mb_client_destroy(&c);
}

/* A worker that disconnects (graceful stop) while a request is on its way to
 * it never started that request: the broker queues it again and the next
 * worker answers it, instead of the client getting `unavailable`. */
static void test_disconnect_requeues_unstarted(void **state) {
    (void)state;
    zsock_t *w = s_raw_worker("lazy");
    mb_client_t *c = mb_client_new(EP, NULL);
    mb_body_t *req = mb_body_new(json_pack("{s:s}", "q", "keep me"));
    int64_t id = mb_client_send(c, "lazy", &req, NULL);
    s_await_request(w);
    zmsg_t *m = zmsg_new();
    zmsg_addstr(m, MB_MDPW);
    zmsg_addmem(m, (char[]){MB_MDPW_DISCONNECT}, 1);
    zmsg_send(&m, w);
    zsock_destroy(&w);
    echo_t e = {.service = "lazy", .tag = "next"};
    pthread_t th;
    pthread_create(&th, NULL, s_echo_thread, &e);
    mb_body_t *reply = NULL;
    assert_int_equal(mb_client_gather(c, &id, 1, &reply, mb_clock_ms() + 3000), 1);
    assert_int_equal(mb_body_status(reply, NULL), 0);
    assert_string_equal(mb_json_str(mb_body_json(reply), "q", ""), "keep me");
    assert_string_equal(mb_json_str(mb_body_json(reply), "worker", ""), "next");
    mb_body_destroy(&reply);
    e.stop = 1;
    pthread_join(th, NULL);
    mb_client_destroy(&c);
}

static void test_malformed_frames_get_errors(void **state) {
    (void)state;
    zsock_t *raw = zsock_new_dealer(EP);
    zsock_set_rcvtimeo(raw, 2000);
    /* 1: MDPC02 with no service or body */
    zmsg_t *m = zmsg_new();
    zmsg_addstr(m, MB_MDPC);
    zmsg_addmem(m, (char[]){MB_MDPC_REQUEST}, 1);
    zmsg_send(&m, raw);
    /* 2: not MDP at all */
    zstr_send(raw, "hello");
    for (int i = 0; i < 2; i++) {
        zmsg_t *r = zmsg_recv(raw);
        assert_non_null(r);
        char *hdr = zmsg_popstr(r);
        assert_string_equal(hdr, MB_MDPC);
        free(hdr);
        zframe_t *cmd = zmsg_pop(r);
        assert_int_equal(zframe_data(cmd)[0], MB_MDPC_FINAL);
        zframe_destroy(&cmd);
        free(zmsg_popstr(r));
        char *body = zmsg_popstr(r);
        assert_non_null(strstr(body, "bad_request"));
        free(body);
        zmsg_destroy(&r);
    }
    zsock_destroy(&raw);
    /* the broker still serves others */
    mb_client_t *c = mb_client_new(EP, NULL);
    mb_body_t *reply = NULL;
    assert_int_equal(s_call(c, "mmi.services", NULL, &reply, 1000), 0);
    mb_body_destroy(&reply);
    mb_client_destroy(&c);
}

static void test_oversized_rejected(void **state) {
    (void)state;
    mb_client_t *c = mb_client_new(EP, NULL);
    mb_body_t *req = mb_body_new(NULL), *reply = NULL;
    size_t n = MB_MAX_MESSAGE_BYTES / 4 + 16;
    float *v = calloc(n, sizeof *v);
    mb_body_add_vectors(req, v, n);
    free(v);
    mb_err_t err;
    assert_int_equal(mb_client_call(c, "anything", &req, &reply, 5000, &err),
                     MB_ETOOLARGE);
    mb_body_destroy(&reply);
    mb_client_destroy(&c);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_request_reply_and_balance, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mmi, setup, teardown),
        cmocka_unit_test_setup_teardown(test_long_handler_stays_alive, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_service_bounded_wait, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_worker_death_mid_request, setup, teardown),
        cmocka_unit_test_setup_teardown(test_disconnect_requeues_unstarted, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_malformed_frames_get_errors, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_oversized_rejected, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
