/* cuda_quant.cuh - device-side decoding of GGUF weight blocks, 32 elements at a time.
 *
 * One decoder per type, used by every kernel that reads weights (get_rows, the matrix-vector and
 * the tiled matrix kernels), so there is a single place where each block layout is spelled out.
 * Layouts and element order are those of src/quant/blocks.h. Decoding is exact: every element is
 * computed with the same float operations, in the same order, as ty_dequantize_row (src/quant/
 * dequant.c), using __fmul_rn/__fadd_rn/__fsub_rn so that nvcc cannot fuse a multiply and an add
 * into one FMA (which would round differently). get_rows is therefore bit-identical to the CPU.
 *
 * Addressing: a row is ne0 / BS blocks of TS bytes; element e of a row is in block e / BS, 32-group
 * (e % BS) / 32 of it. F32, F16 and BF16 are treated as 32-element "blocks" of 128/64/64 bytes
 * (rows must then hold a multiple of 32 elements, which the backend checks at upload).
 *
 * Alignment: rows start 16-byte aligned on the device (padded pitch) and the matrix-vector kernel
 * stages whole blocks into 16-byte aligned shared memory, so a block starts at a multiple of
 * gcd(TS, 16) bytes: every type's 2-byte fields sit at even addresses, and the byte arrays of
 * Q2_K (TS 84), Q4_K (144) and Q5_K (176) are 4-byte aligned. Decoders rely on exactly that. */
#ifndef TY_CUDA_QUANT_CUH
#define TY_CUDA_QUANT_CUH

#include <cuda_fp16.h>
#include <assert.h>
#include <stdint.h>
#include <string.h>

extern "C" {
#include "quant/quant.h"
}

/* Elements per block (BS) and bytes per block (TS) of each type as the kernels see them. */
template <int T> struct qt;
template <> struct qt<TY_TYPE_F32> { static constexpr int BS = 32, TS = 128; };
template <> struct qt<TY_TYPE_F16> { static constexpr int BS = 32, TS = 64; };
template <> struct qt<TY_TYPE_BF16> { static constexpr int BS = 32, TS = 64; };
template <> struct qt<TY_TYPE_Q4_0> { static constexpr int BS = 32, TS = 18; };
template <> struct qt<TY_TYPE_Q4_1> { static constexpr int BS = 32, TS = 20; };
template <> struct qt<TY_TYPE_Q5_0> { static constexpr int BS = 32, TS = 22; };
template <> struct qt<TY_TYPE_Q5_1> { static constexpr int BS = 32, TS = 24; };
template <> struct qt<TY_TYPE_Q8_0> { static constexpr int BS = 32, TS = 34; };
template <> struct qt<TY_TYPE_Q2_K> { static constexpr int BS = 256, TS = 84; };
template <> struct qt<TY_TYPE_Q3_K> { static constexpr int BS = 256, TS = 110; };
template <> struct qt<TY_TYPE_Q4_K> { static constexpr int BS = 256, TS = 144; };
template <> struct qt<TY_TYPE_Q5_K> { static constexpr int BS = 256, TS = 176; };
template <> struct qt<TY_TYPE_Q6_K> { static constexpr int BS = 256, TS = 210; };

/* Calls F.template operator()<T>() for a runtime type id; returns false for unsupported ids. */
#define CU_FOR_EACH_TYPE(X)                                                                        \
    X(TY_TYPE_F32) X(TY_TYPE_F16) X(TY_TYPE_BF16) X(TY_TYPE_Q4_0) X(TY_TYPE_Q4_1) X(TY_TYPE_Q5_0)   \
    X(TY_TYPE_Q5_1) X(TY_TYPE_Q8_0) X(TY_TYPE_Q2_K) X(TY_TYPE_Q3_K) X(TY_TYPE_Q4_K) X(TY_TYPE_Q5_K) \
    X(TY_TYPE_Q6_K)

/* Decoders are also compiled for the host, so that they can be checked against the CPU's
 * ty_dequantize_row bit for bit without a GPU. On the host these are plain IEEE operations (the
 * host compiler does not contract them: ISO C++ mode, and x86-64 has no FMA by default). */
#define CU_HD __host__ __device__ __forceinline__
#ifdef __CUDA_ARCH__
#define CU_UNROLL _Pragma("unroll")
#else
#define CU_UNROLL /* the host compiler does not know the pragma */
#endif

CU_HD float fmul_rn(float a, float b) {
#ifdef __CUDA_ARCH__
    return __fmul_rn(a, b);
#else
    return a * b;
#endif
}
CU_HD float fadd_rn(float a, float b) {
#ifdef __CUDA_ARCH__
    return __fadd_rn(a, b);
#else
    return a + b;
#endif
}
CU_HD float fsub_rn(float a, float b) {
#ifdef __CUDA_ARCH__
    return __fsub_rn(a, b);
#else
    return a - b;
#endif
}
CU_HD float bits_f32(uint32_t u) {
#ifdef __CUDA_ARCH__
    return __uint_as_float(u);
#else
    float f;
    memcpy(&f, &u, 4);
    return f;
#endif
}

/* ---- loads ------------------------------------------------------------------------------------ */

/* The host build (tests) checks the alignment the device relies on. */
#ifdef __CUDA_ARCH__
#define CU_ASSERT_ALIGNED(p, a) ((void)0)
#else
#define CU_ASSERT_ALIGNED(p, a) assert(((uintptr_t)(p) & ((a) - 1)) == 0)
#endif

CU_HD uint32_t ld_u16(const uint8_t *p) { /* p even */
    CU_ASSERT_ALIGNED(p, 2);
    return *(const uint16_t *)p;
}
CU_HD float ld_f16(const uint8_t *p) { return __half2float(__ushort_as_half((unsigned short)ld_u16(p))); }

/* N bytes (N a multiple of 4) at a 2-byte aligned address, packed little-endian into N/4 words. */
template <int N> CU_HD void ld_bytes_a2(const uint8_t *p, uint32_t (&w)[N / 4]) {
    CU_UNROLL
    for (int i = 0; i < N / 4; i++) w[i] = ld_u16(p + 4 * i) | (ld_u16(p + 4 * i + 2) << 16);
}
/* The same at a 4-byte aligned address. */
template <int N> CU_HD void ld_bytes_a4(const uint8_t *p, uint32_t (&w)[N / 4]) {
    CU_ASSERT_ALIGNED(p, 4);
    CU_UNROLL
    for (int i = 0; i < N / 4; i++) w[i] = *(const uint32_t *)(p + 4 * i);
}
/* Byte i of a packed array (i a compile-time constant after unrolling). */
#define BYTE(w, i) (((w)[(i) >> 2] >> (8 * ((i) & 3))) & 0xFFu)

/* Small integers to float without the (quarter-rate) I2F instruction: 2^23 + q has q in its low
 * mantissa bits, so (bits 0x4B000000 | q) - (2^23 + bias) is exactly q - bias, for 0 <= q < 2^23.
 * Same arithmetic on the host, so the host check covers it. */
CU_HD float i2f_bias(uint32_t q, float bias_plus_2p23) { return fsub_rn(bits_f32(0x4B000000u | q), bias_plus_2p23); }
#define U2F(q) i2f_bias((q), 8388608.0f)           /* q */
#define U2F_M8(q) i2f_bias((q), 8388616.0f)        /* q - 8 */
#define U2F_M16(q) i2f_bias((q), 8388624.0f)       /* q - 16 */
#define U2F_M32(q) i2f_bias((q), 8388640.0f)       /* q - 32 */
#define S8F(byte) i2f_bias((byte) ^ 0x80u, 8388736.0f) /* (int8_t)byte: byte ^ 0x80 = value + 128 */

/* ---- decoders: y[0..31] = elements 32g .. 32g+31 of the block at b ----------------------------- */

template <int T> CU_HD void deq32(const uint8_t *__restrict__ b, int g, float (&y)[32]);

template <> CU_HD void deq32<TY_TYPE_F32>(const uint8_t *__restrict__ b, int, float (&y)[32]) {
    CU_ASSERT_ALIGNED(b, 16);
    const float4 *p = (const float4 *)b;
    CU_UNROLL
    for (int i = 0; i < 8; i++) {
        float4 v = p[i];
        y[4 * i] = v.x, y[4 * i + 1] = v.y, y[4 * i + 2] = v.z, y[4 * i + 3] = v.w;
    }
}

template <> CU_HD void deq32<TY_TYPE_F16>(const uint8_t *__restrict__ b, int, float (&y)[32]) {
    CU_ASSERT_ALIGNED(b, 16);
    const uint4 *p = (const uint4 *)b;
    CU_UNROLL
    for (int i = 0; i < 4; i++) {
        uint4 v = p[i];
        uint32_t u[4] = {v.x, v.y, v.z, v.w};
        CU_UNROLL
        for (int j = 0; j < 4; j++) {
            y[8 * i + 2 * j] = __half2float(__ushort_as_half((unsigned short)(u[j] & 0xFFFF)));
            y[8 * i + 2 * j + 1] = __half2float(__ushort_as_half((unsigned short)(u[j] >> 16)));
        }
    }
}

template <> CU_HD void deq32<TY_TYPE_BF16>(const uint8_t *__restrict__ b, int, float (&y)[32]) {
    CU_ASSERT_ALIGNED(b, 16);
    const uint4 *p = (const uint4 *)b;
    CU_UNROLL
    for (int i = 0; i < 4; i++) {
        uint4 v = p[i];
        uint32_t u[4] = {v.x, v.y, v.z, v.w};
        CU_UNROLL
        for (int j = 0; j < 4; j++) {
            y[8 * i + 2 * j] = bits_f32(u[j] << 16);
            y[8 * i + 2 * j + 1] = bits_f32(u[j] & 0xFFFF0000u);
        }
    }
}

/* Q4_0: d (f16) | qs[16]; element l < 16: low nibble of qs[l], l >= 16: high nibble of qs[l-16];
 * value (q - 8) * d. */
template <> CU_HD void deq32<TY_TYPE_Q4_0>(const uint8_t *__restrict__ b, int, float (&y)[32]) {
    const float d = ld_f16(b);
    uint32_t q[4];
    ld_bytes_a2<16>(b + 2, q);
    CU_UNROLL
    for (int l = 0; l < 16; l++) {
        y[l] = fmul_rn(U2F_M8(BYTE(q, l) & 0xF), d);
        y[l + 16] = fmul_rn(U2F_M8(BYTE(q, l) >> 4), d);
    }
}

/* Q4_1: d | m | qs[16]; value q * d + m. */
template <> CU_HD void deq32<TY_TYPE_Q4_1>(const uint8_t *__restrict__ b, int, float (&y)[32]) {
    const float d = ld_f16(b), m = ld_f16(b + 2);
    uint32_t q[4];
    ld_bytes_a2<16>(b + 4, q);
    CU_UNROLL
    for (int l = 0; l < 16; l++) {
        y[l] = fadd_rn(fmul_rn(U2F(BYTE(q, l) & 0xF), d), m);
        y[l + 16] = fadd_rn(fmul_rn(U2F(BYTE(q, l) >> 4), d), m);
    }
}

/* Q5_0: d | qh (u32) | qs[16]; bit l of qh is the 5th bit of element l; value (q - 16) * d. */
template <> CU_HD void deq32<TY_TYPE_Q5_0>(const uint8_t *__restrict__ b, int, float (&y)[32]) {
    const float d = ld_f16(b);
    const uint32_t qh = ld_u16(b + 2) | (ld_u16(b + 4) << 16);
    uint32_t q[4];
    ld_bytes_a2<16>(b + 6, q);
    CU_UNROLL
    for (int l = 0; l < 16; l++) {
        const uint32_t h0 = ((qh >> l) & 1) << 4, h1 = ((qh >> (l + 16)) & 1) << 4;
        y[l] = fmul_rn(U2F_M16((BYTE(q, l) & 0xF) | h0), d);
        y[l + 16] = fmul_rn(U2F_M16((BYTE(q, l) >> 4) | h1), d);
    }
}

/* Q5_1: d | m | qh | qs[16]; value q * d + m. */
template <> CU_HD void deq32<TY_TYPE_Q5_1>(const uint8_t *__restrict__ b, int, float (&y)[32]) {
    const float d = ld_f16(b), m = ld_f16(b + 2);
    const uint32_t qh = ld_u16(b + 4) | (ld_u16(b + 6) << 16);
    uint32_t q[4];
    ld_bytes_a2<16>(b + 8, q);
    CU_UNROLL
    for (int l = 0; l < 16; l++) {
        const uint32_t h0 = ((qh >> l) & 1) << 4, h1 = ((qh >> (l + 16)) & 1) << 4;
        y[l] = fadd_rn(fmul_rn(U2F((BYTE(q, l) & 0xF) | h0), d), m);
        y[l + 16] = fadd_rn(fmul_rn(U2F((BYTE(q, l) >> 4) | h1), d), m);
    }
}

/* Q8_0: d | qs[32] (int8); value q * d. */
template <> CU_HD void deq32<TY_TYPE_Q8_0>(const uint8_t *__restrict__ b, int, float (&y)[32]) {
    const float d = ld_f16(b);
    uint32_t q[8];
    ld_bytes_a2<32>(b + 2, q);
    CU_UNROLL
    for (int l = 0; l < 32; l++) y[l] = fmul_rn(S8F(BYTE(q, l)), d);
}

/* Q2_K: scales[16] | qs[64] | d | dmin. Group g = 4h + k: element l has its 2 bits at bits 2k of
 * qs[32h + l]; scale byte 2g + l/16 (low nibble: scale, high: min); value (d*sc) * q - dmin*mn. */
template <> CU_HD void deq32<TY_TYPE_Q2_K>(const uint8_t *__restrict__ b, int g, float (&y)[32]) {
    const float d = ld_f16(b + 80), dmin = ld_f16(b + 82);
    const int h = g >> 2, k = g & 3;
    uint32_t q[8];
    ld_bytes_a4<32>(b + 16 + 32 * h, q);
    const uint32_t s = ld_u16(b + 2 * g); /* scale bytes 2g and 2g + 1 */
    CU_UNROLL
    for (int half = 0; half < 2; half++) {
        const uint32_t sc = (s >> (8 * half)) & 0xFF;
        const float dl = fmul_rn(d, (float)(sc & 0xF)), ml = fmul_rn(dmin, (float)(sc >> 4));
        CU_UNROLL
        for (int i = 0; i < 16; i++) {
            const int l = 16 * half + i;
            y[l] = fsub_rn(fmul_rn(dl, U2F((BYTE(q, l) >> (2 * k)) & 3)), ml);
        }
    }
}

/* Q3_K: hmask[32] | qs[64] | scales[12] | d. Group g = 4h + k: low 2 bits at bits 2k of qs[32h + l],
 * 3rd bit = bit g of hmask[l] (clear: -4); 6-bit scale j = 2g + l/16 (bias 32); value (d*(s-32)) * q. */
CU_HD int q3k_scale(const uint8_t *s, int j) {
    const int lo = j < 8 ? (s[j] & 0xF) : (s[j - 8] >> 4);
    const int hi = (s[8 + (j & 3)] >> (2 * (j >> 2))) & 3;
    return lo | (hi << 4);
}

template <> CU_HD void deq32<TY_TYPE_Q3_K>(const uint8_t *__restrict__ b, int g, float (&y)[32]) {
    const float d = ld_f16(b + 108);
    const int h = g >> 2, k = g & 3;
    uint32_t q[8], hm[8];
    ld_bytes_a2<32>(b + 32 + 32 * h, q);
    ld_bytes_a2<32>(b, hm);
    CU_UNROLL
    for (int half = 0; half < 2; half++) {
        const float dl = fmul_rn(d, (float)(q3k_scale(b + 96, 2 * g + half) - 32));
        CU_UNROLL
        for (int i = 0; i < 16; i++) {
            const int l = 16 * half + i;
            /* q - (hbit ? 0 : 4) = (q | hbit << 2) - 4 */
            const uint32_t v = ((BYTE(q, l) >> (2 * k)) & 3) | (((BYTE(hm, l) >> g) & 1) << 2);
            y[l] = fmul_rn(dl, i2f_bias(v, 8388612.0f));
        }
    }
}

/* Scale and min j (0..7) of Q4_K/Q5_K from their 12 packed bytes (blocks.h, blk_k4_scale_min). */
CU_HD void k4_scale_min(const uint8_t *q, int j, int *sc, int *mn) {
    if (j < 4) {
        *sc = q[j] & 63;
        *mn = q[j + 4] & 63;
    } else {
        *sc = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
        *mn = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
    }
}

/* Q4_K: d | dmin | scales[12] | qs[128]. Group g: 64-group g/2 uses qs[32(g/2) ..]; low nibbles for
 * even g, high for odd; value (d*sc) * q - dmin*mn with scale/min j = g. */
template <> CU_HD void deq32<TY_TYPE_Q4_K>(const uint8_t *__restrict__ b, int g, float (&y)[32]) {
    const float d = ld_f16(b), dmin = ld_f16(b + 2);
    int sc, mn;
    k4_scale_min(b + 4, g, &sc, &mn);
    const float d1 = fmul_rn(d, (float)sc), m1 = fmul_rn(dmin, (float)mn);
    uint32_t q[8];
    ld_bytes_a4<32>(b + 16 + 32 * (g >> 1), q);
    const int sh = 4 * (g & 1);
    CU_UNROLL
    for (int l = 0; l < 32; l++) y[l] = fsub_rn(fmul_rn(d1, U2F((BYTE(q, l) >> sh) & 0xF)), m1);
}

/* Q5_K: d | dmin | scales[12] | qh[32] | qs[128]; as Q4_K plus bit g of qh[l] as the 5th bit. */
template <> CU_HD void deq32<TY_TYPE_Q5_K>(const uint8_t *__restrict__ b, int g, float (&y)[32]) {
    const float d = ld_f16(b), dmin = ld_f16(b + 2);
    int sc, mn;
    k4_scale_min(b + 4, g, &sc, &mn);
    const float d1 = fmul_rn(d, (float)sc), m1 = fmul_rn(dmin, (float)mn);
    uint32_t q[8], qh[8];
    ld_bytes_a4<32>(b + 48 + 32 * (g >> 1), q);
    ld_bytes_a4<32>(b + 16, qh);
    const int sh = 4 * (g & 1);
    CU_UNROLL
    for (int l = 0; l < 32; l++) {
        const uint32_t v = ((BYTE(q, l) >> sh) & 0xF) | (((BYTE(qh, l) >> g) & 1) << 4);
        y[l] = fsub_rn(fmul_rn(d1, U2F(v)), m1);
    }
}

/* Q6_K: ql[128] | qh[64] | scales[16] (int8) | d. Group g = 4h + k: element l has its low nibble in
 * ql[64h + 32(k&1) + l] (high nibble when k >= 2), its 2 high bits at bits 2k of qh[32h + l]; scale
 * 2g + l/16; value (d*sc) * (q - 32). */
template <> CU_HD void deq32<TY_TYPE_Q6_K>(const uint8_t *__restrict__ b, int g, float (&y)[32]) {
    const float d = ld_f16(b + 208);
    const int h = g >> 2, k = g & 3;
    uint32_t ql[8], qh[8];
    ld_bytes_a2<32>(b + 64 * h + 32 * (k & 1), ql);
    ld_bytes_a2<32>(b + 128 + 32 * h, qh);
    const uint32_t s = ld_u16(b + 192 + 2 * g);
    const int shl = 4 * (k >> 1), shh = 2 * k;
    CU_UNROLL
    for (int half = 0; half < 2; half++) {
        const int sc = (int)(int8_t)((s >> (8 * half)) & 0xFF);
        const float ds = fmul_rn(d, (float)sc);
        CU_UNROLL
        for (int i = 0; i < 16; i++) {
            const int l = 16 * half + i;
            const uint32_t v = ((BYTE(ql, l) >> shl) & 0xF) | (((BYTE(qh, l) >> shh) & 3) << 4);
            y[l] = fmul_rn(ds, U2F_M32(v));
        }
    }
}

#endif
