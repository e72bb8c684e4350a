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
 * Matrix-vector: a warp computes R whole rows (R = 2: the activations each lane loads serve both,
 * and a 4096-row matrix is 512 blocks, one wave on an H100; at one row per warp the Q6_K kernel's
 * 1024 blocks were 924 per wave, and the last 100 took as long as the first 924; but R = 1 for rows
 * wider than 4096 and for launches (or a two-type launch's type) of at most 2048 rows, see
 * rows_per_warp). Q4_K/Q5_K have
 * their own kernel (64 elements per lane, 8 whole blocks per warp step); Q4_0/Q8_0/Q6_K rows are cut into
 * tasks (a Q4_0/Q8_0 block, 64 elements of a Q6_K block), lane i taking tasks i, i+32, ..., so a
 * warp's loads cover consecutive bytes of the row. Lane sums are float, then a shuffle reduction;
 * the order of the float operations does not depend on the number of tokens, so a batch gives
 * each token the bits of decoding it alone.
 *
 * One launch may multiply up to CU_MV_JOBS matrices of the same input (mv_jobs: q, k and v, kept
 * together by cu_mv_defer in cuda_backend.cu), so that they ramp up and drain once. The kernels are
 * launched with PDL (cuda_common.cuh). (Prefetching each warp's first weight bytes to L2 before the
 * PDL wait was tried and cost 3-9% of tg128: docs/cuda-notes.md.) */
#include "backend/cuda/cuda_matvec.cuh"
#include "backend/cuda/cuda_q8act.cuh"
#include "backend/cuda/cuda_quant.cuh"

#define QV_WARPS 4 /* warps per block */
#define QV_ROWS 2  /* rows per warp (R) */

/* ---- quantizing the activations (one token per blockIdx.y) ------------------------------------ */

/* Q8_0: one warp per 32 elements. */
__global__ void k_quantize_q8_0(const float *__restrict__ x, int ne0, cu_q8act a0) {
    cu_pdl_wait();
    cu_pdl_trigger();
    const cu_q8act a = q8_row(a0, blockIdx.y);
    x += (int64_t)blockIdx.y * ne0;
    const int g = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32, lane = threadIdx.x % 32;
    if (g * 32 >= ne0) return;
    q8_0_quantize_warp(x[g * 32 + lane], lane, a, g);
}

/* Q8_K: one warp per 256 elements, 8 per lane. */
__global__ void k_quantize_q8_K(const float *__restrict__ x, int ne0, cu_q8act a0) {
    cu_pdl_wait();
    cu_pdl_trigger();
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

/* The N bytes at p (2-byte aligned: Q8_0 and Q6_K blocks are 34 and 210 bytes) as N / 4 words, from
 * the aligned 16-byte vectors at p - s, p - s + 16, ... (s = p % 16; the last only when s > 0):
 * N / 16 + 1 wide loads and a few selects instead of N / 2 two-byte loads (tg128: Q6_K +1.6%, Q8_0
 * +2.6%; Q4_0's 16 bytes lost 2.5%, so it keeps ld_bytes_a2). Each load stays within the aligned 16
 * bytes around a byte of [p, p + N), so it never leaves a row's allocation (rows are padded to 16
 * bytes, cuda_weights.cu). */
template <int N> __device__ __forceinline__ void ld_a2(const uint8_t *p, uint32_t (&w)[N / 4]) {
    static_assert(N >= 16 && N % 16 == 0, "whole 16-byte vectors");
    constexpr int NW = N / 4;
    const uintptr_t ad = (uintptr_t)p;
    const uint4 *v = (const uint4 *)(ad & ~(uintptr_t)15);
    const int s = (int)(ad & 15);
    uint32_t x[NW + 4], u[NW + 2], t[NW + 1];
#pragma unroll
    for (int i = 0; i < N / 16; i++) {
        const uint4 vi = v[i];
        x[4 * i] = vi.x, x[4 * i + 1] = vi.y, x[4 * i + 2] = vi.z, x[4 * i + 3] = vi.w;
    }
    const uint4 vl = s ? v[N / 16] : v[N / 16 - 1];
    x[NW] = vl.x, x[NW + 1] = vl.y, x[NW + 2] = vl.z, x[NW + 3] = vl.w;
#pragma unroll
    for (int i = 0; i < NW + 2; i++) u[i] = (s & 8) ? x[i + 2] : x[i];
#pragma unroll
    for (int i = 0; i < NW + 1; i++) t[i] = (s & 4) ? u[i + 1] : u[i];
#pragma unroll
    for (int i = 0; i < NW; i++) w[i] = __funnelshift_r(t[i], t[i + 1], 8 * (s & 3));
}


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
        ld_a2<32>(w + 2, qs);
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

/* Q6_K (210 bytes: ql[128], qh[64], scales[16] int8, d): half h, l = 0..31: elements 128h + 32k + l
 * are the low nibbles of ql[64h + l] (k = 0), ql[64h + 32 + l] (k = 1), their high nibbles (k = 2,
 * 3), with 2 high bits at bits 2k of qh[32h + l]; value q - 32, scale per 16 elements. Task (h, g):
 * l = 16g..16g+15 of half h for all four k (4 scales). Blocks are 2-byte aligned. */
template <> struct q8task<TY_TYPE_Q6_K> {
    static constexpr int TASKS = 4;
    static __device__ __forceinline__ float dot(const uint8_t *w, int t, const cu_q8act &a, int b) {
        const int h = t >> 1, g = t & 1;
        uint32_t A[4], B[4], H[4];
        ld_a2<16>(w + 64 * h + 16 * g, A);
        ld_a2<16>(w + 64 * h + 32 + 16 * g, B);
        ld_a2<16>(w + 128 + 32 * h + 16 * g, H);
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
        return q6_term(a.dk[b], ld_f16(w + 208), S);
    }
};

/* ---- the matrix-vector kernels ----------------------------------------------------------------- */

/* The end of a matvec warp: each lane's partial sums added over the warp (lanes LO apart and more:
 * LO = 4 when the lanes of a quad already hold the same sums), and lane 0 stores the rows that exist
 * (row0 + r < m.ne1) for the real tokens (t < n). */
template <int R, int NT, int LO = 1>
__device__ __forceinline__ void mv_store(float (&acc)[R][NT], const mv_job &m, int lane, int row0, int n) {
#pragma unroll
    for (int r = 0; r < R; r++)
#pragma unroll
        for (int t = 0; t < NT; t++) {
#pragma unroll
            for (int off = 16; off >= LO; off >>= 1) acc[r][t] = __fadd_rn(acc[r][t], __shfl_xor_sync(FULL_MASK, acc[r][t], off));
            if (lane == 0 && row0 + r < m.ne1 && t < n) cu_mm_store(m.y + (int64_t)t * m.ne1 + row0 + r, acc[r][t], m.add);
        }
}

/* mv_store for rows that S warps of the block share (warps S g .. S g + S - 1 hold parts of rows
 * row0..): each warp's sums over its lanes, then warp S g adds the S parts in warp order. */
template <int R, int NT, int S>
__device__ __forceinline__ void mv_store_split(float (&acc)[R][NT], const mv_job &m, int lane, int row0, int n) {
    __shared__ float part[QV_WARPS][R * NT];
    const int warp = threadIdx.x / 32;
#pragma unroll
    for (int r = 0; r < R; r++)
#pragma unroll
        for (int t = 0; t < NT; t++) {
#pragma unroll
            for (int off = 16; off >= 1; off >>= 1) acc[r][t] = __fadd_rn(acc[r][t], __shfl_xor_sync(FULL_MASK, acc[r][t], off));
            if (lane == 0) part[warp][r * NT + t] = acc[r][t];
        }
    __syncthreads();
    if (warp % S) return;
    for (int i = lane; i < R * NT; i += 32) {
        const int r = i / NT, t = i % NT;
        float v = part[warp][i];
#pragma unroll
        for (int k = 1; k < S; k++) v = __fadd_rn(v, part[warp + k][i]);
        if (row0 + r < m.ne1 && t < n) cu_mm_store(m.y + (int64_t)t * m.ne1 + row0 + r, v, m.add);
    }
}

/* R rows per warp group of S warps, NT tokens (n of them real): each task's weights are read once
 * from memory (the other tokens' reads of the same bytes hit L1). Rows past ne1 read row ne1 - 1 and
 * store nothing. S = 2 (one-task-per-block types only): the two warps of a group take alternate runs
 * of 32 tasks of the same rows, so that a launch of few rows has twice the warps keeping loads in
 * flight. */
template <int T, int NT, int R, int S = 1>
__device__ __forceinline__ void mv_q8(const mv_job &m, int nb, const cu_q8act &a, int n) {
    constexpr int TPB = q8task<T>::TASKS, TS = qt<T>::TS;
    static_assert(S == 1 || TPB == 1, "K-quant rows keep the canonical order: one warp each");
    const uint8_t *__restrict__ W = m.W;
    const uint64_t pitch = m.pitch;
    const int ne1 = m.ne1;
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const int row0 = (m.block * (QV_WARPS / S) + warp / S) * R;
    const uint8_t *wr[R];
#pragma unroll
    for (int r = 0; r < R; r++) wr[r] = W + (uint64_t)min(row0 + r, ne1 - 1) * pitch;
    cu_pdl_wait();
    cu_pdl_trigger();
    float acc[R][NT];
#pragma unroll
    for (int r = 0; r < R; r++)
#pragma unroll
        for (int t = 0; t < NT; t++) acc[r][t] = 0.f;
    if constexpr (TPB == 4) {
        /* K-quant blocks: the canonical order of cuda_matvec.cuh (lane L: quarter L % 4 of block
         * 8 s + L / 4; the quad's terms summed per block), shared with the tensor-core kernels */
        const int steps = row0 < ne1 ? (nb + 7) / 8 : 0;
#pragma unroll 2
        for (int s = 0; s < steps; s++) {
            const int b = 8 * s + lane / 4;
            const bool real = b < nb; /* past the end: block nb - 1 again, adding 0 */
            const int bb = real ? b : nb - 1;
#pragma unroll
            for (int t = 0; t < NT; t++)
#pragma unroll
                for (int r = 0; r < R; r++) {
                    const float x = q8task<T>::dot(wr[r] + (uint64_t)bb * TS, lane % 4, q8_row(a, t), bb);
                    acc[r][t] = __fadd_rn(acc[r][t], quad_sum(real ? x : 0.f));
                }
        }
        mv_store<R, NT, 4>(acc, m, lane, row0, n);
    } else {
        const int n_tasks = row0 < ne1 ? nb * TPB : 0;
#pragma unroll 2
        for (int k = lane + 32 * (warp % S); k < n_tasks; k += 32 * S) {
            const int b = k / TPB;
#pragma unroll
            for (int t = 0; t < NT; t++)
#pragma unroll
                for (int r = 0; r < R; r++) acc[r][t] += q8task<T>::dot(wr[r] + (uint64_t)b * TS, k % TPB, q8_row(a, t), b);
        }
        if constexpr (S == 1) mv_store<R, NT>(acc, m, lane, row0, n);
        else mv_store_split<R, NT, S>(acc, m, lane, row0, n);
    }
}

/* Q4_K and Q5_K, 64 elements per lane: a warp walks R rows 8 blocks per step, lane L taking elements
 * 64 j .. 64 j + 63 (j = L % 4) of block 8 step + L / 4 of each row: the 32 quant bytes qs[32 j ..]
 * whose low nibbles are sub-block 2 j and high nibbles sub-block 2 j + 1 (two 16-byte loads), plus
 * the block's 16-byte header (d, dmin, 12 scale bytes; the 4 lanes of a block read the same one).
 * A step reads 8 whole consecutive blocks of each row (1152 contiguous bytes of Q4_K) with few
 * instructions per byte; the activations of a step are loaded once for the R rows. Integer sums per
 * sub-block pair, then one float term per lane and step, summed over the quad (the canonical order of
 * cuda_matvec.cuh). */
/* Steps whose loads a warp issues together: 2 (a whole 4096-element row), but 1 for the one-token
 * kernels of two rows per warp, which the 64-register bound (mv_min_blocks) leaves short of registers
 * for two steps of two rows (tg128, random 7B Q4_K_M: H100 398.5 / 398.5 -> 404.4 / 403.8 with one
 * step everywhere; H200 448.5 / 448.2 -> 451.3 / 453.3 with one step for two rows only; 4 steps:
 * -3%). */
__host__ __device__ constexpr int kq_unroll(int NT, int R) { return R == 2 && NT == 1 ? 1 : 2; }

template <int T, int NT, int R>
__device__ __forceinline__ void mv_q8_kq(const mv_job &m, int nb, const cu_q8act &a, int n) {
    constexpr int TS = qt<T>::TS, QS = T == TY_TYPE_Q5_K ? 48 : 16;
    const uint8_t *__restrict__ W = m.W;
    const uint64_t pitch = m.pitch;
    const int ne1 = m.ne1;
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, j = lane % 4;
    const int row0 = (m.block * QV_WARPS + warp) * R;
    const bool lo = j < 2;
    const int shift = 16 * (j & 1);
    const uint8_t *wr[R];
#pragma unroll
    for (int r = 0; r < R; r++) wr[r] = W + (uint64_t)min(row0 + r, ne1 - 1) * pitch; /* rows past the end: not stored */
    cu_pdl_wait();
    cu_pdl_trigger();
    float acc[R][NT];
#pragma unroll
    for (int r = 0; r < R; r++)
#pragma unroll
        for (int t = 0; t < NT; t++) acc[r][t] = 0.f;
    const int steps = row0 < ne1 ? (nb + 7) / 8 : 0;
    constexpr int unroll = kq_unroll(NT, R);
#pragma unroll unroll
    for (int st = 0; st < steps; st++) {
        /* past the last block (nb not a multiple of 8) a lane reads block nb - 1 again and adds 0 */
        const int b = min(8 * st + lane / 4, nb - 1);
        const bool real = 8 * st + lane / 4 < nb;
        uint4 hd[R], q0[R], q1[R], h0[R], h1[R];
#pragma unroll
        for (int r = 0; r < R; r++) {
            const uint8_t *blk = wr[r] + (uint64_t)b * TS;
            hd[r] = *(const uint4 *)blk;
            q0[r] = *(const uint4 *)(blk + QS + 32 * j);
            q1[r] = *(const uint4 *)(blk + QS + 32 * j + 16);
            if (T == TY_TYPE_Q5_K) { /* qh[l], l = 0..31: bit k is the 5th bit of sub-block k's element l */
                h0[r] = *(const uint4 *)(blk + 16);
                h1[r] = *(const uint4 *)(blk + 32);
            }
        }
#pragma unroll
        for (int t = 0; t < NT; t++) {
            const cu_q8act at = q8_row(a, t);
            const int8_t *yq = at.q + b * 256 + 64 * j;
            const int4 y0 = ld_i4(yq), y1 = ld_i4(yq + 16), y2 = ld_i4(yq + 32), y3 = ld_i4(yq + 48);
            const int4 s16 = *(const int4 *)(at.s16 + b * 16 + 4 * j); /* 16-sums of the 64 elements */
            const int ylo[8] = {y0.x, y0.y, y0.z, y0.w, y1.x, y1.y, y1.z, y1.w};
            const int yhi[8] = {y2.x, y2.y, y2.z, y2.w, y3.x, y3.y, y3.z, y3.w};
            const float dk = at.dk[b];
#pragma unroll
            for (int r = 0; r < R; r++) {
                const uint32_t qw[8] = {q0[r].x, q0[r].y, q0[r].z, q0[r].w, q1[r].x, q1[r].y, q1[r].z, q1[r].w};
                const uint32_t hw[8] = {h0[r].x, h0[r].y, h0[r].z, h0[r].w, h1[r].x, h1[r].y, h1[r].z, h1[r].w};
                int dlo = 0, dhi = 0;
#pragma unroll
                for (int i = 0; i < 8; i++) {
                    uint32_t wl = qw[i] & 0x0F0F0F0Fu, wh = (qw[i] >> 4) & 0x0F0F0F0Fu;
                    if (T == TY_TYPE_Q5_K) {
                        wl |= ((hw[i] >> (2 * j)) & 0x01010101u) << 4;
                        wh |= ((hw[i] >> (2 * j + 1)) & 0x01010101u) << 4;
                    }
                    dlo = __dp4a((int)wl, ylo[i], dlo);
                    dhi = __dp4a((int)wh, yhi[i], dhi);
                }
                int sc0, sc1, mn0, mn1;
                k4_pair(hd[r].y, hd[r].z, hd[r].w, lo, shift, sc0, sc1, mn0, mn1);
                const int sumi = sc0 * dlo + sc1 * dhi;
                const int summ = mn0 * (s16.x + s16.y) + mn1 * (s16.z + s16.w);
                const __half2 dm = *(const __half2 *)&hd[r].x;
                const float x = kq_term(dk, __low2float(dm), __high2float(dm), sumi, summ);
                acc[r][t] = __fadd_rn(acc[r][t], quad_sum(real ? x : 0.f));
            }
        }
    }
    mv_store<R, NT, 4>(acc, m, lane, row0, n);
}

/* Block `m.block` of a matrix of type T: Q4_K/Q5_K's own kernel or the task kernel. */
template <int T, int NT, int R>
__device__ __forceinline__ void mv_any(const mv_job &m, int nb, const cu_q8act &a, int n) {
    if constexpr (T == TY_TYPE_Q4_K || T == TY_TYPE_Q5_K) mv_q8_kq<T, NT, R>(m, nb, a, n);
    else mv_q8<T, NT, R>(m, nb, a, n);
}

/* Blocks per SM that the one-token kernels' registers must allow (__launch_bounds__), 1 for batches:
 * at most 64 registers for the K-quants and Q4_0, 80 for Q8_0. The compiler's own choice for the
 * Q4_K / Q6_K pair kernel (90 registers) was slower than 64; at 80 (6 blocks) Q4_K_M lost 4.6% and
 * Q8_0 gained 1.7%. H100, random 7B, tg128, two rounds against the kernels without the bound: Q4_K_M
 * 392.6 / 392.8 -> 396.9 / 398.7, Q8_0 281.0 / 281.1 -> 285.9 / 285.6, Q4_0 432.2 -> 433.6 / 434.7. */
constexpr int mv_min_blocks(int T, int NT) { return NT > 1 ? 1 : T == TY_TYPE_Q8_0 ? 6 : 8; }

template <int T, int NT, int R>
__global__ void __launch_bounds__(QV_WARPS * 32, mv_min_blocks(T, NT))
    k_matvec_q8(const mv_jobs J, int nb, cu_q8act a, int n) {
    mv_any<T, NT, R>(pick_job(J), nb, a, n);
}

/* Q4_0 with two warps per row group (mv_q8's S = 2). */
template <int T, int NT, int R>
__global__ void __launch_bounds__(QV_WARPS * 32) k_matvec_q8_split(const mv_jobs J, int nb, cu_q8act a, int n) {
    mv_q8<T, NT, R, 2>(pick_job(J), nb, a, n);
}

/* Decode's q and k (Q4_K or Q5_K) and v (Q6_K) of a Q4_K_M / Q5_K_M layer in one launch: blocks
 * [0, blocks1) are J1's, the rest J2's, each computed as in its own launch (same bits). Alone, the
 * 1024-row v was a launch of its own that ramped up and drained for 3.5 MB (ncu, H100: 7 us at
 * 0.5 TB/s, beside 8.5 us for q and k). */
template <int T1, int R1, int T2, int R2>
__global__ void __launch_bounds__(QV_WARPS * 32, mv_min_blocks(T1, 1))
    k_matvec_q8_pair(const mv_jobs J1, const mv_jobs J2, int blocks1, int nb, cu_q8act a) {
    if ((int)blockIdx.x < blocks1) mv_any<T1, 1, R1>(pick_job_at(J1, (int)blockIdx.x), nb, a, 1);
    else mv_any<T2, 1, R2>(pick_job_at(J2, (int)blockIdx.x - blocks1), nb, a, 1);
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

/* Rows per warp: QV_ROWS, but one for rows of more than 4096 elements (w_down's 14336) and for
 * launches of at most 2048 rows of a type (Q4_K_M's Q6_K w_v: 1024 rows): those have few rows for
 * their bytes, and two rows per warp left too few warps to keep the loads in flight (H100, random 7B,
 * tg128: wide rows Q8_0 270 -> 276, Q4_0 402 -> 410, Q4_K_M 372 -> 375; few rows Q4_K_M 375 -> 380;
 * one row per warp for every Q4_K matrix lost 5%). */
static int rows_per_warp(int ne0, int64_t rows) { return ne0 > 4096 || rows <= 2048 ? 1 : QV_ROWS; }

/* Warps per row group (mv_q8's S): 2 for Q4_0 matrices of fewer than c->mv_split_below rows, else 1.
 * S sets the order of a row's float sums, so it depends on the matrix alone: decoding, a batch, and
 * fused or separate launches give the same bits (matrices of two S never share a launch). H100,
 * random 7B, tg128: Q4_0 418 -> 431 tokens/s; Q8_0, split the same way, 280 -> 276: it stays whole. */
static int warps_per_rows(const cuda_backend *c, const cu_weight *w) {
    return w->type == TY_TYPE_Q4_0 && w->ne1 < c->mv_split_below ? 2 : 1;
}

template <int T, int NT, int R>
static void launch_ntr(cuda_backend *c, const mv_jobs &J, int blocks, int nb, int n, int S) {
    if constexpr (T == TY_TYPE_Q4_0) /* the one type that splits (warps_per_rows) */
        if (S == 2) {
            cu_launch(c, k_matvec_q8_split<T, NT, R>, dim3((unsigned)blocks), dim3(QV_WARPS * 32), J, nb, c->xq, n);
            return;
        }
    cu_launch(c, k_matvec_q8<T, NT, R>, dim3((unsigned)blocks), dim3(QV_WARPS * 32), J, nb, c->xq, n);
}

template <int T, int NT>
static void launch_nt(cuda_backend *c, const mv_jobs &J, int blocks, int nb, int n, int R, int S) {
    if (R == 1) launch_ntr<T, NT, 1>(c, J, blocks, nb, n, S);
    else launch_ntr<T, NT, QV_ROWS>(c, J, blocks, nb, n, S);
}

template <int T>
static void launch_type(cuda_backend *c, const mv_jobs &J, int blocks, int nb, int n, int R, int S = 1) {
    if (n == 1) launch_nt<T, 1>(c, J, blocks, nb, n, R, S);
    else if (n == 2) launch_nt<T, 2>(c, J, blocks, nb, n, R, S);
    else if (n <= 4) launch_nt<T, 4>(c, J, blocks, nb, n, R, S);
    else if (n <= 8) launch_nt<T, 8>(c, J, blocks, nb, n, R, S);
    else launch_nt<T, 16>(c, J, blocks, nb, n, R, S);
}

/* Some of a launch's jobs: indices into its w / y / add, all of one weight type. */
struct mv_group {
    int idx[CU_MV_JOBS], k;
};

/* Group g as one mv_jobs of R rows per group of S warps (R from rows_per_warp over the group's rows,
 * S from warps_per_rows; or the tensor-core kernels' rows per block when mma); returns its blocks. */
static int make_jobs(const cuda_backend *c, const cu_weight *const *w, float *const *y, const bool *add,
                     const mv_group &g, bool mma, int &R, int &S, mv_jobs &J) {
    int64_t rows = 0;
    for (int i = 0; i < g.k; i++) rows += w[g.idx[i]]->ne1;
    R = rows_per_warp((int)w[g.idx[0]]->ne0, rows);
    S = mma ? 1 : warps_per_rows(c, w[g.idx[0]]);
    const int rows_per_block = mma ? cu_mma_rows_per_block() : QV_WARPS / S * R;
    int blocks = 0;
    for (int i = 0; i < CU_MV_JOBS; i++) {
        const int j = g.idx[i < g.k ? i : g.k - 1]; /* unused slots: a copy of the last, ending where it ends */
        J.W[i] = w[j]->dev;
        J.y[i] = y[j];
        J.pitch[i] = w[j]->pitch;
        J.ne1[i] = (int)w[j]->ne1;
        J.add[i] = add[j];
        if (i < g.k) blocks += (int)((w[j]->ne1 + rows_per_block - 1) / rows_per_block);
        J.end[i] = blocks;
    }
    return blocks;
}

/* Group g in one launch (the activations already quantized). */
static void launch_group(cuda_backend *c, const cu_weight *const *w, float *const *y, const bool *add,
                         const mv_group &g, int64_t n, int nb) {
    const uint32_t type = w[g.idx[0]]->type;
    /* batches of K-quant weights go to the tensor-core kernels (same bits, weights decoded once) */
    const bool mma = n >= 2 && c->mma && (type == TY_TYPE_Q4_K || type == TY_TYPE_Q5_K || type == TY_TYPE_Q6_K);
    int R, S;
    mv_jobs J;
    const int blocks = make_jobs(c, w, y, add, g, mma, R, S, J);
    if (mma) {
        cu_launch_matvec_mma(c, J, (int)type, blocks, nb, (int)n);
        return;
    }
    c->n_mv_split += S > 1;
    switch (type) {
    case TY_TYPE_Q4_0: launch_type<TY_TYPE_Q4_0>(c, J, blocks, nb, (int)n, R, S); break;
    case TY_TYPE_Q8_0: launch_type<TY_TYPE_Q8_0>(c, J, blocks, nb, (int)n, R, S); break;
    case TY_TYPE_Q4_K: launch_type<TY_TYPE_Q4_K>(c, J, blocks, nb, (int)n, R); break;
    case TY_TYPE_Q5_K: launch_type<TY_TYPE_Q5_K>(c, J, blocks, nb, (int)n, R); break;
    case TY_TYPE_Q6_K: launch_type<TY_TYPE_Q6_K>(c, J, blocks, nb, (int)n, R); break;
    default: cu_fail(c, "matmul: no 8-bit kernel for %s", ty_type_name(type));
    }
}

template <int T1, int R1, int T2, int R2>
static void launch_pair_r(cuda_backend *c, const mv_jobs &J1, int blocks1, const mv_jobs &J2, int blocks2, int nb) {
    cu_launch(c, k_matvec_q8_pair<T1, R1, T2, R2>, dim3((unsigned)(blocks1 + blocks2)), dim3(QV_WARPS * 32), J1, J2,
              blocks1, nb, c->xq);
}

/* Decode of g1 (Q4_K or Q5_K: T1) and g2 (Q6_K) in one launch. */
template <int T1>
static void launch_pair(cuda_backend *c, const cu_weight *const *w, float *const *y, const bool *add,
                        const mv_group &g1, const mv_group &g2, int nb) {
    constexpr int T2 = TY_TYPE_Q6_K;
    int R1, R2, S1, S2; /* S = 1: K-quants */
    mv_jobs J1, J2;
    const int b1 = make_jobs(c, w, y, add, g1, false, R1, S1, J1), b2 = make_jobs(c, w, y, add, g2, false, R2, S2, J2);
    if (R1 == 1 && R2 == 1) launch_pair_r<T1, 1, T2, 1>(c, J1, b1, J2, b2, nb);
    else if (R1 == 1) launch_pair_r<T1, 1, T2, QV_ROWS>(c, J1, b1, J2, b2, nb);
    else if (R2 == 1) launch_pair_r<T1, QV_ROWS, T2, 1>(c, J1, b1, J2, b2, nb);
    else launch_pair_r<T1, QV_ROWS, T2, QV_ROWS>(c, J1, b1, J2, b2, nb);
}

/* Whether one decode launch takes both types (k_matvec_q8_pair): Q4_K or Q5_K with Q6_K. */
static bool pair_types(uint32_t a, uint32_t b) {
    const auto kq = [](uint32_t t) { return t == TY_TYPE_Q4_K || t == TY_TYPE_Q5_K; };
    return (kq(a) && b == TY_TYPE_Q6_K) || (kq(b) && a == TY_TYPE_Q6_K);
}

bool cu_matvec_q8_joins(const cuda_backend *c, const cu_weight *const *kept, int k, const cu_weight *w, int64_t n) {
    if (k < 1 || k >= CU_MV_JOBS || kept[0]->ne0 != w->ne0 || cu_act_format(kept[0]->type) != cu_act_format(w->type) ||
        warps_per_rows(c, kept[0]) != warps_per_rows(c, w))
        return false;
    for (int i = 0; i < k; i++)
        if (kept[i]->type != w->type && !(n == 1 && pair_types(kept[i]->type, w->type))) return false;
    return true;
}

void cu_launch_matvec_q8(cuda_backend *c, const cu_weight *const *w, float *const *y, const bool *add, int n_jobs,
                         const float *x, int64_t n) {
    const int ne0 = (int)w[0]->ne0;
    const int act = cu_act_format(w[0]->type);
    if (n_jobs < 1 || n_jobs > CU_MV_JOBS || !cu_xq_fits(c, act, ne0, n)) {
        cu_fail(c, "matmul: %d matrices, %lld tokens of %d elements do not fit the 8-bit path (%lld)", n_jobs,
                (long long)n, ne0, (long long)c->xq_cap);
        return;
    }
    /* g[0]: the jobs of w[0]'s type; g[1]: those of one other type */
    mv_group g[2] = {};
    for (int i = 0; i < n_jobs; i++) {
        const int other = w[i]->type != w[0]->type;
        const bool third = other && g[1].k > 0 && w[i]->type != w[g[1].idx[0]]->type;
        if (w[i]->ne0 != ne0 || cu_act_format(w[i]->type) != act || third) {
            cu_fail(c, "matmul: one launch for matrices of different widths, input formats or more than two types");
            return;
        }
        g[other].idx[g[other].k++] = i;
    }
    if (!cu_xq_holds(c, x, ne0, n, act)) {
        const int warps = 8, groups = ne0 / (act == CU_ACT_Q8_K ? 256 : 32);
        const dim3 qgrid((unsigned)((groups + warps - 1) / warps), (unsigned)n);
        if (act == CU_ACT_Q8_K) cu_launch(c, k_quantize_q8_K, qgrid, dim3(warps * 32), x, ne0, c->xq);
        else cu_launch(c, k_quantize_q8_0, qgrid, dim3(warps * 32), x, ne0, c->xq);
        cu_xq_set(c, x, ne0, n, act);
        c->n_act_quant += n;
    }
    const int nb = ne0 / (act == CU_ACT_Q8_K ? 256 : 32);
    if (g[1].k > 0 && n == 1 && pair_types(w[g[0].idx[0]]->type, w[g[1].idx[0]]->type)) {
        const int kq = w[g[0].idx[0]]->type == TY_TYPE_Q6_K; /* g[kq]: the Q4_K / Q5_K jobs, g[!kq]: the Q6_K ones */
        if (w[g[kq].idx[0]]->type == TY_TYPE_Q4_K) launch_pair<TY_TYPE_Q4_K>(c, w, y, add, g[kq], g[!kq], nb);
        else launch_pair<TY_TYPE_Q5_K>(c, w, y, add, g[kq], g[!kq], nb);
        c->n_mv_pair++;
        return;
    }
    launch_group(c, w, y, add, g[0], n, nb);
    if (g[1].k > 0) launch_group(c, w, y, add, g[1], n, nb);
}
