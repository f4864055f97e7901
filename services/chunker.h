/* chunker.h — splits a document into passages that respect its structure.
 *
 * Paragraphs (blank lines) and sentences (. ! ? followed by space) are the
 * units; chunks are packed greedily from whole units up to a token budget
 * (tokens = whitespace-separated words, which is what the builtin expert and
 * FTS5 count). A chunk that has reached half its budget ends at a paragraph
 * break instead of straddling it. Consecutive chunks of one paragraph share up
 * to `overlap` tokens of whole trailing sentences, so a fact cut by a chunk
 * boundary is whole in one of them. A unit longer than the budget is cut by
 * words, with the same overlap. Chunks never start or end in whitespace. */
#ifndef MB_CHUNKER_H
#define MB_CHUNKER_H

#include <stddef.h>

typedef struct {
    size_t max_tokens; /* budget per chunk (>= 8) */
    size_t overlap;    /* tokens shared with the previous chunk (< max_tokens/2) */
} mb_chunk_opts_t;

typedef struct {
    size_t start, end;   /* byte offsets into the text, [start, end) */
    size_t cstart, cend; /* the same, in characters (code points) */
    size_t tokens;
} mb_chunk_span_t;

/* Returns the number of chunks (0 for blank text); *out malloc'ed. */
size_t mb_chunk_spans(const char *text, size_t len, const mb_chunk_opts_t *opts,
                      mb_chunk_span_t **out);

#endif
