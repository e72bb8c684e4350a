/* bench_kernels.c - weight-streaming throughput of the vec_dot kernels, scalar vs best (AVX2).
 *
 * Not built by CMake. From the repository root:
 *     gcc -std=c11 -O2 -D_GNU_SOURCE -Isrc -Iinclude bench/bench_kernels.c \
 *         $(find src/quant -name '*.c') -lm -lpthread -o /tmp/bench_kernels
 *     /tmp/bench_kernels [threads] [type ...]
 *     BENCH_MIB=1 /tmp/bench_kernels 1     # a cache-resident matrix instead: compute speed
 *
 * For each weight type: a matrix of rows of K = 4096 elements (a 7B model's d_model), with at
 * least 14336 rows and at least 256 MiB (8x a 32 MiB L3) so that every pass streams it from DRAM,
 * times one activation row (decode: the activation stays in L1/L2). A pass calls vec_dot once per
 * row, like cpu_backend's matmul_fast_task. "read" is a plain AVX2 sum over the same buffer: the
 * ceiling a memory-bound kernel can reach. The three are timed interleaved (the bandwidth of a
 * shared host drifts) and the best pass of each is reported as GB/s of weight bytes read
 * (GB = 1e9 bytes). threads (default 1) splits the rows between that many threads.
 * Weights are random bytes with small random f16 scales (the kernels' speed does not depend on
 * the values); float weights are random floats.
 *
 *     /tmp/bench_kernels multi [type ...]
 * Prompt-processing (compute-bound) mode, one thread: 64 weight rows of K (147-430 KiB for the
 * quantized types, kept in L2 by reuse) times n_tok = 4, 16, 64 activation rows, as a matmul
 * does it: per weight row, either one vec_dot call per token ("single") or one vec_dot_multi call
 * for all n_tok ("multi"). GMAC/s = 64 * n_tok * K / time / 1e9, time = the thread's CPU time (best
 * of 40 interleaved runs of >= 2 ms). Then a prompt-sized case: 512
 * rows x 512 tokens (weights 1-4 MiB, activations 2.3 MiB: both out of L2, as in a real prompt), also
 * with the tokens in blocks of 64 ("multi/64": per block, all rows; the block's activations stay in
 * L2). */
#include <immintrin.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/fp16.h"
#include "quant/kernels.h"
#include "quant/quant.h"

#define K 4096

static uint64_t rng_state = 0x1234567887654321ull;
static uint64_t rnd(void) {
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
static float frnd(void) { return (float)((double)(rnd() >> 11) * (2.0 / 9007199254740992.0) - 1.0); }

/* CPU time of the calling thread: the multi mode's clock, so that time slices lost to other
 * processes on a shared machine do not count (a single-threaded measurement). */
static double thread_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Offsets of the f16 scale fields to sanitise in random blocks (-1: none). */
static void scale_fields(uint32_t t, int *d, int *m) {
    *d = -1, *m = -1;
    switch (t) {
    case TY_TYPE_Q4_0: case TY_TYPE_Q5_0: case TY_TYPE_Q8_0: *d = 0; break;
    case TY_TYPE_Q4_1: case TY_TYPE_Q5_1: case TY_TYPE_Q4_K: case TY_TYPE_Q5_K: *d = 0, *m = 2; break;
    case TY_TYPE_Q2_K: *d = 80, *m = 82; break;
    case TY_TYPE_Q3_K: *d = 108; break;
    case TY_TYPE_Q6_K: *d = 208; break;
    default: break;
    }
}

typedef struct {
    ty_vec_dot_fn fn;
    const uint8_t *w;
    size_t row_bytes;
    int64_t r0, r1;
    const void *a;
    float *y;
    int passes; /* over the rows: > 1 for cache-resident matrices, so that a timing spans >= 64 MiB */
    double sink;
} job;

static void *run_rows(void *arg) {
    job *j = arg;
    for (int p = 0; p < j->passes; p++)
        for (int64_t r = j->r0; r < j->r1; r++) j->fn(K, &j->y[r], j->w + (size_t)r * j->row_bytes, j->a);
    return NULL;
}

/* Plain streaming read of the same rows (the bandwidth ceiling). */
__attribute__((target("avx2"))) static void *read_rows(void *arg) {
    job *j = arg;
    const uint8_t *const p = j->w + (size_t)j->r0 * j->row_bytes, *const e = j->w + (size_t)j->r1 * j->row_bytes;
    __m256i acc = _mm256_setzero_si256();
    for (int pass = 0; pass < j->passes; pass++)
    for (const uint8_t *q = p; q + 128 <= e; q += 128) {
        acc = _mm256_add_epi64(acc, _mm256_loadu_si256((const __m256i *)q));
        acc = _mm256_add_epi64(acc, _mm256_loadu_si256((const __m256i *)(q + 32)));
        acc = _mm256_add_epi64(acc, _mm256_loadu_si256((const __m256i *)(q + 64)));
        acc = _mm256_add_epi64(acc, _mm256_loadu_si256((const __m256i *)(q + 96)));
    }
    long long v[4];
    _mm256_storeu_si256((__m256i *)v, acc);
    j->sink = (double)(v[0] + v[1] + v[2] + v[3]);
    return NULL;
}

/* Best time of `reps` passes over all rows, split between nth threads. */
static double time_pass(void *(*body)(void *), ty_vec_dot_fn fn, const uint8_t *w, size_t row_bytes, int64_t rows,
                        const void *a, float *y, int nth, int reps) {
    const size_t bytes = row_bytes * (size_t)rows;
    const int passes = bytes >= (64u << 20) ? 1 : (int)((64u << 20) / bytes);
    double best = 1e30;
    for (int rep = 0; rep < reps; rep++) {
        job jobs[64];
        pthread_t tid[64];
        for (int t = 0; t < nth; t++)
            jobs[t] = (job){fn, w, row_bytes, rows * t / nth, rows * (t + 1) / nth, a, y, passes, 0};
        const double t0 = now();
        for (int t = 1; t < nth; t++) pthread_create(&tid[t], NULL, body, &jobs[t]);
        body(&jobs[0]);
        for (int t = 1; t < nth; t++) pthread_join(tid[t], NULL);
        const double dt = (now() - t0) / passes;
        if (dt < best) best = dt;
    }
    return best;
}

/* ---- multi-token (prompt) mode ------------------------------------------------------------------ */

/* Fills rows x K weights of type t (random bytes, sane f16 scales; float types from random floats). */
static void fill_weights(uint32_t t, uint8_t *w, int64_t rows) {
    const size_t rb = ty_row_size(t, K), bytes = rb * (size_t)rows;
    if (ty_type_get(t)->vec_dot_type == TY_TYPE_F32) {
        float row[K];
        for (int64_t r = 0; r < rows; r++) {
            for (int i = 0; i < K; i++) row[i] = frnd();
            ty_quantize_row(t, row, w + (size_t)r * rb, K);
        }
        return;
    }
    for (size_t i = 0; i < bytes; i += 8) {
        const uint64_t v = rnd();
        memcpy(w + i, &v, bytes - i < 8 ? bytes - i : 8);
    }
    int d_off, m_off;
    scale_fields(t, &d_off, &m_off);
    const size_t ts = (size_t)ty_type_get(t)->type_size;
    for (size_t b = 0; b < bytes / ts && d_off >= 0; b++) {
        const uint16_t d = ty_f32_to_f16(frnd() * 0.01f), m = ty_f32_to_f16(frnd() * 0.01f);
        memcpy(w + b * ts + d_off, &d, 2);
        if (m_off >= 0) memcpy(w + b * ts + m_off, &m, 2);
    }
}

/* Seconds per matmul of rows x K weights by n_tok activation rows (y[t * rows + r]), over >= 10 ms;
 * multi: one vec_dot_multi call for all rows, else vec_dot per (row, token). */
static double time_matmul(const ty_kernels *k, uint32_t t, int mode, const uint8_t *w, int64_t rows,
                          const uint8_t *a, size_t a_stride, int64_t n_tok, float *y) {
    const size_t rb = ty_row_size(t, K);
    const int64_t tb = mode == 2 ? 64 : n_tok; /* mode 2: tokens in blocks of 64, rows inner */
    int iters = 0;
    const double t0 = thread_now();
    double t1;
    do {
        for (int64_t t0k = 0; t0k < n_tok; t0k += tb) {
            const int64_t nt = n_tok - t0k < tb ? n_tok - t0k : tb;
            const uint8_t *ab = a + (size_t)t0k * a_stride;
            if (mode) {
                k->vec_dot_multi[t](K, y + t0k * rows, rows, w, rb, rows, ab, a_stride, nt);
                continue;
            }
            for (int64_t r = 0; r < rows; r++)
                for (int64_t j = 0; j < nt; j++)
                    k->vec_dot[t](K, y + (t0k + j) * rows + r, w + (size_t)r * rb, ab + (size_t)j * a_stride);
        }
        iters++;
        t1 = thread_now();
    } while (t1 - t0 < 0.002);
    return (t1 - t0) / iters;
}

static int bench_multi(int argc, char **argv, const uint32_t *types, size_t n_types) {
    const ty_kernels *k = ty_kernels_best();
    printf("multi-token dot products: kernels = %s, 1 thread, K = %d; GMAC/s (1e9 multiply-adds per second)\n",
           k->name, K);
    printf("%-5s %6s %6s %7s | %8s %8s | %7s | %8s %7s\n", "type", "rows", "tokens", "W KiB", "single", "multi",
           "speedup", "multi/64", "speedup");
    static const int64_t NTOK[] = {4, 16, 64, 512};
    for (size_t ti = 0; ti < n_types; ti++) {
        const uint32_t t = types[ti];
        bool wanted = argc <= 2;
        for (int i = 2; i < argc; i++) wanted |= strcmp(argv[i], ty_type_name(t)) == 0;
        if (!wanted) continue;
        const uint32_t vdt = ty_type_get(t)->vec_dot_type;
        const size_t as = vdt == TY_TYPE_F32 ? sizeof(float) * K : ty_row_size(vdt, K);
        for (size_t ni = 0; ni < sizeof NTOK / sizeof NTOK[0]; ni++) {
            const int64_t n_tok = NTOK[ni], rows = n_tok == 512 ? 512 : 64;
            const size_t rb = ty_row_size(t, K);
            uint8_t *w = malloc(rb * (size_t)rows), *a = malloc(as * (size_t)n_tok);
            float *y = malloc(sizeof(float) * (size_t)(rows * n_tok)), *x = malloc(sizeof(float) * K);
            if (!w || !a || !y || !x) { fprintf(stderr, "out of memory\n"); return 1; }
            fill_weights(t, w, rows);
            for (int64_t j = 0; j < n_tok; j++) {
                for (int i = 0; i < K; i++) x[i] = frnd();
                if (vdt == TY_TYPE_F32) memcpy(a + (size_t)j * as, x, as);
                else k->quantize_row[vdt](x, a + (size_t)j * as, K);
            }
            double ts = 1e30, tm = 1e30, tb = 1e30;
            for (int rep = 0; rep < 40; rep++) { /* interleaved, best of: the shared host's speed drifts */
                ts = fmin(ts, time_matmul(k, t, 0, w, rows, a, as, n_tok, y));
                tm = fmin(tm, time_matmul(k, t, 1, w, rows, a, as, n_tok, y));
                if (n_tok > 64) tb = fmin(tb, time_matmul(k, t, 2, w, rows, a, as, n_tok, y));
            }
            const double macs = (double)rows * (double)n_tok * K;
            printf("%-5s %6lld %6lld %7.0f | %8.2f %8.2f | %6.2fx", ty_type_name(t), (long long)rows,
                   (long long)n_tok, (double)(rb * (size_t)rows) / 1024.0, macs / ts * 1e-9, macs / tm * 1e-9, ts / tm);
            if (n_tok > 64) printf(" | %8.2f %6.2fx", macs / tb * 1e-9, ts / tb);
            printf("\n");
            fflush(stdout);
            free(w);
            free(a);
            free(y);
            free(x);
        }
    }
    return 0;
}

int main(int argc, char **argv) {
    static const uint32_t ALL[] = {TY_TYPE_F32, TY_TYPE_F16, TY_TYPE_BF16, TY_TYPE_Q4_0, TY_TYPE_Q4_1,
                                   TY_TYPE_Q5_0, TY_TYPE_Q5_1, TY_TYPE_Q8_0, TY_TYPE_Q2_K, TY_TYPE_Q3_K,
                                   TY_TYPE_Q4_K, TY_TYPE_Q5_K, TY_TYPE_Q6_K};
    if (argc > 1 && strcmp(argv[1], "multi") == 0) return bench_multi(argc, argv, ALL, sizeof ALL / sizeof ALL[0]);
    int nth = argc > 1 ? atoi(argv[1]) : 1;
    const char *mib = getenv("BENCH_MIB"); /* matrix size in MiB instead of >= 256 (and >= 14336 rows) */
    const uint64_t MIN_BYTES = (mib ? strtoull(mib, NULL, 10) : 256) << 20;
    const int64_t MIN_ROWS = mib ? 1 : 14336;
    if (nth < 1 || nth > 64) nth = 1;
    const ty_kernels *fast = ty_kernels_best(), *ref = ty_kernels_scalar();
    printf("kernels: best = %s, threads = %d, K = %d, matrices >= %llu MiB\n", fast->name, nth, K,
           (unsigned long long)(MIN_BYTES >> 20));
    printf("%-5s %7s %9s | %9s %9s %9s | %7s\n", "type", "rows", "MiB", "read GB/s", "scalar", fast->name,
           "speedup");

    float *x = malloc(sizeof(float) * K);
    uint8_t *xq = malloc(ty_row_size(TY_TYPE_Q8_K, K) + ty_row_size(TY_TYPE_Q8_1, K));
    for (int i = 0; i < K; i++) x[i] = frnd();
    for (size_t ti = 0; ti < sizeof ALL / sizeof ALL[0]; ti++) {
        const uint32_t t = ALL[ti];
        bool wanted = argc <= 2;
        for (int i = 2; i < argc; i++) wanted |= strcmp(argv[i], ty_type_name(t)) == 0;
        if (!wanted) continue;
        const uint32_t vdt = ty_type_get(t)->vec_dot_type;
        const size_t rb = ty_row_size(t, K);
        int64_t rows = (int64_t)((MIN_BYTES + rb - 1) / rb);
        if (rows < MIN_ROWS) rows = MIN_ROWS;
        const size_t bytes = rb * (size_t)rows;
        uint8_t *w = malloc(bytes);
        float *y = malloc(sizeof(float) * (size_t)rows);
        if (!w || !y) { fprintf(stderr, "out of memory\n"); return 1; }
        if (vdt == TY_TYPE_F32) { /* float weights: quantize random floats row by row */
            float row[K];
            for (int64_t r = 0; r < rows; r++) {
                for (int i = 0; i < K; i++) row[i] = frnd();
                ty_quantize_row(t, row, w + (size_t)r * rb, K);
            }
        } else {
            for (size_t i = 0; i < bytes; i += 8) {
                const uint64_t v = rnd();
                memcpy(w + i, &v, bytes - i < 8 ? bytes - i : 8);
            }
            int d_off, m_off;
            scale_fields(t, &d_off, &m_off);
            const size_t ts = (size_t)ty_type_get(t)->type_size;
            for (size_t b = 0; b < bytes / ts; b++) {
                const uint16_t d = ty_f32_to_f16(frnd() * 0.01f), m = ty_f32_to_f16(frnd() * 0.01f);
                memcpy(w + b * ts + d_off, &d, 2);
                if (m_off >= 0) memcpy(w + b * ts + m_off, &m, 2);
            }
        }
        const void *a = x;
        if (vdt != TY_TYPE_F32) {
            fast->quantize_row[vdt](x, xq, K);
            a = xq;
        }
        /* interleaved, best of each: the machine's bandwidth drifts (shared host) */
        double t_read = 1e30, t_ref = 1e30, t_fast = 1e30;
        for (int rep = 0; rep < 4; rep++) {
            t_read = fmin(t_read, time_pass(read_rows, NULL, w, rb, rows, a, y, nth, 1));
            if (rep < 2) t_ref = fmin(t_ref, time_pass(run_rows, ref->vec_dot[t], w, rb, rows, a, y, nth, 1));
            t_fast = fmin(t_fast, time_pass(run_rows, fast->vec_dot[t], w, rb, rows, a, y, nth, 1));
        }
        printf("%-5s %7lld %9.1f | %9.2f %9.2f %9.2f | %6.1fx\n", ty_type_name(t), (long long)rows,
               (double)bytes / 1048576.0, (double)bytes / t_read * 1e-9, (double)bytes / t_ref * 1e-9,
               (double)bytes / t_fast * 1e-9, t_ref / t_fast);
        fflush(stdout);
        free(w);
        free(y);
    }
    free(x);
    free(xq);
    return 0;
}
