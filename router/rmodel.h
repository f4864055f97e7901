/* rmodel.h — the learned query router and the retrieval gate's model.
 *
 * Trained without labels from pseudo-queries drawn from each domain's own
 * passages (rmodel.c explains the kinds), plus optional labelled queries.
 * For a query it gives:
 *   - calibrated probabilities over the domains (multinomial logistic
 *     regression over hashed lexical features, and per-domain features: how
 *     much of the query the domain's vocabulary covers, the query's
 *     likelihood under the domain's term statistics, its similarity to the
 *     domain's centroid in the domain's own expert space, and to the
 *     domain's pilot embeddings), temperature-scaled on held-out queries;
 *   - the pilot router's probabilities (RouterRetriever's instance-level
 *     pilots: the domain whose pilot embeddings are nearest wins);
 *   - the gate's features and its probability that some indexed domain
 *     covers the query (learned from in-scope pseudo-queries against the
 *     same queries with their own domain left out).
 *
 * A model is immutable once trained or loaded, except for its scratch
 * state: score from one thread at a time. */
#ifndef MB_RMODEL_H
#define MB_RMODEL_H

#include <stddef.h>
#include <stdint.h>

#include "mb_error.h"
#include "wordvec.h"

typedef struct mb_rmodel_t mb_rmodel_t;

typedef struct {
    const char *name; /* domain name */
    const char *dir;  /* domain directory: store.db, expert.json, model file */
} mb_rdomain_t;

typedef struct {
    const char *query;
    const char *domain;
} mb_rlabel_t;

typedef struct {
    size_t pseudo_per_domain; /* pseudo-queries per domain (default 800) */
    size_t sample;            /* passages read per domain (default 20000) */
    const mb_rlabel_t *labels;
    size_t nlabels;
    unsigned seed;
    /* the pilots' shared base encoder (must outlive the model), or NULL for
     * a hashed term space */
    const mb_wordvec_t *wordvec;
} mb_rtrain_opts_t;

/* Gate features, in this order (mb_rmodel_gate_names gives their names). */
#define MB_RGATE_NFEAT 9

typedef struct {
    double feat[MB_RGATE_NFEAT];
    double p_in; /* probability that some indexed domain covers the query */
} mb_rgate_t;

/* Domains with no passages are left out of the model (nothing to route
 * to). Fails with MB_ENOTFOUND when no domain has passages. */
mb_rmodel_t *mb_rmodel_train(const mb_rdomain_t *domains, size_t n,
                             const mb_rtrain_opts_t *opts, mb_err_t *err);
void mb_rmodel_destroy(mb_rmodel_t **self_p);

/* Serialised model (zlib-compressed; *blob malloc'ed). */
int mb_rmodel_save(const mb_rmodel_t *self, void **blob, size_t *size, mb_err_t *err);
/* Loads a saved model and opens the domains' experts (dir per name, from
 * domains; a domain of the model missing there keeps no dense feature).
 * MB_EVERSION for another format. */
mb_rmodel_t *mb_rmodel_load(const void *blob, size_t size, const mb_rdomain_t *domains,
                            size_t n, const mb_wordvec_t *wv, mb_err_t *err);
/* Whether the model's pilots were made with word vectors. */
int mb_rmodel_uses_wordvec(const mb_rmodel_t *self);

size_t mb_rmodel_ndomains(const mb_rmodel_t *self);
const char *mb_rmodel_domain(const mb_rmodel_t *self, size_t i);
/* Index of a domain name, or -1. */
int mb_rmodel_find(const mb_rmodel_t *self, const char *name);
/* The expert version and the highest chunk id the model saw for domain i
 * (what the router's signature compares: O(1) to read from a store). */
const char *mb_rmodel_domain_expert(const mb_rmodel_t *self, size_t i);
int64_t mb_rmodel_domain_chunks(const mb_rmodel_t *self, size_t i);
const char *mb_rmodel_version(const mb_rmodel_t *self);
/* The gate's default threshold on p_in: keeps 98% of the in-scope held-out
 * pseudo-queries retrieving. */
double mb_rmodel_threshold(const mb_rmodel_t *self);

typedef struct {
    size_t examples;      /* pseudo-queries + labels */
    size_t heldout;       /* of which held out for calibration */
    double heldout_acc;   /* learned router top-1 on the held-out pseudo-queries */
    double pilot_acc;     /* pilot router top-1 on the same */
    double temperature;   /* learned router's calibration */
    double gate_in_rate;  /* held-out in-scope sent to retrieval (default threshold) */
    double gate_out_rate; /* held-out own-domain-removed sent to internal */
    double train_ms;
} mb_rmodel_stats_t;
void mb_rmodel_stats(const mb_rmodel_t *self, mb_rmodel_stats_t *st);

enum { MB_ROUTER_LEARNED = 0, MB_ROUTER_PILOT = 1 };

/* Scores query over the model's domains. allowed: NULL for all, else one
 * flag per domain (others get probability 0). probs: one per domain (sums
 * to 1 over the allowed). gate: features and p_in over the domains top-p
 * (p, max_domains) would choose. MB_EBADREQ for invalid UTF-8. */
int mb_rmodel_score(mb_rmodel_t *self, const char *query, int router,
                    const unsigned char *allowed, double p, size_t max_domains,
                    double *probs, mb_rgate_t *gate, mb_err_t *err);

const char *const *mb_rmodel_gate_names(void);

#endif
