/* chat.c — chat completions over libcurl.
 *
 * One request at a time (a generate worker answers one ask at a time; more
 * workers scale it). Retries 429, 5xx and transport failures with backoff
 * from 250 ms doubling, or the server's Retry-After (capped at 10 s), but
 * never past the caller's overall deadline: an ask that must answer in 5 s
 * gets an error in 5 s, not a late answer. The API key goes only into the
 * Authorization header and never into an error message. */
#include "chat.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "mb_mdp.h"

#define MAX_REPLY (8 << 20)

struct mb_chat_t {
    char url[1024];
    char model[256];
    char auth[1024]; /* "Authorization: Bearer ..." or "" */
    int retries;
};

static pthread_once_t s_once = PTHREAD_ONCE_INIT;
static void s_init(void) {
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

mb_chat_t *mb_chat_new(const mb_chat_opts_t *o, mb_err_t *err) {
    pthread_once(&s_once, s_init);
    if (!o->url || !*o->url || !o->model || !*o->model) {
        mb_err_set(err, MB_EBADREQ, "a generator needs a URL and a model");
        return NULL;
    }
    if (strncmp(o->url, "http://", 7) != 0 && strncmp(o->url, "https://", 8) != 0) {
        mb_err_set(err, MB_EBADREQ, "generator URL must start with http:// or https://");
        return NULL;
    }
    mb_chat_t *c = calloc(1, sizeof *c);
    /* accept the root, .../v1 or the full endpoint */
    size_t l = strlen(o->url);
    while (l > 0 && o->url[l - 1] == '/')
        l--;
    const char *suffix = "/v1/chat/completions";
    if (l >= 17 && strncmp(o->url + l - 17, "/chat/completions", 17) == 0)
        suffix = "";
    else if (l >= 3 && strncmp(o->url + l - 3, "/v1", 3) == 0)
        suffix = "/chat/completions";
    snprintf(c->url, sizeof c->url, "%.*s%s", (int)l, o->url, suffix);
    snprintf(c->model, sizeof c->model, "%s", o->model);
    c->retries = o->retries > 0 ? o->retries : 2;
    if (o->api_key_env && *o->api_key_env) {
        const char *key = getenv(o->api_key_env);
        if (!key || !*key) {
            mb_err_set(err, MB_EBADREQ,
                       "environment variable %s (the API key) is not set",
                       o->api_key_env);
            free(c);
            return NULL;
        }
        snprintf(c->auth, sizeof c->auth, "Authorization: Bearer %s", key);
    }
    return c;
}

void mb_chat_destroy(mb_chat_t **self_p) {
    if (!self_p || !*self_p) return;
    memset((*self_p)->auth, 0, sizeof(*self_p)->auth);
    free(*self_p);
    *self_p = NULL;
}

typedef struct {
    char *p;
    size_t n;
    int over;
} acc_t;

static size_t s_write(char *ptr, size_t size, size_t nm, void *arg) {
    acc_t *a = arg;
    size_t n = size * nm;
    if (a->n + n > MAX_REPLY) {
        a->over = 1;
        return 0;
    }
    char *p = realloc(a->p, a->n + n + 1);
    if (!p) return 0;
    a->p = p;
    memcpy(a->p + a->n, ptr, n);
    a->n += n;
    a->p[a->n] = 0;
    return n;
}

static size_t s_header(char *buf, size_t size, size_t n, void *arg) {
    long *ra = arg;
    size_t len = size * n;
    if (len > 12 && strncasecmp(buf, "Retry-After:", 12) == 0) *ra = atol(buf + 12);
    return len;
}

int mb_chat_complete(mb_chat_t *self, json_t *messages, int max_tokens, int timeout_ms,
                     char **text, json_t **usage, mb_err_t *err) {
    *text = NULL;
    if (usage) *usage = NULL;
    int64_t deadline = mb_clock_ms() + timeout_ms;
    json_t *body = json_pack("{s:s, s:O, s:b}", "model", self->model, "messages",
                             messages, "stream", 0);
    if (max_tokens > 0) json_object_set_new(body, "max_tokens", json_integer(max_tokens));
    char *payload = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    int rc = MB_EUNAVAIL;
    char last[512] = "no attempt";
    long backoff = 250;
    for (int attempt = 0; attempt <= self->retries; attempt++) {
        int64_t left = deadline - mb_clock_ms();
        if (left <= 0) {
            rc =
                mb_err_set(err, MB_ETIMEOUT, "generator did not answer within %d ms (%s)",
                           timeout_ms, last);
            goto done;
        }
        CURL *h = curl_easy_init();
        struct curl_slist *hd = curl_slist_append(NULL, "Content-Type: application/json");
        if (self->auth[0]) hd = curl_slist_append(hd, self->auth);
        acc_t a = {0};
        long ra = -1;
        curl_easy_setopt(h, CURLOPT_URL, self->url);
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, hd);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, payload);
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, s_write);
        curl_easy_setopt(h, CURLOPT_WRITEDATA, &a);
        curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, s_header);
        curl_easy_setopt(h, CURLOPT_HEADERDATA, &ra);
        curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)left);
        curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)(left < 5000 ? left : 5000));
        curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
        CURLcode cc = curl_easy_perform(h);
        long status = 0;
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
        curl_slist_free_all(hd);
        curl_easy_cleanup(h);
        int retry = 0;
        if (cc != CURLE_OK) {
            if (a.over) {
                free(a.p);
                rc = mb_err_set(err, MB_EINTERNAL, "generator reply larger than %d bytes",
                                MAX_REPLY);
                goto done;
            }
            snprintf(last, sizeof last, "%s", curl_easy_strerror(cc));
            rc = cc == CURLE_OPERATION_TIMEDOUT ? MB_ETIMEOUT : MB_EUNAVAIL;
            retry = 1;
        } else if (status == 429 || status >= 500) {
            snprintf(last, sizeof last, "HTTP %ld", status);
            rc = MB_EUNAVAIL;
            retry = 1;
        } else if (status >= 400) {
            json_t *ej = a.p ? json_loads(a.p, 0, NULL) : NULL;
            json_t *em = json_object_get(json_object_get(ej, "error"), "message");
            rc =
                mb_err_set(err, MB_EBADREQ, "generator refused the request: HTTP %ld%s%s",
                           status, json_is_string(em) ? ": " : "",
                           json_is_string(em) ? json_string_value(em) : "");
            json_decref(ej);
            free(a.p);
            goto done;
        } else {
            json_t *rj = a.p ? json_loads(a.p, 0, NULL) : NULL;
            json_t *c0 = json_array_get(json_object_get(rj, "choices"), 0);
            json_t *content = json_object_get(json_object_get(c0, "message"), "content");
            if (!json_is_string(content)) {
                json_decref(rj);
                free(a.p);
                rc = mb_err_set(err, MB_EINTERNAL,
                                "generator reply is not a chat completion (no "
                                "choices[0].message.content)");
                goto done;
            }
            *text = strdup(json_string_value(content));
            if (usage && json_object_get(rj, "usage"))
                *usage = json_incref(json_object_get(rj, "usage"));
            json_decref(rj);
            free(a.p);
            rc = 0;
            goto done;
        }
        free(a.p);
        if (!retry || attempt == self->retries) break;
        long wait = ra >= 0 ? (ra > 10 ? 10000 : ra * 1000) : backoff;
        backoff *= 2;
        if (mb_clock_ms() + wait >= deadline) break;
        usleep((useconds_t)wait * 1000);
    }
    if (rc == MB_ETIMEOUT)
        mb_err_set(err, MB_ETIMEOUT, "generator did not answer within %d ms (%s)",
                   timeout_ms, last);
    else
        mb_err_set(err, MB_EUNAVAIL, "generator unavailable at %s (%s)", self->url, last);
done:
    free(payload);
    return rc;
}
