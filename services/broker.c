/* broker.c — MDP/0.2 broker. Single-threaded: one poll loop owns all state,
 * so no locks; the hot path (client request -> idle worker -> reply) moves
 * frames without parsing bodies. Bodies are only parsed to build an error
 * reply that echoes the request "id". */
#include "broker.h"

#include <czmq.h>
#include <math.h>
#include <getopt.h>
#include <jansson.h>
#include <string.h>

#include "mb_body.h"
#include "mb_log.h"
#include "mb_mdp.h"

typedef struct service_t service_t;

typedef struct {
    zframe_t *client;
    zmsg_t *body; /* body frames only */
    int64_t expiry;
} request_t;

typedef struct {
    char key[64]; /* hex identity */
    zframe_t *identity;
    service_t *service;
    int64_t expiry;
    zframe_t *client;   /* set while busy */
    zframe_t *req_json; /* copy of the request's JSON frame while busy */
    void *idle_handle;  /* position in service->idle, NULL when busy */
    int64_t busy_us;    /* when the request in hand was sent to it */
    zmsg_t *req_copy;   /* the request in hand, if small: see s_worker_delete */
} worker_t;

/* A worker that says DISCONNECT while the broker has just sent it a request
 * (a worker told to stop, e.g. a lazy expert being unloaded, exits between
 * requests, so it never saw this one) gets the request put back at the head
 * of its queue instead of an `unavailable` error. Kept for bodies up to this
 * size: a copy per request is cheap for queries; big ingest batches are
 * retried by their sender instead. */
#define REQUEUE_MAX_BYTES 65536

/* Request latency (dispatch to final reply) as a log histogram: 4 buckets
 * per power of two from 1 µs, so a quantile is within ~19 %; fixed memory
 * and O(1) per reply, which a single-threaded broker can afford. */
#define LAT_BUCKETS 128

struct service_t {
    char *name;
    zlistx_t *requests; /* request_t*, FIFO */
    zlistx_t *idle;     /* worker_t*, LRU first */
    size_t nworkers;
    bool ever_had_worker;
    uint64_t served;
    uint64_t replied, errors_unavail; /* final replies; workers lost mid-request */
    int64_t last_request_ms;          /* for the supervisor's least-recently-used */
    uint32_t lat[LAT_BUCKETS];
    double lat_sum_us;
};

static int s_lat_bucket(int64_t us) {
    if (us < 1) us = 1;
    int b = (int)(4.0 * log2((double)us));
    return b < 0 ? 0 : b >= LAT_BUCKETS ? LAT_BUCKETS - 1 : b;
}

/* Upper edge of the bucket holding quantile q, in µs (0 with no data). */
static double s_lat_quantile(const service_t *s, double q) {
    if (s->replied == 0) return 0;
    uint64_t want = (uint64_t)(q * (double)s->replied), seen = 0;
    for (int b = 0; b < LAT_BUCKETS; b++) {
        seen += s->lat[b];
        if (seen > want) return exp2((double)(b + 1) / 4.0);
    }
    return exp2((double)LAT_BUCKETS / 4.0);
}

struct mb_broker_t {
    zsock_t *sock;
    zhashx_t *services; /* name -> service_t* */
    zhashx_t *workers;  /* key -> worker_t* */
    int wait_ms;
    int hb_ms;
    int64_t hb_at;
};

static void s_request_destroy(request_t **r) {
    if (!*r) return;
    zframe_destroy(&(*r)->client);
    zmsg_destroy(&(*r)->body);
    free(*r);
    *r = NULL;
}

static void s_service_free(void **item) {
    service_t *s = *item;
    if (!s) return;
    request_t *r;
    while ((r = zlistx_detach(s->requests, NULL)))
        s_request_destroy(&r);
    zlistx_destroy(&s->requests);
    zlistx_destroy(&s->idle);
    free(s->name);
    free(s);
    *item = NULL;
}

static void s_worker_free(void **item) {
    worker_t *w = *item;
    if (!w) return;
    zframe_destroy(&w->identity);
    zframe_destroy(&w->client);
    zframe_destroy(&w->req_json);
    zmsg_destroy(&w->req_copy);
    free(w);
    *item = NULL;
}

mb_broker_t *mb_broker_new(const char *endpoint, int wait_ms, mb_err_t *err) {
    mb_broker_t *self = calloc(1, sizeof *self);
    self->sock = zsock_new(ZMQ_ROUTER);
    zsock_set_linger(self->sock, 0);
    zsock_set_rcvhwm(self->sock, 0);
    zsock_set_sndhwm(self->sock, 0);
    /* The per-frame cap protects memory from absurd frames; messages between
     * the soft limit and this cap get a too_large reply. */
    zsock_set_maxmsgsize(self->sock, (int64_t)MB_MAX_MESSAGE_BYTES * 2);
    zsock_set_router_mandatory(self->sock, 0);
    if (zsock_bind(self->sock, "%s", endpoint) < 0) {
        mb_err_set(err, MB_EIO, "cannot bind %s: %s", endpoint,
                   zmq_strerror(zmq_errno()));
        zsock_destroy(&self->sock);
        free(self);
        return NULL;
    }
    self->services = zhashx_new();
    zhashx_set_destructor(self->services, s_service_free);
    self->workers = zhashx_new();
    zhashx_set_destructor(self->workers, s_worker_free);
    self->wait_ms = wait_ms;
    self->hb_ms = mb_heartbeat_ms();
    self->hb_at = mb_clock_ms() + self->hb_ms;
    return self;
}

void mb_broker_destroy(mb_broker_t **self_p) {
    if (!self_p || !*self_p) return;
    mb_broker_t *self = *self_p;
    /* Tell workers to re-register with whoever comes next. */
    for (worker_t *w = zhashx_first(self->workers); w; w = zhashx_next(self->workers)) {
        zmsg_t *m = zmsg_new();
        zframe_t *id = zframe_dup(w->identity);
        zmsg_append(m, &id);
        zmsg_addstr(m, MB_MDPW);
        zmsg_addmem(m, (char[]){MB_MDPW_DISCONNECT}, 1);
        zmsg_send(&m, self->sock);
    }
    zhashx_destroy(&self->workers);
    zhashx_destroy(&self->services);
    zsock_destroy(&self->sock);
    free(self);
    *self_p = NULL;
}

/* Sends [client][MDPC02][FINAL][service][body...]; takes ownership of body. */
static void s_send_client(mb_broker_t *self, zframe_t *client, const char *service,
                          int cmd, zmsg_t *body) {
    zmsg_t *m = body ? body : zmsg_new();
    zmsg_pushstr(m, service ? service : "");
    zmsg_pushmem(m, (char[]){(char)cmd}, 1);
    zmsg_pushstr(m, MB_MDPC);
    zframe_t *c = zframe_dup(client);
    zmsg_prepend(m, &c);
    zmsg_send(&m, self->sock);
}

static void s_send_body(mb_broker_t *self, zframe_t *client, const char *service,
                        mb_body_t *body) {
    zmsg_t *m = zmsg_new();
    mb_body_encode(body, m);
    s_send_client(self, client, service, MB_MDPC_FINAL, m);
}

/* Error reply echoing the "id" of the request whose JSON frame is json_frame. */
static void s_reply_error(mb_broker_t *self, zframe_t *client, const char *service,
                          zframe_t *json_frame, int code, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));
static void s_reply_error(mb_broker_t *self, zframe_t *client, const char *service,
                          zframe_t *json_frame, int code, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    mb_body_t *e = mb_body_error(code, "%s", msg);
    if (json_frame && zframe_size(json_frame) <= MB_MAX_MESSAGE_BYTES) {
        json_t *req = json_loadb((const char *)zframe_data(json_frame),
                                 zframe_size(json_frame), 0, NULL);
        json_t *id = req ? json_object_get(req, "id") : NULL;
        if (id) json_object_set(mb_body_json(e), "id", id);
        json_decref(req);
    }
    s_send_body(self, client, service, e);
    mb_body_destroy(&e);
}

static service_t *s_service_require(mb_broker_t *self, const char *name) {
    service_t *s = zhashx_lookup(self->services, name);
    if (!s) {
        s = calloc(1, sizeof *s);
        s->name = strdup(name);
        s->requests = zlistx_new();
        s->idle = zlistx_new();
        zhashx_insert(self->services, name, s);
    }
    return s;
}

static void s_worker_send(mb_broker_t *self, worker_t *w, int cmd, zmsg_t *tail) {
    zmsg_t *m = tail ? tail : zmsg_new();
    zmsg_pushmem(m, (char[]){(char)cmd}, 1);
    zmsg_pushstr(m, MB_MDPW);
    zframe_t *id = zframe_dup(w->identity);
    zmsg_prepend(m, &id);
    zmsg_send(&m, self->sock);
}

static void s_dispatch(mb_broker_t *self, service_t *s) {
    while (zlistx_size(s->idle) > 0 && zlistx_size(s->requests) > 0) {
        worker_t *w = zlistx_detach(s->idle, NULL);
        w->idle_handle = NULL;
        request_t *r = zlistx_detach(s->requests, NULL);
        zframe_destroy(&w->req_json);
        w->req_json = zframe_dup(zmsg_first(r->body));
        w->client = r->client;
        w->busy_us = mb_clock_us();
        r->client = NULL;
        zmsg_t *m = r->body;
        r->body = NULL;
        zmsg_destroy(&w->req_copy);
        if (zmsg_content_size(m) <= REQUEUE_MAX_BYTES) w->req_copy = zmsg_dup(m);
        zmsg_pushmem(m, "", 0);
        zframe_t *c = zframe_dup(w->client);
        zmsg_prepend(m, &c);
        s_worker_send(self, w, MB_MDPW_REQUEST, m);
        s_request_destroy(&r);
    }
}

/* Removes a worker; a request it held gets `unavailable` now. */
static void s_worker_delete(mb_broker_t *self, worker_t *w, bool send_disconnect,
                            const char *why) {
    service_t *s = w->service;
    if (send_disconnect) s_worker_send(self, w, MB_MDPW_DISCONNECT, NULL);
    if (s) {
        if (w->idle_handle) zlistx_delete(s->idle, w->idle_handle);
        s->nworkers--;
        if (w->client && w->req_copy && strcmp(why, "disconnected") == 0) {
            request_t *r = calloc(1, sizeof *r);
            r->client = w->client;
            r->body = w->req_copy;
            w->client = NULL;
            w->req_copy = NULL;
            r->expiry = mb_clock_ms() + self->wait_ms;
            zlistx_add_start(s->requests, r);
            mb_info("worker %s of %s disconnected with a request it had not started: "
                    "queued again",
                    w->key, s->name);
            zhashx_delete(self->workers, w->key);
            s_dispatch(self, s);
            return;
        }
        if (w->client) {
            s->errors_unavail++;
            s_reply_error(self, w->client, s->name, w->req_json, MB_EUNAVAIL,
                          "worker for %s %s while handling the request", s->name, why);
            mb_warn("worker %s of %s %s mid-request; client told unavailable", w->key,
                    s->name, why);
        } else {
            mb_info("worker %s of %s %s", w->key, s->name, why);
        }
    }
    zhashx_delete(self->workers, w->key);
}

static void s_mmi(mb_broker_t *self, zframe_t *client, const char *service,
                  zmsg_t *body) {
    zframe_t *jf = zmsg_first(body);
    json_t *req = json_loadb((const char *)zframe_data(jf), zframe_size(jf), 0, NULL);
    json_t *reply = json_object();
    if (strcmp(service, "mmi.service") == 0) {
        /* Accept {"service": NAME} or, as in RFC 8, the bare name. */
        char *name = NULL;
        if (json_is_object(req) && json_is_string(json_object_get(req, "service")))
            name = strdup(json_string_value(json_object_get(req, "service")));
        else if (!req)
            name = zframe_strdup(jf);
        if (!name) {
            json_decref(reply);
            s_reply_error(self, client, service, jf, MB_EBADREQ,
                          "mmi.service needs {\"service\": NAME}");
            goto done;
        }
        service_t *s = zhashx_lookup(self->services, name);
        size_t n = s ? s->nworkers : 0;
        json_object_set_new(reply, "service", json_string(name));
        json_object_set_new(reply, "live", json_boolean(n > 0));
        json_object_set_new(reply, "workers", json_integer((json_int_t)n));
        free(name);
    } else if (strcmp(service, "mmi.services") == 0) {
        json_t *arr = json_array();
        int64_t now = mb_clock_ms();
        for (service_t *s = zhashx_first(self->services); s;
             s = zhashx_next(self->services)) {
            json_t *o = json_pack(
                "{s:s, s:I, s:I, s:I, s:I, s:I, s:I}", "name", s->name, "workers",
                (json_int_t)s->nworkers, "idle", (json_int_t)zlistx_size(s->idle),
                "queued", (json_int_t)zlistx_size(s->requests), "served",
                (json_int_t)s->served, "replied", (json_int_t)s->replied, "lost",
                (json_int_t)s->errors_unavail);
            json_object_set_new(
                o, "idle_ms",
                json_integer(s->last_request_ms ? now - s->last_request_ms : -1));
            json_object_set_new(
                o, "latency_us",
                json_pack("{s:f, s:f, s:f}", "mean",
                          s->replied ? s->lat_sum_us / (double)s->replied : 0.0, "p50",
                          s_lat_quantile(s, 0.5), "p99", s_lat_quantile(s, 0.99)));
            json_array_append_new(arr, o);
        }
        json_object_set_new(reply, "services", arr);
    } else {
        json_decref(reply);
        s_reply_error(self, client, service, jf, MB_EUNKSERVICE,
                      "unknown internal service %s (known: mmi.service, mmi.services)",
                      service);
        goto done;
    }
    if (json_is_object(req) && json_object_get(req, "id"))
        json_object_set(reply, "id", json_object_get(req, "id"));
    mb_body_t *b = mb_body_ok(reply);
    s_send_body(self, client, service, b);
    mb_body_destroy(&b);
done:
    json_decref(req);
    zmsg_destroy(&body);
}

static void s_client_msg(mb_broker_t *self, zframe_t *client, zmsg_t *msg) {
    /* msg: [cmd][service][body...] (header already popped) */
    zframe_t *cmd = zmsg_pop(msg);
    char *service = zmsg_popstr(msg);
    bool bad = !cmd || zframe_size(cmd) != 1 || zframe_data(cmd)[0] != MB_MDPC_REQUEST ||
               !service || zmsg_size(msg) == 0;
    if (bad) {
        s_reply_error(
            self, client, service, NULL, MB_EBADREQ,
            "malformed MDP client request: expected [MDPC02][0x01][service][body...]");
        goto done;
    }
    if (zmsg_content_size(msg) > MB_MAX_MESSAGE_BYTES) {
        s_reply_error(self, client, service, zmsg_first(msg), MB_ETOOLARGE,
                      "message of %zu bytes exceeds the %zu byte limit",
                      zmsg_content_size(msg), MB_MAX_MESSAGE_BYTES);
        goto done;
    }
    if (strncmp(service, "mmi.", 4) == 0) {
        s_mmi(self, client, service, msg);
        msg = NULL;
        goto done;
    }
    service_t *s = s_service_require(self, service);
    request_t *r = calloc(1, sizeof *r);
    r->client = zframe_dup(client);
    r->body = msg;
    msg = NULL;
    r->expiry = mb_clock_ms() + self->wait_ms;
    zlistx_add_end(s->requests, r);
    s->served++;
    s->last_request_ms = mb_clock_ms();
    s_dispatch(self, s);
done:
    zframe_destroy(&cmd);
    free(service);
    zmsg_destroy(&msg);
}

/* Handles a worker command; takes ownership of *msg_p (NULL on return). */
static void s_worker_msg(mb_broker_t *self, zframe_t *identity, zmsg_t **msg_p) {
    zmsg_t *msg = *msg_p;
    *msg_p = NULL;
    zframe_t *cmdf = zmsg_pop(msg);
    int cmd = (cmdf && zframe_size(cmdf) == 1) ? zframe_data(cmdf)[0] : -1;
    zframe_destroy(&cmdf);
    char key[64];
    char *hex = zframe_strhex(identity);
    snprintf(key, sizeof key, "%s", hex);
    free(hex);
    worker_t *w = zhashx_lookup(self->workers, key);

    if (cmd == MB_MDPW_READY) {
        char *name = zmsg_popstr(msg);
        if (w || !name || !*name || strncmp(name, "mmi.", 4) == 0) {
            /* A second READY or a reserved name is a protocol error. */
            if (w)
                s_worker_delete(self, w, true, "sent READY twice");
            else {
                worker_t tmp = {.identity = identity};
                s_worker_send(self, &tmp, MB_MDPW_DISCONNECT, NULL);
            }
            free(name);
            goto done;
        }
        w = calloc(1, sizeof *w);
        snprintf(w->key, sizeof w->key, "%s", key);
        w->identity = zframe_dup(identity);
        w->service = s_service_require(self, name);
        w->service->nworkers++;
        w->service->ever_had_worker = true;
        w->expiry = mb_clock_ms() + (int64_t)self->hb_ms * MB_HEARTBEAT_LIVENESS;
        zhashx_insert(self->workers, key, w);
        w->idle_handle = zlistx_add_end(w->service->idle, w);
        mb_info("worker %s registered for %s (%zu live)", key, name,
                w->service->nworkers);
        free(name);
        s_dispatch(self, w->service);
        goto done;
    }
    if (!w) {
        /* Unknown peer (e.g. we restarted): ask it to reconnect and READY. */
        if (cmd != MB_MDPW_DISCONNECT) {
            worker_t tmp = {.identity = identity};
            s_worker_send(self, &tmp, MB_MDPW_DISCONNECT, NULL);
        }
        goto done;
    }
    w->expiry = mb_clock_ms() + (int64_t)self->hb_ms * MB_HEARTBEAT_LIVENESS;
    switch (cmd) {
    case MB_MDPW_HEARTBEAT:
        break;
    case MB_MDPW_DISCONNECT:
        s_worker_delete(self, w, false, "disconnected");
        break;
    case MB_MDPW_PARTIAL:
    case MB_MDPW_FINAL: {
        zframe_t *client = zmsg_pop(msg);
        zframe_t *empty = zmsg_pop(msg);
        bool ok = w->client && client && empty && zframe_size(empty) == 0 &&
                  zframe_eq(client, w->client) && zmsg_size(msg) > 0;
        zframe_destroy(&empty);
        if (!ok) {
            zframe_destroy(&client);
            s_worker_delete(self, w, true, "sent a malformed or unexpected reply");
            goto done;
        }
        s_send_client(self, client, w->service->name,
                      cmd == MB_MDPW_FINAL ? MB_MDPC_FINAL : MB_MDPC_PARTIAL, msg);
        zframe_destroy(&client);
        if (cmd == MB_MDPW_FINAL) {
            service_t *sv = w->service;
            zmsg_destroy(&w->req_copy);
            int64_t us = mb_clock_us() - w->busy_us;
            sv->replied++;
            sv->lat[s_lat_bucket(us)]++;
            sv->lat_sum_us += (double)us;
            zframe_destroy(&w->client);
            zframe_destroy(&w->req_json);
            w->idle_handle = zlistx_add_end(w->service->idle, w);
            s_dispatch(self, w->service);
        }
        msg = NULL; /* sent on to the client */
        goto done;
    }
    default:
        s_worker_delete(self, w, true, "sent an invalid command");
    }
done:
    zmsg_destroy(&msg);
}

static void s_on_message(mb_broker_t *self, zmsg_t *msg) {
    zframe_t *sender = zmsg_pop(msg);
    zframe_t *header = zmsg_pop(msg);
    if (!sender) goto done;
    if (header && zframe_streq(header, MB_MDPC)) {
        s_client_msg(self, sender, msg);
        msg = NULL;
    } else if (header && zframe_streq(header, MB_MDPW)) {
        s_worker_msg(self, sender, &msg);
    } else {
        /* Not MDP: answer as if to a client so a confused peer learns why. */
        s_reply_error(self, sender, "", NULL, MB_EBADREQ,
                      "not an MDP/0.2 message: first frame must be MDPC02 or MDPW02");
    }
done:
    zframe_destroy(&sender);
    zframe_destroy(&header);
    zmsg_destroy(&msg);
}

static void s_purge(mb_broker_t *self) {
    int64_t now = mb_clock_ms();
    zlistx_t *dead = zlistx_new();
    for (worker_t *w = zhashx_first(self->workers); w; w = zhashx_next(self->workers))
        if (w->expiry < now) zlistx_add_end(dead, w);
    for (worker_t *w = zlistx_first(dead); w; w = zlistx_next(dead))
        s_worker_delete(self, w, false, "expired (missed heartbeats)");
    zlistx_destroy(&dead);
    for (service_t *s = zhashx_first(self->services); s;
         s = zhashx_next(self->services)) {
        request_t *r;
        while ((r = zlistx_first(s->requests)) && r->expiry < now) {
            zlistx_detach_cur(s->requests);
            if (s->ever_had_worker)
                s_reply_error(self, r->client, s->name, zmsg_first(r->body), MB_EUNAVAIL,
                              "service %s has no live worker (waited %d ms)", s->name,
                              self->wait_ms);
            else
                s_reply_error(self, r->client, s->name, zmsg_first(r->body),
                              MB_EUNKSERVICE,
                              "no worker has registered service %s (waited %d ms)",
                              s->name, self->wait_ms);
            s_request_destroy(&r);
        }
    }
}

int mb_broker_run(mb_broker_t *self, volatile sig_atomic_t *stop) {
    void *raw = zsock_resolve(self->sock);
    int64_t purge_at = 0;
    while (!*stop) {
        int64_t now = mb_clock_ms();
        long timeout = (long)(self->hb_at - now);
        if (timeout > 100) timeout = 100;
        if (timeout < 0) timeout = 0;
        zmq_pollitem_t item = {raw, 0, ZMQ_POLLIN, 0};
        int rc = zmq_poll(&item, 1, timeout);
        if (rc < 0 && zmq_errno() != EINTR) break;
        /* Drain what is ready before housekeeping, bounded for fairness. */
        for (int i = 0; rc > 0 && i < 1000; i++) {
            if (i > 0 && !(zsock_events(self->sock) & ZMQ_POLLIN)) break;
            zmsg_t *msg = zmsg_recv(self->sock);
            if (!msg) break;
            s_on_message(self, msg);
        }
        now = mb_clock_ms();
        if (now >= purge_at) {
            s_purge(self);
            purge_at = now + 20;
        }
        if (now >= self->hb_at) {
            for (worker_t *w = zhashx_first(self->workers); w;
                 w = zhashx_next(self->workers))
                s_worker_send(self, w, MB_MDPW_HEARTBEAT, NULL);
            self->hb_at = now + self->hb_ms;
        }
    }
    return 0;
}

/* ---- `moebus broker` ----------------------------------------------------- */

#include "services.h"
#include "svc.h"

static const char *s_broker_usage =
    "usage: moebus broker [--endpoint E] [--wait MS]\n"
    "\n"
    "Runs the Majordomo (MDP/0.2) broker that every moebus process talks to.\n"
    "\n"
    "  --endpoint E  endpoint to bind (default $MOEBUS_ENDPOINT or "
    "tcp://127.0.0.1:5555;\n"
    "                tcp://*:5555 listens on every interface)\n"
    "  --wait MS     how long a request waits for a worker of its service to\n"
    "                appear before it is answered unavailable/unknown_service\n"
    "                (default 3000)\n"
    "Heartbeat interval: $MOEBUS_HEARTBEAT_MS (default 1000); workers must agree.\n";

int mb_broker_main(int argc, char **argv) {
    if (mb_svc_wants_help(argc, argv, s_broker_usage)) return 0;
    const char *endpoint = getenv("MOEBUS_ENDPOINT");
    if (!endpoint || !*endpoint) endpoint = "tcp://127.0.0.1:5555";
    int wait_ms = 3000;
    static struct option opts[] = {{"endpoint", required_argument, 0, 'e'},
                                   {"wait", required_argument, 0, 'w'},
                                   {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "e:w:", opts, NULL)) != -1) {
        if (c == 'e')
            endpoint = optarg;
        else if (c == 'w')
            wait_ms = atoi(optarg);
        else {
            fputs(s_broker_usage, stderr);
            return 2;
        }
    }
    mb_log_init("broker");
    mb_svc_signals();
    mb_err_t err;
    mb_broker_t *b = mb_broker_new(endpoint, wait_ms, &err);
    if (!b) {
        mb_error("%s", err.msg);
        return 1;
    }
    mb_info("listening on %s (heartbeat %d ms)", endpoint, mb_heartbeat_ms());
    mb_broker_run(b, &mb_svc_stop);
    mb_broker_destroy(&b);
    mb_info("stopped");
    return 0;
}
