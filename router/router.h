/* router.h — choosing the domains a query goes to.
 *
 * For now the router is uniform (every live domain gets the same score) and
 * the gate searches them all; the learned router (issue 5) produces real
 * probabilities. Top-p selection is already the rule the gate applies, so
 * swapping the scorer changes nothing downstream. */
#ifndef MB_ROUTER_H
#define MB_ROUTER_H

#include <stddef.h>

/* Uniform probabilities over n domains. */
void mb_router_uniform(size_t n, double *probs);

/* Zeroes the domains whose keep[d] is 0 and renormalises the rest (all zero:
 * left as is). For a softmax this equals the softmax over the kept domains
 * alone, so excluding domains needs no second scoring. */
void mb_router_restrict(double *probs, size_t n, const unsigned char *keep);

/* Top-p selection: domains in decreasing probability until their cumulative
 * probability reaches p, at most max_domains (0 = no cap), at least one when
 * n > 0. Writes chosen indices to order (capacity n), returns how many. Ties
 * keep the input order. */
size_t mb_router_top_p(const double *probs, size_t n, double p, size_t max_domains,
                       size_t *order);

#endif
