/* mb_client.c — MDP/0.2 client over one DEALER socket. */
#include "mb_client.h"

#include <string.h>

#include "mb_mdp.h"

struct mb_client_t {
    zsock_t *sock;
    int64_t next_id;
};

mb_client_t *mb_client_new(const char *endpoint, mb_err_t *err) {
    mb_client_t *self = calloc(1, sizeof *self);
    if (!self) {
        mb_err_set(err, MB_EINTERNAL, "out of memory");
        return NULL;
    }
    self->sock = zsock_new(ZMQ_DEALER);
    if (!self->sock) goto fail;
    zsock_set_linger(self->sock, 0);
    zsock_set_rcvhwm(self->sock, 100000);
    zsock_set_sndhwm(self->sock, 100000);
    if (zsock_connect(self->sock, "%s", endpoint) != 0) {
        mb_err_set(err, MB_EBADREQ, "cannot connect to %s", endpoint);
        goto fail_quiet;
    }
    self->next_id = 1;
    return self;
fail:
    mb_err_set(err, MB_EINTERNAL, "cannot create client socket");
fail_quiet:
    zsock_destroy(&self->sock);
    free(self);
    return NULL;
}

void mb_client_destroy(mb_client_t **self_p) {
    if (!self_p || !*self_p) return;
    zsock_destroy(&(*self_p)->sock);
    free(*self_p);
    *self_p = NULL;
}

int64_t mb_client_send(mb_client_t *self, const char *service, mb_body_t **request,
                       mb_err_t *err) {
    mb_body_t *req = *request;
    *request = NULL;
    int64_t id = self->next_id++;
    json_object_set_new(mb_body_json(req), "id", json_integer(id));
    zmsg_t *msg = zmsg_new();
    zmsg_addstr(msg, MB_MDPC);
    zmsg_addmem(msg, (char[]){MB_MDPC_REQUEST}, 1);
    zmsg_addstr(msg, service);
    int rc = mb_body_encode(req, msg);
    mb_body_destroy(&req);
    if (rc != 0) {
        zmsg_destroy(&msg);
        return mb_err_set(err, MB_EINTERNAL, "cannot encode request");
    }
    if (zmsg_send(&msg, self->sock) != 0) {
        zmsg_destroy(&msg);
        return mb_err_set(err, MB_EUNAVAIL, "cannot send request");
    }
    return id;
}

/* Receives one FINAL reply and decodes it; PARTIAL replies are not used by
 * moebus services and are dropped. Returns NULL on a malformed message. */
static mb_body_t *s_recv_reply(mb_client_t *self) {
    zmsg_t *msg = zmsg_recv(self->sock);
    if (!msg) return NULL;
    mb_body_t *body = NULL;
    size_t n = zmsg_size(msg);
    if (n >= 4) {
        zframe_t *frames[n];
        frames[0] = zmsg_first(msg);
        for (size_t i = 1; i < n; i++)
            frames[i] = zmsg_next(msg);
        if (zframe_streq(frames[0], MB_MDPC) && zframe_size(frames[1]) == 1 &&
            zframe_data(frames[1])[0] == MB_MDPC_FINAL)
            mb_body_decode(frames + 3, n - 3, &body, NULL);
    }
    zmsg_destroy(&msg);
    return body;
}

int mb_client_gather(mb_client_t *self, const int64_t *ids, size_t n, mb_body_t **replies,
                     int64_t deadline_ms) {
    size_t got = 0, want = 0;
    for (size_t i = 0; i < n; i++) {
        replies[i] = NULL;
        want += ids[i] > 0; /* a failed send (id <= 0) has nothing to wait for */
    }
    while (got < want) {
        int64_t left = deadline_ms - mb_clock_ms();
        if (left < 0) break;
        zmq_pollitem_t item = {zsock_resolve(self->sock), 0, ZMQ_POLLIN, 0};
        int rc = zmq_poll(&item, 1, (long)left);
        if (rc < 0) break; /* interrupted */
        if (rc == 0) continue;
        mb_body_t *body = s_recv_reply(self);
        if (!body) continue;
        json_t *jid = json_object_get(mb_body_json(body), "id");
        int64_t id = json_is_integer(jid) ? json_integer_value(jid) : -1;
        size_t slot = n;
        for (size_t i = 0; i < n; i++)
            if (ids[i] == id && !replies[i]) {
                slot = i;
                break;
            }
        if (slot == n) {
            mb_body_destroy(&body); /* late reply to an abandoned request */
            continue;
        }
        replies[slot] = body;
        got++;
    }
    return (int)got;
}

int mb_client_call(mb_client_t *self, const char *service, mb_body_t **request,
                   mb_body_t **reply, int timeout_ms, mb_err_t *err) {
    *reply = NULL;
    int64_t deadline = mb_clock_ms() + timeout_ms;
    int64_t id = mb_client_send(self, service, request, err);
    if (id < 0) return (int)id;
    mb_body_t *got = NULL;
    mb_client_gather(self, &id, 1, &got, deadline);
    if (!got)
        return mb_err_set(err, MB_ETIMEOUT, "no reply from %s within %d ms", service,
                          timeout_ms);
    *reply = got;
    return mb_body_status(got, err);
}
