/* lifecycle.c — fit / re-embed jobs for one domain (see lifecycle.h). */
#include "lifecycle.h"

#include <dlfcn.h>

#include <dirent.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "embed.h"
#include "home.h"
#include "mb_log.h"
#include "mb_mdp.h"
#include "mb_mem.h"

typedef enum { JOB_IDLE, JOB_FITTING, JOB_EMBEDDING, JOB_FAILED } job_state_t;
static const char *s_state_names[] = {"idle", "fitting", "embedding", "failed"};

struct mb_lifecycle_t {
    char *home, *domain, *dir;
    mb_index_t *index;
    pthread_t thread;
    int joinable;
    volatile int cancel;
    pthread_mutex_t check; /* one caller of mb_lifecycle_check at a time */
    pthread_mutex_t lock;  /* guards the fields below */
    job_state_t state;
    int64_t done, total, last_ms;
    char error[512], target[192];
    int64_t failed_at; /* ms: a failed job is not retried automatically for a while */
    int64_t last_catalog_check;
    int verified; /* the fitted model file was loaded once since start */
};

/* The fit is an index worker's one heavy job, and it runs when the domain's
 * writes are quiet: BLAS/LAPACK (the QR and eigen steps) may use every core
 * for it (MOEBUS_FIT_THREADS, default all), then go back to what they had.
 * OpenBLAS keeps its own thread pool, apart from FAISS's OpenMP one, so this
 * does not multiply FAISS pools (DESIGN.md's pitfall). Looked up at run
 * time: another BLAS simply stays as it is. */
static int s_blas_threads(int n) {
    static int (*get)(void);
    static void (*set)(int);
    static int looked;
    if (!looked) {
        void *g = dlsym(RTLD_DEFAULT, "openblas_get_num_threads");
        void *st = dlsym(RTLD_DEFAULT, "openblas_set_num_threads");
        memcpy(&get, &g, sizeof g);
        memcpy(&set, &st, sizeof st);
        looked = 1;
    }
    int old = get ? get() : 1;
    if (set && n > 0) set(n);
    return old;
}

static int s_env_int(const char *name, int dflt) {
    const char *v = getenv(name);
    return v && *v ? atoi(v) : dflt;
}

static double s_env_double(const char *name, double dflt) {
    const char *v = getenv(name);
    return v && *v ? atof(v) : dflt;
}

mb_lifecycle_t *mb_lifecycle_new(const char *home, const char *domain, const char *dir,
                                 mb_index_t *index) {
    mb_lifecycle_t *self = calloc(1, sizeof *self);
    self->home = strdup(home);
    self->domain = strdup(domain);
    self->dir = strdup(dir);
    self->index = index;
    pthread_mutex_init(&self->lock, NULL);
    pthread_mutex_init(&self->check, NULL);
    return self;
}

static void s_join(mb_lifecycle_t *self) {
    if (self->joinable) {
        pthread_join(self->thread, NULL);
        self->joinable = 0;
    }
}

void mb_lifecycle_destroy(mb_lifecycle_t **self_p) {
    if (!self_p || !*self_p) return;
    mb_lifecycle_t *self = *self_p;
    self->cancel = 1;
    s_join(self);
    pthread_mutex_destroy(&self->lock);
    pthread_mutex_destroy(&self->check);
    free(self->home);
    free(self->domain);
    free(self->dir);
    free(self);
    *self_p = NULL;
}

static void s_set(mb_lifecycle_t *self, job_state_t st, const char *error) {
    pthread_mutex_lock(&self->lock);
    self->state = st;
    if (error) snprintf(self->error, sizeof self->error, "%s", error);
    if (st == JOB_FAILED) self->failed_at = mb_clock_ms();
    pthread_mutex_unlock(&self->lock);
}

static int s_running(mb_lifecycle_t *self) {
    pthread_mutex_lock(&self->lock);
    int r = self->state == JOB_FITTING || self->state == JOB_EMBEDDING;
    pthread_mutex_unlock(&self->lock);
    return r;
}

/* The expert the catalog asks for (builtin: without a fit yet). */
static int s_desired(mb_lifecycle_t *self, mb_expert_spec_t *spec, mb_err_t *err) {
    mb_domain_info_t info;
    memset(spec, 0, sizeof *spec);
    int rc = mb_catalog_domain_get(self->home, self->domain, &info, err);
    if (rc != 0) return rc;
    snprintf(spec->backend, sizeof spec->backend, "%s", info.embed);
    spec->dim = info.dim;
    snprintf(spec->url, sizeof spec->url, "%s", info.url);
    snprintf(spec->model, sizeof spec->model, "%s", info.model);
    snprintf(spec->api_key_env, sizeof spec->api_key_env, "%s", info.api_key_env);
    mb_expert_spec_version(spec);
    return 0;
}

/* ---- the job ----------------------------------------------------------- */

typedef struct {
    char **texts;
    size_t n, cap;
} texts_t;

static int s_collect(void *arg, int64_t id, const char *text) {
    (void)id;
    texts_t *t = arg;
    if (t->n == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 4096;
        t->texts = mb_xrealloc(t->texts, t->cap * sizeof *t->texts);
    }
    t->texts[t->n++] = strdup(text);
    return 0;
}

typedef struct {
    mb_lifecycle_t *lc;
    mb_embed_t *emb;
} embed_ctx_t;

static int s_embed_cb(void *arg, const char *const *texts, size_t n, float *out,
                      mb_err_t *err) {
    embed_ctx_t *c = arg;
    return mb_embed_batch(c->emb, texts, n, MB_EMBED_PASSAGE, out, err);
}

static void s_progress_cb(void *arg, int64_t done, int64_t total) {
    embed_ctx_t *c = arg;
    pthread_mutex_lock(&c->lc->lock);
    c->lc->done = done;
    c->lc->total = total;
    pthread_mutex_unlock(&c->lc->lock);
}

/* Deletes fitted model files other than keep (and the pending one). */
static void s_remove_old_models(mb_lifecycle_t *self, const char *keep,
                                const char *keep2) {
    DIR *d = opendir(self->dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t l = strlen(e->d_name);
        if (strncmp(e->d_name, "expert-", 7) != 0 || l < 5 ||
            strcmp(e->d_name + l - 4, ".bin") != 0)
            continue;
        if ((keep && strcmp(e->d_name, keep) == 0) ||
            (keep2 && strcmp(e->d_name, keep2) == 0))
            continue;
        char path[4608];
        snprintf(path, sizeof path, "%s/%s", self->dir, e->d_name);
        unlink(path);
    }
    closedir(d);
}

static void *s_job(void *arg) {
    mb_lifecycle_t *self = arg;
    int64_t t0 = mb_clock_ms();
    mb_err_t err = {0};
    mb_expert_spec_t spec, pending;
    mb_embed_t *emb = NULL;
    int rc = s_desired(self, &spec, &err);
    /* Resume an interrupted job when it was for the expert still wanted. */
    int resume =
        rc == 0 &&
        mb_expert_read_file(self->dir, "expert.pending.json", &pending, NULL) == 0 &&
        strcmp(pending.backend, spec.backend) == 0 && pending.dim == spec.dim &&
        strcmp(pending.model, spec.model) == 0 && strcmp(pending.url, spec.url) == 0;
    if (rc == 0 && resume) {
        spec = pending;
        mb_info("resuming the re-embed to %s", spec.version);
    } else if (rc == 0 && strcmp(spec.backend, "builtin") == 0) {
        s_set(self, JOB_FITTING, NULL);
        texts_t t = {0};
        rc = mb_index_each_text(self->index, s_collect, &t, &err);
        if (rc == 0) {
            int64_t f0 = mb_clock_ms();
            long cores = sysconf(_SC_NPROCESSORS_ONLN);
            int was = s_blas_threads(s_env_int("MOEBUS_FIT_THREADS", (int)cores));
            rc = mb_embed_fit(&spec, self->dir, (const char *const *)t.texts, t.n, &err);
            s_blas_threads(was);
            if (rc == 0)
                mb_info("fitted %s on %zu chunks in %lld ms", spec.version, t.n,
                        (long long)(mb_clock_ms() - f0));
        }
        for (size_t i = 0; i < t.n; i++)
            free(t.texts[i]);
        free(t.texts);
    }
    if (rc == 0) {
        pthread_mutex_lock(&self->lock);
        snprintf(self->target, sizeof self->target, "%s", spec.version);
        pthread_mutex_unlock(&self->lock);
        rc = mb_expert_write_file(self->dir, "expert.pending.json", &spec, &err);
    }
    if (rc == 0 && !(emb = mb_embed_open(&spec, self->dir, &err))) rc = err.code;
    if (rc == 0) {
        s_set(self, JOB_EMBEDDING, NULL);
        embed_ctx_t c = {self, emb};
        rc = mb_index_reembed(self->index, spec.version, s_embed_cb, s_progress_cb, &c,
                              &self->cancel, &err);
    }
    mb_embed_destroy(&emb);
    if (rc == 0) rc = mb_expert_write(self->dir, &spec, &err);
    if (rc == 0) {
        char path[4608];
        snprintf(path, sizeof path, "%s/expert.pending.json", self->dir);
        unlink(path);
        s_remove_old_models(self, spec.model_file, NULL);
        mb_info("expert %s serves domain %s (%lld ms)", spec.version, self->domain,
                (long long)(mb_clock_ms() - t0));
        pthread_mutex_lock(&self->lock);
        self->last_ms = mb_clock_ms() - t0;
        self->error[0] = 0;
        pthread_mutex_unlock(&self->lock);
        s_set(self, JOB_IDLE, NULL);
    } else {
        if (!self->cancel) mb_warn("expert job for %s failed: %s", self->domain, err.msg);
        s_set(self, JOB_FAILED, err.msg);
    }
    return NULL;
}

static int s_start(mb_lifecycle_t *self, const char *why) {
    s_join(self); /* a finished job */
    mb_info("expert job for %s: %s", self->domain, why);
    pthread_mutex_lock(&self->lock);
    self->state = JOB_FITTING;
    self->done = self->total = 0;
    self->target[0] = 0;
    pthread_mutex_unlock(&self->lock);
    self->cancel = 0;
    if (pthread_create(&self->thread, NULL, s_job, self) != 0) {
        s_set(self, JOB_FAILED, "cannot start a thread");
        return -1;
    }
    self->joinable = 1;
    return 1;
}

static int s_check(mb_lifecycle_t *self, int force, int64_t quiet_ms, mb_err_t *err);

int mb_lifecycle_check(mb_lifecycle_t *self, int force, int64_t quiet_ms, mb_err_t *err) {
    /* Any request thread may call; an automatic check just skips when
     * another is under way. */
    if (force)
        pthread_mutex_lock(&self->check);
    else if (pthread_mutex_trylock(&self->check) != 0)
        return 0;
    int rc = s_check(self, force, quiet_ms, err);
    pthread_mutex_unlock(&self->check);
    return rc;
}

static int s_check(mb_lifecycle_t *self, int force, int64_t quiet_ms, mb_err_t *err) {
    if (s_running(self)) {
        if (force)
            return -mb_err_set(err, MB_EEXISTS, "an expert job is already running");
        return 0;
    }
    if (force) return s_start(self, "asked to refit");
    /* MOEBUS_EXPERT_JOBS=0: only explicit refits (benchmarks that bring
     * their own vectors) */
    if (s_env_int("MOEBUS_EXPERT_JOBS", 1) == 0) return 0;
    int64_t now = mb_clock_ms();
    pthread_mutex_lock(&self->lock);
    int failed_recently = self->state == JOB_FAILED && now - self->failed_at < 60000;
    /* Automatic jobs wait for writes to go quiet (an ingest in full flow
     * would make a fit stale at once) and back off after a failure. The
     * rate limit only counts checks that got past the quiet test, so the
     * first idle tick after an ingest checks at once. */
    int quiet = quiet_ms >= s_env_int("MOEBUS_FIT_QUIET_MS", 1500);
    int checked_recently = now - self->last_catalog_check < 2000;
    if (quiet && !checked_recently) self->last_catalog_check = now;
    pthread_mutex_unlock(&self->lock);
    if (failed_recently || checked_recently || !quiet) return 0;
    mb_expert_spec_t want, have;
    if (s_desired(self, &want, NULL) != 0) return 0;
    int fitted = mb_expert_read(self->dir, &have, NULL) == 0;
    json_t *st = mb_index_stats(self->index);
    int64_t chunks = json_integer_value(json_object_get(st, "chunks"));
    int64_t stored = json_integer_value(json_object_get(st, "vectors_stored"));
    json_decref(st);
    char pend[4608];
    snprintf(pend, sizeof pend, "%s/expert.pending.json", self->dir);
    if (access(pend, F_OK) == 0) return s_start(self, "an interrupted job");
    if (strcmp(want.backend, "builtin") != 0) {
        if (!fitted) {
            char cur[192];
            mb_index_expert(self->index, cur, sizeof cur);
            if (stored == 0 || strcmp(cur, want.version) == 0) {
                /* nothing to re-embed: just name the expert */
                if (mb_expert_write(self->dir, &want, NULL) == 0)
                    mb_info("expert %s serves domain %s", want.version, self->domain);
                if (stored == chunks) return 0;
            }
            return s_start(self, "the domain has no expert record");
        }
        if (strcmp(have.version, want.version) != 0 || strcmp(have.url, want.url) != 0)
            return s_start(self, "the catalog names another expert");
        if (stored < chunks) return s_start(self, "some chunks have no vector");
        return 0;
    }
    if (!fitted || strcmp(have.backend, "builtin") != 0 || have.dim != want.dim) {
        if (chunks >= s_env_int("MOEBUS_FIT_MIN_CHUNKS", 100))
            return s_start(self, fitted ? "the catalog names another expert"
                                        : "enough text for the first fit");
        return 0;
    }
    if (!self->verified) {
        /* Once per start: a model file that no longer loads (corrupt, or
         * written by an older moebus) is refitted, not served around. */
        self->verified = 1;
        mb_err_t lerr;
        mb_embed_t *e = mb_embed_open(&have, self->dir, &lerr);
        if (!e) {
            mb_warn("the fitted expert of %s cannot be loaded: %s", self->domain,
                    lerr.msg);
            return s_start(self, "the fitted model cannot be loaded");
        }
        mb_embed_destroy(&e);
    }
    double growth = s_env_double("MOEBUS_REFIT_GROWTH", 2.0);
    if (growth > 1 && have.fit_chunks > 0 && (double)chunks >= growth * have.fit_chunks)
        return s_start(self, "the corpus has grown since the fit");
    if (stored < chunks) return s_start(self, "some chunks have no vector");
    return 0;
}

json_t *mb_lifecycle_status(mb_lifecycle_t *self) {
    pthread_mutex_lock(&self->lock);
    json_t *j = json_pack("{s:s, s:I, s:I}", "state", s_state_names[self->state], "done",
                          (json_int_t)self->done, "total", (json_int_t)self->total);
    if (*self->target) json_object_set_new(j, "target", json_string(self->target));
    if (*self->error) json_object_set_new(j, "error", json_string(self->error));
    if (self->last_ms) json_object_set_new(j, "last_ms", json_integer(self->last_ms));
    pthread_mutex_unlock(&self->lock);
    return j;
}
