/* svc.c — worker process plumbing. */
#include "svc.h"

#include <czmq.h>
#include <pthread.h>
#include <getopt.h>
#include <string.h>

#include "home.h"
#include "mb_log.h"

volatile sig_atomic_t mb_svc_stop = 0;

static void s_on_signal(int sig) {
    (void)sig;
    mb_svc_stop = 1;
}

void mb_svc_signals(void) {
    zsys_handler_set(NULL);
    /* CZMQ initialises itself lazily on the first socket, and that is not
     * thread-safe: two threads creating their first sockets together trip an
     * assertion in zsys. Initialise here, on the main thread, before any. */
    zsys_init();
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = s_on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

int mb_svc_run(const char *endpoint, const char *service, mb_svc_handler_fn *handler,
               mb_svc_idle_fn *idle, void *state) {
    mb_err_t err;
    mb_worker_t *w = mb_worker_new(endpoint, service, &err);
    if (!w) {
        mb_error("%s", err.msg);
        return 1;
    }
    mb_info("serving %s at %s", service, endpoint);
    while (!mb_svc_stop) {
        mb_body_t *req = NULL;
        int rc = mb_worker_recv(w, &req, 500);
        if (rc == MB_ETIMEOUT) {
            if (idle && !mb_svc_stop) idle(state);
            continue;
        }
        mb_body_t *reply = handler(state, req, w);
        mb_body_destroy(&req);
        if (!reply) reply = mb_body_error(MB_EINTERNAL, "handler returned no reply");
        mb_worker_reply(w, &reply);
    }
    mb_info("stopping %s", service);
    mb_worker_destroy(&w);
    return 0;
}

int mb_svc_wants_help(int argc, char **argv, const char *usage) {
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(usage, stdout);
            return 1;
        }
    return 0;
}

int mb_svc_parse(int argc, char **argv, const char *usage, int want_domain,
                 mb_svc_opts_t *o, int *done) {
    *done = 0;
    o->home = mb_default_home();
    o->endpoint = mb_default_endpoint();
    o->domain = NULL;
    if (mb_svc_wants_help(argc, argv, usage)) {
        *done = 1;
        return 0;
    }
    static struct option opts[] = {{"domain", required_argument, 0, 'd'},
                                   {"home", required_argument, 0, 'H'},
                                   {"endpoint", required_argument, 0, 'e'},
                                   {0, 0, 0, 0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, want_domain ? "d:H:e:" : "H:e:", opts, NULL)) !=
           -1) {
        if (c == 'd' && want_domain)
            o->domain = optarg;
        else if (c == 'H')
            o->home = optarg;
        else if (c == 'e')
            o->endpoint = optarg;
        else
            goto usage;
    }
    if (optind < argc || (want_domain && !o->domain)) goto usage;
    return 0;
usage:
    fputs(usage, stderr);
    *done = 1;
    return 2;
}

typedef struct {
    const char *endpoint, *service;
    mb_svc_handler_fn *handler;
    mb_svc_idle_fn *idle;
    void *state;
    int rc;
} svc_thread_t;

static void *s_svc_thread(void *arg) {
    svc_thread_t *t = arg;
    t->rc = mb_svc_run(t->endpoint, t->service, t->handler, t->idle, t->state);
    return NULL;
}

int mb_svc_run_threads(const char *endpoint, const char *service,
                       mb_svc_handler_fn *handler, mb_svc_idle_fn *idle, void *state,
                       int threads) {
    if (threads <= 1) return mb_svc_run(endpoint, service, handler, idle, state);
    svc_thread_t *t = calloc((size_t)threads, sizeof *t);
    pthread_t *ids = calloc((size_t)threads, sizeof *ids);
    for (int i = 0; i < threads; i++) {
        t[i] = (svc_thread_t){endpoint, service, handler, i == 0 ? idle : NULL, state, 0};
        if (i > 0) pthread_create(&ids[i], NULL, s_svc_thread, &t[i]);
    }
    s_svc_thread(&t[0]); /* the first serves on this thread */
    int rc = t[0].rc;
    for (int i = 1; i < threads; i++) {
        pthread_join(ids[i], NULL);
        if (t[i].rc) rc = t[i].rc;
    }
    free(t);
    free(ids);
    return rc;
}

const char *mb_svc_query(json_t *req, mb_body_t **error) {
    json_t *jq = json_object_get(req, "query");
    *error = NULL;
    if (!json_is_string(jq) || json_string_length(jq) == 0)
        *error = mb_body_error(MB_EBADREQ, "\"query\" must be a non-empty string");
    else if (json_string_length(jq) > MB_QUERY_MAX_BYTES)
        *error = mb_body_error(MB_EBADREQ, "\"query\" is longer than %d bytes",
                               MB_QUERY_MAX_BYTES);
    return *error ? NULL : json_string_value(jq);
}
