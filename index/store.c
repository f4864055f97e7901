/* store.c — SQLite store. Statements are prepared once; every write happens
 * inside a transaction the caller opens, so a batch is all-or-nothing. */
#include "store.h"
#include "mb_mem.h"

#include <ctype.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

enum {
    ST_DOC_FIND,
    ST_DOC_CHUNKS,
    ST_DOC_DELETE,
    ST_DOC_INSERT,
    ST_CHUNK_INSERT,
    ST_CHUNK_GET,
    ST_META_GET,
    ST_META_SET,
    ST_COUNT
};

/* Meta columns of a chunk lookup: the document's title and the chunk's
 * offsets, which ingest keeps in the document's meta (json_valid: meta
 * written by other clients may not be JSON). */
#define MB_CHUNK_META_COLS                                                               \
    "CASE WHEN json_valid(d.meta) THEN json_extract(d.meta, '$.title') END, "            \
    "CASE WHEN json_valid(d.meta) THEN json_extract(d.meta, '$.offsets[' || c.pos || "   \
    "']') END"

static const char *s_sql[ST_COUNT] = {
    "SELECT id, hash FROM documents WHERE doc_id = ?1",
    "SELECT id FROM chunks WHERE doc = ?1 ORDER BY id",
    "DELETE FROM documents WHERE id = ?1",
    "INSERT INTO documents(doc_id, source, hash, meta, added_at) VALUES(?1, ?2, ?3, ?4, "
    "?5)",
    "INSERT INTO chunks(id, doc, pos, text, vector, expert) VALUES(?6, ?1, ?2, ?3, ?4, "
    "?5)",
    "SELECT d.doc_id, c.pos, c.text, d.source, " MB_CHUNK_META_COLS
    " FROM chunks c JOIN documents d ON d.id = "
    "c.doc "
    "WHERE c.id = ?1",
    "SELECT value FROM meta WHERE key = ?1",
    "INSERT INTO meta(key, value) VALUES(?1, ?2) "
    "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
};

struct mb_store_t {
    sqlite3 *db;
    sqlite3_stmt *st[ST_COUNT];
    int dim;
    /* Last chunk id handed out in the open transaction (-1: not loaded).
     * Chunk ids are never reused, not even the largest after a delete
     * (which SQLite's rowid would reuse): an index that keeps tombstones
     * (HNSW) would otherwise map a deleted chunk's vector to a new chunk. */
    int64_t seq;
};

static int s_db_err(mb_store_t *self, mb_err_t *err, const char *what) {
    return mb_err_set(err, MB_EIO, "%s: %s", what, sqlite3_errmsg(self->db));
}

static const char *s_schema =
    "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS documents("
    "  id INTEGER PRIMARY KEY, doc_id TEXT NOT NULL UNIQUE, source TEXT, hash TEXT,"
    "  meta TEXT, added_at INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS chunks("
    "  id INTEGER PRIMARY KEY,"
    "  doc INTEGER NOT NULL REFERENCES documents(id) ON DELETE CASCADE,"
    "  pos INTEGER NOT NULL, text TEXT NOT NULL, vector BLOB NOT NULL, expert TEXT NOT "
    "NULL);"
    "CREATE INDEX IF NOT EXISTS chunks_doc ON chunks(doc);"
    /* Vectors of a re-embed in progress (the next expert's), swapped into
     * chunks in one transaction when complete: chunks never mix experts. */
    "CREATE TABLE IF NOT EXISTS pending(id INTEGER PRIMARY KEY, vector BLOB NOT NULL);"
    /* A deleted chunk's pending vector goes with it: its id may be handed out
     * again after a restart, and must not inherit that vector. */
    "CREATE TRIGGER IF NOT EXISTS chunks_pending_del AFTER DELETE ON chunks BEGIN "
    "DELETE FROM pending WHERE id = old.id; END;"
    /* Chunks stored before their domain's expert existed: a partial index
     * keeps "how many lack a vector" O(those) instead of a scan of every
     * vector blob (79 ms at 131k chunks, asked every few seconds). */
    "CREATE INDEX IF NOT EXISTS chunks_novec ON chunks(id) WHERE length(vector) = 0;"
    /* Lexical index over chunk text. External content (no second copy of the
     * text); triggers keep it in the same transaction as the chunk rows, so
     * a crash can never leave the two out of step. Tokenizer: FTS5's own
     * porter stemmer over unicode61 (case folding, diacritics removed). It
     * is built in, so the index stays readable by any SQLite, and lexical
     * scoring only needs queries and documents to share one tokenizer. */
    "CREATE VIRTUAL TABLE IF NOT EXISTS chunks_fts USING fts5(text, content='chunks',"
    "  content_rowid='id', tokenize='porter unicode61 remove_diacritics 2');"
    "CREATE TRIGGER IF NOT EXISTS chunks_ai AFTER INSERT ON chunks BEGIN"
    "  INSERT INTO chunks_fts(rowid, text) VALUES (new.id, new.text); END;"
    "CREATE TRIGGER IF NOT EXISTS chunks_ad AFTER DELETE ON chunks BEGIN"
    "  INSERT INTO chunks_fts(chunks_fts, rowid, text) VALUES ('delete', old.id, "
    "old.text);"
    "  END;";

mb_store_t *mb_store_open(const char *path, int dim, mb_err_t *err) {
    mb_store_t *self = calloc(1, sizeof *self);
    if (sqlite3_open_v2(path, &self->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
                        NULL) != SQLITE_OK) {
        mb_err_set(err, MB_EIO, "cannot open %s: %s", path, sqlite3_errmsg(self->db));
        goto fail;
    }
    sqlite3_busy_timeout(self->db, 5000);
    /* WAL: readers never block the writer; synchronous=NORMAL keeps every
     * committed transaction across a process crash (SIGKILL), which is the
     * failure the service must survive; power loss may drop the last ones. */
    if (sqlite3_exec(self->db,
                     "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
                     "PRAGMA foreign_keys=ON;",
                     NULL, NULL, NULL) != SQLITE_OK) {
        s_db_err(self, err, "cannot configure store");
        goto fail;
    }
    sqlite3_stmt *uv = NULL;
    sqlite3_prepare_v2(self->db, "PRAGMA user_version", -1, &uv, NULL);
    int version = (uv && sqlite3_step(uv) == SQLITE_ROW) ? sqlite3_column_int(uv, 0) : 0;
    sqlite3_finalize(uv);
    if (version > MB_STORE_SCHEMA_VERSION) {
        mb_err_set(
            err, MB_EVERSION,
            "%s has schema version %d; this moebus reads up to %d (upgrade moebus)", path,
            version, MB_STORE_SCHEMA_VERSION);
        goto fail;
    }
    /* Create or upgrade in one transaction. A version 1 store gets its FTS5
     * table filled from the existing chunks. */
    char *upgrade = sqlite3_mprintf(
        "BEGIN IMMEDIATE; %s %s PRAGMA user_version=%d; COMMIT;", s_schema,
        version == 1 ? "INSERT INTO chunks_fts(chunks_fts) VALUES('rebuild');" : "",
        MB_STORE_SCHEMA_VERSION);
    int urc = sqlite3_exec(self->db, upgrade, NULL, NULL, NULL);
    sqlite3_free(upgrade);
    if (urc != SQLITE_OK) {
        s_db_err(self, err, "cannot create or upgrade schema");
        sqlite3_exec(self->db, "ROLLBACK", NULL, NULL, NULL);
        goto fail;
    }
    for (int i = 0; i < ST_COUNT; i++)
        if (sqlite3_prepare_v3(self->db, s_sql[i], -1, SQLITE_PREPARE_PERSISTENT,
                               &self->st[i], NULL) != SQLITE_OK) {
            s_db_err(self, err, "cannot prepare statement");
            goto fail;
        }
    int64_t have = mb_store_meta_int(self, "dim", 0);
    if (have == 0) {
        if (dim <= 0) {
            mb_err_set(err, MB_EBADREQ, "new store %s needs a dimension", path);
            goto fail;
        }
        if (mb_store_meta_set_int(self, "dim", dim, err) != 0) goto fail;
        have = dim;
    } else if (dim > 0 && have != dim) {
        mb_err_set(err, MB_EBADREQ, "store %s has dimension %lld, not %d", path,
                   (long long)have, dim);
        goto fail;
    }
    self->dim = (int)have;
    return self;
fail:
    mb_store_close(&self);
    return NULL;
}

void mb_store_close(mb_store_t **self_p) {
    if (!self_p || !*self_p) return;
    mb_store_t *self = *self_p;
    for (int i = 0; i < ST_COUNT; i++)
        sqlite3_finalize(self->st[i]);
    sqlite3_close(self->db);
    free(self);
    *self_p = NULL;
}

int mb_store_dim(const mb_store_t *self) {
    return self->dim;
}

int64_t mb_store_meta_int(mb_store_t *self, const char *key, int64_t dflt) {
    sqlite3_stmt *s = self->st[ST_META_GET];
    sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
    int64_t v = dflt;
    if (sqlite3_step(s) == SQLITE_ROW) v = sqlite3_column_int64(s, 0);
    sqlite3_reset(s);
    return v;
}

int mb_store_meta_set_int(mb_store_t *self, const char *key, int64_t v, mb_err_t *err) {
    sqlite3_stmt *s = self->st[ST_META_SET];
    sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, v);
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? 0 : s_db_err(self, err, "cannot write meta");
}

void mb_store_meta_text(mb_store_t *self, const char *key, char *buf, size_t bufsz) {
    sqlite3_stmt *s = self->st[ST_META_GET];
    sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
    buf[0] = 0;
    if (sqlite3_step(s) == SQLITE_ROW && sqlite3_column_text(s, 0))
        snprintf(buf, bufsz, "%s", sqlite3_column_text(s, 0));
    sqlite3_reset(s);
}

int mb_store_meta_set_text(mb_store_t *self, const char *key, const char *v,
                           mb_err_t *err) {
    sqlite3_stmt *s = self->st[ST_META_SET];
    sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, v, -1, SQLITE_STATIC);
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? 0 : s_db_err(self, err, "cannot write meta");
}

int64_t mb_store_disk_bytes(mb_store_t *self) {
    const char *path = sqlite3_db_filename(self->db, "main");
    int64_t total = 0;
    struct stat st;
    char wal[4200];
    if (path && stat(path, &st) == 0) total += st.st_size;
    snprintf(wal, sizeof wal, "%s-wal", path ? path : "");
    if (path && stat(wal, &st) == 0) total += st.st_size;
    return total;
}

int mb_store_begin(mb_store_t *self, mb_err_t *err) {
    self->seq = -1; /* reload inside the transaction */
    return sqlite3_exec(self->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK
               ? 0
               : s_db_err(self, err, "cannot begin transaction");
}

int mb_store_commit(mb_store_t *self, mb_err_t *err) {
    if (self->seq >= 0 && mb_store_meta_set_int(self, "chunk_seq", self->seq, err) != 0)
        return err ? err->code : MB_EIO;
    self->seq = -1;
    return sqlite3_exec(self->db, "COMMIT", NULL, NULL, NULL) == SQLITE_OK
               ? 0
               : s_db_err(self, err, "cannot commit");
}

void mb_store_read_begin(mb_store_t *self) {
    sqlite3_exec(self->db, "BEGIN", NULL, NULL, NULL);
}

void mb_store_read_end(mb_store_t *self) {
    sqlite3_exec(self->db, "COMMIT", NULL, NULL, NULL);
}

void mb_store_rollback(mb_store_t *self) {
    self->seq = -1;
    sqlite3_exec(self->db, "ROLLBACK", NULL, NULL, NULL);
}

int mb_store_doc_find(mb_store_t *self, const char *doc_id, int64_t *row, char *hash,
                      mb_err_t *err) {
    sqlite3_stmt *s = self->st[ST_DOC_FIND];
    sqlite3_bind_text(s, 1, doc_id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(s), found = 0;
    if (rc == SQLITE_ROW) {
        found = 1;
        *row = sqlite3_column_int64(s, 0);
        const char *h = (const char *)sqlite3_column_text(s, 1);
        snprintf(hash, 80, "%s", h ? h : "");
    } else if (rc != SQLITE_DONE) {
        found = s_db_err(self, err, "cannot look up document");
    }
    sqlite3_reset(s);
    return found;
}

int mb_store_doc_chunks(mb_store_t *self, int64_t row, int64_t **ids, size_t *n,
                        mb_err_t *err) {
    sqlite3_stmt *s = self->st[ST_DOC_CHUNKS];
    sqlite3_bind_int64(s, 1, row);
    size_t cap = 16;
    *ids = malloc(cap * sizeof **ids);
    *n = 0;
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (*n == cap) *ids = mb_xrealloc(*ids, (cap *= 2) * sizeof **ids);
        (*ids)[(*n)++] = sqlite3_column_int64(s, 0);
    }
    sqlite3_reset(s);
    if (rc != SQLITE_DONE) {
        free(*ids);
        *ids = NULL;
        return s_db_err(self, err, "cannot list chunks");
    }
    return 0;
}

int mb_store_doc_delete(mb_store_t *self, int64_t row, mb_err_t *err) {
    sqlite3_stmt *s = self->st[ST_DOC_DELETE];
    sqlite3_bind_int64(s, 1, row);
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? 0 : s_db_err(self, err, "cannot delete document");
}

int mb_store_doc_insert(mb_store_t *self, const char *doc_id, const char *source,
                        const char *hash, const char *meta, int64_t *row, mb_err_t *err) {
    sqlite3_stmt *s = self->st[ST_DOC_INSERT];
    sqlite3_bind_text(s, 1, doc_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, source, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, hash, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 4, meta, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 5, (int64_t)time(NULL));
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    if (rc != SQLITE_DONE) return s_db_err(self, err, "cannot insert document");
    *row = sqlite3_last_insert_rowid(self->db);
    return 0;
}

int mb_store_chunk_insert(mb_store_t *self, int64_t doc_row, int pos, const char *text,
                          const float *vec, const char *expert, int64_t *id,
                          mb_err_t *err) {
    sqlite3_stmt *s = self->st[ST_CHUNK_INSERT];
    sqlite3_bind_int64(s, 1, doc_row);
    sqlite3_bind_int(s, 2, pos);
    sqlite3_bind_text(s, 3, text, -1, SQLITE_STATIC);
    /* no vector yet (expert not fitted): an empty blob, skipped by scans */
    if (vec)
        sqlite3_bind_blob(s, 4, vec, self->dim * (int)sizeof(float), SQLITE_STATIC);
    else
        sqlite3_bind_zeroblob(s, 4, 0);
    sqlite3_bind_text(s, 5, vec && expert ? expert : "", -1, SQLITE_STATIC);
    if (self->seq < 0) {
        int64_t maxid = 0;
        sqlite3_stmt *m = NULL;
        if (sqlite3_prepare_v2(self->db, "SELECT coalesce(max(id), 0) FROM chunks", -1,
                               &m, NULL) == SQLITE_OK &&
            sqlite3_step(m) == SQLITE_ROW)
            maxid = sqlite3_column_int64(m, 0);
        sqlite3_finalize(m);
        int64_t kept = mb_store_meta_int(self, "chunk_seq", 0);
        self->seq = kept > maxid ? kept : maxid;
    }
    sqlite3_bind_int64(s, 6, self->seq + 1);
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    if (rc != SQLITE_DONE) return s_db_err(self, err, "cannot insert chunk");
    *id = ++self->seq;
    return 0;
}

/* {doc_id, chunk, text, source, title?, offsets?} of a row of
 * "doc_id, pos, text, source, MB_CHUNK_META_COLS". */
static json_t *s_chunk_row(sqlite3_stmt *s) {
    const char *src = (const char *)sqlite3_column_text(s, 3);
    json_t *out = json_pack("{s:s, s:i, s:s, s:s}", "doc_id", sqlite3_column_text(s, 0),
                            "chunk", sqlite3_column_int(s, 1), "text",
                            sqlite3_column_text(s, 2), "source", src ? src : "");
    const char *title = (const char *)sqlite3_column_text(s, 4);
    if (title) json_object_set_new(out, "title", json_string(title));
    const char *offs = (const char *)sqlite3_column_text(s, 5);
    json_t *o = offs ? json_loads(offs, 0, NULL) : NULL;
    if (json_is_array(o))
        json_object_set_new(out, "offsets", o);
    else
        json_decref(o);
    return out;
}

json_t *mb_store_chunk_json(mb_store_t *self, int64_t id) {
    sqlite3_stmt *s = self->st[ST_CHUNK_GET];
    sqlite3_bind_int64(s, 1, id);
    json_t *out = NULL;
    if (sqlite3_step(s) == SQLITE_ROW) out = s_chunk_row(s);
    sqlite3_reset(s);
    return out;
}

/* SQL condition for a filter over documents `d`, with parameters numbered
 * from ?100 (bound by s_filter_bind). */
static char *s_filter_sql(const mb_filter_t *f) {
    char *sql = sqlite3_mprintf("%s", "");
    if (!f) return sql;
    if (f->doc_prefix) {
        char *n = sqlite3_mprintf("%s AND substr(d.doc_id, 1, length(?100)) = ?100", sql);
        sqlite3_free(sql);
        sql = n;
    }
    if (f->source_prefix) {
        char *n = sqlite3_mprintf("%s AND substr(d.source, 1, length(?101)) = ?101", sql);
        sqlite3_free(sql);
        sql = n;
    }
    const char *key;
    json_t *v;
    int p = 102;
    json_object_foreach((json_t *)f->meta, key, v) {
        (void)key;
        (void)v;
        char *n =
            sqlite3_mprintf("%s AND json_extract(d.meta, ?%d) IS ?%d", sql, p, p + 1);
        sqlite3_free(sql);
        sql = n;
        p += 2;
    }
    return sql;
}

static void s_filter_bind(sqlite3_stmt *s, const mb_filter_t *f) {
    if (!f) return;
    if (f->doc_prefix) sqlite3_bind_text(s, 100, f->doc_prefix, -1, SQLITE_TRANSIENT);
    if (f->source_prefix)
        sqlite3_bind_text(s, 101, f->source_prefix, -1, SQLITE_TRANSIENT);
    const char *key;
    json_t *v;
    int p = 102;
    json_object_foreach((json_t *)f->meta, key, v) {
        /* $."key" with quotes doubled: any key is a single path step */
        char *path = sqlite3_mprintf("$.\"%w\"", key);
        sqlite3_bind_text(s, p, path, -1, SQLITE_TRANSIENT);
        sqlite3_free(path);
        if (json_is_string(v))
            sqlite3_bind_text(s, p + 1, json_string_value(v), -1, SQLITE_TRANSIENT);
        else if (json_is_integer(v))
            sqlite3_bind_int64(s, p + 1, json_integer_value(v));
        else if (json_is_real(v))
            sqlite3_bind_double(s, p + 1, json_real_value(v));
        else if (json_is_boolean(v))
            sqlite3_bind_int(s, p + 1, json_is_true(v)); /* json_extract gives 1/0 */
        p += 2;
    }
}

struct mb_lookup_t {
    sqlite3_stmt *st;
    mb_store_t *plain; /* no filter: the store's persistent statement serves */
};

mb_lookup_t *mb_store_lookup_new(mb_store_t *self, const mb_filter_t *filter,
                                 mb_err_t *err) {
    if (!filter) {
        /* the common case: nothing to prepare per search */
        mb_lookup_t *lk = calloc(1, sizeof *lk);
        lk->plain = self;
        return lk;
    }
    char *cond = s_filter_sql(filter);
    char *sql = sqlite3_mprintf(
        "SELECT d.doc_id, c.pos, c.text, d.source, " MB_CHUNK_META_COLS " FROM chunks c "
        "JOIN documents d ON d.id = c.doc "
        "WHERE c.id = ?1%s",
        cond);
    sqlite3_free(cond);
    mb_lookup_t *lk = calloc(1, sizeof *lk);
    if (sqlite3_prepare_v2(self->db, sql, -1, &lk->st, NULL) != SQLITE_OK) {
        s_db_err(self, err, "cannot prepare filtered lookup");
        sqlite3_free(sql);
        free(lk);
        return NULL;
    }
    sqlite3_free(sql);
    s_filter_bind(lk->st, filter);
    return lk;
}

json_t *mb_store_lookup(mb_lookup_t *self, int64_t id) {
    if (self->plain) return mb_store_chunk_json(self->plain, id);
    sqlite3_bind_int64(self->st, 1, id);
    json_t *out = NULL;
    if (sqlite3_step(self->st) == SQLITE_ROW) out = s_chunk_row(self->st);
    sqlite3_reset(self->st); /* keeps the filter bindings */
    return out;
}

void mb_store_lookup_destroy(mb_lookup_t **self_p) {
    if (!self_p || !*self_p) return;
    if ((*self_p)->st) sqlite3_finalize((*self_p)->st);
    free(*self_p);
    *self_p = NULL;
}

static int s_each_vector(mb_store_t *self, const char *sql, mb_store_vec_fn *fn,
                         void *arg, mb_err_t *err) {
    enum { BATCH = 8192 };
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(self->db, sql, -1, &s, NULL) != SQLITE_OK)
        return s_db_err(self, err, "cannot scan vectors");
    int64_t *ids = malloc(BATCH * sizeof *ids);
    float *vecs = malloc((size_t)BATCH * (size_t)self->dim * sizeof *vecs);
    size_t n = 0;
    int rc = 0, step;
    while ((step = sqlite3_step(s)) == SQLITE_ROW) {
        if (sqlite3_column_bytes(s, 1) != self->dim * (int)sizeof(float)) {
            rc = mb_err_set(err, MB_EIO, "chunk %lld has a vector of the wrong size",
                            (long long)sqlite3_column_int64(s, 0));
            break;
        }
        ids[n] = sqlite3_column_int64(s, 0);
        memcpy(vecs + n * (size_t)self->dim, sqlite3_column_blob(s, 1),
               (size_t)self->dim * sizeof(float));
        if (++n == BATCH) {
            if ((rc = fn(arg, n, ids, vecs, err)) != 0) break;
            n = 0;
        }
    }
    if (rc == 0 && step != SQLITE_DONE) rc = s_db_err(self, err, "cannot scan vectors");
    if (rc == 0 && n > 0) rc = fn(arg, n, ids, vecs, err);
    sqlite3_finalize(s);
    free(ids);
    free(vecs);
    return rc;
}

/* Builds an FTS5 MATCH expression: every word of the query as a quoted
 * string, OR-ed. Words are runs of letters/digits (UTF-8 bytes >= 0x80 count
 * as letters, the tokenizer sorts them out), so quotes and operators in the
 * input cannot reach the FTS5 parser. NULL when there is no word. */
static char *s_match_expr(const char *q) {
    size_t len = strlen(q);
    char *out = malloc(len * 3 + 16), *o = out;
    int words = 0;
    for (size_t i = 0; i < len;) {
        unsigned char c = (unsigned char)q[i];
        if (!(isalnum(c) || c >= 0x80)) {
            i++;
            continue;
        }
        size_t j = i;
        while (j < len && (isalnum((unsigned char)q[j]) || (unsigned char)q[j] >= 0x80))
            j++;
        if (words++) o += sprintf(o, " OR ");
        *o++ = '"';
        memcpy(o, q + i, j - i);
        o += j - i;
        *o++ = '"';
        i = j;
    }
    *o = 0;
    if (!words) {
        free(out);
        return NULL;
    }
    return out;
}

int mb_store_lexical(mb_store_t *self, const char *query, const mb_filter_t *filter,
                     int k, int64_t *ids, double *scores, int *n, mb_err_t *err) {
    *n = 0;
    char *expr = s_match_expr(query);
    if (!expr) return 0;
    sqlite3_stmt *s = NULL;
    int rc = 0;
    /* bm25() is lower-is-better; negate so every channel is higher-is-better.
     * Filters join the documents, so they are exact, not post-filtered. */
    char *cond = s_filter_sql(filter);
    char *sql = sqlite3_mprintf(
        filter ? "SELECT f.rowid, -bm25(chunks_fts) FROM chunks_fts f JOIN chunks c ON "
                 "c.id = "
                 "f.rowid JOIN documents d ON d.id = c.doc WHERE chunks_fts MATCH ?1%s "
                 "ORDER BY bm25(chunks_fts) LIMIT ?2"
               : "SELECT rowid, -bm25(chunks_fts) FROM chunks_fts WHERE chunks_fts "
                 "MATCH ?1%s ORDER BY bm25(chunks_fts) LIMIT ?2",
        cond);
    sqlite3_free(cond);
    int prc = sqlite3_prepare_v2(self->db, sql, -1, &s, NULL);
    sqlite3_free(sql);
    if (prc != SQLITE_OK) {
        rc = s_db_err(self, err, "cannot prepare lexical search");
        goto cleanup;
    }
    s_filter_bind(s, filter);
    sqlite3_bind_text(s, 1, expr, -1, SQLITE_STATIC);
    sqlite3_bind_int(s, 2, k);
    int step;
    while ((step = sqlite3_step(s)) == SQLITE_ROW && *n < k) {
        ids[*n] = sqlite3_column_int64(s, 0);
        scores[*n] = sqlite3_column_double(s, 1);
        (*n)++;
    }
    if (step != SQLITE_DONE && step != SQLITE_ROW)
        rc = s_db_err(self, err, "lexical search");
cleanup:
    sqlite3_finalize(s);
    free(expr);
    return rc;
}

static int64_t s_count(mb_store_t *self, const char *sql) {
    sqlite3_stmt *s = NULL;
    int64_t n = -1;
    if (sqlite3_prepare_v2(self->db, sql, -1, &s, NULL) == SQLITE_OK &&
        sqlite3_step(s) == SQLITE_ROW)
        n = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    return n;
}

int64_t mb_store_count_docs(mb_store_t *self) {
    return s_count(self, "SELECT count(*) FROM documents");
}

int64_t mb_store_count_chunks(mb_store_t *self) {
    return s_count(self, "SELECT count(*) FROM chunks");
}

int mb_store_each_vector(mb_store_t *self, mb_store_vec_fn *fn, void *arg,
                         mb_err_t *err) {
    return s_each_vector(
        self, "SELECT id, vector FROM chunks WHERE length(vector) > 0 ORDER BY id", fn,
        arg, err);
}

int mb_store_each_pending(mb_store_t *self, mb_store_vec_fn *fn, void *arg,
                          mb_err_t *err) {
    return s_each_vector(self,
                         "SELECT p.id, p.vector FROM pending p JOIN chunks c ON c.id = "
                         "p.id ORDER BY p.id",
                         fn, arg, err);
}

int64_t mb_store_count_vectors(mb_store_t *self) {
    /* the WHERE must match the partial index's for the planner to use it */
    return s_count(self, "SELECT (SELECT count(*) FROM chunks) - (SELECT count(*) FROM "
                         "chunks WHERE length(vector) = 0)");
}

int64_t mb_store_count_pending(mb_store_t *self) {
    return s_count(self, "SELECT count(*) FROM pending p JOIN chunks c ON c.id = p.id");
}

int mb_store_unembedded(mb_store_t *self, size_t limit, int64_t **ids, char ***texts,
                        size_t *n, mb_err_t *err) {
    *ids = NULL;
    *texts = NULL;
    *n = 0;
    sqlite3_stmt *s = NULL;
    /* Pending vectors are written in chunk id order and chunk ids only grow,
     * so the chunks still to embed are exactly those above the highest
     * pending id: a seek, where "NOT EXISTS in pending" rescanned every
     * embedded chunk for each batch (quadratic: 35 of the 46 s of a 139k
     * chunk re-embed). */
    if (sqlite3_prepare_v2(self->db,
                           "SELECT c.id, c.text FROM chunks c WHERE c.id > (SELECT "
                           "coalesce(max(id), 0) FROM pending) ORDER BY c.id LIMIT ?1",
                           -1, &s, NULL) != SQLITE_OK)
        return s_db_err(self, err, "cannot list chunks to embed");
    sqlite3_bind_int64(s, 1, (int64_t)limit);
    *ids = malloc((limit ? limit : 1) * sizeof **ids);
    *texts = malloc((limit ? limit : 1) * sizeof **texts);
    int step;
    while ((step = sqlite3_step(s)) == SQLITE_ROW && *n < limit) {
        (*ids)[*n] = sqlite3_column_int64(s, 0);
        (*texts)[*n] = strdup((const char *)sqlite3_column_text(s, 1));
        (*n)++;
    }
    sqlite3_finalize(s);
    if (step != SQLITE_DONE && step != SQLITE_ROW)
        return s_db_err(self, err, "cannot list chunks to embed");
    return 0;
}

int mb_store_pending_put(mb_store_t *self, size_t n, const int64_t *ids,
                         const float *vecs, mb_err_t *err) {
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(self->db,
                           "INSERT OR REPLACE INTO pending(id, vector) VALUES(?1, ?2)",
                           -1, &s, NULL) != SQLITE_OK)
        return s_db_err(self, err, "cannot store pending vectors");
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        sqlite3_bind_int64(s, 1, ids[i]);
        sqlite3_bind_blob(s, 2, vecs + i * (size_t)self->dim,
                          self->dim * (int)sizeof(float), SQLITE_STATIC);
        if (sqlite3_step(s) != SQLITE_DONE)
            rc = s_db_err(self, err, "cannot store pending vectors");
        sqlite3_reset(s);
    }
    sqlite3_finalize(s);
    return rc;
}

int mb_store_pending_clear(mb_store_t *self, mb_err_t *err) {
    if (sqlite3_exec(self->db, "DELETE FROM pending", NULL, NULL, NULL) != SQLITE_OK)
        return s_db_err(self, err, "cannot clear pending vectors");
    return 0;
}

int mb_store_pending_apply(mb_store_t *self, const char *expert, mb_err_t *err) {
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(
            self->db,
            "UPDATE chunks SET vector = (SELECT vector FROM pending p WHERE "
            "p.id = chunks.id), expert = ?1 WHERE id IN (SELECT id FROM "
            "pending)",
            -1, &s, NULL) != SQLITE_OK)
        return s_db_err(self, err, "cannot apply pending vectors");
    sqlite3_bind_text(s, 1, expert, -1, SQLITE_STATIC);
    int rc = sqlite3_step(s) == SQLITE_DONE
                 ? 0
                 : s_db_err(self, err, "cannot apply pending vectors");
    sqlite3_finalize(s);
    if (rc == 0) rc = mb_store_pending_clear(self, err);
    return rc;
}

int mb_store_each_text(mb_store_t *self, mb_store_text_fn *fn, void *arg, mb_err_t *err) {
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(self->db, "SELECT id, text FROM chunks ORDER BY id", -1, &s,
                           NULL) != SQLITE_OK)
        return s_db_err(self, err, "cannot scan chunk text");
    int step, rc = 0;
    while (rc == 0 && (step = sqlite3_step(s)) == SQLITE_ROW)
        rc = fn(arg, sqlite3_column_int64(s, 0), (const char *)sqlite3_column_text(s, 1));
    sqlite3_finalize(s);
    return rc;
}

int mb_store_docs_list(mb_store_t *self, const char *source_prefix, int64_t after,
                       size_t limit, json_t *out, mb_err_t *err) {
    sqlite3_stmt *s = NULL;
    /* substr() rather than LIKE: paths may hold % and _ */
    if (sqlite3_prepare_v2(self->db,
                           "SELECT id, doc_id, source FROM documents WHERE id > ?1 AND "
                           "substr(coalesce(source, ''), 1, length(?2)) = ?2 ORDER BY id "
                           "LIMIT ?3",
                           -1, &s, NULL) != SQLITE_OK)
        return mb_err_set(err, MB_EIO, "cannot list documents: %s",
                          sqlite3_errmsg(self->db));
    sqlite3_bind_int64(s, 1, after);
    sqlite3_bind_text(s, 2, source_prefix, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 3, (sqlite3_int64)limit);
    int n = 0, rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        const char *src = (const char *)sqlite3_column_text(s, 2);
        json_array_append_new(out, json_pack("{s:s, s:s, s:I}", "id",
                                             (const char *)sqlite3_column_text(s, 1),
                                             "source", src ? src : "", "row",
                                             (json_int_t)sqlite3_column_int64(s, 0)));
        n++;
    }
    sqlite3_finalize(s);
    if (rc != SQLITE_DONE)
        return mb_err_set(err, MB_EIO, "cannot list documents: %s",
                          sqlite3_errmsg(self->db));
    return n;
}
