/* mb_body.h — a message body: one JSON object frame plus zero or more frames
 * of little-endian float32 vectors.
 *
 * Decoding is where untrusted bytes enter every moebus process, so it checks
 * everything: the JSON frame must be valid UTF-8 JSON holding an object, the
 * whole message must fit MB_MAX_MESSAGE_BYTES, and each vector frame must hold
 * a whole number of floats (of `dim`-sized vectors when the JSON says "dim").
 * Vectors are copied into aligned host-order float arrays.
 */
#ifndef MB_BODY_H
#define MB_BODY_H

#include <czmq.h>
#include <jansson.h>
#include <stdbool.h>

#include "mb_error.h"

typedef struct mb_body_t mb_body_t;

/* New body owning `json` (a JSON object; NULL makes an empty object). */
mb_body_t *mb_body_new(json_t *json);
void mb_body_destroy(mb_body_t **self_p);

/* Borrowed JSON object of the body. */
json_t *mb_body_json(const mb_body_t *self);

/* Appends a vector frame holding a copy of n floats. */
int mb_body_add_vectors(mb_body_t *self, const float *v, size_t n);
size_t mb_body_vector_frames(const mb_body_t *self);
/* Borrowed floats of frame i; *n receives the float count. NULL if i is out
 * of range. */
const float *mb_body_vectors(const mb_body_t *self, size_t i, size_t *n);

/* Parses body frames (the JSON frame first). On success *out is a new body.
 * The frames are read, not consumed. */
int mb_body_decode(zframe_t **frames, size_t nframes, mb_body_t **out, mb_err_t *err);
/* Appends the body's frames to msg. */
int mb_body_encode(const mb_body_t *self, zmsg_t *msg);

/* Replies. mb_body_ok sets "ok": true on json (taking ownership; NULL -> {}).
 * mb_body_error builds {"ok":false,"error":{"code","message"}}. */
mb_body_t *mb_body_ok(json_t *json);
mb_body_t *mb_body_error(int code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* 0 if reply says ok; else the reply's error code, message copied to err. */
int mb_body_status(const mb_body_t *reply, mb_err_t *err);

/* Small JSON helpers with defaults. */
const char *mb_json_str(const json_t *obj, const char *key, const char *dflt);
json_int_t mb_json_int(const json_t *obj, const char *key, json_int_t dflt);

#endif
