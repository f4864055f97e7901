/* reader.h — turns paths into documents for ingest.
 *
 * Formats, by name: folders (recursively, dot-files skipped); .txt .md
 * .markdown .rst .text (one document per file, id = absolute path);
 * .jsonl / .jsonl.gz in the BEIR corpus format ({"_id","title","text"} per
 * line, id = _id); dictd dictionaries given by their .index file with a
 * .dict or .dict.dz beside it (one document per entry, id = NAME:HEADWORD).
 * Files that cannot be read or are not UTF-8 text are reported and skipped.
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

/* Reads every path; problems are printed to stderr and counted. Returns
 * non-zero if fn stopped the reading. */
int mb_reader_run(char *const *paths, size_t n, mb_reader_fn *fn, void *arg,
                  mb_reader_stats_t *stats);

/* Splits text into chunks of at most max_words words, consecutive chunks
 * sharing `overlap` words; breaks at whitespace. Returns the count; *chunks
 * is a malloc'ed array of malloc'ed strings (free with mb_chunks_free). */
size_t mb_chunk_text(const char *text, size_t max_words, size_t overlap, char ***chunks);
void mb_chunks_free(char **chunks, size_t n);

/* 128-bit content hash as 32 hex chars + NUL into out[33]. */
void mb_content_hash(const char *title, const char *text, char out[33]);

#endif
