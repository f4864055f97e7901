/* Hybrid search on a labelled set built from real text: the Jargon File
 * (Debian's dict-jargon, installed by deploy/bootstrap.sh). As in
 * ../shared/tools/dict_eval.py, a document is an entry with its headword
 * line removed and a query is the headword; the relevant document is that
 * entry. Asserts the floor: hybrid >= the worse of dense and
 * lexical (MRR@10), and prints all three. Skips, saying so, when the
 * dictionary is not installed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"
#include "embed.h"
#include "index.h"
#include "reader.h"

#define JARGON "/usr/share/dictd/jargon.index"
#define DIM 256
#define MAXQ 400

typedef struct {
    mb_index_t *ix;
    mb_embed_t *emb;
    size_t n;
    char *qtext[MAXQ];
    char *qdoc[MAXQ];
} load_t;

static int s_on_doc(void *arg, const mb_rdoc_t *d) {
    load_t *l = arg;
    const char *body = strchr(d->text, '\n'); /* drop the headword line */
    if (!body) return 0;
    while (*body == '\n' || *body == ' ')
        body++;
    if (!*body) return 0;
    char **chunks = NULL;
    size_t nc = mb_chunk_text(body, 200, 40, &chunks);
    if (nc == 0) {
        mb_chunks_free(chunks, nc);
        return 0;
    }
    float *v = malloc(nc * DIM * sizeof *v);
    assert_int_equal(mb_embed_batch(l->emb, (const char *const *)chunks, nc,
                                    MB_EMBED_PASSAGE, v, NULL),
                     0);
    mb_doc_t doc = {d->id, d->source, "h", NULL, nc, (const char *const *)chunks, v};
    mb_add_result_t res;
    assert_int_equal(mb_index_add(l->ix, &doc, 1, "t", &res, NULL), 0);
    /* every 5th entry with a real headword becomes a query */
    static size_t seen = 0;
    if (l->n < MAXQ && strlen(d->title) >= 3 && strchr(d->id, '#') == NULL &&
        seen++ % 5 == 0) {
        l->qtext[l->n] = strdup(d->title);
        l->qdoc[l->n] = strdup(d->id);
        l->n++;
    }
    free(v);
    mb_chunks_free(chunks, nc);
    return 0;
}

static double s_mrr(load_t *l, mb_search_mode_t mode) {
    double sum = 0;
    for (size_t i = 0; i < l->n; i++) {
        float q[DIM];
        const char *t[1] = {l->qtext[i]};
        mb_embed_batch(l->emb, t, 1, MB_EMBED_PASSAGE, q, NULL);
        mb_query_t mq = {
            .mode = mode, .vector = q, .query = l->qtext[i], .k = 10, .rrf_k = 60};
        json_t *r = NULL;
        assert_int_equal(mb_index_query(l->ix, &mq, &r, NULL), 0);
        size_t rank;
        json_t *hit;
        json_array_foreach(r, rank, hit) {
            if (strcmp(json_string_value(json_object_get(hit, "doc_id")), l->qdoc[i]) ==
                0) {
                sum += 1.0 / (double)(rank + 1);
                break;
            }
        }
        json_decref(r);
    }
    return sum / (double)l->n;
}

static void test_hybrid_not_worse_than_worst_channel(void **state) {
    (void)state;
    if (access(JARGON, R_OK) != 0) {
        printf(
            "SKIPPED: %s is not installed (deploy/bootstrap.sh installs dict-jargon)\n",
            JARGON);
        skip();
    }
    char dir[64];
    tu_mkdtemp(dir, sizeof dir, "hybrid");
    load_t l = {0};
    l.ix = mb_index_open(dir, DIM, NULL, NULL);
    l.emb = mb_embed_new("hash", DIM, NULL);
    char *paths[1] = {JARGON};
    mb_reader_stats_t st;
    mb_reader_run(paths, 1, s_on_doc, &l, &st);
    assert_true(st.docs > 2000);
    assert_true(l.n >= 100);
    double dense = s_mrr(&l, MB_MODE_DENSE), lexical = s_mrr(&l, MB_MODE_LEXICAL),
           hybrid = s_mrr(&l, MB_MODE_HYBRID);
    printf("jargon, %zu docs, %zu headword queries, MRR@10: dense %.3f lexical %.3f "
           "hybrid %.3f\n",
           st.docs, l.n, dense, lexical, hybrid);
    assert_true(hybrid >= (dense < lexical ? dense : lexical));
    for (size_t i = 0; i < l.n; i++) {
        free(l.qtext[i]);
        free(l.qdoc[i]);
    }
    mb_embed_destroy(&l.emb);
    mb_index_close(&l.ix);
    assert_int_equal(tu_rmrf(dir), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hybrid_not_worse_than_worst_channel),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
