/* mb_error.h — stable error codes shared by every moebus module and the wire.
 *
 * Functions return 0 on success or a negative MB_E* code, and fill an optional
 * mb_err_t with the code and a human message. Each code maps 1:1 to the
 * string used in a reply's "error.code" (mb_err_name), so a C caller and a
 * Python client see the same vocabulary. Codes are append-only: never renumber.
 */
#ifndef MB_ERROR_H
#define MB_ERROR_H

#include <stddef.h>

enum {
    MB_OK = 0,
    MB_EBADREQ = -1,     /* bad_request: malformed frames, JSON, fields, vectors */
    MB_EUNKSERVICE = -2, /* unknown_service: no worker ever registered it */
    MB_EUNKDOMAIN = -3,  /* unknown_domain: the domain is not in the catalog */
    MB_ETIMEOUT = -4,    /* timeout: no reply within the deadline */
    MB_EUNAVAIL = -5,    /* unavailable: the service exists but has no live worker */
    MB_ETOOLARGE = -6,   /* too_large: message over the size limit */
    MB_ENOTFOUND = -7,   /* not_found: unknown document or object */
    MB_EINTERNAL = -8,   /* internal: a bug or an I/O failure on the server side */
    MB_EEXISTS = -9,     /* exists: create of something already there */
    MB_EIO = -10,        /* io: file or database error */
    MB_EVERSION = -11    /* version: file written by a newer moebus */
};
#define MB_ERR_MSG_MAX 256

typedef struct {
    int code;
    char msg[MB_ERR_MSG_MAX];
} mb_err_t;

/* Fills err (may be NULL) and returns code, so callers write
 * `return mb_err_set(err, MB_EBADREQ, "k must be > 0");`. */
int mb_err_set(mb_err_t *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void mb_err_clear(mb_err_t *err);
/* Wire name of a code ("bad_request"…); "internal" for unknown codes. */
const char *mb_err_name(int code);
/* Inverse of mb_err_name; MB_EINTERNAL for names it does not know. */
int mb_err_from_name(const char *name);

/* Upper bound on a whole message (all frames), enforced by broker and workers. */
#define MB_MAX_MESSAGE_BYTES ((size_t)64 << 20)

#endif
