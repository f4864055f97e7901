/* reader.h — turns paths into documents for ingest.
 *
 * Folders are read recursively in sorted order (dot-files skipped). A file's
 * format comes from its name, else from its content:
 *   .txt .md .markdown .rst .text .org   text, one document (id = absolute path)
 *   .html .htm .xhtml / "<!doctype html"  HTML: libxml2's parser, text of the
 *        body with scripts, styles and the like dropped, blocks as paragraphs,
 *        <title> as the title
 *   .pdf / "%PDF-"       PDF through poppler's pdftotext (a clear error when it
 *        is not installed)
 *   .jsonl .jsonl.gz / a JSON line with "_id"   a BEIR corpus, one document
 *        per line ({"_id","title","text"}, id = _id)
 *   .index               a dictd dictionary (.dict or .dict.dz beside it), one
 *        document per entry (id = NAME:HEADWORD)
 *   anything else: text if it is UTF-8 without NUL bytes, else "binary".
 * A file that is unreadable, binary or not UTF-8 is reported (hooks.error)
 * and skipped; nothing else is lost.
 */
#ifndef MB_READER_H
#define MB_READER_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    const char *id;
    const char *title;
    const char *text;
    const char *source;
} mb_rdoc_t;

typedef struct {
    size_t files, skipped_files, docs, bad_lines;
} mb_reader_stats_t;

/* Return non-zero to stop reading. */
typedef int(mb_reader_fn)(void *arg, const mb_rdoc_t *doc);

typedef struct {
    mb_reader_fn *doc; /* required */
    /* Optional: before each file, with its ordinal in reading order (folders
     * are read in sorted order, so the order is stable) and its size; return
     * non-zero to skip the file. */
    int (*file)(void *arg, const char *path, size_t ordinal, int64_t size);
    /* Optional: a file or record that cannot be used and is skipped (NULL:
     * printed to stderr). */
    void (*error)(void *arg, const char *path, const char *why);
    void *arg;
} mb_reader_hooks_t;

/* Reads every path. Returns non-zero if doc stopped the reading. */
int mb_reader_walk(char *const *paths, size_t n, const mb_reader_hooks_t *hooks,
                   mb_reader_stats_t *stats);
/* The same with only a doc callback. */
int mb_reader_run(char *const *paths, size_t n, mb_reader_fn *fn, void *arg,
                  mb_reader_stats_t *stats);
/* Files and bytes under paths (for progress and ETA). */
void mb_reader_size(char *const *paths, size_t n, int64_t *files, int64_t *bytes);

/* Splits text into chunks of at most max_words words, consecutive chunks
 * sharing `overlap` words; breaks at whitespace. Returns the count; *chunks
 * is a malloc'ed array of malloc'ed strings (free with mb_chunks_free). */
size_t mb_chunk_text(const char *text, size_t max_words, size_t overlap, char ***chunks);
void mb_chunks_free(char **chunks, size_t n);

/* 128-bit content hash as 32 hex chars + NUL into out[33]. */
void mb_content_hash(const char *title, const char *text, char out[33]);

#endif
