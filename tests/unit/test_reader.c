/* Unit tests of ingest sources: chunking, BEIR JSONL(.gz), dictd, text files. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "testutil.h"
#include "reader.h"

static char s_dir[256];

static int setup(void **state) {
    (void)state;
    tu_mkdtemp(s_dir, sizeof s_dir, "reader");
    return 0;
}

static int teardown(void **state) {
    (void)state;
    return tu_rmrf(s_dir);
}

typedef struct {
    int n;
    char ids[16][128];
    char titles[16][128];
    char texts[16][256];
} got_t;

static int s_collect(void *arg, const mb_rdoc_t *d) {
    got_t *g = arg;
    if (g->n < 16) {
        snprintf(g->ids[g->n], 128, "%s", d->id);
        snprintf(g->titles[g->n], 128, "%s", d->title);
        snprintf(g->texts[g->n], 256, "%s", d->text);
    }
    g->n++;
    return 0;
}

static void s_write(const char *name, const void *data, size_t len) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", s_dir, name);
    FILE *f = fopen(path, "wb");
    fwrite(data, 1, len, f);
    fclose(f);
}

static void test_chunking(void **state) {
    (void)state;
    char text[4096] = "";
    for (int i = 0; i < 25; i++) {
        char w[16];
        snprintf(w, sizeof w, "w%d%s", i, i % 5 == 4 ? "\n\n" : " ");
        strcat(text, w);
    }
    char **chunks = NULL;
    size_t n = mb_chunk_text(text, 10, 2, &chunks);
    /* 25 words, 10 per chunk, 2 overlap: starts at 0, 8, 16 -> 3 chunks */
    assert_int_equal(n, 3);
    assert_true(strncmp(chunks[0], "w0 ", 3) == 0);
    assert_true(strncmp(chunks[1], "w8 ", 3) == 0);
    assert_true(strncmp(chunks[2], "w16 ", 4) == 0);
    assert_non_null(strstr(chunks[2], "w24"));
    mb_chunks_free(chunks, n);
    assert_int_equal(mb_chunk_text("   \n\t ", 10, 2, &chunks), 0);
    mb_chunks_free(chunks, 0);
    n = mb_chunk_text("short one", 200, 40, &chunks);
    assert_int_equal(n, 1);
    assert_string_equal(chunks[0], "short one");
    mb_chunks_free(chunks, n);
}

static void test_hash(void **state) {
    (void)state;
    char a[33], b[33], c[33];
    mb_content_hash("t", "text", a);
    mb_content_hash("t", "text", b);
    mb_content_hash("t", "text!", c);
    assert_int_equal(strlen(a), 32);
    assert_string_equal(a, b);
    assert_string_not_equal(a, c);
    mb_content_hash("tt", "ext", c); /* boundary between title and text matters */
    assert_string_not_equal(a, c);
}

static void test_beir_jsonl_gz_and_text(void **state) {
    (void)state;
    char path[512];
    snprintf(path, sizeof path, "%s/corpus.jsonl.gz", s_dir);
    gzFile gz = gzopen(path, "wb");
    gzputs(gz, "{\"_id\": \"d1\", \"title\": \"T1\", \"text\": \"alpha\"}\n");
    gzputs(gz, "not json\n\n");
    gzputs(gz, "{\"_id\": \"d2\", \"text\": \"beta\"}\n");
    gzclose(gz);
    s_write("notes.md", "# Notes\nsome text", 17);
    s_write("binary.txt", "ab\0cd", 5);
    s_write("latin1.txt", "caf\xe9", 4);
    s_write("data.bin", "zzz", 3);
    got_t g = {0};
    mb_reader_stats_t st;
    char *paths[1] = {s_dir};
    mb_reader_run(paths, 1, s_collect, &g, &st);
    /* folder order is sorted: corpus.jsonl.gz, notes.md (binary/latin1 skipped) */
    assert_int_equal(g.n, 3);
    assert_string_equal(g.ids[0], "d1");
    assert_string_equal(g.titles[0], "T1");
    assert_string_equal(g.texts[0], "alpha");
    assert_string_equal(g.ids[1], "d2");
    assert_string_equal(g.titles[1], "");
    assert_non_null(strstr(g.ids[2], "notes.md"));
    assert_int_equal(st.bad_lines, 1);
    assert_int_equal(st.skipped_files, 2); /* data.bin is only skipped when named */
}

static void test_dictd(void **state) {
    (void)state;
    /* entries at offsets 0 (len 12), 12 (len 11), 23 (len 11) */
    const char *dict = "apple\n fruitbank\n moneybank\n river";
    char path[512];
    snprintf(path, sizeof path, "%s/tiny.dict.dz", s_dir);
    gzFile gz = gzopen(path, "wb");
    gzputs(gz, dict);
    gzclose(gz);
    /* dictd base64 numbers: 0 = "A", 11 = "L", 12 = "M", 23 = "X". "bank" has two
     * entries; "pomme" is an alias pointing at apple's entry. */
    const char *index = "00-database-info\tA\tB\n"
                        "apple\tA\tM\n"
                        "bank\tM\tL\n"
                        "bank\tX\tL\n"
                        "pomme\tA\tM\n";
    s_write("tiny.index", index, strlen(index));
    got_t g = {0};
    mb_reader_stats_t st;
    char ipath[512];
    snprintf(ipath, sizeof ipath, "%s/tiny.index", s_dir);
    char *paths[1] = {ipath};
    mb_reader_run(paths, 1, s_collect, &g, &st);
    assert_int_equal(g.n, 3); /* info entry skipped; same-offset alias kept once */
    assert_string_equal(g.ids[0], "tiny:apple");
    assert_string_equal(g.texts[0], "apple\n fruit");
    assert_string_equal(g.ids[1], "tiny:bank");
    assert_string_equal(g.texts[1], "bank\n money");
    assert_string_equal(g.ids[2], "tiny:bank#2");
    assert_string_equal(g.texts[2], "bank\n river");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chunking),
        cmocka_unit_test(test_hash),
        cmocka_unit_test_setup_teardown(test_beir_jsonl_gz_and_text, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dictd, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
