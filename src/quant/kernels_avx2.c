/* kernels_avx2.c - AVX2+FMA+F16C dot products and activation quantizers (see kernels.h).
 *
 * Every function carries TY_AVX2 (a target attribute) instead of the file being built with -mavx2:
 * the rest of the binary stays baseline x86-64 and ty_kernels_best() only hands these out on a CPU
 * that has the instructions. Blocks sit at any address: all loads are unaligned (loadu/memcpy).
 *
 * Dot products work like ggml's AVX2 kernels: per block, the integer products are summed exactly
 * with maddubs (u8 x s8 -> s16 pairs, saturating, but every s16 here stays below 2^15) and madd
 * (s16 x s16 -> s32 pairs), converted to float and accumulated with FMA into 8-lane float
 * accumulators (two, alternating, to hide the FMA latency). The float order thus differs from the
 * scalar reference; the integer parts do not. Beyond ggml: the 32-element formats go two blocks
 * at a time (one f16 conversion and one FMA per pair), the K-quants fold their constant offsets
 * into the Q8_K bsums, and the weights are software-prefetched. Single-thread decode-shaped
 * throughput (bench/bench_kernels.c) is 65-95% of a plain read of the same memory.
 *
 * The multi-token kernels (vec_dot_multi, for prompts) unpack each weight block once for a group of
 * 4 or 8 tokens and give the single-row kernels' results bit for bit: see their section below.
 *
 * Quantizers produce the scalar reference's bytes exactly: the same float operations per element
 * (no FMA), roundf emulated exactly for Q8_0/Q8_1, nearest-even rounding for Q8_K, the scale
 * converted to f16 by F16C with round-to-nearest-even (what ty_f32_to_f16 does). */
#include "quant/kernels_avx2.h"

#ifdef TY_HAVE_AVX2_KERNELS

#include <immintrin.h>
#include <stdlib.h>
#include <string.h>

#include "quant/blocks.h"

#define TY_AVX2 __attribute__((target("avx2,fma,f16c")))
/* Block helpers must inline into their loops (GCC otherwise calls the big K-quant ones). */
#define TY_AVX2_INLINE static inline __attribute__((always_inline, target("avx2,fma,f16c")))

/* Full unrolling of the short fixed loops (shift counts and shuffle controls become constants). */
#if defined(__clang__)
#define UNROLL _Pragma("unroll")
#else
#define UNROLL _Pragma("GCC unroll 8")
#endif

/* Weights are prefetched PREFETCH_AHEAD bytes ahead (past the row end too: the next row is what
 * a matmul reads next, and a prefetch never faults): the hardware prefetcher alone left 15-40% of
 * the memory bandwidth unused on the EPYC VM this was tuned on. */
#define PREFETCH_AHEAD 4096

/* ---- helpers ---------------------------------------------------------------------------------- */

static inline TY_AVX2 float f16_at(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2); /* little-endian, as x86 */
    return _cvtsh_ss(h);
}

static inline TY_AVX2 float f32_at(const uint8_t *p) {
    float f;
    memcpy(&f, p, 4);
    return f;
}

static inline TY_AVX2 __m256i loadu256(const void *p) { return _mm256_loadu_si256((const __m256i *)p); }
static inline TY_AVX2 __m128i loadu128(const void *p) { return _mm_loadu_si128((const __m128i *)p); }

static inline TY_AVX2 float hsum_ps(__m256 v) {
    __m128 r = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    r = _mm_add_ps(r, _mm_movehl_ps(r, r));
    r = _mm_add_ss(r, _mm_movehdup_ps(r));
    return _mm_cvtss_f32(r);
}

static inline TY_AVX2 int hsum_epi32(__m256i v) {
    __m128i r = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    r = _mm_add_epi32(r, _mm_shuffle_epi32(r, _MM_SHUFFLE(1, 0, 3, 2)));
    r = _mm_add_epi32(r, _mm_shuffle_epi32(r, _MM_SHUFFLE(2, 3, 0, 1)));
    return _mm_cvtsi128_si32(r);
}

/* The 16 bytes of a 32-element 4-bit block -> 32 bytes 0..15 in element order: bytes 0-15 are
 * the low nibbles (elements 0-15), bytes 16-31 the high nibbles (elements 16-31). */
static inline TY_AVX2 __m256i nibbles32(const uint8_t *p) {
    const __m128i t = loadu128(p);
    return _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(t, 4), t), _mm256_set1_epi8(0x0F));
}

/* Bit j of u -> byte j: 0xFF where set, 0x00 where clear. Byte j/8 of the broadcast word is
 * picked into byte j's lane (bytes 0-7 get byte 0, ...), then every bit but j%8 is forced to 1 so
 * the byte is all-ones exactly when bit j is set. */
static inline TY_AVX2 __m256i bits32(uint32_t u) {
    const __m256i pick = _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202,
                                           0x0101010101010101, 0x0000000000000000);
    const __m256i b = _mm256_shuffle_epi8(_mm256_set1_epi32((int)u), pick);
    const __m256i others = _mm256_set1_epi64x(0x7fbfdfeff7fbfdfe); /* byte k: all bits but k */
    return _mm256_cmpeq_epi8(_mm256_or_si256(b, others), _mm256_set1_epi64x(-1));
}

/* 8 int32 lanes, lane k = sum of x*y over bytes 4k..4k+3. x unsigned (u8), y signed; every pair
 * x0*y0 + x1*y1 must fit in s16 (maddubs saturates). */
static inline TY_AVX2 __m256i dot_u8i8(__m256i x, __m256i y) {
    return _mm256_madd_epi16(_mm256_maddubs_epi16(x, y), _mm256_set1_epi16(1));
}

/* The same with x signed: |x| times y carrying x's sign. Exact for y in [-127, 127] (negating -128
 * wraps), which is every activation the quantizers produce. */
static inline TY_AVX2 __m256i dot_i8i8(__m256i x, __m256i y) {
    return dot_u8i8(_mm256_sign_epi8(x, x), _mm256_sign_epi8(y, x));
}

/* s16 pair sums x0*y0 + x1*y1 of int8 x and y (y in [-127, 127], as dot_i8i8). */
static inline TY_AVX2 __m256i maddubs_i8(__m256i x, __m256i y) {
    return _mm256_maddubs_epi16(_mm256_sign_epi8(x, x), _mm256_sign_epi8(y, x));
}

/* Two 16-byte halves into one register: a in the low 128 bits, b in the high. */
static inline TY_AVX2 __m256i load2x128(const void *a, const void *b) {
    return _mm256_set_m128i(loadu128(b), loadu128(a));
}

/* [f16 a, f16 b, f16 c, f16 d] as floats (one conversion for four scattered f16 fields). */
static inline TY_AVX2 __m128 f16x4(const uint8_t *a, const uint8_t *b, const uint8_t *c, const uint8_t *d) {
    uint16_t h[4];
    memcpy(&h[0], a, 2);
    memcpy(&h[1], b, 2);
    memcpy(&h[2], c, 2);
    memcpy(&h[3], d, 2);
    uint64_t u;
    memcpy(&u, h, 8);
    return _mm_cvtph_ps(_mm_set_epi64x(0, (long long)u));
}

/* [a0*b0, a1*b1, 0, 0] from v = [a0, a1, b0, b1]. */
static inline TY_AVX2 __m128 mul_pairs(__m128 v) { return _mm_mul_ps(v, _mm_movehl_ps(_mm_setzero_ps(), v)); }

/* Lanes 0-3 = lane 0 of v, lanes 4-7 = lane 1: the scales of two blocks laid out as a pair's sums. */
static inline TY_AVX2 __m256 spread_pair(__m128 v) {
    return _mm256_permutevar8x32_ps(_mm256_castps128_ps256(v), _mm256_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1));
}

/* [f16 a, f16 b, 0, 0] as floats. The two halves are joined in a general-purpose register (integer
 * pipes, idle here) and moved over once: GCC's code for the f16x4 idiom costs 5 vector ops. */
static inline TY_AVX2 __m128 f16x2(const uint8_t *a, const uint8_t *b) {
    uint16_t ha, hb;
    memcpy(&ha, a, 2);
    memcpy(&hb, b, 2);
    return _mm_cvtph_ps(_mm_cvtsi32_si128((int)((uint32_t)ha | (uint32_t)hb << 16)));
}

/* [xA * yA, xB * yB] spread as a pair's sums (lanes 0-3, 4-7): the same floats as
 * spread_pair(mul_pairs(f16x4(xA, xB, yA, yB))), the weight half converted once per pair. */
static inline TY_AVX2 __m256 pair_scale(__m128 xd, const uint8_t *ya, const uint8_t *yb) {
    return spread_pair(_mm_mul_ps(xd, f16x2(ya, yb)));
}

/* The 8 six-bit scales (bytes 0-7) and 8 mins (bytes 8-15) of Q4_K/Q5_K (blocks.h,
 * blk_k4_scale_min), unpacked four at a time with 32-bit masks. */
static inline TY_AVX2 __m128i k4_scales_mins(const uint8_t q[12]) {
    uint32_t u[3], r[4];
    memcpy(u, q, 12);
    r[0] = u[0] & 0x3f3f3f3f;                                          /* scales 0-3 */
    r[1] = (u[2] & 0x0f0f0f0f) | (((u[0] >> 6) & 0x03030303) << 4);    /* scales 4-7 */
    r[2] = u[1] & 0x3f3f3f3f;                                          /* mins 0-3 */
    r[3] = ((u[2] >> 4) & 0x0f0f0f0f) | (((u[1] >> 6) & 0x03030303) << 4); /* mins 4-7 */
    return _mm_loadu_si128((const __m128i *)r);
}

/* Q8_K's 16 bsums (s16, sums of 16 elements) -> the 8 sums of 32 elements, as s16. */
static inline TY_AVX2 __m128i q8k_bsums32(const blk_q8_K *y) {
    return _mm_hadd_epi16(loadu128(y->bsums), loadu128(y->bsums + 16));
}

/* ---- float weights ---------------------------------------------------------------------------- */

void TY_AVX2 ty_avx2_dot_f32(int64_t n, float *s, const void *vw, const void *va) {
    const uint8_t *w = vw;
    const float *a = va;
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    __m256 acc2 = _mm256_setzero_ps(), acc3 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        _mm_prefetch((const char *)(w + 4 * i) + PREFETCH_AHEAD, _MM_HINT_T0);
        _mm_prefetch((const char *)(w + 4 * i) + PREFETCH_AHEAD + 64, _MM_HINT_T0);
        acc0 = _mm256_fmadd_ps(_mm256_loadu_ps((const float *)(w + 4 * i)), _mm256_loadu_ps(a + i), acc0);
        acc1 = _mm256_fmadd_ps(_mm256_loadu_ps((const float *)(w + 4 * i + 32)), _mm256_loadu_ps(a + i + 8), acc1);
        acc2 = _mm256_fmadd_ps(_mm256_loadu_ps((const float *)(w + 4 * i + 64)), _mm256_loadu_ps(a + i + 16), acc2);
        acc3 = _mm256_fmadd_ps(_mm256_loadu_ps((const float *)(w + 4 * i + 96)), _mm256_loadu_ps(a + i + 24), acc3);
    }
    for (; i + 8 <= n; i += 8)
        acc0 = _mm256_fmadd_ps(_mm256_loadu_ps((const float *)(w + 4 * i)), _mm256_loadu_ps(a + i), acc0);
    float sum = hsum_ps(_mm256_add_ps(_mm256_add_ps(acc0, acc1), _mm256_add_ps(acc2, acc3)));
    for (; i < n; i++) sum += f32_at(w + 4 * i) * a[i];
    *s = sum;
}

/* F16 / BF16: 8 weights -> 8 floats. */
static inline TY_AVX2 __m256 ld8_f16(const uint8_t *p) { return _mm256_cvtph_ps(loadu128(p)); }
static inline TY_AVX2 __m256 ld8_bf16(const uint8_t *p) {
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(loadu128(p)), 16));
}

#define DOT_HALF(NAME, LD8, SCALAR)                                                                \
    void TY_AVX2 NAME(int64_t n, float *s, const void *vw, const void *va) {                       \
        const uint8_t *w = vw;                                                                     \
        const float *a = va;                                                                       \
        __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();                             \
        __m256 acc2 = _mm256_setzero_ps(), acc3 = _mm256_setzero_ps();                             \
        int64_t i = 0;                                                                             \
        for (; i + 32 <= n; i += 32) {                                                             \
            _mm_prefetch((const char *)(w + 2 * i) + PREFETCH_AHEAD, _MM_HINT_T0);                 \
            acc0 = _mm256_fmadd_ps(LD8(w + 2 * i), _mm256_loadu_ps(a + i), acc0);                  \
            acc1 = _mm256_fmadd_ps(LD8(w + 2 * i + 16), _mm256_loadu_ps(a + i + 8), acc1);         \
            acc2 = _mm256_fmadd_ps(LD8(w + 2 * i + 32), _mm256_loadu_ps(a + i + 16), acc2);        \
            acc3 = _mm256_fmadd_ps(LD8(w + 2 * i + 48), _mm256_loadu_ps(a + i + 24), acc3);        \
        }                                                                                          \
        for (; i + 8 <= n; i += 8) acc0 = _mm256_fmadd_ps(LD8(w + 2 * i), _mm256_loadu_ps(a + i), acc0); \
        float sum = hsum_ps(_mm256_add_ps(_mm256_add_ps(acc0, acc1), _mm256_add_ps(acc2, acc3)));  \
        for (; i < n; i++) sum += SCALAR(w + 2 * i) * a[i];                                        \
        *s = sum;                                                                                  \
    }

static inline float bf16_at(const uint8_t *p) { return ty_bf16_to_f32((uint16_t)(p[0] | (p[1] << 8))); }

DOT_HALF(ty_avx2_dot_f16, ld8_f16, f16_at)
DOT_HALF(ty_avx2_dot_bf16, ld8_bf16, bf16_at)

/* ---- 32-element formats ----------------------------------------------------------------------- *
 * Each *_block adds one block's contribution to an 8-lane accumulator (used for a last odd block);
 * the *_pair functions below do two blocks at a time. */

/* Q4_0: value = nibble - 8, signed, times the Q8_0 activation. */
TY_AVX2_INLINE __m256 q4_0_block(const blk_q4_0 *x, const blk_q8_0 *y, __m256 acc, float *extra) {
    (void)extra;
    const __m256i q = _mm256_sub_epi8(nibbles32(x->qs), _mm256_set1_epi8(8));
    const __m256 p = _mm256_cvtepi32_ps(dot_i8i8(q, loadu256(y->qs)));
    return _mm256_fmadd_ps(_mm256_set1_ps(f16_at(x->d) * f16_at(y->d)), p, acc);
}

/* Q4_1: unsigned nibble times Q8_1; the min term m * (d_y * sum(y)) uses Q8_1's s. */
TY_AVX2_INLINE __m256 q4_1_block(const blk_q4_1 *x, const blk_q8_1 *y, __m256 acc, float *extra) {
    *extra += f16_at(x->m) * f16_at(y->s);
    const __m256 p = _mm256_cvtepi32_ps(dot_u8i8(nibbles32(x->qs), loadu256(y->qs)));
    return _mm256_fmadd_ps(_mm256_set1_ps(f16_at(x->d) * f16_at(y->d)), p, acc);
}

/* Q5_0: nibble | (bit clear ? 0xF0 : 0) is (nibble + 16 * bit) - 16 as a signed byte. */
TY_AVX2_INLINE __m256 q5_0_block(const blk_q5_0 *x, const blk_q8_0 *y, __m256 acc, float *extra) {
    (void)extra;
    const __m256i hi = _mm256_andnot_si256(bits32(blk_get_u32(x->qh)), _mm256_set1_epi8((char)0xF0));
    const __m256i q = _mm256_or_si256(nibbles32(x->qs), hi);
    const __m256 p = _mm256_cvtepi32_ps(dot_i8i8(q, loadu256(y->qs)));
    return _mm256_fmadd_ps(_mm256_set1_ps(f16_at(x->d) * f16_at(y->d)), p, acc);
}

/* Q5_1: unsigned 5-bit value nibble | 16 * bit, plus the min term as Q4_1. */
TY_AVX2_INLINE __m256 q5_1_block(const blk_q5_1 *x, const blk_q8_1 *y, __m256 acc, float *extra) {
    *extra += f16_at(x->m) * f16_at(y->s);
    const __m256i hi = _mm256_and_si256(bits32(blk_get_u32(x->qh)), _mm256_set1_epi8(0x10));
    const __m256i q = _mm256_or_si256(nibbles32(x->qs), hi);
    const __m256 p = _mm256_cvtepi32_ps(dot_u8i8(q, loadu256(y->qs)));
    return _mm256_fmadd_ps(_mm256_set1_ps(f16_at(x->d) * f16_at(y->d)), p, acc);
}

TY_AVX2_INLINE __m256 q8_0_block(const blk_q8_0 *x, const blk_q8_0 *y, __m256 acc, float *extra) {
    (void)extra;
    const __m256 p = _mm256_cvtepi32_ps(dot_i8i8(loadu256(x->qs), loadu256(y->qs)));
    return _mm256_fmadd_ps(_mm256_set1_ps(f16_at(x->d) * f16_at(y->d)), p, acc);
}

/* Pairs of blocks. The 4-bit formats put block A's 16 bytes of nibbles in the low 128 bits and
 * B's in the high, so one mask and one shift give [A 0-15 | B 0-15] and [A 16-31 | B 16-31]; the
 * activations are loaded in the same layout. The two maddubs results are added in s16 (|sum| <=
 * 2 * 2 * 31 * 128 < 2^15), one madd gives lanes 0-3 for A and 4-7 for B, and one FMA scales both
 * by [dA x4 | dB x4], converted from f16 together. */
TY_AVX2_INLINE __m256 q4_0_pair(const blk_q4_0 *x, const blk_q8_0 *y, __m256 acc, __m128 *extra) {
    (void)extra;
    const __m256i m4 = _mm256_set1_epi8(0x0F), off = _mm256_set1_epi8(8);
    const __m256i qs = load2x128(x[0].qs, x[1].qs);
    const __m256i lo = _mm256_sub_epi8(_mm256_and_si256(qs, m4), off);
    const __m256i hi = _mm256_sub_epi8(_mm256_and_si256(_mm256_srli_epi16(qs, 4), m4), off);
    const __m256i p = _mm256_add_epi16(maddubs_i8(lo, load2x128(y[0].qs, y[1].qs)),
                                       maddubs_i8(hi, load2x128(y[0].qs + 16, y[1].qs + 16)));
    const __m256 d = pair_scale(f16x2(x[0].d, x[1].d), y[0].d, y[1].d);
    return _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(_mm256_madd_epi16(p, _mm256_set1_epi16(1))), acc);
}

/* Q4_1 / Q5_1 min terms of a pair: extra += [mA * sA, mB * sB, 0, 0]. */
#define MIN_TERMS(x, y, extra) \
    (*(extra) = _mm_add_ps(*(extra), mul_pairs(f16x4((x)[0].m, (x)[1].m, (y)[0].s, (y)[1].s))))

TY_AVX2_INLINE __m256 q4_1_pair(const blk_q4_1 *x, const blk_q8_1 *y, __m256 acc, __m128 *extra) {
    MIN_TERMS(x, y, extra);
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    const __m256i qs = load2x128(x[0].qs, x[1].qs);
    const __m256i lo = _mm256_and_si256(qs, m4), hi = _mm256_and_si256(_mm256_srli_epi16(qs, 4), m4);
    const __m256i p = _mm256_add_epi16(_mm256_maddubs_epi16(lo, load2x128(y[0].qs, y[1].qs)),
                                       _mm256_maddubs_epi16(hi, load2x128(y[0].qs + 16, y[1].qs + 16)));
    const __m256 d = pair_scale(f16x2(x[0].d, x[1].d), y[0].d, y[1].d);
    return _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(_mm256_madd_epi16(p, _mm256_set1_epi16(1))), acc);
}

/* The 5th bits of a Q5 pair, as byte masks in the pair layout: bits 0-15 of A's qh and of B's
 * (elements 0-15) for the low halves, bits 16-31 for the high halves. */
static inline TY_AVX2 void q5_pair_bits(const uint8_t *qha, const uint8_t *qhb, __m256i *lo, __m256i *hi) {
    const uint32_t a = blk_get_u32(qha), b = blk_get_u32(qhb);
    *lo = bits32((a & 0xFFFF) | (b << 16));
    *hi = bits32((a >> 16) | (b & 0xFFFF0000u));
}

TY_AVX2_INLINE __m256 q5_0_pair(const blk_q5_0 *x, const blk_q8_0 *y, __m256 acc, __m128 *extra) {
    (void)extra;
    const __m256i m4 = _mm256_set1_epi8(0x0F), f0 = _mm256_set1_epi8((char)0xF0);
    __m256i blo, bhi;
    q5_pair_bits(x[0].qh, x[1].qh, &blo, &bhi);
    const __m256i qs = load2x128(x[0].qs, x[1].qs);
    /* nibble | (bit clear ? 0xF0 : 0) = (nibble + 16 * bit) - 16 as a signed byte */
    const __m256i lo = _mm256_or_si256(_mm256_and_si256(qs, m4), _mm256_andnot_si256(blo, f0));
    const __m256i hi = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(qs, 4), m4), _mm256_andnot_si256(bhi, f0));
    const __m256i p = _mm256_add_epi16(maddubs_i8(lo, load2x128(y[0].qs, y[1].qs)),
                                       maddubs_i8(hi, load2x128(y[0].qs + 16, y[1].qs + 16)));
    const __m256 d = pair_scale(f16x2(x[0].d, x[1].d), y[0].d, y[1].d);
    return _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(_mm256_madd_epi16(p, _mm256_set1_epi16(1))), acc);
}

TY_AVX2_INLINE __m256 q5_1_pair(const blk_q5_1 *x, const blk_q8_1 *y, __m256 acc, __m128 *extra) {
    MIN_TERMS(x, y, extra);
    const __m256i m4 = _mm256_set1_epi8(0x0F), b4 = _mm256_set1_epi8(0x10);
    __m256i blo, bhi;
    q5_pair_bits(x[0].qh, x[1].qh, &blo, &bhi);
    const __m256i qs = load2x128(x[0].qs, x[1].qs);
    const __m256i lo = _mm256_or_si256(_mm256_and_si256(qs, m4), _mm256_and_si256(blo, b4));
    const __m256i hi = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(qs, 4), m4), _mm256_and_si256(bhi, b4));
    const __m256i p = _mm256_add_epi16(_mm256_maddubs_epi16(lo, load2x128(y[0].qs, y[1].qs)),
                                       _mm256_maddubs_epi16(hi, load2x128(y[0].qs + 16, y[1].qs + 16)));
    const __m256 d = pair_scale(f16x2(x[0].d, x[1].d), y[0].d, y[1].d);
    return _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(_mm256_madd_epi16(p, _mm256_set1_epi16(1))), acc);
}

/* Q8_0 in the pair layout of the 4-bit formats: the s16 sums of two halves would overflow, so each
 * half gets its own madd and the two are added in s32 (lanes 0-3: A, 4-7: B); one FMA per pair. */
TY_AVX2_INLINE __m256 q8_0_pair(const blk_q8_0 *x, const blk_q8_0 *y, __m256 acc, __m128 *extra) {
    (void)extra;
    const __m256i lo = dot_i8i8(load2x128(x[0].qs, x[1].qs), load2x128(y[0].qs, y[1].qs));
    const __m256i hi = dot_i8i8(load2x128(x[0].qs + 16, x[1].qs + 16), load2x128(y[0].qs + 16, y[1].qs + 16));
    const __m256 d = pair_scale(f16x2(x[0].d, x[1].d), y[0].d, y[1].d);
    return _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(_mm256_add_epi32(lo, hi)), acc);
}

/* Two accumulators over alternate pairs, then a last pair and a last single block. */
#define DOT_PAIRS(NAME, PAIR, BLOCK, WT, AT)                                                       \
    void TY_AVX2 NAME(int64_t n, float *s, const void *vw, const void *va) {                       \
        const WT *x = vw;                                                                          \
        const AT *y = va;                                                                          \
        if (n <= 0 || n % TY_QK) { *s = 0.0f; return; }                                           \
        const int64_t nb = n / TY_QK;                                                              \
        __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();                             \
        __m128 e0 = _mm_setzero_ps(), e1 = _mm_setzero_ps();                                       \
        float e = 0.0f;                                                                            \
        int64_t i = 0;                                                                             \
        for (; i + 4 <= nb; i += 4) {                                                              \
            UNROLL                                                                                 \
            for (size_t o = 0; o < 4 * sizeof(WT); o += 64)                                        \
                _mm_prefetch((const char *)(x + i) + PREFETCH_AHEAD + o, _MM_HINT_T0);             \
            acc0 = PAIR(x + i, y + i, acc0, &e0);                                                  \
            acc1 = PAIR(x + i + 2, y + i + 2, acc1, &e1);                                          \
        }                                                                                          \
        if (i + 2 <= nb) acc0 = PAIR(x + i, y + i, acc0, &e0), i += 2;                             \
        if (i < nb) acc1 = BLOCK(x + i, y + i, acc1, &e);                                          \
        e0 = _mm_add_ps(e0, e1);                                                                   \
        *s = hsum_ps(_mm256_add_ps(acc0, acc1)) + (_mm_cvtss_f32(e0) + _mm_cvtss_f32(_mm_movehdup_ps(e0)) + e); \
    }

DOT_PAIRS(ty_avx2_dot_q4_0, q4_0_pair, q4_0_block, blk_q4_0, blk_q8_0)
DOT_PAIRS(ty_avx2_dot_q4_1, q4_1_pair, q4_1_block, blk_q4_1, blk_q8_1)
DOT_PAIRS(ty_avx2_dot_q5_0, q5_0_pair, q5_0_block, blk_q5_0, blk_q8_0)
DOT_PAIRS(ty_avx2_dot_q5_1, q5_1_pair, q5_1_block, blk_q5_1, blk_q8_1)
DOT_PAIRS(ty_avx2_dot_q8_0, q8_0_pair, q8_0_block, blk_q8_0, blk_q8_0)

/* K-quants: two accumulators over even/odd blocks. */
#define DOT_BLOCKS(NAME, BLOCK, WT, AT, QK)                                                        \
    void TY_AVX2 NAME(int64_t n, float *s, const void *vw, const void *va) {                       \
        const WT *x = vw;                                                                          \
        const AT *y = va;                                                                          \
        if (n <= 0 || n % (QK)) { *s = 0.0f; return; }                                            \
        const int64_t nb = n / (QK);                                                               \
        __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();                             \
        int64_t i = 0;                                                                             \
        for (; i + 2 <= nb; i += 2) {                                                              \
            UNROLL                                                                                 \
            for (size_t o = 0; o < 2 * sizeof(WT); o += 64)                                        \
                _mm_prefetch((const char *)(x + i) + PREFETCH_AHEAD + o, _MM_HINT_T0);             \
            acc0 = BLOCK(x + i, y + i, acc0);                                                      \
            acc1 = BLOCK(x + i + 1, y + i + 1, acc1);                                              \
        }                                                                                          \
        if (i < nb) acc0 = BLOCK(x + i, y + i, acc0);                                              \
        *s = hsum_ps(_mm256_add_ps(acc0, acc1));                                                   \
    }

/* ---- K-quants (256-element super-blocks, Q8_K activations) ------------------------------------ *
 * The weights are made unsigned (0..2^bits-1) so that one maddubs per 32 elements does the
 * products; a constant offset c (Q3_K: 4, Q6_K: 32) subtracted from every value of a 16-element
 * sub-block j with scale s_j becomes -c * sum_j s_j * bsums_j, taken from Q8_K's bsums once per
 * block. Sub-block scales are applied by madd on the s16 pair sums of maddubs. */

/* Moves bit `from` of every byte of v to bit `to` (other bits: garbage the caller masks off). The
 * 16-bit shifts do not bring bits of the neighbouring byte to position `to`. */
#define MOVE_BITS(v, from, to)                                                                      \
    ((to) > (from) ? _mm256_slli_epi16((v), (to) - (from)) : (to) < (from) ? _mm256_srli_epi16((v), (from) - (to)) : (v))

/* s16 lanes: [s[2k] x 8 | s[2k+1] x 8] from h = [s0..s7 | s0..s7] (s16): the scales of the two
 * 16-element halves of 32-element group k, lined up with maddubs's pair sums (the low 128 bits
 * hold elements 0-15). */
static inline TY_AVX2 __m256i scale_pair16(__m256i h, int k) {
    const __m256i ctrl = _mm256_set_m128i(_mm_set1_epi16((short)(0x0302 + 0x0404 * k)),
                                          _mm_set1_epi16((short)(0x0100 + 0x0404 * k)));
    return _mm256_shuffle_epi8(h, ctrl);
}

/* s16 lanes all = s[j], from v = [s0..s7 | s0..s7] (s16). */
static inline TY_AVX2 __m256i scale_bcast16(__m256i v, int j) {
    return _mm256_shuffle_epi8(v, _mm256_set1_epi16((short)(0x0100 + 0x0202 * j)));
}

/* Scales 8h..8h+7 of 16 (s16) in both 128-bit lanes. */
static inline TY_AVX2 __m256i half_scales(__m256i sc16, int h) {
    return h ? _mm256_permute4x64_epi64(sc16, 0xEE) : _mm256_permute4x64_epi64(sc16, 0x44);
}

/* acc + f * (float)v, v 4 int32 (the upper 4 lanes of acc get + 0). */
static inline TY_AVX2 __m256 fmadd_lo4(float f, __m128i v, __m256 acc) {
    const __m256i z = _mm256_inserti128_si256(_mm256_setzero_si256(), v, 0);
    return _mm256_fmadd_ps(_mm256_set1_ps(f), _mm256_cvtepi32_ps(z), acc);
}

/* Q2_K: 2-bit q, 4-bit scale (low nibble) and min (high nibble) per 16 elements:
 * value = d * scale * q - dmin * min; qs[32h + l] bits 2k hold element 128h + 32k + l. */
TY_AVX2_INLINE __m256 q2_K_block(const blk_q2_K *x, const blk_q8_K *y, __m256 acc) {
    const float yd = f32_at(y->d);
    const __m128i sm = loadu128(x->scales);
    const __m256i sc16 = _mm256_cvtepu8_epi16(_mm_and_si128(sm, _mm_set1_epi8(0x0F)));
    const __m256i mn16 = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(sm, 4), _mm_set1_epi8(0x0F)));
    const __m256i pm = _mm256_madd_epi16(mn16, loadu256(y->bsums));
    acc = _mm256_fmadd_ps(_mm256_set1_ps(-yd * f16_at(x->dmin)), _mm256_cvtepi32_ps(pm), acc);
    const __m256i m3 = _mm256_set1_epi8(3);
    __m256i sumi = _mm256_setzero_si256();
    UNROLL
    for (int h = 0; h < 2; h++) {
        const __m256i bits = loadu256(x->qs + 32 * h);
        const __m256i sch = half_scales(sc16, h);
        UNROLL
        for (int k = 0; k < 4; k++) {
            const __m256i q = _mm256_and_si256(_mm256_srli_epi16(bits, 2 * k), m3);
            const __m256i p = _mm256_maddubs_epi16(q, loadu256(y->qs + 128 * h + 32 * k));
            sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(scale_pair16(sch, k), p));
        }
    }
    return _mm256_fmadd_ps(_mm256_set1_ps(yd * f16_at(x->d)), _mm256_cvtepi32_ps(sumi), acc);
}

/* Q3_K: value = (ql | 4 * hbit) - 4 with ql the 2 low bits as Q2_K and hbit = bit 4h+k of
 * hmask[l] for element 128h + 32k + l; 16 six-bit scales stored + 32. */
TY_AVX2_INLINE __m256 q3_K_block(const blk_q3_K *x, const blk_q8_K *y, __m256 acc) {
    uint32_t u[3], r[4];
    memcpy(u, x->scales, 12);
    /* blk_q3k_scale: low nibbles from bytes 0-7 (scales 0-7: low nibble, 8-15: high nibble),
     * 2 high bits from bytes 8-11 (scale j: byte 8 + j%4, bits 2*(j/4)). */
    r[0] = (u[0] & 0x0f0f0f0f) | (((u[2] >> 0) & 0x03030303) << 4);
    r[1] = (u[1] & 0x0f0f0f0f) | (((u[2] >> 2) & 0x03030303) << 4);
    r[2] = ((u[0] >> 4) & 0x0f0f0f0f) | (((u[2] >> 4) & 0x03030303) << 4);
    r[3] = ((u[1] >> 4) & 0x0f0f0f0f) | (((u[2] >> 6) & 0x03030303) << 4);
    const __m128i sc = _mm_sub_epi8(_mm_loadu_si128((const __m128i *)r), _mm_set1_epi8(32));
    const __m256i sc16 = _mm256_cvtepi8_epi16(sc);
    /* the -4: -4 * sum_j s_j * bsums_j */
    __m256i sumi = _mm256_sub_epi32(_mm256_setzero_si256(),
                                    _mm256_slli_epi32(_mm256_madd_epi16(sc16, loadu256(y->bsums)), 2));
    const __m256i hbits = loadu256(x->hmask);
    const __m256i m3 = _mm256_set1_epi8(3), m4 = _mm256_set1_epi8(4);
    UNROLL
    for (int h = 0; h < 2; h++) {
        const __m256i bits = loadu256(x->qs + 32 * h);
        const __m256i sch = half_scales(sc16, h);
        UNROLL
        for (int k = 0; k < 4; k++) {
            const __m256i ql = _mm256_and_si256(_mm256_srli_epi16(bits, 2 * k), m3);
            const __m256i qh = _mm256_and_si256(MOVE_BITS(hbits, 4 * h + k, 2), m4);
            const __m256i p = _mm256_maddubs_epi16(_mm256_or_si256(ql, qh), loadu256(y->qs + 128 * h + 32 * k));
            sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(scale_pair16(sch, k), p));
        }
    }
    return _mm256_fmadd_ps(_mm256_set1_ps(f32_at(y->d) * f16_at(x->d)), _mm256_cvtepi32_ps(sumi), acc);
}

/* Q4_K (qh NULL) and Q5_K: 64-element group g: 32 bytes of qs, low nibbles = elements 64g..+31
 * (scale/min 2g), high nibbles 64g+32..+63 (scale/min 2g+1); Q5_K's 5th bits are bits 2g, 2g+1
 * of qh[l]. value = d * sc * q - dmin * mn; the min part is dmin * sum(mn_j * bsum32_j). */
TY_AVX2_INLINE __m256 k4_block(const uint8_t *d, const uint8_t *scales, const uint8_t *qs,
                                      const uint8_t *qh, const blk_q8_K *y, __m256 acc) {
    const float yd = f32_at(y->d);
    const __m256i sm16 = _mm256_cvtepu8_epi16(k4_scales_mins(scales)); /* sc0..7 | mn0..7 */
    const __m128i pm = _mm_madd_epi16(_mm256_extracti128_si256(sm16, 1), q8k_bsums32(y));
    acc = fmadd_lo4(-yd * f16_at(d + 2), pm, acc);
    const __m256i sc = _mm256_permute4x64_epi64(sm16, 0x44); /* sc0..7 | sc0..7 */
    const __m256i m4 = _mm256_set1_epi8(0x0F), b4 = _mm256_set1_epi8(0x10);
    __m256i hb = _mm256_setzero_si256();
    if (qh) hb = loadu256(qh);
    __m256i sumi = _mm256_setzero_si256();
    UNROLL
    for (int g = 0; g < 4; g++) {
        const __m256i bits = loadu256(qs + 32 * g);
        __m256i lo = _mm256_and_si256(bits, m4);
        __m256i hi = _mm256_and_si256(_mm256_srli_epi16(bits, 4), m4);
        if (qh) {
            lo = _mm256_or_si256(lo, _mm256_and_si256(MOVE_BITS(hb, 2 * g, 4), b4));
            hi = _mm256_or_si256(hi, _mm256_and_si256(MOVE_BITS(hb, 2 * g + 1, 4), b4));
        }
        const __m256i pl = _mm256_maddubs_epi16(lo, loadu256(y->qs + 64 * g));
        const __m256i ph = _mm256_maddubs_epi16(hi, loadu256(y->qs + 64 * g + 32));
        sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(scale_bcast16(sc, 2 * g), pl));
        sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(scale_bcast16(sc, 2 * g + 1), ph));
    }
    return _mm256_fmadd_ps(_mm256_set1_ps(yd * f16_at(d)), _mm256_cvtepi32_ps(sumi), acc);
}

TY_AVX2_INLINE __m256 q4_K_block(const blk_q4_K *x, const blk_q8_K *y, __m256 acc) {
    return k4_block(x->d, x->scales, x->qs, NULL, y, acc);
}

TY_AVX2_INLINE __m256 q5_K_block(const blk_q5_K *x, const blk_q8_K *y, __m256 acc) {
    return k4_block(x->d, x->scales, x->qs, x->qh, y, acc);
}

/* Q6_K: half h, l = 0..31: elements 128h + 32k + l are the low nibbles of ql[64h+l] (k=0),
 * ql[64h+32+l] (k=1), their high nibbles (k=2, 3), with 2 high bits at bits 2k of qh[32h+l];
 * value = q - 32, int8 scale per 16 elements. */
TY_AVX2_INLINE __m256 q6_K_block(const blk_q6_K *x, const blk_q8_K *y, __m256 acc) {
    const __m256i sc16 = _mm256_cvtepi8_epi16(loadu128(x->scales));
    /* the -32: -32 * sum_j s_j * bsums_j */
    __m256i sumi = _mm256_sub_epi32(_mm256_setzero_si256(),
                                    _mm256_slli_epi32(_mm256_madd_epi16(sc16, loadu256(y->bsums)), 5));
    const __m256i m4 = _mm256_set1_epi8(0x0F), m30 = _mm256_set1_epi8(0x30);
    UNROLL
    for (int h = 0; h < 2; h++) {
        const __m256i l0 = loadu256(x->ql + 64 * h), l1 = loadu256(x->ql + 64 * h + 32);
        const __m256i hb = loadu256(x->qh + 32 * h);
        const __m256i sch = half_scales(sc16, h);
        const __m256i lows[4] = {
            _mm256_and_si256(l0, m4), _mm256_and_si256(l1, m4),
            _mm256_and_si256(_mm256_srli_epi16(l0, 4), m4), _mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
        };
        UNROLL
        for (int k = 0; k < 4; k++) {
            const __m256i q = _mm256_or_si256(lows[k], _mm256_and_si256(MOVE_BITS(hb, 2 * k, 4), m30));
            const __m256i p = _mm256_maddubs_epi16(q, loadu256(y->qs + 128 * h + 32 * k));
            sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(scale_pair16(sch, k), p));
        }
    }
    return _mm256_fmadd_ps(_mm256_set1_ps(f32_at(y->d) * f16_at(x->d)), _mm256_cvtepi32_ps(sumi), acc);
}

DOT_BLOCKS(ty_avx2_dot_q2_K, q2_K_block, blk_q2_K, blk_q8_K, TY_QK_K)
DOT_BLOCKS(ty_avx2_dot_q3_K, q3_K_block, blk_q3_K, blk_q8_K, TY_QK_K)
DOT_BLOCKS(ty_avx2_dot_q4_K, q4_K_block, blk_q4_K, blk_q8_K, TY_QK_K)
DOT_BLOCKS(ty_avx2_dot_q5_K, q5_K_block, blk_q5_K, blk_q8_K, TY_QK_K)
DOT_BLOCKS(ty_avx2_dot_q6_K, q6_K_block, blk_q6_K, blk_q8_K, TY_QK_K)

/* ---- multi-token dot products (prompt processing; Q4_0 decode too) ---------------------------- *
 * vec_dot_multi dots one weight row with n_tok activation rows. A prompt's matmul is compute
 * bound, and most of a single-row kernel's work per block is unpacking the weights (nibbles, high
 * bits, 6-bit scales, f16 scales); here each weight block is unpacked once and multiplied into a
 * group of NT activation rows (tokens), each with its own integer sums and float accumulators.
 *
 * Every result is bit-identical to the single-row kernel's for that activation row (so a prompt
 * and a token-by-token decode give the same logits): per token, the *_n functions below compute
 * the same integer lanes (same products in the same 32-bit lanes) and the same float operations
 * on the same accumulator in the same order as the single-row block / pair functions above, and
 * the drivers replicate DOT_PAIRS / DOT_BLOCKS: the same two alternating accumulators, the same
 * tail handling, the same final sums. Only the scheduling across tokens differs. A change to a
 * single-row kernel must be mirrored here; tests/test_kernels.c compares the two bit for bit.
 *
 * Tokens go by groups of NT = 8 or 4 (see MULTI_NT below), leftovers by 4, then through the
 * single-row kernel (Q4_0: prepared one at a time, PREP_MULTI's ONE). The block functions take nt
 * as an argument; it is a constant after inlining, so their token loops unroll and the integer sums
 * become registers (at nt = 8 they fill half of the 16 ymm registers; the float accumulators live
 * in L1). */

#define MULTI_MAX_NT 8

/* An empty asm that claims to change v: pins the running sums in registers. Without it GCC
 * reassociates the nt chains of integer adds into one tree per token at the end of the block,
 * keeping all 8 * nt madd results alive and spilling most of them to the stack (Q4_K measured
 * ~25% slower without it). */
static inline TY_AVX2 __m256i keep(__m256i v) {
    __asm__("" : "+x"(v));
    return v;
}

/* 32-element formats, a pair of blocks x[0], x[1] times the pair at index i of nt activation rows
 * y[k]. Weights in the pair layout of the *_pair functions: [A 0-15 | B 0-15], [A 16-31 | B 16-31]. */

/* The unsigned-weight formats with a min (Q4_1, Q5_1): extra[k] += [mA * sA, mB * sB] as MIN_TERMS. */
TY_AVX2_INLINE void unsigned_pair_n(__m256i lo, __m256i hi, __m128 xd, __m128 xm, const blk_q8_1 *const *y,
                                    int64_t i, __m256 *acc, __m128 *extra, int nt) {
    UNROLL
    for (int k = 0; k < nt; k++) {
        const blk_q8_1 *yk = y[k] + i;
        extra[k] = _mm_add_ps(extra[k], _mm_mul_ps(xm, f16x2(yk[0].s, yk[1].s)));
        const __m256i p = _mm256_add_epi16(_mm256_maddubs_epi16(lo, load2x128(yk[0].qs, yk[1].qs)),
                                           _mm256_maddubs_epi16(hi, load2x128(yk[0].qs + 16, yk[1].qs + 16)));
        acc[k] = _mm256_fmadd_ps(pair_scale(xd, yk[0].d, yk[1].d),
                                 _mm256_cvtepi32_ps(_mm256_madd_epi16(p, _mm256_set1_epi16(1))), acc[k]);
    }
}

TY_AVX2_INLINE void q4_1_pair_n(const blk_q4_1 *x, const blk_q8_1 *const *y, int64_t i, __m256 *acc,
                                __m128 *extra, int nt) {
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    const __m256i qs = load2x128(x[0].qs, x[1].qs);
    const __m256i lo = _mm256_and_si256(qs, m4), hi = _mm256_and_si256(_mm256_srli_epi16(qs, 4), m4);
    unsigned_pair_n(lo, hi, f16x2(x[0].d, x[1].d), f16x2(x[0].m, x[1].m), y, i, acc, extra, nt);
}

TY_AVX2_INLINE void q5_1_pair_n(const blk_q5_1 *x, const blk_q8_1 *const *y, int64_t i, __m256 *acc,
                                __m128 *extra, int nt) {
    const __m256i m4 = _mm256_set1_epi8(0x0F), b4 = _mm256_set1_epi8(0x10);
    __m256i blo, bhi;
    q5_pair_bits(x[0].qh, x[1].qh, &blo, &bhi);
    const __m256i qs = load2x128(x[0].qs, x[1].qs);
    const __m256i lo = _mm256_or_si256(_mm256_and_si256(qs, m4), _mm256_and_si256(blo, b4));
    const __m256i hi = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(qs, 4), m4), _mm256_and_si256(bhi, b4));
    unsigned_pair_n(lo, hi, f16x2(x[0].d, x[1].d), f16x2(x[0].m, x[1].m), y, i, acc, extra, nt);
}

/* ---- Q4_0, Q5_0, Q8_0: prompts on prepared activations ------------------------------------------ *
 * The three share the Q8_0 activations, and a group of tokens re-lays them out once for all the
 * weight rows of a call ("prepared"): per pair of blocks, the quants already in the pair layout and
 * the two scales already floats spread over the pair's lanes. The inner loop per (pair, token) then
 * has two plain loads and one multiply where the raw layout needs two inserts, an f16 conversion and
 * a shuffle. spread(xd) * spread(yd) are the products spread_pair(mul_pairs(...)) forms: the same
 * floats in the same order as the single-row kernels. */
typedef struct {
    __m256i lo, hi; /* [A 0-15 | B 0-15], [A 16-31 | B 16-31] */
    __m256 d;       /* [dA x4 | dB x4] */
} q8_pair;

/* The pairs of nt activation rows (a + k * a_stride), pair p of token k at out[p * nt + k]. With
 * corr, also corr[p * nt + k] = off * (the sum of the 8 activations behind each s32 lane of a pair's
 * madd): see offset_pair_prep. */
static void TY_AVX2 q8_pairs_prepare(const uint8_t *a, size_t a_stride, int64_t np, int nt, q8_pair *out,
                                     __m256i *corr, int off) {
    const __m256i offs = _mm256_set1_epi8((char)off), ones = _mm256_set1_epi16(1);
    for (int k = 0; k < nt; k++) {
        const blk_q8_0 *y = (const blk_q8_0 *)(a + (size_t)k * a_stride);
        for (int64_t p = 0; p < np; p++) {
            q8_pair *o = &out[p * nt + k];
            o->lo = load2x128(y[2 * p].qs, y[2 * p + 1].qs);
            o->hi = load2x128(y[2 * p].qs + 16, y[2 * p + 1].qs + 16);
            o->d = spread_pair(f16x2(y[2 * p].d, y[2 * p + 1].d));
            if (corr) /* s16 pairs: |off * (y0 + y1) * 2| <= 16 * 254 * 2 */
                corr[p * nt + k] = _mm256_madd_epi16(
                    _mm256_add_epi16(_mm256_maddubs_epi16(offs, o->lo), _mm256_maddubs_epi16(offs, o->hi)), ones);
        }
    }
}

/* Q4_0 / Q5_0 with their weights unsigned (u = value + off, off = 8 / 16), so that maddubs takes them
 * as they are, without the two sign flips per token (measured: a third of the time of this loop);
 * off * sum(y) comes off each s32 lane exactly. The lanes, and so the floats, are those of the
 * signed form in q4_0_pair / q5_0_pair. s16 bounds: |u0*y0 + u1*y1| * 2 <= 31 * 127 * 4 < 2^15. */
TY_AVX2_INLINE void offset_pair_prep(__m256i ulo, __m256i uhi, __m256 xd, const q8_pair *y, const __m256i *corr,
                                     __m256 *acc, int nt) {
    UNROLL
    for (int k = 0; k < nt; k++) {
        const __m256i p = _mm256_add_epi16(_mm256_maddubs_epi16(ulo, y[k].lo), _mm256_maddubs_epi16(uhi, y[k].hi));
        const __m256i i = _mm256_sub_epi32(_mm256_madd_epi16(p, _mm256_set1_epi16(1)), corr[k]);
        acc[k] = _mm256_fmadd_ps(_mm256_mul_ps(xd, y[k].d), _mm256_cvtepi32_ps(i), acc[k]);
    }
}

TY_AVX2_INLINE void q4_0_pair_prep(const blk_q4_0 *x, const q8_pair *y, const __m256i *corr, __m256 *acc, int nt) {
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    const __m256i qs = load2x128(x[0].qs, x[1].qs);
    const __m256i lo = _mm256_and_si256(qs, m4), hi = _mm256_and_si256(_mm256_srli_epi16(qs, 4), m4);
    offset_pair_prep(lo, hi, spread_pair(f16x2(x[0].d, x[1].d)), y, corr, acc, nt);
}

TY_AVX2_INLINE void q5_0_pair_prep(const blk_q5_0 *x, const q8_pair *y, const __m256i *corr, __m256 *acc, int nt) {
    const __m256i m4 = _mm256_set1_epi8(0x0F), b4 = _mm256_set1_epi8(0x10);
    __m256i blo, bhi;
    q5_pair_bits(x[0].qh, x[1].qh, &blo, &bhi);
    const __m256i qs = load2x128(x[0].qs, x[1].qs);
    const __m256i lo = _mm256_or_si256(_mm256_and_si256(qs, m4), _mm256_and_si256(blo, b4));
    const __m256i hi = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(qs, 4), m4), _mm256_and_si256(bhi, b4));
    offset_pair_prep(lo, hi, spread_pair(f16x2(x[0].d, x[1].d)), y, corr, acc, nt);
}

/* Q8_0, as q8_0_pair (no offset: corr is NULL). */
TY_AVX2_INLINE void q8_0_pair_prep(const blk_q8_0 *x, const q8_pair *y, const __m256i *corr, __m256 *acc, int nt) {
    (void)corr;
    const __m256i lo = load2x128(x[0].qs, x[1].qs), hi = load2x128(x[0].qs + 16, x[1].qs + 16);
    const __m256i alo = _mm256_sign_epi8(lo, lo), ahi = _mm256_sign_epi8(hi, hi);
    const __m256 xd = spread_pair(f16x2(x[0].d, x[1].d));
    UNROLL
    for (int k = 0; k < nt; k++) {
        const __m256i sl = dot_u8i8(alo, _mm256_sign_epi8(y[k].lo, lo));
        const __m256i sh = dot_u8i8(ahi, _mm256_sign_epi8(y[k].hi, hi));
        acc[k] = _mm256_fmadd_ps(_mm256_mul_ps(xd, y[k].d), _mm256_cvtepi32_ps(_mm256_add_epi32(sl, sh)), acc[k]);
    }
}

/* Blocking of PREP_MULTI: a group's prepared activations (8 tokens x 96 B per pair: 48 KiB per
 * 4096 elements) do not fit L1, so the rows go by blocks of PREP_ROWS and the pairs by chunks of
 * PREP_CHUNK: all rows of a block meet one chunk (12 KiB) while it is in L1. The accumulators of a
 * block (16 x 2 x 8 x 32 B = 8 KiB) carry across chunks; each still takes its own pairs in order. */
#ifndef PREP_ROWS
#define PREP_ROWS 16
#endif
#ifndef PREP_CHUNK
#define PREP_CHUNK 16
#endif

/* Pairs [p0, p1) of nr weight rows times nt prepared tokens, as DOT_PAIRS: the even pairs go to
 * acc[r][0], the odd ones to acc[r][1]. The two chains are independent, so they run one after the
 * other: nt accumulators stay in registers, and the second pass finds the weights in L1. */
#define PREP_PAIRS_CHUNK(NAME, PAIR_PREP, WT)                                                      \
    TY_AVX2_INLINE void NAME(const uint8_t *w, size_t w_stride, int nr, const q8_pair *yp,           \
                             const __m256i *corr, int64_t p0, int64_t p1, __m256 (*acc)[2][MULTI_MAX_NT], \
                             int nt) {                                                             \
        for (int r = 0; r < nr; r++) {                                                             \
            const WT *x = (const WT *)(w + (size_t)r * w_stride);                                  \
            UNROLL                                                                                 \
            for (int par = 0; par < 2; par++) {                                                    \
                __m256 ac[MULTI_MAX_NT];                                                           \
                UNROLL                                                                             \
                for (int k = 0; k < nt; k++) ac[k] = acc[r][par][k];                               \
                for (int64_t p = p0 + ((p0 & 1) != par); p < p1; p += 2) {                         \
                    if (par == 0) {                                                                \
                        UNROLL                                                                     \
                        for (size_t o = 0; o < 4 * sizeof(WT); o += 64)                            \
                            _mm_prefetch((const char *)(x + 2 * p) + PREFETCH_AHEAD + o, _MM_HINT_T0); \
                    }                                                                              \
                    PAIR_PREP(x + 2 * p, yp + p * nt, corr ? corr + p * nt : NULL, ac, nt);        \
                }                                                                                  \
                UNROLL                                                                             \
                for (int k = 0; k < nt; k++) acc[r][par][k] = ac[k];                               \
            }                                                                                      \
        }                                                                                          \
    }

/* The entry: the tokens in groups of 8 (then one of 4), each group's activations prepared once for
 * all n_rows weight rows; then per block of rows (read from memory once per call, then from L2) and
 * per group, chunks of pairs, and per row a last odd block (from the raw rows, into acc1, as
 * DOT_PAIRS) and the sum. The last 1-3 tokens (with ONE: prepared, one at a time), short rows and a
 * failed allocation go through the single-row kernel. With ONE, a decode prepares its token once per
 * call (cpu_backend: a call per chunk of ~64 rows): an allocation and 1/64 of the arithmetic. */
#define PREP_MULTI(NAME, CHUNK, PAIR_PREP, BLOCK, SINGLE, WT, OFF, ONE)                            \
    /* One prepared token (8 KiB per 4096 elements: in L1) times rows [0, nr), each row straight   \
     * through as DOT_PAIRS: two register accumulators, even pairs into acc0, odd ones into acc1.  \
     * The PREP_ROWS x PREP_CHUNK blocking serves groups, whose activations do not fit L1; for one \
     * token its accumulators in memory cost a quarter of the time (bench: +35% cache-resident). */ \
    static void TY_AVX2 NAME##_one(int64_t nb, float *s, const uint8_t *w, size_t w_stride, int64_t nr, \
                                   const q8_pair *yp, const __m256i *corr, const uint8_t *a) {     \
        const int64_t np = nb / 2;                                                                 \
        for (int64_t r = 0; r < nr; r++) {                                                         \
            const WT *x = (const WT *)(w + (size_t)r * w_stride);                                  \
            __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();                         \
            int64_t p = 0;                                                                         \
            for (; p + 2 <= np; p += 2) {                                                          \
                UNROLL                                                                             \
                for (size_t o = 0; o < 4 * sizeof(WT); o += 64)                                    \
                    _mm_prefetch((const char *)(x + 2 * p) + PREFETCH_AHEAD + o, _MM_HINT_T0);     \
                PAIR_PREP(x + 2 * p, yp + p, corr ? corr + p : NULL, &acc0, 1);                    \
                PAIR_PREP(x + 2 * p + 2, yp + p + 1, corr ? corr + p + 1 : NULL, &acc1, 1);        \
            }                                                                                      \
            if (p < np) PAIR_PREP(x + 2 * p, yp + p, corr ? corr + p : NULL, &acc0, 1);            \
            float e = 0.0f;                                                                        \
            if (nb & 1) acc1 = BLOCK(x + nb - 1, (const blk_q8_0 *)a + nb - 1, acc1, &e);          \
            s[r] = hsum_ps(_mm256_add_ps(acc0, acc1)) + (0.0f + 0.0f + e);                         \
        }                                                                                          \
    }                                                                                              \
    static void TY_AVX2 NAME##_block(int64_t nb, float *s, int64_t s_stride, const uint8_t *w,     \
                                     size_t w_stride, int nr, const q8_pair *yp, const __m256i *corr, \
                                     const uint8_t *a, size_t a_stride, int nt) {                  \
        const int64_t np = nb / 2;                                                                 \
        __m256 acc[PREP_ROWS][2][MULTI_MAX_NT];                                                    \
        for (int r = 0; r < nr; r++)                                                               \
            for (int k = 0; k < nt; k++) acc[r][0][k] = acc[r][1][k] = _mm256_setzero_ps();        \
        for (int64_t p0 = 0; p0 < np; p0 += PREP_CHUNK) {                                          \
            const int64_t p1 = np - p0 < PREP_CHUNK ? np : p0 + PREP_CHUNK;                        \
            if (nt == MULTI_MAX_NT)                                                                \
                CHUNK(w, w_stride, nr, yp, corr, p0, p1, acc, MULTI_MAX_NT);                       \
            else if (nt == 4)                                                                      \
                CHUNK(w, w_stride, nr, yp, corr, p0, p1, acc, 4);                                  \
            else                                                                                   \
                CHUNK(w, w_stride, nr, yp, corr, p0, p1, acc, 1);                                  \
        }                                                                                          \
        for (int r = 0; r < nr; r++) {                                                             \
            const WT *x = (const WT *)(w + (size_t)r * w_stride);                                  \
            for (int k = 0; k < nt; k++) {                                                         \
                float e = 0.0f;                                                                    \
                if (nb & 1)                                                                        \
                    acc[r][1][k] = BLOCK(x + nb - 1, (const blk_q8_0 *)(a + (size_t)k * a_stride) + nb - 1, \
                                         acc[r][1][k], &e);                                        \
                s[k * s_stride + r] = hsum_ps(_mm256_add_ps(acc[r][0][k], acc[r][1][k])) + (0.0f + 0.0f + e); \
            }                                                                                      \
        }                                                                                          \
    }                                                                                              \
    void TY_AVX2 NAME(int64_t n, float *s, int64_t s_stride, const void *vw, size_t w_stride,      \
                      int64_t n_rows, const void *va, size_t a_stride, int64_t n_tok) {            \
        const uint8_t *a = va, *w = vw;                                                            \
        const int64_t nb = n > 0 && n % TY_QK == 0 ? n / TY_QK : 0, np = nb / 2;                   \
        int64_t n_grouped = n_tok / MULTI_MAX_NT * MULTI_MAX_NT + (n_tok % MULTI_MAX_NT >= 4 ? 4 : 0);    \
        q8_pair *prep = NULL;                                                                      \
        __m256i *corr = NULL;                                                                      \
        if (np > 0 && (n_grouped > 0 || ((ONE) && n_tok > 0))) { /* the groups', or one token's */  \
            const int64_t nu = n_grouped > 0 ? n_grouped : 1;                                      \
            prep = aligned_alloc(32, sizeof(q8_pair) * (size_t)(np * nu));                         \
            if ((OFF) && prep) corr = aligned_alloc(32, sizeof(__m256i) * (size_t)(np * nu));      \
        }                                                                                          \
        if (!prep || ((OFF) && !corr)) n_grouped = 0;                                              \
        for (int64_t t = 0; t < n_grouped; t += MULTI_MAX_NT) { /* group t / 8 at t * np */        \
            const int nt = n_grouped - t >= MULTI_MAX_NT ? MULTI_MAX_NT : 4;                       \
            q8_pairs_prepare(a + (size_t)t * a_stride, a_stride, np, nt, prep + t * np, corr ? corr + t * np : NULL, OFF); \
        }                                                                                          \
        for (int64_t r0 = 0; r0 < n_rows && n_grouped > 0; r0 += PREP_ROWS) {                      \
            const int nr = n_rows - r0 < PREP_ROWS ? (int)(n_rows - r0) : PREP_ROWS;               \
            for (int64_t t = 0; t < n_grouped; t += MULTI_MAX_NT) {                                \
                const int nt = n_grouped - t >= MULTI_MAX_NT ? MULTI_MAX_NT : 4;                   \
                NAME##_block(nb, s + t * s_stride + r0, s_stride, w + (size_t)r0 * w_stride, w_stride, nr, \
                             prep + t * np, corr ? corr + t * np : NULL, a + (size_t)t * a_stride, a_stride, nt); \
            }                                                                                      \
        }                                                                                          \
        /* the tokens past the groups (1-3, a decode's one; all of them if allocation failed) one  \
         * at a time; with ONE prepared too (into the groups' buffers, free again), each row whole \
         * before the next: one token's rows interleaved by blocks of PREP_ROWS defeat the         \
         * prefetchers (decode fell to 2.3 tokens/s) */                                            \
        for (int64_t u = n_grouped; u < n_tok; u++) {                                              \
            if ((ONE) && prep && ((OFF) == 0 || corr)) {                                           \
                q8_pairs_prepare(a + (size_t)u * a_stride, a_stride, np, 1, prep, corr, OFF);      \
                NAME##_one(nb, s + u * s_stride, w, w_stride, n_rows, prep, corr, a + (size_t)u * a_stride); \
            } else {                                                                               \
                for (int64_t r = 0; r < n_rows; r++)                                               \
                    SINGLE(n, s + u * s_stride + r, w + (size_t)r * w_stride, a + (size_t)u * a_stride); \
            }                                                                                      \
        }                                                                                          \
        free(prep);                                                                                \
        free(corr);                                                                                \
    }

/* One group of nt tokens (rows a + k * a_stride, results s[k * s_stride]), as DOT_PAIRS: pair p
 * (blocks 2p, 2p+1) goes to acc[p % 2] (DOT_PAIRS's acc0 / acc1; its loop takes two pairs per
 * step), a last odd block to acc[1]. The loop takes one pair per step so the big unrolled body
 * exists once (compile time, above all with sanitizers); acc then lives in L1, not in registers,
 * which costs a load and a store per accumulator update. */
#define DOT_PAIRS_GROUP(NAME, PAIR_N, BLOCK, WT, AT)                                               \
    TY_AVX2_INLINE void NAME(int64_t nb, float *s, int64_t s_stride, const WT *x, const uint8_t *a, \
                             size_t a_stride, int nt) {                                            \
        const AT *y[MULTI_MAX_NT];                                                                 \
        __m256 acc[2][MULTI_MAX_NT];                                                               \
        __m128 ex[2][MULTI_MAX_NT];                                                                \
        float e[MULTI_MAX_NT];                                                                     \
        UNROLL                                                                                     \
        for (int k = 0; k < nt; k++) {                                                             \
            y[k] = (const AT *)(a + (size_t)k * a_stride);                                         \
            acc[0][k] = acc[1][k] = _mm256_setzero_ps();                                           \
            ex[0][k] = ex[1][k] = _mm_setzero_ps();                                                \
            e[k] = 0.0f;                                                                           \
        }                                                                                          \
        int64_t i = 0;                                                                             \
        for (; i + 2 <= nb; i += 2) {                                                              \
            UNROLL                                                                                 \
            for (size_t o = 0; o < 2 * sizeof(WT); o += 64)                                        \
                _mm_prefetch((const char *)(x + i) + PREFETCH_AHEAD + o, _MM_HINT_T0);             \
            PAIR_N(x + i, y, i, acc[(i >> 1) & 1], ex[(i >> 1) & 1], nt);                           \
        }                                                                                          \
        if (i < nb) {                                                                              \
            UNROLL                                                                                 \
            for (int k = 0; k < nt; k++) acc[1][k] = BLOCK(x + i, y[k] + i, acc[1][k], &e[k]);     \
        }                                                                                          \
        UNROLL                                                                                     \
        for (int k = 0; k < nt; k++) {                                                             \
            const __m128 ek = _mm_add_ps(ex[0][k], ex[1][k]);                                      \
            s[k * s_stride] = hsum_ps(_mm256_add_ps(acc[0][k], acc[1][k])) +                       \
                              (_mm_cvtss_f32(ek) + _mm_cvtss_f32(_mm_movehdup_ps(ek)) + e[k]);      \
        }                                                                                          \
    }

/* K-quants: one group as DOT_BLOCKS: block i goes to acc[i % 2] (DOT_BLOCKS's acc0 / acc1, a last
 * odd block to acc0 = acc[0]), one block per step as above. */
#define DOT_BLOCKS_GROUP(NAME, BLOCK_N, WT, AT)                                                    \
    TY_AVX2_INLINE void NAME(int64_t nb, float *s, int64_t s_stride, const WT *x, const uint8_t *a, \
                             size_t a_stride, int nt) {                                            \
        const AT *y[MULTI_MAX_NT];                                                                 \
        __m256 acc[2][MULTI_MAX_NT];                                                               \
        UNROLL                                                                                     \
        for (int k = 0; k < nt; k++) {                                                             \
            y[k] = (const AT *)(a + (size_t)k * a_stride);                                         \
            acc[0][k] = acc[1][k] = _mm256_setzero_ps();                                           \
        }                                                                                          \
        for (int64_t i = 0; i < nb; i++) {                                                         \
            UNROLL                                                                                 \
            for (size_t o = 0; o < sizeof(WT); o += 64)                                            \
                _mm_prefetch((const char *)(x + i) + PREFETCH_AHEAD + o, _MM_HINT_T0);             \
            BLOCK_N(x + i, y, i, acc[i & 1], nt);                                                  \
        }                                                                                          \
        UNROLL                                                                                     \
        for (int k = 0; k < nt; k++) s[k * s_stride] = hsum_ps(_mm256_add_ps(acc[0][k], acc[1][k])); \
    }

/* Q2_K, as q2_K_block: per token the min term (its own FMA, first), then the scaled sums. */
TY_AVX2_INLINE void q2_K_block_n(const blk_q2_K *x, const blk_q8_K *const *y, int64_t i, __m256 *acc, int nt) {
    const __m128i sm = loadu128(x->scales);
    const __m256i sc16 = _mm256_cvtepu8_epi16(_mm_and_si128(sm, _mm_set1_epi8(0x0F)));
    const __m256i mn16 = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(sm, 4), _mm_set1_epi8(0x0F)));
    const float xd = f16_at(x->d), xdmin = f16_at(x->dmin);
    float dk[MULTI_MAX_NT];
    UNROLL
    for (int k = 0; k < nt; k++) {
        const float yd = f32_at(y[k][i].d);
        const __m256i pm = _mm256_madd_epi16(mn16, loadu256(y[k][i].bsums));
        acc[k] = _mm256_fmadd_ps(_mm256_set1_ps(-yd * xdmin), _mm256_cvtepi32_ps(pm), acc[k]);
        dk[k] = yd * xd;
    }
    const __m256i m3 = _mm256_set1_epi8(3);
    __m256i sumi[MULTI_MAX_NT];
    UNROLL
    for (int k = 0; k < nt; k++) sumi[k] = _mm256_setzero_si256();
    UNROLL
    for (int h = 0; h < 2; h++) {
        const __m256i bits = loadu256(x->qs + 32 * h);
        const __m256i sch = half_scales(sc16, h);
        UNROLL
        for (int j = 0; j < 4; j++) {
            const __m256i q = _mm256_and_si256(_mm256_srli_epi16(bits, 2 * j), m3);
            const __m256i sj = scale_pair16(sch, j);
            UNROLL
            for (int k = 0; k < nt; k++) {
                const __m256i p = _mm256_maddubs_epi16(q, loadu256(y[k][i].qs + 128 * h + 32 * j));
                sumi[k] = keep(_mm256_add_epi32(sumi[k], _mm256_madd_epi16(sj, p)));
            }
        }
    }
    UNROLL
    for (int k = 0; k < nt; k++) acc[k] = _mm256_fmadd_ps(_mm256_set1_ps(dk[k]), _mm256_cvtepi32_ps(sumi[k]), acc[k]);
}

/* Q3_K, as q3_K_block: each token's sums start from its -4 offset term. */
TY_AVX2_INLINE void q3_K_block_n(const blk_q3_K *x, const blk_q8_K *const *y, int64_t i, __m256 *acc, int nt) {
    uint32_t u[3], r[4];
    memcpy(u, x->scales, 12);
    r[0] = (u[0] & 0x0f0f0f0f) | (((u[2] >> 0) & 0x03030303) << 4); /* as q3_K_block */
    r[1] = (u[1] & 0x0f0f0f0f) | (((u[2] >> 2) & 0x03030303) << 4);
    r[2] = ((u[0] >> 4) & 0x0f0f0f0f) | (((u[2] >> 4) & 0x03030303) << 4);
    r[3] = ((u[1] >> 4) & 0x0f0f0f0f) | (((u[2] >> 6) & 0x03030303) << 4);
    const __m128i sc = _mm_sub_epi8(_mm_loadu_si128((const __m128i *)r), _mm_set1_epi8(32));
    const __m256i sc16 = _mm256_cvtepi8_epi16(sc);
    __m256i sumi[MULTI_MAX_NT];
    UNROLL
    for (int k = 0; k < nt; k++)
        sumi[k] = _mm256_sub_epi32(_mm256_setzero_si256(),
                                   _mm256_slli_epi32(_mm256_madd_epi16(sc16, loadu256(y[k][i].bsums)), 2));
    const __m256i hbits = loadu256(x->hmask);
    const __m256i m3 = _mm256_set1_epi8(3), m4 = _mm256_set1_epi8(4);
    UNROLL
    for (int h = 0; h < 2; h++) {
        const __m256i bits = loadu256(x->qs + 32 * h);
        const __m256i sch = half_scales(sc16, h);
        UNROLL
        for (int j = 0; j < 4; j++) {
            const __m256i ql = _mm256_and_si256(_mm256_srli_epi16(bits, 2 * j), m3);
            const __m256i qh = _mm256_and_si256(MOVE_BITS(hbits, 4 * h + j, 2), m4);
            const __m256i q = _mm256_or_si256(ql, qh);
            const __m256i sj = scale_pair16(sch, j);
            UNROLL
            for (int k = 0; k < nt; k++) {
                const __m256i p = _mm256_maddubs_epi16(q, loadu256(y[k][i].qs + 128 * h + 32 * j));
                sumi[k] = keep(_mm256_add_epi32(sumi[k], _mm256_madd_epi16(sj, p)));
            }
        }
    }
    const float xd = f16_at(x->d);
    UNROLL
    for (int k = 0; k < nt; k++)
        acc[k] = _mm256_fmadd_ps(_mm256_set1_ps(f32_at(y[k][i].d) * xd), _mm256_cvtepi32_ps(sumi[k]), acc[k]);
}

/* Q4_K / Q5_K, as k4_block: per token the min term (its own FMA, first), then the scaled sums. The
 * block's header comes unpacked (k4_head): unpacking it here put a chain of ~25 dependent scalar and
 * shuffle operations in front of each block's vector work, which out-of-order execution could not
 * hide behind the previous block's ~440 instructions (perf: a third of the samples in it). */
typedef struct {
    __m256i sc; /* s16: sc0..7 | sc0..7 */
    __m128i mn; /* s16: mn0..7 */
    float d, dmin;
} k4_head;

TY_AVX2_INLINE void k4_head_unpack(const uint8_t *d, const uint8_t *scales, k4_head *h) {
    const __m256i sm16 = _mm256_cvtepu8_epi16(k4_scales_mins(scales)); /* sc0..7 | mn0..7 */
    h->mn = _mm256_extracti128_si256(sm16, 1);
    h->sc = _mm256_permute4x64_epi64(sm16, 0x44);
    h->d = f16_at(d);
    h->dmin = f16_at(d + 2);
}

TY_AVX2_INLINE void k4_block_n(const k4_head *hd, const uint8_t *qs, const uint8_t *qh, const blk_q8_K *const *y,
                               int64_t i, __m256 *acc, int nt) {
    const float xd = hd->d, xdmin = hd->dmin;
    float dk[MULTI_MAX_NT];
    UNROLL
    for (int k = 0; k < nt; k++) {
        const blk_q8_K *yk = y[k] + i;
        const float yd = f32_at(yk->d);
        acc[k] = fmadd_lo4(-yd * xdmin, _mm_madd_epi16(hd->mn, q8k_bsums32(yk)), acc[k]);
        dk[k] = yd * xd;
    }
    const __m256i sc = hd->sc;
    const __m256i m4 = _mm256_set1_epi8(0x0F), b4 = _mm256_set1_epi8(0x10);
    __m256i hb = _mm256_setzero_si256();
    if (qh) hb = loadu256(qh);
    __m256i sumi[MULTI_MAX_NT];
    UNROLL
    for (int k = 0; k < nt; k++) sumi[k] = _mm256_setzero_si256();
    UNROLL
    for (int g = 0; g < 4; g++) {
        const __m256i bits = loadu256(qs + 32 * g);
        __m256i lo = _mm256_and_si256(bits, m4);
        __m256i hi = _mm256_and_si256(_mm256_srli_epi16(bits, 4), m4);
        if (qh) {
            lo = _mm256_or_si256(lo, _mm256_and_si256(MOVE_BITS(hb, 2 * g, 4), b4));
            hi = _mm256_or_si256(hi, _mm256_and_si256(MOVE_BITS(hb, 2 * g + 1, 4), b4));
        }
        const __m256i slo = scale_bcast16(sc, 2 * g), shi = scale_bcast16(sc, 2 * g + 1);
        UNROLL
        for (int k = 0; k < nt; k++) {
            const blk_q8_K *yk = y[k] + i;
            const __m256i pl = _mm256_maddubs_epi16(lo, loadu256(yk->qs + 64 * g));
            const __m256i ph = _mm256_maddubs_epi16(hi, loadu256(yk->qs + 64 * g + 32));
            sumi[k] = keep(_mm256_add_epi32(sumi[k], _mm256_madd_epi16(slo, pl)));
            sumi[k] = keep(_mm256_add_epi32(sumi[k], _mm256_madd_epi16(shi, ph)));
        }
    }
    UNROLL
    for (int k = 0; k < nt; k++) acc[k] = _mm256_fmadd_ps(_mm256_set1_ps(dk[k]), _mm256_cvtepi32_ps(sumi[k]), acc[k]);
}

/* Headers per chunk: unpacked together, their chains overlap one another. */
#define K4_HEAD_CHUNK 16

/* One group of Q4_K / Q5_K (QH: the block's qh or NULL) as DOT_BLOCKS_GROUP, with the headers of
 * each chunk of blocks unpacked first. */
#define K4_GROUP(NAME, WT, QH)                                                                     \
    TY_AVX2_INLINE void NAME(int64_t nb, float *s, int64_t s_stride, const WT *x, const uint8_t *a, \
                             size_t a_stride, int nt) {                                            \
        const blk_q8_K *y[MULTI_MAX_NT];                                                           \
        __m256 acc[2][MULTI_MAX_NT];                                                               \
        UNROLL                                                                                     \
        for (int k = 0; k < nt; k++) {                                                             \
            y[k] = (const blk_q8_K *)(a + (size_t)k * a_stride);                                   \
            acc[0][k] = acc[1][k] = _mm256_setzero_ps();                                           \
        }                                                                                          \
        for (int64_t i0 = 0; i0 < nb; i0 += K4_HEAD_CHUNK) {                                       \
            const int nc = nb - i0 < K4_HEAD_CHUNK ? (int)(nb - i0) : K4_HEAD_CHUNK;               \
            k4_head hd[K4_HEAD_CHUNK];                                                             \
            for (int j = 0; j < nc; j++) k4_head_unpack(x[i0 + j].d, x[i0 + j].scales, &hd[j]);    \
            for (int j = 0; j < nc; j++) {                                                         \
                const int64_t i = i0 + j;                                                          \
                UNROLL                                                                             \
                for (size_t o = 0; o < sizeof(WT); o += 64)                                        \
                    _mm_prefetch((const char *)(x + i) + PREFETCH_AHEAD + o, _MM_HINT_T0);         \
                k4_block_n(&hd[j], x[i].qs, QH, y, i, acc[i & 1], nt);                             \
            }                                                                                      \
        }                                                                                          \
        UNROLL                                                                                     \
        for (int k = 0; k < nt; k++) s[k * s_stride] = hsum_ps(_mm256_add_ps(acc[0][k], acc[1][k])); \
    }

/* Q6_K, as q6_K_block: each token's sums start from its -32 offset term. */
TY_AVX2_INLINE void q6_K_block_n(const blk_q6_K *x, const blk_q8_K *const *y, int64_t i, __m256 *acc, int nt) {
    const __m256i sc16 = _mm256_cvtepi8_epi16(loadu128(x->scales));
    __m256i sumi[MULTI_MAX_NT];
    UNROLL
    for (int k = 0; k < nt; k++)
        sumi[k] = _mm256_sub_epi32(_mm256_setzero_si256(),
                                   _mm256_slli_epi32(_mm256_madd_epi16(sc16, loadu256(y[k][i].bsums)), 5));
    const __m256i m4 = _mm256_set1_epi8(0x0F), m30 = _mm256_set1_epi8(0x30);
    UNROLL
    for (int h = 0; h < 2; h++) {
        const __m256i l0 = loadu256(x->ql + 64 * h), l1 = loadu256(x->ql + 64 * h + 32);
        const __m256i hb = loadu256(x->qh + 32 * h);
        const __m256i sch = half_scales(sc16, h);
        const __m256i lows[4] = {
            _mm256_and_si256(l0, m4), _mm256_and_si256(l1, m4),
            _mm256_and_si256(_mm256_srli_epi16(l0, 4), m4), _mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
        };
        UNROLL
        for (int j = 0; j < 4; j++) {
            const __m256i q = _mm256_or_si256(lows[j], _mm256_and_si256(MOVE_BITS(hb, 2 * j, 4), m30));
            const __m256i sj = scale_pair16(sch, j);
            UNROLL
            for (int k = 0; k < nt; k++) {
                const __m256i p = _mm256_maddubs_epi16(q, loadu256(y[k][i].qs + 128 * h + 32 * j));
                sumi[k] = keep(_mm256_add_epi32(sumi[k], _mm256_madd_epi16(sj, p)));
            }
        }
    }
    const float xd = f16_at(x->d);
    UNROLL
    for (int k = 0; k < nt; k++)
        acc[k] = _mm256_fmadd_ps(_mm256_set1_ps(f32_at(y[k][i].d) * xd), _mm256_cvtepi32_ps(sumi[k]), acc[k]);
}

/* The entry: groups of NT tokens, then one of 4 (where NT > 4), then the single-row kernel for the
 * last tokens. */
#define DOT_MULTI(NAME, GROUP, SINGLE, WT, QK, NT)                                                 \
    void TY_AVX2 NAME(int64_t n, float *s, int64_t s_stride, const void *vw, size_t w_stride,      \
                      int64_t n_rows, const void *va, size_t a_stride, int64_t n_tok) {            \
        const uint8_t *a = va;                                                                     \
        for (int64_t r = 0; r < n_rows; r++, s++) {                                                \
            const uint8_t *w = (const uint8_t *)vw + (size_t)r * w_stride;                         \
            int64_t t = 0;                                                                         \
            if (n > 0 && n % (QK) == 0) {                                                          \
                for (; t + (NT) <= n_tok; t += (NT))                                               \
                    GROUP(n / (QK), s + t * s_stride, s_stride, (const WT *)w, a + (size_t)t * a_stride, a_stride, NT); \
                if ((NT) > 4 && t + 4 <= n_tok)                                                    \
                    GROUP(n / (QK), s + t * s_stride, s_stride, (const WT *)w, a + (size_t)t * a_stride, a_stride, 4), t += 4; \
            }                                                                                      \
            for (; t < n_tok; t++) SINGLE(n, s + t * s_stride, w, a + (size_t)t * a_stride);       \
        }                                                                                          \
    }

/* Group sizes of the raw-activation kernels (Q4_0, Q5_0 and Q8_0 take 8, then 4: PREP_MULTI),
 * measured in one process (64 weight rows x 64 tokens, in L2): 8 tokens are 5-12% faster than 4
 * for Q4_K and Q6_K; the same for Q5_K; 2 is 10-25% slower than 4.
 * Each group size is one more full copy of the unrolled block code, which costs compile time
 * (under ASan+UBSan this file takes minutes with 8 everywhere), so the other types stay at 4.
 * -DMULTI_NT=... / -DMULTI_NT_BIG=... rebuild with other sizes for such comparisons. */
#ifndef MULTI_NT
#define MULTI_NT 4
#endif
#ifndef MULTI_NT_BIG
#define MULTI_NT_BIG 8
#endif
_Static_assert(MULTI_NT >= 2 && MULTI_NT <= MULTI_MAX_NT && MULTI_NT_BIG >= 2 && MULTI_NT_BIG <= MULTI_MAX_NT,
               "group sizes");

PREP_PAIRS_CHUNK(q4_0_chunk, q4_0_pair_prep, blk_q4_0)
DOT_PAIRS_GROUP(q4_1_group, q4_1_pair_n, q4_1_block, blk_q4_1, blk_q8_1)
PREP_PAIRS_CHUNK(q5_0_chunk, q5_0_pair_prep, blk_q5_0)
DOT_PAIRS_GROUP(q5_1_group, q5_1_pair_n, q5_1_block, blk_q5_1, blk_q8_1)
PREP_PAIRS_CHUNK(q8_0_chunk, q8_0_pair_prep, blk_q8_0)
DOT_BLOCKS_GROUP(q2_K_group, q2_K_block_n, blk_q2_K, blk_q8_K)
DOT_BLOCKS_GROUP(q3_K_group, q3_K_block_n, blk_q3_K, blk_q8_K)
K4_GROUP(q4_K_group, blk_q4_K, NULL)
K4_GROUP(q5_K_group, blk_q5_K, x[i].qh)
DOT_BLOCKS_GROUP(q6_K_group, q6_K_block_n, blk_q6_K, blk_q8_K)

/* ONE: single tokens (decode) prepared as well. Q4_0 decode (tg32, 7B, 2 threads, four alternating
 * rounds) went +6% to +13% that way, through the chunked blocks; rows straight through (NAME##_one)
 * then streamed 7B-shaped rows at 15.8 instead of 13.0 GB/s (2 threads), 16.6 instead of 12.3
 * cache-resident (1 thread). Q8_0 and Q5_0 gain cache-resident (+24%, +19%) but not streaming
 * (within noise), and Q8_0 lost 3-14% of its decode through the chunked form: they stay single. */
PREP_MULTI(ty_avx2_dot_multi_q4_0, q4_0_chunk, q4_0_pair_prep, q4_0_block, ty_avx2_dot_q4_0, blk_q4_0, 8, 1)
DOT_MULTI(ty_avx2_dot_multi_q4_1, q4_1_group, ty_avx2_dot_q4_1, blk_q4_1, TY_QK, MULTI_NT)
PREP_MULTI(ty_avx2_dot_multi_q5_0, q5_0_chunk, q5_0_pair_prep, q5_0_block, ty_avx2_dot_q5_0, blk_q5_0, 16, 0)
DOT_MULTI(ty_avx2_dot_multi_q5_1, q5_1_group, ty_avx2_dot_q5_1, blk_q5_1, TY_QK, MULTI_NT)
PREP_MULTI(ty_avx2_dot_multi_q8_0, q8_0_chunk, q8_0_pair_prep, q8_0_block, ty_avx2_dot_q8_0, blk_q8_0, 0, 0)
DOT_MULTI(ty_avx2_dot_multi_q2_K, q2_K_group, ty_avx2_dot_q2_K, blk_q2_K, TY_QK_K, MULTI_NT)
DOT_MULTI(ty_avx2_dot_multi_q3_K, q3_K_group, ty_avx2_dot_q3_K, blk_q3_K, TY_QK_K, MULTI_NT)
DOT_MULTI(ty_avx2_dot_multi_q4_K, q4_K_group, ty_avx2_dot_q4_K, blk_q4_K, TY_QK_K, MULTI_NT_BIG)
DOT_MULTI(ty_avx2_dot_multi_q5_K, q5_K_group, ty_avx2_dot_q5_K, blk_q5_K, TY_QK_K, MULTI_NT)
DOT_MULTI(ty_avx2_dot_multi_q6_K, q6_K_group, ty_avx2_dot_q6_K, blk_q6_K, TY_QK_K, MULTI_NT_BIG)

/* ---- activation quantizers -------------------------------------------------------------------- */

static inline TY_AVX2 __m256 abs_ps(__m256 v) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), v); }

static inline TY_AVX2 float hmax_ps(__m256 v) {
    __m128 r = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    r = _mm_max_ps(r, _mm_movehl_ps(r, r));
    r = _mm_max_ss(r, _mm_movehdup_ps(r));
    return _mm_cvtss_f32(r);
}

/* roundf (halves away from zero), exactly: t = trunc(v), then t += sign(v) where |v - t| >= 0.5
 * (v - t is exact: the fraction of a float needs no more bits than the float). */
static inline TY_AVX2 __m256 roundf_ps(__m256 v) {
    const __m256 t = _mm256_round_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    const __m256 sign = _mm256_and_ps(v, _mm256_set1_ps(-0.0f));
    const __m256 ge = _mm256_cmp_ps(abs_ps(_mm256_sub_ps(v, t)), _mm256_set1_ps(0.5f), _CMP_GE_OQ);
    return _mm256_add_ps(t, _mm256_and_ps(ge, _mm256_or_ps(_mm256_set1_ps(1.0f), sign)));
}

/* 4 x 8 integral floats -> 32 int8 in order, saturated to [-128, 127]. packs interleaves the
 * 128-bit lanes: dwords come out as a0 b0 c0 d0 a1 b1 c1 d1 (x0 = elements 0-3 of x, x1 = 4-7). */
static inline TY_AVX2 __m256i pack32(__m256 a, __m256 b, __m256 c, __m256 d) {
    const __m256i ab = _mm256_packs_epi32(_mm256_cvtps_epi32(a), _mm256_cvtps_epi32(b));
    const __m256i cd = _mm256_packs_epi32(_mm256_cvtps_epi32(c), _mm256_cvtps_epi32(d));
    return _mm256_permutevar8x32_epi32(_mm256_packs_epi16(ab, cd), _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

/* Q8_0 / Q8_1 block: d = amax / 127, q = roundf(x * (1 / d)) (quantize.c's q_q8_0). Returns the
 * quantized bytes; *d_out gets d. */
static inline TY_AVX2 __m256i q8_32(const float *x, float *d_out) {
    const __m256 v0 = _mm256_loadu_ps(x), v1 = _mm256_loadu_ps(x + 8);
    const __m256 v2 = _mm256_loadu_ps(x + 16), v3 = _mm256_loadu_ps(x + 24);
    const float amax = hmax_ps(_mm256_max_ps(_mm256_max_ps(abs_ps(v0), abs_ps(v1)), _mm256_max_ps(abs_ps(v2), abs_ps(v3))));
    const float d = amax / 127;
    const __m256 id = _mm256_set1_ps(d ? 1.0f / d : 0.0f);
    *d_out = d;
    return pack32(roundf_ps(_mm256_mul_ps(v0, id)), roundf_ps(_mm256_mul_ps(v1, id)),
                  roundf_ps(_mm256_mul_ps(v2, id)), roundf_ps(_mm256_mul_ps(v3, id)));
}

static inline TY_AVX2 void put_f16(uint8_t *p, float v) {
    const uint16_t h = (uint16_t)_cvtss_sh(v, _MM_FROUND_TO_NEAREST_INT);
    memcpy(p, &h, 2);
}

void TY_AVX2 ty_avx2_quantize_q8_0(const float *x, void *vy, int64_t n) {
    blk_q8_0 *y = vy;
    if (n <= 0 || n % TY_QK) return;
    for (int64_t i = 0; i < n / TY_QK; i++, x += TY_QK) {
        float d;
        _mm256_storeu_si256((__m256i *)y[i].qs, q8_32(x, &d));
        put_f16(y[i].d, d);
    }
}

void TY_AVX2 ty_avx2_quantize_q8_1(const float *x, void *vy, int64_t n) {
    blk_q8_1 *y = vy;
    if (n <= 0 || n % TY_QK) return;
    for (int64_t i = 0; i < n / TY_QK; i++, x += TY_QK) {
        float d;
        const __m256i q = q8_32(x, &d);
        _mm256_storeu_si256((__m256i *)y[i].qs, q);
        put_f16(y[i].d, d);
        const int sum = hsum_epi32(dot_u8i8(_mm256_set1_epi8(1), q)); /* sum of the 32 int8 */
        put_f16(y[i].s, (float)sum * d);
    }
}

/* Q8_K: max = the first element of largest magnitude (its sign matters), iscale = -127 / max,
 * q = nearest-even(iscale * x) (quantize.c's nearest_int: same result for |v| <= 2^22),
 * bsums = sums of 16, d = 1 / iscale as f32. */
void TY_AVX2 ty_avx2_quantize_q8_K(const float *x, void *vy, int64_t n) {
    blk_q8_K *y = vy;
    if (n <= 0 || n % TY_QK_K) return;
    for (int64_t i = 0; i < n / TY_QK_K; i++, x += TY_QK_K) {
        __m256 vmax = _mm256_setzero_ps();
        for (int j = 0; j < TY_QK_K; j += 8) vmax = _mm256_max_ps(vmax, abs_ps(_mm256_loadu_ps(x + j)));
        const float amax = hmax_ps(vmax);
        if (!amax) {
            memset(&y[i], 0, sizeof y[i]);
            continue;
        }
        int first = 0; /* index of the first element with |x| == amax */
        const __m256 va = _mm256_set1_ps(amax);
        for (int j = 0; j < TY_QK_K; j += 8) {
            const int m = _mm256_movemask_ps(_mm256_cmp_ps(abs_ps(_mm256_loadu_ps(x + j)), va, _CMP_EQ_OQ));
            if (m) {
                first = j + __builtin_ctz((unsigned)m);
                break;
            }
        }
        const float iscale = -127.f / x[first];
        const __m256 vs = _mm256_set1_ps(iscale);
        for (int g = 0; g < TY_QK_K; g += 32) {
            __m256 v[4];
            for (int k = 0; k < 4; k++)
                v[k] = _mm256_round_ps(_mm256_mul_ps(_mm256_loadu_ps(x + g + 8 * k), vs),
                                       _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
            const __m256i q = pack32(v[0], v[1], v[2], v[3]);
            _mm256_storeu_si256((__m256i *)(y[i].qs + g), q);
            /* sums of 4 bytes, then within each 128-bit lane (16 elements) */
            __m256i s4 = dot_u8i8(_mm256_set1_epi8(1), q);
            s4 = _mm256_hadd_epi32(s4, s4);
            s4 = _mm256_hadd_epi32(s4, s4);
            blk_put_i16(y[i].bsums + 2 * (g / 16), _mm256_extract_epi32(s4, 0));
            blk_put_i16(y[i].bsums + 2 * (g / 16 + 1), _mm256_extract_epi32(s4, 4));
        }
        blk_put_f32(y[i].d, 1 / iscale);
    }
}

#else
typedef int ty_kernels_avx2_unused; /* ISO C wants a non-empty translation unit */
#endif /* TY_HAVE_AVX2_KERNELS */
