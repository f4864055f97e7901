/* text.c — normalise, split, drop stop words, stem. */
#include "text.h"

#include <libstemmer.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

struct mb_text_t {
    struct sb_stemmer *stemmer;
};

/* A short list: frequent function words that carry no topic and would
 * otherwise dominate hashed term vectors. */
static const char *s_stop[] = {
    "a",    "an",    "and",   "are",  "as",    "at",    "be",   "but",  "by",  "for",
    "from", "has",   "have",  "he",   "her",   "his",   "i",    "if",   "in",  "into",
    "is",   "it",    "its",   "not",  "of",    "on",    "or",   "she",  "so",  "such",
    "that", "the",   "their", "then", "there", "these", "they", "this", "to",  "was",
    "were", "which", "will",  "with", "you",   "your",  "we",   "our",  "can", "may",
};

static int s_is_stop(const char *t, size_t len) {
    if (len > 5) return 0;
    for (size_t i = 0; i < sizeof s_stop / sizeof *s_stop; i++)
        if (strlen(s_stop[i]) == len && memcmp(s_stop[i], t, len) == 0) return 1;
    return 0;
}

mb_text_t *mb_text_new(void) {
    mb_text_t *self = calloc(1, sizeof *self);
    if (!self) return NULL;
    self->stemmer = sb_stemmer_new("english", "UTF_8");
    if (!self->stemmer) {
        free(self);
        return NULL;
    }
    return self;
}

void mb_text_destroy(mb_text_t **self_p) {
    if (!self_p || !*self_p) return;
    sb_stemmer_delete((*self_p)->stemmer);
    free(*self_p);
    *self_p = NULL;
}

static int s_is_word_char(utf8proc_int32_t c) {
    utf8proc_category_t cat = utf8proc_category(c);
    return (cat >= UTF8PROC_CATEGORY_LU && cat <= UTF8PROC_CATEGORY_LO) ||
           (cat >= UTF8PROC_CATEGORY_ND && cat <= UTF8PROC_CATEGORY_NO) ||
           cat == UTF8PROC_CATEGORY_MN;
}

static void s_emit(mb_text_t *self, const char *tok, size_t len, mb_text_token_fn *fn,
                   void *arg) {
    if (len == 0 || s_is_stop(tok, len)) return;
    const sb_symbol *st =
        sb_stemmer_stem(self->stemmer, (const sb_symbol *)tok, (int)len);
    if (st) {
        int sl = sb_stemmer_length(self->stemmer);
        fn((const char *)st, (size_t)sl, arg);
    } else {
        char buf[256];
        size_t n = len < sizeof buf - 1 ? len : sizeof buf - 1;
        memcpy(buf, tok, n);
        buf[n] = 0;
        fn(buf, n, arg);
    }
}

int mb_text_tokenize(mb_text_t *self, const char *text, size_t len, mb_text_token_fn *fn,
                     void *arg, mb_err_t *err) {
    utf8proc_uint8_t *norm = NULL;
    utf8proc_ssize_t nlen = utf8proc_map(
        (const utf8proc_uint8_t *)text, (utf8proc_ssize_t)len, &norm,
        UTF8PROC_COMPOSE | UTF8PROC_COMPAT | UTF8PROC_CASEFOLD | UTF8PROC_STRIPMARK);
    if (nlen < 0)
        return mb_err_set(err, MB_EBADREQ, "text is not valid UTF-8: %s",
                          utf8proc_errmsg(nlen));
    /* Tokens longer than this are noise (base64, hashes); cut them. */
    enum { MAXTOK = 64 };
    size_t start = 0;
    utf8proc_ssize_t i = 0;
    int in_word = 0;
    while (i < nlen) {
        utf8proc_int32_t c;
        utf8proc_ssize_t step = utf8proc_iterate(norm + i, nlen - i, &c);
        if (step <= 0) break;
        if (s_is_word_char(c)) {
            if (!in_word) {
                start = (size_t)i;
                in_word = 1;
            }
        } else if (in_word) {
            size_t tl = (size_t)i - start;
            if (tl <= MAXTOK) s_emit(self, (const char *)norm + start, tl, fn, arg);
            in_word = 0;
        }
        i += step;
    }
    if (in_word && (size_t)nlen - start <= MAXTOK)
        s_emit(self, (const char *)norm + start, (size_t)nlen - start, fn, arg);
    free(norm);
    return 0;
}
