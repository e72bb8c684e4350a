/* cuda_ops.cu - element-wise, normalisation, RoPE and KV-cache kernels.
 *
 * Each mirrors the CPU backend's arithmetic (cpu_backend.c) operation for operation where that is
 * cheap, so that results agree to the last bit or nearly: __fmul_rn/__fsub_rn keep products from
 * being fused into FMAs, RoPE angles use the host-computed float32 inverse frequencies and double
 * cos/sin rounded to float, the F16 and Q8_0 cache conversions round exactly as ty_quantize_row.
 *
 * Fused variants (cuda_common.cuh, "Fusion") compute their values with the same device functions
 * as the plain kernels (rms_scale, swiglu1, rope_lane, kv_store_lane; rmsnorm is one kernel for
 * both) and quantize with cuda_q8act.cuh's quantizers, so they write the same bits. */
#include <math.h>

#include "backend/cuda/cuda_common.cuh"
#include "backend/cuda/cuda_q8act.cuh"
#include "backend/cuda/cuda_quant.cuh"

#define EW_THREADS 256
#define EW_MAX_BLOCKS 65535u

/* ---- rmsnorm: one block per row ------------------------------------------------------------------ */

template <int T> __device__ __forceinline__ float norm_weight(const uint8_t *w, int64_t i);
template <> __device__ __forceinline__ float norm_weight<TY_TYPE_F32>(const uint8_t *w, int64_t i) {
    return ((const float *)w)[i];
}
template <> __device__ __forceinline__ float norm_weight<TY_TYPE_F16>(const uint8_t *w, int64_t i) {
    return __half2float(__ushort_as_half(((const unsigned short *)w)[i]));
}
template <> __device__ __forceinline__ float norm_weight<TY_TYPE_BF16>(const uint8_t *w, int64_t i) {
    return __uint_as_float((uint32_t)((const unsigned short *)w)[i] << 16);
}

/* Layout: thread t of the block holds elements 2048 p + 8 t .. + 7 of the row (pass p), so that warp
 * w's elements of a pass are the 256-block 8 p + w (Q8_K's layout: 8 consecutive elements per lane)
 * and the quad of lanes 4q.. the 32-group 64 p + 8 w + q (Q8_0). Rows of up to RMS_PASSES * 2048
 * elements stay in registers between the sum and the output; longer rows are read again. */
#define RMS_THREADS 256
#define RMS_PASSES 2

/* The 8 elements of thread t in pass p (zeros past d; 2 float4 loads when vec: d % 8 == 0 and the
 * rows 16-byte aligned). */
__device__ __forceinline__ void rms_load8(const float *__restrict__ xr, int64_t d, int p, bool vec, float (&v)[8]) {
    const int64_t i0 = 2048 * (int64_t)p + 8 * threadIdx.x;
    if (vec) {
        float4 a = make_float4(0.f, 0.f, 0.f, 0.f), b = a;
        if (i0 < d) a = *(const float4 *)(xr + i0), b = *(const float4 *)(xr + i0 + 4);
        v[0] = a.x, v[1] = a.y, v[2] = a.z, v[3] = a.w, v[4] = b.x, v[5] = b.y, v[6] = b.z, v[7] = b.w;
    } else {
#pragma unroll
        for (int j = 0; j < 8; j++) v[j] = i0 + j < d ? xr[i0 + j] : 0.f;
    }
}

/* 1 / sqrt(mean(x^2) + eps) of the row xr for the whole block, returned to all: the sum of squares in
 * double, as the CPU does: each thread over its elements in order (pass, then slot), the warp by a
 * butterfly, the 8 warps' sums in order. One barrier: every thread adds the 8 warp sums itself. All
 * rmsnorm kernels (fused or not) sum in this order, so all get the same scale. x holds the first
 * RMS_PASSES passes afterwards. */
__device__ __forceinline__ float rms_scale(const float *__restrict__ xr, int64_t d, float eps, bool vec,
                                           float (&x)[RMS_PASSES][8]) {
    double ss = 0;
    const int passes = (int)((d + 2047) / 2048);
#pragma unroll
    for (int p = 0; p < RMS_PASSES; p++) {
        rms_load8(xr, p < passes ? d : 0, p, vec, x[p]); /* a pass past the row: zeros, no load */
#pragma unroll
        for (int j = 0; j < 8; j++) ss += (double)x[p][j] * (double)x[p][j];
    }
    for (int p = RMS_PASSES; p < passes; p++) {
        float v[8];
        rms_load8(xr, d, p, vec, v);
#pragma unroll
        for (int j = 0; j < 8; j++) ss += (double)v[j] * (double)v[j];
    }
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) ss += __shfl_xor_sync(0xffffffffu, ss, off);
    __shared__ double part[RMS_THREADS / 32];
    if (threadIdx.x % 32 == 0) part[threadIdx.x / 32] = ss;
    __syncthreads();
    double t = 0;
#pragma unroll
    for (int i = 0; i < RMS_THREADS / 32; i++) t += part[i];
    return (float)(1.0 / sqrt(t / (double)d + (double)eps));
}

/* One block per row: the thread's elements (rms_scale's layout) normalised and written, and with A
 * != CU_ACT_NONE also quantized into row blockIdx.x of xq (d is then a multiple of the group:
 * cu_xq_fits). */
template <int T, int A>
__global__ void __launch_bounds__(RMS_THREADS)
    k_rmsnorm(const float *__restrict__ x, const uint8_t *__restrict__ w, float eps, int64_t d, float *__restrict__ out,
              cu_q8act xq, bool vec) {
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    /* the norm weights depend on no earlier kernel: loaded before the PDL wait, so that they are not
     * one more memory round trip after the reduction */
    float wv[RMS_PASSES][8];
#pragma unroll
    for (int p = 0; p < RMS_PASSES; p++)
#pragma unroll
        for (int j = 0; j < 8; j++) {
            const int64_t i = 2048 * p + 8 * threadIdx.x + j;
            wv[p][j] = i < d ? norm_weight<T>(w, i) : 0.f;
        }
    cu_pdl_wait(); /* launched with cu_launch (PDL) */
    cu_pdl_trigger();
    const float *xr = x + (int64_t)blockIdx.x * d;
    float *o = out + (int64_t)blockIdx.x * d;
    float xv[RMS_PASSES][8];
    const float scale = rms_scale(xr, d, eps, vec, xv);
    const cu_q8act a = q8_row(xq, blockIdx.x);
    const int passes = (int)((d + 2047) / 2048);
    auto emit = [&](int p, const float (&v)[8]) { /* write (and quantize) the thread's elements of pass p */
        const int64_t i0 = 2048 * (int64_t)p + 8 * threadIdx.x;
        if (vec && i0 < d) {
            *(float4 *)(o + i0) = make_float4(v[0], v[1], v[2], v[3]);
            *(float4 *)(o + i0 + 4) = make_float4(v[4], v[5], v[6], v[7]);
        } else {
#pragma unroll
            for (int j = 0; j < 8; j++)
                if (i0 + j < d) o[i0 + j] = v[j];
        }
        if constexpr (A == CU_ACT_Q8_K) { /* d is a multiple of 256: whole warps in or out */
            if (2048 * (int64_t)p + 256 * warp < d) q8_K_quantize_warp(v, lane, a, 8 * p + warp);
        } else if constexpr (A == CU_ACT_Q8_0) { /* d is a multiple of 32: whole quads in or out */
            q8_0_quantize_quad(v, lane, a, (int)(i0 / 32), i0 < d);
        }
    };
#pragma unroll
    for (int p = 0; p < RMS_PASSES; p++) {
        if (p >= passes) break;
        float v[8];
#pragma unroll
        for (int j = 0; j < 8; j++) v[j] = __fmul_rn(wv[p][j], __fmul_rn(xv[p][j], scale));
        emit(p, v);
    }
    for (int p = RMS_PASSES; p < passes; p++) { /* rows longer than the registers hold */
        const int64_t i0 = 2048 * (int64_t)p + 8 * threadIdx.x;
        float v[8];
        rms_load8(xr, d, p, vec, v);
#pragma unroll
        for (int j = 0; j < 8; j++) v[j] = i0 + j < d ? __fmul_rn(norm_weight<T>(w, i0 + j), __fmul_rn(v[j], scale)) : 0.f;
        emit(p, v);
    }
}

template <int T>
static void launch_rmsnorm_t(cuda_backend *c, const float *x, const cu_weight *w, float eps, int64_t n, float *out,
                             int act) {
    const dim3 grid((unsigned)n), block(RMS_THREADS);
    const uint8_t *wd = w->dev;
    /* rows start at multiples of ne0 floats: 16-byte aligned when ne0 % 8 == 0 and x, out are */
    const bool vec = w->ne0 % 8 == 0 && (((uintptr_t)x | (uintptr_t)out) & 15) == 0;
    switch (act) {
    case CU_ACT_Q8_0: cu_launch(c, k_rmsnorm<T, CU_ACT_Q8_0>, grid, block, x, wd, eps, w->ne0, out, c->xq, vec); break;
    case CU_ACT_Q8_K: cu_launch(c, k_rmsnorm<T, CU_ACT_Q8_K>, grid, block, x, wd, eps, w->ne0, out, c->xq, vec); break;
    default: cu_launch(c, k_rmsnorm<T, CU_ACT_NONE>, grid, block, x, wd, eps, w->ne0, out, c->xq, vec);
    }
}

void cu_launch_rmsnorm(cuda_backend *c, const float *x, const cu_weight *w, float eps, int64_t n, float *out,
                       int act) {
    if (n <= 0) return;
    if (n > INT32_MAX) { cu_fail(c, "rmsnorm: %lld rows", (long long)n); return; }
    if (act != CU_ACT_NONE && !cu_xq_fits(c, act, w->ne0, n)) {
        cu_fail(c, "rmsnorm: %lld rows of %lld do not fit the 8-bit activation buffer", (long long)n,
                (long long)w->ne0);
        return;
    }
    switch (w->type) {
    case TY_TYPE_F32: launch_rmsnorm_t<TY_TYPE_F32>(c, x, w, eps, n, out, act); break;
    case TY_TYPE_F16: launch_rmsnorm_t<TY_TYPE_F16>(c, x, w, eps, n, out, act); break;
    case TY_TYPE_BF16: launch_rmsnorm_t<TY_TYPE_BF16>(c, x, w, eps, n, out, act); break;
    default: cu_fail(c, "rmsnorm: norm weights of type %s are not supported on CUDA", ty_type_name(w->type));
    }
}

/* ---- RoPE: one thread per (token, head, pair index) ------------------------------------------- *
 * Each thread computes its own angle's cos/sin (in double, rounded to float, as the CPU does): a
 * thread per pair keeps all loads of a decode step in flight at once, where looping over the heads
 * made 32 dependent round trips to memory (12 us per call). */

/* The angle of pair i at position pos, and the rotated pair (a, b) -> (first, second): the CPU's
 * operations, each product rounded on its own (no FMA). */
__device__ __forceinline__ float rope_angle(int64_t pos, const float *__restrict__ inv_freq, int64_t i) {
    return __fmul_rn((float)pos, inv_freq[i]);
}
__device__ __forceinline__ float rot_first(float a, float b, float cs, float sn) {
    return __fsub_rn(__fmul_rn(a, cs), __fmul_rn(b, sn));
}
__device__ __forceinline__ float rot_second(float a, float b, float cs, float sn) {
    return __fadd_rn(__fmul_rn(a, sn), __fmul_rn(b, cs));
}

__global__ void k_rope(float *__restrict__ x, int64_t n, int64_t n_head, int64_t head_dim, int64_t half,
                       const float *__restrict__ inv_freq, int64_t pos0) {
    const int64_t total = n * n_head * half;
    for (int64_t idx = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; idx < total;
         idx += (int64_t)gridDim.x * blockDim.x) {
        const int64_t i = idx % half, th = idx / half, t = th / n_head;
        const float angle = rope_angle(pos0 + t, inv_freq, i);
        const float cs = (float)cos((double)angle), sn = (float)sin((double)angle);
        float *v = x + th * head_dim + 2 * i;
        const float a = v[0], b = v[1];
        v[0] = rot_first(a, b, cs, sn);
        v[1] = rot_second(a, b, cs, sn);
    }
}

void cu_launch_rope(cuda_backend *c, float *x, int64_t n, int64_t n_head, int64_t head_dim, int64_t n_rot,
                    int64_t pos0) {
    const int64_t half = n_rot / 2;
    if (n <= 0 || half <= 0) return;
    k_rope<<<cu_blocks(n * n_head * half, EW_THREADS, EW_MAX_BLOCKS), EW_THREADS, 0, c->stream>>>(
        x, n, n_head, head_dim, half, c->rope_inv_freq, pos0);
}

/* ---- KV cache stores ---------------------------------------------------------------------------- */

__global__ void k_store_f16(__half *__restrict__ dst, const float *__restrict__ src, int64_t n) {
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
        dst[i] = __float2half_rn(src[i]);
}

/* One Q8_0 cache block (34 bytes at blk) from a warp, lane i holding element i: d = amax / 127,
 * q = round(x / d) as ty_quantize_row does (roundf: halves away from zero; the multiplication by
 * 1/d, not a division). */
__device__ __forceinline__ void store_q8_0_warp(uint8_t *__restrict__ blk, float v, int lane) {
    float amax = fabsf(v);
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, off));
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    int q = (int)roundf(__fmul_rn(v, id));
    q = q < -128 ? -128 : q > 127 ? 127 : q;
    blk[2 + lane] = (uint8_t)(int8_t)q;
    /* one 16-bit store (blocks are 34 bytes: 2-byte aligned); two byte stores left the low
     * byte of d unwritten on the H100 (sm_90, nvcc 13.0), seen as d = 0x23ff read back 0x2300 */
    if (lane == 0) *(unsigned short *)blk = __half_as_ushort(__float2half_rn(d));
}

/* Q8_0, one warp per 32-element block. */
__global__ void k_store_q8_0(uint8_t *__restrict__ dst, const float *__restrict__ src, int64_t n_blocks) {
    const int lane = threadIdx.x % 32;
    const int64_t warps = (int64_t)gridDim.x * (blockDim.x / 32);
    for (int64_t b = (int64_t)blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32; b < n_blocks; b += warps)
        store_q8_0_warp(dst + b * 34, src[b * 32 + lane], lane);
}

void cu_launch_kv_store(cuda_backend *c, uint8_t *dst, uint32_t kv_type, int64_t kv_dim, int64_t n,
                        const float *src) {
    const int64_t total = n * kv_dim;
    if (total <= 0) return;
    switch (kv_type) {
    case TY_TYPE_F32:
        CU_OK(c, cudaMemcpyAsync(dst, src, sizeof(float) * (size_t)total, cudaMemcpyDeviceToDevice, c->stream));
        break;
    case TY_TYPE_F16:
        k_store_f16<<<cu_blocks(total, EW_THREADS, EW_MAX_BLOCKS), EW_THREADS, 0, c->stream>>>((__half *)dst, src,
                                                                                              total);
        break;
    case TY_TYPE_Q8_0: /* rows are whole blocks (kv_dim % 32 == 0, checked by the caller) */
        k_store_q8_0<<<cu_blocks(total / 32, EW_THREADS / 32, EW_MAX_BLOCKS), EW_THREADS, 0, c->stream>>>(
            dst, src, total / 32);
        break;
    default: cu_fail(c, "kv_store: cache type %s is not supported on CUDA", ty_type_name(kv_type));
    }
}

/* ---- RoPE and the KV store in one launch (the rope_store op) ----------------------------------- *
 * One warp per 32-column chunk of one row of q, k or v (work items: the n rows' chunks of q, then
 * of k, then of v); lane = column. A rotated pair (columns 2i, 2i+1 of a head) sits on lanes 2j,
 * 2j+1 of one warp, because head_dim is even and chunks start at multiples of 32: the two lanes
 * swap their elements, and their angle's cos (even lane) and sin (odd lane), by shuffles, so that
 * no lane reads an element another lane writes. Rotated q and k go back to their buffers (as rope
 * leaves them), k and v into the cache. With a Q8_0 cache the KV width is a multiple of 32, so a
 * k or v chunk is exactly one cache block. */

typedef struct rope_store_args {
    float *q, *k;
    const float *v;
    uint8_t *kc, *vc;          /* the K and V caches (row 0; rows of row_bytes) */
    const float *inv_freq;
    const int32_t *pos_dev;    /* when set, the position of row 0 is read here (a recorded step) */
    int64_t n, pos0;           /* else it is pos0 */
    uint64_t row_bytes;
    int qw, kw, head_dim, n_rot2; /* row widths of q and k/v; rotated columns per head (even) */
    uint32_t kv_type;
} rope_store_args;

/* This lane's element after RoPE: `own` is column e of its head (e < 0: a lane past the row end).
 * All 32 lanes must call it (shuffles). */
__device__ __forceinline__ float rope_lane(float own, int e, int64_t pos, const rope_store_args &p, int lane) {
    const bool rot = e >= 0 && e < p.n_rot2, even = (lane & 1) == 0; /* lane parity = column parity */
    float tr = 0.f;
    if (rot) {
        const float angle = rope_angle(pos, p.inv_freq, e >> 1);
        tr = even ? (float)cos((double)angle) : (float)sin((double)angle);
    }
    const float other = __shfl_xor_sync(0xffffffffu, own, 1), tr_other = __shfl_xor_sync(0xffffffffu, tr, 1);
    if (!rot) return own;
    return even ? rot_first(own, other, tr, tr_other) : rot_second(other, own, tr_other, tr);
}

/* Element `at` (of the n rows) of a K or V cache, from a warp holding a chunk of 32 columns; all 32
 * lanes must call it (Q8_0: shuffles). */
__device__ __forceinline__ void kv_store_lane(uint8_t *__restrict__ dst, uint32_t kv_type, int64_t at, float v,
                                              int lane, bool in) {
    if (kv_type == TY_TYPE_Q8_0) store_q8_0_warp(dst + at / 32 * 34, v, lane);
    else if (!in) return;
    else if (kv_type == TY_TYPE_F16) ((__half *)dst)[at] = __float2half_rn(v);
    else ((float *)dst)[at] = v;
}

__global__ void __launch_bounds__(EW_THREADS) k_rope_store(rope_store_args p) {
    cu_pdl_wait(); /* launched with cu_launch (PDL) */
    cu_pdl_trigger();
    const int lane = threadIdx.x % 32;
    const int64_t cq = (p.qw + 31) / 32, ck = (p.kw + 31) / 32;
    const int64_t nq = p.n * cq, nk = p.n * ck, items = nq + 2 * nk;
    const int64_t step = (int64_t)gridDim.x * (EW_THREADS / 32);
    const int64_t pos0 = p.pos_dev ? (int64_t)*p.pos_dev : p.pos0;
    uint8_t *const kc = p.kc + (uint64_t)pos0 * p.row_bytes, *const vc = p.vc + (uint64_t)pos0 * p.row_bytes;
    for (int64_t it = (int64_t)blockIdx.x * (EW_THREADS / 32) + threadIdx.x / 32; it < items; it += step) {
        const int m = it < nq ? 0 : it < nq + nk ? 1 : 2; /* q, k, v: the same for the whole warp */
        const int64_t r = m == 0 ? it : m == 1 ? it - nq : it - nq - nk;
        const int64_t chunks = m == 0 ? cq : ck;
        const int width = m == 0 ? p.qw : p.kw;
        const int64_t t = r / chunks;
        const int col = (int)(r % chunks) * 32 + lane;
        const bool in = col < width;
        const int64_t at = t * width + col;
        float *rw = m == 0 ? p.q : p.k; /* the rows rope rotates in place */
        float v = in ? (m == 2 ? p.v[at] : rw[at]) : 0.f;
        if (m < 2) {
            v = rope_lane(v, in ? col % p.head_dim : -1, pos0 + t, p, lane);
            if (in) rw[at] = v;
            if (m == 0) continue;
        }
        kv_store_lane(m == 1 ? kc : vc, p.kv_type, at, v, lane, in);
    }
}

void cu_launch_rope_store(cuda_backend *c, float *q, float *k, const float *v, uint8_t *k_cache, uint8_t *v_cache,
                          uint64_t row_bytes, uint32_t kv_type, int64_t n, int64_t n_head, int64_t n_head_kv,
                          int64_t head_dim, int64_t n_rot, int64_t pos0, const int32_t *pos_dev) {
    if (n <= 0) return;
    rope_store_args p;
    p.q = q;
    p.k = k;
    p.v = v;
    p.kc = k_cache;
    p.vc = v_cache;
    p.inv_freq = c->rope_inv_freq;
    p.pos_dev = pos_dev;
    p.n = n;
    p.pos0 = pos0;
    p.row_bytes = row_bytes;
    p.qw = (int)(n_head * head_dim);
    p.kw = (int)(n_head_kv * head_dim);
    p.head_dim = (int)head_dim;
    p.n_rot2 = (int)(n_rot / 2 * 2);
    p.kv_type = kv_type;
    const int64_t items = n * ((p.qw + 31) / 32 + 2 * ((p.kw + 31) / 32));
    cu_launch(c, k_rope_store, dim3(cu_blocks(items, EW_THREADS / 32, EW_MAX_BLOCKS)), dim3(EW_THREADS), p);
}

/* ---- element-wise ------------------------------------------------------------------------------- */

/* silu(x) * u */
__device__ __forceinline__ float swiglu1(float x, float u) { return __fmul_rn(__fdiv_rn(x, __fadd_rn(1.0f, expf(-x))), u); }

__global__ void k_swiglu(float *__restrict__ g, const float *__restrict__ u, int64_t n) {
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
        g[i] = swiglu1(g[i], u[i]);
}

/* swiglu of rows of ne0 (row blockIdx.y), the output also quantized into xq for w_down: one warp
 * per 32-group (Q8_0, lane = element) or 256-block (Q8_K, 8 consecutive elements per lane).
 * ne0 is a multiple of the group (cu_xq_fits). */
template <int A>
__global__ void __launch_bounds__(EW_THREADS) k_swiglu_q8(float *__restrict__ g, const float *__restrict__ u, int ne0,
                                                          cu_q8act xq) {
    cu_pdl_wait(); /* launched with cu_launch (PDL) */
    cu_pdl_trigger();
    constexpr int GS = A == CU_ACT_Q8_K ? 256 : 32;
    const int grp = blockIdx.x * (EW_THREADS / 32) + threadIdx.x / 32, lane = threadIdx.x % 32;
    if (grp * GS >= ne0) return; /* whole warps */
    const cu_q8act a = q8_row(xq, blockIdx.y);
    float *gr = g + (int64_t)blockIdx.y * ne0;
    const float *ur = u + (int64_t)blockIdx.y * ne0;
    if constexpr (A == CU_ACT_Q8_0) {
        const int i = 32 * grp + lane;
        const float v = swiglu1(gr[i], ur[i]);
        gr[i] = v;
        q8_0_quantize_warp(v, lane, a, grp);
    } else {
        float v[8];
#pragma unroll
        for (int j = 0; j < 8; j++) {
            const int i = 256 * grp + 8 * lane + j;
            v[j] = swiglu1(gr[i], ur[i]);
            gr[i] = v[j];
        }
        q8_K_quantize_warp(v, lane, a, grp);
    }
}

__global__ void k_add(float *__restrict__ x, const float *__restrict__ y, int64_t n) {
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
        x[i] = __fadd_rn(x[i], y[i]);
}

void cu_launch_swiglu(cuda_backend *c, float *g, const float *u, int64_t n) {
    if (n > 0) k_swiglu<<<cu_blocks(n, EW_THREADS, EW_MAX_BLOCKS), EW_THREADS, 0, c->stream>>>(g, u, n);
}

void cu_launch_swiglu_q8(cuda_backend *c, float *g, const float *u, int64_t ne0, int64_t rows, int act) {
    if (!cu_xq_fits(c, act, ne0, rows)) {
        cu_fail(c, "swiglu: %lld rows of %lld do not fit the 8-bit activation buffer", (long long)rows, (long long)ne0);
        return;
    }
    const int gs = act == CU_ACT_Q8_K ? 256 : 32, warps = EW_THREADS / 32;
    const dim3 grid((unsigned)((ne0 / gs + warps - 1) / warps), (unsigned)rows);
    if (act == CU_ACT_Q8_K) cu_launch(c, k_swiglu_q8<CU_ACT_Q8_K>, grid, dim3(EW_THREADS), g, u, (int)ne0, c->xq);
    else cu_launch(c, k_swiglu_q8<CU_ACT_Q8_0>, grid, dim3(EW_THREADS), g, u, (int)ne0, c->xq);
}

void cu_launch_add(cuda_backend *c, float *x, const float *y, int64_t n) {
    if (n > 0) k_add<<<cu_blocks(n, EW_THREADS, EW_MAX_BLOCKS), EW_THREADS, 0, c->stream>>>(x, y, n);
}
