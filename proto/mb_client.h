/* mb_client.h — MDP/0.2 client: synchronous calls with a deadline and
 * asynchronous fan-out.
 *
 * MDP/0.2 carries no correlation id, so the client stamps every request body
 * with "id" (a per-client counter) and every moebus worker echoes it. That
 * lets one DEALER socket have many requests in flight (fan-out) and lets a
 * late reply to an abandoned request be recognised and dropped instead of
 * being mistaken for the answer to the next call.
 *
 * Not thread-safe: one client per thread.
 */
#ifndef MB_CLIENT_H
#define MB_CLIENT_H

#include <stdint.h>

#include "mb_body.h"

typedef struct mb_client_t mb_client_t;

mb_client_t *mb_client_new(const char *endpoint, mb_err_t *err);
void mb_client_destroy(mb_client_t **self_p);

/* Sends *request (ownership taken, *request set to NULL) to service and waits
 * up to timeout_ms. Returns 0 with *reply set on an ok reply; on an error
 * reply returns its code (err filled, *reply still set so the caller may read
 * details); MB_ETIMEOUT with *reply NULL when the deadline passes. */
int mb_client_call(mb_client_t *self, const char *service, mb_body_t **request,
                   mb_body_t **reply, int timeout_ms, mb_err_t *err);

/* Asynchronous send: returns the request id (> 0) or a negative code. */
int64_t mb_client_send(mb_client_t *self, const char *service, mb_body_t **request,
                       mb_err_t *err);

/* Waits until every id in ids has a reply or deadline_ms (mb_clock_ms() time)
 * passes. replies[i] receives the reply to ids[i] or NULL. Replies to ids not
 * in the list are late answers to abandoned requests and are dropped.
 * Returns how many replies arrived. */
int mb_client_gather(mb_client_t *self, const int64_t *ids, size_t n, mb_body_t **replies,
                     int64_t deadline_ms);

#endif
