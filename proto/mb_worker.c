/* mb_worker.c — MDP/0.2 worker over one DEALER socket. */
#include "mb_worker.h"

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

#include "mb_log.h"
#include "mb_mdp.h"

struct mb_worker_t {
    char *endpoint;
    char *service;
    zsock_t *sock;
    int hb_ms;
    int64_t broker_expiry; /* broker presumed dead after this (ms) */
    int64_t hb_at;         /* next heartbeat due (ms) */
    zframe_t *reply_to;    /* client address of the request in hand */
    json_t *req_id;        /* its "id", echoed in the reply */
    int registrations;
    /* While the caller handles a request, a pulse thread keeps heartbeats
     * flowing so a long handler (index training, a large batch) is not taken
     * for dead. The socket is shared only under `lock`: every use on either
     * thread is a full memory barrier, which is what ZeroMQ requires of a
     * socket used by more than one thread. */
    pthread_mutex_t lock;
    pthread_t pulse;
    atomic_int busy, stop;
    int pulse_started;
};

static void s_send_cmd(mb_worker_t *self, int cmd, zmsg_t *tail) {
    zmsg_t *msg = tail ? tail : zmsg_new();
    zmsg_pushmem(msg, (char[]){(char)cmd}, 1);
    zmsg_pushstr(msg, MB_MDPW);
    zmsg_send(&msg, self->sock);
}

/* (Re)creates the socket and registers. A fresh socket gets a fresh identity,
 * which is what a restarted broker needs to treat us as a new worker. */
static int s_connect(mb_worker_t *self) {
    zsock_destroy(&self->sock);
    self->sock = zsock_new(ZMQ_DEALER);
    if (!self->sock) return MB_EINTERNAL;
    zsock_set_linger(self->sock, 0);
    zsock_set_maxmsgsize(self->sock, (int64_t)MB_MAX_MESSAGE_BYTES * 2);
    if (zsock_connect(self->sock, "%s", self->endpoint) != 0) return MB_EBADREQ;
    zmsg_t *m = zmsg_new();
    zmsg_addstr(m, self->service);
    s_send_cmd(self, MB_MDPW_READY, m);
    int64_t now = mb_clock_ms();
    self->broker_expiry = now + (int64_t)self->hb_ms * MB_HEARTBEAT_LIVENESS;
    self->hb_at = now + self->hb_ms;
    self->registrations++;
    return 0;
}

static void s_heartbeat(mb_worker_t *self);

static void *s_pulse(void *arg) {
    mb_worker_t *self = arg;
    while (!atomic_load(&self->stop)) {
        struct timespec ts = {0, (long)(self->hb_ms / 4 > 0 ? self->hb_ms / 4 : 1) *
                                     1000000L};
        nanosleep(&ts, NULL);
        if (!atomic_load(&self->busy)) continue;
        if (pthread_mutex_trylock(&self->lock) != 0) continue;
        if (atomic_load(&self->busy) && self->sock) s_heartbeat(self);
        pthread_mutex_unlock(&self->lock);
    }
    return NULL;
}

mb_worker_t *mb_worker_new(const char *endpoint, const char *service, mb_err_t *err) {
    mb_worker_t *self = calloc(1, sizeof *self);
    if (!self) {
        mb_err_set(err, MB_EINTERNAL, "out of memory");
        return NULL;
    }
    self->endpoint = strdup(endpoint);
    self->service = strdup(service);
    self->hb_ms = mb_heartbeat_ms();
    pthread_mutex_init(&self->lock, NULL);
    int rc = s_connect(self);
    if (rc != 0) {
        mb_err_set(err, rc, "cannot connect worker to %s", endpoint);
        mb_worker_destroy(&self);
        return NULL;
    }
    self->pulse_started = pthread_create(&self->pulse, NULL, s_pulse, self) == 0;
    return self;
}

void mb_worker_destroy(mb_worker_t **self_p) {
    if (!self_p || !*self_p) return;
    mb_worker_t *self = *self_p;
    atomic_store(&self->stop, 1);
    if (self->pulse_started) pthread_join(self->pulse, NULL);
    pthread_mutex_destroy(&self->lock);
    if (self->sock) s_send_cmd(self, MB_MDPW_DISCONNECT, NULL);
    zsock_destroy(&self->sock);
    zframe_destroy(&self->reply_to);
    json_decref(self->req_id);
    free(self->endpoint);
    free(self->service);
    free(self);
    *self_p = NULL;
}

int mb_worker_registrations(const mb_worker_t *self) {
    return self->registrations;
}

/* Sends a heartbeat if due; the caller holds self->lock. */
static void s_heartbeat(mb_worker_t *self) {
    int64_t now = mb_clock_ms();
    if (now >= self->hb_at) {
        s_send_cmd(self, MB_MDPW_HEARTBEAT, NULL);
        self->hb_at = now + self->hb_ms;
    }
}

void mb_worker_heartbeat(mb_worker_t *self) {
    pthread_mutex_lock(&self->lock);
    s_heartbeat(self);
    pthread_mutex_unlock(&self->lock);
}

static void s_send_final(mb_worker_t *self, zframe_t *client, mb_body_t *reply) {
    zmsg_t *msg = zmsg_new();
    zframe_t *c = zframe_dup(client);
    zmsg_append(msg, &c);
    zmsg_addmem(msg, "", 0);
    if (mb_body_encode(reply, msg) != 0) {
        zmsg_destroy(&msg);
        return;
    }
    s_send_cmd(self, MB_MDPW_FINAL, msg);
    self->hb_at = mb_clock_ms() + self->hb_ms; /* any command counts as a heartbeat */
}

/* Handles one message from the broker. Returns 1 with *request set when it was
 * a valid request, 0 otherwise. */
static int s_handle(mb_worker_t *self, zmsg_t *msg, mb_body_t **request) {
    size_t n = zmsg_size(msg);
    zframe_t *hdr = zmsg_first(msg);
    zframe_t *cmdf = zmsg_next(msg);
    if (n < 2 || !zframe_streq(hdr, MB_MDPW) || zframe_size(cmdf) != 1) return 0;
    int cmd = zframe_data(cmdf)[0];
    if (cmd == MB_MDPW_DISCONNECT) {
        s_connect(self);
        return 0;
    }
    if (cmd != MB_MDPW_REQUEST || n < 5) return 0;
    zframe_t *client = zmsg_next(msg);
    zmsg_next(msg); /* empty delimiter */
    zframe_t *frames[n - 4];
    for (size_t i = 0; i < n - 4; i++)
        frames[i] = zmsg_next(msg);
    mb_err_t err;
    mb_body_t *body = NULL;
    if (mb_body_decode(frames, n - 4, &body, &err) != 0) {
        /* Answer bad input here so every worker rejects it the same way. */
        mb_body_t *e = mb_body_error(err.code, "%s", err.msg);
        s_send_final(self, client, e);
        mb_body_destroy(&e);
        return 0;
    }
    zframe_destroy(&self->reply_to);
    self->reply_to = zframe_dup(client);
    json_decref(self->req_id);
    self->req_id = json_incref(json_object_get(mb_body_json(body), "id"));
    *request = body;
    return 1;
}

static int s_recv_locked(mb_worker_t *self, mb_body_t **request, int timeout_ms);

int mb_worker_recv(mb_worker_t *self, mb_body_t **request, int timeout_ms) {
    pthread_mutex_lock(&self->lock);
    atomic_store(&self->busy, 0);
    int rc = s_recv_locked(self, request, timeout_ms);
    if (rc == 0) atomic_store(&self->busy, 1);
    pthread_mutex_unlock(&self->lock);
    return rc;
}

static int s_reply_locked(mb_worker_t *self, mb_body_t **reply);

static int s_recv_locked(mb_worker_t *self, mb_body_t **request, int timeout_ms) {
    *request = NULL;
    if (self->reply_to) {
        /* The caller dropped the previous request: never leave a client hanging. */
        mb_body_t *e = mb_body_error(MB_EINTERNAL, "worker produced no reply");
        s_reply_locked(self, &e);
    }
    int64_t deadline = mb_clock_ms() + timeout_ms;
    for (;;) {
        int64_t now = mb_clock_ms();
        int64_t wait = self->hb_at - now;
        if (deadline - now < wait) wait = deadline - now;
        if (wait < 0) wait = 0;
        zmq_pollitem_t item = {zsock_resolve(self->sock), 0, ZMQ_POLLIN, 0};
        int rc = zmq_poll(&item, 1, (long)wait);
        if (rc < 0) return MB_ETIMEOUT; /* signal: let the caller check its flag */
        now = mb_clock_ms();
        if (rc > 0) {
            zmsg_t *msg = zmsg_recv(self->sock);
            if (msg) {
                self->broker_expiry = now + (int64_t)self->hb_ms * MB_HEARTBEAT_LIVENESS;
                int got = s_handle(self, msg, request);
                zmsg_destroy(&msg);
                if (got) return 0;
            }
        } else if (now > self->broker_expiry) {
            mb_info("worker %s: broker silent, reconnecting", self->service);
            s_connect(self);
        }
        s_heartbeat(self);
        if (mb_clock_ms() >= deadline) return MB_ETIMEOUT;
    }
}

int mb_worker_reply(mb_worker_t *self, mb_body_t **reply) {
    pthread_mutex_lock(&self->lock);
    int rc = s_reply_locked(self, reply);
    atomic_store(&self->busy, 0);
    pthread_mutex_unlock(&self->lock);
    return rc;
}

static int s_reply_locked(mb_worker_t *self, mb_body_t **reply) {
    if (!self->reply_to) {
        mb_body_destroy(reply);
        return MB_EBADREQ;
    }
    if (self->req_id) json_object_set(mb_body_json(*reply), "id", self->req_id);
    s_send_final(self, self->reply_to, *reply);
    mb_body_destroy(reply);
    zframe_destroy(&self->reply_to);
    json_decref(self->req_id);
    self->req_id = NULL;
    return 0;
}
