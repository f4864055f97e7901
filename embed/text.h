/* text.h — text normalisation and tokenisation shared by embedders (and later
 * the lexical index): Unicode NFKC + case folding + accent stripping
 * (utf8proc), split on anything that is not a letter or digit, English stop
 * words dropped, Snowball English stemming (libstemmer). */
#ifndef MB_TEXT_H
#define MB_TEXT_H

#include <stddef.h>
#include <stdint.h>

#include "mb_error.h"

typedef struct mb_text_t mb_text_t;

mb_text_t *mb_text_new(void);
void mb_text_destroy(mb_text_t **self_p);

/* Calls fn once per token (stemmed, NUL-terminated, valid for the call only).
 * Returns MB_EBADREQ for invalid UTF-8. Not thread-safe per mb_text_t. */
typedef void(mb_text_token_fn)(const char *tok, size_t len, void *arg);
int mb_text_tokenize(mb_text_t *self, const char *text, size_t len, mb_text_token_fn *fn,
                     void *arg, mb_err_t *err);

/* 64-bit hash of a token (FNV-1a with a final avalanche, so every bit
 * depends on every byte): hashed features and the experts' rare-term sets. */
uint64_t mb_text_hash(const char *s, size_t n);

/* Acronym keys, "~" + lower-case letters, for matching an acronym to its
 * expansion ("Public Remote-Access Computer Standards Association" -> the key
 * of "PRACSA"). A passage offers, per phrase (text between punctuation), the
 * upper-case letters and digits of the phrase and the initials of its
 * content words, plus every all-capitals word; a query offers each of its
 * words. ASCII only: acronyms are. */
void mb_text_acronyms(const char *text, size_t len, int is_query, mb_text_token_fn *fn,
                      void *arg);

#endif
