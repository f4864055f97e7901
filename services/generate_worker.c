/* generate_worker.c — `moebus generate --name N`: an internal expert.
 *
 *   {"op":"generate","messages":[{"role","content"},..], "max_tokens"?,
 *    "timeout_ms"?} -> {"text", "model", "generator", "latency_ms", "usage"?}
 *
 * Serves generate.<N> by calling the chat completion server the catalog
 * names for N (mb_chat). The server's failures come back as error replies
 * (timeout, unavailable, bad_request, internal) so the gate can fall back to
 * an extractive answer and say why. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat.h"
#include "home.h"
#include "mb_log.h"
#include "mb_mdp.h"
#include "services.h"
#include "svc.h"

#define MAX_PROMPT_BYTES (256 * 1024)

static const char *s_usage =
    "usage: moebus generate --name N [--home DIR] [--endpoint E]\n"
    "\n"
    "Serves generate.N on the bus: chat completions from the OpenAI-compatible\n"
    "server the catalog names for generator N (`moebus generator add`).\n"
    "\n"
    "  --name N        the generator (required)\n"
    "  --home DIR      moebus home (default $MOEBUS_HOME or ./moebus-data)\n"
    "  --endpoint E    broker endpoint (default $MOEBUS_ENDPOINT or "
    "tcp://127.0.0.1:5555)\n"
    "\n"
    "environment: MOEBUS_GENERATE_TIMEOUT_MS (60000), MOEBUS_GENERATE_RETRIES (2)\n";

typedef struct {
    mb_chat_t *chat;
    char name[MB_DOMAIN_NAME_MAX + 1];
    char model[128];
} gen_t;

static mb_body_t *s_handle(void *state, mb_body_t *req, mb_worker_t *worker) {
    (void)worker;
    gen_t *g = state;
    json_t *j = mb_body_json(req);
    const char *op = mb_json_str(j, "op", "generate");
    if (strcmp(op, "generate") != 0)
        return mb_body_error(MB_EBADREQ, "unknown op '%s' (generate)", op);
    json_t *msgs = json_object_get(j, "messages");
    if (!msgs && json_is_string(json_object_get(j, "prompt")))
        msgs = json_pack("[{s:s, s:O}]", "role", "user", "content",
                         json_object_get(j, "prompt"));
    else
        json_incref(msgs);
    size_t bytes = 0, i;
    json_t *m;
    int ok = json_is_array(msgs) && json_array_size(msgs) > 0;
    json_array_foreach(msgs, i, m) {
        const char *role = mb_json_str(m, "role", NULL),
                   *content = mb_json_str(m, "content", NULL);
        if (!role || !content)
            ok = 0;
        else
            bytes += strlen(content);
    }
    if (!ok) {
        json_decref(msgs);
        return mb_body_error(MB_EBADREQ, "\"messages\" must be a non-empty array of "
                                         "{\"role\", \"content\"} strings");
    }
    if (bytes > MAX_PROMPT_BYTES) {
        json_decref(msgs);
        return mb_body_error(MB_ETOOLARGE, "prompt of %zu bytes is over %d", bytes,
                             MAX_PROMPT_BYTES);
    }
    const char *et = getenv("MOEBUS_GENERATE_TIMEOUT_MS");
    json_int_t timeout = mb_json_int(j, "timeout_ms", et ? atol(et) : 60000);
    if (timeout < 1 || timeout > 600000) timeout = 60000;
    json_int_t max_tokens = mb_json_int(j, "max_tokens", 0);
    char *text = NULL;
    json_t *usage = NULL;
    mb_err_t err;
    int64_t t0 = mb_clock_ms();
    int rc = mb_chat_complete(g->chat, msgs, (int)max_tokens, (int)timeout, &text, &usage,
                              &err);
    json_decref(msgs);
    if (rc != 0) {
        mb_warn("%s", err.msg);
        return mb_body_error(rc, "%s", err.msg);
    }
    mb_body_t *reply = mb_body_ok(json_pack(
        "{s:s, s:s, s:s, s:I, s:o?}", "text", text, "model", g->model, "generator",
        g->name, "latency_ms", (json_int_t)(mb_clock_ms() - t0), "usage", usage));
    free(text);
    return reply;
}

int mb_generate_main(int argc, char **argv) {
    if (mb_svc_wants_help(argc, argv, s_usage)) return 0;
    const char *home = mb_default_home(), *endpoint = mb_default_endpoint(), *name = NULL;
    static struct option opts[] = {{"name", required_argument, 0, 'n'},
                                   {"home", required_argument, 0, 'H'},
                                   {"endpoint", required_argument, 0, 'e'},
                                   {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "n:H:e:", opts, NULL)) != -1) {
        if (c == 'n')
            name = optarg;
        else if (c == 'H')
            home = optarg;
        else if (c == 'e')
            endpoint = optarg;
        else {
            fputs(s_usage, stderr);
            return 2;
        }
    }
    if (!name) {
        fputs(s_usage, stderr);
        return 2;
    }
    mb_log_init("generate");
    mb_svc_signals();
    mb_generator_info_t *gs = NULL;
    size_t n = 0;
    mb_err_t err;
    mb_catalog_generators(home, &gs, &n, &err);
    gen_t g = {0};
    for (size_t i = 0; i < n; i++) {
        if (strcmp(gs[i].name, name) != 0) continue;
        const char *er = getenv("MOEBUS_GENERATE_RETRIES");
        mb_chat_opts_t o = {.url = gs[i].url,
                            .model = gs[i].model,
                            .api_key_env = gs[i].api_key_env,
                            .retries = er ? atoi(er) : 2};
        g.chat = mb_chat_new(&o, &err);
        snprintf(g.name, sizeof g.name, "%s", name);
        snprintf(g.model, sizeof g.model, "%s", gs[i].model);
        break;
    }
    free(gs);
    if (!g.chat) {
        mb_error("generator '%s': %s", name,
                 g.name[0] ? err.msg : "not in the catalog (moebus generator add)");
        return 1;
    }
    char service[128];
    snprintf(service, sizeof service, "generate.%s", name);
    int rc = mb_svc_run(endpoint, service, s_handle, NULL, &g);
    mb_chat_destroy(&g.chat);
    return rc;
}
