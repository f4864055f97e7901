/* admin.c — the `admin` service and the catalog writes it owns. */
#define _XOPEN_SOURCE 700
#include "admin.h"

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "embed.h"
#include "home.h"
#include "index.h"
#include "mb_log.h"
#include "mb_mdp.h"
#include "services.h"
#include "svc.h"

static const char *s_usage =
    "usage: moebus admin [--home DIR] [--endpoint E]\n"
    "\n"
    "Serves `admin` on the bus: adds, removes, enables and disables domains in\n"
    "HOME's catalog and reports the service's status (`moebus domain`,\n"
    "`moebus status`). `moebus serve` runs one.\n"
    "\n"
    "  --home DIR      moebus home (default $MOEBUS_HOME or ./moebus-data)\n"
    "  --endpoint E    broker endpoint (default $MOEBUS_ENDPOINT or "
    "tcp://127.0.0.1:5555)\n";

/* Opens an expert as a domain would; for http also asks the server for one
 * embedding, which learns the dimension when none was given. */
static int s_check_expert(mb_domain_info_t *d, int dim_given, mb_err_t *err) {
    if (strcmp(d->embed, "builtin") != 0 && strcmp(d->embed, "hash") != 0 &&
        strcmp(d->embed, "http") != 0)
        return mb_err_set(err, MB_EBADREQ,
                          "unknown expert backend '%s' (builtin, hash, http)", d->embed);
    if (strcmp(d->embed, "http") != 0) {
        if (*d->url || *d->model)
            return mb_err_set(err, MB_EBADREQ, "url and model are for the http expert");
        return 0;
    }
    mb_expert_spec_t spec = {.dim = dim_given ? d->dim : 8};
    snprintf(spec.backend, sizeof spec.backend, "http");
    snprintf(spec.url, sizeof spec.url, "%s", d->url);
    snprintf(spec.model, sizeof spec.model, "%s", d->model);
    snprintf(spec.api_key_env, sizeof spec.api_key_env, "%s", d->api_key_env);
    mb_embed_t *e = mb_embed_open(&spec, NULL, err);
    if (!e) return err->code;
    /* Without a dimension, ask for 8: the dimension check's message carries
     * the server's real one. */
    float *v = malloc(4096 * sizeof *v);
    const char *probe = "moebus dimension probe";
    mb_err_t perr;
    int rc = mb_embed_batch(e, &probe, 1, MB_EMBED_PASSAGE, v, &perr);
    mb_embed_destroy(&e);
    free(v);
    if (rc != 0 && !dim_given) {
        /* "... returns N dimensions; the domain has 8" */
        const char *p = strstr(perr.msg, "returns ");
        int n = p ? atoi(p + 8) : 0;
        if (n >= 8 && n <= 4096) {
            d->dim = n;
            return 0;
        }
    }
    if (rc != 0)
        return mb_err_set(err, MB_EUNAVAIL, "the expert does not answer as expected: %s",
                          perr.msg);
    return 0;
}

static int s_rm_entry(const char *path, const struct stat *sb, int flag,
                      struct FTW *ftw) {
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

static json_t *s_domain_json(const mb_domain_info_t *d) {
    json_t *o = json_pack("{s:s, s:s, s:i, s:s, s:s}", "name", d->name, "embed", d->embed,
                          "dim", d->dim, "index", d->index_type, "state",
                          d->enabled ? "enabled" : "disabled");
    if (*d->url) json_object_set_new(o, "url", json_string(d->url));
    if (*d->model) json_object_set_new(o, "model", json_string(d->model));
    if (*d->api_key_env)
        json_object_set_new(o, "api_key_env", json_string(d->api_key_env));
    return o;
}

/* Reads the expert fields of req into d; 1 if a dimension was given. */
static int s_expert_fields(json_t *req, mb_domain_info_t *d, mb_err_t *err) {
    json_t *jdim = json_object_get(req, "dim");
    if (jdim && (!json_is_integer(jdim) || json_integer_value(jdim) < 8 ||
                 json_integer_value(jdim) > 4096))
        return mb_err_set(err, MB_EBADREQ, "\"dim\" must be an integer in 8..4096");
    if (jdim) d->dim = (int)json_integer_value(jdim);
    static const struct {
        const char *key;
        size_t off, size;
    } f[] = {
        {"embed", offsetof(mb_domain_info_t, embed), sizeof d->embed},
        {"url", offsetof(mb_domain_info_t, url), sizeof d->url},
        {"model", offsetof(mb_domain_info_t, model), sizeof d->model},
        {"api_key_env", offsetof(mb_domain_info_t, api_key_env), sizeof d->api_key_env},
        {"index", offsetof(mb_domain_info_t, index_type), sizeof d->index_type}};
    for (size_t i = 0; i < sizeof f / sizeof *f; i++) {
        json_t *v = json_object_get(req, f[i].key);
        if (!v) continue;
        if (!json_is_string(v) || json_string_length(v) >= f[i].size)
            return mb_err_set(err, MB_EBADREQ, "\"%s\" must be a string under %zu bytes",
                              f[i].key, f[i].size);
        snprintf((char *)d + f[i].off, f[i].size, "%s", json_string_value(v));
    }
    return 0;
}

json_t *mb_admin_apply(const char *home, json_t *req, int serving, mb_err_t *err) {
    const char *op = mb_json_str(req, "op", "");
    const char *name = mb_json_str(req, "name", NULL);
    if (strcmp(op, "domain.list") == 0) {
        mb_domain_info_t *d = NULL;
        size_t n = 0;
        if (mb_catalog_domains(home, &d, &n, err) != 0) return NULL;
        json_t *arr = json_array();
        for (size_t i = 0; i < n; i++)
            json_array_append_new(arr, s_domain_json(&d[i]));
        free(d);
        return json_pack("{s:o}", "domains", arr);
    }
    if (strcmp(op, "config.get") == 0 || strcmp(op, "config.set") == 0) {
        const char *key = mb_json_str(req, "key", NULL);
        if (!key) {
            mb_err_set(err, MB_EBADREQ, "%s needs \"key\"", op);
            return NULL;
        }
        if (strcmp(op, "config.get") == 0) {
            char buf[512];
            if (mb_catalog_setting_get(home, key, buf, sizeof buf) != 0)
                return json_pack("{s:s, s:n}", "key", key, "value");
            return json_pack("{s:s, s:s}", "key", key, "value", buf);
        }
        json_t *v = json_object_get(req, "value");
        if (v && !json_is_string(v) && !json_is_null(v)) {
            mb_err_set(err, MB_EBADREQ, "\"value\" must be a string or null (unset)");
            return NULL;
        }
        if (mb_catalog_setting_set(home, key, json_string_value(v), err) != 0)
            return NULL;
        return json_pack("{s:s, s:O}", "key", key, "value", v ? v : json_null());
    }
    if (strcmp(op, "generator.list") == 0) {
        mb_generator_info_t *g = NULL;
        size_t n = 0;
        if (mb_catalog_generators(home, &g, &n, err) != 0) return NULL;
        json_t *arr = json_array();
        for (size_t i = 0; i < n; i++)
            json_array_append_new(
                arr, json_pack("{s:s, s:s, s:s, s:s}", "name", g[i].name, "url", g[i].url,
                               "model", g[i].model, "api_key_env", g[i].api_key_env));
        free(g);
        return json_pack("{s:o}", "generators", arr);
    }
    if (strcmp(op, "generator.add") == 0 || strcmp(op, "generator.remove") == 0) {
        mb_generator_info_t g = {0};
        const char *gname = mb_json_str(req, "name", NULL);
        const char *url = mb_json_str(req, "url", "");
        if (!gname || !mb_domain_name_valid(gname)) {
            mb_err_set(err, MB_EBADREQ, "\"name\" must be 1-64 of a-z 0-9 - _");
            return NULL;
        }
        snprintf(g.name, sizeof g.name, "%s", gname);
        if (strcmp(op, "generator.remove") == 0)
            return mb_catalog_generator_remove(home, gname, err) == 0
                       ? json_pack("{s:s}", "name", gname)
                       : NULL;
        if ((strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0) ||
            !*mb_json_str(req, "model", "")) {
            mb_err_set(err, MB_EBADREQ,
                       "generator.add needs \"url\" (http:// or https://) and \"model\"");
            return NULL;
        }
        snprintf(g.url, sizeof g.url, "%s", url);
        snprintf(g.model, sizeof g.model, "%s", mb_json_str(req, "model", ""));
        snprintf(g.api_key_env, sizeof g.api_key_env, "%s",
                 mb_json_str(req, "api_key_env", ""));
        return mb_catalog_generator_add(home, &g, err) == 0
                   ? json_pack("{s:s}", "name", gname)
                   : NULL;
    }
    if (strcmp(op, "job.start") == 0) {
        const char *dom = mb_json_str(req, "domain", NULL);
        json_t *spec = json_object_get(req, "spec");
        if (!dom || !json_is_object(spec)) {
            mb_err_set(err, MB_EBADREQ,
                       "job.start needs \"domain\" and a \"spec\" object");
            return NULL;
        }
        char *txt = json_dumps(spec, JSON_COMPACT);
        int64_t id = 0;
        int rc = mb_catalog_job_create(home, dom, txt, &id, err);
        free(txt);
        return rc ? NULL : json_pack("{s:I}", "job", (json_int_t)id);
    }
    /* (jobs are named by "job": the bus client owns a request's "id") */
    if (strcmp(op, "job.update") == 0) {
        json_int_t id = mb_json_int(req, "job", 0);
        json_t *prog = json_object_get(req, "progress");
        const char *state = mb_json_str(req, "state", NULL);
        if (id <= 0 || (prog && !json_is_object(prog))) {
            mb_err_set(err, MB_EBADREQ,
                       "job.update needs \"job\" (and progress an object)");
            return NULL;
        }
        char *txt = prog ? json_dumps(prog, JSON_COMPACT) : NULL;
        int rc = mb_catalog_job_update(home, id, state, txt, err);
        free(txt);
        return rc ? NULL : json_pack("{s:I}", "job", id);
    }
    if (strcmp(op, "job.list") == 0 || strcmp(op, "job.get") == 0) {
        json_t *jobs = NULL;
        json_int_t id = strcmp(op, "job.get") == 0 ? mb_json_int(req, "job", -1) : 0;
        if (id < 0) {
            mb_err_set(err, MB_EBADREQ, "job.get needs \"job\"");
            return NULL;
        }
        if (mb_catalog_jobs(home, id, &jobs, err) != 0) {
            json_decref(jobs);
            return NULL;
        }
        if (id) {
            json_t *one = json_incref(json_array_get(jobs, 0));
            json_decref(jobs);
            return json_pack("{s:o}", "job", one);
        }
        return json_pack("{s:o}", "jobs", jobs);
    }
    if (strncmp(op, "domain.", 7) != 0) {
        mb_err_set(err, MB_EBADREQ,
                   "unknown op '%s' (domain.add, domain.set_expert, domain.remove, "
                   "domain.enable, domain.disable, domain.list, config.get, config.set, "
                   "generator.add, generator.remove, generator.list, job.start, "
                   "job.update, job.get, job.list, status)",
                   op);
        return NULL;
    }
    if (!name || !mb_domain_name_valid(name)) {
        mb_err_set(err, MB_EBADREQ,
                   "\"name\" must be a domain name: 1-64 of a-z 0-9 - _ (starting with "
                   "a letter or digit)");
        return NULL;
    }
    mb_domain_info_t d = {.dim = MB_DEFAULT_DIM, .enabled = 1};
    snprintf(d.name, sizeof d.name, "%s", name);
    if (strcmp(op, "domain.add") == 0) {
        snprintf(d.embed, sizeof d.embed, "builtin");
        snprintf(d.index_type, sizeof d.index_type, "Flat");
        if (s_expert_fields(req, &d, err) != 0) return NULL;
        int dim_given = json_object_get(req, "dim") != NULL;
        if (s_check_expert(&d, dim_given, err) != 0) return NULL;
        if (mb_index_check_factory(d.dim, d.index_type, err) != 0) return NULL;
        /* added again after `remove --purge` but before the supervisor got
         * to the purge: purge now, so the new domain starts empty (workers
         * of the old one still retiring hold only unlinked files) */
        char dir[4300], marker[4400];
        mb_home_domain_dir(home, name, dir, sizeof dir);
        snprintf(marker, sizeof marker, "%s/.purge", dir);
        mb_domain_info_t cur;
        if (access(marker, F_OK) == 0 &&
            mb_catalog_domain_get(home, name, &cur, NULL) != 0)
            nftw(dir, s_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
        if (mb_catalog_domain_add(home, &d, err) != 0) return NULL;
        return json_pack("{s:o}", "domain", s_domain_json(&d));
    }
    if (strcmp(op, "domain.set_expert") == 0) {
        mb_domain_info_t cur;
        if (mb_catalog_domain_get(home, name, &cur, err) != 0) return NULL;
        d = cur;
        d.url[0] = d.model[0] = d.api_key_env[0] = 0;
        if (s_expert_fields(req, &d, err) != 0) return NULL;
        int dim_given = json_object_get(req, "dim") != NULL;
        if (!dim_given && strcmp(d.embed, "http") != 0) d.dim = cur.dim;
        if (s_check_expert(&d, dim_given, err) != 0) return NULL;
        if (d.dim != cur.dim) {
            mb_err_set(err, MB_EBADREQ,
                       "the new expert makes %d-dimensional vectors, domain %s holds %d: "
                       "changing the dimension is not supported yet (add a new domain)",
                       d.dim, name, cur.dim);
            return NULL;
        }
        if (mb_catalog_domain_set_expert(home, &d, err) != 0) return NULL;
        return json_pack("{s:o}", "domain", s_domain_json(&d));
    }
    if (strcmp(op, "domain.enable") == 0 || strcmp(op, "domain.disable") == 0) {
        int on = strcmp(op, "domain.enable") == 0;
        if (mb_catalog_domain_set_enabled(home, name, on, err) != 0) return NULL;
        return json_pack("{s:s, s:s}", "name", name, "state",
                         on ? "enabled" : "disabled");
    }
    if (strcmp(op, "domain.remove") == 0) {
        int purge = json_is_true(json_object_get(req, "purge"));
        char dir[4300];
        mb_home_domain_dir(home, name, dir, sizeof dir);
        if (mb_catalog_domain_remove(home, name, err) != 0) return NULL;
        const char *data = "kept";
        if (purge && serving) {
            /* the supervisor deletes it once the workers have stopped */
            char marker[4400];
            snprintf(marker, sizeof marker, "%s/.purge", dir);
            FILE *f = fopen(marker, "w");
            if (f) fclose(f);
            data = f ? "purged when its workers stop" : "kept (cannot mark for purge)";
        } else if (purge) {
            data = nftw(dir, s_rm_entry, 16, FTW_DEPTH | FTW_PHYS) == 0 || errno == ENOENT
                       ? "purged"
                       : "kept (cannot delete)";
        }
        return json_pack("{s:s, s:s, s:s}", "name", name, "data", data, "dir", dir);
    }
    mb_err_set(err, MB_EBADREQ, "unknown op '%s'", op);
    return NULL;
}

json_t *mb_admin_status(const char *home, mb_client_t *client, mb_err_t *err) {
    char path[4200];
    snprintf(path, sizeof path, "%s/serve.status.json", home);
    json_error_t jerr;
    json_t *serve = json_load_file(path, 0, &jerr);
    if (!serve) {
        mb_err_set(err, MB_EUNAVAIL,
                   "no supervisor status in %s (is `moebus serve` running?)", home);
        return NULL;
    }
    json_t *out = json_pack("{s:o}", "serve", serve);
    if (client) {
        mb_body_t *req = mb_body_new(json_object()), *reply = NULL;
        mb_err_t e;
        if (mb_client_call(client, "mmi.services", &req, &reply, 2000, &e) == 0)
            json_object_set(out, "services",
                            json_object_get(mb_body_json(reply), "services"));
        mb_body_destroy(&reply);
    }
    return out;
}

typedef struct {
    const char *home;
    mb_client_t *client;
} admin_t;

static mb_body_t *s_handle(void *state, mb_body_t *req, mb_worker_t *w) {
    (void)w;
    admin_t *a = state;
    json_t *j = mb_body_json(req);
    if (!json_is_object(j))
        return mb_body_error(MB_EBADREQ, "the body must be an object");
    const char *op = mb_json_str(j, "op", "");
    mb_err_t err;
    json_t *r = strcmp(op, "status") == 0 ? mb_admin_status(a->home, a->client, &err)
                                          : mb_admin_apply(a->home, j, 1, &err);
    if (!r) return mb_body_error(err.code, "%s", err.msg);
    if (strncmp(op, "domain.", 7) == 0 && strcmp(op, "domain.list") != 0)
        mb_info("%s %s", op, mb_json_str(j, "name", ""));
    else if (strncmp(op, "generator.", 10) == 0 && strcmp(op, "generator.list") != 0)
        mb_info("%s %s", op, mb_json_str(j, "name", ""));
    else if (strcmp(op, "config.set") == 0)
        mb_info("config.set %s", mb_json_str(j, "key", ""));
    else if (strcmp(op, "job.start") == 0)
        mb_info("ingest job %lld started on %s", (long long)mb_json_int(r, "job", 0),
                mb_json_str(j, "domain", "?"));
    return mb_body_ok(r);
}

int mb_admin_main(int argc, char **argv) {
    mb_svc_opts_t o;
    int done, prc = mb_svc_parse(argc, argv, s_usage, 0, &o, &done);
    if (done) return prc;
    mb_log_init("admin");
    mb_svc_signals();
    mb_err_t err;
    admin_t a = {.home = o.home, .client = mb_client_new(o.endpoint, &err)};
    if (!a.client) {
        mb_error("%s", err.msg);
        return 1;
    }
    int rc = mb_svc_run(o.endpoint, "admin", s_handle, NULL, &a);
    mb_client_destroy(&a.client);
    return rc;
}

json_t *mb_admin_request(const char *home, const char *endpoint, int endpoint_given,
                         json_t *req, mb_err_t *err) {
    if (!endpoint_given && !mb_home_serve_pid(home)) {
        json_t *r = mb_admin_apply(home, req, 0, err);
        json_decref(req);
        return r;
    }
    mb_client_t *client = mb_client_new(endpoint, err);
    if (!client) {
        json_decref(req);
        return NULL;
    }
    /* http experts are probed by admin: allow for a slow model server */
    mb_body_t *body = mb_body_new(req), *reply = NULL;
    int rc = mb_client_call(client, "admin", &body, &reply, 30000, err);
    json_t *r = rc == 0 ? json_incref(mb_body_json(reply)) : NULL;
    mb_body_destroy(&reply);
    mb_client_destroy(&client);
    return r;
}

/* ---- moebus status ---- */

static const char *s_status_usage =
    "usage: moebus status [--json] [--home DIR] [--endpoint E]\n"
    "\n"
    "Shows every process the supervisor runs (state, pid, uptime, restarts, last\n"
    "exit) and every service on the bus (workers, requests, replies, requests\n"
    "lost with a dying worker, latency mean/p50/p99 measured by the broker from\n"
    "dispatch to reply, time since its last request). Asks the service's `admin`;\n"
    "reads HOME directly when the bus has none.\n";

static void s_fmt_ms(char *out, size_t n, int64_t ms) {
    if (ms < 0)
        snprintf(out, n, "-");
    else if (ms < 60000)
        snprintf(out, n, "%.1fs", (double)ms / 1000.0);
    else if (ms < 3600000)
        snprintf(out, n, "%lldm%02llds", (long long)(ms / 60000),
                 (long long)(ms / 1000 % 60));
    else
        snprintf(out, n, "%lldh%02lldm", (long long)(ms / 3600000),
                 (long long)(ms / 60000 % 60));
}

int mb_status_main(int argc, char **argv) {
    if (mb_svc_wants_help(argc, argv, s_status_usage)) return 0;
    const char *home = mb_default_home(), *endpoint = mb_default_endpoint();
    int as_json = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0)
            as_json = 1;
        else if (strcmp(argv[i], "--home") == 0 && i + 1 < argc)
            home = argv[++i];
        else if (strcmp(argv[i], "--endpoint") == 0 && i + 1 < argc)
            endpoint = argv[++i];
        else {
            fputs(s_status_usage, stderr);
            return 2;
        }
    }
    mb_err_t err;
    mb_client_t *client = mb_client_new(endpoint, &err);
    json_t *st = NULL;
    if (client) {
        mb_body_t *req = mb_body_new(json_pack("{s:s}", "op", "status")), *reply = NULL;
        if (mb_client_call(client, "admin", &req, &reply, 3000, &err) == 0)
            st = json_incref(mb_body_json(reply));
        mb_body_destroy(&reply);
    }
    if (!st) st = mb_admin_status(home, client, &err);
    mb_client_destroy(&client);
    if (!st) {
        fprintf(stderr, "moebus status: %s\n", err.msg);
        return 1;
    }
    if (as_json) {
        char *s = json_dumps(st, JSON_INDENT(2));
        puts(s);
        free(s);
        json_decref(st);
        return 0;
    }
    json_t *serve = json_object_get(st, "serve");
    printf("moebus serve pid %lld, home %s, bus %s%s\n",
           (long long)mb_json_int(serve, "pid", 0), mb_json_str(serve, "home", "?"),
           mb_json_str(serve, "endpoint", "?"),
           mb_json_int(serve, "max_loaded_experts", 0) ? ", lazy experts" : "");
    printf("\n%-28s %-10s %8s %10s %8s %9s %9s  %s\n", "PROCESS", "STATE", "PID",
           "UPTIME", "RESTARTS", "RSS MB", "PEAK MB", "LAST EXIT");
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(serve, "children"), i, c) {
        char up[32];
        s_fmt_ms(up, sizeof up,
                 mb_json_int(c, "pid", 0) > 0 ? mb_json_int(c, "uptime_ms", 0) : -1);
        printf("%-28s %-10s %8lld %10s %8lld %9.1f %9.1f  %s\n",
               mb_json_str(c, "name", "?"), mb_json_str(c, "state", "?"),
               (long long)mb_json_int(c, "pid", 0), up,
               (long long)mb_json_int(c, "restarts", 0),
               (double)mb_json_int(c, "rss_kb", 0) / 1024.0,
               (double)mb_json_int(c, "peak_rss_kb", 0) / 1024.0,
               mb_json_str(c, "last_exit", ""));
    }
    json_t *svcs = json_object_get(st, "services");
    if (svcs) {
        printf("\n%-28s %7s %9s %9s %5s %9s %9s %9s %9s\n", "SERVICE", "WORKERS",
               "REQUESTS", "REPLIES", "LOST", "MEAN ms", "P50 ms", "P99 ms", "IDLE");
        json_array_foreach(svcs, i, c) {
            json_t *l = json_object_get(c, "latency_us");
            char idle[32];
            s_fmt_ms(idle, sizeof idle, mb_json_int(c, "idle_ms", -1));
            printf("%-28s %7lld %9lld %9lld %5lld %9.3f %9.3f %9.3f %9s\n",
                   mb_json_str(c, "name", "?"), (long long)mb_json_int(c, "workers", 0),
                   (long long)mb_json_int(c, "served", 0),
                   (long long)mb_json_int(c, "replied", 0),
                   (long long)mb_json_int(c, "lost", 0),
                   json_number_value(json_object_get(l, "mean")) / 1000.0,
                   json_number_value(json_object_get(l, "p50")) / 1000.0,
                   json_number_value(json_object_get(l, "p99")) / 1000.0, idle);
        }
    }
    json_decref(st);
    return 0;
}
