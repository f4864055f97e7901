/* chat.h — a client of OpenAI-compatible chat completion servers
 * (/v1/chat/completions: Ollama, vLLM, llama.cpp server, OpenAI), the
 * internal experts behind `generate.<name>`. */
#ifndef MB_CHAT_H
#define MB_CHAT_H

#include <jansson.h>

#include "mb_error.h"

typedef struct mb_chat_t mb_chat_t;

typedef struct {
    const char *url; /* server root, .../v1, or .../v1/chat/completions */
    const char *model;
    const char *api_key_env; /* environment variable holding the key, or NULL */
    int retries;             /* on 429, 5xx and transport errors (default 2) */
} mb_chat_opts_t;

/* The key is read from the environment here, once. */
mb_chat_t *mb_chat_new(const mb_chat_opts_t *opts, mb_err_t *err);
void mb_chat_destroy(mb_chat_t **self_p);

/* Sends messages ([{role, content}, ...]) and returns the first choice's
 * text (malloc'ed) within timeout_ms overall, retries included. Errors:
 * MB_ETIMEOUT, MB_EUNAVAIL (server unreachable or failing), MB_EBADREQ
 * (4xx: the server's own message), MB_EINTERNAL (a reply that is not a
 * chat completion). usage, when non-NULL, receives the reply's "usage". */
int mb_chat_complete(mb_chat_t *self, json_t *messages, int max_tokens, int timeout_ms,
                     char **text, json_t **usage, mb_err_t *err);

#endif
