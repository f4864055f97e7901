/* serve.c — `moebus serve`: the supervisor. Runs the broker, the gate, the
 * router, the admin service, every domain's embed/index workers and a
 * generate worker per generator as child processes, and keeps that set equal
 * to what the catalog says.
 *
 * - Children are started with fork+exec of this same binary (never fork-only:
 *   FAISS/OpenMP state does not survive a fork).
 * - A child that dies is restarted with exponential backoff (100 ms doubling
 *   to 10 s, reset once it has stayed up 10 s). After MAX_FAST_CRASHES deaths
 *   in a row within FAST_CRASH_MS of starting it is given up on, loudly; a
 *   catalog change (the usual fix) retries it.
 * - The catalog is watched (SQLite data_version, every 200 ms): a domain or
 *   generator that appears gets its workers, one that is removed has them
 *   stopped after RETIRE_GRACE_MS, so requests already routed to it finish
 *   (the gate stops routing to it at once, from the same catalog).
 * - Lazy experts (--max-loaded-experts N): embed workers start on demand. The
 *   broker queues a request for a service with no worker; the supervisor
 *   polls the broker (mmi.services) every 50 ms, starts the embed worker of a
 *   domain with queued requests, and stops the least recently used one when
 *   more than N are loaded.
 * - Every lifecycle event is one log line; HOME/serve.status.json holds the
 *   children's state for `moebus status` (rewritten each second).
 * SIGINT/SIGTERM stop workers first (they save their indexes), then the
 * broker. */
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
#include <time.h>
#include <unistd.h>

#include "home.h"
#include "mb_client.h"
#include "mb_log.h"
#include "mb_mdp.h"
#include "services.h"
#include "svc.h"

static const char *s_usage =
    "usage: moebus serve [--home DIR] [--endpoint E] [--max-loaded-experts N]\n"
    "\n"
    "Starts the broker, the gate, the router, the admin service, the embed/index\n"
    "workers of every domain and a generate worker per generator in HOME's\n"
    "catalog; restarts crashed workers (with backoff; gives up after 5 crashes\n"
    "in a row within 5 s of starting); starts and stops workers as domains and\n"
    "generators are added and removed while it runs. Stops everything cleanly\n"
    "on SIGINT/SIGTERM (or `moebus stop`). Refuses a home another serve runs.\n"
    "\n"
    "  --home DIR      moebus home (default $MOEBUS_HOME or ./moebus-data)\n"
    "  --endpoint E    endpoint the broker binds (default $MOEBUS_ENDPOINT or\n"
    "                  tcp://127.0.0.1:5555); workers connect to it\n"
    "  --max-loaded-experts N\n"
    "                  keep at most N domains' embed workers running: a domain's\n"
    "                  expert is started when a request for it arrives and the\n"
    "                  least recently used one is stopped (default 0: all loaded)\n";

#define MAX_CHILDREN 512
#define MAX_ARGS 12
#define MAX_FAST_CRASHES 5
#define FAST_CRASH_MS 5000
#define RETIRE_GRACE_MS 1500

typedef enum { K_BROKER, K_CORE, K_INDEX, K_EMBED, K_GENERATE } kind_t;

typedef struct {
    char name[96];
    char owner[MB_DOMAIN_NAME_MAX + 1]; /* domain or generator; "" for core */
    kind_t kind;
    char *argv[MAX_ARGS];
    pid_t pid;
    int restarts, fast_crashes, gave_up;
    int64_t started_ms;
    int64_t restart_at_ms; /* 0: not waiting */
    int64_t backoff_ms;
    int64_t retire_at_ms; /* >0: owner gone; stop at this time, then forget */
    int stopping;         /* SIGTERM sent on purpose: do not restart */
    int cold_starts;
    char last_exit[96];
    char sig[1024];  /* the owner's catalog row when last seen: a change retries a
                        child given up on */
    int64_t created; /* the domain's creation stamp: another one = re-created */

} child_t;

static child_t s_children[MAX_CHILDREN];
static int s_nchildren;
static char s_exe[4096];
static char s_home[4096], s_connect[512];
static int s_max_loaded;
static int s_resync; /* a retired child was forgotten: its owner may be back */

static void s_spawn(child_t *c) {
    pid_t pid = fork();
    if (pid == 0) {
        /* default signal dispositions in the child */
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
    c->stopping = 0;
    mb_info("started %s (pid %d)", c->name, (int)pid);
}

static child_t *s_find(const char *name) {
    for (int i = 0; i < s_nchildren; i++)
        if (strcmp(s_children[i].name, name) == 0) return &s_children[i];
    return NULL;
}

/* Adds a child (argv NULL-terminated after kind/owner) and starts it unless
 * start is 0. */
static child_t *s_add_child(const char *name, kind_t kind, const char *owner, int start,
                            ...) {
    if (s_nchildren == MAX_CHILDREN) {
        mb_error("too many children; not starting %s", name);
        return NULL;
    }
    child_t *c = &s_children[s_nchildren++];
    memset(c, 0, sizeof *c);
    snprintf(c->name, sizeof c->name, "%s", name);
    snprintf(c->owner, sizeof c->owner, "%s", owner ? owner : "");
    c->kind = kind;
    c->backoff_ms = 100;
    va_list ap;
    va_start(ap, start);
    c->argv[0] = strdup("moebus");
    int i = 1;
    const char *a;
    while (i < MAX_ARGS - 1 && (a = va_arg(ap, const char *)))
        c->argv[i++] = strdup(a);
    va_end(ap);
    if (start) s_spawn(c);
    return c;
}

static void s_forget(child_t *c) {
    for (int a = 0; c->argv[a]; a++)
        free(c->argv[a]);
    int i = (int)(c - s_children);
    memmove(&s_children[i], &s_children[i + 1],
            (size_t)(s_nchildren - i - 1) * sizeof *c);
    s_nchildren--;
}

/* A domain removed with --purge leaves HOME/domains/D/.purge: its directory
 * goes once its workers are gone. */
static void s_maybe_purge(const char *domain) {
    char dir[4300], marker[4400];
    mb_home_domain_dir(s_home, domain, dir, sizeof dir);
    snprintf(marker, sizeof marker, "%s/.purge", dir);
    if (access(marker, F_OK) != 0) return;
    pid_t pid = fork();
    if (pid == 0) {
        execlp("rm", "rm", "-rf", "--", dir, (char *)NULL);
        _exit(127);
    }
    int st = 0;
    if (pid > 0) waitpid(pid, &st, 0);
    if (pid > 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0)
        mb_info("purged domain %s (%s)", domain, dir);
    else
        mb_warn("could not purge %s", dir);
}

/* A retiring child is gone: forget it, and once both of a domain's workers
 * are, its data may go (remove --purge). */
static void s_retired(child_t *c) {
    char owner[MB_DOMAIN_NAME_MAX + 1], other[96];
    snprintf(owner, sizeof owner, "%s", c->owner);
    kind_t k = c->kind;
    mb_info("%s: retired", c->name);
    s_forget(c);
    s_resync = 1; /* its owner may be back (re-added): fresh workers */
    snprintf(other, sizeof other, "%s.%s", k == K_INDEX ? "embed" : "index", owner);
    if (k != K_GENERATE && !s_find(other)) s_maybe_purge(owner);
}

static int s_embed_loaded(void) {
    int n = 0;
    for (int i = 0; i < s_nchildren; i++)
        n += s_children[i].kind == K_EMBED && s_children[i].pid > 0 &&
             !s_children[i].stopping;
    return n;
}

/* Makes the children match the catalog. */
static void s_sync(void) {
    mb_domain_info_t *d = NULL;
    size_t n = 0;
    mb_err_t err;
    if (mb_catalog_domains(s_home, &d, &n, &err) != 0) {
        mb_warn("cannot read catalog: %s", err.msg);
        return;
    }
    mb_generator_info_t *g = NULL;
    size_t ng = 0;
    if (mb_catalog_generators(s_home, &g, &ng, &err) != 0) ng = 0;
    int64_t now = mb_clock_ms();
    /* owners that are gone: retire their workers after a grace period */
    for (int i = 0; i < s_nchildren; i++) {
        child_t *c = &s_children[i];
        if (c->kind == K_BROKER || c->kind == K_CORE) continue;
        int present = 0;
        int64_t created = 0;
        char sig[1024] = "";
        if (c->kind == K_GENERATE) {
            for (size_t k = 0; k < ng; k++)
                if (strcmp(g[k].name, c->owner) == 0) {
                    present = 1;
                    snprintf(sig, sizeof sig, "%s|%s|%s", g[k].url, g[k].model,
                             g[k].api_key_env);
                }
        } else {
            for (size_t k = 0; k < n; k++)
                if (strcmp(d[k].name, c->owner) == 0) {
                    present = 1;
                    created = d[k].created;
                    snprintf(sig, sizeof sig, "%s|%d|%s|%s|%s|%s", d[k].embed, d[k].dim,
                             d[k].index_type, d[k].url, d[k].model, d[k].api_key_env);
                }
        }
        int changed = strcmp(sig, c->sig) != 0;
        snprintf(c->sig, sizeof c->sig, "%s", sig);
        /* A removed owner's workers retire even if it is added again in the
         * meantime: it may have been purged and recreated, and the old
         * workers hold the old files. Fresh ones start once they are gone. */
        if (present && c->kind != K_GENERATE && c->created && created != c->created) {
            present = 0; /* removed and added again since we last looked */
            mb_info("%s: %s was removed and added again: replacing its workers", c->name,
                    c->owner);
        }
        if (present && !c->created) c->created = created;
        if (!present && !c->retire_at_ms) {
            c->retire_at_ms = now + RETIRE_GRACE_MS;
            mb_info("%s: %s removed from the catalog; stopping %s in %d ms", c->name,
                    c->owner, c->name, RETIRE_GRACE_MS);
        }
        if (c->retire_at_ms) continue;
        if (present && c->gave_up && changed) {
            /* its catalog entry changed: perhaps the fix; try again */
            c->gave_up = 0;
            c->fast_crashes = 0;
            c->backoff_ms = 100;
            if (c->pid == 0 && !(c->kind == K_EMBED && s_max_loaded > 0)) {
                mb_info("%s: catalog changed; trying again", c->name);
                s_spawn(c);
            }
        }
    }
    for (size_t i = 0; i < n; i++) {
        char name[96];
        snprintf(name, sizeof name, "index.%s", d[i].name);
        if (!s_find(name))
            s_add_child(name, K_INDEX, d[i].name, 1, "index", "--domain", d[i].name,
                        "--home", s_home, "--endpoint", s_connect, (char *)NULL);
        snprintf(name, sizeof name, "embed.%s", d[i].name);
        if (!s_find(name))
            s_add_child(name, K_EMBED, d[i].name, s_max_loaded == 0, "embed", "--domain",
                        d[i].name, "--home", s_home, "--endpoint", s_connect,
                        (char *)NULL);
    }
    for (size_t i = 0; i < ng; i++) {
        char name[96];
        snprintf(name, sizeof name, "generate.%s", g[i].name);
        if (!s_find(name))
            s_add_child(name, K_GENERATE, g[i].name, 1, "generate", "--name", g[i].name,
                        "--home", s_home, "--endpoint", s_connect, (char *)NULL);
    }
    free(d);
    free(g);
}

static void s_reap(int stopping_all) {
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        for (int i = 0; i < s_nchildren; i++) {
            child_t *c = &s_children[i];
            if (c->pid != pid) continue;
            c->pid = 0;
            int64_t up = mb_clock_ms() - c->started_ms;
            if (WIFSIGNALED(status))
                snprintf(c->last_exit, sizeof c->last_exit,
                         "killed by signal %d after %lld ms", WTERMSIG(status),
                         (long long)up);
            else
                snprintf(c->last_exit, sizeof c->last_exit,
                         "exited with status %d after %lld ms", WEXITSTATUS(status),
                         (long long)up);
            if (stopping_all) break;
            if (c->stopping || c->retire_at_ms) {
                /* on purpose (unloaded, or retiring: the main loop forgets it) */
                mb_info("%s (pid %d) stopped (%s)", c->name, (int)pid, c->last_exit);
                c->stopping = 0;
                break;
            }
            if (up > 10000) c->backoff_ms = 100;
            c->fast_crashes = up < FAST_CRASH_MS ? c->fast_crashes + 1 : 0;
            c->restarts++;
            if (c->fast_crashes >= MAX_FAST_CRASHES) {
                c->gave_up = 1;
                c->restart_at_ms = 0;
                mb_error("%s (pid %d) %s: crash %d in a row within %d ms of "
                         "starting: GIVING UP on it. See its log lines above; a "
                         "change to its catalog entry or restarting serve tries again.",
                         c->name, (int)pid, c->last_exit, c->fast_crashes, FAST_CRASH_MS);
                break;
            }
            mb_warn("%s (pid %d) %s; restarting in %lld ms", c->name, (int)pid,
                    c->last_exit, (long long)c->backoff_ms);
            c->restart_at_ms = mb_clock_ms() + c->backoff_ms;
            c->backoff_ms = c->backoff_ms * 2 > 10000 ? 10000 : c->backoff_ms * 2;
            break;
        }
    }
}

/* Lazy experts: start embed workers with queued requests, stop the least
 * recently used beyond the limit. */
static void s_lazy(mb_client_t *client) {
    mb_body_t *req = mb_body_new(json_object()), *reply = NULL;
    mb_err_t err;
    if (mb_client_call(client, "mmi.services", &req, &reply, 1000, &err) != 0) {
        mb_body_destroy(&reply);
        return;
    }
    json_t *svcs = json_object_get(mb_body_json(reply), "services");
    size_t i;
    json_t *v;
    int64_t now = mb_clock_ms();
    json_array_foreach(svcs, i, v) {
        const char *name = mb_json_str(v, "name", "");
        if (strncmp(name, "embed.", 6) != 0) continue;
        child_t *c = s_find(name);
        if (!c || c->pid > 0 || c->gave_up || c->retire_at_ms || c->restart_at_ms)
            continue;
        if (mb_json_int(v, "queued", 0) == 0 || mb_json_int(v, "workers", 0) > 0)
            continue;
        /* make room: stop the embed worker idle the longest */
        if (s_embed_loaded() >= s_max_loaded) {
            child_t *lru = NULL;
            int64_t lru_idle = -1;
            size_t k;
            json_t *w;
            json_array_foreach(svcs, k, w) {
                child_t *e = s_find(mb_json_str(w, "name", ""));
                if (!e || e->kind != K_EMBED || e->pid <= 0 || e->stopping) continue;
                if (mb_json_int(w, "queued", 0) > 0 ||
                    mb_json_int(w, "idle", 0) < mb_json_int(w, "workers", 0))
                    continue; /* busy */
                int64_t idle = mb_json_int(w, "idle_ms", -1);
                if (idle < 0) idle = now - e->started_ms;
                if (idle > lru_idle) lru = e, lru_idle = idle;
            }
            if (lru) {
                mb_info("%s: unloading (least recently used, idle %lld ms) to make room "
                        "for %s (--max-loaded-experts %d)",
                        lru->name, (long long)lru_idle, name, s_max_loaded);
                lru->stopping = 1; /* counted as unloaded from now on */
                kill(lru->pid, SIGTERM);
            }
        }
        if (s_embed_loaded() >= s_max_loaded) continue; /* all busy: next poll */
        c->cold_starts++;
        mb_info("%s: cold start on demand (%lld request(s) waiting)", name,
                (long long)mb_json_int(v, "queued", 0));
        s_spawn(c);
    }
    mb_body_destroy(&reply);
}

/* Resident and peak resident memory of a process, in kB (/proc). */
static void s_rss(pid_t pid, long *rss, long *hwm) {
    char path[64], line[256];
    *rss = *hwm = 0;
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f) return;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "VmRSS:", 6) == 0) *rss = atol(line + 6);
        if (strncmp(line, "VmHWM:", 6) == 0) *hwm = atol(line + 6);
    }
    fclose(f);
}

static void s_write_status(const char *path, int64_t serve_started_wall) {
    json_t *arr = json_array();
    int64_t now = mb_clock_ms();
    for (int i = 0; i < s_nchildren; i++) {
        child_t *c = &s_children[i];
        const char *state = c->pid > 0         ? (c->stopping ? "stopping" : "running")
                            : c->gave_up       ? "gave-up"
                            : c->retire_at_ms  ? "retiring"
                            : c->restart_at_ms ? "restarting"
                                               : "unloaded";
        json_t *o = json_pack("{s:s, s:s, s:i, s:I, s:i}", "name", c->name, "state",
                              state, "pid", (int)c->pid, "uptime_ms",
                              (json_int_t)(c->pid > 0 ? now - c->started_ms : 0),
                              "restarts", c->restarts);
        if (c->pid > 0) {
            long rss, hwm;
            s_rss(c->pid, &rss, &hwm);
            json_object_set_new(o, "rss_kb", json_integer(rss));
            json_object_set_new(o, "peak_rss_kb", json_integer(hwm));
        }
        if (c->kind == K_EMBED && s_max_loaded > 0)
            json_object_set_new(o, "cold_starts", json_integer(c->cold_starts));
        if (*c->last_exit) json_object_set_new(o, "last_exit", json_string(c->last_exit));
        json_array_append_new(arr, o);
    }
    json_t *st =
        json_pack("{s:i, s:I, s:s, s:s, s:i, s:o}", "pid", (int)getpid(), "started",
                  (json_int_t)serve_started_wall, "home", s_home, "endpoint", s_connect,
                  "max_loaded_experts", s_max_loaded, "children", arr);
    char tmp[4400];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    if (json_dump_file(st, tmp, JSON_COMPACT) == 0) rename(tmp, path);
    json_decref(st);
}

/* Signals the chosen children and waits up to timeout_ms for them to exit,
 * then kills what is left. */
static void s_stop_children(int brokers, int timeout_ms) {
    for (int i = 0; i < s_nchildren; i++)
        if (s_children[i].pid > 0 && (s_children[i].kind == K_BROKER) == brokers)
            kill(s_children[i].pid, SIGTERM);
    int64_t until = mb_clock_ms() + timeout_ms;
    for (;;) {
        s_reap(1);
        int left = 0;
        for (int i = 0; i < s_nchildren; i++)
            left += s_children[i].pid > 0 && (s_children[i].kind == K_BROKER) == brokers;
        if (!left) return;
        if (mb_clock_ms() > until) break;
        usleep(20000);
    }
    for (int i = 0; i < s_nchildren; i++)
        if (s_children[i].pid > 0 && (s_children[i].kind == K_BROKER) == brokers) {
            mb_warn("%s did not stop in %d ms; killing it", s_children[i].name,
                    timeout_ms);
            kill(s_children[i].pid, SIGKILL);
            waitpid(s_children[i].pid, NULL, 0);
            s_children[i].pid = 0;
        }
}

int mb_serve_main(int argc, char **argv) {
    if (mb_svc_wants_help(argc, argv, s_usage)) return 0;
    const char *home = mb_default_home(), *endpoint = mb_default_endpoint();
    static struct option opts[] = {{"home", required_argument, 0, 'H'},
                                   {"endpoint", required_argument, 0, 'e'},
                                   {"max-loaded-experts", required_argument, 0, 'L'},
                                   {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "H:e:L:", opts, NULL)) != -1) {
        if (c == 'H')
            home = optarg;
        else if (c == 'e')
            endpoint = optarg;
        else if (c == 'L' && atoi(optarg) >= 0)
            s_max_loaded = atoi(optarg);
        else {
            fputs(s_usage, stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fputs(s_usage, stderr);
        return 2;
    }
    mb_log_init("serve");
    mb_svc_signals();
    ssize_t n = readlink("/proc/self/exe", s_exe, sizeof s_exe - 1);
    if (n <= 0) {
        mb_error("cannot find my own executable");
        return 1;
    }
    s_exe[n] = 0;
    mkdir(home, 0755);
    if (!realpath(home, s_home)) {
        mb_error("cannot use home %s: %s", home, strerror(errno));
        return 1;
    }
    char pidpath[4200], statuspath[4200];
    snprintf(pidpath, sizeof pidpath, "%s/serve.pid", s_home);
    snprintf(statuspath, sizeof statuspath, "%s/serve.status.json", s_home);
    int other = mb_home_serve_pid(s_home);
    if (other && other != (int)getpid()) {
        mb_error("home %s is already served by pid %d (`moebus stop --home %s` first)",
                 s_home, other, s_home);
        return 1;
    }
    FILE *pf = fopen(pidpath, "w");
    if (pf) {
        fprintf(pf, "%d\n", (int)getpid());
        fclose(pf);
    }
    mb_endpoint_connectable(endpoint, s_connect, sizeof s_connect);
    mb_info("home %s, broker at %s%s", s_home, endpoint,
            s_max_loaded ? ", lazy experts" : "");
    if (s_max_loaded) mb_info("at most %d embed workers loaded at once", s_max_loaded);

    s_add_child("broker", K_BROKER, NULL, 1, "broker", "--endpoint", endpoint,
                (char *)NULL);
    s_add_child("admin", K_CORE, NULL, 1, "admin", "--home", s_home, "--endpoint",
                s_connect, (char *)NULL);
    s_add_child("gate", K_CORE, NULL, 1, "gate", "--home", s_home, "--endpoint",
                s_connect, (char *)NULL);
    s_add_child("router", K_CORE, NULL, 1, "router", "--home", s_home, "--endpoint",
                s_connect, (char *)NULL);
    mb_catalog_watch_t *watch = mb_catalog_watch_new(s_home);
    mb_err_t err;
    mb_client_t *client = s_max_loaded ? mb_client_new(s_connect, &err) : NULL;
    int64_t started_wall = (int64_t)time(NULL);
    int64_t watch_at = 0, sync_at = 0, status_at = 0, lazy_at = 0;
    while (!mb_svc_stop) {
        usleep(20000);
        s_reap(0);
        int64_t now = mb_clock_ms();
        for (int i = 0; i < s_nchildren && !mb_svc_stop; i++) {
            child_t *ch = &s_children[i];
            if (ch->pid == 0 && ch->restart_at_ms && now >= ch->restart_at_ms &&
                !ch->retire_at_ms)
                s_spawn(ch);
            if (ch->retire_at_ms && now >= ch->retire_at_ms && ch->pid > 0 &&
                !ch->stopping) {
                ch->stopping = 1;
                kill(ch->pid, SIGTERM);
            } else if (ch->retire_at_ms && now >= ch->retire_at_ms && ch->pid == 0) {
                s_retired(ch);
                i--;
            }
        }
        /* the catalog: on every commit (checked 5 times a second), and every
         * 5 s regardless */
        if (now >= watch_at) {
            watch_at = now + 200;
            if (mb_catalog_watch_changed(watch) || now >= sync_at || s_resync) {
                s_resync = 0;
                s_sync();
                sync_at = now + 5000;
            }
        }
        if (client && now >= lazy_at) {
            lazy_at = now + 50;
            s_lazy(client);
        }
        if (now >= status_at) {
            status_at = now + 1000;
            s_write_status(statuspath, started_wall);
        }
    }
    mb_info("stopping: workers first, then the broker");
    s_stop_children(0, 15000);
    s_stop_children(1, 5000);
    unlink(pidpath);
    unlink(statuspath);
    mb_client_destroy(&client);
    mb_catalog_watch_destroy(&watch);
    while (s_nchildren > 0)
        s_forget(&s_children[s_nchildren - 1]);
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
