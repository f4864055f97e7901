/* mb_mdp.c — clocks, heartbeat settings and endpoint helpers. */
#include "mb_mdp.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int mb_heartbeat_ms(void) {
    const char *s = getenv("MOEBUS_HEARTBEAT_MS");
    if (s && *s) {
        long v = strtol(s, NULL, 10);
        if (v >= 10 && v <= 600000) return (int)v;
    }
    return 1000;
}

int64_t mb_clock_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t mb_clock_ms(void) {
    return mb_clock_us() / 1000;
}

void mb_endpoint_connectable(const char *bind, char *out, size_t outsz) {
    const char *star = strstr(bind, "://*");
    if (star) {
        size_t pre = (size_t)(star - bind) + 3;
        snprintf(out, outsz, "%.*s127.0.0.1%s", (int)pre, bind, star + 4);
    } else {
        snprintf(out, outsz, "%s", bind);
    }
}
