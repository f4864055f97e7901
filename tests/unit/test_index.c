/* Unit tests of a domain index: real SQLite files and FAISS indexes in a
 * temporary directory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "index.h"

#define DIM 16

static char s_dir[256];

static int setup(void **state) {
    (void)state;
    snprintf(s_dir, sizeof s_dir, "/tmp/mb-test-index-XXXXXX");
    assert_non_null(mkdtemp(s_dir));
    return 0;
}

static int teardown(void **state) {
    (void)state;
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", s_dir);
    return system(cmd);
}

static void s_unit(float *v, unsigned seed) {
    double n = 0;
    for (int i = 0; i < DIM; i++) {
        seed = seed * 1103515245u + 12345u;
        v[i] = (float)((seed >> 8) % 2001) / 1000.0f - 1.0f;
        n += v[i] * v[i];
    }
    for (int i = 0; i < DIM; i++)
        v[i] /= (float)sqrt(n);
}

/* Adds docs "d0".."d{n-1}" with two chunks each; vectors seeded by index. */
static void s_add_docs(mb_index_t *ix, int from, int n, const char *hash) {
    mb_doc_t *docs = calloc((size_t)n, sizeof *docs);
    char(*ids)[16] = calloc((size_t)n, sizeof *ids);
    const char *chunks[2] = {"first chunk", "second chunk"};
    float *vecs = calloc((size_t)n * 2 * DIM, sizeof *vecs);
    for (int i = 0; i < n; i++) {
        snprintf(ids[i], sizeof ids[i], "d%d", from + i);
        s_unit(vecs + (size_t)i * 2 * DIM, (unsigned)(from + i) * 2 + 1);
        s_unit(vecs + (size_t)i * 2 * DIM + DIM, (unsigned)(from + i) * 2 + 2);
        docs[i] =
            (mb_doc_t){ids[i], "src", hash, NULL, 2, chunks, vecs + (size_t)i * 2 * DIM};
    }
    mb_add_result_t res;
    mb_err_t err;
    assert_int_equal(mb_index_add(ix, docs, (size_t)n, "test-v1", &res, &err), 0);
    free(docs);
    free(ids);
    free(vecs);
}

static void test_add_search_reopen_identical(void **state) {
    (void)state;
    mb_err_t err;
    mb_index_t *ix = mb_index_open(s_dir, DIM, &err);
    assert_non_null(ix);
    s_add_docs(ix, 0, 50, "h");
    float q[DIM];
    s_unit(q, 2 * 7 + 1); /* exactly d7's first chunk */
    json_t *before = NULL, *after = NULL;
    assert_int_equal(mb_index_search(ix, q, 5, &before, &err), 0);
    assert_int_equal(json_array_size(before), 5);
    json_t *top = json_array_get(before, 0);
    assert_string_equal(json_string_value(json_object_get(top, "doc_id")), "d7");
    assert_int_equal(json_integer_value(json_object_get(top, "chunk")), 0);
    assert_true(fabs(json_real_value(json_object_get(top, "score")) - 1.0) < 1e-4);
    mb_index_close(&ix);
    ix = mb_index_open(s_dir, 0, &err); /* dim from the store */
    assert_non_null(ix);
    assert_int_equal(mb_index_dim(ix), DIM);
    assert_int_equal(mb_index_search(ix, q, 5, &after, &err), 0);
    assert_true(json_equal(before, after));
    json_t *st = mb_index_stats(ix);
    assert_int_equal(json_integer_value(json_object_get(st, "documents")), 50);
    assert_int_equal(json_integer_value(json_object_get(st, "chunks")), 100);
    assert_int_equal(json_integer_value(json_object_get(st, "vectors")), 100);
    json_decref(st);
    json_decref(before);
    json_decref(after);
    mb_index_close(&ix);
}

static void test_idempotent_and_replace(void **state) {
    (void)state;
    mb_err_t err;
    mb_index_t *ix = mb_index_open(s_dir, DIM, &err);
    s_add_docs(ix, 0, 10, "h1");
    s_add_docs(ix, 0, 10, "h1"); /* same content: nothing changes */
    json_t *st = mb_index_stats(ix);
    assert_int_equal(json_integer_value(json_object_get(st, "chunks")), 20);
    json_decref(st);
    assert_int_equal(mb_index_needs(ix, "d3", "h1"), 0);
    assert_int_equal(mb_index_needs(ix, "d3", "h2"), 1);
    assert_int_equal(mb_index_needs(ix, "d99", "h1"), 1);
    s_add_docs(ix, 0, 10, "h2"); /* changed: replaced, old chunks gone from FAISS too */
    st = mb_index_stats(ix);
    assert_int_equal(json_integer_value(json_object_get(st, "documents")), 10);
    assert_int_equal(json_integer_value(json_object_get(st, "chunks")), 20);
    assert_int_equal(json_integer_value(json_object_get(st, "vectors")), 20);
    json_decref(st);
    mb_index_close(&ix);
}

static void test_bad_input_writes_nothing(void **state) {
    (void)state;
    mb_err_t err;
    mb_index_t *ix = mb_index_open(s_dir, DIM, &err);
    s_add_docs(ix, 0, 3, "h");
    float v[2 * DIM];
    s_unit(v, 1);
    s_unit(v + DIM, 2);
    const char *chunks[2] = {"a", "b"};
    mb_doc_t docs[2] = {{"new1", "s", "h", NULL, 2, chunks, v},
                        {"new2", "s", "h", NULL, 2, chunks, v}};
    float bad[2 * DIM];
    memcpy(bad, v, sizeof bad);
    bad[5] = NAN;
    docs[1].vectors = bad;
    mb_add_result_t res;
    assert_int_equal(mb_index_add(ix, docs, 2, "t", &res, &err), MB_EBADREQ);
    assert_non_null(strstr(err.msg, "NaN"));
    bad[5] = INFINITY;
    assert_int_equal(mb_index_add(ix, docs, 2, "t", &res, &err), MB_EBADREQ);
    const char *empty[2] = {"a", ""};
    docs[1].vectors = v;
    docs[1].chunks = empty;
    assert_int_equal(mb_index_add(ix, docs, 2, "t", &res, &err), MB_EBADREQ);
    docs[1].chunks = chunks;
    docs[1].doc_id = "";
    assert_int_equal(mb_index_add(ix, docs, 2, "t", &res, &err), MB_EBADREQ);
    assert_int_equal(mb_index_needs(ix, "new1", "h"), 1); /* nothing half-written */
    json_t *st = mb_index_stats(ix);
    assert_int_equal(json_integer_value(json_object_get(st, "chunks")), 6);
    json_decref(st);
    json_t *r = NULL;
    assert_int_equal(mb_index_search(ix, v, 0, &r, &err), MB_EBADREQ);
    assert_int_equal(mb_index_search(ix, v, MB_INDEX_MAX_K + 1, &r, &err), MB_EBADREQ);
    assert_int_equal(mb_index_search(ix, bad, 3, &r, &err), MB_EBADREQ);
    mb_index_close(&ix);
    /* wrong dimension on reopen */
    assert_null(mb_index_open(s_dir, DIM * 2, &err));
    assert_int_equal(err.code, MB_EBADREQ);
}

static void s_write_file(const char *path, const char *data) {
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(data, f);
    fclose(f);
}

static void test_faiss_file_is_a_cache(void **state) {
    (void)state;
    mb_err_t err;
    mb_index_t *ix = mb_index_open(s_dir, DIM, &err);
    s_add_docs(ix, 0, 20, "h");
    mb_index_close(&ix);
    char path[512];
    snprintf(path, sizeof path, "%s/index.faiss", s_dir);
    float q[DIM];
    s_unit(q, 2 * 3 + 2);
    /* missing */
    unlink(path);
    ix = mb_index_open(s_dir, 0, &err);
    assert_non_null(ix);
    json_t *r = NULL;
    mb_index_search(ix, q, 1, &r, &err);
    assert_string_equal(
        json_string_value(json_object_get(json_array_get(r, 0), "doc_id")), "d3");
    json_decref(r);
    mb_index_close(&ix);
    /* corrupt */
    s_write_file(path, "this is not a faiss index");
    ix = mb_index_open(s_dir, 0, &err);
    assert_non_null(ix);
    json_t *st = mb_index_stats(ix);
    assert_int_equal(json_integer_value(json_object_get(st, "vectors")), 40);
    json_decref(st);
    /* stale: writes after the last save (as after a crash) */
    s_add_docs(ix, 20, 5, "h");
    char copy[1200];
    snprintf(copy, sizeof copy, "cp '%s' '%s.old'", path, path);
    assert_int_equal(system(copy), 0);
    mb_index_close(&ix);
    snprintf(copy, sizeof copy, "mv '%s.old' '%s'", path, path);
    assert_int_equal(system(copy), 0); /* put the 40-vector file back */
    ix = mb_index_open(s_dir, 0, &err);
    st = mb_index_stats(ix);
    assert_int_equal(json_integer_value(json_object_get(st, "vectors")), 50);
    json_decref(st);
    mb_index_close(&ix);
}

static void test_newer_schema_rejected(void **state) {
    (void)state;
    mb_err_t err;
    mb_index_t *ix = mb_index_open(s_dir, DIM, &err);
    mb_index_close(&ix);
    char path[512];
    snprintf(path, sizeof path, "%s/store.db", s_dir);
    sqlite3 *db;
    sqlite3_open(path, &db);
    sqlite3_exec(db, "PRAGMA user_version=99", NULL, NULL, NULL);
    sqlite3_close(db);
    assert_null(mb_index_open(s_dir, DIM, &err));
    assert_int_equal(err.code, MB_EVERSION);
    assert_non_null(strstr(err.msg, "99"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_add_search_reopen_identical, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_idempotent_and_replace, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_input_writes_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_faiss_file_is_a_cache, setup, teardown),
        cmocka_unit_test_setup_teardown(test_newer_schema_rejected, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
