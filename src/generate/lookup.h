/* lookup.h - prompt lookup: draft-free proposals for speculative decoding. Output that repeats
 * its input (editing a text, quoting a passage) continues as it did the last time the same few
 * tokens occurred, so those following tokens are worth verifying. */
#ifndef TY_GENERATE_LOOKUP_H
#define TY_GENERATE_LOOKUP_H

#include <stdint.h>

#include "trainyard.h"

/* The longest n-gram tried first; shorter ones down to the shortest. Single tokens match too
 * often to be worth a verification slot. */
#define TY_LOOKUP_NGRAM_MAX 3
#define TY_LOOKUP_NGRAM_MIN 2

/* Finds the latest earlier occurrence of the last n tokens of seq[0..n_seq) (n from
 * TY_LOOKUP_NGRAM_MAX down to TY_LOOKUP_NGRAM_MIN) and copies up to max of the tokens that followed
 * it into out. Returns how many were written (0: no match). */
int64_t ty_lookup_propose(const ty_token *seq, int64_t n_seq, int64_t max, ty_token *out);

#endif
