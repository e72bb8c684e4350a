/* test_kernels.c - the fast kernels of src/quant/kernels.h against the scalar reference.
 *
 * 1. tables: every entry the reference supports is non-NULL in both sets; on an AVX2 machine the
 *    entries claimed accelerated really differ from the scalar wrappers (else this file would
 *    compare the reference with itself).
 * 2. activation quantizers Q8_0, Q8_1, Q8_K: byte-identical to ty_quantize_row on random rows and
 *    on rows built to hit the corner cases: exact .5 ties after scaling (roundf rounds them away
 *    from zero for Q8_0/Q8_1, nearest_int to even for Q8_K), +amax and -amax in one block (Q8_K
 *    takes the sign of the first), all-zero blocks, tiny values (subnormal f16 scale), large values.
 * 3. vec_dot, exact mode: weights of random bytes with their float scales set to 1 (so every bit
 *    pattern of nibbles, high bits, sub-block scales and mins occurs) and integer activations with
 *    scale 1, small enough that every block result and every partial sum is an integer below 2^24
 *    (|a| <= 2^24 / (n * WMAX), WMAX the largest |weight component| of the type). The float
 *    arithmetic is then exact in any order: fast, reference and the exact integer dot must be
 *    equal bit for bit, so a single wrong element anywhere fails.
 * 4. vec_dot, float mode: realistic rows (weights quantized from random floats, or random bytes
 *    with random scales; activations quantized from random floats). Bound:
 *        |fast - ref| <= (N + N/8 + 16) * FLT_EPSILON * M
 *    N = number of float terms summed (elements for F32/F16/BF16, blocks for the 32-element and
 *    K formats, twice that for the formats with mins), M = sum over elements of |a_i| times the
 *    magnitudes of the weight's components (|d*q| + |min| for formats with mins, |w| else),
 *    computed in double from dequantized rows. Each term has relative error <= 3u (u = 2^-24 =
 *    FLT_EPSILON/2) and a sum of N terms in any order errs by <= (N-1)u * M, so both results
 *    are within (N + 2)u*M of the exact value: the bound is twice that. For n = 256 it is
 *    ~3e-6 M, a thousand times below the weight of one average element (M/256).
 *    Rows sit at odd addresses (GGUF rows in a mapped file are not 32-byte aligned) inside
 *    buffers that end where the row ends, so ASan catches over-reads; results must not depend on
 *    the address.
 *
 * 5. vec_dot_multi (1-3 weight rows, n_tok activation rows), in both sets and for every type: each
 *    result has the bits of vec_dot on that pair of rows (memcmp), for n = 256, 4096, 14336 and odd block
 *    counts (1, 3; float types 7, 1001 elements), n_tok = 1..17 (every mix of token groups and
 *    single-row leftovers), odd addresses, activation strides with junk between rows, strided
 *    results with canaries between them. The AVX2 multi kernels replicate the single-row kernels'
 *    float order, so a change to either that is not mirrored shows up here.
 *
 * Skips sections 2-5 for the AVX2 set (with a message, passing) when the CPU lacks AVX2/FMA/F16C.
 * Environment: TY_TEST_SEED adds one more seed to the fixed ones. */
#include <float.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/fp16.h"
#include "quant/kernels.h"
#include "quant/quant.h"
#include "support/check.h"

static unsigned long long rng;

static float urand(void) { return test_rand_uniform(&rng); } /* [-1, 1) */
static uint32_t u32rand(void) { return (uint32_t)(test_rand_u64(&rng) >> 32); }
static int irand(int lo, int hi) { return lo + (int)(u32rand() % (uint32_t)(hi - lo + 1)); } /* [lo, hi] */

static void put_f16(uint8_t *p, float v) {
    const uint16_t h = ty_f32_to_f16(v);
    p[0] = (uint8_t)h;
    p[1] = (uint8_t)(h >> 8);
}
static void put_f32(uint8_t *p, float v) {
    const uint32_t u = ty_f32_to_bits(v);
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(u >> (8 * i));
}

/* A row of `size` bytes at byte offset `off` in a buffer that ends exactly where the row ends. */
typedef struct { uint8_t *base, *p; } row_buf;
static row_buf row_alloc(size_t size, size_t off) {
    row_buf r;
    r.base = malloc(off + size + 1); /* +1: malloc(0) */
    if (!r.base) { fprintf(stderr, "out of memory\n"); exit(2); }
    r.p = r.base + off;
    return r;
}

/* ---- the types ------------------------------------------------------------------------------- */

typedef struct {
    uint32_t type;
    bool fast;    /* the AVX2 set must override the scalar entry */
    int d_off;    /* offset of the f16 scale d in the block, -1: none (float types) */
    int m_off;    /* offset of the f16 min / dmin, -1: no min */
    int wmax;     /* largest |component| of a weight with its float scales set to 1 */
} type_case;

static const type_case TYPES[] = {
    {TY_TYPE_F32, true, -1, -1, 64},   /* exact mode: integer weights in [-64, 64] */
    {TY_TYPE_F16, true, -1, -1, 64},
    {TY_TYPE_BF16, true, -1, -1, 64},
    {TY_TYPE_Q4_0, true, 0, -1, 8},    /* q - 8 in [-8, 7] */
    {TY_TYPE_Q4_1, true, 0, 2, 16},    /* q + m: 15 + 1 */
    {TY_TYPE_Q5_0, true, 0, -1, 16},
    {TY_TYPE_Q5_1, true, 0, 2, 32},
    {TY_TYPE_Q8_0, true, 0, -1, 128},
    {TY_TYPE_Q2_K, true, 80, 82, 60},  /* 15 * 3 + 15 */
    {TY_TYPE_Q3_K, true, 108, -1, 128},/* (s - 32) in [-32, 31] times q in [-4, 3] */
    {TY_TYPE_Q4_K, true, 0, 2, 1008},  /* 63 * 15 + 63 */
    {TY_TYPE_Q5_K, true, 0, 2, 2016},  /* 63 * 31 + 63 */
    {TY_TYPE_Q6_K, true, 208, -1, 4096},/* int8 scale times q - 32 in [-32, 31] */
    {TY_TYPE_Q8_K, false, -1, -1, 0},  /* weights in Q8_K: scalar in every set */
};
#define N_TYPES (sizeof TYPES / sizeof TYPES[0])

static const uint32_t FAST_QUANT[] = {TY_TYPE_Q8_0, TY_TYPE_Q8_1, TY_TYPE_Q8_K};

static bool is_float_type(uint32_t t) { return t == TY_TYPE_F32 || t == TY_TYPE_F16 || t == TY_TYPE_BF16; }

/* ================================================================================================
 * 1. tables
 * ================================================================================================ */
static void test_tables(const ty_kernels *fast, const ty_kernels *ref) {
    CHECK(fast && ref && fast->name && ref->name, "tables");
    for (size_t i = 0; i < N_TYPES; i++) {
        const uint32_t t = TYPES[i].type;
        CHECK(ref->vec_dot[t] != NULL && fast->vec_dot[t] != NULL, "%s vec_dot missing", ty_type_name(t));
        CHECK(ref->vec_dot_multi[t] != NULL && fast->vec_dot_multi[t] != NULL, "%s vec_dot_multi missing",
              ty_type_name(t));
        if (fast != ref && TYPES[i].fast)
            CHECK(fast->vec_dot[t] != ref->vec_dot[t], "%s vec_dot not accelerated in %s", ty_type_name(t), fast->name);
    }
    for (uint32_t t = 0; t < TY_TYPE_COUNT; t++) {
        bool weight = false; /* vec_dot entries exist exactly for the weight types */
        for (size_t i = 0; i < N_TYPES; i++) weight |= TYPES[i].type == t;
        CHECK((ref->vec_dot[t] != NULL) == weight && (fast->vec_dot[t] != NULL) == weight, "vec_dot[%u]", t);
        CHECK((ref->vec_dot_multi[t] != NULL) == weight && (fast->vec_dot_multi[t] != NULL) == weight,
              "vec_dot_multi[%u]", t);
        CHECK((ref->quantize_row[t] != NULL) == ty_can_quantize(t), "scalar quantize_row[%u]", t);
        CHECK((fast->quantize_row[t] != NULL) == ty_can_quantize(t), "%s quantize_row[%u]", fast->name, t);
    }
    for (size_t i = 0; fast != ref && i < sizeof FAST_QUANT / sizeof FAST_QUANT[0]; i++)
        CHECK(fast->quantize_row[FAST_QUANT[i]] != ref->quantize_row[FAST_QUANT[i]], "%s quantizer not accelerated",
              ty_type_name(FAST_QUANT[i]));
    /* the scalar set is the reference itself */
    float x[256], s1, s2;
    uint8_t q[292], w[144];
    for (int i = 0; i < 256; i++) x[i] = urand();
    ref->quantize_row[TY_TYPE_Q8_K](x, q, 256);
    uint8_t q2[292];
    ty_quantize_row(TY_TYPE_Q8_K, x, q2, 256);
    ty_quantize_row(TY_TYPE_Q4_K, x, w, 256);
    ref->vec_dot[TY_TYPE_Q4_K](256, &s1, w, q);
    ty_vec_dot(TY_TYPE_Q4_K, 256, &s2, w, q);
    CHECK(memcmp(q, q2, sizeof q) == 0 && s1 == s2, "scalar set differs from the reference");
}

/* ================================================================================================
 * 2. activation quantizers: byte identity
 * ================================================================================================ */

/* Fills x[0..n) in one of several styles; n is a multiple of `bs` (32 or 256). */
static void fill_activation(float *x, int64_t n, int bs, int style) {
    for (int64_t i = 0; i < n; i++) {
        switch (style) {
        case 0: x[i] = urand(); break;
        case 1: x[i] = urand() * (1 + 20 * (u32rand() % 64 == 0)); break; /* outliers */
        case 2: x[i] = urand() * 2e-3f; break;                            /* f16 d subnormal */
        case 3: x[i] = urand() * 3e4f; break;                             /* large */
        default: x[i] = urand(); break;
        }
    }
    if (style < 4) return;
    /* style 4: per block, |max| = 127 exactly so the scale is +-1 and x * scale = x: ties at .5
     * everywhere. Some blocks hold both +127 and -127, some are all zero. */
    for (int64_t b = 0; b < n / bs; b++) {
        float *v = x + b * bs;
        const int kind = (int)(u32rand() % 5);
        if (kind == 0) {
            memset(v, 0, sizeof(float) * (size_t)bs);
            continue;
        }
        for (int j = 0; j < bs; j++) v[j] = (float)irand(-126, 125) + 0.5f;
        const int p1 = irand(0, bs - 1), p2 = irand(0, bs - 1);
        v[p1] = (u32rand() & 1) ? 127.0f : -127.0f;
        if (kind >= 3) v[p2] = -v[p1]; /* equal magnitudes, opposite signs */
        if (kind == 4) v[irand(0, bs - 1)] = -0.0f;
    }
}

static void test_quantizers(const ty_kernels *fast, const unsigned long long *seeds, int n_seeds) {
    static const int64_t LENS[] = {256, 4096, 14336, 768};
    int n_rows = 0;
    for (size_t qi = 0; qi < sizeof FAST_QUANT / sizeof FAST_QUANT[0]; qi++) {
        const uint32_t t = FAST_QUANT[qi];
        const int bs = ty_type_get(t)->block_size;
        for (int si = 0; si < n_seeds; si++) {
            rng = seeds[si] ^ (0x100 * t);
            for (size_t li = 0; li < sizeof LENS / sizeof LENS[0]; li++) {
                const int64_t n = LENS[li];
                for (int style = 0; style < 5; style++) {
                    const size_t rs = ty_row_size(t, n);
                    const size_t xoff = (size_t)irand(0, 7), yoff = (size_t)irand(0, 31);
                    float *xb = malloc(sizeof(float) * (size_t)(n + 8));
                    row_buf got = row_alloc(rs, yoff);
                    uint8_t *want = malloc(rs);
                    if (!xb || !want) { fprintf(stderr, "out of memory\n"); exit(2); }
                    float *x = xb + xoff; /* float-aligned, usually not 32-byte aligned */
                    fill_activation(x, n, bs, style);
                    memset(got.p, 0xA5, rs);
                    ty_quantize_row(t, x, want, n);
                    fast->quantize_row[t](x, got.p, n);
                    size_t bad = rs;
                    for (size_t i = 0; i < rs; i++) {
                        if (got.p[i] != want[i]) { bad = i; break; }
                    }
                    CHECK(bad == rs, "%s quantize n=%lld style %d seed %d: byte %zu (block %zu) is %02x, want %02x",
                          ty_type_name(t), (long long)n, style, si, bad, bad / (size_t)ty_type_get(t)->type_size,
                          bad < rs ? got.p[bad] : 0, bad < rs ? want[bad] : 0);
                    n_rows++;
                    free(xb);
                    free(got.base);
                    free(want);
                }
            }
        }
    }
    printf("  quantizers: %d rows compared byte for byte\n", n_rows);
}

/* ================================================================================================
 * 3./4. vec_dot
 * ================================================================================================ */

/* Random weight row of `t`. from_floats: quantized from random floats by the reference; else
 * random bytes with the f16 scale fields set to `scale` (or random finite values when scale is 0).
 * Float types: exact mode (scale 1) gives integers in [-wmax, wmax]. */
static void make_weights(const type_case *tc, uint8_t *w, int64_t n, bool from_floats, float scale) {
    const uint32_t t = tc->type;
    const size_t rs = ty_row_size(t, n);
    if (is_float_type(t) || from_floats) {
        float *x = malloc(sizeof(float) * (size_t)n);
        if (!x) exit(2);
        for (int64_t i = 0; i < n; i++) x[i] = scale ? (float)irand(-tc->wmax, tc->wmax) : urand() * 0.1f;
        ty_quantize_row(t, x, w, n);
        free(x);
        return;
    }
    for (size_t i = 0; i < rs; i++) w[i] = (uint8_t)u32rand();
    const size_t ts = (size_t)ty_type_get(t)->type_size;
    for (size_t b = 0; b < rs / ts; b++) {
        uint8_t *blk = w + b * ts;
        put_f16(blk + tc->d_off, scale ? scale : urand() * 0.01f);
        if (tc->m_off >= 0) put_f16(blk + tc->m_off, scale ? scale : urand() * 0.01f);
    }
}

/* Activation row in the vec_dot_type of the weights. Exact mode (amax > 0): scale 1, integers in
 * [-amax, amax]. Else quantized from random floats by the reference. */
static void make_activation(uint32_t vdt, void *a, int64_t n, int amax) {
    if (vdt == TY_TYPE_F32) {
        float *f = a;
        for (int64_t i = 0; i < n; i++) f[i] = amax ? (float)irand(-amax, amax) : urand();
        return;
    }
    if (!amax) {
        float *x = malloc(sizeof(float) * (size_t)n);
        if (!x) exit(2);
        fill_activation(x, n, ty_type_get(vdt)->block_size, 1);
        ty_quantize_row(vdt, x, a, n);
        free(x);
        return;
    }
    uint8_t *p = a;
    const int bs = ty_type_get(vdt)->block_size, ts = ty_type_get(vdt)->type_size;
    for (int64_t b = 0; b < n / bs; b++, p += ts) {
        int8_t q[256];
        int sum = 0;
        for (int j = 0; j < bs; j++) sum += q[j] = (int8_t)irand(-amax, amax);
        if (vdt == TY_TYPE_Q8_K) {
            put_f32(p, 1.0f);
            memcpy(p + 4, q, 256);
            for (int j = 0; j < 16; j++) {
                int bsum = 0;
                for (int l = 0; l < 16; l++) bsum += q[16 * j + l];
                p[260 + 2 * j] = (uint8_t)(uint16_t)bsum;
                p[261 + 2 * j] = (uint8_t)((uint16_t)bsum >> 8);
            }
        } else {
            put_f16(p, 1.0f);
            if (vdt == TY_TYPE_Q8_1) put_f16(p + 2, (float)sum); /* |sum| <= 32 * 64: exact in f16 */
            memcpy(p + ts - 32, q, 32);
        }
    }
}

/* M of the bound (see the top): sum |a_i| * (|d-part_i| + |min-part_i|), from dequantized rows. */
static double mass(const type_case *tc, const uint8_t *w, const void *a, int64_t n, double *exact) {
    const uint32_t t = tc->type, vdt = ty_type_get(t)->vec_dot_type;
    float *wd = malloc(sizeof(float) * (size_t)n), *ad = malloc(sizeof(float) * (size_t)n);
    float *wm = malloc(sizeof(float) * (size_t)n);
    if (!wd || !ad || !wm) exit(2);
    ty_dequantize_row(t, w, wd, n);
    if (vdt == TY_TYPE_F32) memcpy(ad, a, sizeof(float) * (size_t)n);
    else ty_dequantize_row(vdt, a, ad, n);
    double m = 0, e = 0;
    if (tc->m_off >= 0) { /* split each weight into its d part (min zeroed) and min part (d zeroed) */
        const size_t rs = ty_row_size(t, n), ts = (size_t)ty_type_get(t)->type_size;
        uint8_t *c = malloc(rs);
        if (!c) exit(2);
        memcpy(c, w, rs);
        for (size_t b = 0; b < rs / ts; b++) memset(c + b * ts + tc->m_off, 0, 2);
        ty_dequantize_row(t, c, wm, n); /* d parts */
        for (int64_t i = 0; i < n; i++) m += fabs((double)ad[i]) * fabs((double)wm[i]);
        memcpy(c, w, rs);
        for (size_t b = 0; b < rs / ts; b++) memset(c + b * ts + tc->d_off, 0, 2);
        ty_dequantize_row(t, c, wm, n); /* min parts */
        for (int64_t i = 0; i < n; i++) m += fabs((double)ad[i]) * fabs((double)wm[i]);
        free(c);
    } else {
        for (int64_t i = 0; i < n; i++) m += fabs((double)wd[i] * ad[i]);
    }
    for (int64_t i = 0; i < n; i++) e += (double)wd[i] * ad[i];
    if (exact) *exact = e;
    free(wd);
    free(ad);
    free(wm);
    return m;
}

typedef struct { double worst_ratio; int n_exact, n_float; } dot_stats; /* ratio: err / (eps*M) */

static void test_dot_case(const ty_kernels *fast, const type_case *tc, int64_t n, bool exact_mode,
                          bool from_floats, int si, dot_stats *st) {
    const uint32_t t = tc->type, vdt = ty_type_get(t)->vec_dot_type;
    const size_t rs = ty_row_size(t, n), as = vdt == TY_TYPE_F32 ? sizeof(float) * (size_t)n : ty_row_size(vdt, n);
    int amax = 0;
    if (exact_mode) {
        const double lim = 16777216.0 / ((double)n * tc->wmax);
        amax = lim >= 127 ? 127 : (int)lim;
        if (vdt == TY_TYPE_Q8_1 && amax > 64) amax = 64;
        if (amax < 1) return; /* no exact case at this length */
    }
    /* odd offsets for the weights; activations: float-aligned for F32, any byte for blocks */
    const size_t woff = (size_t)irand(0, 63);
    const size_t aoff = vdt == TY_TYPE_F32 ? 4 * (size_t)irand(0, 7) : (size_t)irand(0, 63);
    row_buf w = row_alloc(rs, woff), a = row_alloc(as, aoff);
    make_weights(tc, w.p, n, from_floats, exact_mode ? 1.0f : 0.0f);
    make_activation(vdt, a.p, n, amax);

    float got = NAN, want = NAN;
    fast->vec_dot[t](n, &got, w.p, a.p);
    ty_vec_dot(t, n, &want, w.p, a.p);
    double exact = 0;
    const double M = mass(tc, w.p, a.p, n, &exact);
    const char *what = exact_mode ? "exact" : from_floats ? "quantized" : "random-bytes";
    if (exact_mode) {
        CHECK(got == want && (double)want == exact, "%s dot %s n=%lld seed %d: fast %.9g ref %.9g exact %.17g",
              ty_type_name(t), what, (long long)n, si, got, want, exact);
        st->n_exact++;
    } else {
        int64_t terms = is_float_type(t) ? n : n / ty_type_get(t)->block_size;
        if (tc->m_off >= 0) terms *= 2;
        const double tol = (double)(terms + terms / 8 + 16) * FLT_EPSILON * M;
        const double err = fabs((double)got - (double)want);
        CHECK(isfinite(got) && err <= tol, "%s dot %s n=%lld seed %d: fast %.9g ref %.9g |diff| %.3g > tol %.3g (M %.6g)",
              ty_type_name(t), what, (long long)n, si, got, want, err, tol, M);
        /* and near the exact dot of the dequantized rows; not for Q8_1 activations, whose s field
         * is d * sum(q) rounded to f16 (the reference inherits that error from ggml) */
        if (vdt != TY_TYPE_Q8_1)
            CHECK(fabs((double)got - exact) <= tol, "%s dot %s n=%lld: fast %.9g vs exact %.17g", ty_type_name(t),
                  what, (long long)n, got, exact);
        if (M > 0 && err / (FLT_EPSILON * M) > st->worst_ratio) st->worst_ratio = err / (FLT_EPSILON * M);
        st->n_float++;
    }
    /* the same rows at other addresses: bit-identical results */
    const size_t woff2 = (woff + 1 + (size_t)irand(0, 30)) % 64;
    const size_t aoff2 = vdt == TY_TYPE_F32 ? (aoff + 4) % 32 : (aoff + 1) % 64;
    row_buf w2 = row_alloc(rs, woff2), a2 = row_alloc(as, aoff2);
    memcpy(w2.p, w.p, rs);
    memcpy(a2.p, a.p, as);
    float got2 = NAN;
    fast->vec_dot[t](n, &got2, w2.p, a2.p);
    CHECK(ty_f32_to_bits(got2) == ty_f32_to_bits(got), "%s dot depends on the address: %.9g vs %.9g", ty_type_name(t),
          got2, got);
    free(w.base);
    free(a.base);
    free(w2.base);
    free(a2.base);
}

static void test_dots(const ty_kernels *fast, const unsigned long long *seeds, int n_seeds) {
    static const int64_t LENS[] = {256, 4096, 14336};
    static const int64_t ODD_LENS[] = {1, 7, 100, 1001}; /* float types: tails */
    static const int64_t ODD_BLOCKS[] = {1, 3};          /* block formats: odd block counts */
    for (size_t ti = 0; ti < N_TYPES; ti++) {
        const type_case *tc = &TYPES[ti];
        if (!tc->fast) continue;
        dot_stats st = {0, 0, 0};
        for (int si = 0; si < n_seeds; si++) {
            rng = seeds[si] ^ (0x10000 * tc->type);
            for (size_t li = 0; li < sizeof LENS / sizeof LENS[0]; li++) {
                test_dot_case(fast, tc, LENS[li], true, false, si, &st);
                test_dot_case(fast, tc, LENS[li], false, true, si, &st);
                if (!is_float_type(tc->type)) test_dot_case(fast, tc, LENS[li], false, false, si, &st);
            }
            for (size_t li = 0; is_float_type(tc->type) && li < sizeof ODD_LENS / sizeof ODD_LENS[0]; li++) {
                test_dot_case(fast, tc, ODD_LENS[li], true, false, si, &st);
                test_dot_case(fast, tc, ODD_LENS[li], false, true, si, &st);
            }
            for (size_t li = 0; !is_float_type(tc->type) && li < sizeof ODD_BLOCKS / sizeof ODD_BLOCKS[0]; li++) {
                const int64_t n = ODD_BLOCKS[li] * ty_type_get(tc->type)->block_size;
                test_dot_case(fast, tc, n, true, false, si, &st);
                test_dot_case(fast, tc, n, false, false, si, &st);
            }
        }
        printf("  %-5s vec_dot: %2d exact cases, %2d float cases, worst |fast-ref| = %.2f eps*M\n",
               ty_type_name(tc->type), st.n_exact, st.n_float, st.worst_ratio);
        CHECK(st.n_exact >= n_seeds, "%s: too few exact cases", ty_type_name(tc->type));
    }
}

/* ================================================================================================
 * 5. vec_dot_multi: bit-identical to vec_dot, row by row
 * ================================================================================================ */

/* n_rows (1-3) weight rows times n_tok activation rows; every result must have the bits of
 * k->vec_dot on that pair of rows (memcmp), the floats between the strided results must be left
 * alone, and the result must not depend on the group the token falls in (n_tok from 1 to 17 puts a
 * row in a group of 8 or 4 or in the single-row tail: 15 = 8 + 4 + 1 + 1 + 1). Weight rows
 * w_stride and activation rows a_stride bytes apart (the row size, or more and odd) in buffers that
 * end where the last row ends; odd addresses everywhere. */
static int test_multi_case(const ty_kernels *k, const type_case *tc, int64_t n, int n_tok, bool from_floats,
                           int si) {
    const uint32_t t = tc->type, vdt = ty_type_get(t)->vec_dot_type;
    const size_t rs = ty_row_size(t, n), as = vdt == TY_TYPE_F32 ? sizeof(float) * (size_t)n : ty_row_size(vdt, n);
    const bool f32a = vdt == TY_TYPE_F32;
    const size_t pad = (u32rand() & 1) ? 0 : (f32a ? 4 * (size_t)irand(1, 8) : (size_t)irand(1, 63));
    const size_t a_stride = as + pad;
    const int n_rows = irand(1, 3);
    const size_t w_stride = rs + ((u32rand() & 1) ? 0 : (size_t)irand(1, 63));
    const size_t woff = (size_t)irand(0, 63), aoff = f32a ? 4 * (size_t)irand(0, 7) : (size_t)irand(0, 63);
    row_buf w = row_alloc(w_stride * (size_t)(n_rows - 1) + rs, woff);
    row_buf a = row_alloc(a_stride * (size_t)(n_tok - 1) + as, aoff);
    for (int r = 0; r < n_rows; r++) make_weights(tc, w.p + (size_t)r * w_stride, n, from_floats, 0.0f);
    for (int i = 0; i < n_tok; i++) make_activation(vdt, a.p + (size_t)i * a_stride, n, 0);
    if (pad) /* junk between the rows: must not be read into any result */
        for (int i = 0; i + 1 < n_tok; i++) memset(a.p + (size_t)i * a_stride + as, 0x5A, pad);
    const int64_t s_stride = n_rows + irand(0, 2);
    float *s = malloc(sizeof(float) * (size_t)(n_tok * s_stride + 1));
    if (!s) exit(2);
    for (int i = 0; i < n_tok * s_stride + 1; i++) s[i] = -12345.0f; /* canaries */
    k->vec_dot_multi[t](n, s, s_stride, w.p, w_stride, n_rows, a.p, a_stride, n_tok);
    int bad = 0;
    for (int i = 0; i < n_tok; i++) {
        for (int r = 0; r < n_rows; r++) {
            float want = NAN;
            k->vec_dot[t](n, &want, w.p + (size_t)r * w_stride, a.p + (size_t)i * a_stride);
            const float got = s[i * s_stride + r];
            if (memcmp(&got, &want, sizeof got) != 0) {
                if (bad++ < 3)
                    CHECK(false, "%s %s vec_dot_multi n=%lld n_tok=%d seed %d: token %d row %d is %.9g (%08x), vec_dot %.9g (%08x)",
                          k->name, ty_type_name(t), (long long)n, n_tok, si, i, r, got, ty_f32_to_bits(got), want,
                          ty_f32_to_bits(want));
            }
        }
        for (int64_t j = n_rows; j < s_stride; j++)
            CHECK(s[i * s_stride + j] == -12345.0f, "%s %s vec_dot_multi wrote between results", k->name, ty_type_name(t));
    }
    CHECK(s[n_tok * s_stride] == -12345.0f, "%s %s vec_dot_multi wrote past the results", k->name, ty_type_name(t));
    if (!bad) CHECK(true, "multi");
    free(s);
    free(w.base);
    free(a.base);
    return bad;
}

static void test_multi(const ty_kernels *k, const unsigned long long *seeds, int n_seeds) {
    static const int64_t LENS[] = {256, 4096, 14336};
    static const int NTOK[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 12, 15, 17};
    for (size_t ti = 0; ti < N_TYPES; ti++) {
        const type_case *tc = &TYPES[ti];
        const uint32_t t = tc->type;
        const int bs = ty_type_get(t)->block_size;
        int n_rows = 0, n_bad = 0;
        for (int si = 0; si < n_seeds; si++) {
            rng = seeds[si] ^ (0x1000000 * (t + 1)) ^ (k == ty_kernels_scalar());
            for (size_t li = 0; li < sizeof LENS / sizeof LENS[0] + 2; li++) {
                /* the standard lengths, then 1 and 3 blocks (odd block counts: the tail paths) or
                 * for float types 7 and 1001 elements */
                const int64_t n = li < 3 ? LENS[li] : is_float_type(t) ? (li == 3 ? 7 : 1001) : (li == 3 ? 1 : 3) * bs;
                for (size_t ni = 0; ni < sizeof NTOK / sizeof NTOK[0]; ni++) {
                    if (n == 14336 && NTOK[ni] > 9 && k == ty_kernels_scalar()) continue; /* time */
                    const bool from_floats = (ni + si) % 2 == 0 || tc->d_off < 0; /* Q8_K, float types */
                    n_bad += test_multi_case(k, tc, n, NTOK[ni], from_floats, si);
                    n_rows += NTOK[ni];
                }
            }
        }
        printf("  %-5s vec_dot_multi (%s): %4d rows, %d not bit-identical to vec_dot\n", ty_type_name(t), k->name,
               n_rows, n_bad);
    }
}

int main(void) {
    unsigned long long seeds[4] = {0x6b65726e656c31ull, 0x2545F4914F6CDD1Dull, 0x9E3779B97F4A7C15ull, 0};
    int n_seeds = 3;
    const char *env = getenv("TY_TEST_SEED");
    if (env) seeds[n_seeds++] = strtoull(env, NULL, 0);
    rng = seeds[0];

    const ty_kernels *fast = ty_kernels_best(), *ref = ty_kernels_scalar();
    printf("test_kernels: best kernel set \"%s\"\n", fast->name);
    test_tables(fast, ref);
    test_multi(ref, seeds, n_seeds); /* the scalar set's loop */
    if (fast == ref) {
        printf("test_kernels: SKIP: this CPU has no AVX2+FMA+F16C, only the scalar set exists\n");
        return check_summary("test_kernels");
    }
    test_quantizers(fast, seeds, n_seeds);
    test_dots(fast, seeds, n_seeds);
    test_multi(fast, seeds, n_seeds);
    return check_summary("test_kernels");
}
