/* cmd_bench.c - `trainyard bench`: prompt-processing and generation speed, comparable with
 * llama.cpp's llama-bench (pp512 = 512 prompt tokens in one pass from an empty context; tg128 = 128
 * tokens decoded one at a time), plus the decode roofline of this machine: the weight bytes a
 * decode step reads divided by a memory bandwidth measured here and now. */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/internal.h" /* ty_context_fill_synthetic */
#include "cli.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---- memory bandwidth: threads summing disjoint parts of a large array -------------------------- */

typedef struct bw_job {
    const uint64_t *p;
    size_t n;
    int simd; /* use the AVX2 loop */
    uint64_t sum;
} bw_job;

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
/* 32-byte loads with a software prefetch ahead, as the fast matmul kernels read weights: the
 * bandwidth a decode step can actually reach, not a pessimistic scalar loop. */
__attribute__((target("avx2"))) static uint64_t read_avx2(const uint64_t *p, size_t n) {
    __m256i a = _mm256_setzero_si256(), b = a, c = a, d = a;
    for (size_t i = 0; i + 16 <= n; i += 16) {
        _mm_prefetch((const char *)(p + i) + 4096, _MM_HINT_T0);
        _mm_prefetch((const char *)(p + i) + 4096 + 64, _MM_HINT_T0);
        a = _mm256_add_epi64(a, _mm256_loadu_si256((const __m256i *)(p + i)));
        b = _mm256_add_epi64(b, _mm256_loadu_si256((const __m256i *)(p + i + 4)));
        c = _mm256_add_epi64(c, _mm256_loadu_si256((const __m256i *)(p + i + 8)));
        d = _mm256_add_epi64(d, _mm256_loadu_si256((const __m256i *)(p + i + 12)));
    }
    a = _mm256_add_epi64(_mm256_add_epi64(a, b), _mm256_add_epi64(c, d));
    uint64_t out[4];
    _mm256_storeu_si256((__m256i *)out, a);
    return out[0] + out[1] + out[2] + out[3];
}
#endif

static void *bw_read(void *arg) {
    bw_job *j = arg;
#if defined(__x86_64__) && defined(__GNUC__)
    if (j->simd && __builtin_cpu_supports("avx2")) {
        j->sum = read_avx2(j->p, j->n);
        return NULL;
    }
#endif
    uint64_t s[8] = {0};
    for (size_t i = 0; i + 8 <= j->n; i += 8)
        for (int k = 0; k < 8; k++) s[k] += j->p[i + k];
    j->sum = s[0] + s[1] + s[2] + s[3] + s[4] + s[5] + s[6] + s[7];
    return NULL;
}

/* Best of several read passes over 1 GiB with n_threads threads, in GB/s (1e9 bytes), taking the
 * faster of a plain and an AVX2 loop (the higher bandwidth makes the stricter roofline). */
static double measure_bandwidth(int n_threads) {
    const size_t bytes = (size_t)1 << 30, n = bytes / sizeof(uint64_t);
    uint64_t *buf = malloc(bytes);
    if (!buf) return 0;
    for (size_t i = 0; i < n; i++) buf[i] = i;
    pthread_t th[256];
    bw_job jobs[256];
    if (n_threads > 256) n_threads = 256;
    double best = 0;
    for (int rep = 0; rep < 6; rep++) {
        double t0 = now();
        for (int t = 0; t < n_threads; t++) {
            jobs[t] = (bw_job){buf + n / (size_t)n_threads * (size_t)t, n / (size_t)n_threads, rep % 2, 0};
            pthread_create(&th[t], NULL, bw_read, &jobs[t]);
        }
        uint64_t total = 0;
        for (int t = 0; t < n_threads; t++) {
            pthread_join(th[t], NULL);
            total += jobs[t].sum;
        }
        double dt = now() - t0;
        if (total == 42) fputc(' ', stderr); /* keeps the sums alive */
        if (bytes / dt / 1e9 > best) best = (double)bytes / dt / 1e9;
    }
    free(buf);
    return best;
}

/* ---- runs ---------------------------------------------------------------------------------------- */

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

typedef struct result {
    double median, min, max;
} result;

static result summarize(double *tps, int r) {
    qsort(tps, (size_t)r, sizeof *tps, cmp_double);
    result s = {r % 2 ? tps[r / 2] : 0.5 * (tps[r / 2 - 1] + tps[r / 2]), tps[0], tps[r - 1]};
    return s;
}

static void random_tokens(ty_token *t, int64_t n, int64_t n_vocab, uint64_t *state) {
    for (int64_t i = 0; i < n; i++) {
        *state = *state * 6364136223846793005ull + 1442695040888963407ull;
        t[i] = (ty_token)(3 + (*state >> 33) % (uint64_t)(n_vocab - 3));
    }
}

/* Fills the context to `depth` tokens, by real evaluation or (synthetic) by writing K/V values
 * straight into the cache, and returns its status. */
static int fill(ty_context *c, int64_t depth, int64_t n_vocab, uint64_t *rng, int synthetic) {
    if (ty_context_truncate(c, 0)) return 1;
    if (depth == 0) return 0;
    if (synthetic) return ty_context_fill_synthetic(c, depth, *rng += 0x9E3779B97F4A7C15ull);
    ty_token *t = malloc(sizeof *t * (size_t)depth);
    if (!t) return 1;
    random_tokens(t, depth, n_vocab, rng);
    int rc = ty_context_eval(c, t, depth, TY_LOGITS_LAST);
    free(t);
    return rc;
}

/* roofline_tps > 0: decode against the host's measured roofline (CPU); weight_bytes > 0 instead: the
 * rate at which decode reads the weights (a device, whose memory the host cannot measure). */
static void report(int json, const char *test, int64_t n_prompt, int64_t n_gen, int64_t depth,
                   int threads, result r, double roofline_tps, double weight_bytes, int synthetic) {
    const char *fill_kind = depth == 0 ? "none" : synthetic ? "synthetic" : "real";
    if (json) {
        printf("{\"test\": \"%s\", \"n_prompt\": %lld, \"n_gen\": %lld, \"depth\": %lld, \"threads\": %d, "
               "\"tokens_per_second\": %.3f, \"min\": %.3f, \"max\": %.3f",
               test, (long long)n_prompt, (long long)n_gen, (long long)depth, threads, r.median, r.min, r.max);
        if (roofline_tps > 0)
            printf(", \"roofline_tokens_per_second\": %.3f, \"roofline_fraction\": %.3f", roofline_tps,
                   r.median / roofline_tps);
        else if (weight_bytes > 0)
            printf(", \"weight_bytes_per_second\": %.4g", r.median * weight_bytes);
        printf(", \"depth_fill\": \"%s\"}\n", fill_kind);
    } else {
        printf("%-16s %8lld %8lld %8lld %8d %12.2f %10.2f %10.2f", test, (long long)n_prompt, (long long)n_gen,
               (long long)depth, threads, r.median, r.min, r.max);
        if (roofline_tps > 0) printf("   %5.1f%% of %.2f", 100 * r.median / roofline_tps, roofline_tps);
        else if (weight_bytes > 0) printf("   weights read at %.2f TB/s", r.median * weight_bytes / 1e12);
        printf(synthetic && depth ? "   (synthetic depth)\n" : "\n");
    }
    fflush(stdout);
}

int cmd_bench(int argc, char **argv) {
    cli_opts o;
    if (cli_parse(argc, argv, "-m --model -p -n -t -r --ctx-depth --synthetic-depth --json --device --no-bandwidth --kv "
                              "--draft-model --draft-max --draft-min --lookup --oracle-accept", &o)) {
        cli_done(&o);
        return 2;
    }
    int n_threads = o.n_threads, json = o.json;
    int64_t bench_p = 512, bench_n = o.n_predict >= 0 ? o.n_predict : 128, depth = o.depth;
    int reps = o.repeats > 0 ? (int)o.repeats : 3;
    if (o.prompt) {
        char *end;
        errno = 0;
        long long v = strtoll(o.prompt, &end, 10);
        if (errno || end == o.prompt || *end || v < 0 || v > (1 << 20)) {
            cli_done(&o);
            fprintf(stderr, "trainyard bench: -p expects a prompt length in tokens, got '%s'\n", o.prompt);
            return 2;
        }
        bench_p = v;
    }
    if (o.draft_model || o.lookup) {
        if (o.depth || o.synthetic_depth) {
            cli_done(&o);
            fprintf(stderr, "trainyard bench: --ctx-depth does not combine with speculative decoding\n");
            return 2;
        }
        int ret = bench_speculative(&o);
        cli_done(&o);
        return ret;
    }
    if (o.oracle_accept || o.draft_max || o.draft_min) {
        cli_done(&o);
        fprintf(stderr, "trainyard bench: --oracle-accept, --draft-max and --draft-min need --draft-model or --lookup\n");
        return 2;
    }
    ty_model *m = NULL;
    ty_context *c = NULL;
    int ret = cli_open_model(&o, &m, NULL);
    ty_model_info info;
    if (!ret) {
        ty_model_get_info(m, &info);
        int64_t need = depth + (bench_p > bench_n ? bench_p : bench_n);
        ty_context_params cp = ty_context_default_params();
        cp.n_ctx = need + 16;
        cp.n_batch = bench_p > 0 ? bench_p : 512;
        cp.kv_type = o.kv_type;
        char *err = NULL;
        int rc = ty_context_new(m, &cp, &c, &err);
        if (rc) ret = cli_fail("cannot create context", err ? err : ty_status_string(rc));
        ty_free(err);
    }
    if (!ret && n_threads <= 0) n_threads = info.n_threads;
    double bw = 0, roofline = 0;
    /* the host's memory bandwidth bounds decode on the CPU only */
    const bool on_cpu = strcmp(o.device ? o.device : "cpu", "cpu") == 0;
    if (!ret && !o.no_bandwidth && !on_cpu && !json)
        printf("model %s: %s, %.2f GiB; decode reads %.2f GB per token (on %s)\n", o.model ? o.model : cli_default_model(),
               info.file_type, (double)info.file_bytes / (1 << 30), (double)info.bytes_per_token / 1e9, o.device);
    if (!ret && !o.no_bandwidth && on_cpu) {
        bw = measure_bandwidth(n_threads);
        roofline = bw * 1e9 / (double)info.bytes_per_token;
        if (!json)
            printf("model %s: %s, %.2f GiB; decode reads %.2f GB per token; memory read bandwidth "
                   "%.1f GB/s (%d threads) -> decode roofline %.2f tokens/s\n",
                   o.model ? o.model : cli_default_model(), info.file_type,
                   (double)info.file_bytes / (1 << 30), (double)info.bytes_per_token / 1e9, bw, n_threads,
                   roofline);
    }
    if (!ret && !json)
        printf("%-16s %8s %8s %8s %8s %12s %10s %10s\n", "test", "n_prompt", "n_gen", "depth", "threads",
               "tokens/s", "min", "max");
    double *tps = calloc((size_t)reps, sizeof *tps);
    ty_token *toks = malloc(sizeof *toks * (size_t)(bench_p > 1 ? bench_p : 1));
    uint64_t rng = 1234;
    if (!tps || !toks) ret = ret ? ret : cli_fail("bench", "out of memory");
    /* warm-up: page the weights in and start the threads with one token; a GPU also loads each
     * kernel and sizes cuBLAS's workspace on first use (the first pp512 on an H100 took 4x the
     * others, and 1.5x after a 64-token warm-up), so there the whole prompt runs once too, as
     * llama-bench's warm-up does, and at the benchmarked depth (a recording per split count) */
    const int64_t warm[2] = {1, on_cpu ? 0 : bench_p};
    for (int i = 0; i < 2 && !ret; i++) {
        if (i > 0 && warm[i] <= 1) break;
        random_tokens(toks, warm[i], info.n_vocab, &rng);
        if (fill(c, on_cpu ? 0 : depth, info.n_vocab, &rng, on_cpu ? 0 : o.synthetic_depth) ||
            ty_context_eval(c, toks, warm[i], TY_LOGITS_LAST))
            ret = cli_fail("bench", ty_context_errmsg(c));
    }
    if (!ret && bench_p > 0) {
        for (int r = 0; r < reps && !ret; r++) {
            random_tokens(toks, bench_p, info.n_vocab, &rng);
            if (fill(c, depth, info.n_vocab, &rng, o.synthetic_depth)) { ret = cli_fail("bench", ty_context_errmsg(c)); break; }
            double t0 = now();
            if (ty_context_eval(c, toks, bench_p, TY_LOGITS_LAST)) ret = cli_fail("bench", ty_context_errmsg(c));
            tps[r] = (double)bench_p / (now() - t0);
        }
        char name[64];
        snprintf(name, sizeof name, "pp%lld", (long long)bench_p);
        if (!ret) report(json, name, bench_p, 0, depth, n_threads, summarize(tps, reps), 0, 0, o.synthetic_depth);
    }
    if (!ret && bench_n > 0) {
        for (int r = 0; r < reps && !ret; r++) {
            if (fill(c, depth, info.n_vocab, &rng, o.synthetic_depth)) { ret = cli_fail("bench", ty_context_errmsg(c)); break; }
            double t0 = now();
            for (int64_t i = 0; i < bench_n && !ret; i++) {
                random_tokens(toks, 1, info.n_vocab, &rng);
                if (ty_context_eval(c, toks, 1, TY_LOGITS_LAST)) ret = cli_fail("bench", ty_context_errmsg(c));
            }
            tps[r] = (double)bench_n / (now() - t0);
        }
        char name[64];
        snprintf(name, sizeof name, "tg%lld", (long long)bench_n);
        if (!ret)
            report(json, name, 0, bench_n, depth, n_threads, summarize(tps, reps), roofline,
                   on_cpu || o.no_bandwidth ? 0 : (double)info.bytes_per_token, o.synthetic_depth);
    }
    free(tps);
    free(toks);
    ty_context_free(c);
    ty_model_close(m);
    cli_done(&o);
    return ret;
}
