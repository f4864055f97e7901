/* main.c — `moebus`: one binary, one subcommand per process role. */
#include <stdio.h>
#include <string.h>

#include "services.h"

static const struct {
    const char *name;
    int (*fn)(int, char **);
    const char *what;
} s_cmds[] = {
    {"serve", mb_serve_main, "run the whole service (broker + workers) on a home"},
    {"stop", mb_stop_main, "stop the service running on a home"},
    {"status", mb_status_main, "every service's workers, uptime, restarts, latency"},
    {"domain", mb_domain_main,
     "add, remove, disable, enable, list, refit domains; change their expert"},
    {"ingest", mb_ingest_main, "index files and folders into a domain (jobs, --resume)"},
    {"search", mb_search_main, "search the running service"},
    {"ask", mb_ask_main, "answer a question with citations (retrieve + generate)"},
    {"route", mb_route_main, "show the router's distribution for a query"},
    {"generator", mb_generator_main, "add, list, remove generators (internal experts)"},
    {"config", mb_config_main, "routing, gate and ask settings"},
    {"stats", mb_stats_main, "cost accounting: retrieval skipped, domains searched"},
    {"eval", mb_eval_main, "measure retrieval quality on BEIR-layout data"},
    {"call", mb_call_main, "send one JSON request to any service and print the reply"},
    {"admin", mb_admin_main, "run the admin worker (catalog writes, status)"},
    {"broker", mb_broker_main, "run the message broker (MDP/0.2)"},
    {"gate", mb_gate_main, "run the gate worker (query front door)"},
    {"router", mb_router_cmd_main,
     "train the router, show its status, or run its worker"},
    {"generate", mb_generate_main, "run a generator worker (internal expert)"},
    {"embed", mb_embed_main, "run a domain's embedding worker"},
    {"index", mb_index_main, "run a domain's index worker"},
};

static void s_usage(FILE *out) {
    fprintf(out,
            "usage: moebus COMMAND [ARGS]   (moebus COMMAND --help for details)\n\n"
            "moebus: multi-domain expert retrieval over a ZeroMQ bus.\n\ncommands:\n");
    for (size_t i = 0; i < sizeof s_cmds / sizeof *s_cmds; i++)
        fprintf(out, "  %-10s %s\n", s_cmds[i].name, s_cmds[i].what);
    fprintf(out,
            "\nenvironment: MOEBUS_HOME (./moebus-data), MOEBUS_ENDPOINT "
            "(tcp://127.0.0.1:5555),\n  MOEBUS_HEARTBEAT_MS (1000), MOEBUS_LOG (info)\n");
}

int main(int argc, char **argv) {
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        s_usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    for (size_t i = 0; i < sizeof s_cmds / sizeof *s_cmds; i++)
        if (strcmp(argv[1], s_cmds[i].name) == 0) return s_cmds[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "moebus: unknown command '%s'\n\n", argv[1]);
    s_usage(stderr);
    return 2;
}
