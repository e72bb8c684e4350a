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


/* ---- prompts: FA2-style tiles --------------------------------------------------------------------- *
 * One block of FA_THREADS threads per (tile of FA_BQ query tokens, query head); head_dim HD = 128
 * (F16 or F32 cache). The block walks the keys in tiles of FA_BK: K (transposed, so that lanes read
 * consecutive keys) and V are staged in shared memory as float, each thread scores its warp's
 * queries against two keys, the warp runs the online softmax of its queries with shuffles, and the
 * probabilities go through shared memory to the PV product, where lane l owns output dims l + 32 i.
 * K/V are read once per query tile instead of once per query (the first kernel's cost: 48% of a
 * 512-token prompt). fp32 throughout; the same online softmax as the CPU's ty_attn_tiled, so the
 * results agree to float rounding, not bit for bit. */
#define FA_BQ 32
#define FA_BK 64
#define FA_HD 128
#define FA_THREADS 128
#define FA_QPW (FA_BQ / (FA_THREADS / 32)) /* queries per warp */

template <int KT>
__global__ void __launch_bounds__(FA_THREADS)
    k_attention_tiles(const float *__restrict__ q, const uint8_t *__restrict__ kc, const uint8_t *__restrict__ vc,
                      uint64_t row_bytes, int64_t pos0, int n, int n_head, int n_head_kv, float scale,
                      float *__restrict__ out) {
    extern __shared__ __align__(16) float fa_sm[];
    float *Qs = fa_sm;                  /* [FA_BQ][FA_HD] */
    float *Kt = Qs + FA_BQ * FA_HD;     /* [FA_HD][FA_BK + 1] */
    float *Vs = Kt + FA_HD * (FA_BK + 1); /* [FA_BK][FA_HD] */
    float *Ps = Vs + FA_BK * FA_HD;     /* [FA_BQ][FA_BK] */
    const int h = blockIdx.y, t0 = blockIdx.x * FA_BQ;
    const int kvh = h / (n_head / n_head_kv);
    const int tid = threadIdx.x, lane = tid % 32, warp = tid / 32;
    const int64_t q_stride = (int64_t)n_head * FA_HD;
    const int64_t koff = (int64_t)kvh * FA_HD;
    for (int i = tid; i < FA_BQ * FA_HD; i += FA_THREADS) {
        const int qi = i / FA_HD, d = i % FA_HD;
        Qs[i] = t0 + qi < n ? q[(int64_t)(t0 + qi) * q_stride + (int64_t)h * FA_HD + d] : 0.f;
    }
    float m[FA_QPW], l[FA_QPW], acc[FA_QPW][4];
#pragma unroll
    for (int i = 0; i < FA_QPW; i++) {
        m[i] = -INFINITY;
        l[i] = 0.f;
#pragma unroll
        for (int k = 0; k < 4; k++) acc[i][k] = 0.f;
    }
    const int last_q = min(t0 + FA_BQ, n) - 1;
    const int64_t n_keys = pos0 + last_q + 1; /* keys the block's last query sees */
    for (int64_t k0 = 0; k0 < n_keys; k0 += FA_BK) {
        __syncthreads(); /* the previous tile's K, V and P are no longer read */
        for (int i = tid; i < FA_BK * FA_HD; i += FA_THREADS) {
            const int j = i / FA_HD, d = i % FA_HD;
            float kv = 0.f, vv = 0.f;
            if (k0 + j < n_keys) {
                kv = kv_elem<KT>(kc + (uint64_t)(k0 + j) * row_bytes, koff + d);
                vv = kv_elem<KT>(vc + (uint64_t)(k0 + j) * row_bytes, koff + d);
            }
            Kt[d * (FA_BK + 1) + j] = kv;
            Vs[j * FA_HD + d] = vv;
        }
        __syncthreads();
#pragma unroll
        for (int i = 0; i < FA_QPW; i++) {
            const int qi = warp * FA_QPW + i;
            const int64_t qpos = pos0 + t0 + qi; /* keys 0..qpos are visible */
            const float *qr = Qs + qi * FA_HD;
            float s0 = 0.f, s1 = 0.f;
#pragma unroll 8
            for (int d = 0; d < FA_HD; d++) {
                const float qd = qr[d];
                s0 = fmaf(qd, Kt[d * (FA_BK + 1) + lane], s0);
                s1 = fmaf(qd, Kt[d * (FA_BK + 1) + lane + 32], s1);
            }
            s0 = k0 + lane <= qpos ? s0 * scale : -INFINITY;
            s1 = k0 + lane + 32 <= qpos ? s1 * scale : -INFINITY;
            float mx = fmaxf(s0, s1);
#pragma unroll
            for (int off = 16; off > 0; off >>= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, off));
            const float mnew = fmaxf(m[i], mx);
            /* a query whose keys all lie past this tile's start is fully masked: nothing changes */
            const float p0 = mnew == -INFINITY ? 0.f : expf(s0 - mnew), p1 = mnew == -INFINITY ? 0.f : expf(s1 - mnew);
            float sum = p0 + p1;
#pragma unroll
            for (int off = 16; off > 0; off >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, off);
            const float corr = m[i] == -INFINITY ? 0.f : expf(m[i] - mnew);
            l[i] = l[i] * corr + sum;
            m[i] = mnew;
#pragma unroll
            for (int k = 0; k < 4; k++) acc[i][k] *= corr;
            Ps[qi * FA_BK + lane] = p0;
            Ps[qi * FA_BK + lane + 32] = p1;
        }
        __syncwarp();
        const int nk = (int)min((int64_t)FA_BK, n_keys - k0);
        for (int j = 0; j < nk; j++) {
            float v[4];
#pragma unroll
            for (int k = 0; k < 4; k++) v[k] = Vs[j * FA_HD + lane + 32 * k];
#pragma unroll
            for (int i = 0; i < FA_QPW; i++) {
                const float p = Ps[(warp * FA_QPW + i) * FA_BK + j];
#pragma unroll
                for (int k = 0; k < 4; k++) acc[i][k] = fmaf(p, v[k], acc[i][k]);
            }
        }
    }
#pragma unroll
    for (int i = 0; i < FA_QPW; i++) {
        const int qi = warp * FA_QPW + i;
        if (t0 + qi >= n) continue;
        float *o = out + (int64_t)(t0 + qi) * q_stride + (int64_t)h * FA_HD;
#pragma unroll
        for (int k = 0; k < 4; k++) o[lane + 32 * k] = acc[i][k] / l[i];
    }
}

static const size_t FA_SMEM = sizeof(float) * (FA_BQ * FA_HD + FA_HD * (FA_BK + 1) + FA_BK * FA_HD + FA_BQ * FA_BK);

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
    if (n >= FA_BQ / 2 && head_dim == FA_HD && (kv_type == TY_TYPE_F16 || kv_type == TY_TYPE_F32)) {
        dim3 g((unsigned)((n + FA_BQ - 1) / FA_BQ), (unsigned)n_head);
        if (kv_type == TY_TYPE_F16) {
            cudaFuncSetAttribute(k_attention_tiles<TY_TYPE_F16>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)FA_SMEM);
            k_attention_tiles<TY_TYPE_F16><<<g, FA_THREADS, FA_SMEM, c->stream>>>(q, k, v, row_bytes, pos0, (int)n, (int)n_head,
                                                                                (int)n_head_kv, scale, out);
        } else {
            cudaFuncSetAttribute(k_attention_tiles<TY_TYPE_F32>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)FA_SMEM);
            k_attention_tiles<TY_TYPE_F32><<<g, FA_THREADS, FA_SMEM, c->stream>>>(q, k, v, row_bytes, pos0, (int)n, (int)n_head,
                                                                                (int)n_head_kv, scale, out);
        }
        return;
    }
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
