/* embed_http.c — an expert behind an OpenAI-compatible embeddings server
 * (Ollama, vLLM, text-embeddings-inference, llama.cpp server, OpenAI).
 *
 * POST {url}/embeddings {"model": M, "input": [texts]} ->
 *      {"data": [{"index": i, "embedding": [floats]}, ...]}
 *
 * A call is split into batches of MOEBUS_HTTP_BATCH texts (default 64), up to
 * MOEBUS_HTTP_INFLIGHT (4) in flight at once on one curl multi handle. Each
 * request has a timeout (MOEBUS_HTTP_TIMEOUT_MS, 30000). 429, 5xx and
 * transport failures are retried up to MOEBUS_HTTP_RETRIES (4) times with
 * exponential backoff from 250 ms (or the server's Retry-After, capped at
 * 10 s); other 4xx fail at once with the server's message. Vectors are
 * checked (count, dimension, finite) and L2-normalised, since not every
 * server normalises. The API key is read from the named environment variable
 * when the expert opens and only ever goes into the Authorization header. */
#include <curl/curl.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "embed_impl.h"
#include "mb_mem.h"

typedef struct {
    char url[600];
    char model[128];
    char auth[1024]; /* "Authorization: Bearer …" or empty */
    int dim, batch, inflight, timeout_ms, retries;
} http_t;

static int s_env_int(const char *name, int dflt, int lo, int hi) {
    const char *v = getenv(name);
    if (!v || !*v) return dflt;
    long x = strtol(v, NULL, 10);
    return x < lo ? lo : x > hi ? hi : (int)x;
}

static pthread_once_t s_curl_once = PTHREAD_ONCE_INIT;
static void s_curl_init(void) {
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

void *mb_embed_http_new(const mb_expert_spec_t *spec, mb_err_t *err) {
    if (!*spec->url || !*spec->model) {
        mb_err_set(err, MB_EBADREQ, "the http expert needs --url and --model");
        return NULL;
    }
    if (strncmp(spec->url, "http://", 7) != 0 && strncmp(spec->url, "https://", 8) != 0) {
        mb_err_set(err, MB_EBADREQ, "--url must start with http:// or https://");
        return NULL;
    }
    pthread_once(&s_curl_once, s_curl_init);
    http_t *h = calloc(1, sizeof *h);
    /* Accept the endpoint itself, the /v1 base, or the server root. */
    size_t ul = strlen(spec->url);
    while (ul > 0 && spec->url[ul - 1] == '/')
        ul--;
    if (ul >= 11 && strncmp(spec->url + ul - 11, "/embeddings", 11) == 0)
        snprintf(h->url, sizeof h->url, "%.*s", (int)ul, spec->url);
    else if (ul >= 3 && strncmp(spec->url + ul - 3, "/v1", 3) == 0)
        snprintf(h->url, sizeof h->url, "%.*s/embeddings", (int)ul, spec->url);
    else
        snprintf(h->url, sizeof h->url, "%.*s/v1/embeddings", (int)ul, spec->url);
    snprintf(h->model, sizeof h->model, "%s", spec->model);
    if (*spec->api_key_env) {
        const char *key = getenv(spec->api_key_env);
        if (!key || !*key) {
            mb_err_set(err, MB_EBADREQ,
                       "environment variable %s (the API key) is not set",
                       spec->api_key_env);
            free(h);
            return NULL;
        }
        snprintf(h->auth, sizeof h->auth, "Authorization: Bearer %s", key);
    }
    h->dim = spec->dim;
    h->batch = s_env_int("MOEBUS_HTTP_BATCH", 64, 1, 2048);
    h->inflight = s_env_int("MOEBUS_HTTP_INFLIGHT", 4, 1, 64);
    h->timeout_ms = s_env_int("MOEBUS_HTTP_TIMEOUT_MS", 30000, 50, 600000);
    h->retries = s_env_int("MOEBUS_HTTP_RETRIES", 4, 0, 20);
    return h;
}

static void s_destroy(void *state) {
    http_t *h = state;
    if (h) memset(h->auth, 0, sizeof h->auth);
    free(h);
}

typedef struct {
    char *data;
    size_t n;
} buf_t;

static size_t s_write(char *p, size_t sz, size_t nm, void *arg) {
    buf_t *b = arg;
    size_t k = sz * nm;
    if (b->n + k > (size_t)256 << 20) return 0; /* absurd reply: abort */
    b->data = mb_xrealloc(b->data, b->n + k + 1);
    memcpy(b->data + b->n, p, k);
    b->n += k;
    b->data[b->n] = 0;
    return k;
}

typedef struct {
    size_t first, count; /* texts[first .. first+count) */
    int attempt;
    int64_t not_before; /* ms: backoff */
    CURL *easy;
    struct curl_slist *hdrs;
    char *body;
    buf_t reply;
    long retry_after; /* seconds, from the header */
    int done;
} job_t;

static int64_t s_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static size_t s_header(char *p, size_t sz, size_t nm, void *arg) {
    job_t *j = arg;
    size_t k = sz * nm;
    if (k > 12 && strncasecmp(p, "Retry-After:", 12) == 0)
        j->retry_after = strtol(p + 12, NULL, 10);
    return k;
}

static void s_job_reset(job_t *j) {
    if (j->easy) curl_easy_cleanup(j->easy);
    curl_slist_free_all(j->hdrs);
    free(j->body);
    free(j->reply.data);
    j->easy = NULL;
    j->hdrs = NULL;
    j->body = NULL;
    j->reply = (buf_t){0};
    j->retry_after = 0;
}

static CURL *s_job_start(http_t *h, job_t *j, const char *const *texts) {
    json_t *in = json_array();
    for (size_t i = 0; i < j->count; i++)
        json_array_append_new(in, json_string(texts[j->first + i]));
    json_t *req = json_pack("{s:s, s:o}", "model", h->model, "input", in);
    j->body = json_dumps(req, JSON_COMPACT);
    json_decref(req);
    CURL *e = curl_easy_init();
    j->hdrs = curl_slist_append(NULL, "Content-Type: application/json");
    if (*h->auth) j->hdrs = curl_slist_append(j->hdrs, h->auth);
    curl_easy_setopt(e, CURLOPT_URL, h->url);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, j->hdrs);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, j->body);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, s_write);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &j->reply);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, s_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, j);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)h->timeout_ms);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
                     (long)(h->timeout_ms < 10000 ? h->timeout_ms : 10000));
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_PRIVATE, j);
    curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
    j->easy = e;
    return e;
}

/* Parses a 200 reply into out rows [first, first+count). */
static int s_parse(http_t *h, job_t *j, float *out, mb_err_t *err) {
    json_error_t je;
    json_t *r = json_loads(j->reply.data ? j->reply.data : "", 0, &je);
    int rc = 0;
    json_t *data = r ? json_object_get(r, "data") : NULL;
    if (!json_is_array(data)) {
        rc = mb_err_set(
            err, MB_EUNAVAIL,
            "embedding server %s sent a malformed reply (no \"data\" array%s%s)", h->url,
            r ? "" : ": ", r ? "" : je.text);
        goto done;
    }
    if (json_array_size(data) != j->count) {
        rc = mb_err_set(err, MB_EUNAVAIL,
                        "embedding server %s returned %zu embeddings for %zu texts",
                        h->url, json_array_size(data), j->count);
        goto done;
    }
    size_t i;
    json_t *item;
    json_array_foreach(data, i, item) {
        json_t *jix = json_object_get(item, "index");
        size_t row = json_is_integer(jix) ? (size_t)json_integer_value(jix) : i;
        json_t *emb = json_object_get(item, "embedding");
        if (row >= j->count || !json_is_array(emb)) {
            rc = mb_err_set(err, MB_EUNAVAIL,
                            "embedding server %s sent a malformed item %zu", h->url, i);
            goto done;
        }
        if (json_array_size(emb) != (size_t)h->dim) {
            rc = mb_err_set(err, MB_EBADREQ,
                            "embedding server %s model %s returns %zu dimensions; the "
                            "domain has %d",
                            h->url, h->model, json_array_size(emb), h->dim);
            goto done;
        }
        float *v = out + (j->first + row) * (size_t)h->dim;
        double norm = 0;
        for (int d = 0; d < h->dim; d++) {
            json_t *x = json_array_get(emb, (size_t)d);
            double f = json_number_value(x);
            if (!json_is_number(x) || !isfinite(f)) {
                rc = mb_err_set(err, MB_EUNAVAIL,
                                "embedding server %s sent a non-number in item %zu",
                                h->url, i);
                goto done;
            }
            v[d] = (float)f;
            norm += f * f;
        }
        if (norm > 0)
            for (int d = 0; d < h->dim; d++)
                v[d] = (float)(v[d] / sqrt(norm));
    }
done:
    json_decref(r);
    return rc;
}

static int s_batch(void *state, const char *const *texts, size_t n, mb_embed_kind_t kind,
                   float *out, mb_err_t *err) {
    (void)kind;
    http_t *h = state;
    size_t njobs = (n + (size_t)h->batch - 1) / (size_t)h->batch;
    job_t *jobs = calloc(njobs ? njobs : 1, sizeof *jobs);
    for (size_t b = 0; b < njobs; b++) {
        jobs[b].first = b * (size_t)h->batch;
        jobs[b].count =
            n - jobs[b].first < (size_t)h->batch ? n - jobs[b].first : (size_t)h->batch;
    }
    CURLM *m = curl_multi_init();
    size_t done = 0;
    int running = 0, active = 0, rc = 0;
    /* jobs waiting to be retried, in order of not_before */
    while (done < njobs && rc == 0) {
        int64_t now = s_now_ms(), wait = 1000;
        for (size_t b = 0; b < njobs && active < h->inflight; b++) {
            job_t *j = &jobs[b];
            if (j->done || j->easy) continue;
            if (j->not_before > now) {
                if (j->not_before - now < wait) wait = j->not_before - now;
                continue;
            }
            curl_multi_add_handle(m, s_job_start(h, j, texts));
            active++;
        }
        curl_multi_perform(m, &running);
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(m, &left))) {
            if (msg->msg != CURLMSG_DONE) continue;
            job_t *j;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&j);
            long status = 0;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &status);
            CURLcode cc = msg->data.result;
            curl_multi_remove_handle(m, msg->easy_handle);
            active--;
            int retry = cc != CURLE_OK || status == 429 || status >= 500;
            if (cc == CURLE_OK && status == 200) {
                rc = s_parse(h, j, out, err);
                j->done = 1;
                done++;
            } else if (retry && j->attempt < h->retries) {
                int64_t backoff = (int64_t)250 << j->attempt;
                if (j->retry_after > 0)
                    backoff =
                        j->retry_after * 1000 > 10000 ? 10000 : j->retry_after * 1000;
                j->attempt++;
                j->not_before = s_now_ms() + backoff;
            } else if (retry && cc != CURLE_OK) {
                rc = mb_err_set(
                    err, cc == CURLE_OPERATION_TIMEDOUT ? MB_ETIMEOUT : MB_EUNAVAIL,
                    "embedding server %s: %s (%d attempts)", h->url,
                    curl_easy_strerror(cc), j->attempt + 1);
            } else if (retry) {
                rc = mb_err_set(err, MB_EUNAVAIL,
                                "embedding server %s: HTTP %ld (%d attempts)", h->url,
                                status, j->attempt + 1);
            } else {
                /* 4xx: a request the server will never accept; say why */
                json_t *r = json_loads(j->reply.data ? j->reply.data : "", 0, NULL);
                json_t *e = r ? json_object_get(r, "error") : NULL;
                const char *why = json_is_object(e)
                                      ? json_string_value(json_object_get(e, "message"))
                                  : json_is_string(e) ? json_string_value(e)
                                                      : NULL;
                rc = mb_err_set(err, MB_EBADREQ,
                                "embedding server %s refused the request: HTTP %ld%s%s",
                                h->url, status, why ? ": " : "", why ? why : "");
                json_decref(r);
            }
            s_job_reset(j);
        }
        if (rc == 0 && done < njobs)
            curl_multi_poll(m, NULL, 0,
                            active > 0 ? (int)(wait < 100 ? wait : 100) : (int)wait,
                            NULL);
    }
    for (size_t b = 0; b < njobs; b++) {
        if (jobs[b].easy) curl_multi_remove_handle(m, jobs[b].easy);
        s_job_reset(&jobs[b]);
    }
    curl_multi_cleanup(m);
    free(jobs);
    return rc;
}

const mb_embed_ops_t mb_embed_http_ops = {"http", s_batch, s_destroy};
