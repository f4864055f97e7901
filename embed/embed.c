/* embed.c — backend dispatch, expert.json, fitting. */
#include "embed.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "embed_impl.h"
#include "lsa.h"

struct mb_embed_t {
    const mb_embed_ops_t *ops;
    void *state;
    mb_lsa_t *lsa; /* builtin */
    int dim;
    char version[192];
};

static int s_dim_ok(int dim, mb_err_t *err) {
    if (dim < 8 || dim > 4096)
        return mb_err_set(err, MB_EBADREQ, "embedding dimension %d outside 8..4096", dim);
    return 0;
}

void mb_expert_spec_version(mb_expert_spec_t *s) {
    if (strcmp(s->backend, "hash") == 0)
        snprintf(s->version, sizeof s->version, "hash-v2-d%d", s->dim);
    else if (strcmp(s->backend, "http") == 0)
        snprintf(s->version, sizeof s->version, "http:%s:d%d", s->model, s->dim);
}

mb_embed_t *mb_embed_open(const mb_expert_spec_t *spec, const char *dir, mb_err_t *err) {
    if (s_dim_ok(spec->dim, err) != 0) return NULL;
    mb_embed_t *self = calloc(1, sizeof *self);
    self->dim = spec->dim;
    snprintf(self->version, sizeof self->version, "%s", spec->version);
    if (strcmp(spec->backend, "hash") == 0) {
        self->ops = &mb_embed_hash_ops;
        self->state = mb_embed_hash_new(spec->dim, err);
        if (!self->state) goto fail;
        snprintf(self->version, sizeof self->version, "hash-v2-d%d", spec->dim);
    } else if (strcmp(spec->backend, "http") == 0) {
        self->ops = &mb_embed_http_ops;
        self->state = mb_embed_http_new(spec, err);
        if (!self->state) goto fail;
        if (!*self->version)
            snprintf(self->version, sizeof self->version, "http:%s:d%d", spec->model,
                     spec->dim);
    } else if (strcmp(spec->backend, "builtin") == 0) {
        if (!*spec->model_file) {
            mb_err_set(err, MB_ENOTFOUND, "the builtin expert is not fitted yet");
            goto fail;
        }
        char path[4608];
        snprintf(path, sizeof path, "%s/%s", dir ? dir : ".", spec->model_file);
        self->lsa = mb_lsa_load(path, err);
        if (!self->lsa) goto fail;
        if (mb_lsa_dim(self->lsa) != spec->dim) {
            mb_err_set(err, MB_EIO, "%s has %d dimensions, the domain %d", path,
                       mb_lsa_dim(self->lsa), spec->dim);
            goto fail;
        }
    } else {
        mb_err_set(err, MB_EBADREQ,
                   "unknown embedding backend '%s' (known: builtin, hash, http)",
                   spec->backend);
        goto fail;
    }
    return self;
fail:
    mb_embed_destroy(&self);
    return NULL;
}

mb_embed_t *mb_embed_new(const char *backend, int dim, mb_err_t *err) {
    mb_expert_spec_t spec = {.dim = dim};
    snprintf(spec.backend, sizeof spec.backend, "%s", backend ? backend : "");
    if (strcmp(spec.backend, "hash") != 0) {
        mb_err_set(err, MB_EBADREQ,
                   "backend '%s' needs a spec (mb_embed_open); only hash opens bare",
                   spec.backend);
        return NULL;
    }
    return mb_embed_open(&spec, NULL, err);
}

void mb_embed_destroy(mb_embed_t **self_p) {
    if (!self_p || !*self_p) return;
    mb_embed_t *self = *self_p;
    if (self->ops && self->state) self->ops->destroy(self->state);
    mb_lsa_destroy(&self->lsa);
    free(self);
    *self_p = NULL;
}

int mb_embed_dim(const mb_embed_t *self) {
    return self->dim;
}

const char *mb_embed_version(const mb_embed_t *self) {
    return self->version;
}

int mb_embed_batch(mb_embed_t *self, const char *const *texts, size_t n,
                   mb_embed_kind_t kind, float *out, mb_err_t *err) {
    if (self->lsa)
        return mb_lsa_embed(self->lsa, texts, n, kind == MB_EMBED_QUERY, out, err);
    return self->ops->batch(self->state, texts, n, kind, out, err);
}

/* ---- expert.json ------------------------------------------------------- */

static void s_cp(char *dst, size_t sz, json_t *j, const char *key) {
    const char *v = json_string_value(json_object_get(j, key));
    snprintf(dst, sz, "%s", v ? v : "");
}

int mb_expert_read(const char *dir, mb_expert_spec_t *spec, mb_err_t *err) {
    return mb_expert_read_file(dir, "expert.json", spec, err);
}

int mb_expert_write(const char *dir, const mb_expert_spec_t *spec, mb_err_t *err) {
    return mb_expert_write_file(dir, "expert.json", spec, err);
}

int mb_expert_read_file(const char *dir, const char *name, mb_expert_spec_t *spec,
                        mb_err_t *err) {
    char path[4608];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    memset(spec, 0, sizeof *spec);
    if (access(path, F_OK) != 0)
        return mb_err_set(err, MB_ENOTFOUND, "%s does not exist", path);
    json_error_t je;
    json_t *j = json_load_file(path, 0, &je);
    if (!j) return mb_err_set(err, MB_EIO, "%s: %s", path, je.text);
    s_cp(spec->backend, sizeof spec->backend, j, "backend");
    s_cp(spec->url, sizeof spec->url, j, "url");
    s_cp(spec->model, sizeof spec->model, j, "model");
    s_cp(spec->api_key_env, sizeof spec->api_key_env, j, "api_key_env");
    s_cp(spec->model_file, sizeof spec->model_file, j, "model_file");
    s_cp(spec->version, sizeof spec->version, j, "version");
    spec->dim = (int)json_integer_value(json_object_get(j, "dim"));
    spec->fit_chunks = (long)json_integer_value(json_object_get(j, "fit_chunks"));
    json_decref(j);
    if (!*spec->backend || !*spec->version || spec->dim <= 0)
        return mb_err_set(err, MB_EIO, "%s lacks backend, version or dim", path);
    return 0;
}

int mb_expert_write_file(const char *dir, const char *name, const mb_expert_spec_t *spec,
                         mb_err_t *err) {
    char path[4608], tmp[4624];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    /* the API key itself is never written: only the variable's name */
    json_t *j =
        json_pack("{s:s, s:i, s:s, s:s, s:s, s:s, s:s, s:I}", "backend", spec->backend,
                  "dim", spec->dim, "url", spec->url, "model", spec->model, "api_key_env",
                  spec->api_key_env, "model_file", spec->model_file, "version",
                  spec->version, "fit_chunks", (json_int_t)spec->fit_chunks);
    int rc = json_dump_file(j, tmp, JSON_INDENT(2));
    json_decref(j);
    FILE *f = rc == 0 ? fopen(tmp, "r+") : NULL;
    if (f) {
        if (fsync(fileno(f)) != 0) rc = -1;
        fclose(f);
    }
    if (rc != 0 || !f || rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        return mb_err_set(err, MB_EIO, "cannot write %s: %s", path, strerror(e));
    }
    return 0;
}

int mb_embed_fit(mb_expert_spec_t *spec, const char *dir, const char *const *texts,
                 size_t n, mb_err_t *err) {
    mb_lsa_opts_t o;
    mb_lsa_opts_default(&o);
    o.dim = spec->dim;
    if (o.hash_dims > o.dim / 4) o.hash_dims = o.dim / 4;
    mb_lsa_t *m = mb_lsa_fit(texts, n, &o, err);
    if (!m) return err ? err->code : MB_EINTERNAL;
    /* A new file per fit: the embed worker may still be reading the last. */
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    long long stamp = (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    snprintf(spec->model_file, sizeof spec->model_file, "expert-%lld.bin", stamp);
    char path[4608];
    snprintf(path, sizeof path, "%s/%s", dir, spec->model_file);
    int rc = mb_lsa_save(m, path, err);
    spec->fit_chunks = (long)n;
    if (rc == 0)
        snprintf(spec->version, sizeof spec->version, "lsa-%lld-n%zu-v%zu-d%d", stamp, n,
                 mb_lsa_vocab(m), spec->dim);
    mb_lsa_destroy(&m);
    return rc;
}
