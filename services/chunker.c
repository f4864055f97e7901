/* chunker.c — structure-aware chunking (see chunker.h). */
#include "chunker.h"
#include "mb_mem.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    size_t start, end, tokens;
    size_t para; /* paragraph number */
} unit_t;

typedef struct {
    unit_t *v;
    size_t n, cap;
} units_t;

static int s_space(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static void s_push(units_t *u, size_t start, size_t end, size_t tokens, size_t para) {
    if (u->n == u->cap)
        u->v = mb_xrealloc(u->v, (u->cap = u->cap * 2 + 64) * sizeof *u->v);
    u->v[u->n++] = (unit_t){start, end, tokens, para};
}

/* Word starts/ends of [start, end) in text. */
static size_t s_words(const char *t, size_t start, size_t end, size_t **ws, size_t **we,
                      size_t *cap) {
    size_t n = 0;
    for (size_t i = start; i < end;) {
        while (i < end && s_space(t[i]))
            i++;
        if (i >= end) break;
        if (n == *cap) {
            *cap = *cap * 2 + 64;
            *ws = mb_xrealloc(*ws, *cap * sizeof **ws);
            *we = mb_xrealloc(*we, *cap * sizeof **we);
        }
        (*ws)[n] = i;
        while (i < end && !s_space(t[i]))
            i++;
        (*we)[n++] = i;
    }
    return n;
}

/* Adds the sentence [start, end) as one unit, or cut by words when it is
 * over budget (windows of max tokens sharing `overlap`). */
static void s_sentence(units_t *u, const char *t, size_t start, size_t end, size_t para,
                       const mb_chunk_opts_t *o, size_t **ws, size_t **we, size_t *cap) {
    size_t nw = s_words(t, start, end, ws, we, cap);
    if (nw == 0) return;
    if (nw <= o->max_tokens) {
        s_push(u, (*ws)[0], (*we)[nw - 1], nw, para);
        return;
    }
    for (size_t w = 0; w < nw;) {
        size_t last = w + o->max_tokens < nw ? w + o->max_tokens : nw;
        s_push(u, (*ws)[w], (*we)[last - 1], last - w, para);
        if (last == nw) break;
        w = last - o->overlap;
    }
}

/* Does a sentence end at t[i] (a . ! or ?)? Then returns the index after any
 * closing quotes or brackets, else 0. Needs whitespace (or the end) next, so
 * 3.14 does not end one, nor does a single letter's dot ("e.g.", "J. Smith"). */
static size_t s_sentence_end(const char *t, size_t i, size_t end) {
    if (t[i] != '.' && t[i] != '!' && t[i] != '?') return 0;
    size_t j = i + 1;
    while (j < end && (t[j] == '"' || t[j] == '\'' || t[j] == ')' || t[j] == ']'))
        j++;
    if (j < end && !s_space(t[j])) return 0;
    if (t[i] == '.' && i >= 1 && !s_space(t[i - 1]) && t[i - 1] != '.' &&
        (i < 2 || s_space(t[i - 2]) || t[i - 2] == '.'))
        return 0;
    return j;
}

size_t mb_chunk_spans(const char *t, size_t len, const mb_chunk_opts_t *opts,
                      mb_chunk_span_t **out) {
    mb_chunk_opts_t o = *opts;
    if (o.max_tokens < 8) o.max_tokens = 8;
    if (o.overlap * 2 >= o.max_tokens) o.overlap = o.max_tokens / 4;
    units_t u = {0};
    size_t *ws = NULL, *we = NULL, wcap = 0;
    /* paragraphs: split at lines holding only whitespace */
    size_t para = 0, i = 0;
    while (i < len) {
        size_t p0 = i, p1 = len, next = len;
        for (size_t k = i; k < len; k++) {
            if (t[k] != '\n') continue;
            size_t m = k + 1;
            while (m < len && t[m] != '\n' && s_space(t[m]))
                m++;
            if (m < len && t[m] == '\n') { /* blank line */
                p1 = k;
                next = m + 1;
                break;
            }
        }
        /* sentences within [p0, p1) */
        size_t s0 = p0;
        for (size_t k = p0; k < p1; k++) {
            size_t e = s_sentence_end(t, k, p1);
            if (!e) continue;
            s_sentence(&u, t, s0, e, para, &o, &ws, &we, &wcap);
            s0 = e;
            k = e - 1;
        }
        s_sentence(&u, t, s0, p1, para, &o, &ws, &we, &wcap);
        para++;
        i = next;
    }
    free(ws);
    free(we);
    *out = NULL;
    if (u.n == 0) {
        free(u.v);
        return 0;
    }
    size_t n = 0, cap = 4;
    *out = malloc(cap * sizeof **out);
    for (size_t a = 0; a < u.n;) {
        size_t b = a, tok = 0;
        while (b < u.n && (b == a || tok + u.v[b].tokens <= o.max_tokens)) {
            /* half full and a new paragraph: end here rather than straddle */
            if (b > a && u.v[b].para != u.v[b - 1].para && tok * 2 >= o.max_tokens) break;
            tok += u.v[b].tokens;
            b++;
        }
        if (n == cap) *out = mb_xrealloc(*out, (cap *= 2) * sizeof **out);
        (*out)[n++] = (mb_chunk_span_t){
            .start = u.v[a].start, .end = u.v[b - 1].end, .tokens = tok};
        if (b == u.n) break;
        if (u.v[b].para != u.v[b - 1].para) { /* no overlap across paragraphs */
            a = b;
            continue;
        }
        /* back up over whole trailing sentences within the overlap */
        size_t k = b, ov = 0;
        while (k - 1 > a && ov + u.v[k - 1].tokens <= o.overlap &&
               u.v[k - 1].para == u.v[b].para)
            ov += u.v[--k].tokens;
        a = k;
    }
    free(u.v);
    /* Character offsets: chunk starts only move forward and an overlap starts
     * no earlier than the previous chunk did, so counting resumes from
     * there: linear in the text. */
    size_t pos = 0, chars = 0, prev = 0, prevc = 0;
    for (size_t c = 0; c < n; c++) {
        mb_chunk_span_t *s = &(*out)[c];
        if (s->start < pos) pos = prev, chars = prevc;
        for (; pos < s->start; pos++)
            chars += ((unsigned char)t[pos] & 0xC0) != 0x80;
        prev = pos;
        prevc = chars;
        s->cstart = chars;
        for (; pos < s->end; pos++)
            chars += ((unsigned char)t[pos] & 0xC0) != 0x80;
        s->cend = chars;
    }
    return n;
}
