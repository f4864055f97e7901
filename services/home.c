/* home.c — catalog.db access. Every call opens, works and closes: the
 * catalog is read rarely (per request at most) and this keeps processes from
 * holding stale handles across a catalog rewrite. */
#include "home.h"
#include "mb_mem.h"

#include <errno.h>
#include <signal.h>
#include <jansson.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <stdint.h>
#include <time.h>

const char *mb_default_home(void) {
    const char *h = getenv("MOEBUS_HOME");
    return h && *h ? h : "./moebus-data";
}

const char *mb_default_endpoint(void) {
    const char *e = getenv("MOEBUS_ENDPOINT");
    return e && *e ? e : "tcp://127.0.0.1:5555";
}

int mb_domain_name_valid(const char *name) {
    size_t n = name ? strlen(name) : 0;
    if (n == 0 || n > MB_DOMAIN_NAME_MAX) return 0;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                 (i > 0 && (c == '-' || c == '_'));
        if (!ok) return 0;
    }
    return 1;
}

void mb_home_domain_dir(const char *home, const char *name, char *out, size_t outsz) {
    snprintf(out, outsz, "%s/domains/%s", home, name);
}

int mb_home_serve_pid(const char *home) {
    char path[4200];
    snprintf(path, sizeof path, "%s/serve.pid", home);
    FILE *f = fopen(path, "r");
    int pid = 0;
    if (!f) return 0;
    int ok = fscanf(f, "%d", &pid) == 1 && pid > 0;
    fclose(f);
    if (!ok || kill(pid, 0) != 0) return 0;
    char cmd[4096] = {0};
    snprintf(path, sizeof path, "/proc/%d/cmdline", pid);
    FILE *c = fopen(path, "r");
    size_t n = c ? fread(cmd, 1, sizeof cmd - 1, c) : 0;
    if (c) fclose(c);
    /* argv is NUL-separated: look for the word "serve" */
    for (size_t i = 0; i < n; i += strlen(cmd + i) + 1)
        if (strcmp(cmd + i, "serve") == 0) return pid;
    return 0;
}

static int s_mkdirs(const char *path) {
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p == '/') {
            *p = 0;
            if (mkdir(buf, 0755) != 0 && errno != EEXIST) return -1;
            *p = '/';
        }
    }
    return (mkdir(buf, 0755) != 0 && errno != EEXIST) ? -1 : 0;
}

static sqlite3 *s_open(const char *home, int create, mb_err_t *err) {
    char path[4096];
    snprintf(path, sizeof path, "%s/catalog.db", home);
    if (create && s_mkdirs(home) != 0) {
        mb_err_set(err, MB_EIO, "cannot create %s: %s", home, strerror(errno));
        return NULL;
    }
    sqlite3 *db = NULL;
    int flags = SQLITE_OPEN_READWRITE | (create ? SQLITE_OPEN_CREATE : 0);
    if (sqlite3_open_v2(path, &db, flags, NULL) != SQLITE_OK) {
        if (!create) {
            sqlite3_close(db);
            return NULL; /* no catalog yet: callers treat as empty */
        }
        mb_err_set(err, MB_EIO, "cannot open %s: %s", path, sqlite3_errmsg(db));
        sqlite3_close(db);
        return NULL;
    }
    sqlite3_busy_timeout(db, 5000);
    if (sqlite3_exec(
            db,
            "PRAGMA journal_mode=WAL;"
            "CREATE TABLE IF NOT EXISTS domains(name TEXT PRIMARY KEY,"
            " embed TEXT NOT NULL, dim INTEGER NOT NULL, created_at INTEGER NOT NULL);"
            /* models the services learn (the router's), whole blobs */
            "CREATE TABLE IF NOT EXISTS models(name TEXT PRIMARY KEY, version TEXT NOT "
            "NULL, data BLOB NOT NULL, created_at INTEGER NOT NULL);"
            "CREATE TABLE IF NOT EXISTS router_labels(query TEXT NOT NULL, domain TEXT "
            "NOT NULL);"
            "CREATE TABLE IF NOT EXISTS settings(key TEXT PRIMARY KEY, value TEXT NOT "
            "NULL);"
            "CREATE TABLE IF NOT EXISTS generators(name TEXT PRIMARY KEY, url TEXT NOT "
            "NULL, model TEXT NOT NULL, api_key_env TEXT NOT NULL, created_at INTEGER "
            "NOT NULL);"
            /* ingest jobs: what was asked (spec) and how far it got (progress) */
            "CREATE TABLE IF NOT EXISTS jobs(id INTEGER PRIMARY KEY, domain TEXT NOT "
            "NULL, spec TEXT NOT NULL, state TEXT NOT NULL, progress TEXT NOT NULL "
            "DEFAULT '{}', started_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);",
            NULL, NULL, NULL) != SQLITE_OK) {
        mb_err_set(err, MB_EIO, "cannot initialise %s: %s", path, sqlite3_errmsg(db));
        sqlite3_close(db);
        return NULL;
    }
    /* Catalogs made before index types existed lack the column. */
    sqlite3_stmt *col = NULL;
    int has = 0;
    sqlite3_prepare_v2(
        db, "SELECT 1 FROM pragma_table_info('domains') WHERE name='index_type'", -1,
        &col, NULL);
    if (col && sqlite3_step(col) == SQLITE_ROW) has = 1;
    sqlite3_finalize(col);
    if (!has)
        sqlite3_exec(
            db, "ALTER TABLE domains ADD COLUMN index_type TEXT NOT NULL DEFAULT 'Flat'",
            NULL, NULL, NULL);
    /* ... and before http experts: */
    static const char *cols[] = {"url", "model", "api_key_env", "state"};
    static const char *defs[] = {"''", "''", "''", "'enabled'"};
    for (size_t c = 0; c < 4; c++) {
        char sql[160];
        snprintf(sql, sizeof sql,
                 "SELECT 1 FROM pragma_table_info('domains') WHERE name='%s'", cols[c]);
        has = 0;
        sqlite3_prepare_v2(db, sql, -1, &col, NULL);
        if (col && sqlite3_step(col) == SQLITE_ROW) has = 1;
        sqlite3_finalize(col);
        if (has) continue;
        snprintf(sql, sizeof sql,
                 "ALTER TABLE domains ADD COLUMN %s TEXT NOT NULL DEFAULT %s", cols[c],
                 defs[c]);
        sqlite3_exec(db, sql, NULL, NULL, NULL);
    }
    return db;
}

static void s_row(sqlite3_stmt *s, mb_domain_info_t *d) {
    snprintf(d->name, sizeof d->name, "%s", sqlite3_column_text(s, 0));
    snprintf(d->embed, sizeof d->embed, "%s", sqlite3_column_text(s, 1));
    d->dim = sqlite3_column_int(s, 2);
    snprintf(d->index_type, sizeof d->index_type, "%s", sqlite3_column_text(s, 3));
    snprintf(d->url, sizeof d->url, "%s", sqlite3_column_text(s, 4));
    snprintf(d->model, sizeof d->model, "%s", sqlite3_column_text(s, 5));
    snprintf(d->api_key_env, sizeof d->api_key_env, "%s", sqlite3_column_text(s, 6));
    d->enabled = strcmp((const char *)sqlite3_column_text(s, 7), "disabled") != 0;
    d->created = sqlite3_column_int64(s, 8);
}

#define DOMAIN_COLS                                                                      \
    "name, embed, dim, index_type, url, model, api_key_env, state, created_at"

int mb_catalog_domains(const char *home, mb_domain_info_t **out, size_t *n,
                       mb_err_t *err) {
    *out = NULL;
    *n = 0;
    sqlite3 *db = s_open(home, 0, err);
    if (!db) return 0;
    sqlite3_stmt *s = NULL;
    int rc = 0;
    if (sqlite3_prepare_v2(db, "SELECT " DOMAIN_COLS " FROM domains ORDER BY name", -1,
                           &s, NULL) != SQLITE_OK) {
        rc = mb_err_set(err, MB_EIO, "cannot read catalog: %s", sqlite3_errmsg(db));
        goto cleanup;
    }
    size_t cap = 8;
    *out = calloc(cap, sizeof **out);
    while (sqlite3_step(s) == SQLITE_ROW) {
        if (*n == cap) *out = mb_xrealloc(*out, (cap *= 2) * sizeof **out);
        s_row(s, &(*out)[(*n)++]);
    }
cleanup:
    sqlite3_finalize(s);
    sqlite3_close(db);
    return rc;
}

int mb_catalog_domain_get(const char *home, const char *name, mb_domain_info_t *info,
                          mb_err_t *err) {
    sqlite3 *db = s_open(home, 0, err);
    if (!db)
        return mb_err_set(err, MB_EUNKDOMAIN, "unknown domain '%s' (no catalog in %s)",
                          name, home);
    sqlite3_stmt *s = NULL;
    int rc = MB_EUNKDOMAIN;
    sqlite3_prepare_v2(db, "SELECT " DOMAIN_COLS " FROM domains WHERE name = ?1", -1, &s,
                       NULL);
    sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
    if (sqlite3_step(s) == SQLITE_ROW) {
        s_row(s, info);
        rc = 0;
    } else {
        mb_err_set(err, MB_EUNKDOMAIN, "unknown domain '%s'", name);
    }
    sqlite3_finalize(s);
    sqlite3_close(db);
    return rc;
}

int mb_catalog_domain_set_expert(const char *home, const mb_domain_info_t *info,
                                 mb_err_t *err) {
    sqlite3 *db = s_open(home, 0, err);
    if (!db) return mb_err_set(err, MB_EUNKDOMAIN, "unknown domain '%s'", info->name);
    sqlite3_stmt *s = NULL;
    int rc = 0;
    sqlite3_prepare_v2(db,
                       "UPDATE domains SET embed = ?2, dim = ?3, url = ?4, model = ?5, "
                       "api_key_env = ?6 WHERE name = ?1",
                       -1, &s, NULL);
    sqlite3_bind_text(s, 1, info->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, info->embed, -1, SQLITE_STATIC);
    sqlite3_bind_int(s, 3, info->dim);
    sqlite3_bind_text(s, 4, info->url, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 5, info->model, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 6, info->api_key_env, -1, SQLITE_STATIC);
    if (sqlite3_step(s) != SQLITE_DONE)
        rc = mb_err_set(err, MB_EIO, "cannot update domain: %s", sqlite3_errmsg(db));
    else if (sqlite3_changes(db) == 0)
        rc = mb_err_set(err, MB_EUNKDOMAIN, "unknown domain '%s'", info->name);
    sqlite3_finalize(s);
    sqlite3_close(db);
    return rc;
}

int mb_catalog_domain_add(const char *home, const mb_domain_info_t *info, mb_err_t *err) {
    const char *name = info->name;
    if (!mb_domain_name_valid(name))
        return mb_err_set(
            err, MB_EBADREQ,
            "invalid domain name '%s': use 1-64 of a-z 0-9 - _ (starting with a "
            "letter or digit)",
            name);
    sqlite3 *db = s_open(home, 1, err);
    if (!db) return err ? err->code : MB_EIO;
    char dir[4096];
    mb_home_domain_dir(home, name, dir, sizeof dir);
    sqlite3_stmt *s = NULL;
    int rc = 0;
    sqlite3_prepare_v2(
        db,
        "INSERT INTO domains(name, embed, dim, created_at, index_type, url, "
        "model, api_key_env) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        -1, &s, NULL);
    sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, info->embed, -1, SQLITE_STATIC);
    sqlite3_bind_int(s, 3, info->dim);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    sqlite3_bind_int64(s, 4, (sqlite3_int64)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
    sqlite3_bind_text(s, 5, info->index_type, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 6, info->url, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 7, info->model, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 8, info->api_key_env, -1, SQLITE_STATIC);
    int step = sqlite3_step(s);
    if (step == SQLITE_CONSTRAINT)
        rc = mb_err_set(err, MB_EEXISTS, "domain '%s' already exists", name);
    else if (step != SQLITE_DONE)
        rc = mb_err_set(err, MB_EIO, "cannot add domain: %s", sqlite3_errmsg(db));
    else if (s_mkdirs(dir) != 0)
        rc = mb_err_set(err, MB_EIO, "cannot create %s: %s", dir, strerror(errno));
    sqlite3_finalize(s);
    sqlite3_close(db);
    return rc;
}

/* One UPDATE or DELETE of the row named ?1 (?2: an optional text); no such
 * row is `notfound` with "unknown WHAT 'NAME'". */
static int s_write_named(const char *home, const char *sql, const char *name,
                         const char *arg2, int notfound, const char *what,
                         mb_err_t *err) {
    sqlite3 *db = s_open(home, 0, err);
    if (!db) return mb_err_set(err, notfound, "unknown %s '%s'", what, name);
    sqlite3_stmt *s = NULL;
    int rc = 0;
    sqlite3_prepare_v2(db, sql, -1, &s, NULL);
    sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
    if (arg2) sqlite3_bind_text(s, 2, arg2, -1, SQLITE_STATIC);
    if (sqlite3_step(s) != SQLITE_DONE)
        rc = mb_err_set(err, MB_EIO, "cannot change %s '%s': %s", what, name,
                        sqlite3_errmsg(db));
    else if (sqlite3_changes(db) == 0)
        rc = mb_err_set(err, notfound, "unknown %s '%s'", what, name);
    sqlite3_finalize(s);
    sqlite3_close(db);
    return rc;
}

int mb_catalog_domain_set_enabled(const char *home, const char *name, int enabled,
                                  mb_err_t *err) {
    return s_write_named(home, "UPDATE domains SET state = ?2 WHERE name = ?1", name,
                         enabled ? "enabled" : "disabled", MB_EUNKDOMAIN, "domain", err);
}

int mb_catalog_domain_remove(const char *home, const char *name, mb_err_t *err) {
    return s_write_named(home, "DELETE FROM domains WHERE name = ?1", name, NULL,
                         MB_EUNKDOMAIN, "domain", err);
}

/* ---- watching the catalog ---- */

struct mb_catalog_watch_t {
    char home[4096];
    sqlite3 *db;
    sqlite3_stmt *st; /* PRAGMA data_version, prepared once */
    int64_t version;
};

mb_catalog_watch_t *mb_catalog_watch_new(const char *home) {
    mb_catalog_watch_t *self = calloc(1, sizeof *self);
    snprintf(self->home, sizeof self->home, "%s", home);
    self->version = -1;
    return self;
}

void mb_catalog_watch_destroy(mb_catalog_watch_t **self_p) {
    if (!*self_p) return;
    sqlite3_finalize((*self_p)->st);
    sqlite3_close((*self_p)->db);
    free(*self_p);
    *self_p = NULL;
}

int mb_catalog_watch_changed(mb_catalog_watch_t *self) {
    if (!self->db) {
        /* the catalog may not exist yet: try again on the next call */
        self->db = s_open(self->home, 0, NULL);
        if (!self->db) return self->version == -1 ? (self->version = -2, 1) : 0;
        self->version = -1;
    }
    /* data_version moves when another connection commits to the file; it
     * costs a page-cache check, not a read (about 5 µs). */
    int64_t v = -1;
    if (!self->st)
        sqlite3_prepare_v2(self->db, "PRAGMA data_version", -1, &self->st, NULL);
    if (self->st && sqlite3_step(self->st) == SQLITE_ROW)
        v = sqlite3_column_int64(self->st, 0);
    if (self->st) sqlite3_reset(self->st);
    if (v == self->version) return 0;
    self->version = v;
    return 1;
}

/* ---- ingest jobs ---- */

int mb_catalog_job_create(const char *home, const char *domain, const char *spec,
                          int64_t *id, mb_err_t *err) {
    sqlite3 *db = s_open(home, 1, err);
    if (!db) return err ? err->code : MB_EIO;
    sqlite3_stmt *s = NULL;
    int rc = 0;
    sqlite3_prepare_v2(db,
                       "INSERT INTO jobs(domain, spec, state, started_at, updated_at) "
                       "VALUES(?1, ?2, 'running', ?3, ?3)",
                       -1, &s, NULL);
    sqlite3_bind_text(s, 1, domain, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, spec, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 3, (sqlite3_int64)time(NULL));
    if (sqlite3_step(s) != SQLITE_DONE)
        rc = mb_err_set(err, MB_EIO, "cannot record the job: %s", sqlite3_errmsg(db));
    else
        *id = sqlite3_last_insert_rowid(db);
    sqlite3_finalize(s);
    sqlite3_close(db);
    return rc;
}

int mb_catalog_job_update(const char *home, int64_t id, const char *state,
                          const char *progress, mb_err_t *err) {
    sqlite3 *db = s_open(home, 0, err);
    if (!db) return mb_err_set(err, MB_ENOTFOUND, "no catalog in %s", home);
    sqlite3_stmt *s = NULL;
    int rc = 0;
    sqlite3_prepare_v2(db,
                       "UPDATE jobs SET state = coalesce(?2, state), progress = "
                       "coalesce(?3, progress), updated_at = ?4 WHERE id = ?1",
                       -1, &s, NULL);
    sqlite3_bind_int64(s, 1, id);
    sqlite3_bind_text(s, 2, state, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, progress, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 4, (sqlite3_int64)time(NULL));
    if (sqlite3_step(s) != SQLITE_DONE)
        rc = mb_err_set(err, MB_EIO, "cannot update job %lld: %s", (long long)id,
                        sqlite3_errmsg(db));
    else if (sqlite3_changes(db) == 0)
        rc = mb_err_set(err, MB_ENOTFOUND, "no ingest job %lld", (long long)id);
    sqlite3_finalize(s);
    sqlite3_close(db);
    return rc;
}

int mb_catalog_jobs(const char *home, int64_t id, json_t **out, mb_err_t *err) {
    *out = json_array();
    sqlite3 *db = s_open(home, 0, err);
    if (!db) return 0;
    sqlite3_stmt *s = NULL;
    sqlite3_prepare_v2(db,
                       "SELECT id, domain, spec, state, progress, started_at, updated_at "
                       "FROM jobs WHERE ?1 = 0 OR id = ?1 ORDER BY id",
                       -1, &s, NULL);
    sqlite3_bind_int64(s, 1, id);
    while (sqlite3_step(s) == SQLITE_ROW) {
        json_t *spec = json_loads((const char *)sqlite3_column_text(s, 2), 0, NULL);
        json_t *prog = json_loads((const char *)sqlite3_column_text(s, 4), 0, NULL);
        json_array_append_new(
            *out, json_pack("{s:I, s:s, s:o, s:s, s:o, s:I, s:I}", "id",
                            (json_int_t)sqlite3_column_int64(s, 0), "domain",
                            (const char *)sqlite3_column_text(s, 1), "spec",
                            spec ? spec : json_object(), "state",
                            (const char *)sqlite3_column_text(s, 3), "progress",
                            prog ? prog : json_object(), "started_at",
                            (json_int_t)sqlite3_column_int64(s, 5), "updated_at",
                            (json_int_t)sqlite3_column_int64(s, 6)));
    }
    sqlite3_finalize(s);
    sqlite3_close(db);
    if (id && json_array_size(*out) == 0)
        return mb_err_set(err, MB_ENOTFOUND, "no ingest job %lld", (long long)id);
    return 0;
}

/* ---- models ---- */

int mb_catalog_model_put(const char *home, const char *name, const char *version,
                         const void *data, size_t size, mb_err_t *err) {
    sqlite3 *db = s_open(home, 1, err);
    if (!db) return err ? err->code : MB_EIO;
    sqlite3_stmt *s = NULL;
    int rc = 0;
    sqlite3_prepare_v2(db,
                       "INSERT OR REPLACE INTO models(name, version, data, created_at) "
                       "VALUES(?1, ?2, ?3, ?4)",
                       -1, &s, NULL);
    sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, version, -1, SQLITE_STATIC);
    sqlite3_bind_blob64(s, 3, data, (sqlite3_uint64)size, SQLITE_STATIC);
    sqlite3_bind_int64(s, 4, (sqlite3_int64)time(NULL));
    if (sqlite3_step(s) != SQLITE_DONE)
        rc =
            mb_err_set(err, MB_EIO, "cannot save model %s: %s", name, sqlite3_errmsg(db));
    sqlite3_finalize(s);
    sqlite3_close(db);
    return rc;
}

int mb_catalog_model_get(const char *home, const char *name, void **data, size_t *size,
                         mb_err_t *err) {
    *data = NULL;
    *size = 0;
    sqlite3 *db = s_open(home, 0, err);
    if (!db) return mb_err_set(err, MB_ENOTFOUND, "no catalog in %s", home);
    sqlite3_stmt *s = NULL;
    int rc = MB_ENOTFOUND;
    sqlite3_prepare_v2(db, "SELECT data FROM models WHERE name = ?1", -1, &s, NULL);
    sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
    if (sqlite3_step(s) == SQLITE_ROW) {
        *size = (size_t)sqlite3_column_bytes(s, 0);
        *data = malloc(*size ? *size : 1);
        memcpy(*data, sqlite3_column_blob(s, 0), *size);
        rc = 0;
    } else {
        mb_err_set(err, MB_ENOTFOUND, "no model '%s' in the catalog", name);
    }
    sqlite3_finalize(s);
    sqlite3_close(db);
    return rc;
}

/* ---- router labels ---- */

int mb_catalog_labels_set(const char *home, char **queries, char **domains, size_t n,
                          mb_err_t *err) {
    sqlite3 *db = s_open(home, 1, err);
    if (!db) return err ? err->code : MB_EIO;
    int rc = 0;
    sqlite3_stmt *s = NULL;
    sqlite3_exec(db, "BEGIN IMMEDIATE; DELETE FROM router_labels;", NULL, NULL, NULL);
    sqlite3_prepare_v2(db, "INSERT INTO router_labels(query, domain) VALUES(?1, ?2)", -1,
                       &s, NULL);
    for (size_t i = 0; i < n && rc == 0; i++) {
        sqlite3_reset(s);
        sqlite3_bind_text(s, 1, queries[i], -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 2, domains[i], -1, SQLITE_STATIC);
        if (sqlite3_step(s) != SQLITE_DONE)
            rc = mb_err_set(err, MB_EIO, "cannot store labels: %s", sqlite3_errmsg(db));
    }
    sqlite3_finalize(s);
    sqlite3_exec(db, rc == 0 ? "COMMIT" : "ROLLBACK", NULL, NULL, NULL);
    sqlite3_close(db);
    return rc;
}

int mb_catalog_labels_get(const char *home, char ***queries, char ***domains, size_t *n,
                          mb_err_t *err) {
    *queries = *domains = NULL;
    *n = 0;
    sqlite3 *db = s_open(home, 0, err);
    if (!db) return 0;
    sqlite3_stmt *s = NULL;
    sqlite3_prepare_v2(db, "SELECT query, domain FROM router_labels", -1, &s, NULL);
    size_t cap = 0;
    while (s && sqlite3_step(s) == SQLITE_ROW) {
        if (*n == cap) {
            cap = cap ? cap * 2 : 64;
            *queries = mb_xrealloc(*queries, cap * sizeof **queries);
            *domains = mb_xrealloc(*domains, cap * sizeof **domains);
        }
        (*queries)[*n] = strdup((const char *)sqlite3_column_text(s, 0));
        (*domains)[*n] = strdup((const char *)sqlite3_column_text(s, 1));
        (*n)++;
    }
    sqlite3_finalize(s);
    sqlite3_close(db);
    return 0;
}

/* ---- settings ---- */

int mb_catalog_setting_get(const char *home, const char *key, char *out, size_t outsz) {
    sqlite3 *db = s_open(home, 0, NULL);
    if (!db) return MB_ENOTFOUND;
    sqlite3_stmt *s = NULL;
    int rc = MB_ENOTFOUND;
    sqlite3_prepare_v2(db, "SELECT value FROM settings WHERE key = ?1", -1, &s, NULL);
    sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
    if (s && sqlite3_step(s) == SQLITE_ROW) {
        snprintf(out, outsz, "%s", sqlite3_column_text(s, 0));
        rc = 0;
    }
    sqlite3_finalize(s);
    sqlite3_close(db);
    return rc;
}

int mb_catalog_setting_set(const char *home, const char *key, const char *value,
                           mb_err_t *err) {
    sqlite3 *db = s_open(home, 1, err);
    if (!db) return err ? err->code : MB_EIO;
    sqlite3_stmt *s = NULL;
    int rc = 0;
    sqlite3_prepare_v2(db,
                       value
                           ? "INSERT OR REPLACE INTO settings(key, value) VALUES(?1, ?2)"
                           : "DELETE FROM settings WHERE key = ?1",
                       -1, &s, NULL);
    sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
    if (value) sqlite3_bind_text(s, 2, value, -1, SQLITE_STATIC);
    if (sqlite3_step(s) != SQLITE_DONE)
        rc = mb_err_set(err, MB_EIO, "cannot store setting: %s", sqlite3_errmsg(db));
    sqlite3_finalize(s);
    sqlite3_close(db);
    return rc;
}

/* ---- generators ---- */

int mb_catalog_generators(const char *home, mb_generator_info_t **out, size_t *n,
                          mb_err_t *err) {
    *out = NULL;
    *n = 0;
    sqlite3 *db = s_open(home, 0, err);
    if (!db) return 0;
    sqlite3_stmt *s = NULL;
    sqlite3_prepare_v2(
        db, "SELECT name, url, model, api_key_env FROM generators ORDER BY name", -1, &s,
        NULL);
    size_t cap = 0;
    while (s && sqlite3_step(s) == SQLITE_ROW) {
        if (*n == cap) *out = mb_xrealloc(*out, (cap = cap ? cap * 2 : 4) * sizeof **out);
        mb_generator_info_t *g = &(*out)[(*n)++];
        snprintf(g->name, sizeof g->name, "%s", sqlite3_column_text(s, 0));
        snprintf(g->url, sizeof g->url, "%s", sqlite3_column_text(s, 1));
        snprintf(g->model, sizeof g->model, "%s", sqlite3_column_text(s, 2));
        snprintf(g->api_key_env, sizeof g->api_key_env, "%s", sqlite3_column_text(s, 3));
    }
    sqlite3_finalize(s);
    sqlite3_close(db);
    return 0;
}

int mb_catalog_generator_add(const char *home, const mb_generator_info_t *g,
                             mb_err_t *err) {
    if (!mb_domain_name_valid(g->name))
        return mb_err_set(err, MB_EBADREQ,
                          "invalid generator name '%s': use 1-64 of a-z 0-9 - _",
                          g->name);
    sqlite3 *db = s_open(home, 1, err);
    if (!db) return err ? err->code : MB_EIO;
    sqlite3_stmt *s = NULL;
    int rc = 0;
    sqlite3_prepare_v2(
        db,
        "INSERT INTO generators(name, url, model, api_key_env, created_at) "
        "VALUES(?1, ?2, ?3, ?4, ?5)",
        -1, &s, NULL);
    sqlite3_bind_text(s, 1, g->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, g->url, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, g->model, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 4, g->api_key_env, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 5, (sqlite3_int64)time(NULL));
    int step = sqlite3_step(s);
    if (step == SQLITE_CONSTRAINT)
        rc = mb_err_set(err, MB_EEXISTS, "generator '%s' already exists", g->name);
    else if (step != SQLITE_DONE)
        rc = mb_err_set(err, MB_EIO, "cannot add generator: %s", sqlite3_errmsg(db));
    sqlite3_finalize(s);
    sqlite3_close(db);
    return rc;
}

int mb_catalog_generator_remove(const char *home, const char *name, mb_err_t *err) {
    return s_write_named(home, "DELETE FROM generators WHERE name = ?1", name, NULL,
                         MB_ENOTFOUND, "generator", err);
}
