/* svc.h — what every moebus worker process shares: signal handling and the
 * receive/handle/reply loop. */
#ifndef MB_SVC_H
#define MB_SVC_H

#include <signal.h>

#include "mb_body.h"
#include "mb_worker.h"

/* Set by SIGINT/SIGTERM. */
extern volatile sig_atomic_t mb_svc_stop;

/* Installs SIGINT/SIGTERM handlers that set mb_svc_stop, ignores SIGPIPE,
 * and keeps CZMQ from installing its own handler. Call before any socket. */
void mb_svc_signals(void);

/* Returns the reply to req (never NULL). req stays owned by the loop. */
typedef mb_body_t *(mb_svc_handler_fn)(void *state, mb_body_t *req, mb_worker_t *worker);
/* Called when no request came for a while (for background upkeep). */
typedef void(mb_svc_idle_fn)(void *state);

/* Registers `service` at endpoint and serves until mb_svc_stop. */
int mb_svc_run(const char *endpoint, const char *service, mb_svc_handler_fn *handler,
               mb_svc_idle_fn *idle, void *state);

/* Options every service process takes. */
typedef struct {
    const char *home; /* --home, else $MOEBUS_HOME, else ./moebus-data */
    const char
        *endpoint;      /* --endpoint, else $MOEBUS_ENDPOINT, else tcp://127.0.0.1:5555 */
    const char *domain; /* --domain (required when asked for) */
} mb_svc_opts_t;

/* Parses --home, --endpoint and, with want_domain, a required --domain.
 * Returns 0 to go on, or an exit status: 0 after printing --help (then
 * *done is set), 2 after printing usage for bad arguments. */
int mb_svc_parse(int argc, char **argv, const char *usage, int want_domain,
                 mb_svc_opts_t *o, int *done);

/* Like mb_svc_run with `threads` workers in parallel, each its own thread and
 * MDP worker (the broker balances between them). The handler must be
 * thread-safe; idle runs on the first thread only. */
int mb_svc_run_threads(const char *endpoint, const char *service,
                       mb_svc_handler_fn *handler, mb_svc_idle_fn *idle, void *state,
                       int threads);

/* Longest query the gate and the router take, in bytes. */
#define MB_QUERY_MAX_BYTES 16384

/* The request's "query": a non-empty string of at most MB_QUERY_MAX_BYTES.
 * Returns it, or NULL with *error set to the bad_request reply. */
const char *mb_svc_query(json_t *req, mb_body_t **error);

/* Common "--help" check: prints usage and returns 1 when argv asks for it. */
int mb_svc_wants_help(int argc, char **argv, const char *usage);

#endif
