/* cuda_attention_mma.cu - prompt attention on the fp16 tensor cores (FlashAttention-2 tiling).
 *
 * For the fast path (not exact_math), an F16 KV cache and head_dim 128: the fp32 tiles of
 * cuda_attention.cu spent 85% of a 512-token prompt at 16k depth in attention (pp512 1730 tokens/s,
 * llama.cpp 6995). Here S = Q K^T and O += P V are mma.m16n8k16 (f16 in, f32 accumulate).
 *
 * Block: the G = n_head / n_head_kv query heads that share one KV head, for 64 / G consecutive
 * tokens: 64 query rows, row r = token t0 + r / G, head kvh G + r % G, so every K/V tile loaded
 * serves 64 rows and all rows of a token share its causal bound. Warp w owns rows 16w..16w+15 and
 * holds them as A fragments for the whole kernel. K and V tiles of 64 keys are copied to shared
 * memory with cp.async, the next tile while the current one is used (two buffers). Blocks that see
 * the most keys are launched first (the grid walks the tokens from the end), so the long ones do not
 * form the tail.
 *
 * Numbers: Q (scaled first, in fp32) and P are rounded to fp16 (unit roundoff 2^-11) as llama.cpp's
 * flash attention does; the keys and values already are fp16. Scores, the running max and sum, and
 * the output stay fp32; the softmax uses exp2 of scores pre-multiplied by log2(e). tests/test_cuda.c
 * states the resulting bound.
 *
 * Fragment layouts (PTX ISA, mma.m16n8k16 .f16): lane = 4 g + c. A (16 x 16, row-major): a0 = row g,
 * cols 2c, 2c+1; a1 = row g + 8, same cols; a2, a3 = cols + 8. B (16 x 8, "col"): b0 = rows 2c, 2c+1
 * of col g; b1 = rows + 8. C (16 x 8): c0, c1 = row g, cols 2c, 2c+1; c2, c3 = row g + 8. A C tile of
 * scores over keys 16j..16j+7 and 16j+8..+15 is therefore already the A fragment of P for key step j. */
#include <math.h>

#include "backend/cuda/cuda_common.cuh"

#define TC_HD 128
#define TC_ROWS 64 /* query rows (token x head) per block */
#define TC_KEYS 64 /* keys per tile */
#define TC_WARPS (TC_ROWS / 16)
#define TC_STRIDE (TC_HD + 8) /* halves per shared row: 16 bytes of padding keep ldmatrix conflict-free */
#define TC_TILE_HALVES (TC_KEYS * TC_STRIDE)

static const size_t TC_SMEM = sizeof(__half) * 4 * TC_TILE_HALVES; /* K and V, two buffers each: 69,632 */

__device__ __forceinline__ uint32_t smem_addr(const void *p) { return (uint32_t)__cvta_generic_to_shared(p); }

__device__ __forceinline__ void cp_async16(uint32_t dst, const void *src, bool valid) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    /* src-size 0 fills the 16 bytes with zeros: keys past the end become zero rows */
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;" ::"r"(dst), "l"(src), "r"(valid ? 16 : 0));
#endif
}
__device__ __forceinline__ void cp_async_commit() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    asm volatile("cp.async.commit_group;");
#endif
}
template <int N> __device__ __forceinline__ void cp_async_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    asm volatile("cp.async.wait_group %0;" ::"n"(N));
#endif
}

/* Four 8x8 b16 matrices from shared memory (lanes 8i..8i+7 give matrix i's row addresses); TRANS
 * hands each lane the transposed elements. */
template <bool TRANS> __device__ __forceinline__ void ldsm_x4(uint32_t (&r)[4], uint32_t addr) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    if (TRANS)
        asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];"
                     : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                     : "r"(addr));
    else
        asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];"
                     : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                     : "r"(addr));
#endif
}

__device__ __forceinline__ void mma_f16(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
                 "{%0,%1,%2,%3};"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
#else
    __trap(); /* never reached: cu_mma_compiled() keeps this kernel off code built for < sm_80 */
#endif
}

__device__ __forceinline__ uint32_t pack_half2(float lo, float hi) {
    const __half2 h = __floats2half2_rn(lo, hi);
    return *(const uint32_t *)&h;
}

/* Copy keys k0..k0+63 of KV head kvh (64 rows of 256 bytes) into a shared tile; rows at or past
 * n_keys become zeros (their scores are masked and zero values keep P V finite). */
__device__ __forceinline__ void load_tile(__half *dst, const uint8_t *cache, uint64_t row_bytes, int64_t kvh,
                                          int64_t k0, int64_t n_keys) {
    const int tid = threadIdx.x;
#pragma unroll
    for (int i = tid; i < TC_KEYS * (TC_HD / 8); i += 32 * TC_WARPS) {
        const int j = i / (TC_HD / 8), ch = i % (TC_HD / 8); /* key, 16-byte chunk */
        const bool valid = k0 + j < n_keys;
        const uint8_t *src = valid ? cache + (uint64_t)(k0 + j) * row_bytes + (uint64_t)kvh * TC_HD * 2 + 16 * ch : cache;
        cp_async16(smem_addr(dst + j * TC_STRIDE + 8 * ch), src, valid);
    }
}

__global__ void __launch_bounds__(32 * TC_WARPS)
    k_attention_mma(const float *__restrict__ q, const uint8_t *__restrict__ kc, const uint8_t *__restrict__ vc,
                    uint64_t row_bytes, int64_t pos0, int n, int n_head, int n_head_kv, float scale_log2,
                    float *__restrict__ out) {
    extern __shared__ __align__(16) __half tc_sm[];
    __half *Ks = tc_sm, *Vs = tc_sm + 2 * TC_TILE_HALVES; /* [buffer][key][TC_STRIDE] */
    const int G = n_head / n_head_kv, tpb = TC_ROWS / G; /* query heads per KV head, tokens per block */
    const int kvh = blockIdx.y;
    const int t0 = (gridDim.x - 1 - blockIdx.x) * tpb; /* the last tokens (most keys) first */
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, c = lane % 4;
    const int64_t q_stride = (int64_t)n_head * TC_HD;

    /* the warp's rows g and g + 8 of its 16: token and head of each */
    int tok[2], head[2];
#pragma unroll
    for (int i = 0; i < 2; i++) {
        const int r = 16 * warp + g + 8 * i;
        tok[i] = t0 + r / G;
        head[i] = kvh * G + r % G;
    }
    const int last = min(t0 + tpb, n) - 1;
    const int64_t n_keys = pos0 + last + 1; /* keys the block's last token sees */
    const int64_t n_tiles = (n_keys + TC_KEYS - 1) / TC_KEYS;

    load_tile(Ks, kc, row_bytes, kvh, 0, n_keys);
    load_tile(Vs, vc, row_bytes, kvh, 0, n_keys);
    cp_async_commit();

    /* Q as A fragments, fp16, 8 key-dimension steps of 16 */
    uint32_t qa[TC_HD / 16][4];
#pragma unroll
    for (int ks = 0; ks < TC_HD / 16; ks++)
#pragma unroll
        for (int i = 0; i < 2; i++) {
            float2 lo = make_float2(0.f, 0.f), hi = lo;
            if (tok[i] < n) {
                const float *qr = q + (int64_t)tok[i] * q_stride + (int64_t)head[i] * TC_HD + 16 * ks + 2 * c;
                lo = *(const float2 *)qr;
                hi = *(const float2 *)(qr + 8);
            }
            /* scaled in fp32 first (by log2(e) / sqrt(128)), so that a large q does not overflow fp16 */
            qa[ks][i] = pack_half2(lo.x * scale_log2, lo.y * scale_log2);
            qa[ks][2 + i] = pack_half2(hi.x * scale_log2, hi.y * scale_log2);
        }

    float o[TC_HD / 8][4];
#pragma unroll
    for (int d = 0; d < TC_HD / 8; d++) o[d][0] = o[d][1] = o[d][2] = o[d][3] = 0.f;
    float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.f, 0.f}; /* rows g, g + 8: running max (log2 units), sum */
    const int64_t qpos[2] = {pos0 + tok[0], pos0 + tok[1]}; /* keys 0..qpos are visible */
    const int64_t first_qpos = pos0 + t0;

    for (int64_t tile = 0; tile < n_tiles; tile++) {
        const int buf = (int)(tile & 1);
        if (tile + 1 < n_tiles) {
            load_tile(Ks + (buf ^ 1) * TC_TILE_HALVES, kc, row_bytes, kvh, (tile + 1) * TC_KEYS, n_keys);
            load_tile(Vs + (buf ^ 1) * TC_TILE_HALVES, vc, row_bytes, kvh, (tile + 1) * TC_KEYS, n_keys);
        }
        cp_async_commit(); /* an empty group on the last tile keeps the count uniform */
        cp_async_wait<1>(); /* this tile's group has landed */
        __syncthreads();
        const __half *Kt = Ks + buf * TC_TILE_HALVES, *Vt = Vs + buf * TC_TILE_HALVES;
        const int64_t k0 = tile * TC_KEYS;

        /* S = Q K^T: 8 tiles of 8 keys. ldmatrix x4 at key row 8 nt + lane % 8, dims 32 kp + 8 (lane / 8):
         * registers 0, 1 are B of dim step 2 kp, registers 2, 3 of step 2 kp + 1 */
        float s[TC_KEYS / 8][4];
#pragma unroll
        for (int nt = 0; nt < TC_KEYS / 8; nt++) {
            s[nt][0] = s[nt][1] = s[nt][2] = s[nt][3] = 0.f;
#pragma unroll
            for (int kp = 0; kp < TC_HD / 32; kp++) {
                uint32_t b[4];
                ldsm_x4<false>(b, smem_addr(Kt + (8 * nt + lane % 8) * TC_STRIDE + 32 * kp + 8 * (lane / 8)));
                mma_f16(s[nt], qa[2 * kp], b[0], b[1]);
                mma_f16(s[nt], qa[2 * kp + 1], b[2], b[3]);
            }
        }

        /* online softmax of rows g (elements 0, 1) and g + 8 (2, 3); a quad holds a row's 64 keys */
        const bool masked = k0 + TC_KEYS - 1 > first_qpos;
        float mx[2] = {m[0], m[1]};
#pragma unroll
        for (int nt = 0; nt < TC_KEYS / 8; nt++)
#pragma unroll
            for (int e = 0; e < 4; e++) {
                const int i = e / 2;
                float v = s[nt][e]; /* already in log2 units: q carried the scale */
                if (masked && k0 + 8 * nt + 2 * c + (e & 1) > qpos[i]) v = -INFINITY;
                s[nt][e] = v;
                mx[i] = fmaxf(mx[i], v);
            }
        float corr[2];
#pragma unroll
        for (int i = 0; i < 2; i++) {
            mx[i] = fmaxf(mx[i], __shfl_xor_sync(0xffffffffu, mx[i], 1));
            mx[i] = fmaxf(mx[i], __shfl_xor_sync(0xffffffffu, mx[i], 2));
            /* key 0 is in the first tile and visible to every row, so mx is finite from there on */
            corr[i] = exp2f(m[i] - mx[i]); /* 0 on the first tile */
            m[i] = mx[i];
            l[i] *= corr[i];
        }
#pragma unroll
        for (int d = 0; d < TC_HD / 8; d++) {
            o[d][0] *= corr[0], o[d][1] *= corr[0];
            o[d][2] *= corr[1], o[d][3] *= corr[1];
        }
        uint32_t pa[TC_KEYS / 16][4]; /* P as A fragments of the 4 key steps */
#pragma unroll
        for (int nt = 0; nt < TC_KEYS / 8; nt++) {
            const float p0 = exp2f(s[nt][0] - m[0]), p1 = exp2f(s[nt][1] - m[0]);
            const float p2 = exp2f(s[nt][2] - m[1]), p3 = exp2f(s[nt][3] - m[1]);
            l[0] += p0 + p1;
            l[1] += p2 + p3;
            pa[nt / 2][2 * (nt & 1)] = pack_half2(p0, p1);
            pa[nt / 2][2 * (nt & 1) + 1] = pack_half2(p2, p3);
        }

        /* O += P V: ldmatrix.trans at key row 16 ks + 8 (mi & 1) + lane % 8, dims 8 (2 dp + (mi >> 1)),
         * mi = lane / 8: registers 0, 1 are B of dim tile 2 dp, registers 2, 3 of 2 dp + 1 */
#pragma unroll
        for (int ks = 0; ks < TC_KEYS / 16; ks++)
#pragma unroll
            for (int dp = 0; dp < TC_HD / 16; dp++) {
                uint32_t b[4];
                const int mi = lane / 8;
                ldsm_x4<true>(b, smem_addr(Vt + (16 * ks + 8 * (mi & 1) + lane % 8) * TC_STRIDE + 8 * (2 * dp + (mi >> 1))));
                mma_f16(o[2 * dp], pa[ks], b[0], b[1]);
                mma_f16(o[2 * dp + 1], pa[ks], b[2], b[3]);
            }
        __syncthreads(); /* every warp is done with this buffer before the next load overwrites it */
    }

#pragma unroll
    for (int i = 0; i < 2; i++) {
        l[i] += __shfl_xor_sync(0xffffffffu, l[i], 1);
        l[i] += __shfl_xor_sync(0xffffffffu, l[i], 2);
    }
#pragma unroll
    for (int i = 0; i < 2; i++) {
        if (tok[i] >= n) continue;
        float *orow = out + (int64_t)tok[i] * q_stride + (int64_t)head[i] * TC_HD + 2 * c;
        const float inv = 1.f / l[i];
#pragma unroll
        for (int d = 0; d < TC_HD / 8; d++)
            *(float2 *)(orow + 8 * d) = make_float2(o[d][2 * i] * inv, o[d][2 * i + 1] * inv);
    }
}

bool cu_attention_mma_prepare(cuda_backend *c) {
    return CU_OK(c, cudaFuncSetAttribute(k_attention_mma, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)TC_SMEM));
}

bool cu_attention_mma_usable(const cuda_backend *c, uint32_t kv_type, int64_t head_dim, int64_t n_head,
                             int64_t n_head_kv) {
    return c->mma && !c->exact && kv_type == TY_TYPE_F16 && head_dim == TC_HD && n_head_kv > 0 &&
           n_head % n_head_kv == 0 && TC_ROWS % (n_head / n_head_kv) == 0;
}

void cu_launch_attention_mma(cuda_backend *c, const float *q, const uint8_t *k, const uint8_t *v, uint64_t row_bytes,
                             int64_t n, int64_t pos0, int64_t n_head, int64_t n_head_kv, float *out) {
    const int64_t tpb = TC_ROWS / (n_head / n_head_kv);
    const dim3 grid((unsigned)((n + tpb - 1) / tpb), (unsigned)n_head_kv);
    const float scale_log2 = 1.4426950408889634f / sqrtf((float)TC_HD);
    c->n_attn_mma++;
    k_attention_mma<<<grid, 32 * TC_WARPS, TC_SMEM, c->stream>>>(q, k, v, row_bytes, pos0, (int)n, (int)n_head,
                                                                 (int)n_head_kv, scale_log2, out);
}
