/* cli.c — the user-facing commands: domain add/list, ingest, search. They
 * talk to the running service over the bus (ingest and search), or to the
 * catalog in HOME (domain add/list). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "admin.h"
#include "embed.h"
#include "home.h"
#include "index.h"
#include "mb_client.h"
#include "mb_mdp.h"
#include "reader.h"
#include "services.h"
#include "svc.h"

static const char *s_domain_usage =
    "usage: moebus domain add NAME [--index FACTORY] [--dim D] [EXPERT]\n"
    "       moebus domain remove NAME [--purge]\n"
    "       moebus domain disable NAME | moebus domain enable NAME\n"
    "       moebus domain set-expert NAME EXPERT [--wait]\n"
    "       moebus domain refit NAME [--wait]\n"
    "       moebus domain wait NAME\n"
    "       moebus domain list [--json] [--home DIR] [--endpoint E]\n"
    "\n"
    "add         registers a domain; a running `moebus serve` starts its embed\n"
    "            and index workers within a second and the router learns it.\n"
    "remove      the gate stops routing to it at once; requests in flight finish,\n"
    "            then its workers stop. Its data stays in HOME/domains/NAME (add\n"
    "            it again to get it back) unless --purge.\n"
    "disable     takes the domain out of routing and explicit searches without\n"
    "            stopping it or retraining the router; enable puts it back.\n"
    "set-expert  changes the domain's expert; every chunk is re-embedded in the\n"
    "            background while searches use the old one, then swapped in.\n"
    "refit       fits the builtin expert again now (it also refits by itself when\n"
    "            the corpus doubles) / re-embeds with the current expert.\n"
    "wait        waits until the domain's expert is current (fitted, every\n"
    "            chunk embedded): after an ingest, before measuring.\n"
    "list        shows the domains, with document and chunk counts when the\n"
    "            service is running.\n"
    "\n"
    "EXPERT:\n"
    "  --embed builtin  LSA fitted on the domain's own text (default; the domain\n"
    "                   is searched lexically until it has 100 chunks to fit on)\n"
    "  --embed hash     hashed term vectors (no fit; for tests and tiny domains)\n"
    "  --embed http --url URL --model M [--api-key-env VAR]\n"
    "                   an OpenAI-compatible /v1/embeddings server (Ollama, vLLM,\n"
    "                   TEI, llama.cpp, OpenAI); without --dim the dimension is\n"
    "                   read from the server. The key is read from $VAR.\n"
    "\n"
    "  --wait          wait until the re-embed is done\n"
    "  --index FACTORY FAISS index type (default Flat; e.g. HNSW32, IVF1024,Flat,\n"
    "                  IVF1024,PQ32, SQ8). Types that need training serve from a flat\n"
    "                  index until the domain has enough vectors to train them.\n"
    "  --dim D         embedding dimension (default 256)\n"
    "  --purge         remove: also delete the domain's documents and index\n"
    "  --json          machine-readable output\n"
    "  --home DIR      moebus home (default $MOEBUS_HOME or ./moebus-data)\n"
    "  --endpoint E    broker endpoint (default $MOEBUS_ENDPOINT or "
    "tcp://127.0.0.1:5555)\n"
    "\n"
    "While `moebus serve` runs on HOME, or with --endpoint, changes go to the\n"
    "service's `admin` over the bus (so this works against a remote service);\n"
    "otherwise to HOME's catalog directly.\n";

/* Calls service and prints the error; returns the reply or NULL. */
static mb_body_t *s_call(mb_client_t *client, const char *service, mb_body_t *req,
                         int timeout_ms, int quiet) {
    mb_body_t *reply = NULL;
    mb_err_t err;
    if (mb_client_call(client, service, &req, &reply, timeout_ms, &err) != 0) {
        if (!quiet)
            fprintf(stderr, "moebus: %s: %s (%s)\n", service, err.msg,
                    mb_err_name(err.code));
        mb_body_destroy(&reply);
        return NULL;
    }
    return reply;
}

/* Prints the domains (JSON objects from domain.list) with the counts their
 * index workers report. */
static int s_domain_list(json_t *doms, const char *home, const char *endpoint,
                         int as_json) {
    size_t n = json_array_size(doms);
    mb_domain_info_t *d = calloc(n ? n : 1, sizeof *d);
    for (size_t i = 0; i < n; i++) {
        json_t *o = json_array_get(doms, i);
        snprintf(d[i].name, sizeof d[i].name, "%s", mb_json_str(o, "name", "?"));
        snprintf(d[i].embed, sizeof d[i].embed, "%s", mb_json_str(o, "embed", "?"));
        snprintf(d[i].index_type, sizeof d[i].index_type, "%s",
                 mb_json_str(o, "index", "?"));
        d[i].dim = (int)mb_json_int(o, "dim", 0);
        d[i].enabled = strcmp(mb_json_str(o, "state", "enabled"), "enabled") == 0;
    }
    mb_err_t err;
    mb_client_t *client = mb_client_new(endpoint, &err);
    json_t *arr = json_array();
    /* Ask every index worker for its counts at once, with one deadline, so a
     * stopped service costs 1.5 s in all rather than per domain. */
    int64_t *ids = calloc(n ? n : 1, sizeof *ids);
    mb_body_t **replies = calloc(n ? n : 1, sizeof *replies);
    for (size_t i = 0; i < n && client; i++) {
        char service[128];
        snprintf(service, sizeof service, "index.%s", d[i].name);
        mb_body_t *req = mb_body_new(json_pack("{s:s}", "op", "stats"));
        ids[i] = mb_client_send(client, service, &req, NULL);
    }
    if (client) mb_client_gather(client, ids, n, replies, mb_clock_ms() + 1500);
    if (!as_json)
        printf("%-20s %-10s %5s %10s %10s  %s\n", "DOMAIN", "EXPERT", "DIM", "DOCS",
               "CHUNKS", "INDEX");
    for (size_t i = 0; i < n; i++) {
        mb_body_t *r = replies[i];
        if (r && mb_body_status(r, NULL) != 0) r = NULL; /* e.g. unknown_service */
        json_t *st = r ? mb_body_json(r) : NULL;
        json_int_t docs = st ? mb_json_int(st, "documents", -1) : -1;
        json_int_t chunks = st ? mb_json_int(st, "chunks", -1) : -1;
        if (as_json) {
            json_t *o = json_pack("{s:s, s:s, s:i, s:s, s:b, s:s}", "name", d[i].name,
                                  "embed", d[i].embed, "dim", d[i].dim, "index",
                                  d[i].index_type, "running", r != NULL, "state",
                                  d[i].enabled ? "enabled" : "disabled");
            if (r) {
                json_object_set_new(o, "documents", json_integer(docs));
                json_object_set_new(o, "chunks", json_integer(chunks));
                json_object_set(o, "stats", st);
            }
            json_array_append_new(arr, o);
        } else if (r) {
            printf("%-20s %-10s %5d %10lld %10lld  %s%s%s\n", d[i].name, d[i].embed,
                   d[i].dim, (long long)docs, (long long)chunks, d[i].index_type,
                   json_is_false(json_object_get(st, "trained"))
                       ? " (untrained: Flat serves)"
                       : "",
                   d[i].enabled ? "" : " [disabled]");
        } else {
            printf("%-20s %-10s %5d %10s %10s  %s%s\n", d[i].name, d[i].embed, d[i].dim,
                   "-", "(not running)", d[i].index_type,
                   d[i].enabled ? "" : " [disabled]");
        }
        mb_body_destroy(&replies[i]);
    }
    free(ids);
    free(replies);
    if (as_json) {
        char *s = json_dumps(arr, JSON_INDENT(2));
        puts(s);
        free(s);
    } else if (n == 0) {
        printf("(no domains in %s: add one with `moebus domain add NAME`)\n", home);
    }
    json_decref(arr);
    mb_client_destroy(&client);
    free(d);
    return 0;
}

/* Sends op to index.NAME and, with wait, polls its stats until the expert
 * job is done. */
/* refit: starts the expert job (start) and/or waits until no job runs, an
 * expert is set and every chunk has its vector (or a job failed). */
static int s_domain_refit(const char *endpoint, const char *name, int wait, int start) {
    mb_err_t err;
    mb_client_t *client = mb_client_new(endpoint, &err);
    if (!client) {
        fprintf(stderr, "moebus: %s\n", err.msg);
        return 1;
    }
    char service[128];
    snprintf(service, sizeof service, "index.%s", name);
    int rc = 1;
    mb_body_t *r = NULL;
    if (start) {
        mb_body_t *req = mb_body_new(json_pack("{s:s}", "op", "refit"));
        int crc = mb_client_call(client, service, &req, &r, 10000, &err);
        mb_body_destroy(&r);
        if (crc == MB_EEXISTS) {
            printf("domain %s: an expert job is already running\n", name);
        } else if (crc != 0) {
            fprintf(stderr, "moebus: %s: %s (%s)\n", service, err.msg, mb_err_name(crc));
            goto done;
        } else {
            printf("domain %s: expert job started\n", name);
        }
    }
    rc = 0;
    int64_t t0 = mb_clock_ms();
    while (wait) {
        usleep(start ? 500000 : 200000);
        r = s_call(client, service, mb_body_new(json_pack("{s:s}", "op", "stats")), 10000,
                   0);
        if (!r) {
            rc = 1;
            break;
        }
        json_t *sj = mb_body_json(r);
        json_t *job = json_object_get(sj, "job");
        const char *state = mb_json_str(job, "state", "?");
        int current =
            *mb_json_str(sj, "expert", "") &&
            mb_json_int(sj, "vectors_stored", 0) == mb_json_int(sj, "chunks", -1);
        if (strcmp(state, "failed") == 0) {
            fprintf(stderr, "moebus: domain %s: expert job failed: %s\n", name,
                    mb_json_str(job, "error", "?"));
            rc = 1;
            wait = 0;
        } else if (strcmp(state, "idle") == 0 &&
                   (current || mb_clock_ms() - t0 > 600000)) {
            /* (idle but not current: a job is due once writes go quiet) */
            printf("domain %s: expert %s, %lld chunks embedded\n", name,
                   mb_json_str(sj, "expert", "(none)"),
                   (long long)mb_json_int(sj, "vectors_stored", 0));
            rc = current ? 0 : 1;
            wait = 0;
        }
        mb_body_destroy(&r);
    }
done:
    mb_client_destroy(&client);
    return rc;
}

/* Where domain.* ops go: the `admin` service over the bus when a service
 * runs on the local home (or --endpoint names one explicitly), else the
 * local catalog directly (no service: nothing else writes it). Returns the
 * reply JSON or NULL after printing the error. */
static json_t *s_admin(const char *home, const char *endpoint, int endpoint_given,
                       json_t *req) {
    mb_err_t err;
    json_t *r = mb_admin_request(home, endpoint, endpoint_given, req, &err);
    if (!r) fprintf(stderr, "moebus: %s (%s)\n", err.msg, mb_err_name(err.code));
    return r;
}

int mb_domain_main(int argc, char **argv) {
    if (argc < 2 || mb_svc_wants_help(argc, argv, s_domain_usage)) {
        fputs(s_domain_usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *sub = argv[1];
    const char *home = mb_default_home(), *endpoint = mb_default_endpoint();
    json_t *req = json_object();
    int as_json = 0, wait = 0, purge = 0, endpoint_given = 0;
    static struct option opts[] = {{"home", required_argument, 0, 'H'},
                                   {"endpoint", required_argument, 0, 'e'},
                                   {"dim", required_argument, 0, 'D'},
                                   {"embed", required_argument, 0, 'm'},
                                   {"json", no_argument, 0, 'j'},
                                   {"index", required_argument, 0, 'i'},
                                   {"url", required_argument, 0, 'u'},
                                   {"model", required_argument, 0, 'M'},
                                   {"api-key-env", required_argument, 0, 'K'},
                                   {"wait", no_argument, 0, 'w'},
                                   {"purge", no_argument, 0, 'P'},
                                   {0, 0, 0, 0}};
    int c;
    optind = 2;
    while ((c = getopt_long(argc, argv, "H:e:D:m:ji:u:M:K:wP", opts, NULL)) != -1) {
        if (c == 'i')
            json_object_set_new(req, "index", json_string(optarg));
        else if (c == 'H')
            home = optarg;
        else if (c == 'e')
            endpoint = optarg, endpoint_given = 1;
        else if (c == 'D')
            json_object_set_new(req, "dim", json_integer(atoi(optarg)));
        else if (c == 'm')
            json_object_set_new(req, "embed", json_string(optarg));
        else if (c == 'u')
            json_object_set_new(req, "url", json_string(optarg));
        else if (c == 'M')
            json_object_set_new(req, "model", json_string(optarg));
        else if (c == 'K')
            json_object_set_new(req, "api_key_env", json_string(optarg));
        else if (c == 'j')
            as_json = 1;
        else if (c == 'w')
            wait = 1;
        else if (c == 'P')
            purge = 1;
        else {
            fputs(s_domain_usage, stderr);
            json_decref(req);
            return 2;
        }
    }
    if (strcmp(sub, "list") == 0) {
        json_object_set_new(req, "op", json_string("domain.list"));
        json_t *r = s_admin(home, endpoint, endpoint_given, req);
        if (!r) return 1;
        int rc = s_domain_list(json_object_get(r, "domains"), home, endpoint, as_json);
        json_decref(r);
        return rc;
    }
    if (optind >= argc) {
        fputs(s_domain_usage, stderr);
        json_decref(req);
        return 2;
    }
    const char *name = argv[optind];
    if (strcmp(sub, "refit") == 0 || strcmp(sub, "wait") == 0) {
        json_decref(req);
        return strcmp(sub, "refit") == 0 ? s_domain_refit(endpoint, name, wait, 1)
                                         : s_domain_refit(endpoint, name, 1, 0);
    }
    static const char *ops[][2] = {{"add", "domain.add"},
                                   {"set-expert", "domain.set_expert"},
                                   {"remove", "domain.remove"},
                                   {"enable", "domain.enable"},
                                   {"disable", "domain.disable"}};
    const char *op = NULL;
    for (size_t i = 0; i < sizeof ops / sizeof *ops; i++)
        if (strcmp(sub, ops[i][0]) == 0) op = ops[i][1];
    if (!op) {
        fprintf(stderr, "moebus domain: unknown subcommand '%s'\n", sub);
        fputs(s_domain_usage, stderr);
        json_decref(req);
        return 2;
    }
    json_object_set_new(req, "op", json_string(op));
    json_object_set_new(req, "name", json_string(name));
    if (purge) json_object_set_new(req, "purge", json_true());
    json_t *r = s_admin(home, endpoint, endpoint_given, req);
    if (!r) return 1;
    json_t *dj = json_object_get(r, "domain");
    int rc = 0;
    if (as_json) {
        char *out = json_dumps(r, JSON_INDENT(2));
        puts(out);
        free(out);
    } else if (strcmp(sub, "add") == 0) {
        printf("added domain %s (expert %s%s%s, dim %lld, index %s)\n", name,
               mb_json_str(dj, "embed", "?"), json_object_get(dj, "model") ? " " : "",
               mb_json_str(dj, "model", ""), (long long)mb_json_int(dj, "dim", 0),
               mb_json_str(dj, "index", "?"));
    } else if (strcmp(sub, "remove") == 0) {
        printf("removed domain %s: no longer routed to; data %s (%s)\n", name,
               mb_json_str(r, "data", "?"), mb_json_str(r, "dir", "?"));
    } else if (strcmp(sub, "enable") == 0 || strcmp(sub, "disable") == 0) {
        printf("domain %s %s\n", name, mb_json_str(r, "state", "?"));
    }
    if (strcmp(sub, "set-expert") == 0) {
        if (!as_json)
            printf("domain %s: expert is now %s%s%s; re-embedding in the background\n",
                   name, mb_json_str(dj, "embed", "?"),
                   json_object_get(dj, "model") ? " " : "", mb_json_str(dj, "model", ""));
        rc = s_domain_refit(endpoint, name, wait, 1);
    }
    json_decref(r);
    return rc;
}

/* ---- search ------------------------------------------------------------ */

static const char *s_search_usage =
    "usage: moebus search QUERY [-k N] [--domain D]... [--json] [--timeout MS]\n"
    "\n"
    "Searches the running service (through the gate) and prints the best\n"
    "passages with their domain, document and score.\n"
    "\n"
    "  -k N            how many results (default 10)\n"
    "  --domain D      search only D (repeatable; default: the domains the router\n"
    "                  picks for the query)\n"
    "  --json          print the gate's JSON reply\n"
    "  --mode M        hybrid (default: vectors + BM25, fused), dense or lexical\n"
    "  --doc-prefix P  only documents whose id starts with P\n"
    "  --source-prefix P  only documents whose source path starts with P\n"
    "  --meta KEY=VALUE   only documents whose metadata KEY is VALUE (repeatable)\n"
    "  --timeout MS    deadline for the whole search (default 5000)\n"
    "  --p P           router top-p (default 0.9): domains until their probability\n"
    "                  sums to P\n"
    "  --max-domains N at most N routed domains (default 3)\n"
    "  --router K      learned (default) or pilot\n"
    "  --shared D      also search D, whatever the router says\n"
    "  --retrieve R    auto (default: the gate decides), always, never\n"
    "  --endpoint E    broker endpoint (default $MOEBUS_ENDPOINT or "
    "tcp://127.0.0.1:5555)\n";

static void s_print_snippet(const char *text, int width) {
    int col = 0, space = 0;
    for (const unsigned char *p = (const unsigned char *)text;
         *p && (col < width || (*p & 0xC0) == 0x80); p++) {
        if (*p == '\n' || *p == '\t' || *p == ' ' || *p == '\r') {
            space = 1;
            continue;
        }
        if (space && col > 0) {
            putchar(' ');
            col++;
        }
        space = 0;
        putchar(*p);
        if ((*p & 0xC0) != 0x80) col++;
    }
    putchar('\n');
}

int mb_search_main(int argc, char **argv) {
    if (mb_svc_wants_help(argc, argv, s_search_usage)) return 0;
    const char *endpoint = mb_default_endpoint();
    int k = 10, as_json = 0, timeout = 5000;
    const char *mode = "hybrid";
    json_t *domains = NULL, *filter = NULL;
    static struct option opts[] = {{"endpoint", required_argument, 0, 'e'},
                                   {"domain", required_argument, 0, 'd'},
                                   {"json", no_argument, 0, 'j'},
                                   {"timeout", required_argument, 0, 't'},
                                   {"home", required_argument, 0, 'H'},
                                   {"mode", required_argument, 0, 'm'},
                                   {"doc-prefix", required_argument, 0, 'P'},
                                   {"source-prefix", required_argument, 0, 'S'},
                                   {"meta", required_argument, 0, 'M'},
                                   {"p", required_argument, 0, 'p'},
                                   {"max-domains", required_argument, 0, 'x'},
                                   {"router", required_argument, 0, 'r'},
                                   {"shared", required_argument, 0, 's'},
                                   {"retrieve", required_argument, 0, 'R'},
                                   {0, 0, 0, 0}};
    int c;
    json_t *routing = json_object(); /* passed as given: the gate validates */
    while ((c = getopt_long(argc, argv, "e:d:jt:k:H:m:P:S:M:p:x:r:s:R:", opts, NULL)) !=
           -1) {
        if (c == 'p' || c == 'x' || c == 'r' || c == 's' || c == 'R') {
            const char *key = c == 'p'   ? "p"
                              : c == 'x' ? "max_domains"
                              : c == 'r' ? "router"
                              : c == 's' ? "shared"
                                         : "retrieve";
            json_object_set_new(routing, key,
                                c == 'p'   ? json_real(atof(optarg))
                                : c == 'x' ? json_integer(atoi(optarg))
                                           : json_string(optarg));
            continue;
        }
        if ((c == 'P' || c == 'S' || c == 'M') && !filter) filter = json_object();
        if (c == 'P') {
            json_object_set_new(filter, "doc_prefix", json_string(optarg));
            continue;
        }
        if (c == 'S') {
            json_object_set_new(filter, "source_prefix", json_string(optarg));
            continue;
        }
        if (c == 'M') {
            char *eq = strchr(optarg, '=');
            if (!eq || eq == optarg) {
                fprintf(stderr, "moebus search: --meta takes KEY=VALUE\n");
                json_decref(filter);
                json_decref(routing);
                json_decref(domains);
                return 2;
            }
            json_t *meta = json_object_get(filter, "meta");
            if (!meta) json_object_set_new(filter, "meta", meta = json_object());
            *eq = 0;
            json_object_set_new(meta, optarg, json_string(eq + 1));
            *eq = '=';
            continue;
        }
        if (c == 'e')
            endpoint = optarg;
        else if (c == 'k')
            k = atoi(optarg);
        else if (c == 'j')
            as_json = 1;
        else if (c == 't')
            timeout = atoi(optarg);
        else if (c == 'm')
            mode = optarg;
        else if (c == 'd') {
            if (!domains) domains = json_array();
            json_array_append_new(domains, json_string(optarg));
        } else if (c == 'H') {
        } else {
            fputs(s_search_usage, stderr);
            json_decref(domains);
            json_decref(filter);
            json_decref(routing);
            return 2;
        }
    }
    if (optind >= argc) {
        fputs(s_search_usage, stderr);
        json_decref(domains);
        json_decref(filter);
        json_decref(routing);
        return 2;
    }
    /* The query is every remaining word, so quoting is optional. */
    size_t qlen = 0;
    for (int i = optind; i < argc; i++)
        qlen += strlen(argv[i]) + 1;
    char *query = calloc(1, qlen + 1);
    for (int i = optind; i < argc; i++) {
        if (i > optind) strcat(query, " ");
        strcat(query, argv[i]);
    }
    mb_err_t err;
    mb_client_t *client = mb_client_new(endpoint, &err);
    if (!client) {
        fprintf(stderr, "moebus: %s\n", err.msg);
        free(query);
        json_decref(domains);
        json_decref(filter);
        json_decref(routing);
        return 1;
    }
    json_t *req = json_pack("{s:s, s:s, s:i, s:i, s:s}", "op", "search", "query", query,
                            "k", k, "timeout_ms", timeout, "mode", mode);
    if (domains) json_object_set_new(req, "domains", domains);
    if (filter) json_object_set_new(req, "filter", filter);
    json_object_update(req, routing);
    json_decref(routing);
    mb_body_t *body = mb_body_new(req), *reply = NULL;
    int rc = mb_client_call(client, "gate", &body, &reply, timeout + 1000, &err);
    if (rc != 0 && !reply) {
        fprintf(stderr, "moebus: search failed: %s (%s)\n", err.msg, mb_err_name(rc));
    } else if (as_json) {
        char *s = json_dumps(mb_body_json(reply), JSON_INDENT(2));
        puts(s);
        free(s);
    } else if (rc != 0) {
        fprintf(stderr, "moebus: search failed: %s (%s)\n", err.msg, mb_err_name(rc));
    } else {
        json_t *j = mb_body_json(reply);
        json_t *results = json_object_get(j, "results");
        printf("%-3s %-12s %-8s %-32s %s\n", "#", "DOMAIN", "SCORE", "DOCUMENT", "TEXT");
        size_t i;
        json_t *r;
        json_array_foreach(results, i, r) {
            char doc[64];
            snprintf(doc, sizeof doc, "%s", mb_json_str(r, "doc_id", "?"));
            printf("%-3zu %-12s %-8.4f %-32s ", i + 1, mb_json_str(r, "domain", "?"),
                   json_number_value(json_object_get(r, "raw_score")), doc);
            s_print_snippet(mb_json_str(r, "text", ""), 70);
        }
        if (json_array_size(results) == 0)
            printf("(no results%s%s)\n", json_object_get(j, "message") ? ": " : "",
                   mb_json_str(j, "message", ""));
        json_t *errors = json_object_get(j, "errors");
        json_array_foreach(errors, i, r)
            printf("! %s (%s): %s\n", mb_json_str(r, "domain", "?"),
                   mb_json_str(r, "stage", "?"), mb_json_str(r, "message", ""));
        json_t *t = json_object_get(j, "timings");
        printf("-- %zu domain(s) searched in %.1f ms (embed %.1f, index %.1f)\n",
               json_array_size(json_object_get(json_object_get(j, "gate"), "domains")),
               (double)mb_json_int(t, "total_us", 0) / 1000.0,
               (double)mb_json_int(t, "embed_us", 0) / 1000.0,
               (double)mb_json_int(t, "index_us", 0) / 1000.0);
    }
    mb_body_destroy(&reply);
    mb_client_destroy(&client);
    free(query);
    return rc == 0 ? 0 : 1;
}

/* ---- call ---------------------------------------------------------------- */

static const char *s_call_usage =
    "usage: moebus call SERVICE [JSON] [--timeout MS] [--endpoint E]\n"
    "\n"
    "Sends one request to SERVICE over the bus and prints the JSON reply; exits 0\n"
    "when the reply says ok, 1 otherwise. JSON defaults to {}. Examples:\n"
    "  moebus call mmi.services\n"
    "  moebus call mmi.service '{\"service\":\"index.computing\"}'\n"
    "  moebus call index.computing '{\"op\":\"stats\"}'\n"
    "\n"
    "  --timeout MS    deadline (default 5000)\n"
    "  --endpoint E    broker endpoint (default $MOEBUS_ENDPOINT or "
    "tcp://127.0.0.1:5555)\n";

int mb_call_main(int argc, char **argv) {
    if (mb_svc_wants_help(argc, argv, s_call_usage)) return 0;
    const char *endpoint = mb_default_endpoint();
    int timeout = 5000;
    static struct option opts[] = {{"endpoint", required_argument, 0, 'e'},
                                   {"timeout", required_argument, 0, 't'},
                                   {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "e:t:", opts, NULL)) != -1) {
        if (c == 'e')
            endpoint = optarg;
        else if (c == 't')
            timeout = atoi(optarg);
        else {
            fputs(s_call_usage, stderr);
            return 2;
        }
    }
    if (optind >= argc || timeout <= 0) {
        fputs(s_call_usage, stderr);
        return 2;
    }
    const char *service = argv[optind];
    json_error_t jerr;
    json_t *j =
        optind + 1 < argc ? json_loads(argv[optind + 1], 0, &jerr) : json_object();
    if (!json_is_object(j)) {
        fprintf(stderr, "moebus call: the request must be a JSON object%s%s\n",
                j ? "" : ": ", j ? "" : jerr.text);
        json_decref(j);
        return 2;
    }
    mb_err_t err;
    mb_client_t *client = mb_client_new(endpoint, &err);
    if (!client) {
        fprintf(stderr, "moebus call: %s\n", err.msg);
        json_decref(j);
        return 1;
    }
    mb_body_t *req = mb_body_new(j), *reply = NULL;
    int rc = mb_client_call(client, service, &req, &reply, timeout, &err);
    if (reply) {
        char *s = json_dumps(mb_body_json(reply), JSON_INDENT(2) | JSON_SORT_KEYS);
        puts(s);
        free(s);
    } else {
        fprintf(stderr, "moebus call: %s (%s)\n", err.msg, mb_err_name(rc));
    }
    mb_body_destroy(&reply);
    mb_client_destroy(&client);
    return rc == 0 ? 0 : 1;
}
