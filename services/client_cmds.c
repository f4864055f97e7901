/* client_cmds.c — the CLI commands of issue 5: route, router train/status,
 * ask, generator, config, stats. Each talks to the running service over the
 * bus (route, router, ask, stats) or edits the catalog (generator, config). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "admin.h"
#include "home.h"
#include "mb_client.h"
#include "mb_mdp.h"
#include "services.h"
#include "svc.h"

/* One call; prints the error and returns NULL on failure. */
static json_t *s_call(const char *endpoint, const char *service, json_t *req,
                      int timeout_ms, const char *who) {
    mb_err_t err;
    mb_client_t *c = mb_client_new(endpoint, &err);
    if (!c) {
        fprintf(stderr, "moebus %s: %s\n", who, err.msg);
        json_decref(req);
        return NULL;
    }
    mb_body_t *body = mb_body_new(req), *reply = NULL;
    int rc = mb_client_call(c, service, &body, &reply, timeout_ms, &err);
    json_t *out = NULL;
    if (rc != 0)
        fprintf(stderr, "moebus %s: %s: %s\n", who, mb_err_name(rc), err.msg);
    else
        out = json_incref(mb_body_json(reply));
    mb_body_destroy(&reply);
    mb_client_destroy(&c);
    return out;
}

static void s_dump(json_t *j) {
    char *s = json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS);
    puts(s);
    free(s);
}

/* ---- moebus route ---- */

static const char *s_route_usage =
    "usage: moebus route \"QUERY\" [--router learned|pilot] [--p P] [--max-domains N]\n"
    "                    [--json] [--endpoint E]\n"
    "\n"
    "Prints the router's probability for every domain, the domains top-p\n"
    "selection picks, and the gate's estimate that an indexed domain covers the\n"
    "query.\n";

int mb_route_main(int argc, char **argv) {
    if (mb_svc_wants_help(argc, argv, s_route_usage)) return 0;
    const char *endpoint = mb_default_endpoint(), *kind = NULL;
    double p = 0;
    int maxd = 0, as_json = 0;
    static struct option opts[] = {{"endpoint", required_argument, 0, 'e'},
                                   {"router", required_argument, 0, 'r'},
                                   {"p", required_argument, 0, 'p'},
                                   {"max-domains", required_argument, 0, 'm'},
                                   {"json", no_argument, 0, 'j'},
                                   {"home", required_argument, 0, 'H'},
                                   {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "e:r:p:m:jH:", opts, NULL)) != -1) {
        switch (c) {
        case 'e':
            endpoint = optarg;
            break;
        case 'r':
            kind = optarg;
            break;
        case 'p':
            p = atof(optarg);
            break;
        case 'm':
            maxd = atoi(optarg);
            break;
        case 'j':
            as_json = 1;
            break;
        case 'H':
            break;
        default:
            fputs(s_route_usage, stderr);
            return 2;
        }
    }
    if (optind != argc - 1) {
        fputs(s_route_usage, stderr);
        return 2;
    }
    json_t *req = json_pack("{s:s, s:s}", "op", "route", "query", argv[optind]);
    if (kind) json_object_set_new(req, "router", json_string(kind));
    if (p != 0) json_object_set_new(req, "p", json_real(p));
    if (maxd) json_object_set_new(req, "max_domains", json_integer(maxd));
    json_t *r = s_call(endpoint, "router", req, 5000, "route");
    if (!r) return 1;
    if (as_json) {
        s_dump(r);
        json_decref(r);
        return 0;
    }
    json_t *scores = json_object_get(r, "scores");
    /* descending probability */
    size_t n = json_object_size(scores), i = 0;
    const char **names = calloc(n ? n : 1, sizeof *names);
    double *ps = calloc(n ? n : 1, sizeof *ps);
    const char *key;
    json_t *v;
    json_object_foreach(scores, key, v) {
        size_t j = i++;
        while (j > 0 && ps[j - 1] < json_real_value(v)) {
            names[j] = names[j - 1];
            ps[j] = ps[j - 1];
            j--;
        }
        names[j] = key;
        ps[j] = json_real_value(v);
    }
    printf("%s router %s\n", mb_json_str(r, "router", ""), mb_json_str(r, "model", ""));
    for (i = 0; i < n; i++) {
        int in = 0;
        size_t a;
        json_t *cv;
        json_array_foreach(json_object_get(r, "chosen"), a, cv) in |=
            strcmp(json_string_value(cv), names[i]) == 0;
        printf("  %c %-20s %6.3f  ", in ? '*' : ' ', names[i], ps[i]);
        for (int b = 0; b < (int)(ps[i] * 40 + 0.5); b++)
            putchar('#');
        putchar('\n');
    }
    json_t *g = json_object_get(r, "gate");
    printf("* chosen (top-p %.2f)   gate: p_in %.3f, threshold %.3f -> %s\n",
           json_real_value(json_object_get(r, "p")),
           json_real_value(json_object_get(g, "p_in")),
           json_real_value(json_object_get(r, "threshold")),
           json_real_value(json_object_get(g, "p_in")) >=
                   json_real_value(json_object_get(r, "threshold"))
               ? "retrieve"
               : "internal");
    free(names);
    free(ps);
    json_decref(r);
    return 0;
}

/* ---- moebus router train|status (anything else runs the worker) ---- */

static const char *s_router_usage =
    "usage: moebus router train [--labels FILE] [--wait] [--endpoint E]\n"
    "       moebus router status [--json] [--endpoint E]\n"
    "       moebus router [--home DIR] [--endpoint E]     (runs the worker)\n"
    "\n"
    "train: retrains the router now. --labels FILE adds labelled queries (TSV:\n"
    "query<TAB>domain per line), kept in the catalog for every later training;\n"
    "--labels with an empty file removes them. --wait returns when the new model\n"
    "serves.\n"
    "status: the model, its domains, and its training figures.\n";

static int s_router_cli(int argc, char **argv) {
    const char *sub = argv[1];
    if (mb_svc_wants_help(argc - 1, argv + 1, s_router_usage)) return 0;
    const char *endpoint = mb_default_endpoint(), *labels = NULL;
    int wait = 0, as_json = 0;
    static struct option opts[] = {
        {"endpoint", required_argument, 0, 'e'}, {"labels", required_argument, 0, 'l'},
        {"wait", no_argument, 0, 'w'},           {"json", no_argument, 0, 'j'},
        {"home", required_argument, 0, 'H'},     {0, 0, 0, 0}};
    int c;
    optind = 2;
    while ((c = getopt_long(argc, argv, "e:l:wjH:", opts, NULL)) != -1) {
        switch (c) {
        case 'e':
            endpoint = optarg;
            break;
        case 'l':
            labels = optarg;
            break;
        case 'w':
            wait = 1;
            break;
        case 'j':
            as_json = 1;
            break;
        case 'H':
            break;
        default:
            fputs(s_router_usage, stderr);
            return 2;
        }
    }
    if (strcmp(sub, "status") == 0) {
        json_t *r = s_call(endpoint, "router", json_pack("{s:s}", "op", "status"), 5000,
                           "router status");
        if (!r) return 1;
        if (as_json) {
            s_dump(r);
        } else {
            json_t *t = json_object_get(r, "training");
            printf("model %s (%s)\n", mb_json_str(r, "model", "none"),
                   mb_json_str(r, "state", ""));
            if (t)
                printf("  %lld examples, held-out top-1 %.3f (pilot %.3f), temperature "
                       "%.2f,\n  gate held-out: in-scope retrieved %.3f, own domain "
                       "removed -> internal %.3f; trained in %.0f ms\n",
                       (long long)mb_json_int(t, "examples", 0),
                       json_real_value(json_object_get(t, "heldout_top1")),
                       json_real_value(json_object_get(t, "pilot_top1")),
                       json_real_value(json_object_get(t, "temperature")),
                       json_real_value(json_object_get(t, "gate_in_rate")),
                       json_real_value(json_object_get(t, "gate_out_rate")),
                       json_real_value(json_object_get(t, "train_ms")));
            if (*mb_json_str(r, "error", ""))
                printf("  error: %s\n", mb_json_str(r, "error", ""));
        }
        json_decref(r);
        return 0;
    }
    json_t *req = json_pack("{s:s}", "op", "train");
    if (labels) {
        FILE *f = fopen(labels, "r");
        if (!f) {
            fprintf(stderr, "moebus router train: cannot read %s\n", labels);
            json_decref(req);
            return 1;
        }
        json_t *arr = json_array();
        char line[8192];
        size_t ln = 0;
        while (fgets(line, sizeof line, f)) {
            ln++;
            line[strcspn(line, "\r\n")] = 0;
            if (!line[0] || line[0] == '#') continue;
            char *tab = strrchr(line, '\t');
            if (!tab || tab == line || !mb_domain_name_valid(tab + 1)) {
                fprintf(stderr,
                        "moebus router train: %s:%zu: expected query<TAB>domain\n",
                        labels, ln);
                fclose(f);
                json_decref(arr);
                json_decref(req);
                return 1;
            }
            *tab = 0;
            json_array_append_new(arr, json_pack("[s, s]", line, tab + 1));
        }
        fclose(f);
        json_object_set_new(req, "labels", arr);
    }
    json_t *r = s_call(endpoint, "router", req, 30000, "router train");
    if (!r) return 1;
    const char *before = mb_json_str(r, "model", "");
    char prev[128];
    snprintf(prev, sizeof prev, "%s", before);
    json_decref(r);
    if (!wait) {
        printf("router training started\n");
        return 0;
    }
    /* the version carries seconds: a retrain within the same second as the
     * last keeps the name, so also watch the state */
    int saw_training = 0;
    for (int i = 0; i < 1200; i++) {
        usleep(250000);
        json_t *s = s_call(endpoint, "router", json_pack("{s:s}", "op", "status"), 5000,
                           "router train");
        if (!s) return 1;
        const char *st = mb_json_str(s, "state", "");
        saw_training |= strcmp(st, "training") == 0;
        int done = strcmp(st, "training") != 0 && (saw_training || i > 8);
        if (done) {
            int failed = strcmp(st, "failed") == 0;
            if (failed)
                fprintf(stderr, "moebus router train: %s\n", mb_json_str(s, "error", ""));
            else
                printf("router model %s\n", mb_json_str(s, "model", ""));
            json_decref(s);
            return failed;
        }
        json_decref(s);
    }
    fprintf(stderr, "moebus router train: still training after 5 minutes\n");
    return 1;
}

int mb_router_cmd_main(int argc, char **argv) {
    if (argc >= 2 && (strcmp(argv[1], "train") == 0 || strcmp(argv[1], "status") == 0))
        return s_router_cli(argc, argv);
    if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        fputs(s_router_usage, stdout);
        return 0;
    }
    return mb_router_main(argc, argv);
}

/* ---- moebus ask ---- */

static const char *s_ask_usage =
    "usage: moebus ask \"QUESTION\" [--domain D]... [--generator N] [-k N]\n"
    "                  [--retrieve auto|always|never] [--timeout MS] [--json]\n"
    "\n"
    "Answers a question: the router picks domains, the gate decides whether to\n"
    "retrieve, the top passages (k, default 5) become a prompt with numbered\n"
    "citations for a generator; without one, the best-matching sentences are\n"
    "the answer. Prints the answer, its citations and the gate's decision.\n";

int mb_ask_main(int argc, char **argv) {
    if (mb_svc_wants_help(argc, argv, s_ask_usage)) return 0;
    const char *endpoint = mb_default_endpoint(), *gen = NULL, *retrieve = NULL;
    int k = 5, as_json = 0, timeout = 60000;
    json_t *domains = NULL;
    static struct option opts[] = {
        {"endpoint", required_argument, 0, 'e'},  {"domain", required_argument, 0, 'd'},
        {"generator", required_argument, 0, 'g'}, {"retrieve", required_argument, 0, 'r'},
        {"timeout", required_argument, 0, 't'},   {"json", no_argument, 0, 'j'},
        {"home", required_argument, 0, 'H'},      {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "e:d:g:r:t:jk:H:", opts, NULL)) != -1) {
        switch (c) {
        case 'e':
            endpoint = optarg;
            break;
        case 'd':
            if (!domains) domains = json_array();
            json_array_append_new(domains, json_string(optarg));
            break;
        case 'g':
            gen = optarg;
            break;
        case 'r':
            retrieve = optarg;
            break;
        case 't':
            timeout = atoi(optarg);
            break;
        case 'j':
            as_json = 1;
            break;
        case 'k':
            k = atoi(optarg);
            break;
        case 'H':
            break;
        default:
            json_decref(domains);
            fputs(s_ask_usage, stderr);
            return 2;
        }
    }
    if (optind != argc - 1) {
        json_decref(domains);
        fputs(s_ask_usage, stderr);
        return 2;
    }
    json_t *req = json_pack("{s:s, s:s, s:i, s:i}", "op", "ask", "query", argv[optind],
                            "k", k, "timeout_ms", timeout);
    if (domains) json_object_set_new(req, "domains", domains);
    if (gen) json_object_set_new(req, "generator", json_string(gen));
    if (retrieve) json_object_set_new(req, "retrieve", json_string(retrieve));
    json_t *r = s_call(endpoint, "gate", req, timeout + 2000, "ask");
    if (!r) return 1;
    if (as_json) {
        s_dump(r);
        json_decref(r);
        return 0;
    }
    printf("%s\n\n", mb_json_str(r, "answer", ""));
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(r, "citations"), i, v)
        printf("  [%lld] %s: %s\n", (long long)mb_json_int(v, "n", 0),
               mb_json_str(v, "domain", ""), mb_json_str(v, "doc_id", ""));
    json_t *g = json_object_get(r, "gate");
    printf("\n%s answer; gate: %s (%s); %lld domains searched; %.1f ms\n",
           mb_json_str(r, "answer_kind", ""), mb_json_str(g, "decision", ""),
           mb_json_str(g, "reason", ""), (long long)mb_json_int(r, "domains_searched", 0),
           (double)mb_json_int(json_object_get(r, "timings"), "total_us", 0) / 1000);
    json_array_foreach(json_object_get(r, "errors"), i, v)
        fprintf(stderr, "partial: %s %s: %s\n", mb_json_str(v, "domain", ""),
                mb_json_str(v, "stage", ""), mb_json_str(v, "message", ""));
    json_decref(r);
    return 0;
}

/* ---- moebus generator ---- */

static const char *s_gen_usage =
    "usage: moebus generator add NAME --url URL --model M [--api-key-env VAR]\n"
    "       moebus generator list\n"
    "       moebus generator remove NAME\n"
    "       (all take --home DIR)\n"
    "\n"
    "Internal experts: OpenAI-compatible chat completion servers (Ollama, vLLM,\n"
    "llama.cpp server, OpenAI). URL is the server root, its /v1, or the full\n"
    "/v1/chat/completions. The API key is read from the environment variable\n"
    "VAR by the generate worker; it is never stored. `moebus serve` starts a\n"
    "generate.NAME worker for each; `ask` uses the one `moebus config set\n"
    "ask.generator NAME` names, else the first.\n";

int mb_generator_main(int argc, char **argv) {
    if (mb_svc_wants_help(argc, argv, s_gen_usage)) return 0;
    if (argc < 2) {
        fputs(s_gen_usage, stderr);
        return 2;
    }
    const char *sub = argv[1], *home = mb_default_home();
    mb_generator_info_t g = {0};
    static struct option opts[] = {{"home", required_argument, 0, 'H'},
                                   {"url", required_argument, 0, 'u'},
                                   {"model", required_argument, 0, 'm'},
                                   {"api-key-env", required_argument, 0, 'k'},
                                   {0, 0, 0, 0}};
    int c;
    optind = 2;
    while ((c = getopt_long(argc, argv, "H:u:m:k:", opts, NULL)) != -1) {
        switch (c) {
        case 'H':
            home = optarg;
            break;
        case 'u':
            snprintf(g.url, sizeof g.url, "%s", optarg);
            break;
        case 'm':
            snprintf(g.model, sizeof g.model, "%s", optarg);
            break;
        case 'k':
            snprintf(g.api_key_env, sizeof g.api_key_env, "%s", optarg);
            break;
        default:
            fputs(s_gen_usage, stderr);
            return 2;
        }
    }
    mb_err_t err;
    const char *endpoint = mb_default_endpoint();
    if (strcmp(sub, "list") == 0) {
        json_t *r = mb_admin_request(home, endpoint, 0,
                                     json_pack("{s:s}", "op", "generator.list"), &err);
        if (!r) {
            fprintf(stderr, "moebus generator list: %s\n", err.msg);
            return 1;
        }
        size_t i;
        json_t *x;
        json_t *gs = json_object_get(r, "generators");
        json_array_foreach(gs, i, x) {
            const char *kenv = mb_json_str(x, "api_key_env", "");
            printf("%-16s %-40s %s%s%s\n", mb_json_str(x, "name", "?"),
                   mb_json_str(x, "url", "?"), mb_json_str(x, "model", "?"),
                   *kenv ? "  key from $" : "", kenv);
        }
        if (json_array_size(gs) == 0) printf("no generators (moebus generator add)\n");
        json_decref(r);
        return 0;
    }
    if (optind != argc - 1) {
        fputs(s_gen_usage, stderr);
        return 2;
    }
    snprintf(g.name, sizeof g.name, "%s", argv[optind]);
    int rc;
    if (strcmp(sub, "add") == 0) {
        if (!g.url[0] || !g.model[0]) {
            fputs("moebus generator add: --url and --model are required\n", stderr);
            return 2;
        }
        if (strncmp(g.url, "http://", 7) != 0 && strncmp(g.url, "https://", 8) != 0) {
            fputs("moebus generator add: --url must start with http:// or https://\n",
                  stderr);
            return 2;
        }
        json_t *r = mb_admin_request(
            home, endpoint, 0,
            json_pack("{s:s, s:s, s:s, s:s, s:s}", "op", "generator.add", "name", g.name,
                      "url", g.url, "model", g.model, "api_key_env", g.api_key_env),
            &err);
        rc = r ? 0 : 1;
        json_decref(r);
    } else if (strcmp(sub, "remove") == 0) {
        json_t *r = mb_admin_request(
            home, endpoint, 0,
            json_pack("{s:s, s:s}", "op", "generator.remove", "name", g.name), &err);
        rc = r ? 0 : 1;
        json_decref(r);
    } else {
        fputs(s_gen_usage, stderr);
        return 2;
    }
    if (rc != 0) {
        fprintf(stderr, "moebus generator %s: %s\n", sub, err.msg);
        return 1;
    }
    printf("generator %s %s\n", g.name, strcmp(sub, "add") == 0 ? "added" : "removed");
    return 0;
}

/* ---- moebus config ---- */

static const char *s_cfg_usage =
    "usage: moebus config set KEY VALUE | get KEY | unset KEY   [--home DIR]\n"
    "\n"
    "keys:\n"
    "  router.p            top-p cumulative probability (default 0.9)\n"
    "  router.max_domains  at most this many domains per query (default 3)\n"
    "  router.shared       a domain searched for every query (default none)\n"
    "  router.kind         learned (default) or pilot\n"
    "  gate.threshold      retrieve when p_in >= this (default: the model's,\n"
    "                      keeping 98% of held-out in-scope queries)\n"
    "  ask.generator       the generator `ask` uses (default the first)\n"
    "  router.word_vectors a GloVe-format text file: the pilot router's shared\n"
    "                      base encoder (read when the router starts)\n";

int mb_config_main(int argc, char **argv) {
    if (mb_svc_wants_help(argc, argv, s_cfg_usage)) return 0;
    if (argc < 3) {
        fputs(s_cfg_usage, stderr);
        return 2;
    }
    const char *home = mb_default_home();
    static struct option opts[] = {{"home", required_argument, 0, 'H'}, {0, 0, 0, 0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "H:", opts, NULL)) != -1) {
        if (c == 'H')
            home = optarg;
        else {
            fputs(s_cfg_usage, stderr);
            return 2;
        }
    }
    char **a = argv + optind;
    int n = argc - optind;
    static const char *keys[] = {
        "router.p",       "router.max_domains", "router.shared",      "router.kind",
        "gate.threshold", "ask.generator",      "router.word_vectors"};
    int known = 0;
    for (size_t i = 0; n >= 2 && i < sizeof keys / sizeof *keys; i++)
        known |= strcmp(a[1], keys[i]) == 0;
    if (n < 2 || !known) {
        fprintf(stderr, "moebus config: %s\n", n < 2 ? "missing KEY" : "unknown key");
        fputs(s_cfg_usage, stderr);
        return 2;
    }
    mb_err_t err;
    const char *endpoint = mb_default_endpoint();
    if (strcmp(a[0], "get") == 0 && n == 2) {
        json_t *r = mb_admin_request(
            home, endpoint, 0, json_pack("{s:s, s:s}", "op", "config.get", "key", a[1]),
            &err);
        if (!r) {
            fprintf(stderr, "moebus config: %s\n", err.msg);
            return 1;
        }
        if (json_is_string(json_object_get(r, "value")))
            printf("%s\n", mb_json_str(r, "value", ""));
        else
            printf("%s is not set (default)\n", a[1]);
        json_decref(r);
        return 0;
    }
    if ((strcmp(a[0], "set") == 0 && n == 3) || (strcmp(a[0], "unset") == 0 && n == 2)) {
        const char *v = n == 3 ? a[2] : NULL;
        if (v && (strcmp(a[1], "router.p") == 0 || strcmp(a[1], "gate.threshold") == 0)) {
            char *end;
            double d = strtod(v, &end);
            int okp =
                strcmp(a[1], "router.p") == 0 ? (d > 0 && d <= 1) : (d >= 0 && d <= 1);
            if (*end || !okp) {
                fprintf(stderr, "moebus config: %s must be a number in %s\n", a[1],
                        strcmp(a[1], "router.p") == 0 ? "(0, 1]" : "[0, 1]");
                return 2;
            }
        }
        if (v && strcmp(a[1], "router.max_domains") == 0 &&
            (atoi(v) < 1 || atoi(v) > 64)) {
            fprintf(stderr, "moebus config: router.max_domains must be in 1..64\n");
            return 2;
        }
        if (v && strcmp(a[1], "router.kind") == 0 && strcmp(v, "learned") != 0 &&
            strcmp(v, "pilot") != 0) {
            fprintf(stderr, "moebus config: router.kind must be learned or pilot\n");
            return 2;
        }
        json_t *r =
            mb_admin_request(home, endpoint, 0,
                             json_pack("{s:s, s:s, s:o}", "op", "config.set", "key", a[1],
                                       "value", v ? json_string(v) : json_null()),
                             &err);
        if (!r) {
            fprintf(stderr, "moebus config: %s\n", err.msg);
            return 1;
        }
        json_decref(r);
        printf("%s %s\n", a[1], v ? v : "unset");
        return 0;
    }
    fputs(s_cfg_usage, stderr);
    return 2;
}

/* ---- moebus stats ---- */

static const char *s_stats_usage =
    "usage: moebus stats [--json] [--endpoint E]\n"
    "\n"
    "Cost accounting since the gate started: queries, the share that skipped\n"
    "retrieval (sent to an internal expert), domains searched per query, time\n"
    "per stage; and the router's model.\n";

int mb_stats_main(int argc, char **argv) {
    if (mb_svc_wants_help(argc, argv, s_stats_usage)) return 0;
    const char *endpoint = mb_default_endpoint();
    int as_json = 0;
    static struct option opts[] = {{"endpoint", required_argument, 0, 'e'},
                                   {"json", no_argument, 0, 'j'},
                                   {"home", required_argument, 0, 'H'},
                                   {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "e:jH:", opts, NULL)) != -1) {
        if (c == 'e')
            endpoint = optarg;
        else if (c == 'j')
            as_json = 1;
        else if (c != 'H') {
            fputs(s_stats_usage, stderr);
            return 2;
        }
    }
    json_t *g =
        s_call(endpoint, "gate", json_pack("{s:s}", "op", "stats"), 5000, "stats");
    if (!g) return 1;
    json_t *r =
        s_call(endpoint, "router", json_pack("{s:s}", "op", "status"), 5000, "stats");
    if (as_json) {
        json_t *o = json_pack("{s:O, s:O?}", "gate", g, "router", r);
        s_dump(o);
        json_decref(o);
    } else {
        json_t *ms = json_object_get(g, "avg_ms");
        printf("queries %lld: retrieved %lld, internal %lld (%.1f%% skipped retrieval), "
               "failed %lld\n",
               (long long)mb_json_int(g, "queries", 0),
               (long long)mb_json_int(g, "retrieved", 0),
               (long long)mb_json_int(g, "internal", 0),
               100 * json_real_value(json_object_get(g, "skipped_retrieval_share")),
               (long long)mb_json_int(g, "failed", 0));
        printf("domains searched per query %.2f\n",
               json_real_value(json_object_get(g, "avg_domains_searched")));
        printf("avg ms: route %.2f, embed %.2f, index %.2f, generate %.2f, total %.2f\n",
               json_real_value(json_object_get(ms, "route")),
               json_real_value(json_object_get(ms, "embed")),
               json_real_value(json_object_get(ms, "index")),
               json_real_value(json_object_get(ms, "generate")),
               json_real_value(json_object_get(ms, "total")));
        if (r) printf("router model %s\n", mb_json_str(r, "model", "none"));
    }
    json_decref(g);
    json_decref(r);
    return 0;
}
