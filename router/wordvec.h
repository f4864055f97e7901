/* wordvec.h — pretrained word vectors (GloVe text format: "word v1 ... vD" per
 * line, most frequent first) as the router's shared base encoder: a text is
 * the SIF-weighted mean of its words' vectors (Arora et al. 2017: weight
 * a / (a + p(w)), p(w) from the word's frequency rank by Zipf's law). The
 * pilot router (RouterRetriever) compares queries in this one space. */
#ifndef MB_WORDVEC_H
#define MB_WORDVEC_H

#include <stddef.h>

#include "mb_error.h"

typedef struct mb_wordvec_t mb_wordvec_t;

mb_wordvec_t *mb_wordvec_load(const char *path, mb_err_t *err);
void mb_wordvec_destroy(mb_wordvec_t **self_p);
int mb_wordvec_dim(const mb_wordvec_t *self);
size_t mb_wordvec_words(const mb_wordvec_t *self);
/* Embeds text into out (dim floats, L2-normalised; zero when no word is
 * known). Returns how many words were found. Thread-safe (read-only). */
int mb_wordvec_embed(const mb_wordvec_t *self, const char *text, float *out);

#endif
