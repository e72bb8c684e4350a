/* kernels.c - the kernel tables and the run-time choice between them (see kernels.h). */
#include "quant/kernels.h"

#include "quant/kernels_avx2.h"

#include <stdbool.h>
#ifdef TY_HAVE_AVX2_KERNELS
#include <cpuid.h>
#endif

/* ---- the scalar set: one wrapper per type around ty_vec_dot / ty_quantize_row ------------------ */

#define SCALAR_DOT(T)                                                                   \
    static void scalar_dot_##T(int64_t n, float *s, const void *w, const void *a) {     \
        ty_vec_dot(TY_TYPE_##T, n, s, w, a);                                            \
    }
#define SCALAR_QUANT(T)                                                                 \
    static void scalar_quant_##T(const float *x, void *y, int64_t n) {                  \
        ty_quantize_row(TY_TYPE_##T, x, y, n);                                          \
    }

SCALAR_DOT(F32) SCALAR_DOT(F16) SCALAR_DOT(BF16)
SCALAR_DOT(Q4_0) SCALAR_DOT(Q4_1) SCALAR_DOT(Q5_0) SCALAR_DOT(Q5_1) SCALAR_DOT(Q8_0)
SCALAR_DOT(Q2_K) SCALAR_DOT(Q3_K) SCALAR_DOT(Q4_K) SCALAR_DOT(Q5_K) SCALAR_DOT(Q6_K) SCALAR_DOT(Q8_K)

/* vec_dot_multi as a loop over a vec_dot: the scalar set, and the AVX2 entries without a
 * multi-token kernel. */
#define MULTI_OF(NAME, DOT)                                                                          \
    static void NAME(int64_t n, float *s, int64_t s_stride, const void *w, size_t w_stride, int64_t n_rows, \
                     const void *a, size_t a_stride, int64_t n_tok) {                                \
        for (int64_t r = 0; r < n_rows; r++)                                                         \
            for (int64_t t = 0; t < n_tok; t++)                                                      \
                DOT(n, s + t * s_stride + r, (const uint8_t *)w + (size_t)r * w_stride,             \
                    (const uint8_t *)a + (size_t)t * a_stride);                                      \
    }
#define SCALAR_MULTI(T) MULTI_OF(scalar_multi_##T, scalar_dot_##T)

SCALAR_MULTI(F32) SCALAR_MULTI(F16) SCALAR_MULTI(BF16)
SCALAR_MULTI(Q4_0) SCALAR_MULTI(Q4_1) SCALAR_MULTI(Q5_0) SCALAR_MULTI(Q5_1) SCALAR_MULTI(Q8_0)
SCALAR_MULTI(Q2_K) SCALAR_MULTI(Q3_K) SCALAR_MULTI(Q4_K) SCALAR_MULTI(Q5_K) SCALAR_MULTI(Q6_K) SCALAR_MULTI(Q8_K)

SCALAR_QUANT(F32) SCALAR_QUANT(F16) SCALAR_QUANT(BF16)
SCALAR_QUANT(Q4_0) SCALAR_QUANT(Q4_1) SCALAR_QUANT(Q5_0) SCALAR_QUANT(Q5_1)
SCALAR_QUANT(Q8_0) SCALAR_QUANT(Q8_1)
SCALAR_QUANT(Q2_K) SCALAR_QUANT(Q3_K) SCALAR_QUANT(Q4_K) SCALAR_QUANT(Q5_K) SCALAR_QUANT(Q6_K)
SCALAR_QUANT(Q8_K)

/* Entries of the scalar set; a faster set overrides some of them after these initializers
 * (a later designated initializer for the same index wins). */
#define SCALAR_DOTS                                                                           \
    [TY_TYPE_F32] = scalar_dot_F32, [TY_TYPE_F16] = scalar_dot_F16,                           \
    [TY_TYPE_BF16] = scalar_dot_BF16, [TY_TYPE_Q4_0] = scalar_dot_Q4_0,                       \
    [TY_TYPE_Q4_1] = scalar_dot_Q4_1, [TY_TYPE_Q5_0] = scalar_dot_Q5_0,                       \
    [TY_TYPE_Q5_1] = scalar_dot_Q5_1, [TY_TYPE_Q8_0] = scalar_dot_Q8_0,                       \
    [TY_TYPE_Q2_K] = scalar_dot_Q2_K, [TY_TYPE_Q3_K] = scalar_dot_Q3_K,                       \
    [TY_TYPE_Q4_K] = scalar_dot_Q4_K, [TY_TYPE_Q5_K] = scalar_dot_Q5_K,                       \
    [TY_TYPE_Q6_K] = scalar_dot_Q6_K, [TY_TYPE_Q8_K] = scalar_dot_Q8_K
#define SCALAR_QUANTS                                                                         \
    [TY_TYPE_F32] = scalar_quant_F32, [TY_TYPE_F16] = scalar_quant_F16,                       \
    [TY_TYPE_BF16] = scalar_quant_BF16, [TY_TYPE_Q4_0] = scalar_quant_Q4_0,                   \
    [TY_TYPE_Q4_1] = scalar_quant_Q4_1, [TY_TYPE_Q5_0] = scalar_quant_Q5_0,                   \
    [TY_TYPE_Q5_1] = scalar_quant_Q5_1, [TY_TYPE_Q8_0] = scalar_quant_Q8_0,                   \
    [TY_TYPE_Q8_1] = scalar_quant_Q8_1, [TY_TYPE_Q2_K] = scalar_quant_Q2_K,                   \
    [TY_TYPE_Q3_K] = scalar_quant_Q3_K, [TY_TYPE_Q4_K] = scalar_quant_Q4_K,                   \
    [TY_TYPE_Q5_K] = scalar_quant_Q5_K, [TY_TYPE_Q6_K] = scalar_quant_Q6_K,                   \
    [TY_TYPE_Q8_K] = scalar_quant_Q8_K

#define SCALAR_MULTIS                                                                         \
    [TY_TYPE_F32] = scalar_multi_F32, [TY_TYPE_F16] = scalar_multi_F16,                       \
    [TY_TYPE_BF16] = scalar_multi_BF16, [TY_TYPE_Q4_0] = scalar_multi_Q4_0,                   \
    [TY_TYPE_Q4_1] = scalar_multi_Q4_1, [TY_TYPE_Q5_0] = scalar_multi_Q5_0,                   \
    [TY_TYPE_Q5_1] = scalar_multi_Q5_1, [TY_TYPE_Q8_0] = scalar_multi_Q8_0,                   \
    [TY_TYPE_Q2_K] = scalar_multi_Q2_K, [TY_TYPE_Q3_K] = scalar_multi_Q3_K,                   \
    [TY_TYPE_Q4_K] = scalar_multi_Q4_K, [TY_TYPE_Q5_K] = scalar_multi_Q5_K,                   \
    [TY_TYPE_Q6_K] = scalar_multi_Q6_K, [TY_TYPE_Q8_K] = scalar_multi_Q8_K

static const ty_kernels SCALAR = {
    .name = "scalar",
    .vec_dot = {SCALAR_DOTS},
    .quantize_row = {SCALAR_QUANTS},
    .vec_dot_multi = {SCALAR_MULTIS},
};

const ty_kernels *ty_kernels_scalar(void) { return &SCALAR; }

/* ---- AVX2 + FMA + F16C ------------------------------------------------------------------------ */

#ifdef TY_HAVE_AVX2_KERNELS
/* AVX2 single-row kernels without a multi-token one: a loop over them (never over the scalar
 * reference, whose float order differs). */
MULTI_OF(avx2_multi_f32, ty_avx2_dot_f32)
MULTI_OF(avx2_multi_f16, ty_avx2_dot_f16)
MULTI_OF(avx2_multi_bf16, ty_avx2_dot_bf16)

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Woverride-init" /* the overrides below are the point */
#elif defined(__clang__)
#pragma clang diagnostic push
#pragma clang diagnostic ignored "-Winitializer-overrides"
#endif
static const ty_kernels AVX2 = {
    .name = "avx2",
    .vec_dot = {
        SCALAR_DOTS, /* Q8_K x Q8_K stays scalar: no model stores Q8_K weights */
        [TY_TYPE_F32] = ty_avx2_dot_f32, [TY_TYPE_F16] = ty_avx2_dot_f16,
        [TY_TYPE_BF16] = ty_avx2_dot_bf16, [TY_TYPE_Q4_0] = ty_avx2_dot_q4_0,
        [TY_TYPE_Q4_1] = ty_avx2_dot_q4_1, [TY_TYPE_Q5_0] = ty_avx2_dot_q5_0,
        [TY_TYPE_Q5_1] = ty_avx2_dot_q5_1, [TY_TYPE_Q8_0] = ty_avx2_dot_q8_0,
        [TY_TYPE_Q2_K] = ty_avx2_dot_q2_K, [TY_TYPE_Q3_K] = ty_avx2_dot_q3_K,
        [TY_TYPE_Q4_K] = ty_avx2_dot_q4_K, [TY_TYPE_Q5_K] = ty_avx2_dot_q5_K,
        [TY_TYPE_Q6_K] = ty_avx2_dot_q6_K,
    },
    .vec_dot_multi = {
        SCALAR_MULTIS, /* Q8_K: as vec_dot */
        [TY_TYPE_F32] = avx2_multi_f32, [TY_TYPE_F16] = avx2_multi_f16,
        [TY_TYPE_BF16] = avx2_multi_bf16, [TY_TYPE_Q4_0] = ty_avx2_dot_multi_q4_0,
        [TY_TYPE_Q4_1] = ty_avx2_dot_multi_q4_1, [TY_TYPE_Q5_0] = ty_avx2_dot_multi_q5_0,
        [TY_TYPE_Q5_1] = ty_avx2_dot_multi_q5_1, [TY_TYPE_Q8_0] = ty_avx2_dot_multi_q8_0,
        [TY_TYPE_Q2_K] = ty_avx2_dot_multi_q2_K, [TY_TYPE_Q3_K] = ty_avx2_dot_multi_q3_K,
        [TY_TYPE_Q4_K] = ty_avx2_dot_multi_q4_K, [TY_TYPE_Q5_K] = ty_avx2_dot_multi_q5_K,
        [TY_TYPE_Q6_K] = ty_avx2_dot_multi_q6_K,
    },
    .quantize_row = {
        SCALAR_QUANTS, /* weight formats: offline, once; the scalar code is the reference */
        [TY_TYPE_Q8_0] = ty_avx2_quantize_q8_0, [TY_TYPE_Q8_1] = ty_avx2_quantize_q8_1,
        [TY_TYPE_Q8_K] = ty_avx2_quantize_q8_K,
    },
};
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#elif defined(__clang__)
#pragma clang diagnostic pop
#endif
#endif

#ifdef TY_HAVE_AVX2_KERNELS
/* F16C: CPUID leaf 1, ECX bit 29 (clang's __builtin_cpu_supports does not know "f16c"). */
static bool cpu_has_f16c(void) {
    unsigned a, b, c, d;
    return __get_cpuid(1, &a, &b, &c, &d) && (c & bit_F16C);
}
#endif

const ty_kernels *ty_kernels_best(void) {
#ifdef TY_HAVE_AVX2_KERNELS
    /* libgcc / compiler-rt fill the CPU model in a constructor; their "avx2" also checks that the
     * OS saves the YMM registers (XGETBV). */
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && cpu_has_f16c())
        return &AVX2;
#endif
    return &SCALAR;
}
