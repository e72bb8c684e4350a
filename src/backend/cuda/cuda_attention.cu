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
 * It serves what the kernels below do not: other head sizes, a Q8_0 cache, and decode where the
 * split kernel does not apply (more than 8 query heads per KV head). Every query head re-reads its
 * KV head, and there is no split over the keys. */
#include <math.h>

#include "backend/cuda/cuda_common.cuh"
#include "backend/cuda/cuda_q8act.cuh"
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

/* The score of key row kr for this lane's share of q (dims lane, lane + 32, ... below hd), before the
 * warp's sum. HD32 > 0: hd <= 32 * HD32, the loop unrolled with its loads issued together. */
template <int KT, int HD32>
__device__ __forceinline__ float score_part(const float *qs, const uint8_t *kr, int64_t koff, int hd, int lane) {
    float s = 0.f;
    if constexpr (HD32 > 0) {
#pragma unroll
        for (int i = 0; i < HD32; i++)
            if (lane + 32 * i < hd) s = fmaf(qs[lane + 32 * i], kv_elem<KT>(kr, koff + lane + 32 * i), s);
    } else {
        for (int d = lane; d < hd; d += 32) s = fmaf(qs[d], kv_elem<KT>(kr, koff + d), s);
    }
    return s;
}

/* Keys scored per warp step: their loads are in flight together (one at a time, a 64-key tile was
 * 16 dependent memory round trips per warp: a draft model's head_dim 64 decodes here). */
#define ATT_KPW 4

/* HD32: head_dim <= 32 * HD32 (4: 128), or 0 for any head_dim. Launched with PDL (cu_launch_smem). */
template <int KT, int HD32>
__global__ void __launch_bounds__(ATT_THREADS)
    k_attention(const float *__restrict__ q, const uint8_t *__restrict__ kc, const uint8_t *__restrict__ vc,
                uint64_t row_bytes, int64_t pos0, const int32_t *pos_dev, int n_head, int n_head_kv, int hd,
                float scale, float *__restrict__ out) {
    extern __shared__ __align__(16) float att_sm[];
    cu_pdl_wait();
    cu_pdl_trigger();
    if (pos_dev) pos0 = *pos_dev; /* a recorded step: the position is data */
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
        /* scores of the tile: warp w takes keys w, w + nw, ..., ATT_KPW of them per step (the same
         * keys and the same operations per key as one at a time) */
        for (int j0 = warp; j0 < nt; j0 += ATT_KPW * nw) {
            float s[ATT_KPW];
#pragma unroll
            for (int u = 0; u < ATT_KPW; u++) {
                const int j = min(j0 + u * nw, nt - 1); /* past the tile: a valid row, not stored */
                s[u] = score_part<KT, HD32>(qs, kc + (uint64_t)(p0 + j) * row_bytes, koff, hd, lane);
            }
#pragma unroll
            for (int off = 16; off > 0; off >>= 1)
#pragma unroll
                for (int u = 0; u < ATT_KPW; u++) s[u] += __shfl_xor_sync(0xffffffffu, s[u], off);
            if (lane == 0)
#pragma unroll
                for (int u = 0; u < ATT_KPW; u++)
                    if (j0 + u * nw < nt) sc[j0 + u * nw] = s[u] * scale;
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
        if (KT == TY_TYPE_F16) { /* 8 halves (16 bytes) per load */
            for (int i = tid; i < FA_BK * FA_HD / 8; i += FA_THREADS) {
                const int j = i / (FA_HD / 8), d = 8 * (i % (FA_HD / 8));
                uint4 kr = make_uint4(0, 0, 0, 0), vr = kr;
                if (k0 + j < n_keys) {
                    kr = *(const uint4 *)(kc + (uint64_t)(k0 + j) * row_bytes + 2 * (koff + d));
                    vr = *(const uint4 *)(vc + (uint64_t)(k0 + j) * row_bytes + 2 * (koff + d));
                }
                const __half2 *kh = (const __half2 *)&kr, *vh = (const __half2 *)&vr;
#pragma unroll
                for (int e = 0; e < 4; e++) {
                    const float2 kf = __half22float2(kh[e]), vf = __half22float2(vh[e]);
                    Kt[(d + 2 * e) * (FA_BK + 1) + j] = kf.x;
                    Kt[(d + 2 * e + 1) * (FA_BK + 1) + j] = kf.y;
                    *(float2 *)&Vs[j * FA_HD + d + 2 * e] = vf;
                }
            }
        } else {
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
        }
        __syncthreads();
        /* scores of the warp's FA_QPW queries against keys lane and lane + 32: each K value read
         * from shared memory serves all the warp's queries */
        float sc[FA_QPW][2];
#pragma unroll
        for (int i = 0; i < FA_QPW; i++) sc[i][0] = sc[i][1] = 0.f;
        const float *qw = Qs + warp * FA_QPW * FA_HD;
#pragma unroll 4
        for (int d = 0; d < FA_HD; d++) {
            const float ka = Kt[d * (FA_BK + 1) + lane], kb = Kt[d * (FA_BK + 1) + lane + 32];
#pragma unroll
            for (int i = 0; i < FA_QPW; i++) {
                const float qd = qw[i * FA_HD + d];
                sc[i][0] = fmaf(qd, ka, sc[i][0]);
                sc[i][1] = fmaf(qd, kb, sc[i][1]);
            }
        }
#pragma unroll
        for (int i = 0; i < FA_QPW; i++) {
            const int qi = warp * FA_QPW + i;
            const int64_t qpos = pos0 + t0 + qi; /* keys 0..qpos are visible */
            const float s0 = k0 + lane <= qpos ? sc[i][0] * scale : -INFINITY;
            const float s1 = k0 + lane + 32 <= qpos ? sc[i][1] * scale : -INFINITY;
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

/* ---- decode: split-KV flash-decoding -------------------------------------------------------------- *
 * One token (or each token of a batch of up to CU_MV_MAX_TOKENS), head_dim 128, F16/F32 cache. Block
 * (KV head, split, token): SPLIT_KEYS keys of one KV head for all G = n_head / n_head_kv query heads
 * that read it, so each K/V row is loaded once. Its 4 or 8 warps take the split's keys 8 at a time in turn;
 * in a warp, half-warp hw takes keys 2u + hw and lane l of it dims 8l..8l+7 (16-byte loads of F16),
 * so one load instruction covers two keys. Scores are summed over the half-warp's 16 lanes; each lane
 * keeps an online softmax (max m, sum l, 8 output dims) per head for its half's keys. The halves,
 * then the warps (in a fixed order) are merged, and the block writes its split's max, sum and
 * unnormalised output per head; k_attn_combine rescales the splits to the global max and divides
 * (the algebra of the online softmax). A 16k context: 128 splits x 8 KV heads = 1024 blocks.
 * Every token's arithmetic is the same whatever the batch and split count around it, so a batch
 * gives each token the bits of decoding it alone. */
#define SPLIT_KEYS CU_ATTN_SPLIT_KEYS
#define PART_STRIDE (FA_HD + 4) /* floats per (head, split): output, max, sum, padding to 16 bytes */

/* 8 consecutive cache elements as loaded (16 bytes of F16, 32 of F32), unpacked to float on use:
 * raw halves take half the registers while a step's loads are in flight. */
template <int KT> struct kv8;
template <> struct kv8<TY_TYPE_F16> {
    uint4 r;
    __device__ __forceinline__ void load(const uint8_t *row, int64_t e) { r = *(const uint4 *)(row + 2 * e); }
    __device__ __forceinline__ void unpack(float (&v)[8]) const {
        const __half2 *h = (const __half2 *)&r;
#pragma unroll
        for (int i = 0; i < 4; i++) {
            const float2 f = __half22float2(h[i]);
            v[2 * i] = f.x, v[2 * i + 1] = f.y;
        }
    }
};
template <> struct kv8<TY_TYPE_F32> {
    float4 a, b;
    __device__ __forceinline__ void load(const uint8_t *row, int64_t e) {
        a = *(const float4 *)(row + 4 * e);
        b = *(const float4 *)(row + 4 * e + 16);
    }
    __device__ __forceinline__ void unpack(float (&v)[8]) const {
        v[0] = a.x, v[1] = a.y, v[2] = a.z, v[3] = a.w, v[4] = b.x, v[5] = b.y, v[6] = b.z, v[7] = b.w;
    }
};

/* Weight of a partial result of max m under the common max M (0 for one that saw no key). */
__device__ __forceinline__ float part_weight(float m, float M) { return m == -INFINITY ? 0.f : expf(m - M); }

/* GM: the most query heads per KV head the instance serves (G <= GM); DP: key pairs per warp step
 * (4: 8 keys. 8 pairs cost registers and occupancy: 16k-depth tg128 254 where 4 pairs gave 267).
 * DEC_WARPS: 4 or 8 warps, which deal the keys differently and so round differently: a token's W is
 * a function of its own key count (split_warps), never of the batch around it. The grid's tokens
 * are t0, t0 + 1, ... of the batch. */
template <int KT, int GM, int DP, int DEC_WARPS>
__global__ void __launch_bounds__(32 * DEC_WARPS)
    k_attn_split(const float *__restrict__ q, const uint8_t *__restrict__ kc, const uint8_t *__restrict__ vc,
                 uint64_t row_bytes, int64_t pos0, const int32_t *pos_dev, int n_head, int n_head_kv, float scale,
                 float *__restrict__ part, int t0) {
    __shared__ float wm[DEC_WARPS][GM], wl[DEC_WARPS][GM];
    __shared__ __align__(16) float wacc[DEC_WARPS][GM][FA_HD];
    cu_pdl_wait(); /* launched with cu_launch (PDL) */
    cu_pdl_trigger();
    const int kvh = blockIdx.x, split = blockIdx.y, n_splits = gridDim.y, t = t0 + blockIdx.z;
    const int G = n_head / n_head_kv, warp = threadIdx.x / 32, lane = threadIdx.x % 32, hw = lane / 16, sub = lane % 16;
    q += (int64_t)t * n_head * FA_HD;
    part += (int64_t)t * n_head * n_splits * PART_STRIDE;
    const int64_t e0 = (int64_t)kvh * FA_HD + 8 * sub; /* this lane's first element in a cache row */
    float qv[GM][8], m[GM], l[GM], acc[GM][8];
    /* q is loaded before the position: for a block with keys, one memory round trip, not two */
#pragma unroll
    for (int h = 0; h < GM; h++) {
        const float *qr = q + (int64_t)(kvh * G + min(h, G - 1)) * FA_HD + 8 * sub;
        const float4 a = *(const float4 *)qr, b = *(const float4 *)(qr + 4);
        qv[h][0] = a.x * scale, qv[h][1] = a.y * scale, qv[h][2] = a.z * scale, qv[h][3] = a.w * scale;
        qv[h][4] = b.x * scale, qv[h][5] = b.y * scale, qv[h][6] = b.z * scale, qv[h][7] = b.w * scale;
        m[h] = -INFINITY, l[h] = 0.f;
#pragma unroll
        for (int i = 0; i < 8; i++) acc[h][i] = 0.f;
    }
    if (pos_dev) pos0 = *pos_dev; /* a recorded step: the position is data, and gridDim.y a bound */
    const int64_t n_keys = pos0 + t + 1; /* query t sees keys 0..pos0+t, exactly as a decode step there */
    const int64_t kb = (int64_t)split * SPLIT_KEYS, ke = min(kb + SPLIT_KEYS, n_keys);
    if (pos_dev && kb >= n_keys) return; /* past the recorded step's keys: the combine does not read it */
    for (int64_t p0 = kb + 2 * DP * warp; p0 < ke; p0 += 2 * DP * DEC_WARPS) {
        kv8<KT> k[DP], v[DP];
#pragma unroll
        for (int u = 0; u < DP; u++) { /* all loads first; past the end: a valid row, masked below */
            const int64_t p = min(p0 + 2 * u + hw, ke - 1);
            k[u].load(kc + (uint64_t)p * row_bytes, e0);
            v[u].load(vc + (uint64_t)p * row_bytes, e0);
        }
        float sc[GM][DP];
#pragma unroll
        for (int u = 0; u < DP; u++) {
            float kf[8];
            k[u].unpack(kf);
#pragma unroll
            for (int h = 0; h < GM; h++) {
                float d = 0.f;
#pragma unroll
                for (int i = 0; i < 8; i++) d = fmaf(qv[h][i], kf[i], d);
                sc[h][u] = d;
            }
        }
#pragma unroll
        for (int off = 8; off > 0; off >>= 1) /* within the half-warp */
#pragma unroll
            for (int h = 0; h < GM; h++)
#pragma unroll
                for (int u = 0; u < DP; u++) sc[h][u] += __shfl_xor_sync(0xffffffffu, sc[h][u], off);
#pragma unroll
        for (int h = 0; h < GM; h++) {
            float mn = m[h];
#pragma unroll
            for (int u = 0; u < DP; u++)
                if (p0 + 2 * u + hw < ke) mn = fmaxf(mn, sc[h][u]);
            if (mn == -INFINITY) continue; /* this half has seen no key yet (and sees none here) */
            const float corr = expf(m[h] - mn); /* 0 while m = -inf */
            l[h] *= corr;
#pragma unroll
            for (int i = 0; i < 8; i++) acc[h][i] *= corr;
            m[h] = mn;
        }
#pragma unroll
        for (int u = 0; u < DP; u++) {
            float vf[8];
            v[u].unpack(vf);
            const bool in = p0 + 2 * u + hw < ke;
#pragma unroll
            for (int h = 0; h < GM; h++) {
                const float pe = in ? expf(sc[h][u] - m[h]) : 0.f;
                l[h] += pe;
#pragma unroll
                for (int i = 0; i < 8; i++) acc[h][i] = fmaf(pe, vf[i], acc[h][i]);
            }
        }
    }
    /* merge the halves (half 0's terms first, in both halves), then the warps in order */
#pragma unroll
    for (int h = 0; h < GM; h++) {
        const float mo = __shfl_xor_sync(0xffffffffu, m[h], 16), lo = __shfl_xor_sync(0xffffffffu, l[h], 16);
        const float M = fmaxf(m[h], mo), ws = part_weight(m[h], M), wo = part_weight(mo, M);
        const float w0 = hw ? wo : ws, w1 = hw ? ws : wo;
        const float l0 = hw ? lo : l[h], l1 = hw ? l[h] : lo;
        l[h] = fmaf(l1, w1, l0 * w0);
#pragma unroll
        for (int i = 0; i < 8; i++) {
            const float ao = __shfl_xor_sync(0xffffffffu, acc[h][i], 16);
            const float a0 = hw ? ao : acc[h][i], a1 = hw ? acc[h][i] : ao;
            acc[h][i] = fmaf(a1, w1, a0 * w0);
        }
        m[h] = M;
        if (hw == 0 && h < G) {
            *(float4 *)&wacc[warp][h][8 * sub] = make_float4(acc[h][0], acc[h][1], acc[h][2], acc[h][3]);
            *(float4 *)&wacc[warp][h][8 * sub + 4] = make_float4(acc[h][4], acc[h][5], acc[h][6], acc[h][7]);
            if (sub == 0) wm[warp][h] = M, wl[warp][h] = l[h];
        }
    }
    __syncthreads();
    for (int i = threadIdx.x; i < G * FA_HD; i += 32 * DEC_WARPS) { /* (head, output dimension) per thread */
        const int h = i / FA_HD, d = i % FA_HD;
        float M = wm[0][h];
#pragma unroll
        for (int w = 1; w < DEC_WARPS; w++) M = fmaxf(M, wm[w][h]);
        float L = 0.f, o = 0.f;
#pragma unroll
        for (int w = 0; w < DEC_WARPS; w++) {
            const float pw = part_weight(wm[w][h], M);
            L = fmaf(wl[w][h], pw, L);
            o = fmaf(wacc[w][h][d], pw, o);
        }
        float *out = part + ((int64_t)(kvh * G + h) * n_splits + split) * PART_STRIDE;
        out[d] = o;
        if (d == 0) out[FA_HD] = M, out[FA_HD + 1] = L;
    }
}

/* One block per (head, query): the largest of the splits' maxima (all threads), then warp w sums the
 * splits s = w, w + 4, ... rescaled to it (lane l: dims 4l..4l+3), the warps' sums added in order and
 * divided by the summed weights. Each warp's loads over its splits are independent, so they overlap
 * (a sequential walk over 256 splits cost ~60 us a layer at 16k).
 * ACT != CU_ACT_NONE: the output is also quantized for the matmul after attention (w_o), with the
 * matmul's own quantizer (cuda_q8act.cuh), which then quantizes nothing: Q8_0 per warp (32 dims),
 * Q8_K per 256 dims, so a block then takes two heads (HPB). */
template <int ACT>
__global__ void __launch_bounds__(FA_HD *(ACT == CU_ACT_Q8_K ? 2 : 1))
    k_attn_combine(const float *__restrict__ part, int n_splits, const int32_t *pos_dev, float *__restrict__ out,
                   cu_q8act xq) {
    constexpr int HPB = ACT == CU_ACT_Q8_K ? 2 : 1, NW = FA_HD / 32;
    __shared__ float red[HPB][NW], wl[HPB][NW];
    __shared__ __align__(16) float wo[HPB][NW][FA_HD];
    __shared__ __align__(16) float res[HPB * FA_HD];
    cu_pdl_wait(); /* launched with cu_launch (PDL) */
    cu_pdl_trigger();
    const int hh = threadIdx.x / FA_HD, tid = threadIdx.x % FA_HD, warp = tid / 32, lane = tid % 32;
    const int n_head = gridDim.x * HPB, h = blockIdx.x * HPB + hh, t = blockIdx.y;
    const float *ph = part + ((int64_t)t * n_head + h) * n_splits * PART_STRIDE;
    /* a recorded step's grid is a bound: only the splits holding keys were written (the others would
     * add nothing: weight 0) */
    const int used = pos_dev ? min(n_splits, (int)((*pos_dev + t) / SPLIT_KEYS) + 1) : n_splits;
    float M = -INFINITY;
    for (int s = tid; s < used; s += FA_HD) M = fmaxf(M, ph[s * PART_STRIDE + FA_HD]);
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) M = fmaxf(M, __shfl_xor_sync(0xffffffffu, M, off));
    if (lane == 0) red[hh][warp] = M;
    __syncthreads();
    M = fmaxf(fmaxf(red[hh][0], red[hh][1]), fmaxf(red[hh][2], red[hh][3]));
    float L = 0.f, o[4] = {0.f, 0.f, 0.f, 0.f};
#pragma unroll 8
    for (int s = warp; s < used; s += NW) {
        const float *ps = ph + s * PART_STRIDE;
        const float4 a = *(const float4 *)(ps + 4 * lane);
        const float w = part_weight(ps[FA_HD], M);
        L = fmaf(ps[FA_HD + 1], w, L);
        o[0] = fmaf(a.x, w, o[0]), o[1] = fmaf(a.y, w, o[1]), o[2] = fmaf(a.z, w, o[2]), o[3] = fmaf(a.w, w, o[3]);
    }
    *(float4 *)&wo[hh][warp][4 * lane] = make_float4(o[0], o[1], o[2], o[3]);
    if (lane == 0) wl[hh][warp] = L;
    __syncthreads();
    const float Ls = ((wl[hh][0] + wl[hh][1]) + wl[hh][2]) + wl[hh][3];
    const float os = ((wo[hh][0][tid] + wo[hh][1][tid]) + wo[hh][2][tid]) + wo[hh][3][tid];
    const float r = os / Ls;
    out[((int64_t)t * n_head + h) * FA_HD + tid] = r;
    if (ACT == CU_ACT_Q8_0) q8_0_quantize_warp(r, lane, q8_row(xq, t), (h * FA_HD) / 32 + warp);
    if (ACT == CU_ACT_Q8_K) { /* elements 256 b .. of the row, b = blockIdx.x: 8 consecutive per lane */
        res[threadIdx.x] = r;
        __syncthreads();
        if (threadIdx.x < 32) {
            float v[8];
#pragma unroll
            for (int j = 0; j < 8; j++) v[j] = res[8 * threadIdx.x + j];
            q8_K_quantize_warp(v, threadIdx.x, q8_row(xq, t), blockIdx.x);
        }
    }
}

/* The split kernel for G query heads per KV head (G <= 8): the smallest instance that serves G. */
template <int KT, int W> static auto split_kernel(int64_t G) {
    return G <= 1 ? k_attn_split<KT, 1, 4, W> : G <= 2 ? k_attn_split<KT, 2, 4, W> : G <= 4 ? k_attn_split<KT, 4, 4, W>
                                                                              : k_attn_split<KT, 8, 4, W>;
}
template <int KT> static auto split_kernel(int64_t G, int W) {
    return W == 8 ? split_kernel<KT, 8>(G) : split_kernel<KT, 4>(G);
}

/* Warps per split block for a token that sees n_keys keys: 8 up to c->split_w8_keys (CU_ATTN_W8_KEYS;
 * a short context: each block's chain of dependent steps is then the time; tg128 on an H100 +2% at
 * depth 0, +4% at 4k), 4 beyond (the splits fill the GPU: at 16k 270 against 254 with 8). The choice
 * changes rounding, so it depends on the token alone, never on the batch around it. */
static int split_warps(const cuda_backend *c, int64_t n_keys) { return n_keys <= c->split_w8_keys ? 8 : 4; }

/* The prompt tiles need more than the default 48 KiB of shared memory: allowed once per backend. */
bool cu_attention_prepare(cuda_backend *c) {
    return (!c->mma || cu_attention_mma_prepare(c)) &&
           CU_OK(c, cudaFuncSetAttribute(k_attention_tiles<TY_TYPE_F16>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                         (int)FA_SMEM)) &&
           CU_OK(c, cudaFuncSetAttribute(k_attention_tiles<TY_TYPE_F32>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                         (int)FA_SMEM));
}

bool cu_launch_attention(cuda_backend *c, const float *q, const uint8_t *k, const uint8_t *v, uint32_t kv_type,
                         uint64_t row_bytes, int64_t n, int64_t pos0, int64_t n_head, int64_t n_head_kv,
                         int64_t head_dim, float *out, int act) {
    if (n <= 0) return false;
    if (n_head_kv <= 0 || n_head % n_head_kv != 0 || head_dim <= 0 || head_dim > 4096 || n_head > 65535 ||
        n > 65535) {
        cu_fail(c, "attention: unsupported shape (%lld heads, %lld KV heads, head_dim %lld, %lld queries)",
                (long long)n_head, (long long)n_head_kv, (long long)head_dim, (long long)n);
        return false;
    }
    const size_t smem = sizeof(float) * (size_t)(2 * head_dim + ATT_TILE);
    const float scale = 1.0f / sqrtf((float)head_dim);
    const int64_t G = n_head / n_head_kv;
    /* up to CU_MV_MAX_TOKENS queries (decode, a speculative batch): the split kernel, so that a batch
     * computes each position exactly as decoding it alone would */
    int64_t splits = (pos0 + n - 1) / SPLIT_KEYS + 1; /* of the last query; earlier ones leave theirs empty */
    const int64_t fit = c->attn_part ? c->attn_part_cap / (n * n_head * PART_STRIDE) : 0; /* splits the workspace holds */
    if (n <= CU_MV_MAX_TOKENS && head_dim == FA_HD && G <= 8 && splits <= fit &&
        (kv_type == TY_TYPE_F16 || kv_type == TY_TYPE_F32)) {
        /* a recording serves every position of its power of two of splits: the grid is that bound
         * (or all the workspace holds, the context's last position included), the rest stay empty */
        if (c->capturing) splits = c->cap_splits < fit ? c->cap_splits : fit;
        const int32_t *pd = c->capturing ? c->step_dev + 1 : NULL;
        const float *pt = c->attn_part;
        /* tokens [0, n8) take 8 warps, the rest 4 (split_warps); a recording's one token: its splits'
         * power of two decides, which puts the same positions on the same side of CU_ATTN_W8_KEYS */
        int64_t n8 = 0;
        if (c->capturing) n8 = split_warps(c, splits * SPLIT_KEYS) == 8 ? n : 0;
        else
            while (n8 < n && split_warps(c, pos0 + n8 + 1) == 8) n8++;
        auto launch_split = [&](int64_t t0, int64_t t1, int W) { /* tokens [t0, t1) with W warps */
            if (t1 <= t0) return;
            const dim3 g((unsigned)n_head_kv, (unsigned)splits, (unsigned)(t1 - t0)), block(32 * W);
            cu_launch(c, kv_type == TY_TYPE_F16 ? split_kernel<TY_TYPE_F16>(G, W) : split_kernel<TY_TYPE_F32>(G, W), g,
                      block, q, k, v, row_bytes, pos0, pd, (int)n_head, (int)n_head_kv, scale, c->attn_part, (int)t0);
            c->n_attn_split4 += W == 4;
        };
        launch_split(0, n8, 8);
        launch_split(n8, n, 4);
        /* Q8_K blocks of 256 need two heads per combine block */
        const int qa = act == CU_ACT_Q8_0 || (act == CU_ACT_Q8_K && n_head % 2 == 0) ? act : CU_ACT_NONE;
        const dim3 cg((unsigned)n_head, (unsigned)n);
        if (qa == CU_ACT_Q8_K)
            cu_launch(c, k_attn_combine<CU_ACT_Q8_K>, dim3(cg.x / 2, cg.y), dim3(2 * FA_HD), pt, (int)splits, pd, out, c->xq);
        else if (qa == CU_ACT_Q8_0)
            cu_launch(c, k_attn_combine<CU_ACT_Q8_0>, cg, dim3(FA_HD), pt, (int)splits, pd, out, c->xq);
        else
            cu_launch(c, k_attn_combine<CU_ACT_NONE>, cg, dim3(FA_HD), pt, (int)splits, pd, out, c->xq);
        if (qa != CU_ACT_NONE) c->n_attn_quant += n;
        return qa != CU_ACT_NONE;
    }
    /* prompts only: a batch of up to CU_MV_MAX_TOKENS (a speculative verification) that the split
     * kernel cannot take goes to k_attention below, which computes each token as it would alone */
    if (n > CU_MV_MAX_TOKENS && cu_attention_mma_usable(c, kv_type, head_dim, n_head, n_head_kv)) {
        c->capture_bad |= c->capturing; /* the position is passed by value (prompts) */
        cu_launch_attention_mma(c, q, k, v, row_bytes, n, pos0, n_head, n_head_kv, out);
        return false;
    }
    if (n > CU_MV_MAX_TOKENS && head_dim == FA_HD && (kv_type == TY_TYPE_F16 || kv_type == TY_TYPE_F32)) {
        c->capture_bad |= c->capturing; /* the tiles take the position by value (and serve prompts) */
        dim3 g((unsigned)((n + FA_BQ - 1) / FA_BQ), (unsigned)n_head);
        if (kv_type == TY_TYPE_F16) {
            k_attention_tiles<TY_TYPE_F16><<<g, FA_THREADS, FA_SMEM, c->stream>>>(q, k, v, row_bytes, pos0, (int)n, (int)n_head,
                                                                                (int)n_head_kv, scale, out);
        } else {
            k_attention_tiles<TY_TYPE_F32><<<g, FA_THREADS, FA_SMEM, c->stream>>>(q, k, v, row_bytes, pos0, (int)n, (int)n_head,
                                                                                (int)n_head_kv, scale, out);
        }
        return false;
    }
    dim3 grid((unsigned)n_head, (unsigned)n);
    const int32_t *pos_dev = c->capturing ? c->step_dev + 1 : NULL;
    switch (kv_type) {
#define X(KT)                                                                                                    \
    case KT:                                                                                                     \
        cu_launch_smem(c, head_dim <= 128 ? k_attention<KT, 4> : k_attention<KT, 0>, grid, dim3(ATT_THREADS), smem, \
                       q, k, v, row_bytes, pos0, pos_dev, (int)n_head, (int)n_head_kv, (int)head_dim, scale, out); \
        break;
        X(TY_TYPE_F32) X(TY_TYPE_F16) X(TY_TYPE_Q8_0)
#undef X
    default: cu_fail(c, "attention: cache type %s is not supported on CUDA", ty_type_name(kv_type));
    }
    return false;
}
