/* serve.c — `moebus serve`: runs the broker, the gate and every domain's
 * embed/index workers as child processes, and keeps them running.
 *
 * Children are started with fork+exec of this same binary (never fork-only:
 * FAISS/OpenMP state does not survive a fork). A child that dies is
 * restarted with exponential backoff (100 ms doubling to 10 s, reset once it
 * has stayed up 10 s). The catalog is polled every second so a domain added
 * with `moebus domain add` gets its workers without a restart. SIGINT/SIGTERM
 * stop workers first (they save their indexes), then the broker.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "home.h"
#include "mb_log.h"
#include "mb_mdp.h"
#include "services.h"
#include "svc.h"

static const char *s_usage =
    "usage: moebus serve [--home DIR] [--endpoint E]\n"
    "\n"
    "Starts the broker, the gate, the router, the embed/index workers of every\n"
    "domain and a generate worker per generator in HOME's catalog; restarts\n"
    "crashed workers; starts workers for domains and generators added while it\n"
    "runs. Stops everything cleanly on SIGINT/SIGTERM (or `moebus stop`).\n"
    "\n"
    "  --home DIR      moebus home (default $MOEBUS_HOME or ./moebus-data)\n"
    "  --endpoint E    endpoint the broker binds (default $MOEBUS_ENDPOINT or\n"
    "                  tcp://127.0.0.1:5555); workers connect to it\n";

#define MAX_CHILDREN 512
#define MAX_ARGS 12

typedef struct {
    char name[96];
    char *argv[MAX_ARGS];
    pid_t pid;
    int restarts;
    int64_t started_ms;
    int64_t restart_at_ms; /* 0: not waiting */
    int64_t backoff_ms;
    int is_broker;
} child_t;

static child_t s_children[MAX_CHILDREN];
static int s_nchildren;
static char s_exe[4096];

static void s_spawn(child_t *c) {
    pid_t pid = fork();
    if (pid == 0) {
        /* New process group member of ours; default signal dispositions. */
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        signal(SIGPIPE, SIG_DFL);
        /* One OpenMP thread per worker unless the user says otherwise: FAISS
         * pools in every worker process would otherwise multiply past the
         * cores (see DESIGN.md, known pitfalls). */
        setenv("OMP_NUM_THREADS", "1", 0);
        execv(s_exe, c->argv);
        _exit(127);
    }
    if (pid < 0) {
        mb_error("cannot start %s: %s", c->name, strerror(errno));
        c->restart_at_ms = mb_clock_ms() + 1000;
        return;
    }
    c->pid = pid;
    c->started_ms = mb_clock_ms();
    c->restart_at_ms = 0;
    mb_info("started %s (pid %d)", c->name, (int)pid);
}

static child_t *s_add_child(const char *name, int is_broker, ...) {
    if (s_nchildren == MAX_CHILDREN) {
        mb_error("too many children; not starting %s", name);
        return NULL;
    }
    child_t *c = &s_children[s_nchildren++];
    memset(c, 0, sizeof *c);
    snprintf(c->name, sizeof c->name, "%s", name);
    c->is_broker = is_broker;
    c->backoff_ms = 100;
    va_list ap;
    va_start(ap, is_broker);
    c->argv[0] = strdup("moebus");
    int i = 1;
    const char *a;
    while (i < MAX_ARGS - 1 && (a = va_arg(ap, const char *)))
        c->argv[i++] = strdup(a);
    va_end(ap);
    s_spawn(c);
    return c;
}

static int s_has_child(const char *name) {
    for (int i = 0; i < s_nchildren; i++)
        if (strcmp(s_children[i].name, name) == 0) return 1;
    return 0;
}

static void s_sync_domains(const char *home, const char *connect) {
    mb_domain_info_t *d = NULL;
    size_t n = 0;
    mb_err_t err;
    if (mb_catalog_domains(home, &d, &n, &err) != 0) {
        mb_warn("cannot read catalog: %s", err.msg);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        char name[96];
        snprintf(name, sizeof name, "index.%s", d[i].name);
        if (!s_has_child(name))
            s_add_child(name, 0, "index", "--domain", d[i].name, "--home", home,
                        "--endpoint", connect, (char *)NULL);
        snprintf(name, sizeof name, "embed.%s", d[i].name);
        if (!s_has_child(name))
            s_add_child(name, 0, "embed", "--domain", d[i].name, "--home", home,
                        "--endpoint", connect, (char *)NULL);
    }
    free(d);
    mb_generator_info_t *g = NULL;
    if (mb_catalog_generators(home, &g, &n, &err) != 0) return;
    for (size_t i = 0; i < n; i++) {
        char name[96];
        snprintf(name, sizeof name, "generate.%s", g[i].name);
        if (!s_has_child(name))
            s_add_child(name, 0, "generate", "--name", g[i].name, "--home", home,
                        "--endpoint", connect, (char *)NULL);
    }
    free(g);
}

static void s_reap(int stopping) {
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        for (int i = 0; i < s_nchildren; i++) {
            child_t *c = &s_children[i];
            if (c->pid != pid) continue;
            c->pid = 0;
            if (stopping) break;
            int64_t up = mb_clock_ms() - c->started_ms;
            if (up > 10000) c->backoff_ms = 100;
            if (WIFSIGNALED(status))
                mb_warn("%s (pid %d) killed by signal %d after %lld ms; restarting in "
                        "%lld ms",
                        c->name, (int)pid, WTERMSIG(status), (long long)up,
                        (long long)c->backoff_ms);
            else
                mb_warn("%s (pid %d) exited with status %d after %lld ms; restarting in "
                        "%lld ms",
                        c->name, (int)pid, WEXITSTATUS(status), (long long)up,
                        (long long)c->backoff_ms);
            c->restart_at_ms = mb_clock_ms() + c->backoff_ms;
            c->backoff_ms = c->backoff_ms * 2 > 10000 ? 10000 : c->backoff_ms * 2;
            c->restarts++;
            break;
        }
    }
}

/* Signals the chosen children and waits up to timeout_ms for them to exit,
 * then kills what is left. */
static void s_stop_children(int brokers, int timeout_ms) {
    for (int i = 0; i < s_nchildren; i++)
        if (s_children[i].pid > 0 && s_children[i].is_broker == brokers)
            kill(s_children[i].pid, SIGTERM);
    int64_t until = mb_clock_ms() + timeout_ms;
    for (;;) {
        s_reap(1);
        int left = 0;
        for (int i = 0; i < s_nchildren; i++)
            left += s_children[i].pid > 0 && s_children[i].is_broker == brokers;
        if (!left) return;
        if (mb_clock_ms() > until) break;
        usleep(20000);
    }
    for (int i = 0; i < s_nchildren; i++)
        if (s_children[i].pid > 0 && s_children[i].is_broker == brokers) {
            mb_warn("%s did not stop in %d ms; killing it", s_children[i].name,
                    timeout_ms);
            kill(s_children[i].pid, SIGKILL);
            waitpid(s_children[i].pid, NULL, 0);
            s_children[i].pid = 0;
        }
}

int mb_serve_main(int argc, char **argv) {
    mb_svc_opts_t o;
    int done, prc = mb_svc_parse(argc, argv, s_usage, 0, &o, &done);
    if (done) return prc;
    const char *home = o.home, *endpoint = o.endpoint;
    mb_log_init("serve");
    mb_svc_signals();
    ssize_t n = readlink("/proc/self/exe", s_exe, sizeof s_exe - 1);
    if (n <= 0) {
        mb_error("cannot find my own executable");
        return 1;
    }
    s_exe[n] = 0;
    mkdir(home, 0755);
    char abshome[4096];
    if (!realpath(home, abshome)) {
        mb_error("cannot use home %s: %s", home, strerror(errno));
        return 1;
    }
    char pidpath[4200];
    snprintf(pidpath, sizeof pidpath, "%s/serve.pid", abshome);
    FILE *pf = fopen(pidpath, "w");
    if (pf) {
        fprintf(pf, "%d\n", (int)getpid());
        fclose(pf);
    }
    char connect[512];
    mb_endpoint_connectable(endpoint, connect, sizeof connect);
    mb_info("home %s, broker at %s", abshome, endpoint);

    s_add_child("broker", 1, "broker", "--endpoint", endpoint, (char *)NULL);
    s_add_child("gate", 0, "gate", "--home", abshome, "--endpoint", connect,
                (char *)NULL);
    s_add_child("router", 0, "router", "--home", abshome, "--endpoint", connect,
                (char *)NULL);
    s_sync_domains(abshome, connect);
    int64_t sync_at = mb_clock_ms() + 1000;
    while (!mb_svc_stop) {
        usleep(50000);
        s_reap(0);
        int64_t now = mb_clock_ms();
        for (int i = 0; i < s_nchildren && !mb_svc_stop; i++) {
            child_t *ch = &s_children[i];
            if (ch->pid == 0 && ch->restart_at_ms && now >= ch->restart_at_ms)
                s_spawn(ch);
        }
        if (now >= sync_at) {
            s_sync_domains(abshome, connect);
            sync_at = now + 1000;
        }
    }
    mb_info("stopping: workers first, then the broker");
    s_stop_children(0, 15000);
    s_stop_children(1, 5000);
    unlink(pidpath);
    for (int i = 0; i < s_nchildren; i++)
        for (int a = 0; s_children[i].argv[a]; a++)
            free(s_children[i].argv[a]);
    mb_info("stopped");
    return 0;
}

static const char *s_stop_usage =
    "usage: moebus stop [--home DIR]\n"
    "\n"
    "Stops the `moebus serve` running on HOME (signals the pid in HOME/serve.pid\n"
    "and waits up to 30 s for it to exit).\n";

int mb_stop_main(int argc, char **argv) {
    if (mb_svc_wants_help(argc, argv, s_stop_usage)) return 0;
    const char *home = mb_default_home();
    static struct option opts[] = {{"home", required_argument, 0, 'H'}, {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "H:", opts, NULL)) != -1) {
        if (c == 'H')
            home = optarg;
        else {
            fputs(s_stop_usage, stderr);
            return 2;
        }
    }
    char path[4200];
    snprintf(path, sizeof path, "%s/serve.pid", home);
    FILE *f = fopen(path, "r");
    int pid = 0;
    if (!f || fscanf(f, "%d", &pid) != 1 || pid <= 0) {
        fprintf(stderr, "moebus stop: no running service in %s (no %s)\n", home, path);
        if (f) fclose(f);
        return 1;
    }
    fclose(f);
    if (kill(pid, SIGTERM) != 0) {
        fprintf(stderr, "moebus stop: process %d is gone (%s)\n", pid, strerror(errno));
        unlink(path);
        return 1;
    }
    for (int i = 0; i < 300 && kill(pid, 0) == 0; i++)
        usleep(100000);
    if (kill(pid, 0) == 0) {
        fprintf(stderr, "moebus stop: %d still running after 30 s\n", pid);
        return 1;
    }
    printf("stopped moebus serve (pid %d)\n", pid);
    return 0;
}
