/* blocks.h - private to src/quant/: the byte layouts of ggml's quantized blocks (ggml-common.h) and
 * little-endian field accessors.
 *
 * Every struct is made of byte arrays only, so its alignment is 1 and a block may sit at any
 * address (tensors in a mapped GGUF file need not be aligned to 2 or 4). Multi-byte fields (f16
 * scales, Q5's u32 high bits, Q8_K's f32 scale and i16 sums) are little-endian and are read and
 * written byte-wise through the helpers below.
 *
 * Element order inside a block (n = element index in the block):
 *   Q4_0/Q4_1:  n < 16: low nibble of qs[n];  n >= 16: high nibble of qs[n-16].
 *   Q5_0/Q5_1:  as Q4, plus bit n of the u32 qh as the 5th bit.
 *   Q8_0/Q8_1:  qs[n].
 *   Q2_K/Q3_K:  qs byte 32*h + l (h = n/128, l = n%32) holds the 2-bit values of elements
 *               128h + l + 32k at bits 2k..2k+1, k = 0..3. Q3_K's 3rd bit of element n is bit n/32
 *               of hmask[n%32] (set = +0, clear = -4). One scale per 16 elements.
 *   Q4_K:       64-element group g = n/64 uses qs[32g .. 32g+31]: low nibbles are elements
 *               64g..64g+31, high nibbles 64g+32..64g+63. One 6-bit scale/min per 32 elements.
 *   Q5_K:       as Q4_K, plus the 5th bit of element n (g = n/64, l = n%32) is bit 2g + (n%64 >= 32)
 *               of qh[l].
 *   Q6_K:       128-element half h, l = 0..31: elements 128h + l + {0, 32, 64, 96} are
 *               ql[64h + l] low, ql[64h + 32 + l] low, ql[64h + l] high, ql[64h + 32 + l] high
 *               nibble, with their 2 high bits at bits {0-1, 2-3, 4-5, 6-7} of qh[32h + l].
 *               One int8 scale per 16 elements.
 *   Q8_K:       qs[n]; bsums[k] = sum of qs[16k .. 16k+15]. */
#ifndef TY_QUANT_BLOCKS_H
#define TY_QUANT_BLOCKS_H

#include <assert.h>
#include <stdint.h>
#include <string.h>

#include "base/fp16.h"
#include "quant/quant.h"

typedef struct { uint8_t d[2]; uint8_t qs[16]; } blk_q4_0;
typedef struct { uint8_t d[2]; uint8_t m[2]; uint8_t qs[16]; } blk_q4_1;
typedef struct { uint8_t d[2]; uint8_t qh[4]; uint8_t qs[16]; } blk_q5_0;
typedef struct { uint8_t d[2]; uint8_t m[2]; uint8_t qh[4]; uint8_t qs[16]; } blk_q5_1;
typedef struct { uint8_t d[2]; int8_t qs[32]; } blk_q8_0;
typedef struct { uint8_t d[2]; uint8_t s[2]; int8_t qs[32]; } blk_q8_1; /* s = d * sum(qs) */
typedef struct { uint8_t scales[16]; uint8_t qs[64]; uint8_t d[2]; uint8_t dmin[2]; } blk_q2_K;
typedef struct { uint8_t hmask[32]; uint8_t qs[64]; uint8_t scales[12]; uint8_t d[2]; } blk_q3_K;
typedef struct { uint8_t d[2]; uint8_t dmin[2]; uint8_t scales[12]; uint8_t qs[128]; } blk_q4_K;
typedef struct { uint8_t d[2]; uint8_t dmin[2]; uint8_t scales[12]; uint8_t qh[32]; uint8_t qs[128]; } blk_q5_K;
typedef struct { uint8_t ql[128]; uint8_t qh[64]; int8_t scales[16]; uint8_t d[2]; } blk_q6_K;
typedef struct { uint8_t d[4]; int8_t qs[256]; uint8_t bsums[32]; } blk_q8_K; /* f32 d, i16 bsums[16] */

static_assert(sizeof(blk_q4_0) == 18, "Q4_0 block");
static_assert(sizeof(blk_q4_1) == 20, "Q4_1 block");
static_assert(sizeof(blk_q5_0) == 22, "Q5_0 block");
static_assert(sizeof(blk_q5_1) == 24, "Q5_1 block");
static_assert(sizeof(blk_q8_0) == 34, "Q8_0 block");
static_assert(sizeof(blk_q8_1) == 36, "Q8_1 block");
static_assert(sizeof(blk_q2_K) == 84, "Q2_K block");
static_assert(sizeof(blk_q3_K) == 110, "Q3_K block");
static_assert(sizeof(blk_q4_K) == 144, "Q4_K block");
static_assert(sizeof(blk_q5_K) == 176, "Q5_K block");
static_assert(sizeof(blk_q6_K) == 210, "Q6_K block");
static_assert(sizeof(blk_q8_K) == 292, "Q8_K block");
static_assert(_Alignof(blk_q8_K) == 1 && _Alignof(blk_q6_K) == 1, "blocks must be byte-aligned");

/* ---- little-endian fields ---------------------------------------------------------------------- */

static inline float blk_get_f16(const uint8_t p[2]) {
    return ty_f16_to_f32((uint16_t)(p[0] | (p[1] << 8)));
}
static inline void blk_put_f16(uint8_t p[2], float v) {
    uint16_t h = ty_f32_to_f16(v);
    p[0] = (uint8_t)h;
    p[1] = (uint8_t)(h >> 8);
}
static inline uint32_t blk_get_u32(const uint8_t p[4]) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
static inline void blk_put_u32(uint8_t p[4], uint32_t v) {
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}
static inline float blk_get_f32(const uint8_t p[4]) { return ty_bits_to_f32(blk_get_u32(p)); }
static inline void blk_put_f32(uint8_t p[4], float v) { blk_put_u32(p, ty_f32_to_bits(v)); }
static inline int blk_get_i16(const uint8_t *p) { return (int16_t)(uint16_t)(p[0] | (p[1] << 8)); }
static inline void blk_put_i16(uint8_t *p, int v) {
    p[0] = (uint8_t)((uint16_t)v);
    p[1] = (uint8_t)((uint16_t)v >> 8);
}

/* Scale and min of 32-element sub-block j (0..7) of Q4_K/Q5_K: twelve bytes hold 8 six-bit scales
 * and 8 six-bit mins. Bytes 0-3: scale j in bits 0-5 (j < 4); bytes 4-7: min j in bits 0-5 (j < 4);
 * for j >= 4 the low 4 bits are in byte j+4 (scale: low nibble, min: high nibble) and the high 2
 * bits in bits 6-7 of byte j-4 (scale) and byte j (min). */
static inline void blk_k4_scale_min(int j, const uint8_t *q, int *sc, int *mn) {
    if (j < 4) {
        *sc = q[j] & 63;
        *mn = q[j + 4] & 63;
    } else {
        *sc = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
        *mn = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
    }
}

/* The 16 six-bit scales of Q3_K (stored value, bias 32 not yet removed). */
static inline int blk_q3k_scale(int j, const uint8_t *s) {
    int lo = j < 8 ? (s[j] & 0xF) : (s[j - 8] >> 4);
    int hi = (s[8 + j % 4] >> (2 * (j / 4))) & 3;
    return lo | (hi << 4);
}

#endif
