/* libFuzzer target for the body decoder: the parser every process runs on
 * untrusted bytes. The input is split into frames at each "\n--\n" so the
 * fuzzer explores JSON frames and vector frames together. */
#include <stdint.h>
#include <string.h>

#include "mb_body.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    zframe_t *frames[16];
    size_t n = 0, start = 0;
    for (size_t i = 0; i + 4 <= size && n < 15; i++) {
        if (memcmp(data + i, "\n--\n", 4) == 0) {
            frames[n++] = zframe_new(data + start, i - start);
            start = i + 4;
            i += 3;
        }
    }
    frames[n++] = zframe_new(data + start, size - start);
    mb_body_t *body = NULL;
    mb_err_t err;
    if (mb_body_decode(frames, n, &body, &err) == 0) {
        /* a decoded body must re-encode and decode to the same JSON */
        zmsg_t *msg = zmsg_new();
        mb_body_encode(body, msg);
        size_t m = zmsg_size(msg);
        zframe_t *again[16];
        again[0] = zmsg_first(msg);
        for (size_t i = 1; i < m; i++)
            again[i] = zmsg_next(msg);
        mb_body_t *b2 = NULL;
        if (mb_body_decode(again, m, &b2, &err) != 0) __builtin_trap();
        if (!json_equal(mb_body_json(body), mb_body_json(b2))) __builtin_trap();
        mb_body_destroy(&b2);
        zmsg_destroy(&msg);
    } else if (err.msg[0] == '\0') {
        __builtin_trap(); /* every rejection explains itself */
    }
    mb_body_destroy(&body);
    for (size_t i = 0; i < n; i++)
        zframe_destroy(&frames[i]);
    return 0;
}
