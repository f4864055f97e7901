/* mb_body.c — body encoding and validating decoder. */
#include "mb_body.h"
#include "mb_mem.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    float *v;
    size_t n;
} vecframe_t;

struct mb_body_t {
    json_t *json;
    vecframe_t *frames;
    size_t nframes;
};

mb_body_t *mb_body_new(json_t *json) {
    mb_body_t *self = calloc(1, sizeof *self);
    if (!self) {
        json_decref(json);
        return NULL;
    }
    self->json = json ? json : json_object();
    return self;
}

void mb_body_destroy(mb_body_t **self_p) {
    if (!self_p || !*self_p) return;
    mb_body_t *self = *self_p;
    for (size_t i = 0; i < self->nframes; i++)
        free(self->frames[i].v);
    free(self->frames);
    json_decref(self->json);
    free(self);
    *self_p = NULL;
}

json_t *mb_body_json(const mb_body_t *self) {
    return self->json;
}

/* Takes ownership of v (n floats). */
static int s_add_owned(mb_body_t *self, float *v, size_t n) {
    vecframe_t *f = mb_xrealloc(self->frames, (self->nframes + 1) * sizeof *f);
    if (!f) {
        free(v);
        return MB_EINTERNAL;
    }
    self->frames = f;
    self->frames[self->nframes].v = v;
    self->frames[self->nframes].n = n;
    self->nframes++;
    return 0;
}

int mb_body_add_vectors(mb_body_t *self, const float *v, size_t n) {
    float *copy = malloc(n ? n * sizeof(float) : 1);
    if (!copy) return MB_EINTERNAL;
    if (n) memcpy(copy, v, n * sizeof(float));
    return s_add_owned(self, copy, n);
}

size_t mb_body_vector_frames(const mb_body_t *self) {
    return self->nframes;
}

const float *mb_body_vectors(const mb_body_t *self, size_t i, size_t *n) {
    if (i >= self->nframes) return NULL;
    if (n) *n = self->frames[i].n;
    return self->frames[i].v;
}

/* The wire is little-endian; convert in place on big-endian hosts. */
static void s_le32_inplace(void *data, size_t n) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    uint32_t *w = data;
    for (size_t i = 0; i < n; i++)
        w[i] = __builtin_bswap32(w[i]);
#else
    (void)data;
    (void)n;
#endif
}

int mb_body_decode(zframe_t **frames, size_t nframes, mb_body_t **out, mb_err_t *err) {
    *out = NULL;
    if (nframes == 0 || !frames[0])
        return mb_err_set(err, MB_EBADREQ, "missing JSON body frame");
    size_t total = 0;
    for (size_t i = 0; i < nframes; i++)
        total += zframe_size(frames[i]);
    if (total > MB_MAX_MESSAGE_BYTES)
        return mb_err_set(err, MB_ETOOLARGE,
                          "message of %zu bytes exceeds the %zu byte limit", total,
                          MB_MAX_MESSAGE_BYTES);

    json_error_t jerr;
    /* jansson rejects invalid UTF-8 and NUL escapes unless asked not to. */
    json_t *json = json_loadb((const char *)zframe_data(frames[0]),
                              zframe_size(frames[0]), JSON_REJECT_DUPLICATES, &jerr);
    if (!json)
        return mb_err_set(err, MB_EBADREQ, "body is not valid JSON: %s (at byte %d)",
                          jerr.text, jerr.position);
    if (!json_is_object(json)) {
        json_decref(json);
        return mb_err_set(err, MB_EBADREQ, "body must be a JSON object");
    }
    json_int_t dim = 0;
    json_t *jdim = json_object_get(json, "dim");
    if (jdim) {
        if (!json_is_integer(jdim) || json_integer_value(jdim) <= 0 ||
            json_integer_value(jdim) > 65536) {
            json_decref(json);
            return mb_err_set(err, MB_EBADREQ, "\"dim\" must be an integer in 1..65536");
        }
        dim = json_integer_value(jdim);
    }
    mb_body_t *self = mb_body_new(json);
    if (!self) return mb_err_set(err, MB_EINTERNAL, "out of memory");
    for (size_t i = 1; i < nframes; i++) {
        size_t sz = zframe_size(frames[i]);
        if (sz % sizeof(float) != 0) {
            mb_body_destroy(&self);
            return mb_err_set(err, MB_EBADREQ,
                              "vector frame %zu has %zu bytes, not a multiple of 4", i,
                              sz);
        }
        size_t n = sz / sizeof(float);
        if (dim > 0 && n % (size_t)dim != 0) {
            mb_body_destroy(&self);
            return mb_err_set(
                err, MB_EBADREQ,
                "vector frame %zu holds %zu floats, not a multiple of dim %lld", i, n,
                (long long)dim);
        }
        float *v = malloc(sz ? sz : 1);
        if (!v) {
            mb_body_destroy(&self);
            return mb_err_set(err, MB_EINTERNAL, "out of memory");
        }
        if (sz) memcpy(v, zframe_data(frames[i]), sz);
        s_le32_inplace(v, n);
        if (s_add_owned(self, v, n) != 0) {
            mb_body_destroy(&self);
            return mb_err_set(err, MB_EINTERNAL, "out of memory");
        }
    }
    *out = self;
    return 0;
}

int mb_body_encode(const mb_body_t *self, zmsg_t *msg) {
    char *text = json_dumps(self->json, JSON_COMPACT);
    if (!text) return MB_EINTERNAL;
    zframe_t *f = zframe_new(text, strlen(text));
    free(text);
    if (!f) return MB_EINTERNAL;
    zmsg_append(msg, &f);
    for (size_t i = 0; i < self->nframes; i++) {
        size_t sz = self->frames[i].n * sizeof(float);
        zframe_t *vf = zframe_new(self->frames[i].v, sz);
        if (!vf) return MB_EINTERNAL;
        s_le32_inplace(zframe_data(vf), self->frames[i].n);
        zmsg_append(msg, &vf);
    }
    return 0;
}

mb_body_t *mb_body_ok(json_t *json) {
    if (!json) json = json_object();
    json_object_set_new(json, "ok", json_true());
    return mb_body_new(json);
}

mb_body_t *mb_body_error(int code, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    json_t *e = json_pack("{s:s, s:s}", "code", mb_err_name(code), "message", msg);
    return mb_body_new(json_pack("{s:b, s:o}", "ok", 0, "error", e));
}

int mb_body_status(const mb_body_t *reply, mb_err_t *err) {
    json_t *j = reply ? reply->json : NULL;
    if (j && json_is_true(json_object_get(j, "ok"))) return 0;
    json_t *e = j ? json_object_get(j, "error") : NULL;
    if (!e) return mb_err_set(err, MB_EINTERNAL, "reply has neither ok nor error");
    const char *code = mb_json_str(e, "code", "internal");
    return mb_err_set(err, mb_err_from_name(code), "%s", mb_json_str(e, "message", code));
}

const char *mb_json_str(const json_t *obj, const char *key, const char *dflt) {
    json_t *v = json_object_get(obj, key);
    return json_is_string(v) ? json_string_value(v) : dflt;
}

json_int_t mb_json_int(const json_t *obj, const char *key, json_int_t dflt) {
    json_t *v = json_object_get(obj, key);
    return json_is_integer(v) ? json_integer_value(v) : dflt;
}
