/* cuda_matvec_q8.cu - decode's matrix-vector product on the fast path: the activation vector is
 * quantized to 8 bits exactly as the CPU's fast path quantizes it (Q8_0 for Q4_0/Q8_0 weights,
 * Q8_K for K-quants: ty_quantize_row's float operations and rounding, bit for bit), then each
 * weight block is multiplied with integer dot products (dp4a, 4 byte products per instruction).
 * The integer sums per block are the CPU kernels' integers exactly; only the float combination
 * of the blocks runs in another order. So the GPU's fast path and the CPU's agree to float
 * rounding, and both differ from the exact path by the activations' 8-bit rounding.
 *
 * Activation layout (cu_q8act, device memory sized at reserve for the widest matmul input): see
 * cuda_q8act.cuh, which also holds the quantizers. An input that rmsnorm or swiglu already quantized
 * (cu_xq_holds) is not quantized again.
 *
 * Matrix-vector: one warp per row, QV_WARPS rows per block. Q4_0/Q8_0/Q6_K rows are cut into
 * tasks (a Q4_0/Q8_0 block, 64 elements of a Q6_K block); lane i takes tasks i, i+32, ..., so a
 * warp's loads cover consecutive bytes of the row. Q4_K/Q5_K use the k-sliced kernel below. Lane
 * sums are float, then a shuffle reduction. */
#include "backend/cuda/cuda_common.cuh"
#include "backend/cuda/cuda_q8act.cuh"
#include "backend/cuda/cuda_quant.cuh"

#define QV_WARPS 4
#define FULL_MASK 0xffffffffu

/* ---- quantizing the activations (one token per blockIdx.y) ------------------------------------ */

/* Q8_0: one warp per 32 elements. */
__global__ void k_quantize_q8_0(const float *__restrict__ x, int ne0, cu_q8act a0) {
    const cu_q8act a = q8_row(a0, blockIdx.y);
    x += (int64_t)blockIdx.y * ne0;
    const int g = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32, lane = threadIdx.x % 32;
    if (g * 32 >= ne0) return;
    q8_0_quantize_warp(x[g * 32 + lane], lane, a, g);
}

/* Q8_K: one warp per 256 elements, 8 per lane. */
__global__ void k_quantize_q8_K(const float *__restrict__ x, int ne0, cu_q8act a0) {
    const cu_q8act a = q8_row(a0, blockIdx.y);
    x += (int64_t)blockIdx.y * ne0;
    const int b = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32, lane = threadIdx.x % 32;
    if (b * 256 >= ne0) return;
    const float4 *xv = (const float4 *)(x + b * 256 + lane * 8);
    const float4 v0 = xv[0], v1 = xv[1];
    const float v[8] = {v0.x, v0.y, v0.z, v0.w, v1.x, v1.y, v1.z, v1.w};
    q8_K_quantize_warp(v, lane, a, b);
}

/* ---- per-type tasks ------------------------------------------------------------------------- */

/* The dot product of one task of weight block `w` (block index b of the row) with the
 * activations; TASKS tasks per block. */
template <int T> struct q8task;

__device__ __forceinline__ int4 ld_i4(const int8_t *p) { return *(const int4 *)p; }
#define I4(v, i) ((i) == 0 ? (v).x : (i) == 1 ? (v).y : (i) == 2 ? (v).z : (v).w)

/* Q4_0: d (f16), qs[16]: element j is the low nibble of qs[j], element j + 16 the high one; value
 * q - 8. One task per block. Blocks are 18 bytes: 2-byte aligned. */
template <> struct q8task<TY_TYPE_Q4_0> {
    static constexpr int TASKS = 1;
    static __device__ __forceinline__ float dot(const uint8_t *w, int, const cu_q8act &a, int b) {
        uint32_t qs[4];
        ld_bytes_a2<16>(w + 2, qs);
        const int4 y0 = ld_i4(a.q + b * 32), y1 = ld_i4(a.q + b * 32 + 16);
        int sumi = 0, sumy = 0;
#pragma unroll
        for (int i = 0; i < 4; i++) {
            sumi = __dp4a((int)(qs[i] & 0x0F0F0F0Fu), I4(y0, i), sumi);
            sumi = __dp4a((int)((qs[i] >> 4) & 0x0F0F0F0Fu), I4(y1, i), sumi);
            sumy = __dp4a(0x01010101, I4(y0, i), sumy);
            sumy = __dp4a(0x01010101, I4(y1, i), sumy);
        }
        return ld_f16(w) * a.d32[b] * (float)(sumi - 8 * sumy);
    }
};

/* Q8_0: d (f16), qs[32] int8. One task per block; 34-byte blocks, 2-byte aligned. */
template <> struct q8task<TY_TYPE_Q8_0> {
    static constexpr int TASKS = 1;
    static __device__ __forceinline__ float dot(const uint8_t *w, int, const cu_q8act &a, int b) {
        uint32_t qs[8];
        ld_bytes_a2<32>(w + 2, qs);
        const int4 y0 = ld_i4(a.q + b * 32), y1 = ld_i4(a.q + b * 32 + 16);
        int sumi = 0;
#pragma unroll
        for (int i = 0; i < 4; i++) {
            sumi = __dp4a((int)qs[i], I4(y0, i), sumi);
            sumi = __dp4a((int)qs[i + 4], I4(y1, i), sumi);
        }
        return ld_f16(w) * a.d32[b] * (float)sumi;
    }
};

/* The 6-bit scale and min of sub-block j of a Q4_K/Q5_K block (k4_scale_min), from its 12 scale
 * bytes packed in 3 words. */
__device__ __forceinline__ void k4_sc_mn(const uint32_t (&s)[3], int j, int &sc, int &mn) {
    if (j < 4) {
        sc = BYTE(s, j) & 63;
        mn = BYTE(s, j + 4) & 63;
    } else {
        sc = (BYTE(s, j + 4) & 0xF) | ((BYTE(s, j - 4) >> 6) << 4);
        mn = (BYTE(s, j + 4) >> 4) | ((BYTE(s, j) >> 6) << 4);
    }
}

/* Q6_K (210 bytes: ql[128], qh[64], scales[16] int8, d): half h, l = 0..31: elements 128h + 32k + l
 * are the low nibbles of ql[64h + l] (k = 0), ql[64h + 32 + l] (k = 1), their high nibbles (k = 2,
 * 3), with 2 high bits at bits 2k of qh[32h + l]; value q - 32, scale per 16 elements. Task (h, g):
 * l = 16g..16g+15 of half h for all four k (4 scales). Blocks are 2-byte aligned. */
template <> struct q8task<TY_TYPE_Q6_K> {
    static constexpr int TASKS = 4;
    static __device__ __forceinline__ float dot(const uint8_t *w, int t, const cu_q8act &a, int b) {
        const int h = t >> 1, g = t & 1;
        uint32_t A[4], B[4], H[4];
        ld_bytes_a2<16>(w + 64 * h + 16 * g, A);
        ld_bytes_a2<16>(w + 64 * h + 32 + 16 * g, B);
        ld_bytes_a2<16>(w + 128 + 32 * h + 16 * g, H);
        const int8_t *y = a.q + b * 256 + 128 * h + 16 * g;
        const int4 y0 = ld_i4(y), y1 = ld_i4(y + 32), y2 = ld_i4(y + 64), y3 = ld_i4(y + 96);
        int d0 = 0, d1 = 0, d2 = 0, d3 = 0;
#pragma unroll
        for (int i = 0; i < 4; i++) { /* __vsub4: bytewise q - 32, a signed byte in [-32, 31] */
            const uint32_t k0 = (A[i] & 0x0F0F0F0Fu) | ((H[i] << 4) & 0x30303030u);
            const uint32_t k1 = (B[i] & 0x0F0F0F0Fu) | ((H[i] << 2) & 0x30303030u);
            const uint32_t k2 = ((A[i] >> 4) & 0x0F0F0F0Fu) | (H[i] & 0x30303030u);
            const uint32_t k3 = ((B[i] >> 4) & 0x0F0F0F0Fu) | ((H[i] >> 2) & 0x30303030u);
            d0 = __dp4a((int)__vsub4(k0, 0x20202020u), I4(y0, i), d0);
            d1 = __dp4a((int)__vsub4(k1, 0x20202020u), I4(y1, i), d1);
            d2 = __dp4a((int)__vsub4(k2, 0x20202020u), I4(y2, i), d2);
            d3 = __dp4a((int)__vsub4(k3, 0x20202020u), I4(y3, i), d3);
        }
        const int8_t *sc = (const int8_t *)(w + 192 + 8 * h + g); /* scale of 16-group 8h + 2k + g */
        const int S = sc[0] * d0 + sc[2] * d1 + sc[4] * d2 + sc[6] * d3;
        return a.dk[b] * ld_f16(w + 208) * (float)S;
    }
};

/* ---- the matrix-vector kernel ------------------------------------------------------------------ */

/* One warp per row. NT tokens (n of them real): each task's weights are read once from memory (the
 * other tokens' reads of the same bytes hit L1). */
template <int T, int NT>
__global__ void __launch_bounds__(QV_WARPS * 32)
    k_matvec_q8(const uint8_t *__restrict__ W, uint64_t pitch, int nb, int ne1, cu_q8act a, int n, float *__restrict__ y,
                bool add) {
    constexpr int TPB = q8task<T>::TASKS, TS = qt<T>::TS;
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const int row = blockIdx.x * QV_WARPS + warp;
    const bool active = row < ne1;
    const uint8_t *wr = W + (uint64_t)(active ? row : 0) * pitch;
    const int n_tasks = active ? nb * TPB : 0;
    float acc[NT];
#pragma unroll
    for (int t = 0; t < NT; t++) acc[t] = 0.f;
#pragma unroll 2
    for (int k = lane; k < n_tasks; k += 32) {
        const int b = k / TPB;
#pragma unroll
        for (int t = 0; t < NT; t++) acc[t] += q8task<T>::dot(wr + (uint64_t)b * TS, k % TPB, q8_row(a, t), b);
    }
#pragma unroll
    for (int t = 0; t < NT; t++) {
#pragma unroll
        for (int off = 16; off > 0; off >>= 1) acc[t] += __shfl_xor_sync(FULL_MASK, acc[t], off);
        if (lane == 0 && active && t < n) cu_mm_store(y + (int64_t)t * ne1 + row, acc[t], add);
    }
}

/* Q4_K and Q5_K, k-sliced: a warp walks its row 512 elements (two blocks) per step, lane L taking
 * elements 16 (L % 16) .. + 15 of block 2 step + L / 16. Every load of a step is then (nearly)
 * coalesced: the activations are 512 contiguous bytes, the 16 lanes of a block read its 128
 * quant bytes (two lanes share each 16, one using the low nibbles, one the high) and all read
 * its 16-byte header. A lane's elements lie in one sub-block `sub` (its scale and min) and one
 * Q8_K 16-sum. Four steps are unrolled so that a warp keeps ~1 KiB of loads in flight. Float
 * partial sums per 16 elements: not the CPU's integer-per-block order, within float rounding. */
#ifndef K45_UNROLL
#define K45_UNROLL 4 /* steps whose loads a warp issues together */
#endif
#ifndef K45_SPLIT
#define K45_SPLIT 1 /* warps sharing one row (steps dealt round-robin, sums joined in shared memory) */
#endif

template <int T, int NT>
__global__ void __launch_bounds__(QV_WARPS * 32)
    k_matvec_q8_k45(const uint8_t *__restrict__ W, uint64_t pitch, int nb, int ne1, cu_q8act a, int n, float *__restrict__ y,
                    bool add) {
    constexpr int TS = qt<T>::TS, QS = T == TY_TYPE_Q5_K ? 48 : 16;
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, part = warp % K45_SPLIT;
    const int row = blockIdx.x * (QV_WARPS / K45_SPLIT) + warp / K45_SPLIT;
    const bool active = row < ne1;
    const uint8_t *wr = W + (uint64_t)(active ? row : 0) * pitch;
    const int e0 = 16 * (lane % 16), j = e0 / 64, hi = (e0 / 32) & 1, l0 = e0 % 32, sub = 2 * j + hi;
    const int bo = lane / 16;
    float acc[NT];
#pragma unroll
    for (int t = 0; t < NT; t++) acc[t] = 0.f;
    const int steps = active ? (nb + 1) / 2 : 0;
    constexpr int unroll = K45_UNROLL;
#pragma unroll unroll
    for (int st = part; st < steps; st += K45_SPLIT) {
        /* an odd block count leaves the last step's upper half-warp idle: it reads block nb - 1
         * again (unconditional loads can all be issued up front) and adds nothing */
        const int b = min(2 * st + bo, nb - 1);
        const float keep = 2 * st + bo < nb ? 1.f : 0.f;
        const uint8_t *blk = wr + (uint64_t)b * TS;
        const uint4 hd = *(const uint4 *)blk;
        const uint4 q = *(const uint4 *)(blk + QS + 32 * j + l0);
        uint4 h5 = make_uint4(0, 0, 0, 0);
        if (T == TY_TYPE_Q5_K) h5 = *(const uint4 *)(blk + 16 + l0); /* qh[l]: bit sub = 5th bit */
        const uint32_t qw[4] = {q.x, q.y, q.z, q.w}, hw[4] = {h5.x, h5.y, h5.z, h5.w};
        uint32_t wv[4];
#pragma unroll
        for (int i = 0; i < 4; i++) {
            wv[i] = (qw[i] >> (4 * hi)) & 0x0F0F0F0Fu;
            if (T == TY_TYPE_Q5_K) wv[i] |= ((hw[i] >> sub) & 0x01010101u) << 4;
        }
        const uint32_t sw[3] = {hd.y, hd.z, hd.w};
        int sc, mn;
        k4_sc_mn(sw, sub, sc, mn);
        const __half2 dm = *(const __half2 *)&hd.x;
        const float d = keep * __low2float(dm), dmin = keep * __high2float(dm);
#pragma unroll
        for (int t = 0; t < NT; t++) {
            const cu_q8act at = q8_row(a, t);
            const int4 yv = *(const int4 *)(at.q + b * 256 + e0);
            const int yw[4] = {yv.x, yv.y, yv.z, yv.w};
            int dot = 0;
#pragma unroll
            for (int i = 0; i < 4; i++) dot = __dp4a((int)wv[i], yw[i], dot);
            acc[t] += at.dk[b] * (d * (float)(sc * dot) - dmin * (float)(mn * at.s16[b * 16 + e0 / 16]));
        }
    }
#pragma unroll
    for (int t = 0; t < NT; t++)
#pragma unroll
        for (int off = 16; off > 0; off >>= 1) acc[t] += __shfl_xor_sync(FULL_MASK, acc[t], off);
    if (K45_SPLIT > 1) {
        __shared__ float part_sum[QV_WARPS][NT];
        if (lane == 0)
#pragma unroll
            for (int t = 0; t < NT; t++) part_sum[warp][t] = acc[t];
        __syncthreads();
        if (part != 0) return;
        for (int p = 1; p < K45_SPLIT; p++)
#pragma unroll
            for (int t = 0; t < NT; t++) acc[t] += part_sum[warp + p][t];
    }
    if (lane == 0 && active)
#pragma unroll
        for (int t = 0; t < NT; t++)
            if (t < n) cu_mm_store(y + (int64_t)t * ne1 + row, acc[t], add);
}

/* ---- launcher ---------------------------------------------------------------------------------- */

bool cu_matvec_q8_supported(uint32_t type) { return cu_act_format(type) != CU_ACT_NONE; }

int cu_act_format(uint32_t type) {
    switch (type) {
    case TY_TYPE_Q4_0: case TY_TYPE_Q8_0: return CU_ACT_Q8_0;
    case TY_TYPE_Q4_K: case TY_TYPE_Q5_K: case TY_TYPE_Q6_K: return CU_ACT_Q8_K;
    default: return CU_ACT_NONE;
    }
}

template <int T, int NT>
static void launch_nt(cuda_backend *c, const cu_weight *w, int nb, int n, float *y, bool add) {
    const int ne1 = (int)w->ne1;
    if constexpr (T == TY_TYPE_Q4_K || T == TY_TYPE_Q5_K) {
        const int krows = QV_WARPS / K45_SPLIT;
        k_matvec_q8_k45<T, NT><<<(unsigned)((ne1 + krows - 1) / krows), QV_WARPS * 32, 0, c->stream>>>(
            w->dev, w->pitch, nb, ne1, c->xq, n, y, add);
    } else {
        k_matvec_q8<T, NT><<<(unsigned)((ne1 + QV_WARPS - 1) / QV_WARPS), QV_WARPS * 32, 0, c->stream>>>(
            w->dev, w->pitch, nb, ne1, c->xq, n, y, add);
    }
}

template <int T> static void launch_type(cuda_backend *c, const cu_weight *w, int nb, int n, float *y, bool add) {
    if (n == 1) launch_nt<T, 1>(c, w, nb, n, y, add);
    else if (n == 2) launch_nt<T, 2>(c, w, nb, n, y, add);
    else if (n <= 4) launch_nt<T, 4>(c, w, nb, n, y, add);
    else if (n <= 8) launch_nt<T, 8>(c, w, nb, n, y, add);
    else launch_nt<T, 16>(c, w, nb, n, y, add);
}

void cu_launch_matvec_q8(cuda_backend *c, const cu_weight *w, const float *x, int64_t n, float *y, bool add) {
    const int ne0 = (int)w->ne0;
    const int act = cu_act_format(w->type);
    if (!cu_xq_fits(c, act, ne0, n)) {
        cu_fail(c, "matmul: %lld tokens of %d elements do not fit the 8-bit activation buffer (%lld)", (long long)n, ne0,
                (long long)c->xq_cap);
        return;
    }
    if (!cu_xq_holds(c, x, ne0, n, act)) {
        const int warps = 8, groups = ne0 / (act == CU_ACT_Q8_K ? 256 : 32);
        const dim3 qgrid((unsigned)((groups + warps - 1) / warps), (unsigned)n);
        if (act == CU_ACT_Q8_K) k_quantize_q8_K<<<qgrid, warps * 32, 0, c->stream>>>(x, ne0, c->xq);
        else k_quantize_q8_0<<<qgrid, warps * 32, 0, c->stream>>>(x, ne0, c->xq);
        cu_xq_set(c, x, ne0, n, act);
        c->n_act_quant += n;
    }
    const int nb = ne0 / (act == CU_ACT_Q8_K ? 256 : 32);
    switch (w->type) {
    case TY_TYPE_Q4_0: launch_type<TY_TYPE_Q4_0>(c, w, nb, (int)n, y, add); break;
    case TY_TYPE_Q8_0: launch_type<TY_TYPE_Q8_0>(c, w, nb, (int)n, y, add); break;
    case TY_TYPE_Q4_K: launch_type<TY_TYPE_Q4_K>(c, w, nb, (int)n, y, add); break;
    case TY_TYPE_Q5_K: launch_type<TY_TYPE_Q5_K>(c, w, nb, (int)n, y, add); break;
    case TY_TYPE_Q6_K: launch_type<TY_TYPE_Q6_K>(c, w, nb, (int)n, y, add); break;
    default: cu_fail(c, "matmul: no 8-bit kernel for %s", ty_type_name(w->type));
    }
}
