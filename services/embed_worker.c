/* embed_worker.c — `moebus embed --domain D`: serves embed.<D>.
 *
 * Request  {"op":"embed","texts":[...]}
 * Reply    {"ok":true,"dim":D,"count":n,"model":"..."} + one frame of n*D floats
 * Request  {"op":"info"} -> {"ok":true,"dim":D,"model":"..."}
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "embed.h"
#include "home.h"
#include "mb_log.h"
#include "services.h"
#include "svc.h"

#define MAX_TEXTS 10000

static const char *s_usage =
    "usage: moebus embed --domain NAME [--home DIR] [--endpoint E]\n"
    "\n"
    "Serves embed.NAME on the bus: turns text into vectors with the domain's\n"
    "embedding expert (from the catalog in HOME).\n"
    "\n"
    "  --domain NAME   domain to serve (required)\n"
    "  --home DIR      moebus home (default $MOEBUS_HOME or ./moebus-data)\n"
    "  --endpoint E    broker endpoint (default $MOEBUS_ENDPOINT or "
    "tcp://127.0.0.1:5555)\n";

static mb_body_t *s_handle(void *state, mb_body_t *req, mb_worker_t *worker) {
    mb_embed_t *emb = state;
    json_t *j = mb_body_json(req);
    const char *op = mb_json_str(j, "op", "");
    int dim = mb_embed_dim(emb);
    if (strcmp(op, "info") == 0)
        return mb_body_ok(
            json_pack("{s:i, s:s}", "dim", dim, "model", mb_embed_version(emb)));
    if (strcmp(op, "embed") != 0)
        return mb_body_error(MB_EBADREQ, "unknown op '%s' (embed, info)", op);
    json_t *texts = json_object_get(j, "texts");
    if (!json_is_array(texts) || json_array_size(texts) == 0)
        return mb_body_error(MB_EBADREQ,
                             "\"texts\" must be a non-empty array of strings");
    size_t n = json_array_size(texts);
    if (n > MAX_TEXTS)
        return mb_body_error(MB_EBADREQ, "at most %d texts per request, got %zu",
                             MAX_TEXTS, n);
    const char **tv = malloc(n * sizeof *tv);
    for (size_t i = 0; i < n; i++) {
        tv[i] = json_string_value(json_array_get(texts, i));
        if (!tv[i]) {
            free(tv);
            return mb_body_error(MB_EBADREQ, "texts[%zu] is not a string", i);
        }
    }
    float *out = malloc(n * (size_t)dim * sizeof *out);
    mb_err_t err;
    mb_body_t *reply;
    /* Long batches are fine: the worker's pulse thread keeps heartbeating. */
    int rc = mb_embed_batch(emb, tv, n, out, &err);
    if (rc != 0) {
        reply = mb_body_error(rc, "%s", err.msg);
    } else {
        reply = mb_body_ok(json_pack("{s:i, s:I, s:s}", "dim", dim, "count",
                                     (json_int_t)n, "model", mb_embed_version(emb)));
        mb_body_add_vectors(reply, out, n * (size_t)dim);
    }
    free(out);
    free(tv);
    return reply;
}

int mb_embed_main(int argc, char **argv) {
    mb_svc_opts_t o;
    int done, rc = mb_svc_parse(argc, argv, s_usage, 1, &o, &done);
    if (done) return rc;
    const char *home = o.home, *endpoint = o.endpoint, *domain = o.domain;
    char name[128];
    snprintf(name, sizeof name, "embed %s", domain);
    mb_log_init(name);
    mb_svc_signals();
    mb_err_t err;
    mb_domain_info_t info;
    if (mb_catalog_domain_get(home, domain, &info, &err) != 0) {
        mb_error("%s", err.msg);
        return 1;
    }
    mb_embed_t *emb = mb_embed_new(info.embed, info.dim, &err);
    if (!emb) {
        mb_error("%s", err.msg);
        return 1;
    }
    char service[128];
    snprintf(service, sizeof service, "embed.%s", domain);
    rc = mb_svc_run(endpoint, service, s_handle, NULL, emb);
    mb_embed_destroy(&emb);
    return rc;
}
