/* bench_spec.c - `trainyard bench --draft-model FILE` (or --lookup): the speedup of speculative
 * decoding over plain greedy decoding of the same prompt, both through ty_generate.
 *
 * Oracle mode (--oracle-accept RATE) controls the acceptance rate while every cost stays real: the
 * target's greedy continuation is recorded first (by the plain run), then the draft model runs as
 * always but each of its proposals is replaced by the recorded token, corrupted (replaced by another
 * token) with probability 1 - RATE. A greedy target accepts exactly the uncorrupted ones. Several
 * rates (--oracle-accept 0.5,0.8,1) share one measurement of plain decoding. Speeds are the best
 * of -r repeats, generation only (the prompt excluded), through ty_generate's statistics. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/internal.h" /* ty_context_set_draft_oracle */
#include "cli.h"

#define SPEC_PROMPT_DEFAULT 16

typedef struct oracle_state {
    const ty_token *recorded;
    int64_t n_recorded, prompt_len, n_vocab;
    double rate;
    uint64_t rng;
    int64_t n_calls, n_corrupted;
} oracle_state;

static uint64_t next_u64(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static ty_token oracle(void *user, int64_t pos, ty_token proposed) {
    oracle_state *o = user;
    int64_t i = pos - o->prompt_len;
    if (i < 0 || i >= o->n_recorded) return proposed; /* beyond the recording: the draft's own */
    ty_token tok = o->recorded[i];
    o->n_calls++;
    if ((double)(next_u64(&o->rng) >> 11) * (1.0 / 9007199254740992.0) >= o->rate) {
        tok = (ty_token)((tok + 1 + (int64_t)(next_u64(&o->rng) % (uint64_t)(o->n_vocab - 1))) % o->n_vocab);
        o->n_corrupted++;
    }
    return tok;
}

typedef struct recorder {
    ty_token *toks;
    int64_t n, cap;
} recorder;

static int record_cb(void *user, ty_token tok, const char *piece, size_t len) {
    recorder *r = user;
    if (r->n < r->cap) r->toks[r->n] = tok;
    r->n++;
    return 0;
}

static int new_ctx(ty_model *m, const cli_opts *o, ty_model *draft, int64_t n_ctx, ty_context **c) {
    ty_context_params cp = ty_context_default_params();
    cp.n_ctx = n_ctx;
    cp.kv_type = o->kv_type;
    if (draft || o->lookup) cli_speculative_params(o, draft, &cp);
    char *err = NULL;
    int rc = ty_context_new(m, &cp, c, &err);
    if (rc) cli_fail("cannot create context", err ? err : ty_status_string(rc));
    ty_free(err);
    return rc ? 1 : 0;
}

/* One greedy generation of n tokens from the prompt in an emptied context; tokens/s of the
 * generation (prompt excluded). */
static int run(ty_context *c, const ty_token *prompt, int64_t n_prompt, int64_t n, recorder *rec,
               ty_generate_stats *st) {
    ty_sampler_params sp = ty_sampler_default_params();
    sp.temperature = 0;
    ty_sampler *s = NULL;
    if (ty_sampler_new(&sp, &s)) return cli_fail("bench", "out of memory");
    rec->n = 0;
    int rc = ty_context_truncate(c, 0);
    if (!rc) rc = ty_generate(c, s, prompt, n_prompt, n, record_cb, rec, st);
    ty_sampler_free(s);
    return rc ? cli_fail("bench", ty_context_errmsg(c)) : 0;
}

/* Parses "0.5,0.8,1" into rates[0..*n) (at most cap); prints the error and returns 2 if bad. */
static int parse_rates(const char *s, double *rates, int cap, int *n) {
    *n = 0;
    for (const char *p = s; *p;) {
        char *end;
        double v = strtod(p, &end);
        if (end == p || !(v >= 0 && v <= 1) || (*end && *end != ',') || *n == cap) {
            fprintf(stderr, "trainyard bench: --oracle-accept expects up to %d rates in [0, 1] separated by "
                            "commas, got '%s'\n", cap, s);
            return 2;
        }
        rates[(*n)++] = v;
        p = *end ? end + 1 : end;
    }
    if (*n == 0) {
        fprintf(stderr, "trainyard bench: --oracle-accept expects a rate\n");
        return 2;
    }
    return 0;
}

int bench_speculative(const cli_opts *o) {
    int64_t n_prompt = SPEC_PROMPT_DEFAULT, n_gen = o->n_predict > 0 ? o->n_predict : 128;
    if (o->prompt) n_prompt = atoll(o->prompt); /* checked by cmd_bench */
    if (n_prompt < 1) n_prompt = 1;
    int reps = o->repeats > 0 ? (int)o->repeats : 3;
    double rates[16] = {-1}; /* -1: the draft's own proposals */
    int n_rates = 1;
    if (o->oracle_accept && parse_rates(o->oracle_accept, rates, 16, &n_rates)) return 2;
    ty_model *m = NULL, *draft = NULL;
    ty_context *plain = NULL, *spec = NULL;
    ty_token *prompt = malloc(sizeof *prompt * (size_t)n_prompt);
    recorder want = {malloc(sizeof(ty_token) * (size_t)n_gen), 0, n_gen};
    recorder got = {malloc(sizeof(ty_token) * (size_t)n_gen), 0, n_gen};
    int ret = !prompt || !want.toks || !got.toks ? cli_fail("bench", "out of memory") : 0;
    if (!ret) ret = cli_open_model(o, &m, NULL) || cli_open_draft(o, &draft);
    int64_t n_ctx = n_prompt + n_gen + 16;
    if (!ret) ret = new_ctx(m, o, NULL, n_ctx, &plain) || new_ctx(m, o, draft, n_ctx, &spec);
    if (ret) goto done;
    ty_model_info info;
    ty_model_get_info(m, &info);
    uint64_t rng = 1234;
    for (int64_t i = 0; i < n_prompt; i++)
        prompt[i] = (ty_token)(3 + next_u64(&rng) % (uint64_t)(info.n_vocab - 3));
    prompt[0] = ty_token_bos(m) >= 0 ? ty_token_bos(m) : prompt[0];
    /* warm-up: page the weights in, start the threads */
    ty_generate_stats st;
    if ((ret = run(plain, prompt, n_prompt, 1, &got, &st)) || (ret = run(spec, prompt, n_prompt, 1, &got, &st)))
        goto done;
    /* plain decoding, best of reps; the first run records the continuation for the oracle */
    double plain_tps = 0;
    for (int r = 0; r < reps && !ret; r++) {
        if ((ret = run(plain, prompt, n_prompt, n_gen, r == 0 ? &want : &got, &st))) goto done;
        double tps = (double)st.n_generated / st.generate_seconds;
        if (tps > plain_tps) plain_tps = tps;
    }
    char k[32];
    if (o->draft_min && o->draft_min == o->draft_max) snprintf(k, sizeof k, "%d", o->draft_max);
    else snprintf(k, sizeof k, "%d-%d", o->draft_min ? o->draft_min : 1, o->draft_max ? o->draft_max : TY_DRAFT_MAX_DEFAULT);
    if (!o->json)
        printf("%-6s %-7s %8s %8s %12s %12s %8s %10s %10s %9s\n", "k", "oracle", "n_gen", "threads", "plain t/s",
               "spec t/s", "speedup", "accepted", "tok/step", "identical");
    oracle_state os = {want.toks, want.n < n_gen ? want.n : n_gen, n_prompt, info.n_vocab, 0, 0, 0, 0};
    int all_identical = 1;
    for (int ri = 0; ri < n_rates && !ret; ri++) {
        os.rate = rates[ri];
        ty_context_set_draft_oracle(spec, rates[ri] >= 0 ? oracle : NULL, &os);
        double spec_tps = 0;
        ty_generate_stats best = {0};
        int identical = 1;
        for (int r = 0; r < reps && !ret; r++) {
            os.rng = 42; /* every repeat sees the same corruptions: only the timing varies */
            if ((ret = run(spec, prompt, n_prompt, n_gen, &got, &st))) goto done;
            identical &= got.n == want.n &&
                         memcmp(got.toks, want.toks, sizeof *got.toks * (size_t)(got.n < n_gen ? got.n : n_gen)) == 0;
            double tps = (double)st.n_generated / st.generate_seconds;
            if (tps > spec_tps) spec_tps = tps, best = st;
        }
        all_identical &= identical;
        double checked = (double)(best.n_accepted + best.n_rejected);
        double per_token = checked > 0 ? (double)best.n_accepted / checked : 0;
        double per_step = best.n_steps ? (double)best.n_generated / (double)best.n_steps : 0;
        char oracle_s[16];
        snprintf(oracle_s, sizeof oracle_s, rates[ri] >= 0 ? "%.2f" : "off", rates[ri]);
        if (o->json)
            printf("{\"test\": \"spec\", \"n_prompt\": %lld, \"n_gen\": %lld, \"k\": \"%s\", \"oracle_accept\": \"%s\", "
                   "\"lookup\": %d, \"threads\": %d, \"plain_tokens_per_second\": %.3f, \"spec_tokens_per_second\": %.3f, "
                   "\"speedup\": %.3f, \"acceptance_per_token\": %.4f, \"tokens_per_step\": %.3f, "
                   "\"n_drafted\": %lld, \"n_accepted\": %lld, \"n_steps\": %lld, \"identical\": %d}\n",
                   (long long)n_prompt, (long long)n_gen, k, oracle_s, o->lookup, info.n_threads, plain_tps, spec_tps,
                   spec_tps / plain_tps, per_token, per_step, (long long)best.n_drafted, (long long)best.n_accepted,
                   (long long)best.n_steps, identical);
        else
            printf("%-6s %-7s %8lld %8d %12.2f %12.2f %7.2fx %9.1f%% %10.2f %9s\n", k, oracle_s, (long long)n_gen,
                   info.n_threads, plain_tps, spec_tps, spec_tps / plain_tps, 100 * per_token, per_step,
                   identical ? "yes" : "NO");
        fflush(stdout);
    }
    if (!all_identical) ret = cli_fail("bench", "speculative output differs from plain greedy decoding");
done:
    ty_context_free(spec);
    ty_context_free(plain);
    ty_model_close(draft);
    ty_model_close(m);
    free(prompt);
    free(want.toks);
    free(got.toks);
    return ret;
}
