/* cuda_matvec.cuh - what the two families of fast matrix-vector kernels share: the dp4a kernels of
 * cuda_matvec_q8.cu (any batch of 1..16 tokens) and the tensor-core kernels of cuda_matvec_mma.cu
 * (K-quant weights, batches of 2..16 tokens: a speculative step's verification).
 *
 * Canonical order of the float operations (K-quants). A token must get the same bits whether it is
 * decoded alone or verified in a batch, so both families sum a row in this one order:
 *   - unit (b, j): quarter j (64 elements) of block b. Its integer sums are exact in any kernel; its
 *     float term is kq_term / q6_term below, with every rounding written out (no contraction);
 *   - T_b = (term_0 + term_1) + (term_2 + term_3)                    (quad_sum in the dp4a kernels)
 *   - a_v = T_v + T_(v+8) + T_(v+16) + ..., left to right, for v = 0..7 (the block's index mod 8)
 *   - row = ((a_0 + a_4) + (a_2 + a_6)) + ((a_1 + a_5) + (a_3 + a_7))  (mv_store<.., 4>'s butterfly)
 * Blocks past the end of a row add nothing (a zero term leaves a sum that is never -0 unchanged). */
#ifndef TY_CUDA_MATVEC_CUH
#define TY_CUDA_MATVEC_CUH

#include "backend/cuda/cuda_common.cuh"

#define FULL_MASK 0xffffffffu

/* The matrices of one launch (CU_MV_JOBS at most; one type, width and input): blocks
 * [end[j - 1], end[j]) compute y_j = W_j x, or y_j += W_j x when add[j]. Unused slots repeat the
 * last end. */
struct mv_jobs {
    const uint8_t *W[CU_MV_JOBS];
    float *y[CU_MV_JOBS];
    uint64_t pitch[CU_MV_JOBS];
    int ne1[CU_MV_JOBS], end[CU_MV_JOBS];
    bool add[CU_MV_JOBS];
};

/* Block `idx`'s matrix (blocks numbered across the jobs), and the block's index within it; pick_job:
 * this block's. */
struct mv_job {
    const uint8_t *W;
    float *y;
    uint64_t pitch;
    int ne1, block;
    bool add;
};
__device__ __forceinline__ mv_job pick_job_at(const mv_jobs &J, int idx) {
    mv_job m = {J.W[0], J.y[0], J.pitch[0], J.ne1[0], idx, J.add[0]};
#pragma unroll
    for (int i = 1; i < CU_MV_JOBS; i++)
        if (idx >= J.end[i - 1]) m = mv_job{J.W[i], J.y[i], J.pitch[i], J.ne1[i], idx - J.end[i - 1], J.add[i]};
    return m;
}
__device__ __forceinline__ mv_job pick_job(const mv_jobs &J) { return pick_job_at(J, (int)blockIdx.x); }

/* The 6-bit scales (sc) and mins (mn) of sub-blocks 2j and 2j + 1 (shift = 16 (j % 2)) from the
 * header words s1..s3 (scale bytes 0..11; lo = j < 2). Sub-blocks 0..3 keep their scale in the low
 * 6 bits of bytes 0..3 and their min in bytes 4..7; sub-blocks 4..7 take the low 4 bits from the
 * nibbles of bytes 8..11 and the high 2 bits from the top bits of bytes 0..3 (scale) and 4..7 (min)
 * (k4_scale_min, src/quant). */
__device__ __forceinline__ void k4_pair(uint32_t s1, uint32_t s2, uint32_t s3, bool lo, int shift, int &sc0, int &sc1,
                                        int &mn0, int &mn1) {
    /* bytes k = 0..3 of SC/MN: scale/min of sub-block k (lo) or k + 4 */
    const uint32_t SC = lo ? s1 & 0x3F3F3F3Fu : (s3 & 0x0F0F0F0Fu) | ((s1 >> 2) & 0x30303030u);
    const uint32_t MN = lo ? s2 & 0x3F3F3F3Fu : ((s3 >> 4) & 0x0F0F0F0Fu) | ((s2 >> 2) & 0x30303030u);
    sc0 = (SC >> shift) & 0xFF;
    sc1 = (SC >> (shift + 8)) & 0xFF;
    mn0 = (MN >> shift) & 0xFF;
    mn1 = (MN >> (shift + 8)) & 0xFF;
}

/* The float term of a Q4_K/Q5_K quarter: dk (the activations' block scale) times d * sumi - dmin *
 * summ, rounded step by step. */
__device__ __forceinline__ float kq_term(float dk, float d, float dmin, int sumi, int summ) {
    return __fmul_rn(dk, __fsub_rn(__fmul_rn(d, (float)sumi), __fmul_rn(dmin, (float)summ)));
}

/* The float term of a Q6_K quarter: (dk * d) * S. */
__device__ __forceinline__ float q6_term(float dk, float d, int S) { return __fmul_rn(__fmul_rn(dk, d), (float)S); }

/* T_b from the terms of the 4 lanes of a quad (lane % 4 = j): (t0 + t1) + (t2 + t3) in every lane. */
__device__ __forceinline__ float quad_sum(float x) {
    x = __fadd_rn(x, __shfl_xor_sync(FULL_MASK, x, 1));
    return __fadd_rn(x, __shfl_xor_sync(FULL_MASK, x, 2));
}

/* The row from the 8 partial sums a_v of the canonical order. */
__device__ __forceinline__ float canon_combine(const float (&a)[8]) {
    return __fadd_rn(__fadd_rn(__fadd_rn(a[0], a[4]), __fadd_rn(a[2], a[6])),
                     __fadd_rn(__fadd_rn(a[1], a[5]), __fadd_rn(a[3], a[7])));
}

/* cuda_matvec_mma.cu: y_j (+)= W_j x for the jobs J over `blocks` blocks of cu_mma_rows_per_block()
 * rows, n (2..CU_MV_MAX_TOKENS) tokens of 8-bit activations c->xq, weights of `type` (Q4_K, Q5_K or
 * Q6_K) with nb blocks per row. */
void cu_launch_matvec_mma(cuda_backend *c, const mv_jobs &J, int type, int blocks, int nb, int n);
int cu_mma_rows_per_block();

#endif
