/* speculative.c - ty_generate with speculative decoding.
 *
 * Each step starts from a pending token x: sampled (or the prompt's last), not yet evaluated.
 * Up to k tokens d1..dk are proposed, by prompt lookup or by the draft model; the target then
 * evaluates [x, d1..dk] in one batch with logits at every position. Row i of those logits is the
 * target's distribution p for the token after batch[i], so d(i+1) is checked against row i:
 *   - greedy: accepted iff it is the target's argmax; the first mismatch is replaced by the argmax;
 *   - sampling: accepted with probability min(1, p(d)/q(d)), q being the distribution d was drawn
 *     from (one-hot for lookup and greedy drafts); on rejection the token is drawn from the residual
 *     max(0, p - q), renormalized. Every emitted token is then distributed exactly as p
 *     (Leviathan et al. 2023; Chen et al. 2023).
 * If all k are accepted, row k gives one more token of the target's own. The last emitted token is
 * the next step's x; the target's cache is rolled back to x's position (rejected proposals vanish,
 * accepted ones stay computed), and the draft's cache is cut to its longest prefix that agrees
 * with the target's tokens before it is fed what it lacks.
 *
 * The target's distribution comes from the caller's sampler (penalties and filters included) and
 * every random number from its stream, so the same seed gives the same text. The draft length k
 * follows the recent acceptance rate a of its source: the k in [draft_min, draft_max] with the most
 * expected tokens per unit of cost, (1 - a^(k+1)) / (1 - a) over 1 + k * (draft cost + verify cost),
 * costs in decode steps of the target. It depends on acceptances only, never on timings, so that
 * runs repeat. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "api/internal.h"
#include "base/clock.h"
#include "generate/lookup.h"
#include "generate/sampling.h"

/* What one more token in a verify batch costs the target, in single-token decode steps. The CPU
 * is compute-bound on a batch (7B Q4_K_M, 2 cores: 9 tokens cost 5 steps); a GPU reads the weights
 * once per batch (H100, 7B Q4_K_M: 5 tokens 3.68 ms, 9 tokens 4.64, one 2.72: 0.24 per token). */
#define VERIFY_COST_CPU 0.5
#define VERIFY_COST_DEVICE 0.25
/* A draft step on a GPU costs at least this much of a target step per layer ratio: small kernels are
 * bound by latency, not bytes (H100: the 14-layer, 88 MB draft preset 0.63 ms, the 32-layer 4.37 GB
 * target 2.72 ms: 0.23 = 0.53 x 14/32, where the byte ratio says 0.02). */
#define DRAFT_LAYER_COST_DEVICE 0.5
#define ACCEPT_DECAY 0.9 /* weight of the older history in the acceptance rate, per step */

enum { SRC_DRAFT, SRC_LOOKUP, N_SRC };

typedef struct accept_history {
    double accepted, tried; /* decayed counts: accepted proposals, accepted + rejected ones */
} accept_history;

typedef struct spec {
    ty_context *t, *d;  /* target and draft (NULL without a draft model) */
    ty_sampler *s;      /* the caller's: the target's distribution and the random stream */
    ty_sampler *ds;     /* the draft's distribution when sampling: no repetition penalty */
    bool greedy;
    int64_t V;
    ty_token eos;
    double cost[N_SRC]; /* per proposed token, in target decode steps */
    accept_history hist[N_SRC];
    ty_token *prop;     /* draft_max proposals */
    ty_token_dist *q;   /* draft_max: the distribution each proposal was drawn from (n 0: certain) */
    ty_token_dist p;    /* the target's, at the position being checked */
    ty_token_dist resid;
    double *qdense;     /* n_vocab, all zero between uses */
    ty_token *batch;    /* draft_max + 1 */
    ty_token_callback cb;
    void *user;
    bool ended;         /* EOS emitted or the callback asked to stop */
    ty_generate_stats st;
} spec;

static void spec_free(spec *sp) {
    ty_sampler_free(sp->ds);
    if (sp->q)
        for (int i = 0; i < sp->t->draft_max; i++) ty_token_dist_free(&sp->q[i]);
    free(sp->q);
    free(sp->prop);
    free(sp->batch);
    free(sp->qdense);
    ty_token_dist_free(&sp->p);
    ty_token_dist_free(&sp->resid);
}

static int spec_init(spec *sp, ty_context *c, ty_sampler *s) {
    memset(sp, 0, sizeof *sp);
    sp->t = c;
    sp->d = c->draft;
    sp->s = s;
    sp->greedy = ty_sampler_is_greedy(s);
    sp->V = c->model->desc.hp.n_vocab;
    sp->eos = ty_tokenizer_eos(c->model->tok);
    const bool cpu = strcmp(c->be->ops->name, "cpu") == 0;
    double verify = cpu ? VERIFY_COST_CPU : VERIFY_COST_DEVICE;
    sp->cost[SRC_LOOKUP] = verify;
    sp->cost[SRC_DRAFT] = verify;
    if (sp->d) {
        double draft = (double)ty_model_bytes_per_token(sp->d->model) / (double)ty_model_bytes_per_token(c->model);
        const double layers = (double)sp->d->model->desc.hp.n_layer / (double)c->model->desc.hp.n_layer;
        if (!cpu && draft < DRAFT_LAYER_COST_DEVICE * layers) draft = DRAFT_LAYER_COST_DEVICE * layers;
        sp->cost[SRC_DRAFT] += draft;
    }
    int k = c->draft_max;
    sp->prop = malloc(sizeof *sp->prop * (size_t)k);
    sp->batch = malloc(sizeof *sp->batch * (size_t)(k + 1));
    sp->q = calloc((size_t)k, sizeof *sp->q);
    sp->qdense = calloc((size_t)sp->V, sizeof *sp->qdense);
    if (!sp->prop || !sp->batch || !sp->q || !sp->qdense) return TY_ERR_NOMEM;
    if (sp->d && !sp->greedy) {
        ty_sampler_params dp = ty_sampler_get_params(s);
        dp.repeat_penalty = 1.0f; /* q may be anything, as long as it is what d was drawn from */
        if (ty_sampler_new(&dp, &sp->ds)) return TY_ERR_NOMEM;
    }
    return TY_OK;
}

/* ---- the draft length ---------------------------------------------------------------------------- */

static int choose_k(const spec *sp, int src) {
    int k_min = sp->t->draft_min, k_max = sp->t->draft_max;
    if (k_min == k_max) return k_max;
    const accept_history *h = &sp->hist[src];
    double a = (h->accepted + 1) / (h->tried + 2); /* one agreement and one miss as a prior */
    int best_k = k_min;
    double best = -1;
    for (int k = k_min; k <= k_max; k++) {
        double tokens = (1 - pow(a, k + 1)) / (1 - a); /* 1 + a + ... + a^k: a < 1 by the prior */
        double value = tokens / (1 + k * sp->cost[src]);
        if (value > best * (1 + 1e-9)) best = value, best_k = k;
    }
    return best_k;
}

static void record_acceptance(spec *sp, int src, int64_t accepted, int rejected) {
    accept_history *h = &sp->hist[src];
    h->accepted = ACCEPT_DECAY * h->accepted + (double)accepted;
    h->tried = ACCEPT_DECAY * h->tried + (double)(accepted + rejected);
}

/* ---- the draft model ------------------------------------------------------------------------------- */

/* Brings the draft's cache to seq[0..n) with logits for its last token, evaluating only what it
 * lacks after the longest prefix it already holds. */
static int draft_sync(spec *sp, const ty_token *seq, int64_t n) {
    ty_context *d = sp->d;
    int64_t common = 0;
    while (common < d->n_past && common < n && d->tokens[common] == seq[common]) common++;
    if (common == n && d->n_past == n && d->n_logits > 0) return TY_OK; /* already there */
    if (common == n) common--; /* re-evaluate the last token for its logits */
    for (int64_t i = common; i < n; i++)
        if (seq[i] < 0)
            return ty_seterr(&sp->t->err, TY_ERR_INVALID_ARG,
                             "speculative decoding needs the context's real tokens, and position %lld "
                             "holds synthetic values", (long long)i);
    int rc = ty_context_truncate(d, common);
    if (!rc && n > common) rc = ty_context_eval(d, seq + common, n - common, TY_LOGITS_LAST);
    if (rc) ty_seterr(&sp->t->err, rc, "draft model: %s", d->err.msg);
    return rc;
}

static ty_token argmax(const float *x, int64_t n) {
    int64_t best = 0;
    for (int64_t i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return (ty_token)best;
}

/* Proposes k tokens to follow seq[0..n): the draft's argmax (greedy) or a draw from its
 * distribution, each fed back to it for the next. */
static int draft_propose(spec *sp, const ty_token *seq, int64_t n, int k) {
    int rc = draft_sync(sp, seq, n); /* names its own failures */
    if (rc) return rc;
    for (int i = 0; i < k && !rc; i++) {
        const float *logits = NULL;
        if ((rc = ty_context_logits(sp->d, -1, &logits))) break;
        ty_token tok;
        sp->q[i].n = 0;
        if (sp->greedy || sp->t->oracle) {
            tok = argmax(logits, sp->V);
        } else {
            if ((rc = ty_sampler_dist(sp->ds, logits, sp->V, &sp->q[i]))) break;
            tok = ty_token_dist_pick(&sp->q[i], ty_sampler_uniform(sp->s));
        }
        if (sp->t->oracle) tok = sp->t->oracle(sp->t->oracle_user, n + i, tok);
        sp->prop[i] = tok;
        if (i + 1 < k) rc = ty_context_eval(sp->d, &tok, 1, TY_LOGITS_LAST);
    }
    if (rc) ty_seterr(&sp->t->err, rc, "draft model: %s", rc == TY_ERR_NOMEM ? "out of memory" : sp->d->err.msg);
    return rc;
}

/* ---- checking a proposal ----------------------------------------------------------------------------- */

/* Checks proposal i against the target's distribution sp->p. Sets *accepted, and *out to the
 * proposal or, on rejection, to the replacement. */
static int check_proposal(spec *sp, int i, bool *accepted, ty_token *out) {
    const ty_token d = sp->prop[i];
    const ty_token_dist *p = &sp->p, *q = &sp->q[i];
    if (sp->greedy) { /* p is one-hot */
        *accepted = p->id[0] == d;
        *out = p->id[0];
        return TY_OK;
    }
    double pd = ty_token_dist_prob(p, d), qd = q->n ? ty_token_dist_prob(q, d) : 1.0;
    if (ty_sampler_uniform(sp->s) * qd < pd) { /* u < p(d) / q(d) */
        *accepted = true;
        *out = d;
        return TY_OK;
    }
    *accepted = false;
    /* the residual max(0, p - q) over p's candidates (q's other tokens have p = 0) */
    if (q->n)
        for (int64_t j = 0; j < q->n; j++) sp->qdense[q->id[j]] = q->p[j];
    else
        sp->qdense[d] = 1.0;
    if (ty_token_dist_copy(&sp->resid, p)) return TY_ERR_NOMEM;
    double sum = 0;
    for (int64_t j = 0; j < sp->resid.n; j++) {
        double r = sp->resid.p[j] - sp->qdense[sp->resid.id[j]];
        sum += sp->resid.p[j] = r > 0 ? r : 0;
    }
    if (q->n)
        for (int64_t j = 0; j < q->n; j++) sp->qdense[q->id[j]] = 0;
    else
        sp->qdense[d] = 0;
    const ty_token_dist *from = &sp->resid;
    if (sum > 0)
        for (int64_t j = 0; j < sp->resid.n; j++) sp->resid.p[j] /= sum;
    else
        from = p; /* p <= q everywhere: only rounding can reject then */
    *out = ty_token_dist_pick(from, ty_sampler_uniform(sp->s));
    return TY_OK;
}

/* ---- emitting tokens ---------------------------------------------------------------------------------- */

/* A token joins the answer: the sampler hears of it, the callback gets it (EOS ends instead). */
static void emit(spec *sp, ty_token tok) {
    ty_sampler_accept(sp->s, tok);
    sp->st.n_generated++;
    if (tok == sp->eos) {
        sp->st.stopped_by_eos = 1;
        sp->ended = true;
        return;
    }
    char piece[256];
    size_t len = ty_tokenizer_piece(sp->t->model->tok, tok, false, piece, sizeof piece);
    if (sp->cb && sp->cb(sp->user, tok, piece, len < sizeof piece ? len : sizeof piece)) {
        ty_seterr(&sp->t->err, TY_ERR_CANCELLED, "stopped by the callback");
        sp->ended = true;
    }
}

/* Keeps the first `keep` positions of the target after a verify batch that started at position
 * n0 (rows n0..): the logits of the last kept token become the context's last logits, as if it
 * had been evaluated alone. */
static void roll_back(ty_context *t, int64_t n0, int64_t keep) {
    int64_t row = keep - n0 - 1, V = t->model->desc.hp.n_vocab;
    if (row > 0) memmove(t->logits, t->logits + row * V, sizeof *t->logits * (size_t)V);
    t->n_past = keep;
    t->n_logits = 1;
    t->logits_all = 0;
    t->n_last_eval = 1;
}

/* One step from the pending token x at position n (the caller guarantees room for x and the
 * token after it, and a budget of `budget` >= 1 tokens). *pending receives the next step's x, or
 * -1 if the last emitted token is already in the cache. */
static int step(spec *sp, ty_token x, int64_t budget, ty_token *pending) {
    ty_context *t = sp->t;
    const int64_t n = t->n_past;
    /* room for every proposal and the target's own token after them, within the budget */
    int64_t cap = t->fw.n_ctx - n - 2;
    if (budget - 1 < cap) cap = budget - 1;
    if (t->draft_max < cap) cap = t->draft_max;
    t->tokens[n] = x; /* the sequence so far is tokens[0..n]; the slot is x's in any case */
    int64_t k = 0;
    int src = SRC_DRAFT;
    if (cap > 0 && t->lookup) {
        int64_t want = choose_k(sp, SRC_LOOKUP);
        k = ty_lookup_propose(t->tokens, n + 1, want < cap ? want : cap, sp->prop);
        for (int64_t i = 0; i < k; i++) sp->q[i].n = 0;
        src = SRC_LOOKUP;
    }
    if (k == 0 && cap > 0 && sp->d) {
        int64_t want = choose_k(sp, SRC_DRAFT);
        k = want < cap ? want : cap;
        src = SRC_DRAFT;
        int rc = draft_propose(sp, t->tokens, n + 1, (int)k);
        if (rc) return rc;
    }
    sp->batch[0] = x;
    memcpy(sp->batch + 1, sp->prop, sizeof *sp->prop * (size_t)k);
    int rc = ty_context_eval(t, sp->batch, k + 1, TY_LOGITS_ALL);
    if (rc) return rc;
    sp->st.n_steps++;
    sp->st.n_drafted += k;
    int64_t accepted = 0;
    int rejected = 0;
    ty_token tok = -1;
    bool in_cache = false; /* the last emitted token is an accepted proposal, evaluated already */
    for (int64_t i = 0; i <= k && !sp->ended; i++) {
        const float *logits = NULL;
        if ((rc = ty_context_logits(t, i, &logits))) return rc;
        if ((rc = ty_sampler_dist(sp->s, logits, sp->V, &sp->p)))
            return ty_seterr(&t->err, rc, "sampling failed: %s", ty_status_string(rc));
        if (i == k) { /* every proposal accepted: one more token of the target's own */
            tok = sp->greedy ? sp->p.id[0] : ty_token_dist_pick(&sp->p, ty_sampler_uniform(sp->s));
            in_cache = false;
            emit(sp, tok);
            break;
        }
        bool ok = false;
        if ((rc = check_proposal(sp, (int)i, &ok, &tok))) return ty_seterr(&t->err, rc, "out of memory");
        in_cache = ok;
        emit(sp, tok);
        if (!ok) {
            rejected = 1;
            break;
        }
        accepted++;
    }
    sp->st.n_accepted += accepted;
    sp->st.n_rejected += rejected;
    if (k > 0) record_acceptance(sp, src, accepted, rejected);
    /* x and the accepted proposals stay; whatever came after them in the batch is forgotten */
    roll_back(t, n, n + 1 + accepted);
    *pending = in_cache ? -1 : tok;
    return TY_OK;
}

/* ---- the generation loop -------------------------------------------------------------------------------- */

int ty_generate_speculative(ty_context *c, ty_sampler *s, const ty_token *prompt, int64_t n_prompt,
                            int64_t n_predict, ty_token_callback cb, void *user,
                            ty_generate_stats *stats) {
    spec sp;
    int rc = spec_init(&sp, c, s);
    if (rc) {
        spec_free(&sp);
        return ty_seterr(&c->err, rc, "out of memory for speculative decoding");
    }
    sp.cb = cb;
    sp.user = user;
    sp.st.n_prompt = n_prompt;
    double t0 = ty_now();
    ty_token pending = -1; /* in the sequence, not yet evaluated */
    if (n_prompt > 0) {
        if (n_prompt > c->fw.n_ctx - c->n_past) {
            rc = ty_seterr(&c->err, TY_ERR_CONTEXT_FULL,
                           "%lld tokens do not fit in the context: it holds %lld of %lld "
                           "(use a larger -c or a shorter prompt)",
                           (long long)n_prompt, (long long)c->n_past, (long long)c->fw.n_ctx);
        } else {
            /* the last prompt token is the first step's x: its logits come with the proposals' */
            if (n_prompt > 1) rc = ty_context_eval(c, prompt, n_prompt - 1, TY_LOGITS_LAST);
            for (int64_t i = 0; i < n_prompt && !rc; i++) ty_sampler_accept(s, prompt[i]);
            if (!rc) pending = prompt[n_prompt - 1];
            if (!rc && sp.d && c->n_past > 0) rc = draft_sync(&sp, c->tokens, c->n_past);
        }
    } else if (c->n_logits == 0) {
        rc = ty_seterr(&c->err, TY_ERR_INVALID_ARG, "empty prompt and no logits to continue from");
    } else if (n_predict != 0 && c->n_past < c->fw.n_ctx) {
        /* continuing: the first token comes from the logits the context holds */
        const float *logits = NULL;
        ty_token tok = 0;
        rc = ty_context_logits(c, -1, &logits);
        if (!rc && (rc = ty_sampler_sample(s, logits, sp.V, &tok)))
            ty_seterr(&c->err, rc, "sampling failed: %s", ty_status_string(rc));
        if (!rc) {
            emit(&sp, tok);
            pending = tok;
        }
    }
    double t1 = ty_now();
    while (!rc && pending >= 0 && !sp.ended) {
        int64_t budget = n_predict < 0 ? INT64_MAX : n_predict - sp.st.n_generated;
        if (budget <= 0 || c->n_past + 1 >= c->fw.n_ctx) break; /* no room for a token after x */
        rc = step(&sp, pending, budget, &pending);
    }
    if (!rc && pending >= 0) rc = ty_context_eval(c, &pending, 1, TY_LOGITS_LAST);
    sp.st.prompt_seconds = t1 - t0;
    sp.st.generate_seconds = ty_now() - t1;
    if (stats) *stats = sp.st;
    spec_free(&sp);
    return rc;
}
