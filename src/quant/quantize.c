/* quantize.c - reference quantization of float32 rows.
 *
 * Bit-compatible with ggml's quantize_row_*_ref (the functions llama-quantize uses when no
 * importance matrix is given): the same float operations in the same order, ggml's
 * round-half-to-even `nearest_int` where ggml uses it and roundf / truncation where ggml does.
 * This file must be compiled without floating-point contraction (a*b+c fused into one FMA changes
 * the rounding); the pragmas below ask for that, and -std=c11 (not gnu11) already implies it
 * for GCC.
 *
 * Inputs must be finite. */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#include <float.h>
#include <math.h>

#include "quant/blocks.h"

#define GROUP_MAX_EPS 1e-15f

static inline int imin(int a, int b) { return a < b ? a : b; }
static inline int imax(int a, int b) { return a > b ? a : b; }

/* Round to nearest, ties to even, for |f| <= 2^22 (ggml's nearest_int). */
static inline int nearest_int(float f) {
    const float v = f + 12582912.0f; /* 1.5 * 2^23: the integer lands in the low mantissa bits */
    uint32_t i;
    memcpy(&i, &v, sizeof i);
    return (int)(i & 0x007fffff) - 0x00400000;
}

/* roundf() into an int8 slot (values are within [-127, 127] for the callers' scales). */
static inline int8_t round_i8(float v) { return (int8_t)imax(-128, imin(127, (int)roundf(v))); }

/* ---- 32-element formats --------------------------------------------------------------------- */

static void q_q4_0(const float *x, void *dst, int64_t nb) {
    blk_q4_0 *y = dst;
    for (int64_t i = 0; i < nb; i++, x += 32) {
        float amax = 0.0f, max = 0.0f; /* max: the signed value of largest magnitude */
        for (int j = 0; j < 32; j++) {
            if (amax < fabsf(x[j])) { amax = fabsf(x[j]); max = x[j]; }
        }
        const float d = max / -8;
        const float id = d ? 1.0f / d : 0.0f;
        blk_put_f16(y[i].d, d);
        for (int j = 0; j < 16; j++) {
            const int q0 = imin(15, (int)(x[j] * id + 8.5f));      /* truncation, as ggml */
            const int q1 = imin(15, (int)(x[j + 16] * id + 8.5f));
            y[i].qs[j] = (uint8_t)(q0 | (q1 << 4));
        }
    }
}

static void q_q4_1(const float *x, void *dst, int64_t nb) {
    blk_q4_1 *y = dst;
    for (int64_t i = 0; i < nb; i++, x += 32) {
        float min = FLT_MAX, max = -FLT_MAX;
        for (int j = 0; j < 32; j++) {
            if (x[j] < min) min = x[j];
            if (x[j] > max) max = x[j];
        }
        const float d = (max - min) / 15;
        const float id = d ? 1.0f / d : 0.0f;
        blk_put_f16(y[i].d, d);
        blk_put_f16(y[i].m, min);
        for (int j = 0; j < 16; j++) {
            const int q0 = imin(15, (int)((x[j] - min) * id + 0.5f));
            const int q1 = imin(15, (int)((x[j + 16] - min) * id + 0.5f));
            y[i].qs[j] = (uint8_t)(q0 | (q1 << 4));
        }
    }
}

static void q_q5_0(const float *x, void *dst, int64_t nb) {
    blk_q5_0 *y = dst;
    for (int64_t i = 0; i < nb; i++, x += 32) {
        float amax = 0.0f, max = 0.0f;
        for (int j = 0; j < 32; j++) {
            if (amax < fabsf(x[j])) { amax = fabsf(x[j]); max = x[j]; }
        }
        const float d = max / -16;
        const float id = d ? 1.0f / d : 0.0f;
        blk_put_f16(y[i].d, d);
        uint32_t qh = 0;
        for (int j = 0; j < 16; j++) {
            const int q0 = imin(31, (int)(x[j] * id + 16.5f));
            const int q1 = imin(31, (int)(x[j + 16] * id + 16.5f));
            y[i].qs[j] = (uint8_t)((q0 & 0xF) | ((q1 & 0xF) << 4));
            qh |= (uint32_t)(q0 >> 4) << j;
            qh |= (uint32_t)(q1 >> 4) << (j + 16);
        }
        blk_put_u32(y[i].qh, qh);
    }
}

static void q_q5_1(const float *x, void *dst, int64_t nb) {
    blk_q5_1 *y = dst;
    for (int64_t i = 0; i < nb; i++, x += 32) {
        float min = FLT_MAX, max = -FLT_MAX;
        for (int j = 0; j < 32; j++) {
            if (x[j] < min) min = x[j];
            if (x[j] > max) max = x[j];
        }
        const float d = (max - min) / 31;
        const float id = d ? 1.0f / d : 0.0f;
        blk_put_f16(y[i].d, d);
        blk_put_f16(y[i].m, min);
        uint32_t qh = 0;
        for (int j = 0; j < 16; j++) {
            const int q0 = imin(31, (int)((x[j] - min) * id + 0.5f)); /* ggml: no clamp, never > 31 */
            const int q1 = imin(31, (int)((x[j + 16] - min) * id + 0.5f));
            y[i].qs[j] = (uint8_t)((q0 & 0xF) | ((q1 & 0xF) << 4));
            qh |= (uint32_t)(q0 >> 4) << j;
            qh |= (uint32_t)(q1 >> 4) << (j + 16);
        }
        blk_put_u32(y[i].qh, qh);
    }
}

static void q_q8_0(const float *x, void *dst, int64_t nb) {
    blk_q8_0 *y = dst;
    for (int64_t i = 0; i < nb; i++, x += 32) {
        float amax = 0.0f;
        for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(x[j]));
        const float d = amax / 127;
        const float id = d ? 1.0f / d : 0.0f;
        blk_put_f16(y[i].d, d);
        for (int j = 0; j < 32; j++) y[i].qs[j] = round_i8(x[j] * id);
    }
}

static void q_q8_1(const float *x, void *dst, int64_t nb) {
    blk_q8_1 *y = dst;
    for (int64_t i = 0; i < nb; i++, x += 32) {
        float amax = 0.0f;
        for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(x[j]));
        const float d = amax / 127;
        const float id = d ? 1.0f / d : 0.0f;
        blk_put_f16(y[i].d, d);
        int sum = 0;
        for (int j = 0; j < 32; j++) {
            y[i].qs[j] = round_i8(x[j] * id);
            sum += y[i].qs[j];
        }
        blk_put_f16(y[i].s, sum * d);
    }
}

/* ---- K-quant helpers (ggml's make_*_quants) -------------------------------------------------- */

/* Symmetric: L[i] in [0, 2*nmax), value = scale * (L[i] - nmax). Weighted (w = x^2) least squares
 * over 19 candidate scales around -nmax/max. (ggml's make_qx_quants, rmse_type 1, no weights.) */
static float make_qx_quants(int n, int nmax, const float *x, int8_t *L) {
    float max = 0.0f, amax = 0.0f;
    for (int i = 0; i < n; i++) {
        const float ax = fabsf(x[i]);
        if (ax > amax) { amax = ax; max = x[i]; }
    }
    if (amax < GROUP_MAX_EPS) {
        for (int i = 0; i < n; i++) L[i] = 0;
        return 0.0f;
    }
    float iscale = -nmax / max;
    float sumlx = 0.0f, suml2 = 0.0f;
    for (int i = 0; i < n; i++) {
        const int l = imax(-nmax, imin(nmax - 1, nearest_int(iscale * x[i])));
        L[i] = (int8_t)(l + nmax);
        const float w = x[i] * x[i];
        sumlx += w * x[i] * l;
        suml2 += w * l * l;
    }
    float scale = suml2 ? sumlx / suml2 : 0.0f;
    float best = scale * sumlx;
    for (int is = -9; is <= 9; is++) {
        if (is == 0) continue;
        iscale = -(nmax + 0.1f * is) / max;
        sumlx = suml2 = 0.0f;
        for (int i = 0; i < n; i++) {
            const int l = imax(-nmax, imin(nmax - 1, nearest_int(iscale * x[i])));
            const float w = x[i] * x[i];
            sumlx += w * x[i] * l;
            suml2 += w * l * l;
        }
        if (suml2 > 0 && sumlx * sumlx > best * suml2) {
            for (int i = 0; i < n; i++) {
                L[i] = (int8_t)(nmax + imax(-nmax, imin(nmax - 1, nearest_int(iscale * x[i]))));
            }
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    return scale;
}

/* Symmetric 3-bit with iterative refinement (ggml's make_q3_quants, do_rmse = true). */
static float make_q3_quants(int n, int nmax, const float *x, int8_t *L) {
    float max = 0.0f, amax = 0.0f;
    for (int i = 0; i < n; i++) {
        const float ax = fabsf(x[i]);
        if (ax > amax) { amax = ax; max = x[i]; }
    }
    if (amax < GROUP_MAX_EPS) {
        for (int i = 0; i < n; i++) L[i] = 0;
        return 0.0f;
    }
    const float iscale = -nmax / max;
    float sumlx = 0.0f, suml2 = 0.0f;
    for (int i = 0; i < n; i++) {
        const int l = imax(-nmax, imin(nmax - 1, nearest_int(iscale * x[i])));
        L[i] = (int8_t)l;
        const float w = x[i] * x[i];
        sumlx += w * x[i] * l;
        suml2 += w * l * l;
    }
    for (int itry = 0; itry < 5; itry++) {
        int n_changed = 0;
        for (int i = 0; i < n; i++) {
            const float w = x[i] * x[i];
            float slx = sumlx - w * x[i] * L[i];
            if (slx > 0) {
                float sl2 = suml2 - w * L[i] * L[i];
                int new_l = nearest_int(x[i] * sl2 / slx);
                new_l = imax(-nmax, imin(nmax - 1, new_l));
                if (new_l != L[i]) {
                    slx += w * x[i] * new_l;
                    sl2 += w * new_l * new_l;
                    if (sl2 > 0 && slx * slx * suml2 > sumlx * sumlx * sl2) {
                        L[i] = (int8_t)new_l;
                        sumlx = slx;
                        suml2 = sl2;
                        n_changed++;
                    }
                }
            }
        }
        if (!n_changed) break;
    }
    for (int i = 0; i < n; i++) L[i] = (int8_t)(L[i] + nmax);
    return suml2 > 0.0f ? sumlx / suml2 : 0.0f;
}

/* Asymmetric: value = scale * L[i] - the_min, L[i] in [0, nmax]; weighted error minimised over
 * nstep+1 candidate scales (ggml's make_qkx2_quants). */
static float make_qkx2_quants(int n, int nmax, const float *x, const float *weights, uint8_t *L,
                              float *the_min, uint8_t *Laux, float rmin, float rdelta, int nstep,
                              bool use_mad) {
    float min = x[0], max = x[0];
    float sum_w = weights[0];
    float sum_x = sum_w * x[0];
    for (int i = 1; i < n; i++) {
        if (x[i] < min) min = x[i];
        if (x[i] > max) max = x[i];
        const float w = weights[i];
        sum_w += w;
        sum_x += w * x[i];
    }
    if (min > 0) min = 0;
    if (max == min) {
        for (int i = 0; i < n; i++) L[i] = 0;
        *the_min = -min;
        return 0.0f;
    }
    float iscale = nmax / (max - min);
    float scale = 1 / iscale;
    float best_error = 0.0f;
    for (int i = 0; i < n; i++) {
        const int l = nearest_int(iscale * (x[i] - min));
        L[i] = (uint8_t)imax(0, imin(nmax, l));
        float diff = scale * L[i] + min - x[i];
        diff = use_mad ? fabsf(diff) : diff * diff;
        best_error += weights[i] * diff;
    }
    if (nstep < 1) {
        *the_min = -min;
        return scale;
    }
    for (int is = 0; is <= nstep; is++) {
        iscale = (rmin + rdelta * is + nmax) / (max - min);
        float sum_l = 0.0f, sum_l2 = 0.0f, sum_xl = 0.0f;
        for (int i = 0; i < n; i++) {
            const int l = imax(0, imin(nmax, nearest_int(iscale * (x[i] - min))));
            Laux[i] = (uint8_t)l;
            const float w = weights[i];
            sum_l += w * l;
            sum_l2 += w * l * l;
            sum_xl += w * l * x[i];
        }
        const float D = sum_w * sum_l2 - sum_l * sum_l;
        if (D > 0) {
            float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
            float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
            if (this_min > 0) {
                this_min = 0;
                this_scale = sum_xl / sum_l2;
            }
            float cur_error = 0.0f;
            for (int i = 0; i < n; i++) {
                float diff = this_scale * Laux[i] + this_min - x[i];
                diff = use_mad ? fabsf(diff) : diff * diff;
                cur_error += weights[i] * diff;
            }
            if (cur_error < best_error) {
                for (int i = 0; i < n; i++) L[i] = Laux[i];
                best_error = cur_error;
                scale = this_scale;
                min = this_min;
            }
        }
    }
    *the_min = -min;
    return scale;
}

/* Packs 8 six-bit scales and mins into Q4_K/Q5_K's 12 bytes (inverse of blk_k4_scale_min). */
static void pack_k4_scales(uint8_t s[12], const uint8_t *ls, const uint8_t *lm) {
    for (int j = 0; j < 8; j++) {
        if (j < 4) {
            s[j] = ls[j];
            s[j + 4] = lm[j];
        } else {
            s[j + 4] = (uint8_t)((ls[j] & 0xF) | ((lm[j] & 0xF) << 4));
            s[j - 4] |= (uint8_t)((ls[j] >> 4) << 6);
            s[j] |= (uint8_t)((lm[j] >> 4) << 6);
        }
    }
}

/* Q4_K / Q5_K: 8 sub-blocks of 32 with an asymmetric fit each, then 6-bit scales and mins
 * relative to their maxima, then the values re-quantized with the final scales.
 * L gets values 0..nmax. */
static void k4_fit(const float *x, int nmax, float rmin, float rdelta, int nstep, uint8_t *L,
                   uint8_t *d_out, uint8_t *dmin_out, uint8_t scales_out[12]) {
    uint8_t Laux[32];
    float weights[32], mins[8], scales[8];
    float max_scale = 0.0f, max_min = 0.0f;
    for (int j = 0; j < 8; j++) {
        float sum_x2 = 0.0f;
        for (int l = 0; l < 32; l++) sum_x2 += x[32 * j + l] * x[32 * j + l];
        const float av_x = sqrtf(sum_x2 / 32);
        for (int l = 0; l < 32; l++) weights[l] = av_x + fabsf(x[32 * j + l]);
        scales[j] = make_qkx2_quants(32, nmax, x + 32 * j, weights, L + 32 * j, &mins[j], Laux, rmin,
                                     rdelta, nstep, false);
        if (scales[j] > max_scale) max_scale = scales[j];
        if (mins[j] > max_min) max_min = mins[j];
    }
    const float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.0f;
    const float inv_min = max_min > 0 ? 63.f / max_min : 0.0f;
    uint8_t ls[8], lm[8];
    for (int j = 0; j < 8; j++) {
        ls[j] = (uint8_t)nearest_int(inv_scale * scales[j]); /* modulo 256 as in ggml */
        lm[j] = (uint8_t)nearest_int(inv_min * mins[j]);
        ls[j] = ls[j] < 63 ? ls[j] : 63;
        lm[j] = lm[j] < 63 ? lm[j] : 63;
    }
    memset(scales_out, 0, 12);
    pack_k4_scales(scales_out, ls, lm);
    blk_put_f16(d_out, max_scale / 63.f);
    blk_put_f16(dmin_out, max_min / 63.f);
    for (int j = 0; j < 8; j++) {
        int sc, mn;
        blk_k4_scale_min(j, scales_out, &sc, &mn);
        const float d = blk_get_f16(d_out) * sc;
        if (!d) continue; /* keeps the fit's L for this sub-block, as ggml does */
        const float dm = blk_get_f16(dmin_out) * mn;
        for (int ii = 0; ii < 32; ii++) {
            const int l = nearest_int((x[32 * j + ii] + dm) / d);
            L[32 * j + ii] = (uint8_t)imax(0, imin(nmax, l));
        }
    }
}

static void q_q4_K(const float *x, void *dst, int64_t nb) {
    blk_q4_K *y = dst;
    uint8_t L[256];
    for (int64_t i = 0; i < nb; i++, x += 256) {
        k4_fit(x, 15, -1.0f, 0.1f, 20, L, y[i].d, y[i].dmin, y[i].scales);
        for (int g = 0; g < 4; g++) {
            for (int l = 0; l < 32; l++) y[i].qs[32 * g + l] = (uint8_t)(L[64 * g + l] | (L[64 * g + 32 + l] << 4));
        }
    }
}

static void q_q5_K(const float *x, void *dst, int64_t nb) {
    blk_q5_K *y = dst;
    uint8_t L[256];
    for (int64_t i = 0; i < nb; i++, x += 256) {
        k4_fit(x, 31, -0.5f, 0.1f, 15, L, y[i].d, y[i].dmin, y[i].scales);
        memset(y[i].qh, 0, 32);
        for (int g = 0; g < 4; g++) {
            for (int l = 0; l < 32; l++) {
                const int l1 = L[64 * g + l], l2 = L[64 * g + 32 + l];
                y[i].qs[32 * g + l] = (uint8_t)((l1 & 0xF) | ((l2 & 0xF) << 4));
                y[i].qh[l] |= (uint8_t)(((l1 >> 4) << (2 * g)) | ((l2 >> 4) << (2 * g + 1)));
            }
        }
    }
}

/* Q2_K/Q3_K 2-bit field packing: element 128h + 32k + l -> bits 2k of qs[32h + l]. */
static void pack_2bit(uint8_t qs[64], const uint8_t *L) {
    for (int h = 0; h < 2; h++) {
        for (int l = 0; l < 32; l++) {
            const uint8_t *p = L + 128 * h + l;
            qs[32 * h + l] = (uint8_t)(p[0] | (p[32] << 2) | (p[64] << 4) | (p[96] << 6));
        }
    }
}

static void q_q2_K(const float *x, void *dst, int64_t nb) {
    blk_q2_K *y = dst;
    uint8_t L[256], Laux[16];
    float weights[16], mins[16], scales[16];
    const float q4scale = 15.f;
    for (int64_t i = 0; i < nb; i++, x += 256) {
        float max_scale = 0.0f, max_min = 0.0f;
        for (int j = 0; j < 16; j++) {
            for (int l = 0; l < 16; l++) weights[l] = fabsf(x[16 * j + l]);
            scales[j] = make_qkx2_quants(16, 3, x + 16 * j, weights, L + 16 * j, &mins[j], Laux, -0.5f,
                                         0.1f, 15, true);
            if (scales[j] > max_scale) max_scale = scales[j];
            if (mins[j] > max_min) max_min = mins[j];
        }
        if (max_scale > 0) {
            const float iscale = q4scale / max_scale;
            for (int j = 0; j < 16; j++) y[i].scales[j] = (uint8_t)nearest_int(iscale * scales[j]);
            blk_put_f16(y[i].d, max_scale / q4scale);
        } else {
            for (int j = 0; j < 16; j++) y[i].scales[j] = 0;
            blk_put_f16(y[i].d, 0.0f);
        }
        if (max_min > 0) {
            const float iscale = q4scale / max_min;
            for (int j = 0; j < 16; j++) y[i].scales[j] |= (uint8_t)(nearest_int(iscale * mins[j]) << 4);
            blk_put_f16(y[i].dmin, max_min / q4scale);
        } else {
            blk_put_f16(y[i].dmin, 0.0f);
        }
        for (int j = 0; j < 16; j++) {
            const float d = blk_get_f16(y[i].d) * (y[i].scales[j] & 0xF);
            if (!d) continue;
            const float dm = blk_get_f16(y[i].dmin) * (y[i].scales[j] >> 4);
            for (int ii = 0; ii < 16; ii++) {
                L[16 * j + ii] = (uint8_t)imax(0, imin(3, nearest_int((x[16 * j + ii] + dm) / d)));
            }
        }
        pack_2bit(y[i].qs, L);
    }
}

static void q_q3_K(const float *x, void *dst, int64_t nb) {
    blk_q3_K *y = dst;
    int8_t L[256];
    float scales[16];
    for (int64_t i = 0; i < nb; i++, x += 256) {
        float max_scale = 0.0f, amax = 0.0f;
        for (int j = 0; j < 16; j++) {
            scales[j] = make_q3_quants(16, 4, x + 16 * j, L + 16 * j);
            const float a = fabsf(scales[j]);
            if (a > amax) { amax = a; max_scale = scales[j]; }
        }
        memset(y[i].scales, 0, 12);
        if (max_scale) {
            const float iscale = -32.f / max_scale;
            for (int j = 0; j < 16; j++) {
                const int l = imax(-32, imin(31, (int8_t)nearest_int(iscale * scales[j]))) + 32;
                if (j < 8) y[i].scales[j] = (uint8_t)(l & 0xF);
                else y[i].scales[j - 8] |= (uint8_t)((l & 0xF) << 4);
                y[i].scales[8 + j % 4] |= (uint8_t)((l >> 4) << (2 * (j / 4)));
            }
            blk_put_f16(y[i].d, 1 / iscale);
        } else {
            blk_put_f16(y[i].d, 0.0f);
        }
        for (int j = 0; j < 16; j++) {
            const float d = blk_get_f16(y[i].d) * (blk_q3k_scale(j, y[i].scales) - 32);
            if (!d) continue;
            for (int ii = 0; ii < 16; ii++) {
                L[16 * j + ii] = (int8_t)(imax(-4, imin(3, nearest_int(x[16 * j + ii] / d))) + 4);
            }
        }
        uint8_t Lu[256];
        memset(y[i].hmask, 0, 32);
        for (int n = 0; n < 256; n++) {
            int l = L[n];
            if (l > 3) {
                y[i].hmask[n % 32] |= (uint8_t)(1u << (n / 32));
                l -= 4;
            }
            Lu[n] = (uint8_t)l;
        }
        pack_2bit(y[i].qs, Lu);
    }
}

static void q_q6_K(const float *x, void *dst, int64_t nb) {
    blk_q6_K *y = dst;
    int8_t L[256];
    float scales[16];
    for (int64_t i = 0; i < nb; i++, x += 256) {
        float max_scale = 0.0f, max_abs_scale = 0.0f;
        for (int ib = 0; ib < 16; ib++) {
            scales[ib] = make_qx_quants(16, 32, x + 16 * ib, L + 16 * ib);
            const float a = fabsf(scales[ib]);
            if (a > max_abs_scale) { max_abs_scale = a; max_scale = scales[ib]; }
        }
        if (max_abs_scale < GROUP_MAX_EPS) {
            memset(&y[i], 0, sizeof y[i]);
            continue;
        }
        const float iscale = -128.f / max_scale;
        blk_put_f16(y[i].d, 1 / iscale);
        for (int ib = 0; ib < 16; ib++) y[i].scales[ib] = (int8_t)imin(127, nearest_int(iscale * scales[ib]));
        for (int j = 0; j < 16; j++) {
            const float d = blk_get_f16(y[i].d) * y[i].scales[j];
            if (!d) continue;
            for (int ii = 0; ii < 16; ii++) {
                L[16 * j + ii] = (int8_t)(imax(-32, imin(31, nearest_int(x[16 * j + ii] / d))) + 32);
            }
        }
        for (int h = 0; h < 2; h++) {
            for (int l = 0; l < 32; l++) {
                const int8_t *p = L + 128 * h + l;
                y[i].ql[64 * h + l] = (uint8_t)((p[0] & 0xF) | ((p[64] & 0xF) << 4));
                y[i].ql[64 * h + 32 + l] = (uint8_t)((p[32] & 0xF) | ((p[96] & 0xF) << 4));
                y[i].qh[32 * h + l] = (uint8_t)((p[0] >> 4) | ((p[32] >> 4) << 2) | ((p[64] >> 4) << 4) | ((p[96] >> 4) << 6));
            }
        }
    }
}

static void q_q8_K(const float *x, void *dst, int64_t nb) {
    blk_q8_K *y = dst;
    for (int64_t i = 0; i < nb; i++, x += 256) {
        float max = 0.0f, amax = 0.0f;
        for (int j = 0; j < 256; j++) {
            const float ax = fabsf(x[j]);
            if (ax > amax) { amax = ax; max = x[j]; }
        }
        if (!amax) {
            memset(&y[i], 0, sizeof y[i]); /* d = 0, qs = 0, bsums = 0 */
            continue;
        }
        const float iscale = -127.f / max;
        for (int j = 0; j < 256; j++) y[i].qs[j] = (int8_t)imin(127, nearest_int(iscale * x[j]));
        for (int j = 0; j < 16; j++) {
            int sum = 0;
            for (int ii = 0; ii < 16; ii++) sum += y[i].qs[16 * j + ii];
            blk_put_i16(y[i].bsums + 2 * j, sum);
        }
        blk_put_f32(y[i].d, 1 / iscale);
    }
}

/* ---- public ------------------------------------------------------------------------------------ */

bool ty_can_quantize(uint32_t type) {
    switch (type) {
    case TY_TYPE_F32: case TY_TYPE_F16: case TY_TYPE_BF16:
    case TY_TYPE_Q4_0: case TY_TYPE_Q4_1: case TY_TYPE_Q5_0: case TY_TYPE_Q5_1:
    case TY_TYPE_Q8_0: case TY_TYPE_Q8_1:
    case TY_TYPE_Q2_K: case TY_TYPE_Q3_K: case TY_TYPE_Q4_K: case TY_TYPE_Q5_K: case TY_TYPE_Q6_K:
    case TY_TYPE_Q8_K:
        return true;
    default:
        return false;
    }
}

void ty_quantize_row(uint32_t type, const float *src, void *dst, int64_t n) {
    const ty_type_info *t = ty_type_get(type);
    if (!t || n <= 0 || n % t->block_size != 0) return;
    const int64_t nb = n / t->block_size;
    uint8_t *p = dst;
    switch (type) {
    case TY_TYPE_F32: memcpy(dst, src, (size_t)n * sizeof(float)); break;
    case TY_TYPE_F16:
        for (int64_t i = 0; i < n; i++) blk_put_f16(p + 2 * i, src[i]);
        break;
    case TY_TYPE_BF16:
        for (int64_t i = 0; i < n; i++) {
            const uint16_t b = ty_f32_to_bf16(src[i]);
            p[2 * i] = (uint8_t)b;
            p[2 * i + 1] = (uint8_t)(b >> 8);
        }
        break;
    case TY_TYPE_Q4_0: q_q4_0(src, dst, nb); break;
    case TY_TYPE_Q4_1: q_q4_1(src, dst, nb); break;
    case TY_TYPE_Q5_0: q_q5_0(src, dst, nb); break;
    case TY_TYPE_Q5_1: q_q5_1(src, dst, nb); break;
    case TY_TYPE_Q8_0: q_q8_0(src, dst, nb); break;
    case TY_TYPE_Q8_1: q_q8_1(src, dst, nb); break;
    case TY_TYPE_Q2_K: q_q2_K(src, dst, nb); break;
    case TY_TYPE_Q3_K: q_q3_K(src, dst, nb); break;
    case TY_TYPE_Q4_K: q_q4_K(src, dst, nb); break;
    case TY_TYPE_Q5_K: q_q5_K(src, dst, nb); break;
    case TY_TYPE_Q6_K: q_q6_K(src, dst, nb); break;
    case TY_TYPE_Q8_K: q_q8_K(src, dst, nb); break;
    default: break;
    }
}
