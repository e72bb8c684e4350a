/* sampler.c - turning logits into a token: repetition penalty, then top-k, top-p and min-p
 * filters on the candidates, then temperature and a draw from the softmax (or argmax when the
 * temperature is 0). The random stream is splitmix64 seeded by the caller: same seed, same text. */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "generate/sampling.h"

typedef struct candidate {
    float logit;
    int32_t id;
} candidate;

struct ty_sampler {
    ty_sampler_params p;
    uint64_t rng;
    ty_token *recent; /* ring of the last repeat_last_n accepted tokens */
    int32_t n_recent, head;
    candidate *cand;
    int64_t cand_cap;
    ty_token_dist dist; /* scratch of ty_sampler_sample */
};

ty_sampler_params ty_sampler_default_params(void) {
    ty_sampler_params p = {.temperature = 0.8f, .top_k = 40, .top_p = 0.95f, .min_p = 0.05f,
                           .repeat_penalty = 1.0f, .repeat_last_n = 64, .seed = 0x5EEDu};
    return p;
}

int ty_sampler_new(const ty_sampler_params *params, ty_sampler **out) {
    if (!out) return TY_ERR_INVALID_ARG;
    *out = NULL;
    ty_sampler_params p = params ? *params : ty_sampler_default_params();
    if (!(p.temperature == p.temperature) || !(p.top_p == p.top_p) || !(p.min_p == p.min_p) ||
        !(p.repeat_penalty > 0) || p.repeat_last_n < 0)
        return TY_ERR_INVALID_ARG;
    ty_sampler *s = calloc(1, sizeof *s);
    if (!s) return TY_ERR_NOMEM;
    s->p = p;
    s->rng = p.seed;
    if (p.repeat_last_n > 0) {
        s->recent = calloc((size_t)p.repeat_last_n, sizeof *s->recent);
        if (!s->recent) { free(s); return TY_ERR_NOMEM; }
    }
    *out = s;
    return TY_OK;
}

void ty_sampler_free(ty_sampler *s) {
    if (!s) return;
    free(s->recent);
    free(s->cand);
    ty_token_dist_free(&s->dist);
    free(s);
}

void ty_sampler_accept(ty_sampler *s, ty_token token) {
    if (!s || s->p.repeat_last_n <= 0) return;
    s->recent[s->head] = token;
    s->head = (s->head + 1) % s->p.repeat_last_n;
    if (s->n_recent < s->p.repeat_last_n) s->n_recent++;
}

static double next_uniform(ty_sampler *s) {
    uint64_t z = (s->rng += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return (double)(z >> 11) * (1.0 / 9007199254740992.0);
}

static int by_logit_desc(const void *a, const void *b) {
    const candidate *x = a, *y = b;
    if (x->logit != y->logit) return x->logit > y->logit ? -1 : 1;
    return x->id - y->id; /* ties: lower id first, so the order is total and deterministic */
}

/* Leaves in c[0..k) the k first candidates of the by_logit_desc order, sorted, as a full sort
 * would (the rest of c is left undefined): the first k sorted, then one pass that inserts each
 * later candidate better than the k-th. Cheap for the small k of top-k sampling. */
static void sort_top_k(candidate *c, int64_t n, int64_t k) {
    qsort(c, (size_t)k, sizeof *c, by_logit_desc);
    for (int64_t i = k; i < n; i++) {
        if (by_logit_desc(&c[i], &c[k - 1]) >= 0) continue;
        int64_t lo = 0, hi = k - 1; /* the first position c[i] precedes */
        while (lo < hi) {
            int64_t mid = (lo + hi) / 2;
            if (by_logit_desc(&c[i], &c[mid]) < 0) hi = mid;
            else lo = mid + 1;
        }
        candidate x = c[i];
        memmove(c + lo + 1, c + lo, sizeof *c * (size_t)(k - 1 - lo));
        c[lo] = x;
    }
}

/* Softmax probabilities of the first n (sorted) candidates at temperature t into p. */
static void softmax(const candidate *c, int64_t n, float t, double *p) {
    double sum = 0;
    for (int64_t i = 0; i < n; i++) sum += p[i] = exp(((double)c[i].logit - c[0].logit) / t);
    for (int64_t i = 0; i < n; i++) p[i] /= sum;
}

/* ---- distributions ---------------------------------------------------------------------------- */

void ty_token_dist_free(ty_token_dist *d) {
    if (!d) return;
    free(d->id);
    free(d->p);
    memset(d, 0, sizeof *d);
}

static int dist_reserve(ty_token_dist *d, int64_t n) {
    if (n <= d->cap) return TY_OK;
    ty_token *id = realloc(d->id, sizeof *id * (size_t)n);
    if (!id) return TY_ERR_NOMEM;
    d->id = id;
    double *p = realloc(d->p, sizeof *p * (size_t)n);
    if (!p) return TY_ERR_NOMEM;
    d->p = p;
    d->cap = n;
    return TY_OK;
}

int ty_token_dist_copy(ty_token_dist *dst, const ty_token_dist *src) {
    if (dist_reserve(dst, src->n)) return TY_ERR_NOMEM;
    memcpy(dst->id, src->id, sizeof *src->id * (size_t)src->n);
    memcpy(dst->p, src->p, sizeof *src->p * (size_t)src->n);
    dst->n = src->n;
    return TY_OK;
}

double ty_token_dist_prob(const ty_token_dist *d, ty_token tok) {
    for (int64_t i = 0; i < d->n; i++)
        if (d->id[i] == tok) return d->p[i];
    return 0;
}

ty_token ty_token_dist_pick(const ty_token_dist *d, double u) {
    double cum = 0;
    for (int64_t i = 0; i < d->n; i++) {
        cum += d->p[i];
        if (u < cum) return d->id[i];
    }
    return d->id[d->n - 1];
}

double ty_sampler_uniform(ty_sampler *s) { return next_uniform(s); }
bool ty_sampler_is_greedy(const ty_sampler *s) { return s->p.temperature <= 0; }
ty_sampler_params ty_sampler_get_params(const ty_sampler *s) { return s->p; }

/* ---- sampling -------------------------------------------------------------------------------- */

int ty_sampler_dist(ty_sampler *s, const float *logits, int64_t n_vocab, ty_token_dist *d) {
    if (!s || !logits || !d || n_vocab <= 0) return TY_ERR_INVALID_ARG;
    if (n_vocab > s->cand_cap) {
        candidate *c = realloc(s->cand, sizeof *c * (size_t)n_vocab);
        if (!c) return TY_ERR_NOMEM;
        s->cand = c;
        s->cand_cap = n_vocab;
    }
    candidate *c = s->cand;
    for (int64_t i = 0; i < n_vocab; i++) {
        c[i].logit = logits[i] == logits[i] ? logits[i] : -INFINITY; /* NaN never wins */
        if (c[i].logit > FLT_MAX) c[i].logit = FLT_MAX; /* +inf would make the softmax NaN */
        c[i].id = (int32_t)i;
    }
    if (s->p.repeat_penalty != 1.0f)
        for (int32_t i = 0; i < s->n_recent; i++) {
            ty_token t = s->recent[i];
            if (t < 0 || t >= n_vocab) continue;
            float *l = &c[t].logit;
            /* each distinct token penalised once, however often it occurs */
            int seen = 0;
            for (int32_t j = 0; j < i; j++) seen |= s->recent[j] == t;
            if (!seen) *l = *l > 0 ? *l / s->p.repeat_penalty : *l * s->p.repeat_penalty;
        }
    if (s->p.temperature <= 0) {
        int64_t best = 0;
        for (int64_t i = 1; i < n_vocab; i++)
            if (c[i].logit > c[best].logit) best = i;
        if (dist_reserve(d, 1)) return TY_ERR_NOMEM;
        d->id[0] = c[best].id;
        d->p[0] = 1.0;
        d->n = 1;
        return TY_OK;
    }
    int64_t n = n_vocab;
    if (s->p.top_k > 0 && s->p.top_k < n && s->p.top_k <= 256) {
        n = s->p.top_k;
        sort_top_k(c, n_vocab, n);
    } else {
        qsort(c, (size_t)n, sizeof *c, by_logit_desc);
        if (s->p.top_k > 0 && s->p.top_k < n) n = s->p.top_k;
    }
    if (dist_reserve(d, n)) return TY_ERR_NOMEM;
    double *p = d->p;
    if (s->p.top_p < 1.0f) {
        softmax(c, n, 1.0f, p);
        double cum = 0;
        int64_t keep = n;
        for (int64_t i = 0; i < n; i++) {
            cum += p[i];
            if (cum >= s->p.top_p) { keep = i + 1; break; }
        }
        n = keep;
    }
    if (s->p.min_p > 0) {
        /* keep tokens whose probability is at least min_p times the top one's */
        double floor = log(s->p.min_p);
        int64_t keep = 1;
        while (keep < n && (double)c[keep].logit - c[0].logit >= floor) keep++;
        n = keep;
    }
    softmax(c, n, s->p.temperature, p);
    for (int64_t i = 0; i < n; i++) d->id[i] = c[i].id;
    d->n = n;
    return TY_OK;
}

int ty_sampler_sample(ty_sampler *s, const float *logits, int64_t n_vocab, ty_token *out) {
    if (!s || !logits || !out || n_vocab <= 0) return TY_ERR_INVALID_ARG;
    int rc = ty_sampler_dist(s, logits, n_vocab, &s->dist);
    if (rc) return rc;
    *out = s->p.temperature <= 0 ? s->dist.id[0] : ty_token_dist_pick(&s->dist, next_uniform(s));
    return TY_OK;
}
