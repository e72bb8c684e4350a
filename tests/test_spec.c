/* test_spec.c - speculative decoding through the public API (ty_context_params.draft_model /
 * lookup, ty_generate):
 *   1. what greedy identity rests on: a batch evaluated with TY_LOGITS_ALL gives, bit for bit, the
 *      logits of its tokens evaluated one at a time; prompt lookup's n-gram matching;
 *   2. greedy output token-for-token identical to the target alone (tokens, stats, cache length,
 *      the logits left behind): draft = another fixture of the same vocabulary, draft = the target
 *      itself (then every proposal is accepted), lookup alone, lookup + draft; fixed and adaptive
 *      draft lengths; at the context limit; across EOS; continuing; stopped by the callback;
 *   3. a draft of another vocabulary and bad draft lengths refused with a message;
 *   4. sampling: the distribution of generated tokens over many seeds matches the target's within
 *      a chi-square bound (and is far from the draft's, so the check can fail); same seed, same text;
 *   5. acceptance on the trained pair in ../shared/models: tokens per target step for k = 1..8 on
 *      the 20 prompts of acceptance.json, against the numbers measured there.
 * Models: ../shared/fixtures/gguf/tiny-e2e-*.gguf and tiny-hd128-q8_0.gguf, ../shared/models/yard-*. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#if defined(__SANITIZE_ADDRESS__)
#define SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SANITIZED 1
#endif
#endif
#ifndef SANITIZED
#define SANITIZED 0
#endif
#include "check.h"
#include "generate/lookup.h"
#include "generate/sampling.h"
#include "json.h"
#include "tokenizer/tokenizer.h"
#include "trainyard.h"

#define GGUF "../shared/fixtures/gguf/"
#define E2E_Q4 GGUF "tiny-e2e-q4_k_m.gguf"
#define E2E_Q5 GGUF "tiny-e2e-q5_k_m.gguf"
#define E2E_F16 GGUF "tiny-e2e-f16.gguf"
#define HD128 GGUF "tiny-hd128-q8_0.gguf"
#define YARD "../shared/models/"
#define YARD_T YARD "yard-target-27m-q8_0.gguf"
#define YARD_D YARD "yard-draft-9m-q8_0.gguf"

#define MAX_OUT 512

static ty_model *open_model_math(const char *path, int exact_math) {
    ty_model *m = NULL;
    char *err = NULL;
    ty_model_params mp = ty_model_default_params();
    mp.exact_math = exact_math;
    int rc = ty_model_open(path, &mp, &m, &err);
    if (rc) fprintf(stderr, "cannot open %s: %s (%s)\n", path, ty_status_string(rc), err ? err : "");
    ty_free(err);
    return m;
}

static ty_model *open_model(const char *path) { return open_model_math(path, 0); }

typedef struct spec_cfg {
    ty_model *draft;
    int lookup, k_min, k_max;
    const char *name;
} spec_cfg;

static ty_context *new_ctx(ty_model *m, int64_t n_ctx, const spec_cfg *cfg) {
    ty_context_params p = ty_context_default_params();
    p.n_ctx = n_ctx;
    if (cfg) {
        p.draft_model = cfg->draft;
        p.lookup = cfg->lookup;
        p.draft_min = cfg->k_min;
        p.draft_max = cfg->k_max;
    }
    ty_context *c = NULL;
    char *err = NULL;
    int rc = ty_context_new(m, &p, &c, &err);
    if (rc) fprintf(stderr, "cannot create a context: %s (%s)\n", ty_status_string(rc), err ? err : "");
    ty_free(err);
    return c;
}

static int64_t tokenize(const ty_model *m, const char *s, ty_token *ids, int64_t cap) {
    int64_t n = -1;
    return ty_tokenize(m, s, strlen(s), TY_TOKENIZE_ADD_BOS, ids, cap, &n) ? -1 : n;
}

/* ---- a generation and what it leaves behind ---------------------------------------------------- */

typedef struct run_out {
    ty_token toks[MAX_OUT]; /* what the callback saw */
    int n, stop_after;      /* stop_after > 0: the callback asks to stop after that many */
    int rc;
    ty_generate_stats st;
    int64_t n_past;
    float *logits; /* the context's last logits afterwards (n_vocab), or NULL */
} run_out;

static int collect(void *user, ty_token tok, const char *piece, size_t len) {
    run_out *o = user;
    if (o->n < MAX_OUT) o->toks[o->n] = tok;
    o->n++;
    return o->stop_after > 0 && o->n >= o->stop_after;
}

static void run_free(run_out *o) {
    free(o->logits);
    o->logits = NULL;
}

/* Generates from prompt in an emptied context with sampler params sp (greedy when NULL);
 * n_prompt 0 continues from what the context holds. */
static void run(ty_context *c, const ty_sampler_params *sp, const ty_token *prompt, int64_t np,
                int64_t n_predict, int stop_after, int keep, run_out *o) {
    run_free(o);
    memset(o, 0, sizeof *o);
    o->stop_after = stop_after;
    ty_sampler_params p = ty_sampler_default_params();
    if (sp) p = *sp;
    else p.temperature = 0;
    ty_sampler *s = NULL;
    if (ty_sampler_new(&p, &s)) {
        o->rc = -1;
        return;
    }
    if (!keep) ty_context_truncate(c, 0);
    o->rc = ty_generate(c, s, prompt, np, n_predict, collect, o, &o->st);
    o->n_past = ty_context_n_past(c);
    ty_sampler_free(s);
}

/* Copies the context's last logits into o->logits. */
static void keep_logits(ty_context *c, int64_t V, run_out *o) {
    const float *lg = NULL;
    if (ty_context_logits(c, -1, &lg) != TY_OK) return;
    o->logits = malloc(sizeof(float) * (size_t)V);
    if (o->logits) memcpy(o->logits, lg, sizeof(float) * (size_t)V);
}

/* Speculative run b must equal plain run a in everything a user sees. */
static void check_same(const run_out *a, const run_out *b, int64_t V, const char *what) {
    CHECK(a->rc == TY_OK && b->rc == TY_OK, "%s: status %d / %d", what, a->rc, b->rc);
    CHECK(a->n == b->n && memcmp(a->toks, b->toks, sizeof *a->toks * (size_t)(a->n < MAX_OUT ? a->n : MAX_OUT)) == 0,
          "%s: tokens differ (%d vs %d callbacks)", what, a->n, b->n);
    CHECK(a->st.n_generated == b->st.n_generated && a->st.stopped_by_eos == b->st.stopped_by_eos,
          "%s: generated %lld/%lld, EOS %d/%d", what, (long long)a->st.n_generated, (long long)b->st.n_generated,
          a->st.stopped_by_eos, b->st.stopped_by_eos);
    CHECK(a->n_past == b->n_past, "%s: n_past %lld vs %lld", what, (long long)a->n_past, (long long)b->n_past);
    CHECK(a->logits && b->logits && memcmp(a->logits, b->logits, sizeof(float) * (size_t)V) == 0,
          "%s: the logits left in the context differ", what);
    /* the books balance: every step emits its accepted proposals and one token of the target's */
    const ty_generate_stats *s = &b->st;
    CHECK(s->n_accepted + s->n_rejected <= s->n_drafted && s->n_rejected <= s->n_steps &&
              s->n_accepted + s->n_steps >= s->n_generated - 1 && s->n_accepted + s->n_steps <= s->n_generated + 1,
          "%s: stats drafted %lld accepted %lld rejected %lld steps %lld generated %lld", what,
          (long long)s->n_drafted, (long long)s->n_accepted, (long long)s->n_rejected, (long long)s->n_steps,
          (long long)s->n_generated);
}

/* ---- 1. foundations ---------------------------------------------------------------------------- */

static int test_batch_bit_identity(const char *path) {
    ty_model *m = open_model(path);
    REQUIRE(m, "model");
    ty_token ids[64];
    int64_t n = tokenize(m, "Speculative decoding checks k proposals in one pass of the model.", ids, 64);
    REQUIRE(n > 8, "prompt");
    int64_t V = ty_n_vocab(m);
    ty_context *all = new_ctx(m, 128, NULL), *one = new_ctx(m, 128, NULL);
    REQUIRE(all && one, "contexts");
    /* a prefix first, then the rest as one batch (as a verify pass sees it) */
    REQUIRE(ty_context_eval(all, ids, 3, TY_LOGITS_LAST) == TY_OK, "prefix");
    REQUIRE(ty_context_eval(all, ids + 3, n - 3, TY_LOGITS_ALL) == TY_OK, "batch");
    int same = 1;
    for (int64_t i = 0; i < n; i++) {
        const float *a = NULL, *b = NULL;
        REQUIRE(ty_context_eval(one, ids + i, 1, TY_LOGITS_LAST) == TY_OK, "one");
        if (i < 3) continue;
        REQUIRE(ty_context_logits(all, i - 3, &a) == TY_OK && ty_context_logits(one, -1, &b) == TY_OK, "logits");
        same &= memcmp(a, b, sizeof(float) * (size_t)V) == 0;
    }
    CHECK(same, "%s: batched logits are not bit-identical to one-token logits", path);
    ty_context_free(all);
    ty_context_free(one);
    ty_model_close(m);
    return 0;
}

static void test_lookup(void) {
    ty_token out[8];
    /* ... 5 6 7 8 ... 5 6 7 -> the trigram 5 6 7 continues with 8 9 */
    const ty_token seq[] = {1, 5, 6, 7, 8, 9, 4, 6, 7, 2, 5, 6, 7};
    int64_t n = ty_lookup_propose(seq, 13, 8, out);
    CHECK(n == 8 && out[0] == 8 && out[1] == 9 && out[2] == 4, "trigram match: %lld, %d %d %d", (long long)n,
          out[0], out[1], out[2]);
    CHECK(ty_lookup_propose(seq, 13, 2, out) == 2, "max respected");
    /* only a bigram: the latest occurrence wins (6 7 -> 2, not 8) */
    const ty_token seq2[] = {1, 6, 7, 8, 3, 6, 7, 2, 9, 6, 7};
    n = ty_lookup_propose(seq2, 11, 3, out);
    CHECK(n == 3 && out[0] == 2 && out[1] == 9 && out[2] == 6, "bigram, latest: %lld, %d", (long long)n, out[0]);
    /* a single repeated token is not enough */
    const ty_token seq3[] = {1, 5, 9, 3, 5};
    CHECK(ty_lookup_propose(seq3, 5, 4, out) == 0, "unigram ignored");
    CHECK(ty_lookup_propose(seq3, 1, 4, out) == 0 && ty_lookup_propose(seq3, 5, 0, out) == 0, "edges");
    /* the continuation may run to the end of the sequence */
    const ty_token seq4[] = {3, 4, 3, 4};
    n = ty_lookup_propose(seq4, 4, 8, out);
    CHECK(n == 2 && out[0] == 3 && out[1] == 4, "overlapping match: %lld", (long long)n);
}

/* ty_sampler_dist: the one-pass top-k selection orders candidates exactly as the full sort (ties
 * included: lower id first), and the probabilities are the softmax over them. */
static int test_top_k_order(void) {
    const int64_t V = 5000;
    float *logits = malloc(sizeof *logits * (size_t)V);
    REQUIRE(logits, "memory");
    unsigned long long rng = 9;
    for (int64_t i = 0; i < V; i++) logits[i] = (float)(int)(test_rand_uniform(&rng) * 40) / 4; /* many ties */
    ty_sampler_params sp = ty_sampler_default_params();
    sp.temperature = 0.7f;
    sp.top_p = 1.0f;
    sp.min_p = 0.0f;
    sp.top_k = 0;
    ty_sampler *all = NULL, *top = NULL;
    REQUIRE(ty_sampler_new(&sp, &all) == TY_OK, "sampler");
    sp.top_k = 200;
    REQUIRE(ty_sampler_new(&sp, &top) == TY_OK, "sampler");
    ty_token_dist a = {0}, b = {0};
    REQUIRE(ty_sampler_dist(all, logits, V, &a) == TY_OK && ty_sampler_dist(top, logits, V, &b) == TY_OK, "dist");
    CHECK(a.n == V && b.n == 200 && memcmp(a.id, b.id, sizeof *a.id * 200) == 0, "top-k order differs from the full sort");
    double sum = 0, worst = 0;
    for (int i = 0; i < 200; i++) sum += a.p[i];
    for (int i = 0; i < 200 && b.n == 200; i++) worst = fmax(worst, fabs(b.p[i] - a.p[i] / sum));
    CHECK(worst < 1e-12, "top-k probabilities off by %g", worst);
    ty_token_dist_free(&a);
    ty_token_dist_free(&b);
    ty_sampler_free(all);
    ty_sampler_free(top);
    free(logits);
    return 0;
}

/* ---- 2. greedy identity -------------------------------------------------------------------------- */

/* Every configuration against plain greedy decoding of the same prompt, for several n_predict and
 * context sizes. */
static int greedy_identity(ty_model *m, const spec_cfg *cfgs, int n_cfg, const ty_token *prompt, int64_t np,
                           const ty_sampler_params *sp, const char *label) {
    int64_t V = ty_n_vocab(m);
    const int64_t n_ctx_big = np + 80;
    /* n_ctx > 0: generate until the context is full; 0: n_ctx_big and the n_predict given */
    const struct { int64_t n_predict, n_ctx; } cases[] = {
        {40, 0}, {1, 0}, {2, 0}, {5, 0}, {0, 0}, {-1, np + 1}, {-1, np + 2}, {-1, np + 3}, {-1, np + 7}, {-1, np + 12},
    };
    run_out a = {0}, b = {0};
    for (size_t ci = 0; ci < sizeof cases / sizeof *cases; ci++) {
        int64_t n_ctx = cases[ci].n_ctx ? cases[ci].n_ctx : n_ctx_big;
        ty_context *plain = new_ctx(m, n_ctx, NULL);
        REQUIRE(plain, "plain context");
        run(plain, sp, prompt, np, cases[ci].n_predict, 0, 0, &a);
        keep_logits(plain, V, &a);
        if (cases[ci].n_ctx && !a.st.stopped_by_eos)
            CHECK(a.n_past == n_ctx, "%s: plain run did not fill the context", label);
        for (int k = 0; k < n_cfg; k++) {
            ty_context *c = new_ctx(m, n_ctx, &cfgs[k]);
            REQUIRE(c, "speculative context");
            run(c, sp, prompt, np, cases[ci].n_predict, 0, 0, &b);
            keep_logits(c, V, &b);
            char what[160];
            snprintf(what, sizeof what, "%s, %s, n_predict %lld, n_ctx %lld", label, cfgs[k].name,
                     (long long)cases[ci].n_predict, (long long)n_ctx);
            check_same(&a, &b, V, what);
            /* the same context again: the draft's cache is reused after truncation */
            run(c, sp, prompt, np, cases[ci].n_predict, 0, 0, &b);
            keep_logits(c, V, &b);
            check_same(&a, &b, V, what);
            ty_context_free(c);
        }
        ty_context_free(plain);
    }
    run_free(&a);
    run_free(&b);
    return 0;
}

/* Continuing with an empty prompt, and a callback that stops: same as plain. */
static int greedy_contract(ty_model *m, const spec_cfg *cfg, const ty_token *prompt, int64_t np) {
    int64_t V = ty_n_vocab(m);
    run_out a = {0}, b = {0}, b2 = {0};
    ty_context *plain = new_ctx(m, 128, NULL), *c = new_ctx(m, 128, cfg);
    REQUIRE(plain && c, "contexts");
    run(plain, NULL, prompt, np, 16, 0, 0, &a);
    keep_logits(plain, V, &a);
    /* 6 then 10 more from the logits left behind */
    run(c, NULL, prompt, np, 6, 0, 0, &b);
    run(c, NULL, NULL, 0, 10, 0, 1, &b2);
    keep_logits(c, V, &b2);
    CHECK(b.rc == TY_OK && b2.rc == TY_OK && b.n == 6 && b.n + b2.n == a.n &&
              memcmp(b.toks, a.toks, sizeof *a.toks * 6) == 0 && memcmp(b2.toks, a.toks + 6, sizeof *a.toks * 10) == 0,
          "%s: 6 + 10 tokens differ from 16", cfg->name);
    CHECK(b2.n_past == a.n_past && b2.logits && memcmp(b2.logits, a.logits, sizeof(float) * (size_t)V) == 0,
          "%s: continuation leaves n_past %lld (plain %lld) or other logits", cfg->name, (long long)b2.n_past,
          (long long)a.n_past);
    /* the callback stops after 5: those 5 are in the cache, nothing after them */
    run(c, NULL, prompt, np, 16, 5, 0, &b);
    CHECK(b.rc == TY_OK && b.n == 5 && b.st.n_generated == 5 && memcmp(b.toks, a.toks, sizeof *a.toks * 5) == 0 &&
              b.n_past == np + 5,
          "%s: callback stop: %d callbacks, n_past %lld", cfg->name, b.n, (long long)b.n_past);
    /* errors as plain: an empty prompt with no logits, a prompt that does not fit */
    ty_context_truncate(c, 0);
    run(c, NULL, NULL, 0, 4, 0, 1, &b);
    CHECK(b.rc == TY_ERR_INVALID_ARG && b.n == 0 && b.n_past == 0, "%s: empty prompt, no logits", cfg->name);
    ty_context *small = new_ctx(m, np - 1, cfg);
    REQUIRE(small, "small context");
    run(small, NULL, prompt, np, 4, 0, 0, &b);
    CHECK(b.rc == TY_ERR_CONTEXT_FULL && b.n == 0 && b.n_past == 0, "%s: prompt longer than the context: %d",
          cfg->name, b.rc);
    CHECK(strstr(ty_context_errmsg(small), "do not fit") != NULL, "message: %s", ty_context_errmsg(small));
    ty_context_free(small);
    ty_context_free(plain);
    ty_context_free(c);
    run_free(&a);
    run_free(&b);
    run_free(&b2);
    return 0;
}

static int test_greedy_fixtures(void) {
    ty_model *t = open_model(E2E_Q4), *d = open_model(E2E_Q5);
    REQUIRE(t && d, "fixture models");
    ty_token p1[64], p2[64];
    int64_t n1 = tokenize(t, "Draft a three-module course on photosynthesis for beginners.", p1, 64);
    int64_t n2 = tokenize(t, "the cat sat on the mat and the cat sat on the mat and the cat", p2, 64);
    REQUIRE(n1 > 5 && n2 > 5, "prompts");
    const spec_cfg cfgs[] = {
        {d, 0, 1, 1, "draft q5_k_m k=1"},      {d, 0, 3, 3, "draft q5_k_m k=3"},
        {d, 0, 8, 8, "draft q5_k_m k=8"},      {d, 0, 0, 0, "draft q5_k_m adaptive"},
        {t, 0, 4, 4, "draft = target k=4"},    {NULL, 1, 0, 0, "lookup"},
        {NULL, 1, 5, 5, "lookup k=5"},         {d, 1, 2, 6, "lookup + draft q5_k_m"},
    };
    int n_cfg = (int)(sizeof cfgs / sizeof *cfgs);
    greedy_identity(t, cfgs, n_cfg, p1, n1, NULL, "tiny-e2e q4_k_m, prompt 1");
    greedy_identity(t, cfgs, n_cfg, p2, n2, NULL, "tiny-e2e q4_k_m, repetitive prompt");
    /* a repetition penalty changes the target's choice with every accepted token */
    ty_sampler_params pen = ty_sampler_default_params();
    pen.temperature = 0;
    pen.repeat_penalty = 1.5f;
    pen.repeat_last_n = 16;
    greedy_identity(t, cfgs, n_cfg, p2, n2, &pen, "tiny-e2e q4_k_m, repeat penalty");
    for (int i = 0; i < n_cfg; i++) greedy_contract(t, &cfgs[i], p1, n1);

    /* the draft is the target: every proposal is accepted, k at a time */
    ty_context *c = new_ctx(t, 128, &cfgs[4]);
    REQUIRE(c, "context");
    run_out o = {0};
    run(c, NULL, p1, n1, 41, 0, 0, &o);
    CHECK(o.rc == TY_OK && o.st.n_rejected == 0 && o.st.n_accepted == o.st.n_drafted && o.st.n_steps == 9 &&
              o.st.n_drafted == 32,
          "draft = target: drafted %lld accepted %lld rejected %lld steps %lld", (long long)o.st.n_drafted,
          (long long)o.st.n_accepted, (long long)o.st.n_rejected, (long long)o.st.n_steps);
    run_free(&o);
    ty_context_free(c);
    ty_model_close(t);
    ty_model_close(d);
    return 0;
}

/* EOS inside a batch (accepted) and as the target's own token, with the trained pair. */
static int test_greedy_eos(void) {
    ty_model *t = open_model(YARD_T), *d = open_model(YARD_D);
    REQUIRE(t && d, "yard models");
    int64_t V = ty_n_vocab(t);
    ty_token p[64];
    int64_t np = tokenize(t, "See also: mv(1), rm(1), cp", p, 64); /* a man page's last line */
    REQUIRE(np > 5, "prompt");
    ty_context *plain = new_ctx(t, 64, NULL);
    REQUIRE(plain, "context");
    run_out a = {0}, b = {0};
    run(plain, NULL, p, np, 30, 0, 0, &a);
    keep_logits(plain, V, &a);
    CHECK(a.rc == TY_OK && a.st.stopped_by_eos && a.st.n_generated >= 3,
          "the target should end this text with EOS after a few tokens (generated %lld, EOS %d)",
          (long long)a.st.n_generated, a.st.stopped_by_eos);
    for (int k = 1; k <= 8; k++) {
        const spec_cfg cfgs[3] = {{d, 0, k, k, "yard draft"}, {t, 0, k, k, "draft = target"}, {d, 1, k, k, "lookup + draft"}};
        for (int i = 0; i < 3; i++) {
            ty_context *c = new_ctx(t, 64, &cfgs[i]);
            REQUIRE(c, "context");
            run(c, NULL, p, np, 30, 0, 0, &b);
            keep_logits(c, V, &b);
            char what[96];
            snprintf(what, sizeof what, "EOS, %s k=%d", cfgs[i].name, k);
            check_same(&a, &b, V, what);
            ty_context_free(c);
        }
    }
    ty_context_free(plain);
    run_free(&a);
    run_free(&b);
    ty_model_close(t);
    ty_model_close(d);
    return 0;
}

/* ---- 3. refusals --------------------------------------------------------------------------------- */

static int vocab_why(const char **texts, const float *scores, const int32_t *types, int32_t n, int32_t eos,
                     const char *want) {
    gguf_str ref_t[4] = {{1, "a"}, {1, "b"}, {2, "cd"}, {1, "e"}}, other_t[4];
    for (int32_t i = 0; i < n; i++) other_t[i] = (gguf_str){strlen(texts[i]), texts[i]};
    ty_tokenizer_vocab rv = {.n_tokens = 4, .texts = ref_t, .bos = 0, .eos = 1, .unk = -1, .pad = -1};
    ty_tokenizer_vocab ov = {.n_tokens = n, .texts = other_t, .scores = scores, .types = types, .bos = 0,
                             .eos = eos, .unk = -1, .pad = -1};
    ty_tokenizer *r = NULL, *o = NULL;
    ty_err err;
    REQUIRE(ty_tokenizer_new(&rv, &r, &err) == TY_OK && ty_tokenizer_new(&ov, &o, &err) == TY_OK, "vocabularies");
    char why[200] = "";
    bool same = ty_tokenizer_same_vocab(r, o, why, sizeof why);
    if (want) CHECK(!same && strcmp(why, want) == 0, "vocabulary difference: got '%s', want '%s'", why, want);
    else CHECK(same, "identical vocabularies reported different: %s", why);
    ty_tokenizer_free(r);
    ty_tokenizer_free(o);
    return 0;
}

static int test_refusals(void) {
    const char *same[4] = {"a", "b", "cd", "e"}, *piece[4] = {"a", "b", "cx", "e"};
    const float score[4] = {0, 0, 0, -1};
    const int32_t type[4] = {1, 1, 1, 4};
    vocab_why(same, NULL, NULL, 4, 1, NULL);
    vocab_why(same, NULL, NULL, 3, 1, "3 vs 4 tokens");
    vocab_why(piece, NULL, NULL, 4, 1, "token 2 is 'cx' vs 'cd'");
    vocab_why(same, score, NULL, 4, 1, "token 3 has score -1 vs 0");
    vocab_why(same, NULL, type, 4, 1, "token 3 has type 4 vs 1");
    vocab_why(same, NULL, NULL, 4, 2, "BOS/EOS ids 0/2 vs 0/1");

    ty_model *t = open_model(E2E_Q4), *other = open_model(HD128), *d = open_model(YARD_D);
    REQUIRE(t && other && d, "models");
    ty_context_params p = ty_context_default_params();
    p.n_ctx = 64;
    p.draft_model = other;
    ty_context *c = NULL;
    char *err = NULL;
    int rc = ty_context_new(t, &p, &c, &err);
    CHECK(rc == TY_ERR_INVALID_ARG && !c && err &&
              strcmp(err, "draft vocabulary differs from the target's: 512 vs 32768 tokens") == 0,
          "vocabulary mismatch: %s, '%s'", ty_status_string(rc), err ? err : "(none)");
    ty_free(err);
    /* the trained draft shares the fixture's real Mistral v3 vocabulary */
    p.draft_model = d;
    rc = ty_context_new(t, &p, &c, NULL);
    CHECK(rc == TY_OK && c, "same vocabulary accepted: %s", ty_status_string(rc));
    ty_context_free(c);
    const struct { int k_min, k_max; } bad[] = {{0, TY_DRAFT_MAX_LIMIT + 1}, {5, 3}, {-1, 0}, {0, -2}};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        p.draft_min = bad[i].k_min;
        p.draft_max = bad[i].k_max;
        c = NULL;
        err = NULL;
        rc = ty_context_new(t, &p, &c, &err);
        CHECK(rc == TY_ERR_INVALID_ARG && !c && err && strstr(err, "invalid draft length"),
              "draft lengths %d..%d: %s '%s'", bad[i].k_min, bad[i].k_max, ty_status_string(rc), err ? err : "");
        ty_free(err);
    }
    ty_model_close(t);
    ty_model_close(other);
    ty_model_close(d);
    return 0;
}

/* ---- 4. the sampling rule -------------------------------------------------------------------------- */

#define TOPK 8

/* The filtered distribution a sampler with top_k TOPK, temperature temp (no other filter) draws
 * from, computed here independently: ids and probabilities, most likely first. */
static void topk_softmax(const float *logits, int64_t V, float temp, ty_token *ids, double *p) {
    for (int i = 0; i < TOPK; i++) ids[i] = -1;
    for (int64_t v = 0; v < V; v++) {
        int pos = TOPK;
        while (pos > 0 && (ids[pos - 1] < 0 || logits[v] > logits[ids[pos - 1]])) pos--;
        if (pos >= TOPK) continue;
        memmove(ids + pos + 1, ids + pos, sizeof *ids * (size_t)(TOPK - 1 - pos));
        ids[pos] = (ty_token)v;
    }
    double sum = 0;
    for (int i = 0; i < TOPK; i++) sum += p[i] = exp(((double)logits[ids[i]] - logits[ids[0]]) / temp);
    for (int i = 0; i < TOPK; i++) p[i] /= sum;
}

/* Pearson's statistic of counts against probabilities over TOPK bins (bins expecting fewer than 5
 * merged into one; a count outside the bins makes it infinite). *df receives the degrees of
 * freedom. */
static double chi_square(const int *counts, int outside, const double *p, int n, int *df) {
    if (outside) return INFINITY;
    double stat = 0, small_e = 0;
    int small_o = 0, bins = 0;
    for (int i = 0; i < TOPK; i++) {
        double e = p[i] * n;
        if (e < 5) {
            small_e += e;
            small_o += counts[i];
            continue;
        }
        stat += (counts[i] - e) * (counts[i] - e) / e;
        bins++;
    }
    if (small_e > 0) {
        if (small_e < 1e-9) return small_o ? INFINITY : stat;
        stat += (small_o - small_e) * (small_o - small_e) / small_e;
        bins++;
    }
    *df = bins - 1;
    return stat;
}

/* chi-square quantiles at 0.999 for df 1..10 */
static const double CHI2_999[] = {0, 10.83, 13.82, 16.27, 18.47, 20.52, 22.46, 24.32, 26.12, 27.88, 29.59};

static int tally(const ty_token *ids, ty_token tok, int *counts) {
    for (int i = 0; i < TOPK; i++)
        if (ids[i] == tok) {
            counts[i]++;
            return 0;
        }
    return 1;
}

/* Samples 3 tokens from the prompt n_runs times (seeds 1..n_runs) in context c, and compares the
 * first token's distribution, and the second's given the most frequent first, with the target's. */
static int sampling_rule(ty_model *t, ty_model *draft_for_contrast, ty_context *c, const ty_token *prompt, int64_t np,
                         int n_runs, const char *label) {
    const float temp = 1.0f;
    int64_t V = ty_n_vocab(t);
    ty_sampler_params sp = ty_sampler_default_params();
    sp.temperature = temp;
    sp.top_k = TOPK;
    sp.top_p = 1.0f;
    sp.min_p = 0.0f;
    /* the target's distributions, from plain evaluation */
    ty_context *ref = new_ctx(t, 128, NULL);
    REQUIRE(ref, "context");
    const float *lg = NULL;
    ty_token ids1[TOPK], ids2[TOPK];
    double p1[TOPK], p2[TOPK];
    REQUIRE(ty_context_eval(ref, prompt, np, TY_LOGITS_LAST) == TY_OK && ty_context_logits(ref, -1, &lg) == TY_OK, "eval");
    topk_softmax(lg, V, temp, ids1, p1);
    int c1[TOPK] = {0}, out1 = 0;
    ty_token *first = malloc(sizeof *first * (size_t)n_runs), *second = malloc(sizeof *second * (size_t)n_runs);
    REQUIRE(first && second, "memory");
    int64_t drafted = 0, accepted = 0, rejected = 0;
    run_out o = {0};
    /* the context keeps prompt[0..np-1): each run re-enters the last prompt token */
    REQUIRE(ty_context_eval(c, prompt, np - 1, TY_LOGITS_LAST) == TY_OK, "prefix");
    for (int r = 0; r < n_runs; r++) {
        sp.seed = (uint64_t)r + 1;
        ty_context_truncate(c, np - 1);
        run(c, &sp, prompt + np - 1, 1, 3, 0, 1, &o);
        REQUIRE(o.rc == TY_OK && o.n >= 2, "%s: sampling run %d: %d tokens", label, r, o.n);
        first[r] = o.toks[0];
        second[r] = o.toks[1];
        out1 += tally(ids1, o.toks[0], c1);
        drafted += o.st.n_drafted;
        accepted += o.st.n_accepted;
        rejected += o.st.n_rejected;
    }
    int df = 0;
    double x1 = chi_square(c1, out1, p1, n_runs, &df);
    CHECK(df >= 1 && df <= 10 && x1 < CHI2_999[df], "%s: first token: chi-square %.2f on %d df (bound %.2f), %d outside the top %d",
          label, x1, df, df >= 1 && df <= 10 ? CHI2_999[df] : 0.0, out1, TOPK);
    /* the second token, given the most frequent first */
    int mode = 0;
    for (int i = 1; i < TOPK; i++)
        if (c1[i] > c1[mode]) mode = i;
    ty_token given[2] = {prompt[np - 1], ids1[mode]};
    REQUIRE(ty_context_truncate(ref, np - 1) == TY_OK && ty_context_eval(ref, given, 2, TY_LOGITS_LAST) == TY_OK &&
                ty_context_logits(ref, -1, &lg) == TY_OK, "eval");
    topk_softmax(lg, V, temp, ids2, p2);
    int c2[TOPK] = {0}, out2 = 0, n2 = 0;
    for (int r = 0; r < n_runs; r++)
        if (first[r] == ids1[mode]) {
            out2 += tally(ids2, second[r], c2);
            n2++;
        }
    int df2 = 0;
    double x2 = chi_square(c2, out2, p2, n2, &df2);
    CHECK(n2 >= n_runs / 10 && df2 >= 1 && df2 <= 10 && x2 < CHI2_999[df2],
          "%s: second token given the first: chi-square %.2f on %d df over %d runs, %d outside", label, x2, df2, n2, out2);
    printf("  %s: %d runs, drafted %lld accepted %lld rejected %lld; chi-square first %.2f (%d df), second %.2f (%d df, %d runs)\n",
           label, n_runs, (long long)drafted, (long long)accepted, (long long)rejected, x1, df, x2, df2, n2);
    CHECK(accepted > n_runs / 10 && rejected > n_runs / 10, "%s: both accept and reject paths exercised (%lld, %lld)",
          label, (long long)accepted, (long long)rejected);
    /* the same counts against the draft's own distribution: the check can fail */
    if (draft_for_contrast) {
        ty_context *dref = new_ctx(draft_for_contrast, 128, NULL);
        REQUIRE(dref && ty_context_eval(dref, prompt, np, TY_LOGITS_LAST) == TY_OK &&
                    ty_context_logits(dref, -1, &lg) == TY_OK, "draft eval");
        ty_token qids[TOPK];
        double q[TOPK];
        topk_softmax(lg, V, temp, qids, q);
        int cq[TOPK] = {0}, outq = 0, dfq = 0;
        for (int r = 0; r < n_runs; r++) outq += tally(qids, first[r], cq);
        double xq = chi_square(cq, outq, q, n_runs, &dfq);
        CHECK(xq > 10 * CHI2_999[dfq >= 1 && dfq <= 10 ? dfq : 10], "%s: the draft's distribution would pass too (%.2f)",
              label, xq);
        ty_context_free(dref);
    }
    /* same seed, same text */
    run_out o2 = {0};
    sp.seed = 77;
    run(c, &sp, prompt, np, 12, 0, 0, &o);
    run(c, &sp, prompt, np, 12, 0, 0, &o2);
    CHECK(o.rc == TY_OK && o.n == o2.n && memcmp(o.toks, o2.toks, sizeof *o.toks * (size_t)o.n) == 0,
          "%s: same seed, different text", label);
    run_free(&o);
    run_free(&o2);
    free(first);
    free(second);
    ty_context_free(ref);
    return 0;
}

/* A prompt "BOS a b c d e a b" whose lookup proposal c is the target's most likely next token (a
 * fixed point of c <- argmax after the prompt), so that it is accepted often but not always. */
static int64_t lookup_prompt(ty_model *t, ty_token *p) {
    ty_context *c = new_ctx(t, 64, NULL);
    if (!c) return -1;
    const ty_token base[8] = {1, 1500, 2100, 0, 3300, 4100, 1500, 2100};
    memcpy(p, base, sizeof base);
    int64_t V = ty_n_vocab(t), found = -1;
    for (ty_token cand = 5000; cand < 5200 && found < 0; cand++) {
        p[3] = cand;
        const float *lg = NULL;
        ty_context_truncate(c, 0);
        if (ty_context_eval(c, p, 8, TY_LOGITS_LAST) || ty_context_logits(c, -1, &lg)) break;
        ty_token ids[TOPK];
        double q[TOPK];
        topk_softmax(lg, V, 1.0f, ids, q);
        if (ids[0] == cand && q[0] < 0.8) found = 8;
        else if (q[0] < 0.8) { /* try the model's own choice next */
            p[3] = ids[0];
            ty_context_truncate(c, 0);
            if (ty_context_eval(c, p, 8, TY_LOGITS_LAST) || ty_context_logits(c, -1, &lg)) break;
            topk_softmax(lg, V, 1.0f, ids, q);
            if (ids[0] == p[3] && q[0] < 0.8) found = 8;
        }
    }
    ty_context_free(c);
    return found;
}

static int test_sampling(void) {
    /* q4_0 and q4_k_m of one fixture: their top-8 distributions overlap by about 0.74, so both
     * branches of the rule are taken often */
    ty_model *t = open_model(E2E_Q4), *d = open_model(GGUF "tiny-e2e-q4_0.gguf");
    REQUIRE(t && d, "models");
    ty_token p[64];
    int64_t np = tokenize(t, "The lesson plan for the first week covers", p, 64);
    REQUIRE(np > 3, "prompt");
    spec_cfg cfg = {d, 0, 2, 2, "draft"};
    ty_context *c = new_ctx(t, 128, &cfg);
    REQUIRE(c, "context");
    sampling_rule(t, d, c, p, np, 2000, "sampling, draft q4_0 k=2");
    ty_context_free(c);
    /* prompt lookup proposes one certain token: accepted with probability p(token) */
    ty_token rep[8];
    int64_t nr = lookup_prompt(t, rep);
    REQUIRE(nr == 8, "no prompt found whose lookup proposal is the target's favourite");
    spec_cfg lk = {NULL, 1, 3, 3, "lookup"};
    c = new_ctx(t, 128, &lk);
    REQUIRE(c, "context");
    sampling_rule(t, NULL, c, rep, nr, 1000, "sampling, lookup k=3");
    ty_context_free(c);
    ty_model_close(t);
    ty_model_close(d);
    return 0;
}

/* ---- 5. acceptance on the trained pair ------------------------------------------------------------- */

/* exact = 1: both models in exact math, the arithmetic of acceptance.json's reference (transformers
 * in float32 on the dequantized Q8_0 weights): the same greedy text, so the same tokens per step,
 * within 1% (measured: equal to the third decimal). exact = 0: the fast path with 8-bit activations,
 * whose greedy text leaves theirs at near-ties (about 60% of the tokens agree before the first
 * difference) and whose tokens per step are therefore measured on other text: printed, and the
 * output checked identical to the target's, but not compared with theirs. */
static int test_acceptance(int exact) {
    char err[256];
    json *doc = json_parse_file(YARD "acceptance.json", err, sizeof err);
    REQUIRE(doc, "acceptance.json: %s", err);
    const json *prompts = json_get(doc, "prompts"), *ref = json_get(doc, "q8_0");
    const json *ref_steps = json_get(ref, "tokens_per_target_step"), *ref_greedy = json_get(ref, "target_greedy_tokens");
    size_t n_prompts = json_len(prompts);
    REQUIRE(n_prompts == 20, "20 prompts, got %zu", n_prompts);
    ty_model *t = open_model_math(YARD_T, exact), *d = open_model_math(YARD_D, exact);
    REQUIRE(t && d, "yard models");
    int64_t V = ty_n_vocab(t);
    const int64_t n_new = 64;
    /* the target alone: greedy continuations, compared with theirs */
    ty_token (*plain)[64] = calloc(n_prompts, sizeof *plain);
    ty_token (*ids)[32] = calloc(n_prompts, sizeof *ids);
    REQUIRE(plain && ids, "memory");
    ty_context *pc = new_ctx(t, 128, NULL);
    REQUIRE(pc, "context");
    run_out o = {0};
    int64_t same_prefix = 0;
    for (size_t i = 0; i < n_prompts; i++) {
        const json *jid = json_get(json_at(prompts, i), "ids");
        REQUIRE(json_len(jid) == 32, "prompt %zu has %zu ids", i, json_len(jid));
        for (int j = 0; j < 32; j++) ids[i][j] = (ty_token)json_num(json_at(jid, (size_t)j));
        run(pc, NULL, ids[i], 32, n_new, 0, 0, &o);
        REQUIRE(o.rc == TY_OK && o.n == n_new, "plain run %zu", i);
        memcpy(plain[i], o.toks, sizeof plain[i]);
        const json *theirs = json_at(ref_greedy, i);
        int64_t j = 0;
        while (j < n_new && plain[i][j] == (ty_token)json_num(json_at(theirs, (size_t)j))) j++;
        same_prefix += j;
    }
    const int64_t all = n_new * (int64_t)n_prompts;
    printf("  %s math: target greedy continuations: %lld of %lld tokens agree with acceptance.json's before the "
           "first difference\n", exact ? "exact" : "fast", (long long)same_prefix, (long long)all);
    if (exact)
        CHECK(same_prefix >= all - all / 20, "exact math: our target's greedy text is not theirs");
    else
        CHECK(same_prefix >= all / 2, "our target's greedy text is far from theirs");
    printf("  k   tokens/step (ours)   (acceptance.json q8_0)   per-token agreement\n");
    for (int k = 1; k <= 8; k++) {
        /* Exact math is ~10x slower: k = 4 and 8 only. Sanitizer builds run k = 1, 4, 8 of the fast
         * path only (their point is the memory; the exact part took 9 of CI's 19 minutes there). */
        if (exact && k != 4 && k != 8) continue;
        if (!exact && SANITIZED && k != 1 && k != 4 && k != 8) continue;
        spec_cfg cfg = {d, 0, k, k, "yard draft"};
        ty_context *c = new_ctx(t, 128, &cfg);
        REQUIRE(c, "context");
        int64_t gen = 0, steps = 0, acc = 0, rej = 0;
        int identical = 1;
        for (size_t i = 0; i < n_prompts; i++) {
            run(c, NULL, ids[i], 32, n_new, 0, 0, &o);
            identical &= o.rc == TY_OK && o.n == n_new && memcmp(o.toks, plain[i], sizeof plain[i]) == 0;
            gen += o.st.n_generated;
            steps += o.st.n_steps;
            acc += o.st.n_accepted;
            rej += o.st.n_rejected;
        }
        CHECK(identical, "k=%d: speculative output differs from the target's on the trained pair", k);
        double ours = (double)gen / (double)steps;
        char key[16];
        snprintf(key, sizeof key, "%d", k);
        double theirs = json_num(json_get(ref_steps, key));
        printf("  %d   %.3f                %s%.3f                    %.3f\n", k, ours, isnan(theirs) ? "(none) " : "",
               isnan(theirs) ? 0.0 : theirs, (double)acc / (double)(acc + rej));
        if (exact && !isnan(theirs))
            CHECK(fabs(ours - theirs) <= 0.01 * theirs, "exact math, k=%d: %.3f tokens per step, acceptance.json %.3f",
                  k, ours, theirs);
        ty_context_free(c);
    }
    (void)V;
    run_free(&o);
    free(plain);
    free(ids);
    ty_context_free(pc);
    ty_model_close(t);
    ty_model_close(d);
    json_free(doc);
    return 0;
}

static double seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int main(void) {
    double t0 = seconds();
    test_batch_bit_identity(E2E_Q4);
    test_batch_bit_identity(E2E_F16);
    test_batch_bit_identity(YARD_T);
    test_lookup();
    test_top_k_order();
    test_refusals();
    double t1 = seconds();
    test_greedy_fixtures();
    double t2 = seconds();
    test_greedy_eos();
    double t3 = seconds();
    test_sampling();
    double t4 = seconds();
    test_acceptance(0);
    if (!SANITIZED) test_acceptance(1);
    double t5 = seconds();
    printf("  seconds: basics %.1f, greedy fixtures %.1f, EOS %.1f, sampling %.1f, acceptance %.1f\n", t1 - t0,
           t2 - t1, t3 - t2, t4 - t3, t5 - t4);
    return check_summary("test_spec");
}
