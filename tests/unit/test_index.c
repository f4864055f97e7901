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

#include "testutil.h"
#include "index.h"

#define DIM 16

static char s_dir[256];

static int setup(void **state) {
    (void)state;
    tu_mkdtemp(s_dir, sizeof s_dir, "index");
    return 0;
}

static int teardown(void **state) {
    (void)state;
    return tu_rmrf(s_dir);
}

static void s_unit(float *v, unsigned seed) {
    tu_unit_vector(v, DIM, seed);
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
    mb_index_t *ix = mb_index_open(s_dir, DIM, NULL, &err);
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
    ix = mb_index_open(s_dir, 0, NULL, &err); /* dim from the store */
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
    mb_index_t *ix = mb_index_open(s_dir, DIM, NULL, &err);
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
    mb_index_t *ix = mb_index_open(s_dir, DIM, NULL, &err);
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
    assert_null(mb_index_open(s_dir, DIM * 2, NULL, &err));
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
    mb_index_t *ix = mb_index_open(s_dir, DIM, NULL, &err);
    s_add_docs(ix, 0, 20, "h");
    mb_index_close(&ix);
    char path[512];
    snprintf(path, sizeof path, "%s/index.faiss", s_dir);
    float q[DIM];
    s_unit(q, 2 * 3 + 2);
    /* missing */
    unlink(path);
    ix = mb_index_open(s_dir, 0, NULL, &err);
    assert_non_null(ix);
    json_t *r = NULL;
    mb_index_search(ix, q, 1, &r, &err);
    assert_string_equal(
        json_string_value(json_object_get(json_array_get(r, 0), "doc_id")), "d3");
    json_decref(r);
    mb_index_close(&ix);
    /* corrupt */
    s_write_file(path, "this is not a faiss index");
    ix = mb_index_open(s_dir, 0, NULL, &err);
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
    ix = mb_index_open(s_dir, 0, NULL, &err);
    st = mb_index_stats(ix);
    assert_int_equal(json_integer_value(json_object_get(st, "vectors")), 50);
    json_decref(st);
    mb_index_close(&ix);
}

static void test_newer_schema_rejected(void **state) {
    (void)state;
    mb_err_t err;
    mb_index_t *ix = mb_index_open(s_dir, DIM, NULL, &err);
    mb_index_close(&ix);
    char path[512];
    snprintf(path, sizeof path, "%s/store.db", s_dir);
    sqlite3 *db;
    sqlite3_open(path, &db);
    sqlite3_exec(db, "PRAGMA user_version=99", NULL, NULL, NULL);
    sqlite3_close(db);
    assert_null(mb_index_open(s_dir, DIM, NULL, &err));
    assert_int_equal(err.code, MB_EVERSION);
    assert_non_null(strstr(err.msg, "99"));
}

static int s_add_text(mb_index_t *ix, const char *id, const char *text,
                      const char *hash) {
    float v[DIM];
    s_unit(v, (unsigned)strlen(id) * 7u + (unsigned)text[0]);
    const char *chunks[1] = {text};
    mb_doc_t d = {id, "src", hash, NULL, 1, chunks, v};
    mb_add_result_t res;
    return mb_index_add(ix, &d, 1, "t", &res, NULL);
}

static json_t *s_lex(mb_index_t *ix, const char *query, int k) {
    mb_query_t q = {.mode = MB_MODE_LEXICAL, .query = query, .k = k};
    json_t *r = NULL;
    mb_err_t err;
    assert_int_equal(mb_index_query(ix, &q, &r, &err), 0);
    return r;
}

static const char *s_top(json_t *r) {
    return json_string_value(json_object_get(json_array_get(r, 0), "doc_id"));
}

static void test_lexical_and_hybrid(void **state) {
    (void)state;
    mb_err_t err;
    mb_index_t *ix = mb_index_open(s_dir, DIM, NULL, &err);
    assert_int_equal(
        s_add_text(ix, "volcano", "Magma rises and the volcano erupts lava.", "1"), 0);
    assert_int_equal(
        s_add_text(ix, "cafe", "Un café crème au comptoir, s'il vous plaît.", "1"), 0);
    assert_int_equal(
        s_add_text(ix, "runner", "The runners were running a marathon.", "1"), 0);
    json_t *r = s_lex(ix, "volcanoes erupting", 5);
    assert_string_equal(s_top(r), "volcano"); /* porter stemming */
    assert_true(json_real_value(json_object_get(json_array_get(r, 0), "score")) > 0);
    json_decref(r);
    r = s_lex(ix, "CAFE creme", 5); /* case and diacritics folded */
    assert_string_equal(s_top(r), "cafe");
    json_decref(r);
    /* FTS5 syntax in user input is matched as words, never parsed */
    const char *nasty[] = {
        "\"unbalanced",          "NOT AND OR", "run*", "text:lava", "NEAR(a b)",  "^lava",
        "-- ;DROP TABLE chunks", "(((",        "\"\"", "???",       "lava\"OR\"x"};
    for (size_t i = 0; i < sizeof nasty / sizeof *nasty; i++) {
        r = s_lex(ix, nasty[i], 5);
        json_decref(r);
    }
    r = s_lex(ix, "text:lava", 5);
    assert_string_equal(s_top(r), "volcano");
    json_decref(r);
    r = s_lex(ix, "???", 5);
    assert_int_equal(json_array_size(r), 0);
    json_decref(r);
    /* replace: the old text is gone from the lexical index too */
    assert_int_equal(s_add_text(ix, "volcano", "A glacier of slow blue ice.", "2"), 0);
    r = s_lex(ix, "lava magma", 5);
    assert_int_equal(json_array_size(r), 0);
    json_decref(r);
    r = s_lex(ix, "glacier", 5);
    assert_string_equal(s_top(r), "volcano");
    json_decref(r);
    /* hybrid: both channel scores kept on a hit found by both */
    float q[DIM];
    s_unit(q, (unsigned)strlen("runner") * 7u + 'T');
    mb_query_t hq = {
        .mode = MB_MODE_HYBRID, .vector = q, .query = "marathon", .k = 3, .rrf_k = 60};
    assert_int_equal(mb_index_query(ix, &hq, &r, &err), 0);
    json_t *top = json_array_get(r, 0);
    assert_string_equal(json_string_value(json_object_get(top, "doc_id")), "runner");
    assert_non_null(json_object_get(top, "dense"));
    assert_non_null(json_object_get(top, "lexical"));
    json_decref(r);
    hq.fusion = MB_FUSION_WEIGHTED;
    hq.alpha = 0.3;
    assert_int_equal(mb_index_query(ix, &hq, &r, &err), 0);
    assert_string_equal(s_top(r), "runner");
    assert_true(json_real_value(json_object_get(json_array_get(r, 0), "score")) <=
                1.0 + 1e-9);
    json_decref(r);
    /* missing inputs */
    /* hybrid without a vector (expert not fitted yet) is lexical; dense
     * without one is an error */
    hq.vector = NULL;
    assert_int_equal(mb_index_query(ix, &hq, &r, &err), 0);
    assert_string_equal(s_top(r), "runner");
    assert_null(json_object_get(json_array_get(r, 0), "dense"));
    json_decref(r);
    hq.mode = MB_MODE_DENSE;
    assert_int_equal(mb_index_query(ix, &hq, &r, &err), MB_EBADREQ);
    mb_query_t lq = {.mode = MB_MODE_LEXICAL, .query = "", .k = 3};
    assert_int_equal(mb_index_query(ix, &lq, &r, &err), MB_EBADREQ);
    mb_index_close(&ix);
}

static void test_delete_and_filters(void **state) {
    (void)state;
    mb_err_t err;
    mb_index_t *ix = mb_index_open(s_dir, DIM, NULL, &err);
    /* 40 docs: ids a/0..a/19 and b/0..b/19, sources /x or /y, meta lang */
    for (int i = 0; i < 40; i++) {
        char id[32], src[32], meta[64], text[64];
        snprintf(id, sizeof id, "%s/%d", i < 20 ? "a" : "b", i % 20);
        snprintf(src, sizeof src, "/%s/file%d", i % 2 ? "x" : "y", i);
        snprintf(meta, sizeof meta, "{\"lang\":\"%s\",\"n\":%d,\"odd\":%s}",
                 i % 3 ? "en" : "fr", i, i % 2 ? "true" : "false");
        snprintf(text, sizeof text, "common words number %d", i);
        float v[DIM];
        s_unit(v, (unsigned)i + 100);
        const char *chunks[1] = {text};
        mb_doc_t d = {id, src, "h", meta, 1, chunks, v};
        mb_add_result_t res;
        assert_int_equal(mb_index_add(ix, &d, 1, "t", &res, &err), 0);
    }
    float q[DIM];
    s_unit(q, 100 + 25); /* nearest is b/5 */
    mb_filter_t f = {.doc_prefix = "a/"};
    mb_query_t dq = {.mode = MB_MODE_DENSE, .vector = q, .k = 10, .filter = &f};
    json_t *r = NULL;
    size_t i;
    json_t *hit;
    for (int mode = 0; mode < 3; mode++) {
        dq.mode = (mb_search_mode_t)mode;
        dq.query = "common words";
        dq.rrf_k = 60;
        assert_int_equal(mb_index_query(ix, &dq, &r, &err), 0);
        assert_int_equal(json_array_size(r), 10); /* exactly k despite the filter */
        json_array_foreach(r, i, hit) assert_true(
            strncmp(json_string_value(json_object_get(hit, "doc_id")), "a/", 2) == 0);
        json_decref(r);
    }
    /* selective filter: only 1 of 40 passes; dense search must still find it */
    json_t *meta = json_pack("{s:s, s:i}", "lang", "fr", "n", 36);
    mb_filter_t f2 = {.source_prefix = "/y/", .meta = meta};
    dq.mode = MB_MODE_DENSE;
    dq.filter = &f2;
    assert_int_equal(mb_index_query(ix, &dq, &r, &err), 0);
    assert_int_equal(json_array_size(r), 1);
    assert_string_equal(s_top(r), "b/16"); /* 36: even (/y/), 36 % 3 == 0 (fr) */
    json_decref(r);
    json_decref(meta);
    json_t *odd = json_pack("{s:b}", "odd", 1);
    mb_filter_t f3 = {.meta = odd};
    dq.mode = MB_MODE_LEXICAL;
    dq.filter = &f3;
    dq.k = 40;
    assert_int_equal(mb_index_query(ix, &dq, &r, &err), 0);
    assert_int_equal(json_array_size(r), 20);
    json_decref(r);
    json_decref(odd);
    /* delete: unknown id fails the whole call and deletes nothing */
    const char *bad[2] = {"a/1", "nope"};
    size_t chunks = 0;
    assert_int_equal(mb_index_delete(ix, bad, 2, &chunks, &err), MB_ENOTFOUND);
    assert_non_null(strstr(err.msg, "nope"));
    assert_int_equal(mb_index_needs(ix, "a/1", "h"), 0); /* still there */
    const char *good[2] = {"a/1", "b/5"};
    assert_int_equal(mb_index_delete(ix, good, 2, &chunks, &err), 0);
    assert_int_equal(chunks, 2);
    dq.mode = MB_MODE_DENSE;
    dq.filter = NULL;
    dq.k = 40;
    assert_int_equal(mb_index_query(ix, &dq, &r, &err), 0);
    assert_int_equal(json_array_size(r), 38);
    json_array_foreach(r, i, hit) {
        const char *id = json_string_value(json_object_get(hit, "doc_id"));
        assert_true(strcmp(id, "a/1") != 0 && strcmp(id, "b/5") != 0);
    }
    json_decref(r);
    r = s_lex(ix, "number", 40);
    assert_int_equal(json_array_size(r), 38);
    json_decref(r);
    mb_index_close(&ix);
    /* deletes survive a reopen */
    ix = mb_index_open(s_dir, 0, NULL, &err);
    json_t *st = mb_index_stats(ix);
    assert_int_equal(json_integer_value(json_object_get(st, "documents")), 38);
    assert_int_equal(json_integer_value(json_object_get(st, "vectors")), 38);
    json_decref(st);
    mb_index_close(&ix);
}

static void test_schema_v1_upgrade(void **state) {
    (void)state;
    mb_err_t err;
    mb_index_t *ix = mb_index_open(s_dir, DIM, NULL, &err);
    s_add_text(ix, "old", "an ancient manuscript about astrolabes", "1");
    mb_index_close(&ix);
    /* turn it back into a version 1 store: no FTS table, no triggers */
    char path[512];
    snprintf(path, sizeof path, "%s/store.db", s_dir);
    sqlite3 *db;
    sqlite3_open(path, &db);
    assert_int_equal(sqlite3_exec(db,
                                  "DROP TRIGGER chunks_ai; DROP TRIGGER chunks_ad;"
                                  "DROP TABLE chunks_fts; PRAGMA user_version=1;",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    ix = mb_index_open(s_dir, 0, NULL, &err);
    assert_non_null(ix);
    json_t *r = s_lex(ix, "astrolabe", 5);
    assert_string_equal(s_top(r), "old"); /* existing chunks were indexed */
    json_decref(r);
    mb_index_close(&ix);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_add_search_reopen_identical, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_idempotent_and_replace, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_input_writes_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_faiss_file_is_a_cache, setup, teardown),
        cmocka_unit_test_setup_teardown(test_newer_schema_rejected, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lexical_and_hybrid, setup, teardown),
        cmocka_unit_test_setup_teardown(test_schema_v1_upgrade, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delete_and_filters, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
