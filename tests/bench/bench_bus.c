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
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mb_client.h"
#include "mb_mdp.h"
#include "mb_worker.h"

#define RAW_EP "tcp://127.0.0.1:27501"
#define RAW_EP2 "tcp://127.0.0.1:27502"
#define BRK_EP "tcp://127.0.0.1:27503"
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
    for (int i = 0; i < n; i++)
        total += us[i];
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
        for (int i = 0; i < w; i++)
            mb_body_destroy(&replies[i]);
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

static double s_median(double *v, int n) {
    double t[16];
    memcpy(t, v, sizeof(double) * (size_t)n);
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && t[j - 1] > t[j]; j--) {
            double x = t[j];
            t[j] = t[j - 1];
            t[j - 1] = x;
        }
    return t[n / 2];
}

static void s_wait_workers(mb_client_t *c, int want) {
    for (int i = 0; i < 200; i++) {
        mb_body_t *req = mb_body_new(json_pack("{s:s}", "service", "echo")), *r = NULL;
        mb_client_call(c, "mmi.service", &req, &r, 500, NULL);
        json_int_t nw = r ? mb_json_int(mb_body_json(r), "workers", 0) : 0;
        mb_body_destroy(&r);
        if (nw == want) return;
        usleep(20000);
    }
    fprintf(stderr, "bench: only some echo workers registered\n");
    exit(1);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: bench_bus MOEBUS_BINARY [N] [--quick]\n");
        return 2;
    }
    int quick = argc > 2 && strcmp(argv[argc - 1], "--quick") == 0;
    int n = quick ? 500 : (argc > 2 && atoi(argv[2]) > 0 ? atoi(argv[2]) : 20000);
    int window = 64, runs = quick ? 1 : 5;
    zsys_handler_set(NULL);
    zsys_init(); /* before any thread creates a socket: zsys's lazy init is not
                    thread-safe */

    pid_t broker = fork();
    if (broker == 0) {
        execl(argv[1], "moebus", "broker", "--endpoint", BRK_EP, (char *)NULL);
        _exit(127);
    }
    pthread_t rep, rtr, echo[8];
    int nworkers = 0;
    pthread_create(&rep, NULL, s_rep_thread, NULL);
    pthread_create(&rtr, NULL, s_router_echo_thread, NULL);
    mb_client_t *c = mb_client_new(BRK_EP, NULL);
    while (nworkers < 2)
        pthread_create(&echo[nworkers++], NULL, s_echo_worker, NULL);
    s_wait_workers(c, nworkers);

    printf(
        "bench_bus: %d round trips x %d runs (median run reported), payload %zu bytes, "
        "loopback TCP, broker = `moebus broker` process, echo workers = mb_worker "
        "threads\n",
        n, runs, strlen(PAYLOAD));
    /* Latency, one request in flight. Raw and broker runs alternate so machine
     * noise hits both alike. */
    double m_raw[16], m_brk[16], p_raw[16], p_brk[16], s_raw[16], s_brk[16];
    for (int r = 0; r < runs; r++) {
        lat_t a = s_raw_latency(n), b = s_broker_latency(c, n);
        m_raw[r] = a.median_us, p_raw[r] = a.p99_us, s_raw[r] = a.rps;
        m_brk[r] = b.median_us, p_brk[r] = b.p99_us, s_brk[r] = b.rps;
        printf("  latency run %d: raw median %.0f us p99 %.0f us | broker median %.0f us "
               "p99 %.0f "
               "us\n",
               r + 1, a.median_us, a.p99_us, b.median_us, b.p99_us);
    }
    double mr = s_median(m_raw, runs), mb = s_median(m_brk, runs);
    double pr = s_median(p_raw, runs), pb = s_median(p_brk, runs);
    double sr = s_median(s_raw, runs), sb = s_median(s_brk, runs);
    printf("\n%-40s %12s %12s %8s\n", "one request in flight", "raw REQ/REP",
           "via broker", "ratio");
    printf("%-40s %12.0f %12.0f %7.2fx\n", "latency median (us)", mr, mb, mb / mr);
    printf("%-40s %12.0f %12.0f %7.2fx\n", "latency p99 (us)", pr, pb, pb / pr);
    printf("%-40s %12.0f %12.0f %7.2fx\n", "req/s", sr, sb, sr / sb);
    printf("broker hop adds %.0f us per request (median)\n", mb - mr);

    /* Throughput with a window of requests in flight. MDP gives each worker
     * one request at a time, so through the broker the concurrency is the
     * number of workers: sweep it. Raw is one DEALER -> ROUTER echo. */
    printf("\n%-40s %12s %12s %8s\n", "window of 64 in flight (req/s)", "raw DEALER",
           "via broker", "ratio");
    int sweep[3] = {2, 4, 8};
    for (int i = 0; i < 3; i++) {
        while (nworkers < sweep[i])
            pthread_create(&echo[nworkers++], NULL, s_echo_worker, NULL);
        s_wait_workers(c, nworkers);
        double rawt[16], brkt[16];
        for (int r = 0; r < runs; r++) {
            rawt[r] = s_raw_throughput(n * 2, window);
            brkt[r] = s_broker_throughput(c, n * 2, window);
        }
        double tr = s_median(rawt, runs), tb = s_median(brkt, runs);
        char label[64];
        snprintf(label, sizeof label, "%d echo workers", nworkers);
        printf("%-40s %12.0f %12.0f %7.2fx\n", label, tr, tb, tr / tb);
    }

    s_stop = 1;
    for (int i = 0; i < nworkers; i++)
        pthread_join(echo[i], NULL);
    pthread_join(rep, NULL);
    pthread_join(rtr, NULL);
    mb_client_destroy(&c);
    kill(broker, SIGTERM);
    int status = 0;
    waitpid(broker, &status, 0);
    struct rusage ru;
    getrusage(RUSAGE_CHILDREN, &ru);
    double cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_stime.tv_sec +
                 ((double)ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_usec) / 1e6;
    double reqs = (double)runs * ((double)n + 200 + 3 * 2.0 * n);
    printf("\nbroker process CPU (user+sys, both its threads): %.2f s for %.0f requests "
           "= %.1f "
           "us/request\n",
           cpu, reqs, cpu * 1e6 / reqs);
    printf("targets: broker latency <= 2x raw; >= 20000 req/s through the broker\n");
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 1;
}
