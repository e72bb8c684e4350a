/* dequant.c - reference dequantization of every supported type to float32.
 *
 * Same arithmetic, in the same order, as ggml's dequantize_row_* (each element is computed with
 * the same float operations), so results are bit-identical to ggml's scalar code. */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off") /* a*b+c must not become one fused operation */
#endif

#include "quant/blocks.h"

static void deq_f32(const void *src, float *y, int64_t n) { memcpy(y, src, (size_t)n * sizeof(float)); }

static void deq_f16(const void *src, float *y, int64_t n) {
    const uint8_t *p = src;
    for (int64_t i = 0; i < n; i++) y[i] = blk_get_f16(p + 2 * i);
}

static void deq_bf16(const void *src, float *y, int64_t n) {
    const uint8_t *p = src;
    for (int64_t i = 0; i < n; i++) y[i] = ty_bf16_to_f32((uint16_t)(p[2 * i] | (p[2 * i + 1] << 8)));
}

static void deq_q4_0(const void *src, float *y, int64_t nb) {
    const blk_q4_0 *x = src;
    for (int64_t i = 0; i < nb; i++, y += 32) {
        const float d = blk_get_f16(x[i].d);
        for (int j = 0; j < 16; j++) {
            y[j] = ((x[i].qs[j] & 0xF) - 8) * d;
            y[j + 16] = ((x[i].qs[j] >> 4) - 8) * d;
        }
    }
}

static void deq_q4_1(const void *src, float *y, int64_t nb) {
    const blk_q4_1 *x = src;
    for (int64_t i = 0; i < nb; i++, y += 32) {
        const float d = blk_get_f16(x[i].d);
        const float m = blk_get_f16(x[i].m);
        for (int j = 0; j < 16; j++) {
            y[j] = (x[i].qs[j] & 0xF) * d + m;
            y[j + 16] = (x[i].qs[j] >> 4) * d + m;
        }
    }
}

static void deq_q5_0(const void *src, float *y, int64_t nb) {
    const blk_q5_0 *x = src;
    for (int64_t i = 0; i < nb; i++, y += 32) {
        const float d = blk_get_f16(x[i].d);
        const uint32_t qh = blk_get_u32(x[i].qh);
        for (int j = 0; j < 16; j++) {
            const int h0 = (int)((qh >> j) & 1) << 4;
            const int h1 = (int)((qh >> (j + 16)) & 1) << 4;
            y[j] = (((x[i].qs[j] & 0xF) | h0) - 16) * d;
            y[j + 16] = (((x[i].qs[j] >> 4) | h1) - 16) * d;
        }
    }
}

static void deq_q5_1(const void *src, float *y, int64_t nb) {
    const blk_q5_1 *x = src;
    for (int64_t i = 0; i < nb; i++, y += 32) {
        const float d = blk_get_f16(x[i].d);
        const float m = blk_get_f16(x[i].m);
        const uint32_t qh = blk_get_u32(x[i].qh);
        for (int j = 0; j < 16; j++) {
            const int h0 = (int)((qh >> j) & 1) << 4;
            const int h1 = (int)((qh >> (j + 16)) & 1) << 4;
            y[j] = ((x[i].qs[j] & 0xF) | h0) * d + m;
            y[j + 16] = ((x[i].qs[j] >> 4) | h1) * d + m;
        }
    }
}

static void deq_q8_0(const void *src, float *y, int64_t nb) {
    const blk_q8_0 *x = src;
    for (int64_t i = 0; i < nb; i++, y += 32) {
        const float d = blk_get_f16(x[i].d);
        for (int j = 0; j < 32; j++) y[j] = x[i].qs[j] * d;
    }
}

static void deq_q8_1(const void *src, float *y, int64_t nb) {
    const blk_q8_1 *x = src;
    for (int64_t i = 0; i < nb; i++, y += 32) {
        const float d = blk_get_f16(x[i].d);
        for (int j = 0; j < 32; j++) y[j] = x[i].qs[j] * d;
    }
}

/* Q2_K / Q3_K: element 128h + 32k + l has its 2 low bits at bits 2k of qs[32h + l]; one scale per
 * 16 elements (index 8h + 2k + l/16). */
static void deq_q2_K(const void *src, float *y, int64_t nb) {
    const blk_q2_K *x = src;
    for (int64_t i = 0; i < nb; i++) {
        const float d = blk_get_f16(x[i].d);
        const float dmin = blk_get_f16(x[i].dmin);
        for (int h = 0; h < 2; h++) {
            const uint8_t *q = x[i].qs + 32 * h;
            for (int k = 0; k < 4; k++) {
                for (int half = 0; half < 2; half++) {
                    const int sc = x[i].scales[8 * h + 2 * k + half];
                    const float dl = d * (sc & 0xF), ml = dmin * (sc >> 4);
                    for (int l = 16 * half; l < 16 * half + 16; l++) *y++ = dl * ((q[l] >> (2 * k)) & 3) - ml;
                }
            }
        }
    }
}

static void deq_q3_K(const void *src, float *y, int64_t nb) {
    const blk_q3_K *x = src;
    for (int64_t i = 0; i < nb; i++) {
        const float d = blk_get_f16(x[i].d);
        for (int h = 0; h < 2; h++) {
            const uint8_t *q = x[i].qs + 32 * h;
            for (int k = 0; k < 4; k++) {
                const int bit = 4 * h + k; /* the 3rd bit of element 32*bit + l is bit `bit` of hmask[l] */
                for (int half = 0; half < 2; half++) {
                    const float dl = d * (blk_q3k_scale(8 * h + 2 * k + half, x[i].scales) - 32);
                    for (int l = 16 * half; l < 16 * half + 16; l++) {
                        *y++ = dl * (((q[l] >> (2 * k)) & 3) - (((x[i].hmask[l] >> bit) & 1) ? 0 : 4));
                    }
                }
            }
        }
    }
}

static void deq_q4_K(const void *src, float *y, int64_t nb) {
    const blk_q4_K *x = src;
    for (int64_t i = 0; i < nb; i++) {
        const float d = blk_get_f16(x[i].d);
        const float dmin = blk_get_f16(x[i].dmin);
        for (int g = 0; g < 4; g++) {
            const uint8_t *q = x[i].qs + 32 * g;
            int sc, mn;
            blk_k4_scale_min(2 * g, x[i].scales, &sc, &mn);
            const float d1 = d * sc, m1 = dmin * mn;
            blk_k4_scale_min(2 * g + 1, x[i].scales, &sc, &mn);
            const float d2 = d * sc, m2 = dmin * mn;
            for (int l = 0; l < 32; l++) *y++ = d1 * (q[l] & 0xF) - m1;
            for (int l = 0; l < 32; l++) *y++ = d2 * (q[l] >> 4) - m2;
        }
    }
}

static void deq_q5_K(const void *src, float *y, int64_t nb) {
    const blk_q5_K *x = src;
    for (int64_t i = 0; i < nb; i++) {
        const float d = blk_get_f16(x[i].d);
        const float dmin = blk_get_f16(x[i].dmin);
        for (int g = 0; g < 4; g++) {
            const uint8_t *q = x[i].qs + 32 * g;
            const uint8_t *qh = x[i].qh;
            int sc, mn;
            blk_k4_scale_min(2 * g, x[i].scales, &sc, &mn);
            const float d1 = d * sc, m1 = dmin * mn;
            blk_k4_scale_min(2 * g + 1, x[i].scales, &sc, &mn);
            const float d2 = d * sc, m2 = dmin * mn;
            for (int l = 0; l < 32; l++) *y++ = d1 * ((q[l] & 0xF) + (((qh[l] >> (2 * g)) & 1) << 4)) - m1;
            for (int l = 0; l < 32; l++) *y++ = d2 * ((q[l] >> 4) + (((qh[l] >> (2 * g + 1)) & 1) << 4)) - m2;
        }
    }
}

/* Q6_K: in half h, for l < 32, elements 128h + l + {0, 32, 64, 96} are (ql[l] low, ql[l+32] low,
 * ql[l] high, ql[l+32] high) | (2-bit fields 0..3 of qh[l]) << 4, minus 32. */
static void deq_q6_K(const void *src, float *y, int64_t nb) {
    const blk_q6_K *x = src;
    for (int64_t i = 0; i < nb; i++, y += 256) {
        const float d = blk_get_f16(x[i].d);
        for (int h = 0; h < 2; h++) {
            const uint8_t *ql = x[i].ql + 64 * h, *qh = x[i].qh + 32 * h;
            const int8_t *sc = x[i].scales + 8 * h;
            float *yh = y + 128 * h;
            for (int l = 0; l < 32; l++) {
                const int is = l / 16;
                const int q1 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
                const int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
                const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                yh[l] = d * sc[is] * q1;
                yh[l + 32] = d * sc[is + 2] * q2;
                yh[l + 64] = d * sc[is + 4] * q3;
                yh[l + 96] = d * sc[is + 6] * q4;
            }
        }
    }
}

static void deq_q8_K(const void *src, float *y, int64_t nb) {
    const blk_q8_K *x = src;
    for (int64_t i = 0; i < nb; i++) {
        const float d = blk_get_f32(x[i].d);
        for (int j = 0; j < 256; j++) *y++ = d * x[i].qs[j];
    }
}

void ty_dequantize_row(uint32_t type, const void *src, float *dst, int64_t n) {
    const ty_type_info *t = ty_type_get(type);
    if (!t || n <= 0 || n % t->block_size != 0) return;
    const int64_t nb = n / t->block_size;
    switch (type) {
    case TY_TYPE_F32: deq_f32(src, dst, n); break;
    case TY_TYPE_F16: deq_f16(src, dst, n); break;
    case TY_TYPE_BF16: deq_bf16(src, dst, n); break;
    case TY_TYPE_Q4_0: deq_q4_0(src, dst, nb); break;
    case TY_TYPE_Q4_1: deq_q4_1(src, dst, nb); break;
    case TY_TYPE_Q5_0: deq_q5_0(src, dst, nb); break;
    case TY_TYPE_Q5_1: deq_q5_1(src, dst, nb); break;
    case TY_TYPE_Q8_0: deq_q8_0(src, dst, nb); break;
    case TY_TYPE_Q8_1: deq_q8_1(src, dst, nb); break;
    case TY_TYPE_Q2_K: deq_q2_K(src, dst, nb); break;
    case TY_TYPE_Q3_K: deq_q3_K(src, dst, nb); break;
    case TY_TYPE_Q4_K: deq_q4_K(src, dst, nb); break;
    case TY_TYPE_Q5_K: deq_q5_K(src, dst, nb); break;
    case TY_TYPE_Q6_K: deq_q6_K(src, dst, nb); break;
    case TY_TYPE_Q8_K: deq_q8_K(src, dst, nb); break;
    default: break;
    }
}
