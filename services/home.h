/* home.h — MOEBUS_HOME layout and the catalog of domains (catalog.db).
 *
 *   HOME/catalog.db          domains and their settings (SQLite, WAL)
 *   HOME/domains/D/store.db  the domain's store
 *   HOME/domains/D/index.faiss
 *   HOME/serve.pid, HOME/serve.log   written by `moebus serve`
 */
#ifndef MB_HOME_H
#define MB_HOME_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "mb_error.h"

#define MB_DOMAIN_NAME_MAX 64
#define MB_DEFAULT_DIM 256

typedef struct {
    char name[MB_DOMAIN_NAME_MAX + 1];
    char embed[32];
    int dim;
    char index_type[128]; /* FAISS factory string, e.g. "Flat", "HNSW32" */
    char url[512];        /* http expert */
    char model[128];
    char api_key_env[64];
    int enabled;     /* 0: disabled (`moebus domain disable`), not routed to */
    int64_t created; /* when added (ms since the epoch; s for old catalogs): a
                        domain removed and added again is a new one */
} mb_domain_info_t;

/* Resolved settings every command shares: flags, else environment, else
 * defaults. */
const char *mb_default_home(void);
const char *mb_default_endpoint(void);

/* Lower-case letters, digits, '-' and '_', 1..64 chars, starting with a
 * letter or digit: safe as a directory and in a service name. */
int mb_domain_name_valid(const char *name);

/* Lists domains in name order; *out malloc'ed (caller frees). A missing
 * catalog is an empty list. */
int mb_catalog_domains(const char *home, mb_domain_info_t **out, size_t *n,
                       mb_err_t *err);
/* MB_ENOTFOUND / MB_EUNKDOMAIN if absent. */
int mb_catalog_domain_get(const char *home, const char *name, mb_domain_info_t *info,
                          mb_err_t *err);
/* MB_EEXISTS if present. Creates HOME and HOME/domains/NAME. */
int mb_catalog_domain_add(const char *home, const mb_domain_info_t *info, mb_err_t *err);
/* Changes a domain's expert (embed, dim, url, model, api_key_env of info). */
int mb_catalog_domain_set_expert(const char *home, const mb_domain_info_t *info,
                                 mb_err_t *err);

/* Takes a domain out of routing (enabled 0) or puts it back. */
int mb_catalog_domain_set_enabled(const char *home, const char *name, int enabled,
                                  mb_err_t *err);
/* Deletes the domain's row; its directory is left to the caller. */
int mb_catalog_domain_remove(const char *home, const char *name, mb_err_t *err);

/* Tells a long-running reader when to reread the catalog: keeps one
 * connection and compares SQLite's data_version, so checking is ~5 µs and a
 * commit by any process is seen by the next check. */
typedef struct mb_catalog_watch_t mb_catalog_watch_t;
mb_catalog_watch_t *mb_catalog_watch_new(const char *home);
void mb_catalog_watch_destroy(mb_catalog_watch_t **self_p);
/* 1 on the first call and after every commit by another connection. */
int mb_catalog_watch_changed(mb_catalog_watch_t *self);

/* Learned models (the router's), as one blob per name. */
int mb_catalog_model_put(const char *home, const char *name, const char *version,
                         const void *data, size_t size, mb_err_t *err);
/* MB_ENOTFOUND when absent; *data malloc'ed. */
int mb_catalog_model_get(const char *home, const char *name, void **data, size_t *size,
                         mb_err_t *err);

/* The router's labelled queries (replaced as a whole); arrays and strings
 * malloc'ed. */
int mb_catalog_labels_set(const char *home, char **queries, char **domains, size_t n,
                          mb_err_t *err);
int mb_catalog_labels_get(const char *home, char ***queries, char ***domains, size_t *n,
                          mb_err_t *err);

/* Settings (`moebus config`): router.p, router.max_domains, router.shared,
 * router.kind, gate.threshold, ask.generator. get: 0 or MB_ENOTFOUND.
 * set with value NULL removes. */
int mb_catalog_setting_get(const char *home, const char *key, char *out, size_t outsz);
int mb_catalog_setting_set(const char *home, const char *key, const char *value,
                           mb_err_t *err);

/* Generators: internal experts behind an OpenAI-compatible chat API. */
typedef struct {
    char name[MB_DOMAIN_NAME_MAX + 1];
    char url[512];
    char model[128];
    char api_key_env[64];
} mb_generator_info_t;
int mb_catalog_generators(const char *home, mb_generator_info_t **out, size_t *n,
                          mb_err_t *err);
int mb_catalog_generator_add(const char *home, const mb_generator_info_t *g,
                             mb_err_t *err);
int mb_catalog_generator_remove(const char *home, const char *name, mb_err_t *err);

/* Ingest jobs: spec and progress are JSON texts. create: state "running". */
int mb_catalog_job_create(const char *home, const char *domain, const char *spec,
                          int64_t *id, mb_err_t *err);
/* state or progress NULL: unchanged. */
int mb_catalog_job_update(const char *home, int64_t id, const char *state,
                          const char *progress, mb_err_t *err);
/* Jobs as [{id, domain, spec, state, progress, started_at, updated_at}] (new
 * reference; id 0: all, else that one or MB_ENOTFOUND). */
int mb_catalog_jobs(const char *home, int64_t id, json_t **out, mb_err_t *err);

/* The pid of the live `moebus serve` that HOME/serve.pid names, else 0 (no
 * file, a dead pid, or a pid reused by another program). */
int mb_home_serve_pid(const char *home);

/* snprintf of HOME/domains/NAME. */
void mb_home_domain_dir(const char *home, const char *name, char *out, size_t outsz);

#endif
