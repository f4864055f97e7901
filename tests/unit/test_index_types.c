/* Every index type: add (past the training threshold), search, delete,
 * reopen, search again: results identical before and after the reopen, no
 * deleted document ever returned. Real FAISS indexes, real SQLite files. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "index.h"

#define DIM 32
#define NDOCS 3000 /* above every type's training threshold (IVF64: 2,496) */
#define NQ 20

static void s_unit(float *v, unsigned seed) {
    tu_unit_vector(v, DIM, seed);
}

static void s_add(mb_index_t *ix, int from, int n) {
    mb_doc_t *docs = calloc((size_t)n, sizeof *docs);
    char(*ids)[16] = calloc((size_t)n, sizeof *ids);
    float *vecs = calloc((size_t)n * DIM, sizeof *vecs);
    const char *chunks[1] = {"text"};
    for (int i = 0; i < n; i++) {
        snprintf(ids[i], sizeof ids[i], "d%d", from + i);
        s_unit(vecs + (size_t)i * DIM, (unsigned)(from + i) * 7919u + 1);
        docs[i] = (mb_doc_t){ids[i], "s", "h", NULL, 1, chunks, vecs + (size_t)i * DIM};
    }
    mb_add_result_t res;
    mb_err_t err;
    int rc = mb_index_add(ix, docs, (size_t)n, "t", &res, &err);
    if (rc != 0) fail_msg("add: %s", err.msg);
    free(docs);
    free(ids);
    free(vecs);
}

/* For exact index types, each hit's score must be the inner product with
 * that document's own vector: catches any id <-> vector mislabelling. */
static int s_exact;

static void s_check_scores(const float *q, json_t *r) {
    size_t i;
    json_t *hit;
    json_array_foreach(r, i, hit) {
        int id = atoi(json_string_value(json_object_get(hit, "doc_id")) + 1);
        float v[DIM];
        s_unit(v, (unsigned)id * 7919u + 1);
        double dot = 0;
        for (int d = 0; d < DIM; d++)
            dot += (double)q[d] * v[d];
        double got = json_real_value(json_object_get(hit, "score"));
        if (fabs(dot - got) > 1e-4)
            fail_msg("hit %s scored %.6f but its vector gives %.6f",
                     json_string_value(json_object_get(hit, "doc_id")), got, dot);
    }
}

static json_t *s_search_all(mb_index_t *ix, int nprobe, int efsearch) {
    json_t *all = json_array();
    for (int q = 0; q < NQ; q++) {
        float v[DIM];
        s_unit(v, (unsigned)q * 104729u + 17);
        mb_query_t mq = {.mode = MB_MODE_DENSE, .vector = v, .k = 10};
        mq.params.nprobe = nprobe;
        mq.params.efsearch = efsearch;
        json_t *r = NULL;
        mb_err_t err;
        if (mb_index_query(ix, &mq, &r, &err) != 0) fail_msg("search: %s", err.msg);
        assert_int_equal(json_array_size(r), 10);
        if (s_exact) s_check_scores(v, r);
        size_t i;
        json_t *hit;
        json_array_foreach(r, i, hit) json_object_del(hit, "text");
        json_array_append_new(all, r);
    }
    return all;
}

/* Same ranking: equal scores at every rank and the same document wherever
 * the score is not tied with the last one (which tied document makes the cut
 * at k is arbitrary in FAISS, and not a property of the index). */
static int s_same_ranking(json_t *a, json_t *b) {
    if (json_array_size(a) != json_array_size(b)) return 0;
    for (size_t q = 0; q < json_array_size(a); q++) {
        json_t *ra = json_array_get(a, q), *rb = json_array_get(b, q);
        size_t n = json_array_size(ra);
        if (n != json_array_size(rb)) return 0;
        double last =
            json_real_value(json_object_get(json_array_get(ra, n - 1), "score"));
        for (size_t i = 0; i < n; i++) {
            json_t *x = json_array_get(ra, i), *y = json_array_get(rb, i);
            double sx = json_real_value(json_object_get(x, "score"));
            if (sx != json_real_value(json_object_get(y, "score"))) return 0;
            if (sx != last && !json_equal(x, y)) return 0;
        }
    }
    return 1;
}

static int s_contains_deleted(json_t *all) {
    size_t q, i;
    json_t *r, *hit;
    json_array_foreach(all, q, r) json_array_foreach(r, i, hit) {
        int id = atoi(json_string_value(json_object_get(hit, "doc_id")) + 1);
        if (id < 300) return 1;
    }
    return 0;
}

static void s_roundtrip(const char *factory) {
    char dir[64];
    tu_mkdtemp(dir, sizeof dir, "types");
    mb_err_t err;
    mb_index_t *ix = mb_index_open(dir, DIM, factory, &err);
    if (!ix) fail_msg("%s: %s", factory, err.msg);
    for (int at = 0; at < NDOCS; at += 1000)
        s_add(ix, at, at + 1000 > NDOCS ? NDOCS - at : 1000);
    json_t *st = mb_index_stats(ix);
    assert_true(json_is_true(json_object_get(st, "trained")));
    assert_string_equal(json_string_value(json_object_get(st, "index_type")), factory);
    assert_int_equal(json_integer_value(json_object_get(st, "vectors")), NDOCS);
    json_decref(st);
    json_t *before = s_search_all(ix, 0, 0);
    /* delete 300 documents; HNSW keeps them as tombstones */
    const char *del[300];
    char names[300][16];
    for (int i = 0; i < 300; i++) {
        snprintf(names[i], sizeof names[i], "d%d", i);
        del[i] = names[i];
    }
    size_t chunks;
    assert_int_equal(mb_index_delete(ix, del, 300, &chunks, &err), 0);
    assert_int_equal(chunks, 300);
    json_t *after_delete = s_search_all(ix, 0, 0);
    assert_false(s_contains_deleted(after_delete));
    mb_index_close(&ix);
    ix = mb_index_open(dir, DIM, factory, &err);
    assert_non_null(ix);
    json_t *reopened = s_search_all(ix, 0, 0);
    if (!s_same_ranking(after_delete, reopened)) {
        size_t d = 0;
        while (json_equal(json_array_get(after_delete, d), json_array_get(reopened, d)))
            d++;
        char *x = json_dumps(json_array_get(after_delete, d), JSON_COMPACT);
        char *y = json_dumps(json_array_get(reopened, d), JSON_COMPACT);
        fprintf(stderr, "query %zu differs\n", d);
        fprintf(stderr, "before: %s\nafter:  %s\n", x, y);
        free(x);
        free(y);
        fail_msg("%s: results changed on reopen", factory);
    }
    /* re-adding a deleted document works and it is found again */
    s_add(ix, 0, 1);
    float v[DIM];
    s_unit(v, 0 * 7919u + 1);
    mb_query_t mq = {.mode = MB_MODE_DENSE, .vector = v, .k = 1};
    json_t *r = NULL;
    assert_int_equal(mb_index_query(ix, &mq, &r, &err), 0);
    assert_string_equal(
        json_string_value(json_object_get(json_array_get(r, 0), "doc_id")), "d0");
    json_decref(r);
    json_decref(before);
    json_decref(after_delete);
    json_decref(reopened);
    mb_index_close(&ix);
    assert_int_equal(tu_rmrf(dir), 0);
}

static void test_flat(void **state) {
    (void)state;
    s_exact = 1;
    s_roundtrip("Flat");
}
static void test_hnsw(void **state) {
    (void)state;
    s_exact = 1;
    s_roundtrip("HNSW32");
}
static void test_ivf_flat(void **state) {
    (void)state;
    s_exact = 1;
    s_roundtrip("IVF64,Flat");
}
static void test_ivf_pq(void **state) {
    (void)state;
    s_exact = 0;
    s_roundtrip("IVF64,PQ8x4");
}
static void test_sq8(void **state) {
    (void)state;
    s_exact = 0;
    s_roundtrip("SQ8");
}

static void test_untrained_fallback_params_and_type_change(void **state) {
    (void)state;
    char dir[64];
    tu_mkdtemp(dir, sizeof dir, "types");
    mb_err_t err;
    assert_int_equal(mb_index_check_factory(DIM, "NoSuchIndex99", &err), MB_EBADREQ);
    s_exact = 1;
    mb_index_t *ix = mb_index_open(dir, DIM, "IVF64,Flat", &err);
    s_add(ix, 0, 500); /* below 39 x 64 = 2,496: the flat fallback serves */
    json_t *st = mb_index_stats(ix);
    assert_false(json_is_true(json_object_get(st, "trained")));
    assert_int_equal(json_integer_value(json_object_get(st, "train_at")), 2496);
    json_decref(st);
    json_t *a = s_search_all(ix, 0, 0);
    mb_index_close(&ix);
    ix = mb_index_open(dir, DIM, "IVF64,Flat", &err); /* the fallback reloads */
    json_t *b = s_search_all(ix, 0, 0);
    assert_true(s_same_ranking(a, b));
    s_add(ix, 500, 2000); /* crosses the threshold: trains */
    st = mb_index_stats(ix);
    assert_true(json_is_true(json_object_get(st, "trained")));
    json_decref(st);
    json_t *np = s_search_all(ix, 64, 0); /* nprobe = nlist: exhaustive, like flat */
    json_decref(np);
    float v[DIM];
    s_unit(v, 3);
    mb_query_t mq = {.mode = MB_MODE_DENSE, .vector = v, .k = 5};
    mq.params.efsearch = 10; /* not an IVF parameter */
    json_t *r = NULL;
    assert_int_equal(mb_index_query(ix, &mq, &r, &err), MB_EBADREQ);
    assert_non_null(strstr(err.msg, "efSearch"));
    mb_index_close(&ix);
    /* changing the type rebuilds from the store */
    ix = mb_index_open(dir, DIM, "HNSW32", &err);
    assert_non_null(ix);
    st = mb_index_stats(ix);
    assert_string_equal(json_string_value(json_object_get(st, "index_type")), "HNSW32");
    assert_int_equal(json_integer_value(json_object_get(st, "vectors")), 2500);
    json_decref(st);
    json_t *c = s_search_all(ix, 0, 200);
    json_decref(c);
    json_decref(a);
    json_decref(b);
    mb_index_close(&ix);
    assert_int_equal(tu_rmrf(dir), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_flat),
        cmocka_unit_test(test_hnsw),
        cmocka_unit_test(test_ivf_flat),
        cmocka_unit_test(test_ivf_pq),
        cmocka_unit_test(test_sq8),
        cmocka_unit_test(test_untrained_fallback_params_and_type_change),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
