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
#include "chunker.h"
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
    /* folder order is sorted: corpus.jsonl.gz, data.bin (text by content),
     * notes.md; binary.txt and latin1.txt are skipped */
    assert_int_equal(g.n, 4);
    assert_string_equal(g.ids[0], "d1");
    assert_string_equal(g.titles[0], "T1");
    assert_string_equal(g.texts[0], "alpha");
    assert_string_equal(g.ids[1], "d2");
    assert_string_equal(g.titles[1], "");
    assert_non_null(strstr(g.ids[2], "data.bin"));
    assert_string_equal(g.texts[2], "zzz");
    assert_non_null(strstr(g.ids[3], "notes.md"));
    assert_int_equal(st.bad_lines, 1);
    assert_int_equal(st.skipped_files, 2);
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

/* Chunks: within budget, whole sentences, paragraphs respected, overlap of
 * whole sentences, offsets that point at the chunk's text. */
static void test_chunker(void **state) {
    (void)state;
    const char *t = "Alpha one two three. Beta four five six. Gamma seven eight nine.\n"
                    "Delta ten eleven twelve.\n\n"
                    "Épsilon ünïcode wörds here. Zeta last words now.";
    mb_chunk_opts_t o = {.max_tokens = 9, .overlap = 4};
    mb_chunk_span_t *sp = NULL;
    size_t n = mb_chunk_spans(t, strlen(t), &o, &sp);
    /* sentences of 4 tokens: [A B] [B C] [C D] | [E Z]: the paragraph break
     * ends a chunk and is not overlapped */
    assert_int_equal(n, 4);
    assert_true(strncmp(t + sp[0].start, "Alpha", 5) == 0);
    assert_true(strncmp(t + sp[0].end - 4, "six.", 4) == 0);
    assert_true(strncmp(t + sp[1].start, "Beta", 4) == 0); /* overlap: one sentence */
    assert_true(strncmp(t + sp[2].start, "Gamma", 5) == 0);
    assert_true(strncmp(t + sp[2].end - 7, "twelve.", 7) == 0);
    assert_true(strncmp(t + sp[3].start, "\xc3\x89psilon", 8) == 0);
    assert_int_equal(sp[3].end, strlen(t));
    for (size_t i = 0; i < n; i++)
        assert_true(sp[i].tokens <= 9);
    /* character offsets: no multi-byte letter before the last chunk, so its
     * start is the same in both; its end comes after 4 two-byte letters */
    assert_int_equal(sp[3].cstart, sp[3].start);
    assert_int_equal(sp[3].cend, strlen(t) - 4);
    free(sp);
    /* one long sentence is cut by words with the overlap */
    char longs[1024] = "";
    for (int i = 0; i < 30; i++) {
        char w[16];
        snprintf(w, sizeof w, "w%d ", i);
        strcat(longs, w);
    }
    o = (mb_chunk_opts_t){.max_tokens = 10, .overlap = 2};
    n = mb_chunk_spans(longs, strlen(longs), &o, &sp);
    assert_int_equal(n, 4); /* 0-9, 8-17, 16-25, 24-29 */
    assert_true(strncmp(longs + sp[1].start, "w8 ", 3) == 0);
    assert_true(strncmp(longs + sp[3].start, "w24 ", 4) == 0);
    free(sp);
    assert_int_equal(mb_chunk_spans("  \n\n \t", 6, &o, &sp), 0);
    free(sp);
    /* "e.g." and 3.14 do not end sentences */
    const char *abbr = "Use e.g. the value pi 3.14 here now. Next one is short.";
    o = (mb_chunk_opts_t){.max_tokens = 8, .overlap = 0};
    n = mb_chunk_spans(abbr, strlen(abbr), &o, &sp);
    assert_int_equal(n, 2);
    assert_true(strncmp(abbr + sp[0].end - 4, "now.", 4) == 0);
    free(sp);
}

typedef struct {
    got_t g;
    char errs[2048];
} both_t;

static int s_collect_both(void *arg, const mb_rdoc_t *d) {
    return s_collect(&((both_t *)arg)->g, d);
}

static void s_err_collect(void *arg, const char *path, const char *why) {
    both_t *b = arg;
    const char *slash = strrchr(path, '/');
    size_t l = strlen(b->errs);
    snprintf(b->errs + l, sizeof b->errs - l, "%s: %s\n", slash ? slash + 1 : path, why);
}

/* HTML: scripts and styles dropped, blocks as paragraphs, <title> as title;
 * formats by content; binary files reported; PDF without pdftotext reported
 * with the package to install. */
static void test_formats(void **state) {
    (void)state;
    const char *html = "<!DOCTYPE html><html><head>\n  <title>Volcano Guide</title>\n"
                       "<style>p{color:red}</style><script>var hidden=1;</script></head>"
                       "<body><h1>Volcanoes</h1><p>Lava <b>flows</b>.</p>"
                       "<div>Ash<script>alert('x')</script> rises.</div></body></html>";
    s_write("page.htm", html, strlen(html));
    s_write("noext", html, strlen(html)); /* HTML by content */
    s_write("blob.dat", "\x89PNG\0\0", 6);
    both_t b = {0};
    mb_reader_stats_t st;
    mb_reader_hooks_t h = {.doc = s_collect_both, .error = s_err_collect, .arg = &b};
    char *paths[1] = {s_dir};
    mb_reader_walk(paths, 1, &h, &st);
    /* sorted: blob.dat (binary), noext, page.htm */
    assert_int_equal(b.g.n, 2);
    assert_string_equal(b.g.titles[0], "Volcano Guide");
    assert_string_equal(b.g.texts[0], "Volcanoes\n\nLava flows.\n\nAsh rises.");
    assert_string_equal(b.g.texts[1], b.g.texts[0]);
    assert_int_equal(st.skipped_files, 1);
    assert_non_null(strstr(b.errs, "blob.dat: binary file"));

    s_write("x.pdf", "%PDF-1.4\n", 9);
    s_write("scan", "%PDF-1.4\n", 9); /* a PDF by content only */
    char pdf[512], scan[512];
    snprintf(pdf, sizeof pdf, "%s/x.pdf", s_dir);
    snprintf(scan, sizeof scan, "%s/scan", s_dir);
    char *pp[2] = {pdf, scan};
    char *saved = getenv("PATH") ? strdup(getenv("PATH")) : NULL;
    setenv("PATH", "/nonexistent", 1);
    both_t b2 = {0};
    h.arg = &b2;
    mb_reader_walk(pp, 2, &h, &st);
    if (saved) setenv("PATH", saved, 1);
    free(saved);
    assert_int_equal(b2.g.n, 0);
    assert_int_equal(st.skipped_files, 2);
    assert_non_null(strstr(b2.errs, "scan: PDF needs pdftotext"));
    assert_non_null(strstr(b2.errs, "poppler-utils"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chunking),
        cmocka_unit_test(test_chunker),
        cmocka_unit_test_setup_teardown(test_formats, setup, teardown),
        cmocka_unit_test(test_hash),
        cmocka_unit_test_setup_teardown(test_beir_jsonl_gz_and_text, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dictd, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
