/* mb_worker.h — MDP/0.2 worker: register a service, receive requests, reply,
 * heartbeat, and reconnect by itself when the broker goes away.
 *
 * The worker handles one request at a time (MDP's contract); run several
 * mb_worker_t (threads or processes) to serve a service in parallel. Request
 * bodies are decoded and validated before mb_worker_recv returns them; a
 * malformed one is answered with bad_request/too_large here and never reaches
 * the caller. Heartbeats are sent from mb_worker_recv and, while the caller
 * handles a request, from a small pulse thread, so a long handler is never
 * mistaken for a dead worker. mb_worker_* calls come from one thread.
 */
#ifndef MB_WORKER_H
#define MB_WORKER_H

#include "mb_body.h"

typedef struct mb_worker_t mb_worker_t;

mb_worker_t *mb_worker_new(const char *endpoint, const char *service, mb_err_t *err);
/* Sends DISCONNECT to the broker and closes the socket. */
void mb_worker_destroy(mb_worker_t **self_p);

/* Waits up to timeout_ms for a request. Returns 0 with *request set (owned by
 * the caller), MB_ETIMEOUT when nothing came (also after a signal interrupted
 * the wait: callers check their stop flag on every return). */
int mb_worker_recv(mb_worker_t *self, mb_body_t **request, int timeout_ms);

/* Answers the request last received; takes ownership of *reply. The reply
 * carries the request's "id" so clients can match it. */
int mb_worker_reply(mb_worker_t *self, mb_body_t **reply);

/* Sends a heartbeat if one is due (the pulse thread does this while a request
 * is being handled; callers need not). */
void mb_worker_heartbeat(mb_worker_t *self);

/* How many times the worker has (re)registered with a broker. */
int mb_worker_registrations(const mb_worker_t *self);

#endif
