/* index.h — one domain's index: the SQLite store (truth) + a FAISS index
 * (cache) over the chunk vectors, kept in step.
 *
 * Layout under dir: store.db, index.faiss. Each committed write bumps the
 * store's generation; saving the FAISS file records the generation it holds.
 * On open the file is used only if it exists, loads, and matches the store's
 * generation and chunk count; otherwise it is rebuilt from the stored vectors
 * (and the log says why). So a crash at any point loses nothing acknowledged.
 */
#ifndef MB_INDEX_H
#define MB_INDEX_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "mb_error.h"

typedef struct mb_index_t mb_index_t;

typedef struct {
    const char *doc_id;
    const char *source;
    const char *hash; /* content hash: same id + same hash = unchanged */
    const char *meta; /* JSON text or NULL */
    size_t nchunks;
    const char *const *chunks;
    const float *vectors; /* nchunks * dim, L2-normalised */
} mb_doc_t;

typedef struct {
    size_t added, replaced, unchanged, chunks;
} mb_add_result_t;

/* Opens or creates the index in dir (created if missing). dim 0 reuses the
 * store's dimension. factory: a FAISS factory string ("Flat", "HNSW32",
 * "IVF1024,Flat", "IVF1024,PQ32", "SQ8"…); NULL keeps the store's (Flat for
 * a new one). A changed factory rebuilds the FAISS index from the store. */
mb_index_t *mb_index_open(const char *dir, int dim, const char *factory, mb_err_t *err);
/* MB_EBADREQ with FAISS's message when factory is not a valid index type. */
int mb_index_check_factory(int dim, const char *factory, mb_err_t *err);
/* Background upkeep, for idle moments: compacts tombstones, saves. */
int mb_index_maintain(mb_index_t *self, mb_err_t *err);
/* Saves the FAISS file if it changed, then frees. */
void mb_index_close(mb_index_t **self_p);
int mb_index_save(mb_index_t *self, mb_err_t *err);
int mb_index_dim(const mb_index_t *self);
/* True when writes happened since the last save. */
int mb_index_dirty(const mb_index_t *self);

/* Adds or replaces documents in one transaction; nothing is written when any
 * input is invalid (NaN/Inf, empty id or chunk text). Vectors are all given
 * or all NULL (the domain's expert is not fitted yet: stored for lexical
 * search, embedded by the first fit). MB_EVERSION when expert (the version
 * that made the vectors) is not the domain's current one, or when vectors are
 * missing but the domain has an expert: re-embed and send again. */
int mb_index_add(mb_index_t *self, const mb_doc_t *docs, size_t n, const char *expert,
                 mb_add_result_t *res, mb_err_t *err);
/* 1 when the document is absent or its hash differs (it must be (re)sent). */
int mb_index_needs(mb_index_t *self, const char *doc_id, const char *hash);
/* mb_store_docs_list on a reader connection (concurrent with writes). */
int mb_index_docs_list(mb_index_t *self, const char *source_prefix, int64_t after,
                       size_t limit, json_t *out, mb_err_t *err);

/* Top-k chunks by inner product: a new JSON array of
 * {doc_id, chunk, text, source, score}. */
int mb_index_search(mb_index_t *self, const float *q, int k, json_t **results,
                    mb_err_t *err);

/* Deletes documents by id in one transaction. An unknown id fails the whole
 * call with MB_ENOTFOUND and deletes nothing. */
int mb_index_delete(mb_index_t *self, const char *const *doc_ids, size_t n,
                    size_t *chunks, mb_err_t *err);

/* Search filters: every field that is set must hold. meta is a JSON object
 * of key -> string/number/boolean, compared with the document's metadata. */
typedef struct {
    const char *doc_prefix;
    const char *source_prefix;
    const json_t *meta;
} mb_filter_t;

/* Per-search FAISS parameters (a request may override the defaults). */
typedef struct {
    int nprobe;   /* IVF lists to probe; 0: default (32) */
    int efsearch; /* HNSW candidate list size; 0: default (256) */
} mb_search_params_t;

typedef enum { MB_MODE_DENSE, MB_MODE_LEXICAL, MB_MODE_HYBRID } mb_search_mode_t;
/* CONVEX is the default (measured best on the dictionary sets, see
 * README "Quality"); alpha is its dense weight (default 0.2). */
typedef enum { MB_FUSION_CONVEX, MB_FUSION_RRF, MB_FUSION_WEIGHTED } mb_fusion_t;
#define MB_FUSION_ALPHA 0.2

typedef struct {
    mb_search_mode_t mode;
    const float *vector; /* dim floats; needed by dense and hybrid */
    const char *query;   /* text; needed by lexical and hybrid */
    int k;
    mb_fusion_t fusion;        /* hybrid only */
    int rrf_k;                 /* RRF constant (default 60) */
    double alpha;              /* weighted: weight of the dense channel, 0..1 */
    const mb_filter_t *filter; /* NULL: none */
    mb_search_params_t params;
} mb_query_t;

/* Parses "dense" | "lexical" | "hybrid"; -1 if none. */
int mb_search_mode_parse(const char *s);

/* Search by mode. Hybrid takes the top candidates of both channels and fuses
 * them (reciprocal rank, or min-max-normalised scores weighted by alpha).
 * Results: new JSON array of {doc_id, chunk, text, source, score} plus
 * "dense" / "lexical" channel scores where the hit had one. */
int mb_index_query(mb_index_t *self, const mb_query_t *q, json_t **results,
                   mb_err_t *err);

/* The expert version the stored vectors were made with; "" before any. */
void mb_index_expert(mb_index_t *self, char *buf, size_t bufsz);

/* Re-embeds every chunk with a new expert, off to the side: vectors go to
 * the store's pending table in batches (searches and adds continue on the
 * current vectors meanwhile), then, with writes held, the chunks added since
 * are caught up, a new FAISS index is built and the store's vectors, the
 * expert version and the index are swapped in one step. Resumes a previous
 * run for the same version (pending vectors kept across restarts); any other
 * pending vectors are discarded first. embed(arg, texts, n, out) embeds
 * passages; progress (may be NULL) is told (done, total); *cancel stops it
 * between batches (MB_EUNAVAIL, nothing swapped). */
typedef int(mb_index_embed_fn)(void *arg, const char *const *texts, size_t n, float *out,
                               mb_err_t *err);
typedef void(mb_index_progress_fn)(void *arg, int64_t done, int64_t total);
int mb_index_reembed(mb_index_t *self, const char *version, mb_index_embed_fn *embed,
                     mb_index_progress_fn *progress, void *arg, volatile int *cancel,
                     mb_err_t *err);
/* Chunk texts in id order (for fitting an expert). */
int mb_index_each_text(mb_index_t *self,
                       int (*fn)(void *arg, int64_t id, const char *text), void *arg,
                       mb_err_t *err);

/* {documents, chunks, vectors, dim, index_type, generation}: new reference. */
json_t *mb_index_stats(mb_index_t *self);

#define MB_INDEX_MAX_K 10000

#endif
