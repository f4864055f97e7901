/* gate.c — `moebus gate`: the front door for search and ask.
 *
 * {"op":"search"|"ask","query":Q,"k":10,"domains":[..]?,"timeout_ms":5000?,
 *  "p"?, "max_domains"?, "router"?, "shared"?, "retrieve"?:"auto"|"always"|
 *  "never", "gate_threshold"?, "generator"? (ask), "max_context_tokens"? (ask)}
 *
 * 1. route: ask `router` for a probability per domain and its top-p choice
 *    (explicit "domains" skip it; no router reply: every domain, noted);
 * 2. gate: retrieve, or internal when the router's gate model says no
 *    indexed domain covers the query (p_in below the threshold);
 * 3. for the chosen domains in parallel: embed.<d> for the query vector,
 *    index.<d> for the top k; fuse by reciprocal rank;
 * 4. ask: a prompt from the top passages with numbered citations to
 *    generate.<name>, or an extractive answer when there is no generator.
 * The reply carries the trace: the router's scores, the gate's decision and
 * why, the domains searched, per-domain failures (marked partial, never
 * dropped silently) and per-stage timings. Every wait has one deadline, so
 * a dead domain or generator costs at most the request's timeout.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fusion.h"
#include "index.h"
#include "home.h"
#include "mb_client.h"
#include "mb_log.h"
#include "mb_mdp.h"
#include "router.h"
#include "services.h"
#include "svc.h"
#include "text.h"

#define MAX_K 1000
#define RRF_K 60

static const char *s_usage =
    "usage: moebus gate [--home DIR] [--endpoint E]\n"
    "\n"
    "Serves `gate` on the bus (search, ask, stats): routes a query to domains\n"
    "(or to an internal expert), searches them in parallel, fuses the results,\n"
    "and for ask builds a prompt with citations for a generator.\n"
    "\n"
    "  --home DIR      moebus home (default $MOEBUS_HOME or ./moebus-data)\n"
    "  --endpoint E    broker endpoint (default $MOEBUS_ENDPOINT or "
    "tcp://127.0.0.1:5555)\n"
    "\n"
    "environment: MOEBUS_ROUTE_TIMEOUT_MS (500): how long a query waits for the\n"
    "  router before every domain is searched instead\n";

typedef struct {
    const char *home;
    mb_client_t *client;
    mb_text_t *text;
    int64_t route_timeout_ms; /* MOEBUS_ROUTE_TIMEOUT_MS */
    /* `moebus config set gate.threshold`, re-read once a second rather than
     * opening the catalog for every query (-1: the model's) */
    double threshold;
    int64_t threshold_at;
    /* The catalog's domains, reread only when the catalog changes (checked
     * per query through data_version, ~5 µs, instead of a 0.8 ms open and
     * read): a domain disabled or removed is out of the very next query. */
    mb_catalog_watch_t *watch;
    mb_domain_info_t *domains;
    size_t ndomains;
    /* cost accounting (ExpertRAG): since this gate started */
    int64_t queries, retrieved, internal, domains_searched, failed;
    int64_t us_route, us_embed, us_index, us_generate, us_total;
} gate_t;

static void s_fail(json_t *errors, const char *domain, const char *stage, int code,
                   const char *msg) {
    json_array_append_new(errors,
                          json_pack("{s:s, s:s, s:s, s:s}", "domain", domain, "stage",
                                    stage, "code", mb_err_name(code), "message", msg));
}

/* Error of a missing or failed reply. */
static int s_reply_code(mb_body_t *reply, char *msg, size_t msgsz, const char *service,
                        int timeout_ms) {
    if (!reply) {
        snprintf(msg, msgsz, "no reply from %s within %d ms", service, timeout_ms);
        return MB_ETIMEOUT;
    }
    mb_err_t err;
    int rc = mb_body_status(reply, &err);
    if (rc != 0) snprintf(msg, msgsz, "%s", err.msg);
    return rc;
}

/* ---- ask ---- */

typedef struct {
    uint64_t h[64];
    size_t n;
} stems_t;

static void s_on_stem(const char *tok, size_t len, void *arg) {
    stems_t *s = arg;
    uint64_t h = mb_text_hash(tok, len);
    for (size_t i = 0; i < s->n; i++)
        if (s->h[i] == h) return;
    if (s->n < 64) s->h[s->n++] = h;
}

typedef struct {
    const char *start;
    size_t len;
    int cite;
    double score;
} sentence_t;

/* The best-matching sentences of the top passages, each with its citation:
 * the answer when there is no generator (or it failed). A sentence scores
 * the share of the query's stems it holds, a little less for lower-ranked
 * passages. */
static json_t *s_extractive(gate_t *g, const char *query, json_t *results, size_t npass) {
    stems_t qs = {0};
    mb_err_t err;
    mb_text_tokenize(g->text, query, strlen(query), s_on_stem, &qs, &err);
    sentence_t *ss = NULL;
    size_t ns = 0, cap = 0;
    for (size_t r = 0; r < npass; r++) {
        const char *t = mb_json_str(json_array_get(results, r), "text", "");
        const char *p = t;
        while (*p) {
            while (*p == ' ' || *p == '\n' || *p == '\t')
                p++;
            if (!*p) break;
            const char *st = p;
            while (*p &&
                   !((*p == '.' || *p == '!' || *p == '?' || *p == ';') &&
                     (p[1] == ' ' || p[1] == '\n' || p[1] == 0)) &&
                   !(*p == '\n' && p[1] == '\n'))
                p++;
            if (*p) p++;
            size_t len = (size_t)(p - st);
            /* fragments (a headword line, "n.") make poor answers */
            size_t words = 0;
            for (size_t c = 0; c < len; c++)
                words += (c == 0 || st[c - 1] == ' ' || st[c - 1] == '\n') &&
                         st[c] != ' ' && st[c] != '\n';
            if (len < 3 || words < 4) continue;
            stems_t ts = {0};
            mb_text_tokenize(g->text, st, len, s_on_stem, &ts, &err);
            size_t hit = 0;
            for (size_t a = 0; a < qs.n; a++)
                for (size_t b = 0; b < ts.n; b++)
                    hit += qs.h[a] == ts.h[b];
            if (ns == cap) ss = realloc(ss, (cap = cap ? cap * 2 : 32) * sizeof *ss);
            ss[ns++] = (sentence_t){st, len, (int)r + 1,
                                    (qs.n ? (double)hit / (double)qs.n : 0) -
                                        0.05 * (double)r - 0.001 * (double)ns};
        }
    }
    /* the three best (the first even when nothing matches) */
    char *buf = NULL;
    size_t bl = 0;
    FILE *f = open_memstream(&buf, &bl);
    int used = 0;
    for (int pick = 0; pick < 3; pick++) {
        size_t best = ns;
        for (size_t i = 0; i < ns; i++)
            if (ss[i].score > -1e8 && (best == ns || ss[i].score > ss[best].score))
                best = i;
        if (best == ns || (pick > 0 && ss[best].score <= 0)) break;
        fprintf(f, "%s%.*s [%d]", used ? " " : "", (int)ss[best].len, ss[best].start,
                ss[best].cite);
        used++;
        ss[best].score = -1e9;
    }
    fclose(f);
    /* one line, single spaces: dictionary entries wrap and indent */
    size_t w = 0;
    for (size_t r = 0; buf && buf[r]; r++) {
        char ch = buf[r] == '\n' || buf[r] == '\t' ? ' ' : buf[r];
        if (ch == ' ' && (w == 0 || buf[w - 1] == ' ')) continue;
        buf[w++] = ch;
    }
    if (buf) buf[w] = 0;
    json_t *ans = json_string(buf ? buf : "");
    free(buf);
    free(ss);
    return ans;
}

/* Builds the answer fields of an ask reply. */
static json_t *s_answer(gate_t *g, json_t *j, const char *query, int internal,
                        json_t *results, json_t *errors, int64_t deadline) {
    json_t *out = json_object();
    /* which generator: the request's, the configured one, or the first */
    char gen[MB_DOMAIN_NAME_MAX + 1] = "";
    const char *want = mb_json_str(j, "generator", NULL);
    mb_generator_info_t *gs = NULL;
    size_t ng = 0;
    mb_err_t err;
    mb_catalog_generators(g->home, &gs, &ng, &err);
    if (want) {
        for (size_t i = 0; i < ng; i++)
            if (strcmp(gs[i].name, want) == 0) snprintf(gen, sizeof gen, "%s", want);
        if (!gen[0]) s_fail(errors, "-", "generate", MB_ENOTFOUND, "unknown generator");
    } else if (mb_catalog_setting_get(g->home, "ask.generator", gen, sizeof gen) != 0 &&
               ng > 0) {
        snprintf(gen, sizeof gen, "%s", gs[0].name);
    }
    free(gs);
    json_int_t budget = mb_json_int(j, "max_context_tokens", 1500);
    if (budget < 50) budget = 50;
    size_t npass = internal ? 0 : json_array_size(results);
    json_t *cites = json_array();
    char *ctx = NULL;
    size_t cl = 0;
    FILE *f = open_memstream(&ctx, &cl);
    json_int_t left = budget * 4; /* ~4 bytes per token */
    size_t used = 0;
    for (size_t r = 0; r < npass && left > 40; r++) {
        json_t *h = json_array_get(results, r);
        const char *t = mb_json_str(h, "text", "");
        size_t len = strlen(t);
        if ((json_int_t)len > left) len = (size_t)left;
        fprintf(f, "[%zu] (%s: %s)\n%.*s\n\n", r + 1, mb_json_str(h, "domain", ""),
                mb_json_str(h, "doc_id", ""), (int)len, t);
        left -= (json_int_t)len + 32;
        json_array_append_new(cites, json_pack("{s:I, s:s, s:s, s:s?, s:O?}", "n",
                                               (json_int_t)(r + 1), "domain",
                                               mb_json_str(h, "domain", ""), "doc_id",
                                               mb_json_str(h, "doc_id", ""), "source",
                                               mb_json_str(h, "source", NULL), "score",
                                               json_object_get(h, "score")));
        used++;
    }
    fclose(f);
    json_object_set_new(out, "citations", cites);
    if (gen[0] && mb_clock_ms() < deadline) {
        const char *sys =
            internal ? "Answer the question from your own knowledge. No documents "
                       "were found for it; say so if you are unsure."
                     : "Answer the question using only the numbered passages. Cite "
                       "the passages you use as [n]. If they do not contain the "
                       "answer, say so.";
        char *user = NULL;
        size_t ul = 0;
        FILE *uf = open_memstream(&user, &ul);
        if (used) fprintf(uf, "Passages:\n\n%s", ctx);
        fprintf(uf, "Question: %s", query);
        fclose(uf);
        char service[128];
        snprintf(service, sizeof service, "generate.%s", gen);
        mb_body_t *rq = mb_body_new(json_pack(
            "{s:s, s:[{s:s, s:s}, {s:s, s:s}], s:I}", "op", "generate", "messages",
            "role", "system", "content", sys, "role", "user", "content", user,
            "timeout_ms", (json_int_t)(deadline - mb_clock_ms())));
        free(user);
        json_t *mt = json_object_get(j, "max_tokens");
        if (mt) json_object_set(mb_body_json(rq), "max_tokens", mt);
        int64_t id = mb_client_send(g->client, service, &rq, NULL);
        mb_body_t *rr = NULL;
        if (id > 0) mb_client_gather(g->client, &id, 1, &rr, deadline);
        char msg[512];
        int rc = s_reply_code(rr, msg, sizeof msg, service, 0);
        if (rc == 0) {
            json_object_set_new(out, "answer",
                                json_string(mb_json_str(mb_body_json(rr), "text", "")));
            json_object_set_new(out, "answer_kind",
                                json_string(internal ? "internal" : "generated"));
            json_object_set_new(out, "generator", json_string(gen));
            mb_body_destroy(&rr);
            free(ctx);
            return out;
        }
        s_fail(errors, gen, "generate", rc, msg);
        mb_body_destroy(&rr);
    }
    free(ctx);
    if (internal) {
        json_object_set_new(
            out, "answer",
            json_string(gen[0] ? "No indexed domain covers this query, and the internal "
                                 "expert did not answer (see errors)."
                               : "No indexed domain covers this query, and no internal "
                                 "expert (generator) is configured."));
        json_object_set_new(out, "answer_kind", json_string("none"));
    } else {
        json_object_set_new(out, "answer", s_extractive(g, query, results, used));
        json_object_set_new(out, "answer_kind", json_string("extractive"));
    }
    return out;
}

static mb_body_t *s_search(gate_t *g, mb_body_t *req, int ask) {
    int64_t t0 = mb_clock_us();
    json_t *j = mb_body_json(req);
    mb_body_t *bad;
    const char *query = mb_svc_query(j, &bad);
    if (!query) return bad;
    json_t *jk = json_object_get(j, "k");
    json_int_t k = jk    ? (json_is_integer(jk) ? json_integer_value(jk) : -1)
                   : ask ? 5
                         : 10;
    if (k <= 0 || k > MAX_K)
        return mb_body_error(MB_EBADREQ, "\"k\" must be an integer in 1..%d", MAX_K);
    json_t *jt = json_object_get(j, "timeout_ms");
    json_int_t timeout = jt ? (json_is_integer(jt) ? json_integer_value(jt) : -1) : 5000;
    if (timeout < 1 || timeout > 600000)
        return mb_body_error(MB_EBADREQ,
                             "\"timeout_ms\" must be an integer in 1..600000");
    int64_t deadline = mb_clock_ms() + timeout;
    const char *mode = mb_json_str(j, "mode", "hybrid");
    if (mb_search_mode_parse(mode) < 0)
        return mb_body_error(MB_EBADREQ, "\"mode\" must be dense, lexical or hybrid");
    int lexical_only = strcmp(mode, "lexical") == 0;
    const char *retrieve = mb_json_str(j, "retrieve", "auto");
    if (strcmp(retrieve, "auto") != 0 && strcmp(retrieve, "always") != 0 &&
        strcmp(retrieve, "never") != 0)
        return mb_body_error(MB_EBADREQ, "\"retrieve\" must be auto, always or never");
    const char *dfu = mb_json_str(j, "domain_fusion", "rrf");
    if (strcmp(dfu, "weighted") != 0 && strcmp(dfu, "rrf") != 0)
        return mb_body_error(MB_EBADREQ, "\"domain_fusion\" must be weighted or rrf");
    json_t *jth = json_object_get(j, "gate_threshold");
    if (jth && (!json_is_number(jth) || json_number_value(jth) < 0 ||
                json_number_value(jth) > 1))
        return mb_body_error(MB_EBADREQ, "\"gate_threshold\" must be a number in 0..1");
    if (mb_clock_ms() - g->threshold_at >= 1000) {
        char buf[64];
        g->threshold =
            mb_catalog_setting_get(g->home, "gate.threshold", buf, sizeof buf) == 0
                ? atof(buf)
                : -1;
        g->threshold_at = mb_clock_ms();
    }
    double threshold = jth ? json_number_value(jth) : g->threshold;

    /* Candidate domains: the catalog's enabled ones, or the request's subset
     * of them. */
    mb_err_t err;
    if (mb_catalog_watch_changed(g->watch)) {
        mb_domain_info_t *fresh = NULL;
        size_t nfresh = 0;
        if (mb_catalog_domains(g->home, &fresh, &nfresh, &err) != 0)
            return mb_body_error(err.code, "%s", err.msg);
        free(g->domains);
        g->domains = fresh;
        g->ndomains = nfresh;
    }
    size_t nall = 0, ndisabled = 0;
    mb_domain_info_t *all = calloc(g->ndomains ? g->ndomains : 1, sizeof *all);
    for (size_t i = 0; i < g->ndomains; i++) {
        if (g->domains[i].enabled)
            all[nall++] = g->domains[i];
        else
            ndisabled++;
    }
    json_t *jd = json_object_get(j, "domains");
    mb_domain_info_t *cand = calloc(nall ? nall : 1, sizeof *cand);
    size_t ncand = 0;
    if (jd) {
        if (!json_is_array(jd)) {
            free(all);
            free(cand);
            return mb_body_error(MB_EBADREQ,
                                 "\"domains\" must be an array of domain names");
        }
        size_t i;
        json_t *v;
        json_array_foreach(jd, i, v) {
            const char *name = json_string_value(v);
            size_t a = 0;
            while (name && a < nall && strcmp(all[a].name, name) != 0)
                a++;
            if (!name || a == nall) {
                int off = 0;
                for (size_t d = 0; name && d < g->ndomains; d++)
                    off |= strcmp(g->domains[d].name, name) == 0;
                mb_body_t *e =
                    mb_body_error(MB_EUNKDOMAIN,
                                  off ? "domain '%s' is disabled" : "unknown domain '%s'",
                                  name ? name : "(not a string)");
                free(all);
                free(cand);
                return e;
            }
            int dup = 0;
            for (size_t c = 0; c < ncand; c++)
                dup |= strcmp(cand[c].name, name) == 0;
            if (!dup) cand[ncand++] = all[a];
        }
    } else {
        memcpy(cand, all, nall * sizeof *all);
        ncand = nall;
    }
    json_t *jsh = json_object_get(j, "shared");
    if (jsh) {
        size_t a = 0;
        while (json_is_string(jsh) && a < nall &&
               strcmp(all[a].name, json_string_value(jsh)))
            a++;
        if (!json_is_string(jsh) || a == nall) {
            mb_body_t *e = mb_body_error(MB_EUNKDOMAIN, "unknown shared domain '%s'",
                                         json_is_string(jsh) ? json_string_value(jsh)
                                                             : "(not a string)");
            free(all);
            free(cand);
            return e;
        }
    }
    free(all);

    /* Route. Explicit domains are searched as asked; otherwise the router
     * picks (top-p), and when it cannot answer every domain is searched and
     * the trace says why. */
    double *probs = calloc(ncand ? ncand : 1, sizeof *probs);
    size_t *order = calloc(ncand ? ncand : 1, sizeof *order);
    size_t nsel = 0;
    json_t *scores = json_object();
    json_t *rtrace = json_object(), *gtrace = json_object();
    int internal = 0;
    if (jd || ncand == 0) {
        mb_router_uniform(ncand, probs);
        nsel = ncand ? mb_router_top_p(probs, ncand, 1.0, 0, order) : 0;
        for (size_t i = 0; i < ncand; i++)
            json_object_set_new(scores, cand[i].name, json_real(probs[i]));
        json_object_set_new(rtrace, "model", json_string(jd ? "explicit" : "none"));
        json_object_set_new(gtrace, "reason",
                            json_string(jd ? "domains given by the request"
                                           : "no domain in the catalog"));
        internal = ncand == 0 || strcmp(retrieve, "never") == 0;
    } else {
        mb_body_t *rq =
            mb_body_new(json_pack("{s:s, s:s}", "op", "route", "query", query));
        static const char *rpass[] = {"p", "max_domains", "router", "shared"};
        for (size_t i = 0; i < sizeof rpass / sizeof *rpass; i++) {
            json_t *v = json_object_get(j, rpass[i]);
            if (v) json_object_set(mb_body_json(rq), rpass[i], v);
        }
        if (ndisabled) {
            /* top-p over the enabled domains only, so a disabled domain's
             * probability mass does not crowd out the others (FlexOlmo's
             * opt-out: no retraining); the router's gate still sees them */
            json_t *names = json_array();
            for (size_t d = 0; d < g->ndomains; d++)
                if (!g->domains[d].enabled)
                    json_array_append_new(names, json_string(g->domains[d].name));
            json_object_set_new(mb_body_json(rq), "exclude", names);
        }
        /* the router answers in well under a millisecond: a slow or dead one
         * must not cost every query the whole deadline */
        int64_t rdl = mb_clock_ms() + g->route_timeout_ms < deadline
                          ? mb_clock_ms() + g->route_timeout_ms
                          : deadline;
        int64_t rid = mb_client_send(g->client, "router", &rq, NULL);
        mb_body_t *rr = NULL;
        if (rid > 0) mb_client_gather(g->client, &rid, 1, &rr, rdl);
        char rmsg[512];
        int rrc =
            s_reply_code(rr, rmsg, sizeof rmsg, "router", (int)(rdl - mb_clock_ms()));
        if (rrc == MB_EBADREQ) { /* the request's routing fields are wrong */
            mb_body_destroy(&rr);
            json_decref(scores);
            json_decref(rtrace);
            json_decref(gtrace);
            free(probs);
            free(order);
            free(cand);
            return mb_body_error(MB_EBADREQ, "%s", rmsg);
        }
        if (rrc == 0) {
            json_t *rj = mb_body_json(rr);
            json_t *chosen = json_object_get(rj, "chosen");
            json_object_update(scores, json_object_get(rj, "scores"));
            /* the chosen domains, in the router's order, that the catalog
             * still has */
            mb_domain_info_t *sel = calloc(ncand, sizeof *sel);
            size_t i;
            json_t *v;
            json_array_foreach(chosen, i, v) {
                for (size_t c = 0; c < ncand; c++)
                    if (strcmp(cand[c].name, json_string_value(v)) == 0 && nsel < ncand) {
                        sel[nsel] = cand[c];
                        probs[nsel] = json_real_value(
                            json_object_get(json_object_get(rj, "scores"), cand[c].name));
                        order[nsel] = nsel;
                        nsel++;
                    }
            }
            /* Domains the model does not know yet (added since it was trained:
             * the router retrains within seconds) are searched too, so a new
             * domain answers from its first document. They follow the routed
             * ones, from nrouted on. */
            size_t nrouted = nsel;
            json_t *unrouted = json_array();
            for (size_t c = 0; c < ncand; c++)
                if (!json_object_get(json_object_get(rj, "scores"), cand[c].name) &&
                    nsel < ncand) {
                    sel[nsel] = cand[c];
                    probs[nsel] = 0;
                    order[nsel] = nsel;
                    nsel++;
                    json_array_append_new(unrouted, json_string(cand[c].name));
                }
            if (json_array_size(unrouted) > 0)
                json_object_set(rtrace, "unrouted", unrouted);
            json_decref(unrouted);
            memcpy(cand, sel, nsel * sizeof *sel);
            free(sel);
            json_t *rg = json_object_get(rj, "gate");
            double p_in = json_real_value(json_object_get(rg, "p_in"));
            if (threshold < 0)
                threshold = json_real_value(json_object_get(rj, "threshold"));
            json_object_set(rtrace, "model", json_object_get(rj, "model"));
            json_object_set(rtrace, "router", json_object_get(rj, "router"));
            json_object_set(rtrace, "chosen", chosen);
            json_object_set(rtrace, "route_us", json_object_get(rj, "route_us"));
            json_object_set_new(gtrace, "p_in", json_real(p_in));
            json_object_set_new(gtrace, "threshold", json_real(threshold));
            json_object_set(gtrace, "features", json_object_get(rg, "features"));
            if (strcmp(retrieve, "always") == 0) {
                json_object_set_new(gtrace, "reason", json_string("retrieve: always"));
            } else if (strcmp(retrieve, "never") == 0) {
                internal = 1;
                json_object_set_new(gtrace, "reason", json_string("retrieve: never"));
            } else if (p_in < threshold && nsel > nrouted) {
                /* the model cannot speak for domains it has not seen: search
                 * those rather than give up */
                memmove(cand, cand + nrouted, (nsel - nrouted) * sizeof *cand);
                nsel -= nrouted;
                for (size_t s = 0; s < nsel; s++)
                    order[s] = s;
                json_object_set_new(
                    gtrace, "reason",
                    json_sprintf("p_in %.3f < threshold %.3f, but the router's model "
                                 "does not know every domain yet: searching those",
                                 p_in, threshold));
            } else if (p_in < threshold) {
                internal = 1;
                json_object_set_new(
                    gtrace, "reason",
                    json_sprintf("p_in %.3f < threshold %.3f: no indexed domain seems "
                                 "to cover the query",
                                 p_in, threshold));
            } else {
                json_object_set_new(
                    gtrace, "reason",
                    json_sprintf("p_in %.3f >= threshold %.3f", p_in, threshold));
            }
            if (nsel == 0 && !internal) { /* chosen domains gone from the catalog */
                internal = 1;
                json_object_set_new(gtrace, "reason",
                                    json_string("the routed domains are no longer in "
                                                "the catalog"));
            }
        } else {
            mb_router_uniform(ncand, probs);
            nsel = mb_router_top_p(probs, ncand, 1.0, 0, order);
            for (size_t c = 0; c < ncand; c++)
                json_object_set_new(scores, cand[c].name, json_real(probs[c]));
            json_object_set_new(rtrace, "model", json_string("uniform"));
            json_object_set_new(rtrace, "error", json_string(rmsg));
            json_object_set_new(
                gtrace, "reason",
                json_sprintf("router unavailable (%s): every domain", rmsg));
            internal = strcmp(retrieve, "never") == 0;
        }
        mb_body_destroy(&rr);
    }
    if (internal) nsel = 0;
    json_object_set_new(gtrace, "decision",
                        json_string(internal ? "internal" : "retrieve"));
    json_object_set(rtrace, "scores", scores);
    int64_t t_route = mb_clock_us();

    json_t *errors = json_array();
    json_t *searched = json_array();
    int64_t *ids = calloc(nsel ? nsel : 1, sizeof *ids);
    mb_body_t **replies = calloc(nsel ? nsel : 1, sizeof *replies);
    mb_body_t **embeds = calloc(nsel ? nsel : 1, sizeof *embeds);
    json_t **lists = calloc(nsel ? nsel : 1, sizeof *lists);
    const char **labels = calloc(nsel ? nsel : 1, sizeof *labels);
    char service[128], msg[512];

    /* Stage 1: embed the query with every chosen domain's expert (not
     * needed for lexical search). */
    for (size_t s = 0; s < nsel; s++) {
        const mb_domain_info_t *d = &cand[order[s]];
        labels[s] = d->name;
        json_array_append_new(searched, json_string(d->name));
        ids[s] = 0;
        if (lexical_only) continue;
        snprintf(service, sizeof service, "embed.%s", d->name);
        mb_body_t *r = mb_body_new(json_pack("{s:s, s:[s], s:s}", "op", "embed", "texts",
                                             query, "kind", "query"));
        ids[s] = mb_client_send(g->client, service, &r, NULL);
    }
    if (!lexical_only) mb_client_gather(g->client, ids, nsel, embeds, deadline);
    int64_t t_embed = mb_clock_us();

    /* Stage 2: search each domain that produced a vector (or, in hybrid
     * mode, whose expert is not fitted yet: lexical only, noted). An index
     * whose expert changed since the embed says `version`: those domains are
     * embedded and searched once more. */
    json_t *notes = json_object();
    size_t ok = 0;
    int64_t t_index = mb_clock_us();
    for (int round = 0; round < 2; round++) {
        size_t again = 0;
        for (size_t s = 0; s < nsel; s++) {
            if (round == 1 && ids[s] != -2) {
                ids[s] = -1;
                continue;
            }
            ids[s] = -1;
            snprintf(service, sizeof service, "embed.%s", labels[s]);
            int rc = lexical_only ? 0
                                  : s_reply_code(embeds[s], msg, sizeof msg, service,
                                                 (int)timeout);
            size_t nf = 0;
            const float *v =
                rc == 0 && !lexical_only ? mb_body_vectors(embeds[s], 0, &nf) : NULL;
            const char *dmode = mode;
            if (rc == 0 && !lexical_only && (!v || nf == 0)) {
                if (strcmp(mode, "dense") == 0) {
                    rc = MB_EUNAVAIL;
                    snprintf(msg, sizeof msg,
                             "domain %s has no dense expert yet (not fitted): search "
                             "lexical or hybrid",
                             labels[s]);
                } else {
                    json_object_set_new(
                        notes, labels[s],
                        json_string("expert not fitted yet: lexical only"));
                }
            }
            if (rc != 0) {
                s_fail(errors, labels[s], "embed", rc, msg);
                continue;
            }
            snprintf(service, sizeof service, "index.%s", labels[s]);
            mb_body_t *r = mb_body_new(json_pack("{s:s, s:I, s:s, s:s}", "op", "search",
                                                 "k", k, "mode", dmode, "query", query));
            /* passed through as given; the index validates them */
            static const char *pass[] = {"filter", "nprobe", "efSearch",
                                         "fusion", "alpha",  "rrf_k"};
            for (size_t p = 0; p < sizeof pass / sizeof *pass; p++) {
                json_t *pv = json_object_get(j, pass[p]);
                if (pv) json_object_set(mb_body_json(r), pass[p], pv);
            }
            if (v) {
                json_t *model = json_object_get(mb_body_json(embeds[s]), "model");
                if (json_is_string(model))
                    json_object_set(mb_body_json(r), "expert", model);
                json_object_set_new(mb_body_json(r), "dim", json_integer((json_int_t)nf));
                mb_body_add_vectors(r, v, nf);
            }
            ids[s] = mb_client_send(g->client, service, &r, NULL);
        }
        {
            /* gather clears its slots: collect this round's replies aside */
            mb_body_t **got = calloc(nsel ? nsel : 1, sizeof *got);
            mb_client_gather(g->client, ids, nsel, got, deadline);
            for (size_t s = 0; s < nsel; s++)
                if (ids[s] >= 0) replies[s] = got[s];
            free(got);
        }
        t_index = mb_clock_us();
        for (size_t s = 0; s < nsel; s++) {
            if (ids[s] < 0) continue; /* failed at embed */
            snprintf(service, sizeof service, "index.%s", labels[s]);
            int rc = s_reply_code(replies[s], msg, sizeof msg, service, (int)timeout);
            if (rc == MB_EVERSION && round == 0) {
                /* re-embed this domain's query with its new expert */
                mb_body_destroy(&replies[s]);
                mb_body_destroy(&embeds[s]);
                snprintf(service, sizeof service, "embed.%s", labels[s]);
                mb_body_t *r = mb_body_new(json_pack("{s:s, s:[s], s:s}", "op", "embed",
                                                     "texts", query, "kind", "query"));
                int64_t id = mb_client_send(g->client, service, &r, NULL);
                mb_client_gather(g->client, &id, 1, &embeds[s], deadline);
                ids[s] = -2;
                again++;
                continue;
            }
            if (rc != 0) {
                s_fail(errors, labels[s], "index", rc, msg);
                continue;
            }
            lists[s] = json_object_get(mb_body_json(replies[s]), "results");
            ok++;
        }
        if (!again) break;
    }

    /* Stage 3: fuse. */
    /* Cross-domain merge: reciprocal rank ("rrf", the default), or with each
     * domain weighted by the router's probability ("weighted"; domains the
     * model does not know yet weigh as its least likely chosen one).
     * Weighting measured worse on the dict set (routed nDCG@10 0.396 against
     * 0.451): with a router right 52% of the time it amplifies its mistakes. */
    double *w = calloc(nsel ? nsel : 1, sizeof *w), wmin = 1;
    for (size_t s = 0; s < nsel; s++)
        if (probs[order[s]] > 0 && probs[order[s]] < wmin) wmin = probs[order[s]];
    for (size_t s = 0; s < nsel; s++)
        w[s] = probs[order[s]] > 0 ? probs[order[s]] : wmin;
    const char *df = mb_json_str(j, "domain_fusion", "rrf");
    json_t *results = mb_fusion_rrf_weighted(
        lists, labels, strcmp(df, "rrf") == 0 ? NULL : w, nsel, (int)k, RRF_K);
    free(w);
    int64_t t_fuse = mb_clock_us();
    mb_body_t *reply;
    if (ok == 0 && json_array_size(errors) > 0) {
        json_t *first = json_array_get(errors, 0);
        reply =
            mb_body_error(mb_err_from_name(mb_json_str(first, "code", "internal")),
                          "no domain answered: %s", mb_json_str(first, "message", ""));
        json_object_set(mb_body_json(reply), "errors", errors);
        json_decref(results);
        g->failed++;
    } else {
        json_t *answer = NULL;
        int64_t t_gen0 = mb_clock_us();
        if (ask) answer = s_answer(g, j, query, internal, results, errors, deadline);
        int64_t t_gen = mb_clock_us() - t_gen0;
        json_t *timings = json_pack(
            "{s:I, s:I, s:I, s:I, s:I, s:I}", "route_us", (json_int_t)(t_route - t0),
            "embed_us", (json_int_t)(t_embed - t_route), "index_us",
            (json_int_t)(t_index - t_embed), "fuse_us", (json_int_t)(t_fuse - t_index),
            "generate_us", (json_int_t)t_gen, "total_us",
            (json_int_t)(mb_clock_us() - t0));
        json_object_set(gtrace, "domains", searched);
        reply = mb_body_ok(json_pack(
            "{s:s, s:s, s:o, s:b, s:O, s:O, s:O, s:I, s:o}", "query", query, "mode", mode,
            "results", results, "partial", json_array_size(errors) > 0, "errors", errors,
            "router", rtrace, "gate", gtrace, "domains_searched",
            (json_int_t)json_array_size(searched), "timings", timings));
        if (internal && !ask)
            json_object_set_new(mb_body_json(reply), "message",
                                json_string("no indexed domain covers this query"));
        if (answer) json_object_update(mb_body_json(reply), answer);
        json_decref(answer);
        if (json_object_size(notes) > 0)
            json_object_set(mb_body_json(reply), "notes", notes);
        g->queries++;
        if (internal)
            g->internal++;
        else
            g->retrieved++;
        g->domains_searched += (int64_t)json_array_size(searched);
        g->us_route += t_route - t0;
        g->us_embed += t_embed - t_route;
        g->us_index += t_index - t_embed;
        g->us_generate += t_gen;
        g->us_total += mb_clock_us() - t0;
    }
    json_decref(scores);
    json_decref(rtrace);
    json_decref(gtrace);
    json_decref(notes);
    json_decref(errors);
    json_decref(searched);
    for (size_t s = 0; s < nsel; s++) {
        mb_body_destroy(&replies[s]);
        mb_body_destroy(&embeds[s]);
    }
    free(ids);
    free(replies);
    free(embeds);
    free(lists);
    free(labels);
    free(probs);
    free(order);
    free(cand);
    return reply;
}

static mb_body_t *s_stats(gate_t *g) {
    double q = g->queries ? (double)g->queries : 1;
    return mb_body_ok(json_pack(
        "{s:I, s:I, s:I, s:I, s:f, s:f, s:{s:f, s:f, s:f, s:f, s:f}}", "queries",
        (json_int_t)g->queries, "retrieved", (json_int_t)g->retrieved, "internal",
        (json_int_t)g->internal, "failed", (json_int_t)g->failed,
        "skipped_retrieval_share", (double)g->internal / q, "avg_domains_searched",
        (double)g->domains_searched / q, "avg_ms", "route", g->us_route / q / 1000,
        "embed", g->us_embed / q / 1000, "index", g->us_index / q / 1000, "generate",
        g->us_generate / q / 1000, "total", g->us_total / q / 1000));
}

static mb_body_t *s_handle(void *state, mb_body_t *req, mb_worker_t *worker) {
    (void)worker; /* its pulse thread heartbeats while we wait on the domains */
    const char *op = mb_json_str(mb_body_json(req), "op", "search");
    if (strcmp(op, "search") == 0) return s_search(state, req, 0);
    if (strcmp(op, "ask") == 0) return s_search(state, req, 1);
    if (strcmp(op, "stats") == 0) return s_stats(state);
    return mb_body_error(MB_EBADREQ, "unknown op '%s' (search, ask, stats)", op);
}

int mb_gate_main(int argc, char **argv) {
    mb_svc_opts_t o;
    int done, prc = mb_svc_parse(argc, argv, s_usage, 0, &o, &done);
    if (done) return prc;
    const char *home = o.home, *endpoint = o.endpoint;
    mb_log_init("gate");
    mb_svc_signals();
    mb_err_t err;
    gate_t g = {.home = home,
                .client = mb_client_new(endpoint, &err),
                .text = mb_text_new(),
                .route_timeout_ms = 500,
                .threshold = -1,
                .threshold_at = -1000000};
    const char *ert = getenv("MOEBUS_ROUTE_TIMEOUT_MS");
    if (ert && atol(ert) > 0) g.route_timeout_ms = atol(ert);
    if (!g.client) {
        mb_error("%s", err.msg);
        return 1;
    }
    g.watch = mb_catalog_watch_new(home);
    int rc = mb_svc_run(endpoint, "gate", s_handle, NULL, &g);
    mb_catalog_watch_destroy(&g.watch);
    free(g.domains);
    mb_client_destroy(&g.client);
    mb_text_destroy(&g.text);
    return rc;
}
