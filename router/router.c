/* router.c — uniform scorer and top-p selection. */
#include "router.h"

void mb_router_uniform(size_t n, double *probs) {
    for (size_t i = 0; i < n; i++)
        probs[i] = 1.0 / (double)n;
}

size_t mb_router_top_p(const double *probs, size_t n, double p, size_t max_domains,
                       size_t *order) {
    for (size_t i = 0; i < n; i++)
        order[i] = i;
    /* insertion sort, stable: n is the number of domains (tens) */
    for (size_t i = 1; i < n; i++) {
        size_t v = order[i], j = i;
        while (j > 0 && probs[order[j - 1]] < probs[v]) {
            order[j] = order[j - 1];
            j--;
        }
        order[j] = v;
    }
    size_t cap = (max_domains == 0 || max_domains > n) ? n : max_domains;
    double cum = 0;
    size_t chosen = 0;
    /* a small epsilon so p = 1.0 with float rounding still stops */
    while (chosen < cap) {
        cum += probs[order[chosen]];
        chosen++;
        if (cum >= p - 1e-9) break;
    }
    return chosen;
}

void mb_router_restrict(double *probs, size_t n, const unsigned char *keep) {
    double sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += keep[i] ? probs[i] : 0;
    if (sum <= 0) return;
    for (size_t i = 0; i < n; i++)
        probs[i] = keep[i] ? probs[i] / sum : 0;
}
