/* broker.h — the Majordomo (MDP/0.2) broker every moebus process talks to.
 *
 * One ROUTER socket serves clients (MDPC02) and workers (MDPW02). Requests
 * queue per service and go to that service's least-recently-used idle worker.
 * Heartbeats flow both ways; a worker silent for MB_HEARTBEAT_LIVENESS
 * intervals is dropped, and if it held a request the client is told
 * `unavailable` at once rather than left to time out. A request for a service
 * with no worker waits up to `wait_ms` for one to register, then gets
 * `unknown_service` (never seen) or `unavailable` (seen, all gone).
 * Internal services: mmi.service, mmi.services.
 */
#ifndef MB_BROKER_H
#define MB_BROKER_H

#include <signal.h>

#include "mb_error.h"

typedef struct mb_broker_t mb_broker_t;

/* Binds endpoint. wait_ms: how long a request waits for a worker to appear. */
mb_broker_t *mb_broker_new(const char *endpoint, int wait_ms, mb_err_t *err);
void mb_broker_destroy(mb_broker_t **self_p);
/* Runs until *stop becomes non-zero (checked at least every 100 ms). */
int mb_broker_run(mb_broker_t *self, volatile sig_atomic_t *stop);

/* `moebus broker` */
int mb_broker_main(int argc, char **argv);

#endif
