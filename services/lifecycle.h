/* lifecycle.h — a domain's expert over time, run by its index worker.
 *
 * The expert that made a domain's vectors is recorded in
 * HOME/domains/D/expert.json (the embed worker serves queries with exactly
 * that one). A background job replaces it when
 *   - the builtin expert has never been fitted and the domain has at least
 *     MOEBUS_FIT_MIN_CHUNKS chunks (default 100) and writes have gone quiet;
 *   - the corpus has grown MOEBUS_REFIT_GROWTH times (default 2) since the fit;
 *   - the catalog names another expert (`moebus domain set-expert`);
 *   - some chunks have no vector (stored before the expert existed);
 *   - asked to (`moebus domain refit`, op "refit").
 * MOEBUS_EXPERT_JOBS=0 turns the automatic ones off.
 * The job fits (builtin), re-embeds every chunk off to the side and swaps
 * vectors, FAISS index and expert.json in (mb_index_reembed); searches keep
 * using the old expert until then. A job interrupted by a crash or restart
 * resumes from its pending vectors (expert.pending.json names its expert). */
#ifndef MB_LIFECYCLE_H
#define MB_LIFECYCLE_H

#include <jansson.h>

#include "index.h"

typedef struct mb_lifecycle_t mb_lifecycle_t;

mb_lifecycle_t *mb_lifecycle_new(const char *home, const char *domain, const char *dir,
                                 mb_index_t *index);
/* Cancels a running job (its pending vectors stay for the next start). */
void mb_lifecycle_destroy(mb_lifecycle_t **self_p);

/* Starts a job when one is due (force: always); quiet_ms: time since the
 * last write. Returns 1 if a job started, 0 if none, or a negative code
 * with err set (force only: a job is already running). */
int mb_lifecycle_check(mb_lifecycle_t *self, int force, int64_t quiet_ms, mb_err_t *err);

/* {"state": idle|fitting|embedding|failed, "done", "total", "error"?,
 *  "target"?, "last_ms"?}: new reference. */
json_t *mb_lifecycle_status(mb_lifecycle_t *self);

#endif
