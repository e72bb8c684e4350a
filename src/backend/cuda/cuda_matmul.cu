/* cuda_matmul.cu - the kernels that read quantized weights: the embedding lookup (get_rows), the
 * matrix-vector product of decode (n == 1) and the tiled matrix product of prompts (n > 1).
 *
 * All three decode weights with deq32<T> (cuda_quant.cuh), exactly, and compute in float32.
 *
 * Matrix-vector (k_matvec): one warp per output row, MV_WARPS rows per block. The warps walk their
 * rows in chunks (2048 elements for quantized types: 8 K-quant blocks or 64 small blocks, always a
 * multiple of 16 bytes): a chunk's bytes are read with coalesced 16-byte loads into registers,
 * stored into the warp's slice of shared memory and decoded from there, each lane taking 32-element
 * groups; the next chunk's loads are issued before the current one is decoded, so they are in
 * flight during the arithmetic. The block stages the matching chunk of the activation vector once
 * in shared memory (padded so that the lanes' reads of their own groups do not conflict): reading
 * it straight from global memory, lane stride 128 bytes, cost 32 L1 wavefronts per load and made
 * the first version L1-bound (91 tokens/s on a 7B Q4_K_M). Lane sums are combined with a shuffle
 * reduction: fp32 throughout.
 *
 * Tiled (k_matmul_tiled): a 64 (weight rows) x 64 (tokens) output tile per 256-thread block,
 * K in steps of 64: half of the threads decode the 64 x 64 weight tile into shared memory while
 * the other half load the 64 x 64 activation tile, then each thread accumulates a 4 x 4 sub-tile
 * in fp32 FMAs. Simple and correct; tensor cores come later.
 *
 * Both kernels end in cu_mm_store: with `add` (the matmul_add op) the product is added into y there,
 * as the add op would add it. */
#include "backend/cuda/cuda_common.cuh"
#include "backend/cuda/cuda_quant.cuh"

#define MV_WARPS 8 /* rows (one per warp) per block of the matrix-vector kernel */

/* ---- get_rows ------------------------------------------------------------------------------- */

template <int T>
__global__ void k_get_rows(const uint8_t *__restrict__ W, uint64_t pitch, int64_t ne0, int64_t ne1,
                           const int32_t *__restrict__ ids, float *__restrict__ out) {
    const int64_t t = blockIdx.x;
    const int64_t g = (int64_t)blockIdx.y * blockDim.x + threadIdx.x; /* 32-group of the row */
    if (g * 32 >= ne0) return;
    const int32_t id = ids[t];
    float4 *o = (float4 *)(out + t * ne0 + g * 32);
    if (id < 0 || id >= ne1) { /* the API validates ids; never read outside the table anyway */
        for (int i = 0; i < 8; i++) o[i] = make_float4(0.f, 0.f, 0.f, 0.f);
        return;
    }
    constexpr int BS = qt<T>::BS, TS = qt<T>::TS;
    const int64_t e = g * 32;
    float y[32];
    deq32<T>(W + (uint64_t)id * pitch + (uint64_t)(e / BS) * TS, (int)((e % BS) / 32), y);
#pragma unroll
    for (int i = 0; i < 8; i++) o[i] = make_float4(y[4 * i], y[4 * i + 1], y[4 * i + 2], y[4 * i + 3]);
}

/* ---- matrix-vector ------------------------------------------------------------------------------ */

/* Elements per chunk: 2048 for the quantized types (8 K-blocks or 64 small blocks: 672..2176
 * bytes), fewer for the float types so that a chunk stays at 2 KiB per warp. */
template <int T> __host__ __device__ constexpr int mv_chunk() {
    return T == TY_TYPE_F32 ? 512 : (T == TY_TYPE_F16 || T == TY_TYPE_BF16) ? 1024 : 2048;
}
#define XPAD 36 /* floats per 32-element group of the staged activations: 4 of padding */

template <int T>
__global__ void __launch_bounds__(MV_WARPS * 32)
    k_matvec(const uint8_t *__restrict__ W, uint64_t pitch, uint64_t row_bytes, int ne0, int ne1,
             const float *__restrict__ x, float *__restrict__ y, bool add) {
    constexpr int BS = qt<T>::BS, TS = qt<T>::TS, GPB = BS / 32;
    constexpr int CH_EL = mv_chunk<T>(), CH_GROUPS = CH_EL / 32, GPL = (CH_GROUPS + 31) / 32;
    constexpr int CH_BYTES = CH_EL / BS * TS;
    static_assert(CH_BYTES % 16 == 0, "chunks must be whole 16-byte vectors");
    constexpr int CH_VEC = CH_BYTES / 16, VPL = (CH_VEC + 31) / 32;
    __shared__ __align__(16) uint8_t sw_all[MV_WARPS][CH_BYTES]; /* each warp's weight chunk */
    __shared__ __align__(16) float sx[CH_GROUPS * XPAD];          /* the block's activation chunk */

    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const int row = blockIdx.x * MV_WARPS + warp;
    const bool active = row < ne1; /* inactive warps still take part in the block's barriers */
    uint8_t *sw = sw_all[warp];
    const uint4 *wr = (const uint4 *)(W + (uint64_t)(active ? row : 0) * pitch);
    const int row_vec = (int)((row_bytes + 15) / 16); /* vectors of the row (inside the pitch) */
    const int n_chunks = (ne0 + CH_EL - 1) / CH_EL;

    uint4 buf[VPL];
    auto load = [&](int c) {
#pragma unroll
        for (int i = 0; i < VPL; i++) {
            const int v = i * 32 + lane, gv = c * CH_VEC + v;
            if (v < CH_VEC && gv < row_vec) buf[i] = __ldg(wr + gv);
        }
    };
    float acc = 0.f;
    if (active) load(0);
    for (int c = 0; c < n_chunks; c++) {
        __syncthreads(); /* the previous chunk is no longer read */
        /* activations: coalesced float4 loads, group g stored at sx[XPAD * g ..] so that the lanes'
         * float4 reads below (one group each) fall on distinct banks within each quarter warp */
        for (int v = threadIdx.x; v < CH_EL / 4; v += MV_WARPS * 32) {
            const int e = c * CH_EL + 4 * v;
            if (e < ne0) *(float4 *)&sx[XPAD * (v / 8) + 4 * (v % 8)] = __ldg((const float4 *)(x + e));
        }
        if (active) {
#pragma unroll
            for (int i = 0; i < VPL; i++) {
                const int v = i * 32 + lane;
                if (v < CH_VEC && c * CH_VEC + v < row_vec) ((uint4 *)sw)[v] = buf[i];
            }
        }
        __syncthreads();
        if (!active) continue;
        if (c + 1 < n_chunks) load(c + 1); /* in flight while this chunk is decoded */
#pragma unroll
        for (int i = 0; i < GPL; i++) {
            const int gi = i * 32 + lane; /* 32-group within the chunk */
            const int e = c * CH_EL + gi * 32;
            if (gi < CH_GROUPS && e < ne0) {
                float w[32];
                deq32<T>(sw + (gi / GPB) * TS, gi % GPB, w);
                const float4 *xv = (const float4 *)&sx[XPAD * gi];
#pragma unroll
                for (int j = 0; j < 8; j++) {
                    const float4 xx = xv[j];
                    acc = fmaf(w[4 * j], xx.x, acc);
                    acc = fmaf(w[4 * j + 1], xx.y, acc);
                    acc = fmaf(w[4 * j + 2], xx.z, acc);
                    acc = fmaf(w[4 * j + 3], xx.w, acc);
                }
            }
        }
    }
    if (!active) return;
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) acc += __shfl_xor_sync(0xffffffffu, acc, off);
    if (lane == 0) cu_mm_store(y + row, acc, add);
}

/* ---- tiled matrix product ------------------------------------------------------------------------ */

#define TM 64  /* weight rows per tile */
#define TN 64  /* tokens per tile */
#define TK 64  /* elements of K per step */
#define TPAD 4 /* keeps float4 rows aligned and spreads the transposed stores over banks */

template <int T>
__global__ void __launch_bounds__(256)
    k_matmul_tiled(const uint8_t *__restrict__ W, uint64_t pitch, int ne0, int ne1, const float *__restrict__ X,
                   int n, float *__restrict__ Y, bool add) {
    constexpr int BS = qt<T>::BS, TS = qt<T>::TS;
    __shared__ __align__(16) float Ws[TK][TM + TPAD]; /* Ws[k][m] = W[m0 + m][k0 + k] */
    __shared__ __align__(16) float Xs[TK][TN + TPAD]; /* Xs[k][t] = X[t0 + t][k0 + k] */
    const int tid = threadIdx.x;
    const int m0 = blockIdx.x * TM, t0 = blockIdx.y * TN;
    const int ty = tid / 16, tx = tid % 16;
    float acc[4][4] = {};

    for (int k0 = 0; k0 < ne0; k0 += TK) {
        if (tid < 128) {
            /* decode: thread -> (row m, 32-group kg) */
            const int m = tid % TM, kg = tid / TM;
            const int r = m0 + m, e = k0 + kg * 32;
            float w[32];
            if (r < ne1 && e < ne0) {
                deq32<T>(W + (uint64_t)r * pitch + (uint64_t)(e / BS) * TS, (e % BS) / 32, w);
            } else {
#pragma unroll
                for (int j = 0; j < 32; j++) w[j] = 0.f;
            }
#pragma unroll
            for (int j = 0; j < 32; j++) Ws[kg * 32 + j][m] = w[j];
        } else {
            /* activations: thread -> token tt, 4 elements of K at a time */
            const int u = tid - 128;
            const int tt = u % TN;
#pragma unroll
            for (int i = 0; i < 8; i++) {
                const int k4 = (u / TN) + 2 * i; /* 0..15 */
                const int t = t0 + tt, e = k0 + 4 * k4;
                float4 v = make_float4(0.f, 0.f, 0.f, 0.f);
                if (t < n && e < ne0) v = __ldg((const float4 *)(X + (int64_t)t * ne0 + e));
                Xs[4 * k4][tt] = v.x;
                Xs[4 * k4 + 1][tt] = v.y;
                Xs[4 * k4 + 2][tt] = v.z;
                Xs[4 * k4 + 3][tt] = v.w;
            }
        }
        __syncthreads();
#pragma unroll 8
        for (int k = 0; k < TK; k++) {
            const float4 a = *(const float4 *)&Ws[k][ty * 4];
            const float4 b = *(const float4 *)&Xs[k][tx * 4];
            const float av[4] = {a.x, a.y, a.z, a.w}, bv[4] = {b.x, b.y, b.z, b.w};
#pragma unroll
            for (int i = 0; i < 4; i++)
#pragma unroll
                for (int j = 0; j < 4; j++) acc[i][j] = fmaf(av[i], bv[j], acc[i][j]);
        }
        __syncthreads();
    }
#pragma unroll
    for (int j = 0; j < 4; j++) {
        const int t = t0 + tx * 4 + j;
        if (t >= n) continue;
#pragma unroll
        for (int i = 0; i < 4; i++) {
            const int r = m0 + ty * 4 + i;
            if (r < ne1) cu_mm_store(Y + (int64_t)t * ne1 + r, acc[i][j], add);
        }
    }
}

/* ---- launchers ----------------------------------------------------------------------------------- */

void cu_launch_get_rows(cuda_backend *c, const cu_weight *w, const int32_t *ids_dev, int64_t n, float *out) {
    const int threads = 128;
    const int64_t groups = w->ne0 / 32;
    dim3 grid((unsigned)n, (unsigned)((groups + threads - 1) / threads));
    switch (w->type) {
#define X(T)                                                                                               \
    case T: k_get_rows<T><<<grid, threads, 0, c->stream>>>(w->dev, w->pitch, w->ne0, w->ne1, ids_dev, out); \
        break;
        CU_FOR_EACH_TYPE(X)
#undef X
    default: cu_fail(c, "get_rows: type %s is not implemented on CUDA", ty_type_name(w->type));
    }
}

void cu_launch_matmul(cuda_backend *c, const cu_weight *w, const float *x, int64_t n, float *y, bool add) {
    if (w->ne0 > INT32_MAX / 2 || w->ne1 > INT32_MAX / 2 || n > 65535 * (int64_t)TN) {
        cu_fail(c, "matmul: shape %lld x %lld with %lld tokens is too large for the CUDA kernels",
                (long long)w->ne0, (long long)w->ne1, (long long)n);
        return;
    }
    if (((uintptr_t)x & 15) != 0) {
        cu_fail(c, "matmul: activations at %p are not 16-byte aligned", (const void *)x);
        return;
    }
    const int ne0 = (int)w->ne0, ne1 = (int)w->ne1;
    if (n <= CU_MV_MAX_TOKENS && !c->exact && cu_matvec_q8_supported(w->type)) {
        cu_launch_matvec_q8(c, &w, &y, &add, 1, x, n);
    } else if (cu_gemm_usable(c, w, n)) {
        cu_launch_gemm(c, w, x, n, y, add);
    } else if (n <= CU_MV_MAX_TOKENS) {
        /* one matrix-vector product per token: a small batch (a speculative step's verification)
         * then gives each token exactly the logits a one-token decode would */
        const unsigned blocks = (unsigned)((ne1 + MV_WARPS - 1) / MV_WARPS);
        for (int64_t t = 0; t < n; t++) {
            const float *xt = x + t * ne0;
            float *yt = y + t * ne1;
            switch (w->type) {
#define X(T)                                                                                                    \
    case T:                                                                                                     \
        k_matvec<T><<<blocks, MV_WARPS * 32, 0, c->stream>>>(w->dev, w->pitch, w->row_bytes, ne0, ne1, xt, yt, add); \
        break;
                CU_FOR_EACH_TYPE(X)
#undef X
            default: cu_fail(c, "matmul: type %s is not implemented on CUDA", ty_type_name(w->type)); return;
            }
        }
    } else {
        dim3 grid((unsigned)((ne1 + TM - 1) / TM), (unsigned)((n + TN - 1) / TN));
        switch (w->type) {
#define X(T)                                                                                                  \
    case T: k_matmul_tiled<T><<<grid, 256, 0, c->stream>>>(w->dev, w->pitch, ne0, ne1, x, (int)n, y, add); break;
            CU_FOR_EACH_TYPE(X)
#undef X
        default: cu_fail(c, "matmul: type %s is not implemented on CUDA", ty_type_name(w->type));
        }
    }
}
