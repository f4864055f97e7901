/* home.h — MOEBUS_HOME layout and the catalog of domains (catalog.db).
 *
 *   HOME/catalog.db          domains and their settings (SQLite, WAL)
 *   HOME/domains/D/store.db  the domain's store
 *   HOME/domains/D/index.faiss
 *   HOME/serve.pid, HOME/serve.log   written by `moebus serve`
 */
#ifndef MB_HOME_H
#define MB_HOME_H

#include <stddef.h>

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

/* snprintf of HOME/domains/NAME. */
void mb_home_domain_dir(const char *home, const char *name, char *out, size_t outsz);

#endif
