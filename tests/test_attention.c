/* test_attention.c - the tiled online-softmax attention against the plain reference, on fresh random
 * inputs, for every KV cache type, grouped and ungrouped heads, one and many tiles. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/attention.h"
#include "check.h"
#include "quant/quant.h"

static void run_case(unsigned long long *rng, uint32_t kv_type, int64_t n_head, int64_t n_head_kv,
                     int64_t hd, int64_t pos0, int64_t n) {
    const int64_t kv_dim = n_head_kv * hd, q_dim = n_head * hd, rows = pos0 + n;
    const uint64_t row_bytes = ty_row_size(kv_type, kv_dim);
    float *q = malloc(sizeof(float) * (size_t)(n * q_dim));
    float *kf = malloc(sizeof(float) * (size_t)(rows * kv_dim)), *vf = malloc(sizeof(float) * (size_t)(rows * kv_dim));
    void *k = malloc((size_t)(rows * row_bytes)), *v = malloc((size_t)(rows * row_bytes));
    float *got = malloc(sizeof(float) * (size_t)(n * q_dim)), *want = malloc(sizeof(float) * (size_t)(n * q_dim));
    float *scratch = malloc(sizeof(float) * ty_attn_scratch_floats(n_head, n_head_kv, hd));
    /* scores with a std of a few units, so the softmax is far from uniform */
    for (int64_t i = 0; i < n * q_dim; i++) q[i] = 2.0f * test_rand_uniform(rng);
    for (int64_t i = 0; i < rows * kv_dim; i++) {
        kf[i] = 2.0f * test_rand_uniform(rng);
        vf[i] = test_rand_uniform(rng);
    }
    ty_kv_store(k, kv_type, row_bytes, kv_dim, 0, rows, kf);
    ty_kv_store(v, kv_type, row_bytes, kv_dim, 0, rows, vf);
    ty_attn_args a = {q, k, v, kv_type, row_bytes, n, pos0, n_head, n_head_kv, hd, got};
    /* split the jobs in two parts, as two threads would */
    int64_t jobs = n * n_head_kv;
    ty_attn_tiled(&a, 0, jobs / 2, scratch);
    ty_attn_tiled(&a, jobs / 2, jobs, scratch);
    a.out = want;
    ty_attn_reference(&a);
    double max_err = 0;
    for (int64_t i = 0; i < n * q_dim; i++) max_err = fmax(max_err, fabs((double)got[i] - want[i]));
    /* outputs are convex combinations of values in [-1, 1]; float accumulation over <= 1k keys */
    CHECK(max_err < 2e-5, "%s heads %lld/%lld hd %lld pos0 %lld n %lld: max error %.3g", ty_type_name(kv_type),
          (long long)n_head, (long long)n_head_kv, (long long)hd, (long long)pos0, (long long)n, max_err);
    /* a cache row read back must be the stored value (within the type's rounding) */
    float back[512];
    ty_dequantize_row(kv_type, (uint8_t *)k + row_bytes * (uint64_t)(rows - 1), back, kv_dim);
    double tol = kv_type == TY_TYPE_F32 ? 0 : kv_type == TY_TYPE_F16 ? 1e-3 : 2.0 / 127;
    double err = 0;
    for (int64_t i = 0; i < kv_dim; i++) err = fmax(err, fabs((double)back[i] - kf[(rows - 1) * kv_dim + i]));
    CHECK(err <= tol, "%s cache round trip error %.3g > %.3g", ty_type_name(kv_type), err, tol);
    free(q); free(kf); free(vf); free(k); free(v); free(got); free(want); free(scratch);
}

int main(void) {
    unsigned long long rng = 20261126;
    const uint32_t types[] = {TY_TYPE_F32, TY_TYPE_F16, TY_TYPE_Q8_0};
    for (int t = 0; t < 3; t++) {
        run_case(&rng, types[t], 4, 1, 32, 0, 1);      /* a single key */
        run_case(&rng, types[t], 4, 4, 64, 0, 37);     /* multi-head, prompt inside one tile */
        run_case(&rng, types[t], 8, 2, 128, 0, 300);   /* grouped, several tiles, causal prompt */
        run_case(&rng, types[t], 8, 2, 128, 700, 3);   /* decode-like: deep cache, few queries */
        run_case(&rng, types[t], 6, 3, 32, 128, 129);  /* tile boundaries exactly */
    }
    /* the tiled path must not depend on the tile size: a key set larger than 4 tiles */
    run_case(&rng, TY_TYPE_F16, 2, 1, 64, 5 * TY_ATTN_TILE + 17, 2);
    return check_summary("test_attention");
}
