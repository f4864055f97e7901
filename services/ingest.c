/* ingest.c — `moebus ingest`: files and folders into a domain through the
 * running service.
 *
 * The main thread reads and parses (reader.c), chunks (chunker.c) and hashes
 * documents into batches; `--parallel` sender threads, each with its own bus
 * client, take batches from a bounded queue and run needs -> embed -> add, so
 * several batches are in flight and parsing, embedding and indexing overlap.
 *
 * Idempotent: each document carries a content hash and the index answers
 * which ones it needs (new or changed); unchanged ones cost a lookup.
 * Resumable: the job is recorded in the catalog (through `admin` when a
 * service runs) with the count of files fully committed; --resume JOB skips
 * those files and re-sends the rest, which the hashes make free of
 * duplicates. A batch whose worker died mid-request is sent again. */
#include <getopt.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <czmq.h>

#include "admin.h"
#include "chunker.h"
#include "home.h"
#include "mb_client.h"
#include "mb_mdp.h"
#include "reader.h"
#include "services.h"
#include "svc.h"

static const char *s_usage =
    "usage: moebus ingest NAME PATH... [options]\n"
    "       moebus ingest --resume JOB [options]\n"
    "       moebus ingest --jobs [--json]\n"
    "\n"
    "Adds documents to domain NAME through the running service. PATH may be a\n"
    "folder (read recursively, in sorted order) or a file: text/Markdown, HTML\n"
    "(text only: scripts and styles dropped), PDF (through pdftotext, from\n"
    "poppler-utils), a BEIR corpus .jsonl[.gz] ({\"_id\",\"title\",\"text\"} per\n"
    "line), or a dictd dictionary's .index file. Formats come from the name,\n"
    "else from the content. Unreadable, binary and non-UTF-8 files are reported,\n"
    "skipped and listed in the summary.\n"
    "\n"
    "Re-ingesting unchanged documents sends nothing; changed ones are replaced.\n"
    "Every run is a job in the catalog; an interrupted one (Ctrl-C, a crash)\n"
    "continues with --resume JOB, without duplicates.\n"
    "\n"
    "  --chunk-tokens N  tokens (words) per chunk (default 200); chunks follow\n"
    "                    paragraphs and sentences\n"
    "  --overlap N       tokens shared by consecutive chunks of a paragraph\n"
    "                    (default 40)\n"
    "  --delete-missing  afterwards, delete the domain's documents that came from\n"
    "                    under PATH but were not seen (files deleted since)\n"
    "  --parallel N      batches in flight to embed/index (default 3)\n"
    "  --dry-run         read, parse and chunk only; send nothing (to measure the\n"
    "                    reader, or check a collection's files)\n"
    "  --resume JOB      continue job JOB with its own domain, paths and options\n"
    "  --jobs            list the ingest jobs\n"
    "  --quiet           no progress output (errors and failures still print)\n"
    "  --home DIR        moebus home (default $MOEBUS_HOME or ./moebus-data)\n"
    "  --endpoint E      broker endpoint (default $MOEBUS_ENDPOINT or "
    "tcp://127.0.0.1:5555)\n"
    "\n"
    "Progress: a bar on a terminal (documents, chunks/s, ETA), a plain line every\n"
    "5 s otherwise. The summary gives documents/s, chunks/s and the time spent\n"
    "parsing, embedding and indexing.\n";

#define BATCH_DOCS 128
#define BATCH_CHUNKS 1024
#define CALL_MS 60000
#define MAX_SENDERS 16
#define NO_FILE SIZE_MAX
#define CANCELLED 1 /* a batch not sent because the ingest already failed */

typedef struct {
    char *id, *title, *source, hash[33];
    char **texts;
    mb_chunk_span_t *spans;
    size_t n;
} pdoc_t;

typedef struct batch_t {
    pdoc_t *docs;
    size_t n, cap, nchunks;
    size_t first_file; /* ordinal of the file of its first document */
    struct batch_t *next;
} batch_t;

typedef struct {
    const char *home, *endpoint, *domain;
    int endpoint_given, quiet, tty, nsenders, dry_run;
    char embed_svc[128], index_svc[128];
    mb_chunk_opts_t copts;

    pthread_mutex_t mu;
    pthread_cond_t cv;
    batch_t *head, *tail; /* the queue */
    size_t queued;
    int closing, failed;
    char fail_msg[640];
    size_t inflight[MAX_SENDERS]; /* first_file of the batch each sender holds */

    /* figures (under mu) */
    size_t docs, added, replaced, unchanged, chunks, deleted, resent;
    int64_t us_parse, us_embed, us_index, us_wait, t0;
    int64_t files_total, bytes_total, bytes_done, last_size;
    size_t file_ord, files_skipped;
    int reading_done; /* the reader got to the end of every path */

    batch_t *cur;      /* being filled by the main thread */
    zhashx_t *seen;    /* document ids read (for --delete-missing) */
    zhashx_t *protect; /* sources not to delete from: skipped or failed files */
    json_t *errors;    /* [{path, error}] */
    int64_t job, resume_from, last_job_ms, last_progress;
} ingest_t;

static volatile sig_atomic_t s_interrupted;
static void s_on_sigint(int sig) {
    (void)sig;
    s_interrupted = 1;
}

static void s_pdoc_free(pdoc_t *d) {
    free(d->id);
    free(d->title);
    free(d->source);
    for (size_t i = 0; i < d->n; i++)
        free(d->texts[i]);
    free(d->texts);
    free(d->spans);
}

static void s_batch_free(batch_t *b) {
    if (!b) return;
    for (size_t i = 0; i < b->n; i++)
        s_pdoc_free(&b->docs[i]);
    free(b->docs);
    free(b);
}

/* ---- sending: needs -> embed -> add ---- */

/* One attempt at a batch. Returns 0, or an error code with msg set;
 * MB_EUNAVAIL / MB_ETIMEOUT are worth another attempt. */
static int s_send_once(ingest_t *g, mb_client_t *c, batch_t *b, char *msg, size_t msgsz) {
    int rc = 0;
    mb_body_t *needs = NULL, *emb = NULL, *added = NULL;
    json_t *texts = NULL, *docs = NULL;
    mb_err_t err;
    int64_t t = mb_clock_us();
    json_t *q = json_array();
    for (size_t i = 0; i < b->n; i++)
        json_array_append_new(
            q, json_pack("{s:s, s:s}", "id", b->docs[i].id, "hash", b->docs[i].hash));
    mb_body_t *req = mb_body_new(json_pack("{s:s, s:o}", "op", "needs", "docs", q));
    if ((rc = mb_client_call(c, g->index_svc, &req, &needs, CALL_MS, &err)) != 0) {
        snprintf(msg, msgsz, "%s: %s", g->index_svc, err.msg);
        goto cleanup;
    }
    int64_t us_index = mb_clock_us() - t, us_embed = 0;
    zhashx_t *want = zhashx_new();
    size_t i, nwant = 0;
    json_t *v;
    json_array_foreach(json_object_get(mb_body_json(needs), "needed"), i, v)
        zhashx_insert(want, json_string_value(v), (void *)1);
    texts = json_array();
    docs = json_array();
    for (i = 0; i < b->n; i++) {
        pdoc_t *d = &b->docs[i];
        if (!zhashx_lookup(want, d->id)) continue;
        nwant++;
        json_t *chunks = json_array(), *offs = json_array();
        for (size_t k = 0; k < d->n; k++) {
            json_t *str = json_string(d->texts[k]); /* one copy for embed and add */
            json_array_append(texts, str);
            json_array_append_new(chunks, str);
            json_array_append_new(offs, json_pack("[I, I, I, I]",
                                                  (json_int_t)d->spans[k].cstart,
                                                  (json_int_t)d->spans[k].cend,
                                                  (json_int_t)d->spans[k].start,
                                                  (json_int_t)d->spans[k].end));
        }
        /* offsets: [char start, char end, byte start, byte end] of each chunk
         * in the source text (the first chunk also carries the title) */
        json_array_append_new(docs, json_pack("{s:s, s:s, s:s, s:o, s:{s:s, s:o}}", "id",
                                              d->id, "source", d->source, "hash", d->hash,
                                              "chunks", chunks, "meta", "title", d->title,
                                              "offsets", offs));
    }
    zhashx_destroy(&want);
    size_t unchanged = b->n - nwant;
    if (nwant == 0) {
        pthread_mutex_lock(&g->mu);
        g->unchanged += unchanged;
        g->us_index += us_index;
        pthread_mutex_unlock(&g->mu);
        goto cleanup;
    }
    /* The expert may change under us (a fit finishing): the index then says
     * `version` and the batch is embedded again with the new one. */
    for (int attempt = 0;; attempt++) {
        mb_body_destroy(&emb);
        mb_body_destroy(&added);
        t = mb_clock_us();
        req = mb_body_new(json_pack("{s:s, s:O}", "op", "embed", "texts", texts));
        rc = mb_client_call(c, g->embed_svc, &req, &emb, CALL_MS, &err);
        us_embed += mb_clock_us() - t;
        if (rc != 0) {
            snprintf(msg, msgsz, "%s: %s", g->embed_svc, err.msg);
            goto cleanup;
        }
        size_t nf = 0;
        const float *vecs = mb_body_vectors(emb, 0, &nf);
        json_t *ej = mb_body_json(emb);
        /* no vectors: the builtin expert is not fitted yet; the index keeps
         * the text for lexical search and the first fit embeds it */
        json_t *aj = json_pack("{s:s, s:O, s:I}", "op", "add", "docs", docs, "dim",
                               mb_json_int(ej, "dim", 0));
        if (json_is_string(json_object_get(ej, "model")))
            json_object_set(aj, "model", json_object_get(ej, "model"));
        req = mb_body_new(aj);
        if (vecs) mb_body_add_vectors(req, vecs, nf);
        t = mb_clock_us();
        rc = mb_client_call(c, g->index_svc, &req, &added, CALL_MS, &err);
        us_index += mb_clock_us() - t;
        if (rc == MB_EVERSION && attempt < 3) continue;
        if (rc != 0) snprintf(msg, msgsz, "%s: %s", g->index_svc, err.msg);
        break;
    }
    if (rc == 0) {
        json_t *aj = mb_body_json(added);
        pthread_mutex_lock(&g->mu);
        g->added += (size_t)mb_json_int(aj, "added", 0);
        g->replaced += (size_t)mb_json_int(aj, "replaced", 0);
        g->unchanged += unchanged + (size_t)mb_json_int(aj, "unchanged", 0);
        g->chunks += (size_t)mb_json_int(aj, "chunks", 0);
        g->us_embed += us_embed;
        g->us_index += us_index;
        pthread_mutex_unlock(&g->mu);
    }
cleanup:
    json_decref(texts);
    json_decref(docs);
    mb_body_destroy(&needs);
    mb_body_destroy(&emb);
    mb_body_destroy(&added);
    return rc;
}

typedef struct {
    ingest_t *g;
    int slot;
} sender_t;

static void *s_sender(void *arg) {
    sender_t *s = arg;
    ingest_t *g = s->g;
    mb_err_t err;
    mb_client_t *c = mb_client_new(g->endpoint, &err);
    for (;;) {
        pthread_mutex_lock(&g->mu);
        while (!g->head && !g->closing)
            pthread_cond_wait(&g->cv, &g->mu);
        batch_t *b = g->head;
        if (!b) {
            pthread_mutex_unlock(&g->mu);
            break;
        }
        g->head = b->next;
        if (!g->head) g->tail = NULL;
        g->inflight[s->slot] = b->first_file;
        int failed = g->failed;
        pthread_mutex_unlock(&g->mu);
        char msg[512] = "";
        int rc = 0;
        if (failed) {
            rc = CANCELLED;
        } else if (g->dry_run) { /* read, parse and chunk only */
            pthread_mutex_lock(&g->mu);
            g->added += b->n;
            g->chunks += b->nchunks;
            pthread_mutex_unlock(&g->mu);
        } else if (!c) {
            rc = MB_EIO;
            snprintf(msg, sizeof msg, "%s", err.msg);
        } else {
            /* a worker that died mid-request (`unavailable`) or a timeout: the
             * supervisor restarts it; the batch is idempotent, so send again */
            for (int attempt = 0; attempt < 5; attempt++) {
                if (attempt) {
                    usleep((useconds_t)(250000 << attempt));
                    pthread_mutex_lock(&g->mu);
                    g->resent++;
                    pthread_mutex_unlock(&g->mu);
                }
                rc = s_send_once(g, c, b, msg, sizeof msg);
                if (rc != MB_EUNAVAIL && rc != MB_ETIMEOUT) break;
            }
        }
        pthread_mutex_lock(&g->mu);
        g->inflight[s->slot] = NO_FILE;
        g->queued--;
        if (rc != 0 && rc != CANCELLED && !g->failed) {
            g->failed = 1;
            snprintf(g->fail_msg, sizeof g->fail_msg, "%s (%s)", msg, mb_err_name(rc));
        }
        pthread_cond_broadcast(&g->cv);
        pthread_mutex_unlock(&g->mu);
        s_batch_free(b);
    }
    mb_client_destroy(&c);
    return NULL;
}

/* ---- progress, job record ---- */

/* Files before this ordinal are fully committed (under mu). */
static size_t s_files_done(ingest_t *g) {
    /* the file being read is not done until the reader has moved past it */
    size_t done = g->reading_done ? g->file_ord : g->file_ord ? g->file_ord - 1 : 0;
    if (g->cur && g->cur->n && g->cur->first_file < done) done = g->cur->first_file;
    for (batch_t *b = g->head; b; b = b->next)
        if (b->first_file < done) done = b->first_file;
    for (int i = 0; i < g->nsenders; i++)
        if (g->inflight[i] < done) done = g->inflight[i];
    return done;
}

static json_t *s_progress_json(ingest_t *g) {
    pthread_mutex_lock(&g->mu);
    size_t files_done = s_files_done(g);
    json_t *p =
        json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:O}", "files_done",
                  (json_int_t)files_done, "docs", (json_int_t)g->docs, "added",
                  (json_int_t)g->added, "replaced", (json_int_t)g->replaced, "unchanged",
                  (json_int_t)g->unchanged, "chunks", (json_int_t)g->chunks, "deleted",
                  (json_int_t)g->deleted, "ms", (json_int_t)(mb_clock_ms() - g->t0),
                  "resent", (json_int_t)g->resent, "errors", g->errors);
    pthread_mutex_unlock(&g->mu);
    return p;
}

static void s_job_update(ingest_t *g, const char *state) {
    if (!g->job) return;
    json_t *req = json_pack("{s:s, s:I, s:o}", "op", "job.update", "job",
                            (json_int_t)g->job, "progress", s_progress_json(g));
    if (state) json_object_set_new(req, "state", json_string(state));
    mb_err_t err;
    json_t *r = mb_admin_request(g->home, g->endpoint, g->endpoint_given, req, &err);
    if (!r && !g->quiet)
        fprintf(stderr, "%smoebus: cannot record job %lld: %s\n",
                g->tty ? "\r\033[K" : "", (long long)g->job, err.msg);
    json_decref(r);
}

static void s_eta(char *out, size_t n, double secs) {
    if (secs < 0 || secs > 360000)
        snprintf(out, n, "--:--");
    else
        snprintf(out, n, "%d:%02d", (int)secs / 60, (int)secs % 60);
}

/* Rate-limited: the line or bar every 200 ms (tty) / 5 s, the job record
 * every 2 s. */
static void s_progress(ingest_t *g) {
    int64_t now = mb_clock_ms();
    if (now - g->last_progress < (g->tty ? 200 : 5000)) return;
    g->last_progress = now;
    if (g->job && now - g->last_job_ms >= 2000) {
        g->last_job_ms = now;
        s_job_update(g, NULL);
    }
    if (g->quiet) return;
    pthread_mutex_lock(&g->mu);
    double secs = (double)(now - g->t0) / 1000.0;
    double frac = g->bytes_total > 0 ? (double)g->bytes_done / (double)g->bytes_total : 0;
    if (frac > 1) frac = 1;
    double cps = secs > 0 ? (double)g->chunks / secs : 0;
    double dps = secs > 0 ? (double)g->docs / secs : 0;
    char eta[32];
    s_eta(eta, sizeof eta, frac > 0.001 ? secs / frac - secs : -1);
    if (g->tty) {
        char bar[32];
        int fill = (int)(frac * 24);
        for (int i = 0; i < 24; i++)
            bar[i] = i < fill ? '#' : '-';
        bar[24] = 0;
        fprintf(stderr,
                "\r\033[K%s [%s] %3.0f%% %zu docs, %zu chunks, %.0f chunks/s, ETA %s",
                g->domain, bar, frac * 100, g->docs, g->chunks, cps, eta);
    } else {
        fprintf(stderr,
                "%s: %.0f%% of the bytes, %zu docs read (%.0f/s), %zu chunks indexed "
                "(%.0f/s), ETA %s\n",
                g->domain, frac * 100, g->docs, dps, g->chunks, cps, eta);
    }
    pthread_mutex_unlock(&g->mu);
}

/* ---- reading ---- */

static void s_enqueue(ingest_t *g) {
    batch_t *b = g->cur;
    g->cur = NULL;
    if (!b || b->n == 0) {
        s_batch_free(b);
        return;
    }
    int64_t t = mb_clock_us();
    pthread_mutex_lock(&g->mu);
    /* bounded: at most two batches waiting per sender, so memory stays flat
     * while the reader is faster than the service */
    while (g->queued >= (size_t)g->nsenders * 2 && !g->failed) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 200000000;
        if (ts.tv_nsec >= 1000000000) ts.tv_sec++, ts.tv_nsec -= 1000000000;
        pthread_cond_timedwait(&g->cv, &g->mu, &ts);
        pthread_mutex_unlock(&g->mu);
        s_progress(g);
        pthread_mutex_lock(&g->mu);
    }
    b->next = NULL;
    if (g->tail)
        g->tail->next = b;
    else
        g->head = b;
    g->tail = b;
    g->queued++;
    g->us_wait += mb_clock_us() - t;
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
}

static int s_on_doc(void *arg, const mb_rdoc_t *doc) {
    ingest_t *g = arg;
    if (s_interrupted || g->failed) return 1;
    zhashx_insert(g->seen, doc->id, (void *)1);
    size_t len = strlen(doc->text);
    mb_chunk_span_t *spans = NULL;
    size_t n = mb_chunk_spans(doc->text, len, &g->copts, &spans);
    if (n == 0) {
        free(spans);
        return 0;
    }
    if (!g->cur) {
        g->cur = calloc(1, sizeof *g->cur);
        g->cur->first_file = g->file_ord ? g->file_ord - 1 : 0;
    }
    batch_t *b = g->cur;
    if (b->n == b->cap)
        b->docs = realloc(b->docs, (b->cap = b->cap * 2 + 16) * sizeof *b->docs);
    pdoc_t *d = &b->docs[b->n++];
    d->id = strdup(doc->id);
    d->title = strdup(doc->title);
    d->source = strdup(doc->source);
    d->spans = spans;
    d->n = n;
    d->texts = malloc(n * sizeof *d->texts);
    mb_content_hash(doc->title, doc->text, d->hash);
    size_t tl = strlen(doc->title);
    for (size_t k = 0; k < n; k++) {
        size_t cl = spans[k].end - spans[k].start;
        /* The title is part of what a passage is about: the first chunk
         * carries it, as a line of its own. */
        int with_title = k == 0 && tl;
        char *txt = malloc(cl + (with_title ? tl + 1 : 0) + 1);
        size_t o = 0;
        if (with_title) {
            memcpy(txt, doc->title, tl);
            txt[tl] = '\n';
            o = tl + 1;
        }
        memcpy(txt + o, doc->text + spans[k].start, cl);
        txt[o + cl] = 0;
        d->texts[k] = txt;
    }
    b->nchunks += n;
    pthread_mutex_lock(&g->mu);
    g->docs++;
    pthread_mutex_unlock(&g->mu);
    if (b->n == BATCH_DOCS || b->nchunks >= BATCH_CHUNKS) s_enqueue(g);
    s_progress(g);
    return 0;
}

static int s_on_file(void *arg, const char *path, size_t ordinal, int64_t size) {
    ingest_t *g = arg;
    pthread_mutex_lock(&g->mu);
    g->bytes_done += g->last_size;
    g->last_size = size;
    g->file_ord = ordinal + 1;
    int skip = (int64_t)ordinal < g->resume_from;
    if (skip) g->files_skipped++;
    pthread_mutex_unlock(&g->mu);
    if (skip) {
        char abs[PATH_MAX];
        zhashx_insert(g->protect, realpath(path, abs) ? abs : path, (void *)1);
    }
    return skip;
}

static void s_on_error(void *arg, const char *path, const char *why) {
    ingest_t *g = arg;
    char abs[PATH_MAX];
    const char *p = realpath(path, abs) ? abs : path;
    zhashx_insert(g->protect, p, (void *)1);
    pthread_mutex_lock(&g->mu);
    if (json_array_size(g->errors) < 1000)
        json_array_append_new(g->errors,
                              json_pack("{s:s, s:s}", "path", p, "error", why));
    pthread_mutex_unlock(&g->mu);
    fprintf(stderr, "%smoebus: skipping %s: %s\n", g->tty && !g->quiet ? "\r\033[K" : "",
            p, why);
}

/* ---- --delete-missing ---- */

static int s_delete_missing(ingest_t *g, char *const *paths, size_t npaths) {
    mb_err_t err;
    mb_client_t *c = mb_client_new(g->endpoint, &err);
    if (!c) return 1;
    int rc = 0;
    json_t *gone = json_array();
    for (size_t i = 0; i < npaths && rc == 0; i++) {
        char abs[PATH_MAX];
        if (!realpath(paths[i], abs))
            continue; /* a missing PATH: its files are not ours */
        struct stat sb;
        char prefix[PATH_MAX + 2];
        snprintf(prefix, sizeof prefix, "%s%s", abs,
                 stat(abs, &sb) == 0 && S_ISDIR(sb.st_mode) ? "/" : "");
        for (json_int_t after = 0;;) {
            mb_body_t *req = mb_body_new(json_pack("{s:s, s:s, s:I, s:i}", "op", "docs",
                                                   "source_prefix", prefix, "after",
                                                   after, "limit", 5000)),
                      *reply = NULL;
            if (mb_client_call(c, g->index_svc, &req, &reply, CALL_MS, &err) != 0) {
                fprintf(stderr, "moebus: %s: %s\n", g->index_svc, err.msg);
                mb_body_destroy(&reply);
                rc = 1;
                break;
            }
            json_t *docs = json_object_get(mb_body_json(reply), "docs");
            size_t k;
            json_t *d;
            json_array_foreach(docs, k, d) {
                after = mb_json_int(d, "row", after);
                const char *id = mb_json_str(d, "id", "");
                if (!zhashx_lookup(g->seen, id) &&
                    !zhashx_lookup(g->protect, mb_json_str(d, "source", "")))
                    json_array_append_new(gone, json_string(id));
            }
            size_t got = json_array_size(docs);
            mb_body_destroy(&reply);
            if (got < 5000) break;
        }
    }
    /* delete in slices the index accepts */
    size_t n = json_array_size(gone);
    for (size_t at = 0; at < n && rc == 0; at += 500) {
        json_t *ids = json_array();
        for (size_t k = at; k < n && k < at + 500; k++)
            json_array_append(ids, json_array_get(gone, k));
        mb_body_t *req = mb_body_new(json_pack("{s:s, s:o}", "op", "delete", "ids", ids)),
                  *reply = NULL;
        if (mb_client_call(c, g->index_svc, &req, &reply, CALL_MS, &err) != 0) {
            fprintf(stderr, "moebus: %s: %s\n", g->index_svc, err.msg);
            rc = 1;
        } else {
            g->deleted += (size_t)mb_json_int(mb_body_json(reply), "deleted", 0);
        }
        mb_body_destroy(&reply);
    }
    json_decref(gone);
    mb_client_destroy(&c);
    return rc;
}

/* Waits until service has a live worker (a just-added domain takes a moment). */
static int s_wait_live(mb_client_t *client, const char *service, int timeout_ms) {
    int64_t until = mb_clock_ms() + timeout_ms;
    while (mb_clock_ms() < until) {
        mb_body_t *req = mb_body_new(json_pack("{s:s}", "service", service)), *r = NULL;
        mb_err_t err;
        int ok = mb_client_call(client, "mmi.service", &req, &r, 2000, &err) == 0 &&
                 json_is_true(json_object_get(mb_body_json(r), "live"));
        mb_body_destroy(&r);
        if (ok) return 1;
        usleep(200000);
    }
    return 0;
}

static int s_list_jobs(const char *home, const char *endpoint, int endpoint_given,
                       int as_json) {
    mb_err_t err;
    json_t *r = mb_admin_request(home, endpoint, endpoint_given,
                                 json_pack("{s:s}", "op", "job.list"), &err);
    if (!r) {
        fprintf(stderr, "moebus ingest: %s\n", err.msg);
        return 1;
    }
    json_t *jobs = json_object_get(r, "jobs");
    if (as_json) {
        char *s = json_dumps(jobs, JSON_INDENT(2));
        puts(s);
        free(s);
    } else {
        printf("%5s %-16s %-12s %8s %9s %9s %7s  %s\n", "JOB", "DOMAIN", "STATE", "FILES",
               "DOCS", "CHUNKS", "ERRORS", "PATHS");
        size_t i;
        json_t *j;
        json_array_foreach(jobs, i, j) {
            json_t *p = json_object_get(j, "progress"), *paths;
            paths = json_object_get(json_object_get(j, "spec"), "paths");
            char *ps = json_dumps(paths, JSON_COMPACT);
            printf("%5lld %-16s %-12s %8lld %9lld %9lld %7zu  %s\n",
                   (long long)mb_json_int(j, "id", 0), mb_json_str(j, "domain", "?"),
                   mb_json_str(j, "state", "?"),
                   (long long)mb_json_int(p, "files_done", 0),
                   (long long)mb_json_int(p, "docs", 0),
                   (long long)mb_json_int(p, "chunks", 0),
                   json_array_size(json_object_get(p, "errors")), ps ? ps : "");
            free(ps);
        }
    }
    json_decref(r);
    return 0;
}

int mb_ingest_main(int argc, char **argv) {
    if (mb_svc_wants_help(argc, argv, s_usage)) return 0;
    ingest_t *g = calloc(1, sizeof *g);
    g->home = mb_default_home();
    g->endpoint = mb_default_endpoint();
    g->copts = (mb_chunk_opts_t){.max_tokens = 200, .overlap = 40};
    g->nsenders = 3;
    int overlap_given = 0, delete_missing = 0, list = 0, as_json = 0;
    int64_t resume = 0;
    static struct option opts[] = {{"endpoint", required_argument, 0, 'e'},
                                   {"home", required_argument, 0, 'H'},
                                   {"chunk-tokens", required_argument, 0, 'c'},
                                   {"chunk-words", required_argument, 0, 'c'},
                                   {"overlap", required_argument, 0, 'o'},
                                   {"parallel", required_argument, 0, 'p'},
                                   {"delete-missing", no_argument, 0, 'd'},
                                   {"resume", required_argument, 0, 'r'},
                                   {"jobs", no_argument, 0, 'J'},
                                   {"json", no_argument, 0, 'j'},
                                   {"quiet", no_argument, 0, 'q'},
                                   {"dry-run", no_argument, 0, 'n'},
                                   {0, 0, 0, 0}};
    int c, rc = 1;
    while ((c = getopt_long(argc, argv, "e:H:c:o:p:dr:Jjqn", opts, NULL)) != -1) {
        if (c == 'e')
            g->endpoint = optarg, g->endpoint_given = 1;
        else if (c == 'H')
            g->home = optarg;
        else if (c == 'c')
            g->copts.max_tokens = (size_t)atol(optarg);
        else if (c == 'o')
            g->copts.overlap = (size_t)atol(optarg), overlap_given = 1;
        else if (c == 'p')
            g->nsenders = atoi(optarg);
        else if (c == 'd')
            delete_missing = 1;
        else if (c == 'r')
            resume = atoll(optarg);
        else if (c == 'J')
            list = 1;
        else if (c == 'j')
            as_json = 1;
        else if (c == 'q')
            g->quiet = 1;
        else if (c == 'n')
            g->dry_run = 1;
        else {
            fputs(s_usage, stderr);
            free(g);
            return 2;
        }
    }
    if (list) {
        free(g);
        return s_list_jobs(mb_default_home(), mb_default_endpoint(), 0, as_json);
    }
    if (!overlap_given) g->copts.overlap = g->copts.max_tokens / 5;
    char **paths = NULL;
    size_t npaths = 0;
    json_t *job = NULL;
    mb_err_t err;
    if (resume > 0) {
        json_t *r = mb_admin_request(
            g->home, g->endpoint, g->endpoint_given,
            json_pack("{s:s, s:I}", "op", "job.get", "job", (json_int_t)resume), &err);
        if (!r) {
            fprintf(stderr, "moebus ingest: %s\n", err.msg);
            free(g);
            return 1;
        }
        job = json_incref(json_object_get(r, "job"));
        json_decref(r);
        if (strcmp(mb_json_str(job, "state", ""), "done") == 0) {
            printf("job %lld is already done\n", (long long)resume);
            json_decref(job);
            free(g);
            return 0;
        }
        json_t *spec = json_object_get(job, "spec");
        g->domain = mb_json_str(job, "domain", "");
        g->copts.max_tokens = (size_t)mb_json_int(spec, "chunk_tokens", 200);
        g->copts.overlap = (size_t)mb_json_int(spec, "overlap", 40);
        delete_missing = json_is_true(json_object_get(spec, "delete_missing"));
        json_t *jp = json_object_get(spec, "paths");
        npaths = json_array_size(jp);
        paths = calloc(npaths + 1, sizeof *paths);
        for (size_t i = 0; i < npaths; i++)
            paths[i] = (char *)json_string_value(json_array_get(jp, i));
        g->resume_from = mb_json_int(json_object_get(job, "progress"), "files_done", 0);
        g->job = resume;
    } else {
        if (argc - optind < 2) {
            fputs(s_usage, stderr);
            free(g);
            return 2;
        }
        g->domain = argv[optind];
        npaths = (size_t)(argc - optind - 1);
        paths = calloc(npaths + 1, sizeof *paths);
        for (size_t i = 0; i < npaths; i++)
            paths[i] = argv[optind + 1 + i];
    }
    if (g->copts.max_tokens < 8 || g->nsenders < 1 || g->nsenders > MAX_SENDERS) {
        fprintf(stderr,
                "moebus ingest: --chunk-tokens must be >= 8 and --parallel 1..%d\n",
                MAX_SENDERS);
        goto early;
    }
    snprintf(g->embed_svc, sizeof g->embed_svc, "embed.%s", g->domain);
    snprintf(g->index_svc, sizeof g->index_svc, "index.%s", g->domain);
    g->tty = isatty(2);
    if (!g->dry_run) {
        mb_client_t *client = mb_client_new(g->endpoint, &err);
        if (!client) {
            fprintf(stderr, "moebus: %s\n", err.msg);
            goto early;
        }
        /* A domain the local catalog lacks will not appear: say so at once. (With
         * no local catalog the service may be remote, so wait for it instead.) */
        mb_domain_info_t info;
        mb_domain_info_t *all = NULL;
        size_t nall = 0;
        int have_catalog =
            mb_catalog_domains(g->home, &all, &nall, NULL) == 0 && nall > 0;
        free(all);
        if (have_catalog && mb_catalog_domain_get(g->home, g->domain, &info, &err) != 0) {
            fprintf(stderr, "moebus: %s in %s (add it with `moebus domain add %s`)\n",
                    err.msg, g->home, g->domain);
            mb_client_destroy(&client);
            goto early;
        }
        /* The index worker must be up; the embed worker may be started on demand
         * (serve --max-loaded-experts), and the broker holds requests for it. */
        if (!s_wait_live(client, g->index_svc, 15000)) {
            fprintf(stderr,
                    "moebus: domain '%s' has no running index worker at %s (is `moebus "
                    "serve` running, and was the domain added with `moebus domain add "
                    "%s`?)\n",
                    g->domain, g->endpoint, g->domain);
            mb_client_destroy(&client);
            goto early;
        }
        mb_client_destroy(&client);

        /* the job: absolute paths, so --resume works from anywhere */
        if (!g->job) {
            json_t *jp = json_array();
            for (size_t i = 0; i < npaths; i++) {
                char abs[PATH_MAX];
                json_array_append_new(
                    jp, json_string(realpath(paths[i], abs) ? abs : paths[i]));
            }
            json_t *spec =
                json_pack("{s:o, s:I, s:I, s:b}", "paths", jp, "chunk_tokens",
                          (json_int_t)g->copts.max_tokens, "overlap",
                          (json_int_t)g->copts.overlap, "delete_missing", delete_missing);
            json_t *r = mb_admin_request(g->home, g->endpoint, g->endpoint_given,
                                         json_pack("{s:s, s:s, s:o}", "op", "job.start",
                                                   "domain", g->domain, "spec", spec),
                                         &err);
            if (r)
                g->job = mb_json_int(r, "job", 0);
            else
                fprintf(stderr, "moebus: not recording the job (%s); ingesting anyway\n",
                        err.msg);
            json_decref(r);
        } else {
            json_t *r =
                mb_admin_request(g->home, g->endpoint, g->endpoint_given,
                                 json_pack("{s:s, s:I, s:s}", "op", "job.update", "job",
                                           (json_int_t)g->job, "state", "running"),
                                 &err);
            json_decref(r);
            if (!g->quiet)
                fprintf(stderr,
                        "moebus: resuming job %lld on %s after %lld committed file(s)\n",
                        (long long)g->job, g->domain, (long long)g->resume_from);
        }

    } /* !dry_run */

    pthread_mutex_init(&g->mu, NULL);
    pthread_cond_init(&g->cv, NULL);
    g->seen = zhashx_new();
    g->protect = zhashx_new();
    g->errors = json_array();
    for (int i = 0; i < MAX_SENDERS; i++)
        g->inflight[i] = NO_FILE;
    mb_reader_size(paths, npaths, &g->files_total, &g->bytes_total);
    struct sigaction sa = {0}, old_int, old_term;
    sa.sa_handler = s_on_sigint;
    sigemptyset(&sa.sa_mask);
    s_interrupted = 0;
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    pthread_t th[MAX_SENDERS];
    sender_t sd[MAX_SENDERS];
    g->t0 = g->last_progress = mb_clock_ms();
    for (int i = 0; i < g->nsenders; i++) {
        sd[i] = (sender_t){g, i};
        pthread_create(&th[i], NULL, s_sender, &sd[i]);
    }
    int64_t tread = mb_clock_us();
    mb_reader_hooks_t hooks = {
        .doc = s_on_doc, .file = s_on_file, .error = s_on_error, .arg = g};
    mb_reader_stats_t st;
    if (mb_reader_walk(paths, npaths, &hooks, &st) == 0) {
        pthread_mutex_lock(&g->mu);
        g->reading_done = 1;
        pthread_mutex_unlock(&g->mu);
    }
    /* reading, parsing and chunking: the main thread's time less its waits
     * for room in the queue */
    g->us_parse = mb_clock_us() - tread - g->us_wait;
    if (!s_interrupted && !g->failed) s_enqueue(g);
    s_batch_free(g->cur);
    g->cur = NULL;
    pthread_mutex_lock(&g->mu);
    g->bytes_done = g->bytes_total;
    g->closing = 1;
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
    for (int i = 0; i < g->nsenders; i++)
        pthread_join(th[i], NULL);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    int64_t ms_load = mb_clock_ms() - g->t0;
    if (!s_interrupted && !g->failed && delete_missing && !g->dry_run &&
        s_delete_missing(g, paths, npaths) != 0)
        g->failed = 1;
    if (!s_interrupted && !g->failed && !g->dry_run &&
        g->added + g->replaced + g->deleted) {
        /* done writing: the index may start its expert job now */
        mb_client_t *sc = mb_client_new(g->endpoint, &err);
        mb_body_t *req = mb_body_new(json_pack("{s:s}", "op", "settle")), *reply = NULL;
        if (sc) mb_client_call(sc, g->index_svc, &req, &reply, 5000, &err);
        mb_body_destroy(&req);
        mb_body_destroy(&reply);
        mb_client_destroy(&sc);
    }
    int64_t ms = mb_clock_ms() - g->t0;
    const char *state = s_interrupted ? "interrupted" : g->failed ? "failed" : "done";
    if (g->tty && !g->quiet) fputs("\r\033[K", stderr);
    s_job_update(g, state);
    double secs = (double)ms_load / 1000.0;
    if (!g->quiet || g->failed || s_interrupted) {
        fprintf(stderr,
                "%s%s: %zu docs (%zu new, %zu replaced, %zu unchanged), %zu chunks in "
                "%.2f s: %.0f docs/s, %.0f chunks/s\n",
                g->dry_run ? "(dry run) " : "", g->domain, g->docs, g->added, g->replaced,
                g->unchanged, g->chunks, secs, secs > 0 ? (double)g->docs / secs : 0,
                secs > 0 ? (double)g->chunks / secs : 0);
        fprintf(
            stderr,
            "  time: reading+parsing+chunking %.2f s, embedding %.2f s, indexing %.2f s "
            "(busy time; with %d batches in flight they overlap)\n",
            (double)g->us_parse / 1e6, (double)g->us_embed / 1e6,
            (double)g->us_index / 1e6, g->nsenders);
        if (delete_missing)
            fprintf(stderr, "  deleted %zu document(s) whose source is gone (%.2f s)\n",
                    g->deleted, (double)(ms - ms_load) / 1000.0);
        if (g->files_skipped)
            fprintf(stderr, "  %zu file(s) committed by the earlier run skipped\n",
                    g->files_skipped);
        if (g->resent)
            fprintf(stderr, "  %zu batch(es) sent again after a worker failed\n",
                    g->resent);
        size_t ne = json_array_size(g->errors);
        if (ne || st.bad_lines) {
            fprintf(stderr, "  %zu file(s) skipped, %zu bad record(s) skipped:\n",
                    st.skipped_files, st.bad_lines);
            size_t i;
            json_t *e;
            json_array_foreach(g->errors, i, e) {
                if (i == 20) {
                    fprintf(stderr,
                            "    ... and %zu more (moebus ingest --jobs --json)\n",
                            ne - 20);
                    break;
                }
                fprintf(stderr, "    %s: %s\n", mb_json_str(e, "path", "?"),
                        mb_json_str(e, "error", "?"));
            }
        }
    }
    if (g->failed) fprintf(stderr, "moebus ingest: failed: %s\n", g->fail_msg);
    if ((g->failed || s_interrupted) && g->job)
        fprintf(stderr,
                "moebus ingest: job %lld %s; continue it with `moebus ingest --resume "
                "%lld`\n",
                (long long)g->job, state, (long long)g->job);
    /* nothing could be read at all: say so in the exit status too */
    rc = g->failed ? 1 : s_interrupted ? 130 : (g->docs == 0 && st.skipped_files) ? 1 : 0;
    zhashx_destroy(&g->seen);
    zhashx_destroy(&g->protect);
    json_decref(g->errors);
    pthread_mutex_destroy(&g->mu);
    pthread_cond_destroy(&g->cv);
early:
    free(paths);
    json_decref(job);
    free(g);
    return rc;
}
