/* bench_bus — what the broker hop costs, measured against raw ZeroMQ in the
 * same run on loopback TCP.
 *
 *   raw     REQ -> REP echo thread (no broker)
 *   broker  mb_client -> `moebus broker` process -> mb_worker echo thread
 *
 * Latency: one request in flight, median and p99 over N round trips.
 * Throughput: a window of W requests in flight (raw: DEALER -> ROUTER echo;
 * broker: mb_client_send/gather against E echo workers), requests/s.
 *
 * usage: bench_bus MOEBUS_BINARY [N] [--quick]
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mb_client.h"
#include "mb_mdp.h"
#include "mb_worker.h"

#define RAW_EP "tcp://127.0.0.1:57501"
#define RAW_EP2 "tcp://127.0.0.1:57502"
#define BRK_EP "tcp://127.0.0.1:57503"
#define PAYLOAD "{\"op\":\"echo\",\"query\":\"what is a monad\",\"k\":10}"

static volatile int s_stop;

static int s_cmp(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

typedef struct {
    double median_us, p99_us, rps;
} lat_t;

static lat_t s_stats(int64_t *us, int n) {
    qsort(us, (size_t)n, sizeof *us, s_cmp);
    int64_t total = 0;
    for (int i = 0; i < n; i++) total += us[i];
    lat_t r = {(double)us[n / 2], (double)us[(int)((double)n * 0.99)],
               (double)n / ((double)total / 1e6)};
    return r;
}

static void *s_rep_thread(void *arg) {
    (void)arg;
    zsock_t *rep = zsock_new_rep(RAW_EP);
    zsock_set_rcvtimeo(rep, 100);
    while (!s_stop) {
        zmsg_t *m = zmsg_recv(rep);
        if (m) zmsg_send(&m, rep);
    }
    zsock_destroy(&rep);
    return NULL;
}

static void *s_router_echo_thread(void *arg) {
    (void)arg;
    zsock_t *r = zsock_new_router(RAW_EP2);
    zsock_set_rcvtimeo(r, 100);
    zsock_set_sndhwm(r, 0);
    zsock_set_rcvhwm(r, 0);
    while (!s_stop) {
        zmsg_t *m = zmsg_recv(r);
        if (m) zmsg_send(&m, r);
    }
    zsock_destroy(&r);
    return NULL;
}

static void *s_echo_worker(void *arg) {
    (void)arg;
    mb_worker_t *w = mb_worker_new(BRK_EP, "echo", NULL);
    while (!s_stop) {
        mb_body_t *req = NULL;
        if (mb_worker_recv(w, &req, 100) != 0) continue;
        mb_body_t *reply = mb_body_ok(json_incref(mb_body_json(req)));
        mb_body_destroy(&req);
        mb_worker_reply(w, &reply);
    }
    mb_worker_destroy(&w);
    return NULL;
}

static lat_t s_raw_latency(int n) {
    zsock_t *req = zsock_new_req(RAW_EP);
    int64_t *us = malloc((size_t)n * sizeof *us);
    for (int i = -200; i < n; i++) { /* 200 warm-up round trips */
        int64_t t0 = mb_clock_us();
        zstr_send(req, PAYLOAD);
        char *s = zstr_recv(req);
        free(s);
        if (i >= 0) us[i] = mb_clock_us() - t0;
    }
    lat_t r = s_stats(us, n);
    free(us);
    zsock_destroy(&req);
    return r;
}

static double s_raw_throughput(int n, int window) {
    zsock_t *d = zsock_new_dealer(RAW_EP2);
    zsock_set_sndhwm(d, 0);
    zsock_set_rcvhwm(d, 0);
    int sent = 0, got = 0;
    int64_t t0 = mb_clock_us();
    while (got < n) {
        while (sent < n && sent - got < window) {
            zstr_send(d, PAYLOAD);
            sent++;
        }
        char *s = zstr_recv(d);
        free(s);
        got++;
    }
    double rps = (double)n / ((double)(mb_clock_us() - t0) / 1e6);
    zsock_destroy(&d);
    return rps;
}

static lat_t s_broker_latency(mb_client_t *c, int n) {
    int64_t *us = malloc((size_t)n * sizeof *us);
    for (int i = -200; i < n; i++) {
        mb_body_t *req = mb_body_new(json_loads(PAYLOAD, 0, NULL)), *reply = NULL;
        int64_t t0 = mb_clock_us();
        if (mb_client_call(c, "echo", &req, &reply, 5000, NULL) != 0) {
            fprintf(stderr, "bench: broker call failed\n");
            exit(1);
        }
        if (i >= 0) us[i] = mb_clock_us() - t0;
        mb_body_destroy(&reply);
    }
    lat_t r = s_stats(us, n);
    free(us);
    return r;
}

static double s_broker_throughput(mb_client_t *c, int n, int window) {
    int64_t *ids = malloc((size_t)window * sizeof *ids);
    mb_body_t **replies = malloc((size_t)window * sizeof *replies);
    int done = 0;
    int64_t t0 = mb_clock_us();
    while (done < n) {
        int w = n - done < window ? n - done : window;
        for (int i = 0; i < w; i++) {
            mb_body_t *req = mb_body_new(json_loads(PAYLOAD, 0, NULL));
            ids[i] = mb_client_send(c, "echo", &req, NULL);
        }
        int got = mb_client_gather(c, ids, (size_t)w, replies, mb_clock_ms() + 10000);
        for (int i = 0; i < w; i++) mb_body_destroy(&replies[i]);
        if (got != w) {
            fprintf(stderr, "bench: lost replies\n");
            exit(1);
        }
        done += w;
    }
    double rps = (double)n / ((double)(mb_clock_us() - t0) / 1e6);
    free(ids);
    free(replies);
    return rps;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: bench_bus MOEBUS_BINARY [N] [--quick]\n");
        return 2;
    }
    int quick = argc > 2 && strcmp(argv[argc - 1], "--quick") == 0;
    int n = quick ? 500 : (argc > 2 && atoi(argv[2]) > 0 ? atoi(argv[2]) : 20000);
    int window = 64, workers = 2, runs = quick ? 1 : 5;
    zsys_handler_set(NULL);

    pid_t broker = fork();
    if (broker == 0) {
        execl(argv[1], "moebus", "broker", "--endpoint", BRK_EP, (char *)NULL);
        _exit(127);
    }
    pthread_t rep, rtr, echo[8];
    pthread_create(&rep, NULL, s_rep_thread, NULL);
    pthread_create(&rtr, NULL, s_router_echo_thread, NULL);
    for (int i = 0; i < workers; i++) pthread_create(&echo[i], NULL, s_echo_worker, NULL);
    mb_client_t *c = mb_client_new(BRK_EP, NULL);
    /* wait for both echo workers to register */
    for (int i = 0; i < 200; i++) {
        mb_body_t *req = mb_body_new(json_pack("{s:s}", "service", "echo")), *r = NULL;
        mb_client_call(c, "mmi.service", &req, &r, 500, NULL);
        json_int_t nw = r ? mb_json_int(mb_body_json(r), "workers", 0) : 0;
        mb_body_destroy(&r);
        if (nw == workers) break;
        usleep(20000);
    }

    printf("bench_bus: %d round trips x %d runs, payload %zu bytes, loopback TCP, %d echo "
           "workers, window %d\n",
           n, runs, strlen(PAYLOAD), workers, window);
    /* Interleave raw and broker runs so machine noise hits both alike; report
     * the median run of each. */
    lat_t raw[8], brk[8];
    double rawt[8], brkt[8];
    for (int r = 0; r < runs; r++) {
        raw[r] = s_raw_latency(n);
        brk[r] = s_broker_latency(c, n);
        rawt[r] = s_raw_throughput(n * 2, window);
        brkt[r] = s_broker_throughput(c, n * 2, window);
        printf("  run %d: raw median %.0f us p99 %.0f us | broker median %.0f us p99 %.0f us | "
               "raw %.0f req/s, broker %.0f req/s pipelined\n",
               r + 1, raw[r].median_us, raw[r].p99_us, brk[r].median_us, brk[r].p99_us, rawt[r],
               brkt[r]);
    }
    /* median run by median latency */
    double m_raw[8], m_brk[8], p_raw[8], p_brk[8], s_raw[8], s_brk[8];
    for (int r = 0; r < runs; r++) {
        m_raw[r] = raw[r].median_us;
        m_brk[r] = brk[r].median_us;
        p_raw[r] = raw[r].p99_us;
        p_brk[r] = brk[r].p99_us;
        s_raw[r] = raw[r].rps;
        s_brk[r] = brk[r].rps;
    }
#define MED(a)                                                                                 \
    ({                                                                                         \
        double t_[8];                                                                          \
        memcpy(t_, a, sizeof(double) * (size_t)runs);                                          \
        for (int i_ = 1; i_ < runs; i_++)                                                      \
            for (int j_ = i_; j_ > 0 && t_[j_ - 1] > t_[j_]; j_--) {                           \
                double x_ = t_[j_];                                                            \
                t_[j_] = t_[j_ - 1];                                                           \
                t_[j_ - 1] = x_;                                                               \
            }                                                                                  \
        t_[runs / 2];                                                                          \
    })
    double mr = MED(m_raw), mb = MED(m_brk), pr = MED(p_raw), pb = MED(p_brk);
    double sr = MED(s_raw), sb = MED(s_brk), tr = MED(rawt), tb = MED(brkt);
    printf("\n%-34s %12s %12s %8s\n", "", "raw REQ/REP", "via broker", "ratio");
    printf("%-34s %12.0f %12.0f %7.2fx\n", "latency median (us)", mr, mb, mb / mr);
    printf("%-34s %12.0f %12.0f %7.2fx\n", "latency p99 (us)", pr, pb, pb / pr);
    printf("%-34s %12.0f %12.0f %7.2fx\n", "req/s, 1 in flight", sr, sb, sr / sb);
    printf("%-34s %12.0f %12.0f %7.2fx\n", "req/s, pipelined", tr, tb, tr / tb);
    printf("broker hop adds %.0f us per request (median); targets: <= 2x raw latency, >= 20000 "
           "req/s through the broker\n",
           mb - mr);

    s_stop = 1;
    for (int i = 0; i < workers; i++) pthread_join(echo[i], NULL);
    pthread_join(rep, NULL);
    pthread_join(rtr, NULL);
    mb_client_destroy(&c);
    kill(broker, SIGTERM);
    int status = 0;
    waitpid(broker, &status, 0);
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 1;
}
