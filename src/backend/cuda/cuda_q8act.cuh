/* cuda_q8act.cuh - the 8-bit activations of the fast matrix-vector path (cu_q8act): their layout and
 * the warp-level quantizers that write them, exactly as the CPU's ty_quantize_row writes Q8_0 and
 * Q8_K (same float operations, same rounding).
 *
 * Shared by the matmul's own quantize kernels (cuda_matvec_q8.cu) and by the ops that quantize their
 * output on the way for the next matmul (rmsnorm, swiglu: cuda_ops.cu; attention's combine:
 * cuda_attention.cu). Both run this same code, so a fused quantization writes the bytes the matmul
 * would have written.
 *
 * Layout, per token row t (q8_row): stride = c->xq_cap elements (a multiple of 256)
 *   q[e]      int8, element e
 *   d32[g]    Q8_0 scale of 32-group g, the f16-rounded value as float
 *   dk[b]     Q8_K scale of 256-block b (float)
 *   s16[h]    Q8_K: sum of q over 16-group h (Q8_K's bsums)
 * A row holds one format at a time (cuda_backend.xq_fmt says which). */
#ifndef TY_CUDA_Q8ACT_CUH
#define TY_CUDA_Q8ACT_CUH

#include "backend/cuda/cuda_common.cuh"

/* The activations of token t. */
__device__ __forceinline__ cu_q8act q8_row(const cu_q8act &a, int t) {
    const int st = a.stride;
    return cu_q8act{a.q + (int64_t)t * st, a.d32 + t * (st / 32), a.dk + t * (st / 256), a.s16 + t * (st / 16), st};
}

/* Q8_0 of 32-group g of row a, as q_q8_0; one warp, lane i holding element 32 g + i. */
__device__ __forceinline__ void q8_0_quantize_warp(float v, int lane, const cu_q8act &a, int g) {
    float amax = fabsf(v);
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, off));
    const float d = __fdiv_rn(amax, 127.f);
    const float id = d != 0.f ? __fdiv_rn(1.f, d) : 0.f;
    const int r = (int)roundf(__fmul_rn(v, id));
    a.q[g * 32 + lane] = (int8_t)max(-128, min(127, r));
    if (lane == 0) a.d32[g] = __half2float(__float2half_rn(d));
}

/* The same Q8_0 with 8 consecutive elements per lane: the 4 lanes of a quad hold 32-group g (lane % 4
 * holding elements 8 (lane % 4) ..). Same operations, same bytes. All 32 lanes call it; only quads
 * with `in` store. */
__device__ __forceinline__ void q8_0_quantize_quad(const float (&v)[8], int lane, const cu_q8act &a, int g, bool in) {
    float amax = fabsf(v[0]); /* as the warp version: an all-NaN group keeps NaN */
#pragma unroll
    for (int j = 1; j < 8; j++) amax = fmaxf(amax, fabsf(v[j]));
    amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, 1));
    amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, 2));
    const float d = __fdiv_rn(amax, 127.f);
    const float id = d != 0.f ? __fdiv_rn(1.f, d) : 0.f;
    uint32_t packed[2] = {0, 0};
#pragma unroll
    for (int j = 0; j < 8; j++) {
        const int r = max(-128, min(127, (int)roundf(__fmul_rn(v[j], id))));
        packed[j / 4] |= (uint32_t)(r & 0xFF) << (8 * (j % 4));
    }
    if (!in) return;
    *(uint2 *)(a.q + g * 32 + (lane % 4) * 8) = make_uint2(packed[0], packed[1]);
    if (lane % 4 == 0) a.d32[g] = __half2float(__float2half_rn(d));
}

/* Q8_K of 256-block b of row a, as q_q8_K; one warp, lane i holding elements 256 b + 8 i .. + 7.
 * The scale comes from the first element of largest magnitude (its sign included), found by a
 * (magnitude, -index) maximum. */
__device__ __forceinline__ void q8_K_quantize_warp(const float (&v)[8], int lane, const cu_q8act &a, int b) {
    float amax = 0.f, mx = 0.f;
    int idx = 1 << 30;
#pragma unroll
    for (int j = 0; j < 8; j++) {
        const float ax = fabsf(v[j]);
        if (ax > amax) { amax = ax; mx = v[j]; idx = lane * 8 + j; }
    }
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) {
        const float oa = __shfl_xor_sync(0xffffffffu, amax, off), om = __shfl_xor_sync(0xffffffffu, mx, off);
        const int oi = __shfl_xor_sync(0xffffffffu, idx, off);
        if (oa > amax || (oa == amax && oi < idx)) { amax = oa; mx = om; idx = oi; }
    }
    uint32_t packed[2] = {0, 0};
    int s = 0;
    if (amax != 0.f) {
        const float iscale = __fdiv_rn(-127.f, mx);
#pragma unroll
        for (int j = 0; j < 8; j++) {
            const int q = min(127, __float2int_rn(__fmul_rn(iscale, v[j])));
            s += q;
            packed[j / 4] |= (uint32_t)(q & 0xFF) << (8 * (j % 4));
        }
        if (lane == 0) a.dk[b] = __fdiv_rn(1.f, iscale);
    } else if (lane == 0) {
        a.dk[b] = 0.f;
    }
    *(uint2 *)(a.q + b * 256 + lane * 8) = make_uint2(packed[0], packed[1]);
    s += __shfl_xor_sync(0xffffffffu, s, 1);
    if (lane % 2 == 0) a.s16[b * 16 + lane / 2] = s;
}

#endif
