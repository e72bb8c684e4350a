/* sampling.h - the sampler's inner workings, for speculative decoding: the exact distribution
 * ty_sampler_sample draws from, and the sampler's random stream. */
#ifndef TY_GENERATE_SAMPLING_H
#define TY_GENERATE_SAMPLING_H

#include <stdbool.h>
#include <stdint.h>

#include "trainyard.h"

/* A distribution over token ids: n candidates with probabilities summing to 1, most likely first
 * (ties: lower id first). Buffers grow as needed; free with ty_token_dist_free. */
typedef struct ty_token_dist {
    ty_token *id;
    double *p;
    int64_t n, cap;
} ty_token_dist;

void ty_token_dist_free(ty_token_dist *d);
/* Copies src into dst (growing dst). */
int ty_token_dist_copy(ty_token_dist *dst, const ty_token_dist *src);
/* Probability of `tok` under d (0 if it is not a candidate). */
double ty_token_dist_prob(const ty_token_dist *d, ty_token tok);
/* The first candidate at which the running sum of probabilities exceeds u (u in [0, 1); d
 * normalized); the last one if rounding leaves u above every sum. */
ty_token ty_token_dist_pick(const ty_token_dist *d, double u);

/* The distribution ty_sampler_sample(s, logits, ...) draws from, given the tokens accepted so
 * far: repetition penalty, top-k, top-p, min-p, temperature. A greedy sampler (temperature <= 0)
 * gives its argmax with probability 1. Drawing u = ty_sampler_uniform(s) and picking
 * ty_token_dist_pick(d, u) is exactly ty_sampler_sample. */
int ty_sampler_dist(ty_sampler *s, const float *logits, int64_t n_vocab, ty_token_dist *d);

/* The next number of the sampler's random stream, uniform in [0, 1). */
double ty_sampler_uniform(ty_sampler *s);

bool ty_sampler_is_greedy(const ty_sampler *s);
ty_sampler_params ty_sampler_get_params(const ty_sampler *s);

#endif
