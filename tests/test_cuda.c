/* test_cuda.c - the CUDA backend against the CPU backend's exact path.
 *
 * Skips (0 passed, 0 failed) when the build has no CUDA or the machine no CUDA device: CI has no GPU.
 * On a GPU machine (scripts/gpu_check.sh):
 *
 * 1. ops, one at a time, on inputs uploaded through get_rows of an F32 table (the backend has no
 *    host-to-device op; an F32 get_rows is an exact copy, checked by a round trip):
 *      get_rows    every weight type, bit-identical to ty_dequantize_row
 *      matmul      every weight type, n = 1 (matrix-vector kernel) and n > 1 (tiled kernel), ragged
 *                  shapes; |gpu - ref| <= 2e-5 * sum|w x| + 1e-6 per element (fp32 vs double); the
 *                  8-bit path for 1..16 tokens, each token of a batch bit-identical to it alone
 *      rmsnorm     F32/F16/BF16 weights, rel 1e-6;  rope: within 2 float ulps of the CPU's
 *      kv_store    F32/F16/Q8_0 caches bit-identical to the CPU's; attention (causal, GQA, several
 *                  tiles, prefill and decode) max error <= 1e-5 of the largest output; on the fast
 *                  path, prompts over an F16 cache with head_dim 128 run on fp16 tensor cores: <= 3e-3
 *      swiglu, add, copy; errors: an unknown weight poisons the backend, download returns NaN
 *      matmul_add  every weight type and shape above: bit-identical to matmul, then add
 *    fused ops against a backend with them off (TY_CUDA_NO_FUSE=1), bit for bit (fast path):
 *      rmsnorm and swiglu quantizing their output for the next matmul (Q4_0, Q8_0, Q4_K, Q5_K, Q6_K;
 *      1..16 tokens; the matmuls then quantize nothing: the "act_quant" counter), matmul_add (and at
 *      17 tokens, cuBLAS with beta = 1: within 1e-6), rope_store vs rope + kv_store (q, k, caches),
 *      three matmuls of one quantized input (one launch when fused, as q, k, v)
 * 2. whole models: each GGUF in $TY_FIXTURES/gguf (default ../shared/fixtures; cases from its
 *    cases.txt), data/yard-target-27m-q8_0.gguf and the files in $TY_CUDA_MODELS (colon-separated;
 *    random token sequences): logits at every position (F32 KV cache) vs the CPU exact path,
 *    rel_l2 <= 1e-4; the same through batches of 7 tokens and one token per eval (decode) vs the
 *    GPU's own one-batch logits, rel_l2 <= 1e-4; F16 / Q8_0 KV caches vs the CPU with the same cache,
 *    rel_l2 <= 1e-3 / 1e-2; greedy 32-token continuations identical to the CPU's except after a
 *    near-tie (CPU top-2 margin < 1e-3), where the comparison stops. Fused vs unfused ops
 *    (TY_CUDA_NO_FUSE=1): logits bit-identical for the exact path (prompt and decode) and for fast
 *    decoding with F32, F16 and Q8_0 KV caches; fast prompts within rel_l2 1e-5.
 * 3. $TY_7B (a GGUF, e.g. a synthesized 7B Q4_K_M): logits of the first 4 positions of a short random
 *    sequence vs the CPU exact path, rel_l2 <= 1e-3 (32 layers of fp32 vs double accumulation).
 *
 * TY_CUDA_QUICK=1 keeps it short (for compute-sanitizer): fewer shapes, one model, two cases. */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/internal.h"
#include "backend/backend.h"
#include "check.h"
#include "quant/quant.h"
#include "trainyard.h"

static int quick;
static int attn_fast; /* test_attention's GPU backend is off the exact path */

/* TY_CUDA_NO_MMA set (not "0"): the backend keeps its tensor-core kernels off. */
static int mma_off(void) {
    const char *e = getenv("TY_CUDA_NO_MMA");
    return e && *e && strcmp(e, "0") != 0;
}
static unsigned long long rng = 0x1234567ull;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---- helpers: weights and a fake model that carries them to the GPU --------------------------- */

typedef struct tweight {
    ty_weight w;
    uint8_t *data;
} tweight;

/* A ne1 x ne0 matrix of `type` from random floats (row scales vary over 3 decades). */
static void make_weight(tweight *t, const char *name, uint32_t type, int64_t ne0, int64_t ne1) {
    uint64_t rb = ty_row_size(type, ne0);
    t->data = malloc(rb * (uint64_t)ne1 + 16);
    float *row = malloc(sizeof(float) * (size_t)ne0);
    for (int64_t r = 0; r < ne1; r++) {
        float scale = powf(10.f, test_rand_uniform(&rng) * 1.5f);
        float shift = r % 3 == 0 ? 0.25f * scale : 0.f; /* some rows with a nonzero mean */
        for (int64_t i = 0; i < ne0; i++) row[i] = test_rand_uniform(&rng) * scale + shift;
        ty_quantize_row(type, row, t->data + (uint64_t)r * rb, ne0);
    }
    free(row);
    t->w = (ty_weight){.name = name, .type = type, .ne0 = ne0, .ne1 = ne1, .row_bytes = rb, .data = t->data};
}

/* An F32 table of given floats (ne1 rows of ne0). */
static void make_table(tweight *t, const char *name, const float *v, int64_t ne0, int64_t ne1) {
    t->data = malloc(sizeof(float) * (size_t)(ne0 * ne1));
    memcpy(t->data, v, sizeof(float) * (size_t)(ne0 * ne1));
    t->w = (ty_weight){.name = name, .type = TY_TYPE_F32, .ne0 = ne0, .ne1 = ne1,
                       .row_bytes = sizeof(float) * (uint64_t)ne0, .data = t->data};
}

static void free_weight(tweight *t) {
    free(t->data);
    memset(t, 0, sizeof *t);
}

/* Uploads up to 3 + 9 weights (NULL entries skipped) as one fake one-layer model. */
static int upload(ty_backend *gpu, const ty_weight *ws[], int n) {
    static ty_layer_weights L;
    static ty_model_desc d;
    memset(&L, 0, sizeof L);
    memset(&d, 0, sizeof d);
    ty_weight *slots[12] = {&d.tok_embd, &d.output_norm, &d.output, &L.attn_norm, &L.wq, &L.wk,
                            &L.wv,       &L.wo,          &L.ffn_norm, &L.w_gate,  &L.w_up, &L.w_down};
    for (int i = 0; i < n && i < 12; i++)
        if (ws[i]) *slots[i] = *ws[i];
    d.hp.n_layer = 1;
    d.layers = &L;
    ty_err err = {0};
    int rc = gpu->ops->load_model(gpu, &d, &err);
    CHECK(rc == TY_OK, "load_model: %s", err.msg);
    return rc;
}

static float *gpu_buf(ty_backend *gpu, size_t n) {
    float *b = NULL;
    ty_err err = {0};
    CHECK(gpu->ops->buffer_new(gpu, n, &b, &err) == TY_OK, "buffer_new(%zu): %s", n, err.msg);
    return b;
}

/* Uploads rows 0..n-1 of an (already uploaded) F32 table into a fresh device buffer. */
static float *gpu_rows(ty_backend *gpu, const tweight *table, int64_t n) {
    float *b = gpu_buf(gpu, (size_t)(n * table->w.ne0));
    int32_t *ids = malloc(sizeof(int32_t) * (size_t)n);
    for (int64_t i = 0; i < n; i++) ids[i] = (int32_t)i;
    if (b) gpu->ops->get_rows(gpu, &table->w, ids, n, b);
    free(ids);
    return b;
}

static float *download(ty_backend *gpu, const float *src, size_t n) {
    float *h = malloc(sizeof(float) * (n ? n : 1));
    gpu->ops->download(gpu, h, src, (int64_t)n);
    return h;
}

static void random_fill(float *v, size_t n, float scale) {
    for (size_t i = 0; i < n; i++) v[i] = test_rand_uniform(&rng) * scale;
}

/* The backend's record of failures: the ops return nothing, so a failure (a CUDA error, a bounds
 * check) is only visible here and as NaN downloads. Once failed, a backend stays failed. */
static void backend_ok(ty_backend *gpu, const char *after) {
    ty_err err = {0};
    CHECK(gpu->ops->status(gpu, &err) == TY_OK, "backend failed during the %s tests: %s", after, err.msg);
}

/* ---- 1. ops ------------------------------------------------------------------------------------- */

static const uint32_t TYPES[] = {TY_TYPE_F32,  TY_TYPE_F16,  TY_TYPE_BF16, TY_TYPE_Q4_0, TY_TYPE_Q4_1,
                                 TY_TYPE_Q5_0, TY_TYPE_Q5_1, TY_TYPE_Q8_0, TY_TYPE_Q2_K, TY_TYPE_Q3_K,
                                 TY_TYPE_Q4_K, TY_TYPE_Q5_K, TY_TYPE_Q6_K};

/* get_rows and matmul of one type and shape. */
static void test_matmul_shape(ty_backend *cpu, ty_backend *gpu, uint32_t type, int64_t K, int64_t R) {
    static const int64_t NS[] = {1, 2, 5, 64, 67, 130};
    const int n_ns = quick ? 3 : 6;
    const int64_t NMAX = 130;
    tweight W, X, Y0;
    make_weight(&W, "test.w", type, K, R);
    /* residual rows for matmul_add: one flat table row (table rows need a multiple of 32 floats) */
    const int64_t y0_len = (NMAX * R + 31) / 32 * 32;
    float *xh = malloc(sizeof(float) * (size_t)(NMAX * K)), *y0h = malloc(sizeof(float) * (size_t)y0_len);
    random_fill(xh, (size_t)(NMAX * K), 1.0f);
    random_fill(y0h, (size_t)y0_len, 4.0f);
    make_table(&X, "test.x", xh, K, NMAX);
    make_table(&Y0, "test.y0", y0h, y0_len, 1);
    const ty_weight *ws[] = {&W.w, NULL, NULL, NULL, &X.w, &Y0.w};
    if (upload(gpu, ws, 6)) goto done;
    const char *tn = ty_type_name(type);

    /* get_rows: exact */
    {
        int32_t ids[6] = {0, (int32_t)(R - 1), (int32_t)(R / 2), 0, 1 % (int32_t)R, (int32_t)(R - 1)};
        float *g = gpu_buf(gpu, (size_t)(6 * K));
        gpu->ops->get_rows(gpu, &W.w, ids, 6, g);
        float *got = download(gpu, g, (size_t)(6 * K)), *ref = malloc(sizeof(float) * (size_t)(6 * K));
        for (int i = 0; i < 6; i++) cpu->ops->get_rows(cpu, &W.w, &ids[i], 1, ref + i * K);
        CHECK(memcmp(got, ref, sizeof(float) * (size_t)(6 * K)) == 0, "get_rows %s K=%lld: not bit-identical", tn,
              (long long)K);
        free(got);
        free(ref);
        gpu->ops->buffer_free(gpu, g);
    }
    /* the upload trick itself */
    float *xd = gpu_rows(gpu, &X, NMAX);
    float *back = download(gpu, xd, (size_t)(NMAX * K));
    CHECK(memcmp(back, xh, sizeof(float) * (size_t)(NMAX * K)) == 0, "F32 get_rows round trip");
    free(back);

    float *yd = gpu_buf(gpu, (size_t)(NMAX * R));
    float *yref = malloc(sizeof(float) * (size_t)(NMAX * R));
    float *deq = malloc(sizeof(float) * (size_t)(R * K));
    for (int64_t r = 0; r < R; r++) ty_dequantize_row(type, W.w.data + (uint64_t)r * W.w.row_bytes, deq + r * K, K);
    for (int s = 0; s < n_ns; s++) {
        const int64_t n = NS[s];
        gpu->ops->matmul(gpu, &W.w, xd, n, yd);
        float *y = download(gpu, yd, (size_t)(n * R));
        cpu->ops->matmul(cpu, &W.w, xh, n, yref);
        double worst = 0; /* |error| / (sum |w x|) */
        int bad = 0;
        for (int64_t t = 0; t < n; t++)
            for (int64_t r = 0; r < R; r++) {
                double mag = 0;
                for (int64_t i = 0; i < K; i++) mag += fabs((double)deq[r * K + i] * xh[t * K + i]);
                double e = fabs((double)y[t * R + r] - yref[t * R + r]);
                double rel = e / (mag + 1e-30);
                if (!(rel <= worst)) worst = rel; /* NaN sticks */
                if (!(e <= 2e-5 * mag + 1e-6)) bad++;
            }
        CHECK(bad == 0, "matmul %s K=%lld R=%lld n=%lld: %d outputs off, worst error %.3g of sum|wx|", tn,
              (long long)K, (long long)R, (long long)n, bad, worst);
        if (getenv("TY_TEST_VERBOSE"))
            printf("  matmul %-5s K=%-5lld R=%-4lld n=%-4lld worst %.2e\n", tn, (long long)K, (long long)R, (long long)n,
                   worst);
        if (gpu->ops->matmul_add) { /* the residual add in the kernels' last store */
            float *rd = gpu_rows(gpu, &Y0, 1);
            gpu->ops->matmul_add(gpu, &W.w, xd, n, rd);
            float *got = download(gpu, rd, (size_t)(n * R));
            int diff = 0;
            for (int64_t i = 0; i < n * R; i++) {
                const float want = y0h[i] + y[i]; /* the add op's float addition */
                diff += memcmp(&got[i], &want, sizeof want) != 0;
            }
            CHECK(diff == 0, "matmul_add %s K=%lld R=%lld n=%lld: %d outputs differ from matmul + add", tn, (long long)K,
                  (long long)R, (long long)n, diff);
            free(got);
            gpu->ops->buffer_free(gpu, rd);
        }
        free(y);
    }
    free(deq);
    free(yref);
    gpu->ops->buffer_free(gpu, yd);
    gpu->ops->buffer_free(gpu, xd);
done:
    free(xh);
    free(y0h);
    free_weight(&W);
    free_weight(&X);
    free_weight(&Y0);
}

static void test_matmul(ty_backend *cpu, ty_backend *gpu) {
    for (size_t i = 0; i < sizeof TYPES / sizeof TYPES[0]; i++) {
        const uint32_t t = TYPES[i];
        const int64_t bs = ty_type_get(t)->block_size;
        test_matmul_shape(cpu, gpu, t, 4352, 37); /* two 2048-element chunks and a partial one */
        if (!quick) {
            test_matmul_shape(cpu, gpu, t, bs == 256 ? 768 : 96, 300); /* partial K step, ragged rows */
            if (bs != 256) test_matmul_shape(cpu, gpu, t, 64, 9);      /* tiny rows (tiny-e2e) */
        }
    }
}

/* The fast matrix-vector path (a backend with exact_math = 0, one token): 8-bit activations as
 * the CPU quantizes them, integer block sums; 1 to 8 tokens. Reference: sum over deq(w) * deq(quantize(x)) in
 * double, where quantize is the CPU's ty_quantize_row to the type's activation format; the GPU
 * must be within float rounding of it: |gpu - ref| <= 2e-5 * sum|w x^| + 1e-6. */
static void test_matvec_fast_shape(ty_backend *gpu, uint32_t type, int64_t K, int64_t R, int64_t n) {
    tweight W, X;
    make_weight(&W, "test.w", type, K, R);
    float *xh = malloc(sizeof(float) * (size_t)(K * n));
    random_fill(xh, (size_t)(K * n), 1.0f);
    if (K > 64) xh[K / 3] = -4.0f; /* a clear largest magnitude, negative: the Q8_K scale's sign */
    make_table(&X, "test.x", xh, K, n);
    const ty_weight *ws[] = {&W.w, NULL, NULL, NULL, &X.w};
    const char *tn = ty_type_name(type);
    if (upload(gpu, ws, 5)) goto done;
    {
        const uint32_t vdt = ty_type_get(type)->vec_dot_type;
        uint8_t *xq = malloc((size_t)ty_row_size(vdt, K));
        float *xd = malloc(sizeof(float) * (size_t)(K * n)), *wd = malloc(sizeof(float) * (size_t)K);
        for (int64_t t = 0; t < n; t++) {
            ty_quantize_row(vdt, xh + t * K, xq, K);
            ty_dequantize_row(vdt, xq, xd + t * K, K);
        }
        float *xg = gpu_rows(gpu, &X, n), *yg = gpu_buf(gpu, (size_t)(R * n));
        gpu->ops->matmul(gpu, &W.w, xg, n, yg);
        float *y = download(gpu, yg, (size_t)(R * n));
        int bad = 0;
        double worst = 0;
        for (int64_t r = 0; r < R; r++) {
            ty_dequantize_row(type, W.w.data + (uint64_t)r * W.w.row_bytes, wd, K);
            for (int64_t t = 0; t < n; t++) {
                double ref = 0, mag = 0;
                for (int64_t i = 0; i < K; i++) {
                    ref += (double)wd[i] * xd[t * K + i];
                    mag += fabs((double)wd[i] * xd[t * K + i]);
                }
                const double e = fabs((double)y[t * R + r] - ref);
                if (!(e / (mag + 1e-30) <= worst)) worst = e / (mag + 1e-30);
                if (!(e <= 2e-5 * mag + 1e-6)) bad++;
            }
        }
        CHECK(bad == 0, "fast matvec %s K=%lld R=%lld n=%lld: %d outputs off, worst error %.3g of sum|wx|", tn,
              (long long)K, (long long)R, (long long)n, bad, worst);
        /* a batch gives each token the bits of that token alone (speculative verification = decoding) */
        for (int64_t t = 0; n > 1 && t < n; t++) {
            float *y1g = gpu_buf(gpu, (size_t)R);
            gpu->ops->matmul(gpu, &W.w, xg + t * K, 1, y1g);
            float *y1 = download(gpu, y1g, (size_t)R);
            CHECK(memcmp(y1, y + t * R, sizeof(float) * (size_t)R) == 0,
                  "fast matvec %s K=%lld R=%lld: token %lld of a batch of %lld differs from the token alone", tn,
                  (long long)K, (long long)R, (long long)t, (long long)n);
            free(y1);
            gpu->ops->buffer_free(gpu, y1g);
        }
        if (getenv("TY_TEST_VERBOSE"))
            printf("  fast matvec %-5s K=%-5lld R=%-4lld n=%lld worst %.2e\n", tn, (long long)K, (long long)R, (long long)n,
                   worst);
        free(y);
        free(xq);
        free(xd);
        free(wd);
        gpu->ops->buffer_free(gpu, xg);
        gpu->ops->buffer_free(gpu, yg);
    }
done:
    free(xh);
    free_weight(&W);
    free_weight(&X);
}

/* A backend counter (cuda_backend.cu: cu_counter), or -1. */
static int64_t counter(ty_backend *g, const char *name) { return g->ops->counter ? g->ops->counter(g, name) : -1; }

/* split: the value of TY_CUDA_MV_SPLIT for the backend (NULL: unset). Every shape here has fewer rows
 * than the default threshold, so Q4_0 rows take two warps each by default, and one with "0". */
static void test_matvec_fast_split(const char *split) {
    ty_backend_config cfg = {.n_threads = 1, .exact_math = 0};
    ty_backend *g = NULL;
    ty_err err = {0};
    if (split) setenv("TY_CUDA_MV_SPLIT", split, 1);
    const int made = ty_backend_new("cuda", &cfg, &g, &err) == TY_OK;
    unsetenv("TY_CUDA_MV_SPLIT");
    if (!made) {
        CHECK(0, "cuda backend (fast path): %s", err.msg);
        return;
    }
    ty_hparams hp = {.n_embd = 4352, .n_ff = 4352, .n_head = 8, .n_head_kv = 1, .head_dim = 128, .n_rot = 128,
                     .rope_freq_base = 1e6f, .n_layer = 1, .n_vocab = 32};
    CHECK(g->ops->reserve(g, &hp, 16, 64, &err) == TY_OK, "reserve (fast path): %s", err.msg);
    const uint32_t all[] = {TY_TYPE_Q4_0, TY_TYPE_Q8_0, TY_TYPE_Q4_K, TY_TYPE_Q5_K, TY_TYPE_Q6_K};
    const size_t n_types = split ? 1 : sizeof all / sizeof all[0]; /* with split: Q4_0 */
    const uint32_t *types = all;
    const int64_t split0 = counter(g, "mv_split");
    for (size_t i = 0; i < n_types; i++) {
        test_matvec_fast_shape(g, types[i], 4352, 37, 1);
        test_matvec_fast_shape(g, types[i], 256, 300, 1);
        /* more than 2048 rows of at most 4096: two rows per warp (fewer take one, rows_per_warp) */
        test_matvec_fast_shape(g, types[i], 512, 2101, 1); /* odd: a warp's second row clamped */
        test_matvec_fast_shape(g, types[i], 512, 2101, 3);
        test_matvec_fast_shape(g, types[i], 4352, 37, 2);  /* a speculative batch: weights read once */
        test_matvec_fast_shape(g, types[i], 768, 45, 5);   /* 8-token kernel, 3 rows unused */
        test_matvec_fast_shape(g, types[i], 4352, 21, 8);
        test_matvec_fast_shape(g, types[i], 2304, 19, 16); /* the largest batch of the 8-bit kernels */
    }
    const int64_t splits = counter(g, "mv_split") - split0;
    CHECK(split ? splits == 0 : splits >= 8, "fast matvec (TY_CUDA_MV_SPLIT=%s): %lld launches with two warps a row",
          split ? split : "unset", (long long)splits);
    backend_ok(g, "fast matvec");
    g->ops->destroy(g);
}

static void test_matvec_fast(void) {
    test_matvec_fast_split(NULL);
    test_matvec_fast_split("0");
}

/* ---- fused ops against the unfused ones -------------------------------------------------------- */

/* A fast-path (exact_math = 0) CUDA backend with the fused ops on, or off (TY_CUDA_NO_FUSE=1, read
 * when a backend is created): the reference the fused ops must equal bit for bit. */
static ty_backend *fast_backend(int fuse) {
    ty_backend_config cfg = {.n_threads = 1, .exact_math = 0};
    ty_backend *g = NULL;
    ty_err err = {0};
    if (!fuse) setenv("TY_CUDA_NO_FUSE", "1", 1);
    int rc = ty_backend_new("cuda", &cfg, &g, &err);
    if (!fuse) unsetenv("TY_CUDA_NO_FUSE");
    CHECK(rc == TY_OK, "cuda backend (fuse %d): %s", fuse, err.msg);
    if (rc == TY_OK) CHECK(!g->ops->matmul_add == !fuse && !g->ops->rope_store == !fuse, "fused ops present iff fused");
    return rc == TY_OK ? g : NULL;
}

/* The 8-bit activation format of the fast matvec for weights of type t: 1 Q8_0, 2 Q8_K, 0 none. */
static int act_format(uint32_t t) {
    if (t == TY_TYPE_Q4_0 || t == TY_TYPE_Q8_0) return 1;
    return t == TY_TYPE_Q4_K || t == TY_TYPE_Q5_K || t == TY_TYPE_Q6_K ? 2 : 0;
}

static int64_t act_quant(ty_backend *g) { return counter(g, "act_quant"); }

static int same_bits(ty_backend *a, const float *da, ty_backend *b, const float *db, size_t n) {
    float *ha = download(a, da, n), *hb = download(b, db, n);
    const int same = memcmp(ha, hb, sizeof(float) * n) == 0;
    free(ha);
    free(hb);
    return same;
}

/* What one backend computes of a block of n tokens: rmsnorm then a matmul of its output, swiglu then
 * a matmul of its output (w_down), matmul_add (or matmul + add); device buffers, and the act_quant
 * counts of the two quantizing steps. */
typedef struct fused_run {
    float *xb, *y1, *y1b, *y1c, *gd, *y2, *yr;
    int64_t q_norm, q_swiglu, pairs; /* pairs: launches of two weight types (the counter "mv_pair") */
} fused_run;

typedef struct fused_model {
    tweight N, W, V, D, X, G, U, Y0; /* V: W's type, or Q6_K beside Q4_K / Q5_K (Q4_K_M's v) */
    int64_t K, F, R;
} fused_model;

static void fused_steps(ty_backend *g, const fused_model *m, int64_t n, fused_run *r) {
    const int64_t K = m->K, F = m->F, R = m->R;
    float *xd = gpu_rows(g, &m->X, n);
    r->xb = gpu_buf(g, (size_t)(n * K));
    r->y1 = gpu_buf(g, (size_t)(n * R));
    r->y1b = gpu_buf(g, (size_t)(n * R));
    r->y1c = gpu_buf(g, (size_t)(n * R));
    r->gd = gpu_rows(g, &m->G, n);
    float *ud = gpu_rows(g, &m->U, n);
    r->y2 = gpu_buf(g, (size_t)(n * R));
    const int64_t c0 = act_quant(g), p0 = counter(g, "mv_pair");
    g->ops->rmsnorm(g, xd, &m->N.w, 1e-5f, n, r->xb);
    g->ops->matmul(g, &m->W.w, r->xb, n, r->y1);
    g->ops->matmul(g, &m->W.w, r->xb, n, r->y1b); /* like q, k, v: one launch on the fused backend */
    g->ops->matmul(g, &m->V.w, r->xb, n, r->y1c);
    const int64_t c1 = act_quant(g);
    g->ops->swiglu(g, r->gd, ud, n * F); /* launches the matmuls kept for one launch */
    r->pairs = counter(g, "mv_pair") - p0;
    g->ops->matmul(g, &m->D.w, r->gd, n, r->y2);
    const int64_t c2 = act_quant(g);
    r->q_norm = c1 - c0;
    r->q_swiglu = c2 - c1;
    r->yr = gpu_rows(g, &m->Y0, n);
    if (g->ops->matmul_add) {
        g->ops->matmul_add(g, &m->W.w, xd, n, r->yr);
    } else {
        float *tmp = gpu_buf(g, (size_t)(n * R));
        g->ops->matmul(g, &m->W.w, xd, n, tmp);
        g->ops->add(g, r->yr, tmp, n * R);
        g->ops->buffer_free(g, tmp);
    }
    g->ops->buffer_free(g, xd);
    g->ops->buffer_free(g, ud);
}

static void fused_run_free(ty_backend *g, fused_run *r) {
    float *bufs[] = {r->xb, r->y1, r->y1b, r->y1c, r->gd, r->y2, r->yr};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) g->ops->buffer_free(g, bufs[i]);
}

/* rmsnorm + quantize, swiglu + quantize and matmul_add for one weight type, 1 to 17 tokens: the
 * fused backend f against the unfused u. 17 tokens take the cuBLAS path (no fused quantization;
 * matmul_add is beta = 1 there: compared within float rounding). */
static void test_fused_type(ty_backend *f, ty_backend *u, uint32_t type, uint32_t norm_type) {
    fused_model m = {.K = 512, .F = 768, .R = 96};
    const int64_t NMAX = 17, K = m.K, F = m.F, R = m.R;
    make_weight(&m.N, "test.norm", norm_type, K, 1);
    make_weight(&m.W, "test.w", type, K, R);
    const int mixed = type == TY_TYPE_Q4_K || type == TY_TYPE_Q5_K;
    make_weight(&m.V, "test.v", mixed ? TY_TYPE_Q6_K : type, K, R);
    make_weight(&m.D, "test.down", type, F, R);
    float *xh = malloc(sizeof(float) * (size_t)(NMAX * F));
    random_fill(xh, (size_t)(NMAX * K), 3.0f);
    make_table(&m.X, "test.x", xh, K, NMAX);
    random_fill(xh, (size_t)(NMAX * F), 4.0f);
    make_table(&m.G, "test.gate", xh, F, NMAX);
    random_fill(xh, (size_t)(NMAX * F), 2.0f);
    make_table(&m.U, "test.up", xh, F, NMAX);
    random_fill(xh, (size_t)(NMAX * R), 8.0f);
    make_table(&m.Y0, "test.y0", xh, R, NMAX);
    free(xh);
    /* slots: tok_embd, output_norm, output, attn_norm, wq, wk, wv, wo, ffn_norm, w_gate, w_up, w_down;
     * attn_norm before wq and w_down are what the fused quantization is aimed at */
    const ty_weight *ws[] = {&m.X.w, NULL, NULL, &m.N.w, &m.W.w, &m.G.w, &m.U.w, &m.Y0.w, NULL, &m.V.w, NULL, &m.D.w};
    ty_hparams hp = {.n_embd = K, .n_ff = F, .n_head = 4, .n_head_kv = 1, .head_dim = 128, .n_rot = 128,
                     .rope_freq_base = 1e6f, .n_layer = 1, .n_vocab = 32};
    ty_err err = {0};
    const char *tn = ty_type_name(type);
    const int eight_bit = type == TY_TYPE_Q4_0 || type == TY_TYPE_Q8_0 || type == TY_TYPE_Q4_K ||
                          type == TY_TYPE_Q5_K || type == TY_TYPE_Q6_K;
    if (!upload(f, ws, 12) && !upload(u, ws, 12)) {
        CHECK(f->ops->reserve(f, &hp, NMAX, 64, &err) == TY_OK && u->ops->reserve(u, &hp, NMAX, 64, &err) == TY_OK,
              "reserve: %s", err.msg);
        static const int64_t NS[] = {1, 2, 5, 16, 17};
        for (size_t k = 0; k < sizeof NS / sizeof NS[0]; k++) {
            const int64_t n = NS[k];
            fused_run a, b;
            fused_steps(f, &m, n, &a);
            fused_steps(u, &m, n, &b);
            CHECK(same_bits(f, a.xb, u, b.xb, (size_t)(n * K)) && same_bits(f, a.y1, u, b.y1, (size_t)(n * R)),
                  "%s n=%lld: rmsnorm (+ quantize) then matmul differs from the unfused ops", tn, (long long)n);
            CHECK(same_bits(f, a.y1b, u, b.y1, (size_t)(n * R)) && same_bits(f, a.y1c, u, b.y1c, (size_t)(n * R)),
                  "%s n=%lld: three matmuls of one input (one launch%s) differ from the unfused ops", tn, (long long)n,
                  mixed ? ", Q6_K beside" : "");
            if (mixed && n == 1) /* decode: the Q6_K matrix joined the others' launch */
                CHECK(a.pairs == 1 && b.pairs == 0, "%s: decode launches of two types: fused %lld, unfused %lld", tn,
                      (long long)a.pairs, (long long)b.pairs);
            CHECK(same_bits(f, a.gd, u, b.gd, (size_t)(n * F)) && same_bits(f, a.y2, u, b.y2, (size_t)(n * R)),
                  "%s n=%lld: swiglu (+ quantize) then matmul differs from the unfused ops", tn, (long long)n);
            /* the fused ops quantized for the matmuls, which then had nothing left to quantize */
            const int fused = eight_bit && n <= 16;
            CHECK(a.q_norm == (fused ? 0 : b.q_norm) && a.q_swiglu == (fused ? 0 : b.q_swiglu) &&
                      b.q_norm == (eight_bit && n <= 16 ? n : 0) && b.q_swiglu == b.q_norm,
                  "%s n=%lld: activation rows quantized by the matmuls: fused %lld + %lld, unfused %lld + %lld", tn,
                  (long long)n, (long long)a.q_norm, (long long)a.q_swiglu, (long long)b.q_norm, (long long)b.q_swiglu);
            float *ya = download(f, a.yr, (size_t)(n * R)), *yb = download(u, b.yr, (size_t)(n * R));
            int diff = 0, off = 0;
            for (int64_t i = 0; i < n * R; i++) {
                diff += memcmp(&ya[i], &yb[i], sizeof(float)) != 0;
                off += !(fabsf(ya[i] - yb[i]) <= 1e-6f * fabsf(yb[i]));
            }
            if (n <= 16) CHECK(diff == 0, "%s n=%lld: matmul_add differs from matmul + add in %d of %lld outputs", tn,
                               (long long)n, diff, (long long)(n * R));
            else CHECK(off == 0, "%s n=%lld: matmul_add (cuBLAS, beta = 1) off matmul + add in %d of %lld outputs", tn,
                       (long long)n, off, (long long)(n * R));
            if (getenv("TY_TEST_VERBOSE") && n > 16)
                printf("  matmul_add %s n=%lld (cuBLAS beta = 1): %d of %lld outputs not bit-identical to matmul + add\n",
                       tn, (long long)n, diff, (long long)(n * R));
            free(ya);
            free(yb);
            fused_run_free(f, &a);
            fused_run_free(u, &b);
        }
    }
    tweight *all[] = {&m.N, &m.W, &m.V, &m.D, &m.X, &m.G, &m.U, &m.Y0};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) free_weight(all[i]);
}

/* rope_store against rope, rope, kv_store, kv_store: q and k buffers and both caches, bit for bit,
 * over a prefill, decode steps, a batch and a far position; partial rotation, GQA, a head_dim that
 * is not a multiple of 32 (Q8_0 blocks then span heads) and an odd one (the unfused fallback). */
static void test_rope_store(ty_backend *f, ty_backend *u) {
    const struct { int64_t hd, n_rot, n_head, n_head_kv; } cfgs[] = {
        {128, 128, 4, 1}, {64, 64, 8, 8}, {96, 64, 4, 2}, {48, 48, 4, 2}, {33, 32, 3, 1}};
    const uint32_t kv_types[] = {TY_TYPE_F32, TY_TYPE_F16, TY_TYPE_Q8_0};
    const int64_t steps[][2] = {{0, 20}, {20, 1}, {21, 16}, {1000, 3}};
    const int64_t n_ctx = 1024, total = 1003;
    for (size_t ci = 0; ci < sizeof cfgs / sizeof cfgs[0]; ci++)
        for (int ki = 0; ki < 3; ki++) {
            const int64_t hd = cfgs[ci].hd, H = cfgs[ci].n_head, HKV = cfgs[ci].n_head_kv;
            const int64_t QW = H * hd, KW = HKV * hd;
            const uint32_t kvt = kv_types[ki];
            const uint64_t rb = ty_row_size(kvt, KW);
            if (!rb) continue; /* Q8_0 needs KW % 32 == 0 */
            /* tables of a multiple of 32 floats per row: one flat row each */
            const int64_t ql = (total * QW + 31) / 32 * 32, kl = (total * KW + 31) / 32 * 32;
            float *h = malloc(sizeof(float) * (size_t)ql);
            tweight Q, Kt, Vt;
            random_fill(h, (size_t)ql, 2.0f);
            make_table(&Q, "test.q", h, ql, 1);
            random_fill(h, (size_t)kl, 2.0f);
            make_table(&Kt, "test.k", h, kl, 1);
            random_fill(h, (size_t)kl, 1.0f);
            make_table(&Vt, "test.v", h, kl, 1);
            free(h);
            ty_hparams hp = {.head_dim = hd, .n_rot = cfgs[ci].n_rot, .rope_freq_base = 1e4f, .n_head = H,
                             .n_head_kv = HKV, .n_embd = QW, .n_ff = 32, .n_layer = 1, .n_vocab = 32};
            const ty_weight *ws[] = {NULL, NULL, NULL, NULL, &Q.w, &Kt.w, &Vt.w};
            ty_backend *be[2] = {f, u};
            float *qd[2] = {0}, *kd[2] = {0}, *vd[2] = {0};
            void *kc[2] = {0}, *vc[2] = {0};
            ty_err err = {0};
            int ok = 1;
            for (int b = 0; b < 2 && ok; b++) {
                ok = !upload(be[b], ws, 7) && be[b]->ops->reserve(be[b], &hp, 16, n_ctx, &err) == TY_OK &&
                     be[b]->ops->kv_new(be[b], (size_t)n_ctx, rb, &kc[b], &err) == TY_OK &&
                     be[b]->ops->kv_new(be[b], (size_t)n_ctx, rb, &vc[b], &err) == TY_OK;
                if (!ok) break;
                qd[b] = gpu_rows(be[b], &Q, 1);
                kd[b] = gpu_rows(be[b], &Kt, 1);
                vd[b] = gpu_rows(be[b], &Vt, 1);
                for (size_t s = 0; s < sizeof steps / sizeof steps[0]; s++) {
                    const int64_t p0 = steps[s][0], n = steps[s][1];
                    float *q = qd[b] + p0 * QW, *k = kd[b] + p0 * KW, *v = vd[b] + p0 * KW;
                    if (be[b]->ops->rope_store) {
                        be[b]->ops->rope_store(be[b], q, k, v, kc[b], vc[b], kvt, n, p0, &hp);
                    } else {
                        be[b]->ops->rope(be[b], q, n, H, &hp, p0);
                        be[b]->ops->rope(be[b], k, n, HKV, &hp, p0);
                        be[b]->ops->kv_store(be[b], kc[b], kvt, KW, p0, n, k);
                        be[b]->ops->kv_store(be[b], vc[b], kvt, KW, p0, n, v);
                    }
                }
            }
            CHECK(ok, "rope_store set-up: %s", err.msg);
            if (ok) {
                const size_t nb = (size_t)n_ctx * rb; /* KV rows are whole 4-byte words in all cases here */
                const int q_same = same_bits(f, qd[0], u, qd[1], (size_t)(total * QW));
                const int k_same = same_bits(f, kd[0], u, kd[1], (size_t)(total * KW));
                const int c_same = nb % 4 == 0 && same_bits(f, (const float *)kc[0], u, (const float *)kc[1], nb / 4) &&
                                   same_bits(f, (const float *)vc[0], u, (const float *)vc[1], nb / 4);
                CHECK(q_same && k_same && c_same,
                      "rope_store hd=%lld n_rot=%lld heads=%lld/%lld cache %s: q %s, k %s, caches %s", (long long)hd,
                      (long long)cfgs[ci].n_rot, (long long)H, (long long)HKV, ty_type_name(kvt),
                      q_same ? "same" : "DIFFER", k_same ? "same" : "DIFFER", c_same ? "same" : "DIFFER");
            }
            for (int b = 0; b < 2; b++) {
                be[b]->ops->buffer_free(be[b], qd[b]);
                be[b]->ops->buffer_free(be[b], kd[b]);
                be[b]->ops->buffer_free(be[b], vd[b]);
                be[b]->ops->kv_free(be[b], kc[b]);
                be[b]->ops->kv_free(be[b], vc[b]);
            }
            free_weight(&Q);
            free_weight(&Kt);
            free_weight(&Vt);
        }
}

static void test_fused(void) {
    ty_backend *f = fast_backend(1), *u = fast_backend(0);
    if (f && u) {
        const uint32_t types[] = {TY_TYPE_Q4_0, TY_TYPE_Q8_0, TY_TYPE_Q4_K, TY_TYPE_Q5_K, TY_TYPE_Q6_K, TY_TYPE_Q5_0};
        const uint32_t norms[] = {TY_TYPE_F32, TY_TYPE_F16, TY_TYPE_BF16};
        for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) test_fused_type(f, u, types[i], norms[i % 3]);
        test_rope_store(f, u);
        backend_ok(f, "fused ops");
        backend_ok(u, "fused ops (unfused reference)");
    }
    if (f) f->ops->destroy(f);
    if (u) u->ops->destroy(u);
}

static void test_rmsnorm(ty_backend *cpu, ty_backend *gpu) {
    const uint32_t types[] = {TY_TYPE_F32, TY_TYPE_F16, TY_TYPE_BF16};
    const int64_t d = 4096 + 64, n = 3;
    for (int k = 0; k < 3; k++) {
        tweight N, X;
        make_weight(&N, "test.norm", types[k], d, 1);
        float *xh = malloc(sizeof(float) * (size_t)(n * d));
        random_fill(xh, (size_t)(n * d), 3.0f);
        make_table(&X, "test.x", xh, d, n);
        const ty_weight *ws[] = {NULL, &N.w, NULL, NULL, &X.w};
        if (!upload(gpu, ws, 5)) {
            float *xd = gpu_rows(gpu, &X, n), *od = gpu_buf(gpu, (size_t)(n * d));
            gpu->ops->rmsnorm(gpu, xd, &N.w, 1e-5f, n, od);
            float *got = download(gpu, od, (size_t)(n * d)), *ref = malloc(sizeof(float) * (size_t)(n * d));
            cpu->ops->rmsnorm(cpu, xh, &N.w, 1e-5f, n, ref);
            double worst = 0;
            for (int64_t i = 0; i < n * d; i++) {
                double e = fabs((double)got[i] - ref[i]) / (fabs(ref[i]) + 1e-6);
                if (!(e <= worst)) worst = e;
            }
            CHECK(worst <= 1e-6, "rmsnorm with %s weights: worst relative error %.3g", ty_type_name(types[k]), worst);
            free(got);
            free(ref);
            gpu->ops->buffer_free(gpu, xd);
            gpu->ops->buffer_free(gpu, od);
        }
        free(xh);
        free_weight(&N);
        free_weight(&X);
    }
}

static void test_rope(ty_backend *cpu, ty_backend *gpu) {
    const struct { int64_t hd, n_rot, n_head, n, pos0; float base; } cfgs[] = {
        {128, 128, 4, 7, 0, 1e6f}, {128, 64, 2, 3, 1000, 1e4f}, {64, 64, 5, 130, 31, 1e6f}, {32, 32, 2, 1, 32767, 1e6f}};
    for (size_t k = 0; k < sizeof cfgs / sizeof cfgs[0]; k++) {
        ty_hparams hp = {.head_dim = cfgs[k].hd, .n_rot = cfgs[k].n_rot, .rope_freq_base = cfgs[k].base,
                         .n_head = cfgs[k].n_head, .n_head_kv = 1, .n_embd = cfgs[k].hd * cfgs[k].n_head, .n_ff = 32};
        const int64_t w = cfgs[k].n_head * cfgs[k].hd, n = cfgs[k].n;
        tweight X;
        float *xh = malloc(sizeof(float) * (size_t)(n * w));
        random_fill(xh, (size_t)(n * w), 2.0f);
        make_table(&X, "test.x", xh, w, n);
        const ty_weight *ws[] = {NULL, NULL, NULL, NULL, &X.w};
        if (!upload(gpu, ws, 5)) {
            float *xd = gpu_rows(gpu, &X, n);
            gpu->ops->rope(gpu, xd, n, cfgs[k].n_head, &hp, cfgs[k].pos0);
            float *got = download(gpu, xd, (size_t)(n * w));
            cpu->ops->rope(cpu, xh, n, cfgs[k].n_head, &hp, cfgs[k].pos0);
            int bad = 0, exact = 0;
            for (int64_t i = 0; i < n * w; i++) {
                exact += got[i] == xh[i];
                if (!(fabsf(got[i] - xh[i]) <= 2.5e-7f * (fabsf(xh[i]) + 2.0f))) bad++;
            }
            CHECK(bad == 0, "rope hd=%lld n_rot=%lld pos0=%lld: %d values off (%d of %lld bit-identical)",
                  (long long)cfgs[k].hd, (long long)cfgs[k].n_rot, (long long)cfgs[k].pos0, bad, exact, (long long)(n * w));
            free(got);
            gpu->ops->buffer_free(gpu, xd);
        }
        free(xh);
        free_weight(&X);
    }
}

/* kv_store into both caches over several calls (prefill, then decode steps, then a batch), each
 * followed by attention; caches and outputs compared with the CPU. */
static void test_attention(ty_backend *cpu, ty_backend *gpu) {
    /* head_dim 128 with an F16 cache takes the tensor cores for prompts (G = 4, 8 and 1 query heads
     * per KV head: 16, 8 and 64 tokens per block) */
    const struct { int64_t hd, n_head, n_head_kv; } cfgs[] = {{128, 4, 1},  {64, 8, 8},   {32, 6, 2},
                                                              {96, 4, 2},   {128, 16, 2}, {128, 8, 8}};
    const uint32_t kv_types[] = {TY_TYPE_F32, TY_TYPE_F16, TY_TYPE_Q8_0};
    /* (pos0, n) steps: a 70-token prefill (two key tiles), 3 decode steps, a 5-token batch, one more,
     * a 17-token prompt chunk that starts mid-tile (a prompt kernel at pos0 > 0), one of 30, a batch
     * across the first 128-key split boundary, a 125-token chunk, then decode with 3 splits and a
     * batch of 2 (the split kernel's combine of several splits, empty splits of a batch's first token) */
    const int64_t steps[][2] = {{0, 70},   {70, 1},  {71, 1},    {72, 1},   {73, 5},  {78, 1},
                                {79, 17},  {96, 30}, {126, 5},   {131, 125}, {256, 1}, {257, 2}};
    const int64_t n_ctx = 300, total = 259, NB = 125; /* NB: the longest step */
    const int n_cfg = quick ? 1 : (int)(sizeof cfgs / sizeof cfgs[0]);
    /* The tensor-core path rounds q and the probabilities to fp16 (unit roundoff 2^-11): each score
     * moves by up to 2^-11 sum|q k| scale (~5e-3 here, ~5e-4 typically) and the output by about that
     * much of the largest value; the fp32 paths stay within float rounding. */
    const double tol_fp32 = 1e-5, tol_mma = 3e-3;
    int mma_used = 0;
    for (int ci = 0; ci < n_cfg; ci++)
        for (int ki = 0; ki < 3; ki++) {
            const int64_t hd = cfgs[ci].hd, H = cfgs[ci].n_head, HKV = cfgs[ci].n_head_kv;
            const uint32_t kvt = kv_types[ki];
            const int64_t QW = H * hd, KW = HKV * hd;
            const uint64_t rb = ty_row_size(kvt, KW);
            if (!rb) continue; /* Q8_0 needs KW % 32 == 0: true for all configs here */
            ty_hparams hp = {.head_dim = hd, .n_rot = hd, .rope_freq_base = 1e6f, .n_head = H, .n_head_kv = HKV,
                             .n_embd = QW, .n_ff = 32, .n_layer = 1, .n_vocab = 32, .rms_norm_eps = 1e-5f};
            float *qh = malloc(sizeof(float) * (size_t)(total * QW)), *kh = malloc(sizeof(float) * (size_t)(total * KW)),
                  *vh = malloc(sizeof(float) * (size_t)(total * KW));
            random_fill(qh, (size_t)(total * QW), 2.0f); /* scores of a few units: a peaked softmax */
            random_fill(kh, (size_t)(total * KW), 2.0f);
            random_fill(vh, (size_t)(total * KW), 1.0f);
            tweight Q, Kt, Vt;
            make_table(&Q, "test.q", qh, QW, total);
            make_table(&Kt, "test.k", kh, KW, total);
            make_table(&Vt, "test.v", vh, KW, total);
            const ty_weight *ws[] = {NULL, NULL, NULL, NULL, &Q.w, &Kt.w, &Vt.w};
            ty_err err = {0};
            void *kc = NULL, *vc = NULL, *kg = NULL, *vg = NULL;
            CHECK(cpu->ops->reserve(cpu, &hp, NB, n_ctx, &err) == TY_OK, "cpu reserve: %s", err.msg);
            CHECK(gpu->ops->reserve(gpu, &hp, NB, n_ctx, &err) == TY_OK, "gpu reserve: %s", err.msg);
            cpu->ops->kv_new(cpu, (size_t)n_ctx, rb, &kc, &err);
            cpu->ops->kv_new(cpu, (size_t)n_ctx, rb, &vc, &err);
            CHECK(gpu->ops->kv_new(gpu, (size_t)n_ctx, rb, &kg, &err) == TY_OK, "kv_new: %s", err.msg);
            CHECK(gpu->ops->kv_new(gpu, (size_t)n_ctx, rb, &vg, &err) == TY_OK, "kv_new: %s", err.msg);
            if (!upload(gpu, ws, 7) && kc && vc && kg && vg) {
                float *qd = gpu_rows(gpu, &Q, total), *kd = gpu_rows(gpu, &Kt, total), *vd = gpu_rows(gpu, &Vt, total);
                float *od = gpu_buf(gpu, (size_t)(NB * QW));
                float *oref = malloc(sizeof(float) * (size_t)(NB * QW));
                double worst = 0, worst_mma = 0; /* error / tolerance */
                for (size_t s = 0; s < sizeof steps / sizeof steps[0]; s++) {
                    const int64_t p0 = steps[s][0], n = steps[s][1];
                    gpu->ops->kv_store(gpu, kg, kvt, KW, p0, n, kd + p0 * KW);
                    gpu->ops->kv_store(gpu, vg, kvt, KW, p0, n, vd + p0 * KW);
                    cpu->ops->kv_store(cpu, kc, kvt, KW, p0, n, kh + p0 * KW);
                    cpu->ops->kv_store(cpu, vc, kvt, KW, p0, n, vh + p0 * KW);
                    const int64_t before = gpu->ops->counter(gpu, "attn_mma");
                    gpu->ops->attention(gpu, qd + p0 * QW, kg, vg, kvt, n, p0, &hp, od);
                    const int mma = gpu->ops->counter(gpu, "attn_mma") > before;
                    cpu->ops->attention(cpu, qh + p0 * QW, kc, vc, kvt, n, p0, &hp, oref);
                    float *got = download(gpu, od, (size_t)(n * QW));
                    double mx = 0, e = 0;
                    for (int64_t i = 0; i < n * QW; i++) {
                        mx = fmax(mx, fabs(oref[i]));
                        double d = fabs((double)got[i] - oref[i]);
                        if (!(d <= e)) e = d;
                    }
                    const double r = e / (mx + 1e-30) / (mma ? tol_mma : tol_fp32);
                    double *w = mma ? &worst_mma : &worst;
                    if (!(r <= *w)) *w = r;
                    mma_used |= mma;
                    free(got);
                }
                CHECK(worst <= 1 && worst_mma <= 1,
                      "attention hd=%lld heads=%lld/%lld cache %s: worst error %.3g of the largest output (fp32 "
                      "paths), %.3g (tensor cores)",
                      (long long)hd, (long long)H, (long long)HKV, ty_type_name(kvt), worst * tol_fp32,
                      worst_mma * tol_mma);
                if (getenv("TY_TEST_VERBOSE"))
                    printf("  attention hd=%lld heads=%lld/%lld %s: worst %.3g (fp32), %.3g (tensor cores)\n", (long long)hd,
                           (long long)H, (long long)HKV, ty_type_name(kvt), worst * tol_fp32, worst_mma * tol_mma);
                /* the caches themselves */
                const size_t nb = (size_t)(total * rb);
                if (nb % 4 == 0) {
                    float *kgot = download(gpu, (const float *)kg, nb / 4), *vgot = download(gpu, (const float *)vg, nb / 4);
                    CHECK(memcmp(kgot, kc, nb) == 0 && memcmp(vgot, vc, nb) == 0,
                          "kv_store %s (hd=%lld): caches differ from the CPU's", ty_type_name(kvt), (long long)hd);
                    if (memcmp(kgot, kc, nb) != 0 && getenv("TY_TEST_VERBOSE")) {
                        const uint8_t *a = (const uint8_t *)kgot, *b = (const uint8_t *)kc;
                        size_t first = 0;
                        while (first < nb && a[first] == b[first]) first++;
                        printf("  first differing byte %zu of %zu (row bytes %llu):\n   gpu", first, nb, (unsigned long long)rb);
                        for (size_t i = first - first % 34; i < first - first % 34 + 40 && i < nb; i++) printf(" %02x", a[i]);
                        printf("\n   cpu");
                        for (size_t i = first - first % 34; i < first - first % 34 + 40 && i < nb; i++) printf(" %02x", b[i]);
                        printf("\n");
                    }
                    free(kgot);
                    free(vgot);
                }
                free(oref);
                gpu->ops->buffer_free(gpu, qd);
                gpu->ops->buffer_free(gpu, kd);
                gpu->ops->buffer_free(gpu, vd);
                gpu->ops->buffer_free(gpu, od);
            }
            cpu->ops->kv_free(cpu, kc);
            cpu->ops->kv_free(cpu, vc);
            gpu->ops->kv_free(gpu, kg);
            gpu->ops->kv_free(gpu, vg);
            free(qh);
            free(kh);
            free(vh);
            free_weight(&Q);
            free_weight(&Kt);
            free_weight(&Vt);
        }
    if (attn_fast && !mma_off() && counter(gpu, "mma_capable") > 0) /* sm_80+ and built for it */
        CHECK(mma_used, "attention (fast path): the tensor-core prompt kernel never ran");
    else
        CHECK(!mma_used, "attention (exact path, TY_CUDA_NO_MMA or no tensor cores): the tensor-core prompt kernel ran");
}

static void test_elementwise(ty_backend *cpu, ty_backend *gpu) {
    const int64_t width = 100000, n = width - 3; /* tables need rows of a multiple of 32; n need not */
    float *ah = malloc(sizeof(float) * width), *bh = malloc(sizeof(float) * width);
    random_fill(ah, (size_t)width, 8.0f);
    random_fill(bh, (size_t)width, 2.0f);
    tweight A, B;
    make_table(&A, "test.a", ah, width, 1);
    make_table(&B, "test.b", bh, width, 1);
    const ty_weight *ws[] = {NULL, NULL, NULL, NULL, &A.w, &B.w};
    if (!upload(gpu, ws, 6)) {
        float *ad = gpu_rows(gpu, &A, 1), *bd = gpu_rows(gpu, &B, 1), *cd = gpu_buf(gpu, (size_t)width);
        gpu->ops->copy(gpu, cd, ad, n);
        float *got = download(gpu, cd, (size_t)n);
        CHECK(memcmp(got, ah, sizeof(float) * n) == 0, "copy");
        free(got);
        gpu->ops->add(gpu, cd, bd, n);
        got = download(gpu, cd, (size_t)n);
        float *ref = malloc(sizeof(float) * n);
        memcpy(ref, ah, sizeof(float) * n);
        cpu->ops->add(cpu, ref, bh, n);
        CHECK(memcmp(got, ref, sizeof(float) * n) == 0, "add");
        free(got);
        gpu->ops->swiglu(gpu, ad, bd, n);
        got = download(gpu, ad, (size_t)n);
        memcpy(ref, ah, sizeof(float) * n);
        cpu->ops->swiglu(cpu, ref, bh, n);
        int bad = 0;
        for (int64_t i = 0; i < n; i++)
            if (!(fabsf(got[i] - ref[i]) <= 4e-7f * fabsf(ref[i]) + 1e-30f)) bad++;
        CHECK(bad == 0, "swiglu: %d of %lld values off by more than 4e-7", bad, (long long)n);
        free(got);
        free(ref);
        gpu->ops->buffer_free(gpu, ad);
        gpu->ops->buffer_free(gpu, bd);
        gpu->ops->buffer_free(gpu, cd);
    }
    free(ah);
    free(bh);
    free_weight(&A);
    free_weight(&B);
}

/* A weight that was never uploaded: the op fails, later downloads are NaN, nothing crashes. */
static void test_errors(void) {
    ty_backend_config cfg = {.n_threads = 1, .exact_math = 0};
    ty_backend *g = NULL;
    ty_err err = {0};
    CHECK(ty_backend_new("cuda:999", &cfg, &g, &err) == TY_ERR_DEVICE && !g && strstr(err.msg, "cuda:999"),
          "cuda:999: '%s'", err.msg);
    CHECK(ty_backend_new("cuda:x", &cfg, &g, &err) == TY_ERR_INVALID_ARG, "cuda:x");
    if (ty_backend_new("cuda", &cfg, &g, &err) != TY_OK) return;
    tweight W;
    make_weight(&W, "never.uploaded", TY_TYPE_Q8_0, 64, 4);
    float *x = gpu_buf(g, 64), *y = gpu_buf(g, 4);
    g->ops->matmul(g, &W.w, x, 1, y);
    float out[4] = {0};
    g->ops->download(g, out, y, 4);
    CHECK(isnan(out[0]) && isnan(out[3]), "download after a failed op gives NaN");
    CHECK(g->ops->status(g, &err) == TY_ERR_DEVICE && strstr(err.msg, "never.uploaded"), "status: '%s'", err.msg);
    g->ops->buffer_free(g, x);
    g->ops->buffer_free(g, y);
    g->ops->destroy(g);
    free_weight(&W);
}

/* ---- 2. whole models ---------------------------------------------------------------------------- */

#define MAX_CASES 64
#define MAX_TOKENS 512

typedef struct tcase {
    char model[32], name[64];
    int n;
    ty_token ids[MAX_TOKENS];
} tcase;

static tcase cases[MAX_CASES];
static int n_cases;

static void load_cases(const char *dir) {
    char path[512];
    snprintf(path, sizeof path, "%s/cases.txt", dir);
    FILE *f = fopen(path, "r");
    if (!f) return;
    while (n_cases < MAX_CASES) {
        tcase *c = &cases[n_cases];
        if (fscanf(f, "%31s %63s %d", c->model, c->name, &c->n) != 3) break;
        if (c->n <= 0 || c->n > MAX_TOKENS) break;
        int ok = 1;
        for (int i = 0; i < c->n && ok; i++) ok = fscanf(f, "%d", &c->ids[i]) == 1;
        if (!ok) break;
        n_cases++;
    }
    fclose(f);
}

typedef struct metrics {
    double sq_diff, sq_ref, max_abs;
} metrics;

static void accumulate(metrics *m, const float *a, const float *ref, size_t n) {
    for (size_t i = 0; i < n; i++) {
        double d = (double)a[i] - ref[i];
        m->sq_diff += d * d;
        m->sq_ref += (double)ref[i] * ref[i];
        if (!(fabs(d) <= m->max_abs)) m->max_abs = fabs(d); /* NaN sticks */
    }
}

static double rel_l2(const metrics *m) { return sqrt(m->sq_diff / m->sq_ref); }

static int argmax(const float *x, int64_t n) {
    int b = 0;
    for (int64_t i = 1; i < n; i++)
        if (x[i] > x[b]) b = (int)i;
    return b;
}

static float top2_margin(const float *x, int64_t n) {
    int b = argmax(x, n);
    float s = -INFINITY;
    for (int64_t i = 0; i < n; i++)
        if (i != b && x[i] > s) s = x[i];
    return x[b] - s;
}

static ty_model *open_model(const char *path, const char *device, int exact) {
    ty_model_params p = ty_model_default_params();
    p.device = device;
    p.exact_math = exact;
    ty_model *m = NULL;
    char *err = NULL;
    if (ty_model_open(path, &p, &m, &err)) {
        fprintf(stderr, "cannot open %s on %s: %s\n", path, device, err ? err : "?");
        ty_free(err);
        return NULL;
    }
    return m;
}

static ty_context *new_ctx(ty_model *m, int64_t n_batch, int kv) {
    ty_context_params cp = ty_context_default_params();
    cp.n_ctx = 512;
    cp.n_batch = n_batch;
    cp.kv_type = kv;
    ty_context *c = NULL;
    char *err = NULL;
    if (ty_context_new(m, &cp, &c, &err)) {
        fprintf(stderr, "cannot create a context: %s\n", err ? err : "?");
        CHECK(0, "context creation failed: %s", err ? err : "?");
    }
    ty_free(err);
    return c;
}

/* Whether decode attention runs the split kernel (and its combine) for this model: head_dim 128 and
 * at most 8 query heads per KV head. */
static int split_attention(const ty_hparams *hp) { return hp->head_dim == 128 && hp->n_head / hp->n_head_kv <= 8; }

static int64_t last_graph_replays; /* the backend counter "graph_replays" of eval_all's last context */
static int64_t last_attn_mma;      /* and "attn_mma" */
static int64_t last_attn_quant;    /* and "attn_quant" */
static int64_t last_attn_split4;   /* and "attn_split4" */

/* All-position logits, [n][n_vocab], in batches of n_batch (1: one token per eval). */
static float *eval_all(ty_model *m, const ty_token *ids, int n, int64_t n_batch, int kv) {
    ty_context *c = new_ctx(m, n_batch, kv);
    if (!c) return NULL;
    const int64_t V = ty_n_vocab(m);
    float *out = malloc(sizeof(float) * (size_t)n * (size_t)V);
    for (int done = 0; done < n;) {
        int k = n - done < n_batch ? n - done : (int)n_batch;
        if (ty_context_eval(c, ids + done, k, TY_LOGITS_ALL)) {
            CHECK(0, "eval failed: %s", ty_context_errmsg(c));
            free(out);
            out = NULL;
            break;
        }
        for (int i = 0; i < k; i++) {
            const float *row = NULL;
            ty_context_logits(c, i, &row);
            memcpy(out + (size_t)(done + i) * V, row, sizeof(float) * (size_t)V);
        }
        done += k;
    }
    last_graph_replays = c->be->ops->counter ? c->be->ops->counter(c->be, "graph_replays") : -1;
    last_attn_mma = c->be->ops->counter ? c->be->ops->counter(c->be, "attn_mma") : -1;
    last_attn_quant = c->be->ops->counter ? c->be->ops->counter(c->be, "attn_quant") : -1;
    last_attn_split4 = c->be->ops->counter ? c->be->ops->counter(c->be, "attn_split4") : -1;
    ty_context_free(c);
    return out;
}

/* The same with the CUDA backend's fused ops off (TY_CUDA_NO_FUSE=1, read when the context's backend
 * is created): the reference that the fused ops must reproduce. */
static float *eval_unfused(ty_model *m, const ty_token *ids, int n, int64_t n_batch, int kv) {
    setenv("TY_CUDA_NO_FUSE", "1", 1);
    float *out = eval_all(m, ids, n, n_batch, kv);
    unsetenv("TY_CUDA_NO_FUSE");
    return out;
}

static int same_logits(const float *a, const float *b, size_t n) { return a && b && memcmp(a, b, n * sizeof(float)) == 0; }

static void check_rel(const char *what, const char *label, const float *got, const float *ref, size_t n, double bound) {
    if (!got || !ref) {
        CHECK(0, "%s %s: evaluation missing", label, what);
        return;
    }
    metrics mt = {0};
    accumulate(&mt, got, ref, n);
    CHECK(rel_l2(&mt) <= bound, "%s %s: rel_l2 %.3g (bound %.0e) max_abs %.3g", label, what, rel_l2(&mt), bound,
          mt.max_abs);
    if (getenv("TY_TEST_VERBOSE")) printf("  %-40s %-22s rel_l2 %.2e max_abs %.2e\n", label, what, rel_l2(&mt), mt.max_abs);
}

/* Greedy continuation on both devices in lockstep. */
static void check_greedy(ty_model *cpu, ty_model *gpu, const ty_token *ids, int n, const char *label) {
    ty_context *cc = new_ctx(cpu, 512, TY_KV_F32), *gc = new_ctx(gpu, 512, TY_KV_F32);
    if (!cc || !gc) {
        ty_context_free(cc);
        ty_context_free(gc);
        return;
    }
    const int64_t V = ty_n_vocab(cpu);
    int rc = ty_context_eval(cc, ids, n, TY_LOGITS_LAST) || ty_context_eval(gc, ids, n, TY_LOGITS_LAST);
    int same = 0, tie = 0;
    for (int s = 0; s < 32 && !rc && n + s < 512; s++) {
        const float *lc = NULL, *lg = NULL;
        ty_context_logits(cc, -1, &lc);
        ty_context_logits(gc, -1, &lg);
        ty_token tc = argmax(lc, V), tg = argmax(lg, V);
        if (tc != tg) {
            tie = top2_margin(lc, V) < 1e-3f;
            if (tie) printf("  %s: greedy step %d is a near-tie (margin %.2e): comparison stops\n", label, s, top2_margin(lc, V));
            break;
        }
        same++;
        rc = ty_context_eval(cc, &tc, 1, TY_LOGITS_LAST) || ty_context_eval(gc, &tg, 1, TY_LOGITS_LAST);
    }
    CHECK(!rc, "%s: greedy eval failed", label);
    CHECK(same == 32 || tie || n + same >= 512, "%s: greedy tokens agree for %d of 32 steps", label, same);
    ty_context_free(cc);
    ty_context_free(gc);
}

/* The fast paths (8-bit activations in decode) against the exact CPU: token-by-token decode on
 * the GPU may be no further from it than the CPU's own fast decode is, give or take 50%: both
 * round the activations the same way, so the GPU adds nothing but float rounding on top. */
static void check_fast_batch(ty_model *cpu_fast, ty_model *gpu_fast, const ty_token *ids, int n, const float *ref,
                             const char *label, int64_t n_batch) {
    const char *what = n_batch == 1 ? "decode" : "prompt";
    const size_t N = (size_t)n * (size_t)ty_n_vocab(cpu_fast);
    float *cf = eval_all(cpu_fast, ids, n, n_batch, TY_KV_F32), *gf = eval_all(gpu_fast, ids, n, n_batch, TY_KV_F32);
    if (cf && gf && ref) {
        metrics mc = {0}, mg = {0};
        accumulate(&mc, cf, ref, N);
        accumulate(&mg, gf, ref, N);
        /* prompts: fp16 operands (cuda_gemm.cu) cost up to ~1e-3 even where the CPU fast path is
         * exact (F16/F32 weights keep float activations there) */
        const double floor = n_batch == 1 ? 1e-4 : 2e-3;
        CHECK(rel_l2(&mg) <= fmax(1.5 * rel_l2(&mc) + 1e-4, floor),
              "%s fast %s: GPU rel_l2 %.3g from the exact CPU, CPU fast path %.3g", label, what, rel_l2(&mg), rel_l2(&mc));
        if (getenv("TY_TEST_VERBOSE"))
            printf("  %-40s fast %s vs exact   GPU rel_l2 %.2e, CPU fast %.2e\n", label, what, rel_l2(&mg), rel_l2(&mc));
    } else {
        CHECK(0, "%s fast %s: evaluation missing", label, what);
    }
    free(cf);
    free(gf);
}

/* Decode runs the 8-bit activation kernels; prompts of 17+ tokens the fp16 cuBLAS path (cuda_gemm.cu),
 * whose rounding is finer than the CPU fast path's 8-bit activations. */
static void check_fast(ty_model *cpu_fast, ty_model *gpu_fast, const ty_token *ids, int n, const float *ref,
                       const char *label) {
    check_fast_batch(cpu_fast, gpu_fast, ids, n, ref, label, 1);
    check_fast_batch(cpu_fast, gpu_fast, ids, n, ref, label, 512);
    /* prompts over an F16 cache (the default): with head_dim 128 and 17+ tokens, attention runs on fp16
     * tensor cores (q and the probabilities rounded to fp16). Against the same prompt with them off
     * (TY_CUDA_NO_MMA=1: the fp32 tiles; prompts of 17+ tokens use no other tensor-core kernel), same
     * cache: within 2e-3 (the op test's 3e-3 of the largest attention output, through fp16 matmuls,
     * which do not amplify it the way 8-bit activations' rounding steps would) */
    {
        const size_t NV = (size_t)n * (size_t)ty_n_vocab(gpu_fast);
        float *tc = eval_all(gpu_fast, ids, n, 512, TY_KV_F16);
        const int64_t mma = last_attn_mma;
        const int no_mma = mma_off();
        setenv("TY_CUDA_NO_MMA", "1", 1);
        float *fp = eval_all(gpu_fast, ids, n, 512, TY_KV_F16);
        if (!no_mma) unsetenv("TY_CUDA_NO_MMA");
        CHECK(last_attn_mma == 0, "%s: TY_CUDA_NO_MMA=1 still ran the tensor-core attention", label);
        check_rel("fast prompt F16 KV, tensor-core vs fp32 attention", label, tc, fp, NV, 2e-3);
        if (getenv("TY_TEST_VERBOSE")) printf("  %-40s tensor-core attention calls: %lld\n", label, (long long)mma);
        const int64_t G = gpu_fast->desc.hp.n_head / gpu_fast->desc.hp.n_head_kv;
        if (gpu_fast->desc.hp.head_dim == 128 && 64 % G == 0 && n > 16 && !no_mma)
            CHECK(mma > 0, "%s: a %d-token prompt over an F16 cache did not reach the tensor-core attention", label, n);
        free(tc);
        free(fp);
    }
    /* batches of up to 16 tokens (a speculative step's verification) run the decode kernels per token:
     * the logits must equal one-token decoding bit for bit, or greedy speculation could drift */
    const size_t N = (size_t)n * (size_t)ty_n_vocab(gpu_fast);
    float *d1 = eval_all(gpu_fast, ids, n, 1, TY_KV_F32), *d5 = eval_all(gpu_fast, ids, n, 5, TY_KV_F32),
          *d16 = eval_all(gpu_fast, ids, n, 16, TY_KV_F32);
    CHECK(d1 && d5 && d16 && memcmp(d1, d5, N * sizeof(float)) == 0 && memcmp(d1, d16, N * sizeof(float)) == 0,
          "%s fast path: batches of 5 and 16 tokens differ from one-token decoding", label);
    {   /* the same over an F16 cache (the split kernel's other instance) */
        float *h1 = eval_all(gpu_fast, ids, n, 1, TY_KV_F16), *h16 = eval_all(gpu_fast, ids, n, 16, TY_KV_F16);
        CHECK(h1 && h16 && memcmp(h1, h16, N * sizeof(float)) == 0,
              "%s fast path, F16 KV: batches of 16 tokens differ from one-token decoding", label);
        free(h1);
        free(h16);
    }
    /* fused ops (rmsnorm/swiglu + quantize, matmul_add, rope_store) against the separate ops: decode
     * bit for bit with each KV cache type; prompts (cuBLAS, matmul_add with beta = 1) within rounding */
    /* h16 (F16 cache, batches of 16) was the last evaluation: did attention quantize its output for
     * w_o (head_dim 128, every layer's w_o of one 8-bit activation format, an even head count for Q8_K)? */
    const int64_t attn_quant = last_attn_quant;
    float *u1 = eval_unfused(gpu_fast, ids, n, 1, TY_KV_F32);
    CHECK(same_logits(d1, u1, N), "%s fast decode (F32 KV): fused ops differ from the unfused ones", label);
    {
        const ty_model_desc *d = &gpu_fast->desc;
        int fmt = act_format(d->layers[0].wo.type);
        for (int64_t l = 1; l < d->hp.n_layer; l++)
            if (act_format(d->layers[l].wo.type) != fmt) fmt = 0;
        const int fusable = split_attention(&d->hp) && fmt != 0 && (fmt == 1 || d->hp.n_head % 2 == 0);
        const int64_t expect = fusable ? (int64_t)n * d->hp.n_layer : 0; /* every layer, every token */
        CHECK(attn_quant == expect, "%s: attention quantized %lld rows for w_o decoding %d tokens in batches of 16 (expected %lld)",
              label, (long long)attn_quant, n, (long long)expect);
    }
    /* decode steps replayed from recordings (CUDA graphs) against every kernel launched: bit for bit
     * over 300 positions, where the attention needs 1, 2 and then 3 splits of 128 keys (recordings
     * for 1, 2 and 4), each position then being replayed */
    {
        enum { L = 300 };
        ty_token lids[L];
        for (int i = 0; i < L; i++) lids[i] = ids[i % n];
        const size_t NL = (size_t)L * (size_t)ty_n_vocab(gpu_fast);
        setenv("TY_CUDA_NO_GRAPH", "1", 1);
        float *plain = eval_all(gpu_fast, lids, L, 1, TY_KV_F16);
        unsetenv("TY_CUDA_NO_GRAPH");
        const int64_t plain_replays = last_graph_replays;
        float *rec = eval_all(gpu_fast, lids, L, 1, TY_KV_F16);
        CHECK(same_logits(plain, rec, NL), "%s fast decode: replayed steps differ from launched ones", label);
        CHECK(plain_replays == 0 && last_graph_replays == L - 3,
              "%s fast decode: %lld of %d steps replayed (expected %d; %lld with recording off)", label,
              (long long)last_graph_replays, L, L - 3, (long long)plain_replays);
        const int64_t rec_split4 = last_attn_split4; /* 300 positions: all under the default 4096 keys */
        /* the split kernel's block size changes at 256 keys here (4096 by default): one-token steps,
         * replayed and launched, and batches of 5 across it (one launch per size) agree bit for bit */
        setenv("TY_CUDA_SPLIT_W8_KEYS", "256", 1);
        float *w1 = eval_all(gpu_fast, lids, L, 1, TY_KV_F16);
        const int64_t w1_replays = last_graph_replays, w1_split4 = last_attn_split4;
        float *w5 = eval_all(gpu_fast, lids, L, 5, TY_KV_F16);
        setenv("TY_CUDA_NO_GRAPH", "1", 1);
        float *w1p = eval_all(gpu_fast, lids, L, 1, TY_KV_F16);
        unsetenv("TY_CUDA_NO_GRAPH");
        unsetenv("TY_CUDA_SPLIT_W8_KEYS");
        CHECK(w1_replays == L - 3 && same_logits(w1, w5, NL) && same_logits(w1, w1p, NL),
              "%s fast decode: with 8 warps per attention block up to 256 keys, batches of 5 or launched steps "
              "differ from replayed one-token steps (%lld replayed)", label, (long long)w1_replays);
        /* where the split kernel runs (head_dim 128, G <= 8), 4-warp blocks ran past 256 keys only */
        const int split = split_attention(&gpu_fast->desc.hp);
        CHECK(rec_split4 == 0 && (split ? w1_split4 > 0 : w1_split4 == 0),
              "%s: 4-warp attention launches %lld by default (expected 0), %lld past 256 keys (expected %s)", label,
              (long long)rec_split4, (long long)w1_split4, split ? "> 0" : "0");
        free(w1);
        free(w5);
        free(w1p);
        free(plain);
        free(rec);
    }
    const int kvs[2] = {TY_KV_F16, TY_KV_Q8_0};
    for (int i = 0; i < (quick ? 1 : 2); i++) {
        float *a = eval_all(gpu_fast, ids, n, 1, kvs[i]), *b = eval_unfused(gpu_fast, ids, n, 1, kvs[i]);
        CHECK(same_logits(a, b, N), "%s fast decode (%s KV): fused ops differ from the unfused ones", label,
              i == 0 ? "F16" : "Q8_0");
        free(a);
        free(b);
    }
    float *p = eval_all(gpu_fast, ids, n, 512, TY_KV_F16), *pu = eval_unfused(gpu_fast, ids, n, 512, TY_KV_F16);
    check_rel("fast prompt, fused vs unfused", label, p, pu, N, 1e-5);
    if (getenv("TY_TEST_VERBOSE"))
        printf("  %-40s fast prompt fused vs unfused: %s\n", label, same_logits(p, pu, N) ? "bit-identical" : "not bit-identical");
    free(p);
    free(pu);
    free(u1);
    free(d1);
    free(d5);
    free(d16);
}

static void check_sequence(ty_model *cpu, ty_model *gpu, const ty_token *ids, int n, const char *label, int first,
                           ty_model *cpu_fast, ty_model *gpu_fast) {
    const size_t V = (size_t)ty_n_vocab(cpu), N = (size_t)n * V;
    float *ref = eval_all(cpu, ids, n, 512, TY_KV_F32);
    if (cpu_fast && gpu_fast) check_fast(cpu_fast, gpu_fast, ids, n, ref, label);
    float *got = eval_all(gpu, ids, n, 512, TY_KV_F32);
    check_rel("vs CPU exact", label, got, ref, N, 1e-4);
    { /* the exact path's fused ops (matmul_add in the fp32 kernels, rope_store) against the separate ops */
        float *u = eval_unfused(gpu, ids, n, 512, TY_KV_F32);
        CHECK(same_logits(got, u, N), "%s exact path: fused ops differ from the unfused ones", label);
        free(u);
    }
    if (!quick) {
        float *b7 = eval_all(gpu, ids, n, 7, TY_KV_F32);
        check_rel("batches of 7 vs one batch", label, b7, got, N, 1e-4);
        free(b7);
        float *dec = eval_all(gpu, ids, n, 1, TY_KV_F32), *dec_u = eval_unfused(gpu, ids, n, 1, TY_KV_F32);
        check_rel("decode vs prompt", label, dec, got, N, 1e-4);
        CHECK(same_logits(dec, dec_u, N), "%s exact decode: fused ops differ from the unfused ones", label);
        free(dec);
        free(dec_u);
    }
    if (first) { /* other caches: both engines round K/V the same way */
        float *r16 = eval_all(cpu, ids, n, 512, TY_KV_F16), *g16 = eval_all(gpu, ids, n, 512, TY_KV_F16);
        check_rel("F16 KV vs CPU F16 KV", label, g16, r16, N, 1e-3);
        free(r16);
        free(g16);
        if (!quick) {
            float *r8 = eval_all(cpu, ids, n, 512, TY_KV_Q8_0), *g8 = eval_all(gpu, ids, n, 512, TY_KV_Q8_0);
            check_rel("Q8_0 KV vs CPU Q8_0 KV", label, g8, r8, N, 1e-2);
            free(r8);
            free(g8);
        }
    }
    free(ref);
    free(got);
    if (!quick) check_greedy(cpu, gpu, ids, n, label);
}

static void test_model_file(const char *path, const char *base) {
    double t0 = now_s();
    ty_model *cpu = open_model(path, "cpu", 1), *gpu = open_model(path, "cuda", 1);
    ty_model *cpu_fast = open_model(path, "cpu", 0), *gpu_fast = open_model(path, "cuda", 0);
    CHECK(cpu && gpu && cpu_fast && gpu_fast, "open %s", path);
    if (cpu && gpu) {
        int done = 0;
        for (int k = 0; k < n_cases; k++) {
            size_t ml = strlen(cases[k].model);
            if (strncmp(base, cases[k].model, ml) != 0 || base[ml] != '-') continue;
            if (quick && done >= 2) break;
            char label[160];
            snprintf(label, sizeof label, "%s/%s", base, cases[k].name);
            check_sequence(cpu, gpu, cases[k].ids, cases[k].n, label, done == 0, cpu_fast, gpu_fast);
            done++;
        }
        if (!done) { /* no fixture cases: random token sequences */
            const int lens[2] = {40, 100};
            for (int s = 0; s < (quick ? 1 : 2); s++) {
                ty_token ids[100];
                ids[0] = ty_token_bos(gpu) >= 0 ? ty_token_bos(gpu) : 1;
                for (int i = 1; i < lens[s]; i++) ids[i] = (ty_token)(3 + test_rand_u64(&rng) % (uint64_t)(ty_n_vocab(gpu) - 3));
                char label[160];
                snprintf(label, sizeof label, "%s/random%d", base, lens[s]);
                check_sequence(cpu, gpu, ids, lens[s], label, s == 0, cpu_fast, gpu_fast);
            }
        }
    }
    ty_model_close(cpu);
    ty_model_close(gpu);
    ty_model_close(cpu_fast);
    ty_model_close(gpu_fast);
    printf("test_cuda: %-28s checked in %.1f s\n", base, now_s() - t0);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static void test_models(void) {
    const char *fix = getenv("TY_FIXTURES") ? getenv("TY_FIXTURES") : "../shared/fixtures";
    load_cases(fix);
    char dir[512];
    snprintf(dir, sizeof dir, "%s/gguf", fix);
    char *names[64];
    int n = 0;
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)) && n < 64) {
            size_t l = strlen(e->d_name);
            if (l > 5 && strcmp(e->d_name + l - 5, ".gguf") == 0) names[n++] = strdup(e->d_name);
        }
        closedir(d);
    }
    qsort(names, (size_t)n, sizeof names[0], cmp_str);
    printf("test_cuda: %d fixture models in %s, %d cases\n", n, dir, n_cases);
    int tested = 0;
    for (int i = 0; i < n; i++) {
        if (!quick || tested == 0) {
            char path[1024], base[256];
            snprintf(path, sizeof path, "%s/%s", dir, names[i]);
            snprintf(base, sizeof base, "%.*s", (int)(strlen(names[i]) - 5), names[i]);
            test_model_file(path, base);
            tested++;
        }
        free(names[i]);
    }
    const char *builtin = "data/yard-target-27m-q8_0.gguf";
    FILE *f = fopen(builtin, "rb");
    if (f && !quick) {
        fclose(f);
        test_model_file(builtin, "yard-target-27m-q8_0");
        tested++;
    } else if (f) {
        fclose(f);
    }
    const char *extra = getenv("TY_CUDA_MODELS");
    if (extra && *extra && !quick) {
        char *list = strdup(extra), *save = NULL;
        for (char *p = strtok_r(list, ":", &save); p; p = strtok_r(NULL, ":", &save)) {
            const char *slash = strrchr(p, '/');
            test_model_file(p, slash ? slash + 1 : p);
            tested++;
        }
        free(list);
    }
    CHECK(tested > 0, "no model was tested: put fixtures in %s (TY_FIXTURES) or set TY_CUDA_MODELS", dir);
}

/* ---- 3. a 7B-shaped model ----------------------------------------------------------------------- */

static void test_7b(const char *path) {
    double t0 = now_s();
    ty_model *gpu = open_model(path, "cuda", 1), *cpu = open_model(path, "cpu", 1);
    CHECK(cpu && gpu, "open %s", path);
    if (cpu && gpu) {
        ty_token ids[4] = {1, 0, 0, 0};
        for (int i = 1; i < 4; i++) ids[i] = (ty_token)(3 + test_rand_u64(&rng) % (uint64_t)(ty_n_vocab(gpu) - 3));
        float *got = eval_all(gpu, ids, 4, 512, TY_KV_F32);
        double t1 = now_s();
        float *ref = eval_all(cpu, ids, 4, 512, TY_KV_F32);
        printf("test_cuda: 7B model: GPU load+eval %.1f s, CPU exact eval %.1f s\n", t1 - t0, now_s() - t1);
        check_rel("7B, 4 positions vs CPU exact", path, got, ref, 4 * (size_t)ty_n_vocab(gpu), 1e-3);
        ty_model *cpu_fast = open_model(path, "cpu", 0), *gpu_fast = open_model(path, "cuda", 0);
        if (cpu_fast && gpu_fast) check_fast(cpu_fast, gpu_fast, ids, 4, ref, "7B");
        ty_model_close(cpu_fast);
        ty_model_close(gpu_fast);
        free(got);
        free(ref);
    }
    ty_model_close(cpu);
    ty_model_close(gpu);
}

int main(void) {
    quick = getenv("TY_CUDA_QUICK") && strcmp(getenv("TY_CUDA_QUICK"), "0") != 0;
    ty_backend_config cfg = {.n_threads = 4, .exact_math = 1};
    ty_backend *gpu = NULL, *cpu = NULL;
    ty_err err = {0};
    int rc = ty_backend_new("cuda", &cfg, &gpu, &err);
    if (rc == TY_ERR_DEVICE) {
        printf("test_cuda: skipped (no CUDA device)\n  %s\n", err.msg);
        return check_summary("test_cuda");
    }
    REQUIRE(rc == TY_OK, "cuda backend: %s", err.msg);
    REQUIRE(ty_backend_new("cpu", &cfg, &cpu, &err) == TY_OK, "cpu backend: %s", err.msg);
    /* the CPU backend's scratch must fit the widest rows used below */
    ty_hparams hp = {.n_embd = 4352, .n_ff = 4352, .n_head = 8, .n_head_kv = 1, .head_dim = 128, .n_rot = 128,
                     .rope_freq_base = 1e6f, .n_layer = 1, .n_vocab = 32};
    REQUIRE(cpu->ops->reserve(cpu, &hp, 130, 512, &err) == TY_OK, "cpu reserve: %s", err.msg);

    /* a fresh GPU backend per group: a failure (which a backend keeps) cannot spread to the next */
    /* fast: a backend off the exact path (the tensor-core prompt attention lives there) */
    static const struct { const char *name; void (*fn)(ty_backend *, ty_backend *); int fast; } groups[] = {
        {"matmul / get_rows", test_matmul, 0},       {"rmsnorm", test_rmsnorm, 0},
        {"rope", test_rope, 0},                      {"copy / add / swiglu", test_elementwise, 0},
        {"kv_store / attention", test_attention, 0}, {"kv_store / attention, fast path", test_attention, 1}};
    double t0 = now_s();
    for (size_t i = 0; i < sizeof groups / sizeof groups[0]; i++) {
        cfg.exact_math = !groups[i].fast;
        attn_fast = groups[i].fast;
        if (!gpu && ty_backend_new("cuda", &cfg, &gpu, &err) != TY_OK) {
            CHECK(0, "cuda backend for the %s tests: %s", groups[i].name, err.msg);
            continue;
        }
        REQUIRE(cpu->ops->reserve(cpu, &hp, 130, 512, &err) == TY_OK, "cpu reserve: %s", err.msg);
        groups[i].fn(cpu, gpu);
        backend_ok(gpu, groups[i].name);
        gpu->ops->destroy(gpu);
        gpu = NULL;
    }
    cfg.exact_math = 1;
    test_errors();
    test_matvec_fast();
    test_fused();
    printf("test_cuda: op tests done in %.1f s (%d passed, %d failed so far)\n", now_s() - t0, check_passed,
           check_failed);
    cpu->ops->destroy(cpu);

    test_models();
    const char *p7 = getenv("TY_7B");
    if (p7 && *p7) test_7b(p7);
    return check_summary("test_cuda");
}
