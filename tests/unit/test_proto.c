/* Unit tests: error codes, body framing and the validating decoder. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <string.h>

#include "mb_body.h"
#include "mb_mdp.h"

static int s_decode(const char *json, size_t jlen, const void *vec, size_t vlen,
                    mb_body_t **out, mb_err_t *err) {
    zframe_t *frames[2] = {zframe_new(json, jlen), vec ? zframe_new(vec, vlen) : NULL};
    int rc = mb_body_decode(frames, vec ? 2 : 1, out, err);
    zframe_destroy(&frames[0]);
    zframe_destroy(&frames[1]);
    return rc;
}

static void test_error_names(void **state) {
    (void)state;
    int codes[] = {MB_EBADREQ,  MB_EUNKSERVICE, MB_EUNKDOMAIN, MB_ETIMEOUT,
                   MB_EUNAVAIL, MB_ETOOLARGE,   MB_ENOTFOUND,  MB_EINTERNAL,
                   MB_EEXISTS,  MB_EIO,         MB_EVERSION};
    for (size_t i = 0; i < sizeof codes / sizeof *codes; i++)
        assert_int_equal(mb_err_from_name(mb_err_name(codes[i])), codes[i]);
    assert_string_equal(mb_err_name(MB_EBADREQ), "bad_request");
    assert_string_equal(mb_err_name(MB_ETIMEOUT), "timeout");
    assert_string_equal(mb_err_name(12345), "internal");
    assert_int_equal(mb_err_from_name("no_such_code"), MB_EINTERNAL);
    mb_err_t err;
    assert_int_equal(mb_err_set(&err, MB_EIO, "x=%d", 7), MB_EIO);
    assert_string_equal(err.msg, "x=7");
}

static void test_body_roundtrip(void **state) {
    (void)state;
    mb_body_t *b = mb_body_new(json_pack("{s:s, s:i}", "op", "search", "dim", 3));
    float v[6] = {1.5f, -2.0f, 0.25f, 3.0f, 0.0f, -1e-8f};
    assert_int_equal(mb_body_add_vectors(b, v, 6), 0);
    zmsg_t *msg = zmsg_new();
    assert_int_equal(mb_body_encode(b, msg), 0);
    assert_int_equal(zmsg_size(msg), 2);
    /* wire format: second frame is 6 little-endian float32 */
    zframe_t *f0 = zmsg_first(msg), *f1 = zmsg_next(msg);
    assert_int_equal(zframe_size(f1), 24);
    unsigned char le[4];
    memcpy(le, zframe_data(f1), 4);
    assert_int_equal(le[3], 0x3f); /* 1.5f = 0x3fc00000, LE: 00 00 c0 3f */
    assert_int_equal(le[2], 0xc0);
    zframe_t *frames[2] = {f0, f1};
    mb_body_t *d = NULL;
    mb_err_t err;
    assert_int_equal(mb_body_decode(frames, 2, &d, &err), 0);
    assert_string_equal(mb_json_str(mb_body_json(d), "op", ""), "search");
    size_t n = 0;
    const float *got = mb_body_vectors(d, 0, &n);
    assert_int_equal(n, 6);
    assert_memory_equal(got, v, sizeof v);
    assert_null(mb_body_vectors(d, 1, &n));
    zmsg_destroy(&msg);
    mb_body_destroy(&b);
    mb_body_destroy(&d);
    assert_null(d);
}

static void test_decode_rejects(void **state) {
    (void)state;
    mb_body_t *b = NULL;
    mb_err_t err;
    assert_int_equal(s_decode("{\"a\":", 5, NULL, 0, &b, &err), MB_EBADREQ);
    assert_non_null(strstr(err.msg, "not valid JSON"));
    assert_null(b);
    /* invalid UTF-8 inside a string */
    assert_int_equal(s_decode("{\"q\":\"\xff\xfe\"}", 10, NULL, 0, &b, &err), MB_EBADREQ);
    /* overlong encoding of '/' */
    assert_int_equal(s_decode("{\"q\":\"\xc0\xaf\"}", 10, NULL, 0, &b, &err), MB_EBADREQ);
    /* escaped NUL */
    assert_int_equal(s_decode("{\"q\":\"a\\u0000b\"}", 16, NULL, 0, &b, &err),
                     MB_EBADREQ);
    assert_int_equal(s_decode("[1,2]", 5, NULL, 0, &b, &err), MB_EBADREQ);
    assert_non_null(strstr(err.msg, "object"));
    assert_int_equal(s_decode("{\"a\":1,\"a\":2}", 13, NULL, 0, &b, &err), MB_EBADREQ);
    float v[4] = {0};
    assert_int_equal(s_decode("{}", 2, v, 7, &b, &err), MB_EBADREQ);
    assert_non_null(strstr(err.msg, "multiple of 4"));
    assert_int_equal(s_decode("{\"dim\":3}", 9, v, 16, &b, &err), MB_EBADREQ);
    assert_non_null(strstr(err.msg, "dim"));
    assert_int_equal(s_decode("{\"dim\":0}", 9, NULL, 0, &b, &err), MB_EBADREQ);
    assert_int_equal(s_decode("{\"dim\":\"4\"}", 11, NULL, 0, &b, &err), MB_EBADREQ);
    assert_int_equal(mb_body_decode(NULL, 0, &b, &err), MB_EBADREQ);
    assert_null(b);
    /* a good one with dim */
    assert_int_equal(s_decode("{\"dim\":2}", 9, v, 16, &b, &err), 0);
    assert_int_equal(mb_body_vector_frames(b), 1);
    mb_body_destroy(&b);
}

static void test_decode_too_large(void **state) {
    (void)state;
    size_t big = MB_MAX_MESSAGE_BYTES; /* JSON frame + this > limit */
    zframe_t *frames[2] = {zframe_new("{}", 2), zframe_new(NULL, big)};
    mb_body_t *b = NULL;
    mb_err_t err;
    assert_int_equal(mb_body_decode(frames, 2, &b, &err), MB_ETOOLARGE);
    assert_null(b);
    zframe_destroy(&frames[0]);
    zframe_destroy(&frames[1]);
}

static void test_reply_status(void **state) {
    (void)state;
    mb_body_t *e = mb_body_error(MB_EUNKDOMAIN, "unknown domain '%s'", "x");
    mb_err_t err;
    assert_int_equal(mb_body_status(e, &err), MB_EUNKDOMAIN);
    assert_string_equal(err.msg, "unknown domain 'x'");
    assert_false(json_is_true(json_object_get(mb_body_json(e), "ok")));
    mb_body_t *ok = mb_body_ok(json_pack("{s:i}", "n", 1));
    assert_int_equal(mb_body_status(ok, &err), 0);
    mb_body_t *neither = mb_body_new(NULL);
    assert_int_equal(mb_body_status(neither, &err), MB_EINTERNAL);
    mb_body_destroy(&e);
    mb_body_destroy(&ok);
    mb_body_destroy(&neither);
}

static void test_endpoint_connectable(void **state) {
    (void)state;
    char out[128];
    mb_endpoint_connectable("tcp://*:5555", out, sizeof out);
    assert_string_equal(out, "tcp://127.0.0.1:5555");
    mb_endpoint_connectable("tcp://10.0.0.1:7", out, sizeof out);
    assert_string_equal(out, "tcp://10.0.0.1:7");
    mb_endpoint_connectable("ipc:///tmp/x", out, sizeof out);
    assert_string_equal(out, "ipc:///tmp/x");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_error_names),
        cmocka_unit_test(test_body_roundtrip),
        cmocka_unit_test(test_decode_rejects),
        cmocka_unit_test(test_decode_too_large),
        cmocka_unit_test(test_reply_status),
        cmocka_unit_test(test_endpoint_connectable),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
