/* admin.h — the `admin` service: the one writer of catalog.db while a
 * service runs, so the CLI works against a remote service over the bus.
 *
 * Ops (JSON bodies; see proto/PROTOCOL.md):
 *   domain.add {name, embed?, dim?, index?, url?, model?, api_key_env?}
 *   domain.set_expert {name, embed, dim?, url?, model?, api_key_env?}
 *   domain.remove {name, purge?}      domain.enable / domain.disable {name}
 *   domain.list                        status (supervisor + broker figures)
 *   job.start {domain, spec}  job.update {job, state?, progress?}
 *   job.get {job}  job.list             (ingest jobs, for --resume)
 * The same checks and writes run in-process when no service runs on a local
 * home (mb_admin_apply), so `moebus domain add` works before `serve`. */
#ifndef MB_ADMIN_H
#define MB_ADMIN_H

#include <jansson.h>

#include "mb_client.h"
#include "mb_error.h"

/* Applies one domain.* op to HOME's catalog. serving: a supervisor will stop
 * workers and purge (only a marker is left); otherwise purge deletes the
 * domain's directory now. Returns the reply JSON (new reference) or NULL
 * with err set. */
json_t *mb_admin_apply(const char *home, json_t *req, int serving, mb_err_t *err);

/* status: HOME/serve.status.json merged with the broker's per-service
 * figures (client may be NULL: no broker figures). */
json_t *mb_admin_status(const char *home, mb_client_t *client, mb_err_t *err);

/* Sends req (taken) to the service's admin, or applies it to HOME's catalog
 * when no service runs there and no endpoint was given explicitly. */
json_t *mb_admin_request(const char *home, const char *endpoint, int endpoint_given,
                         json_t *req, mb_err_t *err);

int mb_admin_main(int argc, char **argv);

#endif
