/* cuda_attention.cu - causal grouped-query attention over an F32/F16/Q8_0 KV cache.
 *
 * First version: one block of ATT_THREADS threads per (query head, query token). The query row and
 * the output accumulator live in shared memory (head_dim floats each, any head_dim the model allows).
 * Keys are visited in tiles of ATT_TILE: each warp scores a share of the tile's keys (lanes split
 * the head dimension, then a shuffle reduction), then the tile enters an online softmax (running
 * maximum m, running sum l, accumulator rescaled by exp(m_old - m_new)) exactly as the CPU's
 * ty_attn_tiled does, with each thread owning the output dimensions d = tid, tid + ATT_THREADS, ...
 * (V rows are read coalesced). Query head h reads KV head h / (n_head / n_head_kv).
 *
 * Known costs, for later: every query head re-reads its KV head (no sharing across the group), and
 * decode runs only n_head blocks (no split over the keys), which leaves most SMs idle at long
 * contexts. */
#include <math.h>

#include "backend/cuda/cuda_common.cuh"
#include "backend/cuda/cuda_quant.cuh"

#define ATT_THREADS 128
#define ATT_TILE 64

/* Element e of a cache row. */
template <int KT> __device__ __forceinline__ float kv_elem(const uint8_t *row, int64_t e);
template <> __device__ __forceinline__ float kv_elem<TY_TYPE_F32>(const uint8_t *row, int64_t e) {
    return ((const float *)row)[e];
}
template <> __device__ __forceinline__ float kv_elem<TY_TYPE_F16>(const uint8_t *row, int64_t e) {
    return __half2float(__ushort_as_half(((const unsigned short *)row)[e]));
}
template <> __device__ __forceinline__ float kv_elem<TY_TYPE_Q8_0>(const uint8_t *row, int64_t e) {
    const uint8_t *blk = row + (e >> 5) * 34;
    return __fmul_rn((float)(int8_t)blk[2 + (e & 31)], ld_f16(blk));
}

template <int KT>
__global__ void __launch_bounds__(ATT_THREADS)
    k_attention(const float *__restrict__ q, const uint8_t *__restrict__ kc, const uint8_t *__restrict__ vc,
                uint64_t row_bytes, int64_t pos0, int n_head, int n_head_kv, int hd, float scale,
                float *__restrict__ out) {
    extern __shared__ __align__(16) float att_sm[];
    float *qs = att_sm, *acc = qs + hd, *sc = acc + hd; /* q[hd], acc[hd], scores/probabilities[TILE] */
    const int h = blockIdx.x;
    const int64_t t = blockIdx.y;
    const int kvh = h / (n_head / n_head_kv);
    const int tid = threadIdx.x, lane = tid % 32, warp = tid / 32, nw = ATT_THREADS / 32;
    const int64_t n_keys = pos0 + t + 1;
    const int64_t q_stride = (int64_t)n_head * hd;
    const float *qr = q + t * q_stride + (int64_t)h * hd;
    const int64_t koff = (int64_t)kvh * hd; /* first element of this KV head in a cache row */

    for (int d = tid; d < hd; d += ATT_THREADS) {
        qs[d] = qr[d];
        acc[d] = 0.f;
    }
    __syncthreads();
    float m = -INFINITY, l = 0.f;
    for (int64_t p0 = 0; p0 < n_keys; p0 += ATT_TILE) {
        const int nt = (int)(n_keys - p0 < ATT_TILE ? n_keys - p0 : ATT_TILE);
        /* scores of the tile */
        for (int j = warp; j < nt; j += nw) {
            const uint8_t *kr = kc + (uint64_t)(p0 + j) * row_bytes;
            float s = 0.f;
            for (int d = lane; d < hd; d += 32) s = fmaf(qs[d], kv_elem<KT>(kr, koff + d), s);
#pragma unroll
            for (int off = 16; off > 0; off >>= 1) s += __shfl_xor_sync(0xffffffffu, s, off);
            if (lane == 0) sc[j] = s * scale;
        }
        __syncthreads();
        /* online softmax: every thread derives the same m, corr and l from the shared scores */
        float mx = m;
        for (int j = 0; j < nt; j++) mx = fmaxf(mx, sc[j]);
        const float corr = expf(m - mx); /* 0 on the first tile (m = -inf) */
        __syncthreads();                 /* all have read the scores before they become probabilities */
        if (tid < nt) sc[tid] = expf(sc[tid] - mx);
        __syncthreads();
        float sum = 0.f;
        for (int j = 0; j < nt; j++) sum += sc[j];
        l = l * corr + sum;
        m = mx;
        for (int d = tid; d < hd; d += ATT_THREADS) {
            float a = acc[d] * corr;
            for (int j = 0; j < nt; j++) a = fmaf(sc[j], kv_elem<KT>(vc + (uint64_t)(p0 + j) * row_bytes, koff + d), a);
            acc[d] = a;
        }
        __syncthreads(); /* the probabilities are read before the next tile's scores overwrite them */
    }
    float *o = out + t * q_stride + (int64_t)h * hd;
    for (int d = tid; d < hd; d += ATT_THREADS) o[d] = acc[d] / l;
}

void cu_launch_attention(cuda_backend *c, const float *q, const uint8_t *k, const uint8_t *v, uint32_t kv_type,
                         uint64_t row_bytes, int64_t n, int64_t pos0, int64_t n_head, int64_t n_head_kv,
                         int64_t head_dim, float *out) {
    if (n <= 0) return;
    if (n_head_kv <= 0 || n_head % n_head_kv != 0 || head_dim <= 0 || head_dim > 4096 || n_head > 65535 ||
        n > 65535) {
        cu_fail(c, "attention: unsupported shape (%lld heads, %lld KV heads, head_dim %lld, %lld queries)",
                (long long)n_head, (long long)n_head_kv, (long long)head_dim, (long long)n);
        return;
    }
    const size_t smem = sizeof(float) * (size_t)(2 * head_dim + ATT_TILE);
    const float scale = 1.0f / sqrtf((float)head_dim);
    dim3 grid((unsigned)n_head, (unsigned)n);
    switch (kv_type) {
#define X(KT)                                                                                              \
    case KT:                                                                                               \
        k_attention<KT><<<grid, ATT_THREADS, smem, c->stream>>>(q, k, v, row_bytes, pos0, (int)n_head,     \
                                                                (int)n_head_kv, (int)head_dim, scale, out); \
        break;
        X(TY_TYPE_F32) X(TY_TYPE_F16) X(TY_TYPE_Q8_0)
#undef X
    default: cu_fail(c, "attention: cache type %s is not supported on CUDA", ty_type_name(kv_type));
    }
}
