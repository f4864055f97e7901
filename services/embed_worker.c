/* embed_worker.c — `moebus embed --domain D`: serves embed.<D>.
 *
 * Request  {"op":"embed","texts":[...],"kind":"query"|"passage"}
 * Reply    {"ok":true,"dim":D,"count":n,"model":"..."} + one frame of n*D floats
 *          (before a builtin expert's first fit: "model":null,"fitted":false and
 *          no frame)
 * Request  {"op":"info"} -> {"ok":true,"dim":D,"model":"..."}
 */
#include <stdio.h>
#include <stdlib.h>
#include <pthread.h>
#include <string.h>
#include <sys/stat.h>

#include "embed.h"
#include "home.h"
#include "mb_log.h"
#include "mb_mdp.h"
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

typedef struct {
    const char *home, *domain;
    char dir[4096];
    pthread_mutex_t lock; /* the expert may be swapped by a request */
    mb_embed_t *emb;      /* NULL: the builtin expert is not fitted yet */
    struct stat seen;     /* expert.json as last loaded */
    int have_seen;
    int64_t last_check_ms;
} embed_state_t;

/* Loads the expert named by DIR/expert.json when that file changed (checked
 * at most every 100 ms: a stat per request would do, but batches of one
 * query are the common case). Before it exists, a hash or http domain uses
 * the catalog's expert; a builtin one has none until its first fit. */
static void s_refresh(embed_state_t *es) {
    int64_t now = mb_clock_ms();
    if (es->emb && now - es->last_check_ms < 100) return;
    es->last_check_ms = now;
    char path[4200];
    snprintf(path, sizeof path, "%s/expert.json", es->dir);
    struct stat st;
    mb_err_t err;
    if (stat(path, &st) == 0) {
        if (es->have_seen && st.st_mtim.tv_sec == es->seen.st_mtim.tv_sec &&
            st.st_mtim.tv_nsec == es->seen.st_mtim.tv_nsec &&
            st.st_ino == es->seen.st_ino && es->emb)
            return;
        mb_expert_spec_t spec;
        mb_embed_t *fresh = NULL;
        if (mb_expert_read(es->dir, &spec, &err) == 0)
            fresh = mb_embed_open(&spec, es->dir, &err);
        if (!fresh) {
            mb_warn("cannot load the expert in %s: %s", path, err.msg);
            return; /* keep serving the previous one */
        }
        mb_info("serving expert %s", mb_embed_version(fresh));
        mb_embed_destroy(&es->emb);
        es->emb = fresh;
        es->seen = st;
        es->have_seen = 1;
        return;
    }
    if (es->emb) return;
    mb_domain_info_t info;
    if (mb_catalog_domain_get(es->home, es->domain, &info, &err) != 0) return;
    if (strcmp(info.embed, "builtin") == 0) return; /* not fitted yet */
    mb_expert_spec_t spec = {.dim = info.dim};
    snprintf(spec.backend, sizeof spec.backend, "%s", info.embed);
    snprintf(spec.url, sizeof spec.url, "%s", info.url);
    snprintf(spec.model, sizeof spec.model, "%s", info.model);
    snprintf(spec.api_key_env, sizeof spec.api_key_env, "%s", info.api_key_env);
    mb_expert_spec_version(&spec);
    es->emb = mb_embed_open(&spec, es->dir, &err);
    if (!es->emb) mb_warn("cannot open the %s expert: %s", info.embed, err.msg);
}

static mb_body_t *s_embed(embed_state_t *es, mb_body_t *req);

static mb_body_t *s_handle(void *state, mb_body_t *req, mb_worker_t *worker) {
    embed_state_t *es = state;
    pthread_mutex_lock(&es->lock);
    s_refresh(es);
    mb_body_t *reply = s_embed(es, req);
    pthread_mutex_unlock(&es->lock);
    (void)worker;
    return reply;
}

static mb_body_t *s_embed(embed_state_t *es, mb_body_t *req) {
    mb_embed_t *emb = es->emb;
    json_t *j = mb_body_json(req);
    const char *op = mb_json_str(j, "op", "");
    mb_domain_info_t info;
    int dim =
        emb ? mb_embed_dim(emb)
            : (mb_catalog_domain_get(es->home, es->domain, &info, NULL) == 0 ? info.dim
                                                                             : 0);
    if (strcmp(op, "info") == 0)
        return mb_body_ok(json_pack("{s:i, s:s?, s:b}", "dim", dim, "model",
                                    emb ? mb_embed_version(emb) : NULL, "fitted",
                                    emb != NULL));
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
    const char *kind = mb_json_str(j, "kind", "passage");
    if (strcmp(kind, "query") != 0 && strcmp(kind, "passage") != 0) {
        free(tv);
        return mb_body_error(MB_EBADREQ, "\"kind\" must be query or passage");
    }
    if (!emb) {
        /* Not fitted: no vectors. Callers store text only (lexical search)
         * and the domain's first fit embeds it. */
        free(tv);
        return mb_body_ok(json_pack("{s:i, s:I, s:n, s:b}", "dim", dim, "count",
                                    (json_int_t)n, "model", "fitted", 0));
    }
    float *out = malloc(n * (size_t)dim * sizeof *out);
    mb_err_t err;
    mb_body_t *reply;
    /* Long batches are fine: the worker's pulse thread keeps heartbeating. */
    int rc = mb_embed_batch(
        emb, tv, n, strcmp(kind, "query") == 0 ? MB_EMBED_QUERY : MB_EMBED_PASSAGE, out,
        &err);
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
    embed_state_t es = {.home = home, .domain = domain};
    mb_home_domain_dir(home, domain, es.dir, sizeof es.dir);
    pthread_mutex_init(&es.lock, NULL);
    s_refresh(&es);
    char service[128];
    snprintf(service, sizeof service, "embed.%s", domain);
    rc = mb_svc_run(endpoint, service, s_handle, NULL, &es);
    mb_embed_destroy(&es.emb);
    pthread_mutex_destroy(&es.lock);
    return rc;
}
