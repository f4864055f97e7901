/* services.h — entry points of the `moebus` subcommands. Each takes the
 * subcommand's own argv (argv[0] is the subcommand name) and returns the
 * process exit status. */
#ifndef MB_SERVICES_H
#define MB_SERVICES_H

int mb_broker_main(int argc, char **argv);
int mb_gate_main(int argc, char **argv);
int mb_embed_main(int argc, char **argv);
int mb_index_main(int argc, char **argv);
int mb_serve_main(int argc, char **argv);
int mb_stop_main(int argc, char **argv);
int mb_domain_main(int argc, char **argv);
int mb_ingest_main(int argc, char **argv);
int mb_search_main(int argc, char **argv);
int mb_call_main(int argc, char **argv);
int mb_eval_main(int argc, char **argv);
int mb_router_main(int argc, char **argv);
int mb_router_cmd_main(int argc, char **argv);
int mb_generate_main(int argc, char **argv);
int mb_route_main(int argc, char **argv);
int mb_ask_main(int argc, char **argv);
int mb_generator_main(int argc, char **argv);
int mb_config_main(int argc, char **argv);
int mb_stats_main(int argc, char **argv);
int mb_admin_main(int argc, char **argv);
int mb_status_main(int argc, char **argv);

#endif
