/* text.c — normalise, split, drop stop words, stem. */
#include "text.h"

#include <libstemmer.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
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

/* Function words skipped by initials ("Committee for Information" -> CI). */
static int s_is_function_word(const char *w, size_t n) {
    static const char *fw[] = {"a",   "an", "and", "at",  "by",  "de",  "der",  "des",
                               "die", "du", "et",  "for", "in",  "la",  "le",   "of",
                               "on",  "or", "the", "to",  "und", "von", "with", "zur"};
    for (size_t i = 0; i < sizeof fw / sizeof *fw; i++)
        if (strlen(fw[i]) == n && strncasecmp(fw[i], w, n) == 0) return 1;
    return 0;
}

enum { ACR_MAX = 16 };

static void s_acr_emit(char *key, size_t n, mb_text_token_fn *fn, void *arg) {
    if (n < 2 || n > ACR_MAX) return;
    key[0] = '~';
    key[n + 1] = 0;
    fn(key, n + 1, arg);
}

static int s_alnum(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

void mb_text_acronyms(const char *text, size_t len, int is_query, mb_text_token_fn *fn,
                      void *arg) {
    char caps[ACR_MAX + 2], inits[ACR_MAX + 2], word[ACR_MAX + 2];
    size_t nc = 0, ni = 0, nwords = 0;
    for (size_t i = 0; i <= len;) {
        char c = i < len ? text[i] : '.';
        if (s_alnum(c)) {
            size_t s = i;
            while (i < len && s_alnum(text[i]))
                i++;
            size_t wl = i - s;
            int allcaps = wl >= 2, upper = 0;
            for (size_t k = s; k < i; k++) {
                char ch = text[k];
                if (ch >= 'a' && ch <= 'z') allcaps = 0;
                if (((ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9')) &&
                    nc < ACR_MAX + 1)
                    caps[1 + nc++] = (char)(ch | (ch >= 'A' && ch <= 'Z' ? 0x20 : 0));
                upper |= ch >= 'A' && ch <= 'Z';
            }
            (void)upper;
            if ((is_query || allcaps) && wl <= ACR_MAX) {
                for (size_t k = 0; k < wl; k++) {
                    char ch = text[s + k];
                    word[1 + k] = (char)(ch >= 'A' && ch <= 'Z' ? ch | 0x20 : ch);
                }
                s_acr_emit(word, wl, fn, arg);
            }
            if (!is_query && !s_is_function_word(text + s, wl) && ni < ACR_MAX + 1) {
                char ch = text[s];
                inits[1 + ni++] = (char)(ch >= 'A' && ch <= 'Z' ? ch | 0x20 : ch);
            }
            nwords++;
            continue;
        }
        /* Phrase boundaries: anything but spaces, hyphens, slashes, '&', '+'. */
        int joins = c == ' ' || c == '\n' || c == '\t' || c == '-' || c == '/' ||
                    c == '&' || c == '+' || c == '\'';
        if (!joins) {
            if (!is_query && nwords >= 2) {
                if (nc <= ACR_MAX) s_acr_emit(caps, nc, fn, arg);
                if (ni <= ACR_MAX && (ni != nc || memcmp(caps + 1, inits + 1, ni) != 0))
                    s_acr_emit(inits, ni, fn, arg);
            }
            nc = ni = nwords = 0;
        }
        i++;
    }
}

uint64_t mb_text_hash(const char *s, size_t n) {
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ULL;
    }
    /* final avalanche so low bits (the bucket) depend on every byte */
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    return h;
}
