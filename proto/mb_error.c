/* mb_error.c — error codes and their wire names. */
#include "mb_error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const struct {
    int code;
    const char *name;
} s_names[] = {
    {MB_OK, "ok"},
    {MB_EBADREQ, "bad_request"},
    {MB_EUNKSERVICE, "unknown_service"},
    {MB_EUNKDOMAIN, "unknown_domain"},
    {MB_ETIMEOUT, "timeout"},
    {MB_EUNAVAIL, "unavailable"},
    {MB_ETOOLARGE, "too_large"},
    {MB_ENOTFOUND, "not_found"},
    {MB_EINTERNAL, "internal"},
    {MB_EEXISTS, "exists"},
    {MB_EIO, "io"},
    {MB_EVERSION, "version"},
};

int mb_err_set(mb_err_t *err, int code, const char *fmt, ...) {
    if (err) {
        va_list ap;
        err->code = code;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return code;
}

void mb_err_clear(mb_err_t *err) {
    if (err) {
        err->code = 0;
        err->msg[0] = '\0';
    }
}

const char *mb_err_name(int code) {
    for (size_t i = 0; i < sizeof s_names / sizeof s_names[0]; i++)
        if (s_names[i].code == code) return s_names[i].name;
    return "internal";
}

int mb_err_from_name(const char *name) {
    if (!name) return MB_EINTERNAL;
    for (size_t i = 0; i < sizeof s_names / sizeof s_names[0]; i++)
        if (strcmp(s_names[i].name, name) == 0) return s_names[i].code;
    return MB_EINTERNAL;
}
