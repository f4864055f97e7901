/* mb_log.c — stderr logging. */
#include "mb_log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static char s_name[64] = "moebus";
static int s_min = MB_LOG_INFO;

void mb_log_init(const char *name) {
    snprintf(s_name, sizeof s_name, "%s", name);
    const char *lvl = getenv("MOEBUS_LOG");
    if (lvl) {
        if (strcmp(lvl, "debug") == 0)
            s_min = MB_LOG_DEBUG;
        else if (strcmp(lvl, "warn") == 0)
            s_min = MB_LOG_WARN;
        else if (strcmp(lvl, "error") == 0)
            s_min = MB_LOG_ERROR;
    }
}

void mb_log(int level, const char *fmt, ...) {
    if (level < s_min) return;
    static const char *names[] = {"debug", "info", "warn", "error"};
    char line[2048];
    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    gmtime_r(&tv.tv_sec, &tm);
    int off = (int)strftime(line, sizeof line, "%Y-%m-%dT%H:%M:%S", &tm);
    off += snprintf(line + off, sizeof line - (size_t)off,
                    ".%03dZ moebus[%s %d] %s: ", (int)(tv.tv_usec / 1000), s_name,
                    (int)getpid(), names[level]);
    va_list ap;
    va_start(ap, fmt);
    if (off < (int)sizeof line) vsnprintf(line + off, sizeof line - (size_t)off, fmt, ap);
    va_end(ap);
    /* one write() per line keeps lines whole when processes share stderr */
    size_t len = strnlen(line, sizeof line - 2);
    line[len] = '\n';
    if (write(2, line, len + 1) < 0) { /* nothing sensible to do */
    }
}
