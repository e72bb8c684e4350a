/* cuda_matvec_mma.cu - K-quant weights times a batch of 2..16 tokens on the tensor cores: the
 * verification batch of a speculative step, which should cost about what decoding one token costs.
 *
 * The dp4a kernels (cuda_matvec_q8.cu) redo each weight's unpacking and integer products for every
 * token of a batch: 9 tokens cost 6 decode steps. Here one int8 MMA instruction (mma.m16n8k32 for a
 * Q4_K/Q5_K sub-block of 32 elements, m16n8k16 for a Q6_K group of 16) multiplies 16 weight rows by
 * 8 tokens, so a weight is unpacked once per batch and the arithmetic is off the critical path.
 *
 * Work: a block of 8 warps owns 16 rows; warp v takes the blocks b with b % 8 = v, two at a time
 * (both loaded before either is used). Each quarter's integer sums are exact; the floats follow the
 * canonical order of cuda_matvec.cuh, the same as the dp4a kernels, so every token gets the bits it
 * gets when decoded alone. The partial sums a_v meet in shared memory.
 *
 * Fragment layout (PTX ISA, mma.m16n8k32 .s8): lane = 4 g + t holds A (weights) rows g and g + 8 at
 * k-slots 4t..4t+3 (registers a0: row g, a1: row g + 8) and 16+4t..16+4t+3 (a2, a3); B (tokens)
 * column g at the same k-slots (b0, b1); C rows g (c0, c1) and g + 8 (c2, c3), columns 2t, 2t + 1.
 * The sum over k does not care which element sits in which slot, as long as A and B agree: slots
 * 4t.. hold elements 8t..8t+3 of the sub-block and slots 16+4t.. elements 8t+4..8t+7, so a lane
 * reads 8 consecutive bytes of each and a quad a whole sub-block. m16n8k16 has a0, a1 and b0 only
 * (k-slots 4t..4t+3 = elements 4t..4t+3 of a 16-group). */
#include "backend/cuda/cuda_matvec.cuh"
#include "backend/cuda/cuda_q8act.cuh"
#include "backend/cuda/cuda_quant.cuh"

#define MQ_WARPS 8 /* warp v sums the blocks b with b % 8 = v: the a_v of the canonical order */
#define MQ_ROWS 16 /* rows per block: one m16 tile */
/* Blocks per SM the registers must allow (a cap of 128 per thread): with 1, the 8-token kernels took
 * 145-200 registers, one block per SM, and 9 tokens cost 5.3 ms instead of 4.6 (H100, 7B Q4_K_M). */
#define MQ_MIN_BLOCKS 2

int cu_mma_rows_per_block() { return MQ_ROWS; }

__device__ __forceinline__ void mma_k32(int (&c)[4], uint32_t a0, uint32_t a1, uint32_t a2, uint32_t a3, uint32_t b0,
                                        uint32_t b1) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    asm("mma.sync.aligned.m16n8k32.row.col.s32.s8.s8.s32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
                 : "+r"(c[0]), "+r"(c[1]), "+r"(c[2]), "+r"(c[3])
                 : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
#else
    __trap(); /* never reached: cu_mma_compiled() keeps these kernels off code built for < sm_80 */
#endif
}

__device__ __forceinline__ void mma_k16(int (&c)[4], uint32_t a0, uint32_t a1, uint32_t b0) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    asm("mma.sync.aligned.m16n8k16.row.col.s32.s8.s8.s32 {%0,%1,%2,%3}, {%4,%5}, {%6}, {%0,%1,%2,%3};"
                 : "+r"(c[0]), "+r"(c[1]), "+r"(c[2]), "+r"(c[3])
                 : "r"(a0), "r"(a1), "r"(b0));
#else
    __trap();
#endif
}

/* The C element c of a lane: row g + 8 (c >> 1) of the tile, token 8 G + 2t + (c & 1) (clamped to
 * the real tokens: the others are computed on a copy and never stored). */
__device__ __forceinline__ int c_token(int G, int t, int c, int n) { return min(8 * G + 2 * t + (c & 1), n - 1); }

/* ---- per type: a block's bytes for rows g and g + 8 (load), then its T_b for the lane's outputs
 * (terms: Tb[G][c], token group G, C element c) ---------------------------------------------- */

template <int T> struct mq_block;

/* Q4_K (144 bytes: d, dmin, 12 scale bytes, qs[128]) and Q5_K (176: the same header, qh[32], qs):
 * quarter j is qs[32 j .. 32 j + 31], low nibbles sub-block 2j, high nibbles 2j + 1; Q5_K's 5th bit
 * of element l of sub-block k is bit k of qh[l]. */
template <int T> struct mq_kquant {
    static constexpr int QS = T == TY_TYPE_Q5_K ? 48 : 16;
    uint4 hd[2];
    uint2 q[2][4], qh[2];

    __device__ __forceinline__ void load(const uint8_t *b0, const uint8_t *b1, int t) {
        const uint8_t *blk[2] = {b0, b1};
#pragma unroll
        for (int r = 0; r < 2; r++) {
            hd[r] = *(const uint4 *)blk[r];
#pragma unroll
            for (int j = 0; j < 4; j++) q[r][j] = *(const uint2 *)(blk[r] + QS + 32 * j + 8 * t);
            if (T == TY_TYPE_Q5_K) qh[r] = *(const uint2 *)(blk[r] + 16 + 8 * t);
        }
    }

    template <int NG>
    __device__ __forceinline__ void terms(const cu_q8act &a, int b, int g, int t, int n, float (&Tb)[NG][4]) const {
        /* the activations first, all of them: their loads then overlap (one L2 round trip per block) */
        uint2 ya[NG][4][2];   /* [G][j][sub-block 2j, 2j + 1]: B of token 8G + g */
        int4 s16[NG][2][4];   /* [G][c & 1][j]: 16-sums of the quarter, tokens of the C elements */
        float dk[NG][2];
#pragma unroll
        for (int G = 0; G < NG; G++) {
            const int8_t *yq = q8_row(a, min(8 * G + g, n - 1)).q + b * 256 + 8 * t;
#pragma unroll
            for (int j = 0; j < 4; j++) ya[G][j][0] = *(const uint2 *)(yq + 64 * j), ya[G][j][1] = *(const uint2 *)(yq + 64 * j + 32);
#pragma unroll
            for (int o = 0; o < 2; o++) {
                const cu_q8act at = q8_row(a, c_token(G, t, o, n));
#pragma unroll
                for (int j = 0; j < 4; j++) s16[G][o][j] = *(const int4 *)(at.s16 + b * 16 + 4 * j);
                dk[G][o] = at.dk[b];
            }
        }
        float d[2], dmin[2]; /* the rows' block scales */
#pragma unroll
        for (int r = 0; r < 2; r++) {
            const __half2 dm = *(const __half2 *)&hd[r].x;
            d[r] = __low2float(dm), dmin[r] = __high2float(dm);
        }
        float term[NG][4][4]; /* [G][c][j] */
#pragma unroll
        for (int j = 0; j < 4; j++) {
            int sc[2][2], mn[2][2];
            uint32_t lo[2][2], hi[2][2]; /* [row][word]: A of sub-blocks 2j and 2j + 1 */
#pragma unroll
            for (int r = 0; r < 2; r++) {
                k4_pair(hd[r].y, hd[r].z, hd[r].w, j < 2, 16 * (j & 1), sc[r][0], sc[r][1], mn[r][0], mn[r][1]);
#pragma unroll
                for (int wd = 0; wd < 2; wd++) {
                    const uint32_t v = wd ? q[r][j].y : q[r][j].x;
                    lo[r][wd] = v & 0x0F0F0F0Fu;
                    hi[r][wd] = (v >> 4) & 0x0F0F0F0Fu;
                    if (T == TY_TYPE_Q5_K) {
                        const uint32_t h = wd ? qh[r].y : qh[r].x;
                        lo[r][wd] |= ((h >> (2 * j)) & 0x01010101u) << 4;
                        hi[r][wd] |= ((h >> (2 * j + 1)) & 0x01010101u) << 4;
                    }
                }
            }
#pragma unroll
            for (int G = 0; G < NG; G++) {
                const uint2 yl = ya[G][j][0], yh = ya[G][j][1];
                int cl[4] = {0, 0, 0, 0}, ch[4] = {0, 0, 0, 0};
                mma_k32(cl, lo[0][0], lo[1][0], lo[0][1], lo[1][1], yl.x, yl.y);
                mma_k32(ch, hi[0][0], hi[1][0], hi[0][1], hi[1][1], yh.x, yh.y);
#pragma unroll
                for (int c = 0; c < 4; c++) {
                    const int r = c >> 1;
                    const int4 s = s16[G][c & 1][j];
                    const int sumi = sc[r][0] * cl[c] + sc[r][1] * ch[c];
                    const int summ = mn[r][0] * (s.x + s.y) + mn[r][1] * (s.z + s.w);
                    term[G][c][j] = kq_term(dk[G][c & 1], d[r], dmin[r], sumi, summ);
                }
            }
        }
#pragma unroll
        for (int G = 0; G < NG; G++)
#pragma unroll
            for (int c = 0; c < 4; c++)
                Tb[G][c] = __fadd_rn(__fadd_rn(term[G][c][0], term[G][c][1]), __fadd_rn(term[G][c][2], term[G][c][3]));
    }
};
template <> struct mq_block<TY_TYPE_Q4_K> : mq_kquant<TY_TYPE_Q4_K> {};
template <> struct mq_block<TY_TYPE_Q5_K> : mq_kquant<TY_TYPE_Q5_K> {};

/* Q6_K (210 bytes, 2-byte aligned: ql[128], qh[64], scales[16] int8, d): quarter j = 2h + gi holds
 * l = 16 gi .. 16 gi + 15 of half h for k = 0..3, elements 128 h + 32 k + l (see q8task<Q6_K> in
 * cuda_matvec_q8.cu), one scale per k; the lane takes l = 16 gi + 4t .. + 3. */
template <> struct mq_block<TY_TYPE_Q6_K> {
    uint32_t A[2][4], B[2][4], H[2][4], sc[2][4]; /* [row][quarter]; sc: the 16 scale bytes */
    float d[2];

    __device__ __forceinline__ void load(const uint8_t *b0, const uint8_t *b1, int t) {
        const uint8_t *blk[2] = {b0, b1};
#pragma unroll
        for (int r = 0; r < 2; r++) {
#pragma unroll
            for (int j = 0; j < 4; j++) {
                const int h = j >> 1, gi = j & 1;
                uint32_t w[1];
                ld_bytes_a2<4>(blk[r] + 64 * h + 16 * gi + 4 * t, w), A[r][j] = w[0];
                ld_bytes_a2<4>(blk[r] + 64 * h + 32 + 16 * gi + 4 * t, w), B[r][j] = w[0];
                ld_bytes_a2<4>(blk[r] + 128 + 32 * h + 16 * gi + 4 * t, w), H[r][j] = w[0];
            }
            ld_bytes_a2<16>(blk[r] + 192, sc[r]);
            d[r] = ld_f16(blk[r] + 208);
        }
    }

    template <int NG>
    __device__ __forceinline__ void terms(const cu_q8act &a, int b, int g, int t, int n, float (&Tb)[NG][4]) const {
        float term[NG][4][4]; /* [G][c][j] */
#pragma unroll
        for (int j = 0; j < 4; j++) {
            const int h = j >> 1, gi = j & 1;
            uint32_t kw[4][2]; /* [k][row]: q - 32 as bytes */
#pragma unroll
            for (int r = 0; r < 2; r++) {
                const uint32_t a4 = A[r][j], b4 = B[r][j], h4 = H[r][j];
                kw[0][r] = __vsub4((a4 & 0x0F0F0F0Fu) | ((h4 << 4) & 0x30303030u), 0x20202020u);
                kw[1][r] = __vsub4((b4 & 0x0F0F0F0Fu) | ((h4 << 2) & 0x30303030u), 0x20202020u);
                kw[2][r] = __vsub4(((a4 >> 4) & 0x0F0F0F0Fu) | (h4 & 0x30303030u), 0x20202020u);
                kw[3][r] = __vsub4(((b4 >> 4) & 0x0F0F0F0Fu) | ((h4 >> 2) & 0x30303030u), 0x20202020u);
            }
#pragma unroll
            for (int G = 0; G < NG; G++) {
                const int8_t *y = q8_row(a, min(8 * G + g, n - 1)).q + b * 256 + 128 * h + 16 * gi + 4 * t;
                int dot[4][4]; /* [k][c] */
#pragma unroll
                for (int k = 0; k < 4; k++) {
                    dot[k][0] = dot[k][1] = dot[k][2] = dot[k][3] = 0;
                    mma_k16(dot[k], kw[k][0], kw[k][1], *(const uint32_t *)(y + 32 * k));
                }
#pragma unroll
                for (int c = 0; c < 4; c++) {
                    const int r = c >> 1;
                    /* scale of 16-group 8h + 2k + gi: byte 8h + gi + 2k */
                    int s[4];
#pragma unroll
                    for (int k = 0; k < 4; k++) s[k] = (int)(int8_t)BYTE(sc[r], 8 * h + gi + 2 * k);
                    const int S = s[0] * dot[0][c] + s[1] * dot[1][c] + s[2] * dot[2][c] + s[3] * dot[3][c];
                    term[G][c][j] = q6_term(q8_row(a, c_token(G, t, c, n)).dk[b], d[r], S);
                }
            }
        }
#pragma unroll
        for (int G = 0; G < NG; G++)
#pragma unroll
            for (int c = 0; c < 4; c++)
                Tb[G][c] = __fadd_rn(__fadd_rn(term[G][c][0], term[G][c][1]), __fadd_rn(term[G][c][2], term[G][c][3]));
    }
};

/* ---- the kernel ------------------------------------------------------------------------------- */

template <int T, int NG>
__global__ void __launch_bounds__(MQ_WARPS * 32, MQ_MIN_BLOCKS) k_matvec_mma(const mv_jobs J, int nb, cu_q8act a, int n) {
    constexpr int TS = qt<T>::TS;
    __shared__ float part[8][MQ_ROWS][8 * NG]; /* a_v of each row and token */
    const mv_job m = pick_job(J);
    const int v = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
    const int row0 = m.block * MQ_ROWS;
    /* rows past ne1 read row ne1 - 1 and store nothing */
    const uint8_t *w0 = m.W + (uint64_t)min(row0 + g, m.ne1 - 1) * m.pitch;
    const uint8_t *w1 = m.W + (uint64_t)min(row0 + g + 8, m.ne1 - 1) * m.pitch;
    cu_pdl_wait();
    cu_pdl_trigger();
    float acc[NG][4];
#pragma unroll
    for (int G = 0; G < NG; G++)
#pragma unroll
        for (int c = 0; c < 4; c++) acc[G][c] = 0.f;
    /* warp v sums a_v: blocks v, v + 8, ..., two loaded at a time (one at a time: 9 tokens 6.6 ms) */
    for (int b0 = v; b0 < nb; b0 += 16) {
        const int b1 = min(b0 + 8, nb - 1); /* b0 + 8 past the end: loaded again, not added */
        mq_block<T> blk[2];
        blk[0].load(w0 + (uint64_t)b0 * TS, w1 + (uint64_t)b0 * TS, t);
        blk[1].load(w0 + (uint64_t)b1 * TS, w1 + (uint64_t)b1 * TS, t);
#pragma unroll
        for (int e = 0; e < 2; e++) {
            if (e == 1 && b0 + 8 >= nb) break;
            float Tb[NG][4];
            blk[e].template terms<NG>(a, b0 + 8 * e, g, t, n, Tb);
#pragma unroll
            for (int G = 0; G < NG; G++)
#pragma unroll
                for (int c = 0; c < 4; c++) acc[G][c] = __fadd_rn(acc[G][c], Tb[G][c]);
        }
    }
#pragma unroll
    for (int G = 0; G < NG; G++)
#pragma unroll
        for (int c = 0; c < 4; c++) part[v][g + 8 * (c >> 1)][8 * G + 2 * t + (c & 1)] = acc[G][c];
    __syncthreads();
    for (int i = threadIdx.x; i < MQ_ROWS * 8 * NG; i += MQ_WARPS * 32) {
        const int r = i / (8 * NG), tok = i % (8 * NG);
        if (row0 + r >= m.ne1 || tok >= n) continue;
        float p[8];
#pragma unroll
        for (int k = 0; k < 8; k++) p[k] = part[k][r][tok];
        cu_mm_store(m.y + (int64_t)tok * m.ne1 + row0 + r, canon_combine(p), m.add);
    }
}

static_assert(CU_MV_MAX_TOKENS <= 16, "the kernels take one or two groups of 8 tokens");

template <int T> static void launch_type(cuda_backend *c, const mv_jobs &J, int blocks, int nb, int n) {
    const dim3 grid((unsigned)blocks), block(MQ_WARPS * 32);
    if (n <= 8) cu_launch(c, k_matvec_mma<T, 1>, grid, block, J, nb, c->xq, n);
    else cu_launch(c, k_matvec_mma<T, 2>, grid, block, J, nb, c->xq, n);
}

/* Whether the code the device runs has the MMA instructions: PTX of an architecture below sm_80, JIT
 * compiled for a newer card, would have them compiled out. */
bool cu_mma_compiled() {
    cudaFuncAttributes fa;
    if (cudaFuncGetAttributes(&fa, k_matvec_mma<TY_TYPE_Q4_K, 1>) != cudaSuccess) {
        cudaGetLastError();
        return false;
    }
    return fa.ptxVersion >= 80;
}

void cu_launch_matvec_mma(cuda_backend *c, const mv_jobs &J, int type, int blocks, int nb, int n) {
    if (n < 2 || n > CU_MV_MAX_TOKENS) {
        cu_fail(c, "matmul: the tensor-core matvec takes 2..16 tokens, not %d", n);
        return;
    }
    switch (type) {
    case TY_TYPE_Q4_K: launch_type<TY_TYPE_Q4_K>(c, J, blocks, nb, n); break;
    case TY_TYPE_Q5_K: launch_type<TY_TYPE_Q5_K>(c, J, blocks, nb, n); break;
    case TY_TYPE_Q6_K: launch_type<TY_TYPE_Q6_K>(c, J, blocks, nb, n); break;
    default: cu_fail(c, "matmul: no tensor-core matvec for %s", ty_type_name((uint32_t)type));
    }
}
