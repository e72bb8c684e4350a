/* vec_dot.c - reference dot products: a weight row times an activation row in the weight type's
 * vec_dot_type (F32, Q8_0, Q8_1 or Q8_K).
 *
 * Quantized types follow ggml's generic (non-SIMD) ggml_vec_dot_*_q8_* exactly: the products are
 * summed in integers within a block, and the per-block float scaling and the float accumulation
 * across blocks use the same operations in the same order, so the result is bit-identical to
 * ggml's scalar code. For Q3_K..Q6_K ggml accumulates the scaled integer products in 8 lanes
 * (position p of the block goes to lane p % 8), scales each lane by d separately into 8 float sums
 * that run over all blocks, and adds those 8 sums at the very end; this is reproduced. Q2_K and the
 * 32-element formats use a single integer sum per block.
 *
 * F32/F16/BF16 weights: sum over i in increasing order of (float)w[i] * a[i], float accumulator.
 * Q8_K x Q8_K (no ggml counterpart): per block an integer sum, scaled by (d_w * d_a). */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#include "quant/blocks.h"

static float dot_f32(int64_t n, const void *w, const float *a) {
    const uint8_t *p = w;
    float s = 0.0f;
    for (int64_t i = 0; i < n; i++) {
        float v;
        memcpy(&v, p + 4 * i, 4);
        s += v * a[i];
    }
    return s;
}

static float dot_f16(int64_t n, const void *w, const float *a) {
    const uint8_t *p = w;
    float s = 0.0f;
    for (int64_t i = 0; i < n; i++) s += blk_get_f16(p + 2 * i) * a[i];
    return s;
}

static float dot_bf16(int64_t n, const void *w, const float *a) {
    const uint8_t *p = w;
    float s = 0.0f;
    for (int64_t i = 0; i < n; i++) s += ty_bf16_to_f32((uint16_t)(p[2 * i] | (p[2 * i + 1] << 8))) * a[i];
    return s;
}

static float dot_q4_0(int64_t nb, const void *vw, const void *va) {
    const blk_q4_0 *x = vw;
    const blk_q8_0 *y = va;
    float sumf = 0.0f;
    for (int64_t i = 0; i < nb; i++) {
        int s0 = 0, s1 = 0;
        for (int j = 0; j < 16; j++) {
            s0 += ((x[i].qs[j] & 0xF) - 8) * y[i].qs[j];
            s1 += ((x[i].qs[j] >> 4) - 8) * y[i].qs[j + 16];
        }
        sumf += (s0 + s1) * blk_get_f16(x[i].d) * blk_get_f16(y[i].d);
    }
    return sumf;
}

static float dot_q4_1(int64_t nb, const void *vw, const void *va) {
    const blk_q4_1 *x = vw;
    const blk_q8_1 *y = va;
    float sumf = 0.0f;
    for (int64_t i = 0; i < nb; i++) {
        int s0 = 0, s1 = 0;
        for (int j = 0; j < 16; j++) {
            s0 += (x[i].qs[j] & 0xF) * y[i].qs[j];
            s1 += (x[i].qs[j] >> 4) * y[i].qs[j + 16];
        }
        sumf += (blk_get_f16(x[i].d) * blk_get_f16(y[i].d)) * (s0 + s1) + blk_get_f16(x[i].m) * blk_get_f16(y[i].s);
    }
    return sumf;
}

/* The 32 five-bit values of a Q5_0/Q5_1 block, unpacked (0..31). */
static inline void unpack_q5(const uint8_t qs[16], uint32_t qh, int8_t v[32]) {
    for (int j = 0; j < 16; j++) {
        v[j] = (int8_t)((qs[j] & 0xF) | (((qh >> j) & 1) << 4));
        v[j + 16] = (int8_t)((qs[j] >> 4) | (((qh >> (j + 16)) & 1) << 4));
    }
}

static float dot_q5_0(int64_t nb, const void *vw, const void *va) {
    const blk_q5_0 *x = vw;
    const blk_q8_0 *y = va;
    float sumf = 0.0f;
    for (int64_t i = 0; i < nb; i++) {
        int8_t v[32];
        unpack_q5(x[i].qs, blk_get_u32(x[i].qh), v);
        int s = 0;
        for (int j = 0; j < 32; j++) s += (v[j] - 16) * y[i].qs[j];
        sumf += (blk_get_f16(x[i].d) * blk_get_f16(y[i].d)) * s;
    }
    return sumf;
}

static float dot_q5_1(int64_t nb, const void *vw, const void *va) {
    const blk_q5_1 *x = vw;
    const blk_q8_1 *y = va;
    float sumf = 0.0f;
    for (int64_t i = 0; i < nb; i++) {
        int8_t v[32];
        unpack_q5(x[i].qs, blk_get_u32(x[i].qh), v);
        int s = 0;
        for (int j = 0; j < 32; j++) s += v[j] * y[i].qs[j];
        sumf += (blk_get_f16(x[i].d) * blk_get_f16(y[i].d)) * s + blk_get_f16(x[i].m) * blk_get_f16(y[i].s);
    }
    return sumf;
}

static float dot_q8_0(int64_t nb, const void *vw, const void *va) {
    const blk_q8_0 *x = vw;
    const blk_q8_0 *y = va;
    float sumf = 0.0f;
    for (int64_t i = 0; i < nb; i++) {
        int s = 0;
        for (int j = 0; j < 32; j++) s += x[i].qs[j] * y[i].qs[j];
        sumf += s * (blk_get_f16(x[i].d) * blk_get_f16(y[i].d));
    }
    return sumf;
}

/* Unpacks the 2-bit fields of Q2_K/Q3_K: element 128h + 32k + l is bits 2k..2k+1 of qs[32h + l]. */
static inline void unpack_2bit(const uint8_t qs[64], int8_t v[256]) {
    for (int h = 0; h < 2; h++) {
        for (int k = 0; k < 4; k++) {
            for (int l = 0; l < 32; l++) v[128 * h + 32 * k + l] = (int8_t)((qs[32 * h + l] >> (2 * k)) & 3);
        }
    }
}

/* Integer dot of 16 consecutive elements. */
static inline int idot16(const int8_t *a, const int8_t *b) {
    int s = 0;
    for (int l = 0; l < 16; l++) s += a[l] * b[l];
    return s;
}

/* ggml's K-quant lanes: lanes[l] += scale * (q[p] * a[p]) for the positions p = l (mod 8) of a
 * 16-element sub-block (integer, so only the grouping into 8 lanes matters for the result). */
static inline void lanes16(int32_t lanes[8], int scale, const int8_t *q, const int8_t *a) {
    for (int l = 0; l < 8; l++) lanes[l] += scale * (q[l] * a[l] + q[l + 8] * a[l + 8]);
}

/* Finishes a K-quant block the way ggml's generic code does: 8 integer lanes into 8 float sums. */
static inline void lanes_add(float sums[8], const int32_t lanes[8], float d) {
    for (int l = 0; l < 8; l++) sums[l] += d * lanes[l];
}

static float dot_q2_K(int64_t nb, const void *vw, const void *va) {
    const blk_q2_K *x = vw;
    const blk_q8_K *y = va;
    float sumf = 0.0f;
    for (int64_t i = 0; i < nb; i++) {
        const uint8_t *sc = x[i].scales;
        int summs = 0;
        for (int j = 0; j < 16; j++) summs += blk_get_i16(y[i].bsums + 2 * j) * (sc[j] >> 4);
        const float yd = blk_get_f32(y[i].d);
        const float dall = yd * blk_get_f16(x[i].d);
        const float dmin = yd * blk_get_f16(x[i].dmin);
        int8_t q[256];
        unpack_2bit(x[i].qs, q);
        int isum = 0;
        for (int j = 0; j < 16; j++) isum += (sc[j] & 0xF) * idot16(q + 16 * j, y[i].qs + 16 * j);
        sumf += dall * isum - dmin * summs;
    }
    return sumf;
}

static float dot_q3_K(int64_t nb, const void *vw, const void *va) {
    const blk_q3_K *x = vw;
    const blk_q8_K *y = va;
    float sums[8] = {0};
    for (int64_t i = 0; i < nb; i++) {
        int8_t q[256];
        unpack_2bit(x[i].qs, q);
        for (int k = 0; k < 8; k++) { /* 3rd bit of element 32k + l: bit k of hmask[l]; clear = -4 */
            for (int l = 0; l < 32; l++) q[32 * k + l] = (int8_t)(q[32 * k + l] - (((x[i].hmask[l] >> k) & 1) ? 0 : 4));
        }
        int32_t lanes[8] = {0};
        for (int j = 0; j < 16; j++) lanes16(lanes, blk_q3k_scale(j, x[i].scales) - 32, q + 16 * j, y[i].qs + 16 * j);
        lanes_add(sums, lanes, blk_get_f16(x[i].d) * blk_get_f32(y[i].d));
    }
    float sumf = 0.0f;
    for (int l = 0; l < 8; l++) sumf += sums[l];
    return sumf;
}

/* Q4_K and Q5_K (qh NULL for Q4_K): the values of one block, unpacked. */
static inline void unpack_k4(const uint8_t qs[128], const uint8_t *qh, int8_t v[256]) {
    for (int g = 0; g < 4; g++) {
        for (int l = 0; l < 32; l++) {
            v[64 * g + l] = (int8_t)(qs[32 * g + l] & 0xF);
            v[64 * g + 32 + l] = (int8_t)(qs[32 * g + l] >> 4);
        }
        if (qh) {
            for (int l = 0; l < 32; l++) {
                v[64 * g + l] = (int8_t)(v[64 * g + l] + (((qh[l] >> (2 * g)) & 1) << 4));
                v[64 * g + 32 + l] = (int8_t)(v[64 * g + 32 + l] + (((qh[l] >> (2 * g + 1)) & 1) << 4));
            }
        }
    }
}

static float dot_k4(int64_t nb, const uint8_t *w, size_t bsize, size_t off_qh, size_t off_qs,
                    const blk_q8_K *y) {
    float sums[8] = {0};
    float sumf = 0.0f;
    for (int64_t i = 0; i < nb; i++, w += bsize) {
        /* Q4_K and Q5_K both start with f16 d, f16 dmin, scales[12] */
        const uint8_t *scales = w + 4;
        int sc[8], mn[8];
        for (int j = 0; j < 8; j++) blk_k4_scale_min(j, scales, &sc[j], &mn[j]);
        int summ = 0;
        for (int j = 0; j < 16; j++) summ += blk_get_i16(y[i].bsums + 2 * j) * mn[j / 2];
        int8_t q[256];
        unpack_k4(w + off_qs, off_qh ? w + off_qh : NULL, q);
        int32_t lanes[8] = {0};
        for (int j = 0; j < 16; j++) lanes16(lanes, sc[j / 2], q + 16 * j, y[i].qs + 16 * j);
        const float yd = blk_get_f32(y[i].d);
        lanes_add(sums, lanes, blk_get_f16(w) * yd);
        sumf -= blk_get_f16(w + 2) * yd * summ;
    }
    for (int l = 0; l < 8; l++) sumf += sums[l];
    return sumf;
}

static float dot_q6_K(int64_t nb, const void *vw, const void *va) {
    const blk_q6_K *x = vw;
    const blk_q8_K *y = va;
    float sums[8] = {0};
    for (int64_t i = 0; i < nb; i++) {
        int8_t q[256];
        for (int h = 0; h < 2; h++) {
            const uint8_t *ql = x[i].ql + 64 * h, *qh = x[i].qh + 32 * h;
            int8_t *v = q + 128 * h;
            for (int l = 0; l < 32; l++) {
                v[l] = (int8_t)(((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32);
                v[l + 32] = (int8_t)(((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32);
                v[l + 64] = (int8_t)(((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32);
                v[l + 96] = (int8_t)(((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32);
            }
        }
        int32_t lanes[8] = {0};
        for (int j = 0; j < 16; j++) lanes16(lanes, x[i].scales[j], q + 16 * j, y[i].qs + 16 * j);
        lanes_add(sums, lanes, blk_get_f16(x[i].d) * blk_get_f32(y[i].d));
    }
    float sumf = 0.0f;
    for (int l = 0; l < 8; l++) sumf += sums[l];
    return sumf;
}

static float dot_q8_K(int64_t nb, const void *vw, const void *va) {
    const blk_q8_K *x = vw;
    const blk_q8_K *y = va;
    float sumf = 0.0f;
    for (int64_t i = 0; i < nb; i++) {
        int s = 0;
        for (int j = 0; j < 256; j++) s += x[i].qs[j] * y[i].qs[j];
        sumf += (blk_get_f32(x[i].d) * blk_get_f32(y[i].d)) * s;
    }
    return sumf;
}

void ty_vec_dot(uint32_t type, int64_t n, float *s, const void *w, const void *a) {
    const ty_type_info *t = ty_type_get(type);
    *s = 0.0f;
    if (!t || n <= 0 || n % t->block_size != 0) return;
    const int64_t nb = n / t->block_size;
    switch (type) {
    case TY_TYPE_F32: *s = dot_f32(n, w, a); break;
    case TY_TYPE_F16: *s = dot_f16(n, w, a); break;
    case TY_TYPE_BF16: *s = dot_bf16(n, w, a); break;
    case TY_TYPE_Q4_0: *s = dot_q4_0(nb, w, a); break;
    case TY_TYPE_Q4_1: *s = dot_q4_1(nb, w, a); break;
    case TY_TYPE_Q5_0: *s = dot_q5_0(nb, w, a); break;
    case TY_TYPE_Q5_1: *s = dot_q5_1(nb, w, a); break;
    case TY_TYPE_Q8_0: *s = dot_q8_0(nb, w, a); break;
    case TY_TYPE_Q2_K: *s = dot_q2_K(nb, w, a); break;
    case TY_TYPE_Q3_K: *s = dot_q3_K(nb, w, a); break;
    case TY_TYPE_Q4_K: *s = dot_k4(nb, w, sizeof(blk_q4_K), 0, offsetof(blk_q4_K, qs), a); break;
    case TY_TYPE_Q5_K:
        *s = dot_k4(nb, w, sizeof(blk_q5_K), offsetof(blk_q5_K, qh), offsetof(blk_q5_K, qs), a);
        break;
    case TY_TYPE_Q6_K: *s = dot_q6_K(nb, w, a); break;
    case TY_TYPE_Q8_K: *s = dot_q8_K(nb, w, a); break;
    default: break; /* Q8_1 is an activation format only */
    }
}
