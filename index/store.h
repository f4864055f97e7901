/* store.h — a domain's SQLite store (store.db, WAL): documents, chunks, each
 * chunk's vector and the expert version that made it. The store is the source
 * of truth; the FAISS index is a cache rebuilt from it. Private to index/. */
#ifndef MB_STORE_H
#define MB_STORE_H

#include <jansson.h>
#include <stdint.h>

#include "index.h" /* mb_filter_t */
#include "mb_error.h"

/* 1: documents, chunks. 2: + chunks_fts (FTS5) kept in step by triggers. */
#define MB_STORE_SCHEMA_VERSION 2

typedef struct mb_store_t mb_store_t;

/* Opens or creates path. dim > 0 is recorded on creation and must match
 * afterwards; dim 0 accepts what the store has. A store written by a newer
 * schema fails with MB_EVERSION. */
mb_store_t *mb_store_open(const char *path, int dim, mb_err_t *err);
void mb_store_close(mb_store_t **self_p);

int mb_store_dim(const mb_store_t *self);
int64_t mb_store_meta_int(mb_store_t *self, const char *key, int64_t dflt);
int mb_store_meta_set_int(mb_store_t *self, const char *key, int64_t v, mb_err_t *err);
/* Text meta values: copies into buf (empty if absent). */
void mb_store_meta_text(mb_store_t *self, const char *key, char *buf, size_t bufsz);
int mb_store_meta_set_text(mb_store_t *self, const char *key, const char *v,
                           mb_err_t *err);
/* Bytes on disk of the store (main file + WAL). */
int64_t mb_store_disk_bytes(mb_store_t *self);

int mb_store_begin(mb_store_t *self, mb_err_t *err);
int mb_store_commit(mb_store_t *self, mb_err_t *err);
void mb_store_rollback(mb_store_t *self);
/* A read transaction: every statement until read_end sees one snapshot. */
void mb_store_read_begin(mb_store_t *self);
void mb_store_read_end(mb_store_t *self);

/* 1 and *row/hash (caller's 80-byte buffer) if the document exists, 0 if not,
 * negative on error. */
int mb_store_doc_find(mb_store_t *self, const char *doc_id, int64_t *row, char *hash,
                      mb_err_t *err);
/* Chunk ids of a document, malloc'ed into *ids (caller frees). */
int mb_store_doc_chunks(mb_store_t *self, int64_t row, int64_t **ids, size_t *n,
                        mb_err_t *err);
int mb_store_doc_delete(mb_store_t *self, int64_t row, mb_err_t *err);
int mb_store_doc_insert(mb_store_t *self, const char *doc_id, const char *source,
                        const char *hash, const char *meta, int64_t *row, mb_err_t *err);
int mb_store_chunk_insert(mb_store_t *self, int64_t doc_row, int pos, const char *text,
                          const float *vec, const char *expert, int64_t *id,
                          mb_err_t *err);

/* Documents whose source starts with source_prefix ("" for all), in row
 * order after row `after`, at most limit: [{"id", "source", "row"}] appended
 * to out. Returns how many, or a negative code. */
int mb_store_docs_list(mb_store_t *self, const char *source_prefix, int64_t after,
                       size_t limit, json_t *out, mb_err_t *err);

/* {doc_id, chunk, text, source} of a chunk; NULL if absent. New reference. */
json_t *mb_store_chunk_json(mb_store_t *self, int64_t id);

/* A prepared chunk lookup that applies a filter (NULL: none). */
typedef struct mb_lookup_t mb_lookup_t;
mb_lookup_t *mb_store_lookup_new(mb_store_t *self, const mb_filter_t *filter,
                                 mb_err_t *err);
/* Like mb_store_chunk_json, NULL also when the chunk fails the filter. */
json_t *mb_store_lookup(mb_lookup_t *self, int64_t id);
void mb_store_lookup_destroy(mb_lookup_t **self_p);

/* Calls fn with batches of (ids, vectors) for every chunk, in id order. */
typedef int(mb_store_vec_fn)(void *arg, size_t n, const int64_t *ids, const float *vecs,
                             mb_err_t *err);
/* Chunks that have a vector (one without: its expert was not fitted yet). */
int mb_store_each_vector(mb_store_t *self, mb_store_vec_fn *fn, void *arg, mb_err_t *err);
int64_t mb_store_count_vectors(mb_store_t *self);

/* Re-embedding: the next expert's vectors wait in `pending` until every
 * chunk has one, then replace the chunks' vectors in one transaction. */
int mb_store_each_pending(mb_store_t *self, mb_store_vec_fn *fn, void *arg,
                          mb_err_t *err);
int64_t mb_store_count_pending(mb_store_t *self);
/* Up to limit chunks without a pending vector, oldest first: those above
 * the highest pending id (pending fills in id order; a deleted chunk's
 * pending row goes with it). The caller frees ids, each text and texts. */
int mb_store_unembedded(mb_store_t *self, size_t limit, int64_t **ids, char ***texts,
                        size_t *n, mb_err_t *err);
int mb_store_pending_put(mb_store_t *self, size_t n, const int64_t *ids,
                         const float *vecs, mb_err_t *err);
int mb_store_pending_clear(mb_store_t *self, mb_err_t *err);
/* chunks.vector/expert := pending (for the chunks that still exist); clears
 * pending. Call inside a transaction. */
int mb_store_pending_apply(mb_store_t *self, const char *expert, mb_err_t *err);
typedef int(mb_store_text_fn)(void *arg, int64_t id, const char *text);
int mb_store_each_text(mb_store_t *self, mb_store_text_fn *fn, void *arg, mb_err_t *err);

/* Lexical search: BM25 over chunk text (FTS5, porter + unicode61). `query` is
 * free text; it is turned into an OR of quoted terms, so FTS5 operators in
 * user input are matched as words, never interpreted. Fills up to k ids and
 * scores (higher is better); *n receives the count. */
int mb_store_lexical(mb_store_t *self, const char *query, const mb_filter_t *filter,
                     int k, int64_t *ids, double *scores, int *n, mb_err_t *err);

int64_t mb_store_count_docs(mb_store_t *self);
int64_t mb_store_count_chunks(mb_store_t *self);

#endif
