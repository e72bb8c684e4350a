/* cuda_common.cuh - what the CUDA backend's files share: the backend record, error handling and the
 * launchers each file provides.
 *
 * Error model. The ops of backend.h return nothing, so a CUDA failure inside an op cannot be
 * returned to the forward pass. The first failure is recorded in the backend (`failed`, `errmsg`)
 * and makes every later op a no-op; `download` then fills the host buffer with NaN, so a broken
 * evaluation can never pass for a good one. Allocation ops (buffer_new, kv_new, reserve,
 * load_model) do return a status and message, with TY_ERR_NOMEM naming the bytes asked for and
 * the bytes free.
 *
 * Debug builds (no NDEBUG) synchronize the stream after every op and check for errors there, so an
 * illegal address is pinned to the op that caused it; TY_CUDA_SYNC=1 in the environment does the
 * same in a release build.
 *
 * Fusion. To launch fewer kernels per decode step, some ops do the next op's work on the way:
 * rmsnorm, swiglu and decode attention's combine also write their output as the 8-bit activations
 * the next matmul would make of it (cu_xq_*), matmul_add adds the product into the residual in the
 * matmul's last store, rope_store rotates q and k and fills both KV caches in one launch, and
 * fast-path matmuls of one quantized input (q, k, v; gate, up) are launched as one kernel
 * (cu_mv_defer). Each gives the bits of the unfused ops. TY_CUDA_NO_FUSE=1 in the environment (read
 * when a backend is created) turns all of it off: matmul_add and rope_store are then NULL and
 * forward.c runs the separate ops, which the tests compare against. */
#ifndef TY_CUDA_COMMON_CUH
#define TY_CUDA_COMMON_CUH

#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <stddef.h>
#include <stdint.h>

extern "C" {
#include "backend/backend.h"
#include "quant/quant.h"
}

/* One uploaded weight: the host (mmapped) view it came from and its device copy. Device rows are
 * `pitch` bytes apart (row_bytes rounded up to 16, the padding zero-filled) so that every row
 * starts 16-byte aligned and can be read with 16-byte loads. */
typedef struct cu_weight {
    const uint8_t *host;   /* ty_weight.data: the lookup key */
    uint8_t *dev;
    uint64_t pitch, row_bytes;
    uint32_t type;
    int64_t ne0, ne1;
    /* for a norm weight: the activation format (cu_act_fmt) of the matmul that reads the norm's
     * output in the model (attn_norm: wq, ffn_norm: w_gate, output_norm: output), so that rmsnorm
     * can quantize for it; a hint only: a matmul of another format quantizes again */
    int act_next;
} cu_weight;

/* A KV cache allocation, remembered so that kv_store and attention can check their bounds. */
typedef struct cu_alloc {
    uint8_t *ptr;
    uint64_t bytes;
} cu_alloc;

/* The 8-bit activation formats of the fast matrix-vector path: Q8_0 for Q4_0/Q8_0 weights, Q8_K for
 * the K-quants, none for types without an 8-bit kernel (cu_act_format). */
enum cu_act_fmt { CU_ACT_NONE = 0, CU_ACT_Q8_0 = 1, CU_ACT_Q8_K = 2 };

/* 8-bit activations of the fast matrix-vector path (cuda_q8act.cuh explains the layout). */
typedef struct cu_q8act {
    int8_t *q;
    float *d32, *dk;
    int *s16;
    int stride; /* elements per token row (a multiple of 256); rows for up to CU_MV_MAX_TOKENS tokens */
} cu_q8act;

/* Matmuls of up to this many tokens (decode, a speculative batch) read each weight once through the
 * 8-bit kernels; more go to cuBLAS (CU_GEMM_MIN_TOKENS and up) or the fp32 tiles. */
#define CU_MV_MAX_TOKENS 16
/* Matrices of the same input, type and width that the 8-bit kernels multiply in one launch (q, k, v). */
#define CU_MV_JOBS 3
/* Q4_0 matrices of fewer rows than this take two warps per row group in the 8-bit matvec kernels
 * (c->mv_split_below; TY_CUDA_MV_SPLIT overrides it): a 7B's q, k, v, w_o and w_down, not its gate,
 * up and output. */
#define CU_MV_SPLIT_BELOW 8192
/* recorded decode steps kept (cuda_graph.cu): splits 1, 2, 4, ..., 2^19 (of 128 keys: more than any
 * context, whose splits gridDim.y bounds at 65535) */
#define CU_MAX_GRAPHS 20

typedef struct cuda_backend {
    ty_backend base;
    ty_backend_ops ops;     /* per backend: no global state */
    int device;
    cudaStream_t stream;
    int sync_each_op;       /* synchronize and check after every op (debug) */
    int n_sm;
    int exact;              /* exact_math: every matmul decodes weights to float32 */
    int fuse;               /* fused ops on (the default; TY_CUDA_NO_FUSE=1: off) */
    int pdl;                /* decode kernels launched with PDL (cu_launch; TY_CUDA_NO_PDL=1: off) */
    int mma;                /* batches of 2..16 tokens on tensor cores (sm_80+; TY_CUDA_NO_MMA=1: off) */
    int64_t split_w8_keys;  /* decode attention: 8 warps per block up to this many keys, then 4 */
    int64_t mv_split_below; /* Q4_0 matrices of fewer rows than this: 2 warps per row group */
    /* the fast path's 8-bit activation vectors: CU_MV_MAX_TOKENS rows of xq_cap elements (the
     * widest matmul input) */
    cu_q8act xq;
    void *xq_mem;
    int64_t xq_cap;
    /* what xq holds: xq_rows rows of xq_ne0 elements of xq_src in format xq_fmt, or nothing
     * (xq_src NULL). q, k and v (and gate and up) read the same input, which is then quantized
     * once; rmsnorm and swiglu may fill it for the matmul after them. Every op but matmul and
     * matmul_add forgets it (cu_after_op); a matmul whose output overlaps xq_src does too. */
    const float *xq_src;
    int64_t xq_ne0, xq_rows;
    int xq_fmt;
    int64_t n_act_quant;    /* rows the matmuls quantized themselves (the counter "act_quant") */
    int64_t n_attn_mma;     /* attention calls on the tensor cores (the counter "attn_mma") */
    int64_t n_attn_quant;   /* rows attention quantized for w_o on the way (the counter "attn_quant") */
    int64_t n_attn_split4;  /* decode attention launches with 4 warps per split block ("attn_split4") */
    int64_t n_mv_pair;      /* decode matvec launches of two weight types at once ("mv_pair") */
    int64_t n_mv_split;     /* matvec launches with two warps per row group ("mv_split") */
    /* matmuls kept for one launch (cu_mv_defer, cuda_backend.cu): mv_pending of them, all of input
     * mv_x (mv_n tokens, quantized in xq) */
    const cu_weight *mv_w[CU_MV_JOBS];
    float *mv_y[CU_MV_JOBS];
    bool mv_add[CU_MV_JOBS];
    int mv_pending;
    const float *mv_x;
    int64_t mv_n;
    /* the format and row width of every layer's w_down (CU_ACT_NONE when they differ): what swiglu
     * quantizes its output for */
    int ffn_act;
    int64_t ffn_act_ne0;
    int attn_act; /* the same for every layer's w_o: what attention quantizes its output for */
    int64_t attn_act_ne0;
    /* split-KV decode attention: per query head and split, 128 output floats + max + sum */
    float *attn_part;
    int64_t attn_part_cap; /* floats */
    /* prompts on the fast path (cuda_gemm.cu): a cuBLAS handle and the fp16 workspace */
    void *cublas;
    __half *wf16, *xf16;
    size_t wf16_cap, xf16_cap; /* elements */
    /* weights: one device pool, looked up by host pointer (sorted array + binary search) */
    uint8_t *wpool;
    size_t wpool_bytes;
    cu_weight *w;
    size_t n_w;
    /* KV caches */
    cu_alloc *kv;
    size_t n_kv, cap_kv;
    /* token ids for get_rows: pinned host staging + device copy, n_batch entries */
    int32_t *ids_host, *ids_dev;
    int64_t ids_cap;
    cudaEvent_t ids_done;
    /* recorded decode steps (cuda_graph.cu): one CUDA graph per power-of-two count of attention
     * splits; the step's token id and position are data in step_dev ([0] id, [1] position), copied
     * from the pinned step_host before each replay */
    int graphs_on;          /* recording allowed (TY_CUDA_NO_GRAPH=1: off) */
    int capturing;          /* the ops being issued are recorded, not run */
    int capture_bad;        /* an op of the recording took the position by value */
    int cap_splits;         /* attention splits of the step being recorded */
    int32_t *step_host, *step_dev;
    cudaGraphExec_t graph[CU_MAX_GRAPHS];
    int graph_splits[CU_MAX_GRAPHS];
    int n_graphs;
    int64_t n_replays;      /* the counter "graph_replays" */
    /* RoPE inverse frequencies, computed on the host exactly as the CPU backend does */
    float *rope_inv_freq;
    int64_t rope_n_rot;
    float rope_base;
    /* the first failure; ops are skipped once it is set */
    int failed;
    char errmsg[256];
} cuda_backend;

static inline cuda_backend *cu_be(ty_backend *be) { return (cuda_backend *)be; }

/* Records the first failure (later ones are dropped). */
void cu_fail(cuda_backend *c, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* Checks a CUDA call; on error records it and returns false. */
#define CU_OK(c, call) cu_check((c), (call), #call, __FILE__, __LINE__)
bool cu_check(cuda_backend *c, cudaError_t e, const char *what, const char *file, int line);

/* Called after the kernels of an op were queued: launch errors always, execution errors in debug. */
void cu_after_op(cuda_backend *c, const char *op);

/* Makes c's device current for the calling thread; false (and recorded) on failure. */
bool cu_enter(cuda_backend *c);

/* ---- weights (cuda_weights.cu) --------------------------------------------------------------- */

int cu_load_model(ty_backend *be, const ty_model_desc *d, ty_err *err);
void cu_free_weights(cuda_backend *c);
/* The uploaded copy of w, or NULL (recorded as a failure) if w was never uploaded. */
const cu_weight *cu_find_weight(cuda_backend *c, const ty_weight *w);
/* Types the kernels implement. */
bool cu_type_supported(uint32_t type);

/* ---- kernels (cuda_matmul.cu, cuda_ops.cu, cuda_attention.cu) -------------------------------- */

void cu_launch_get_rows(cuda_backend *c, const cu_weight *w, const int32_t *ids_dev, int64_t n, float *out);
/* y = W x, or y += W x when `add` (x and y must not overlap) */
void cu_launch_matmul(cuda_backend *c, const cu_weight *w, const float *x, int64_t n, float *y, bool add);
/* Keys per block of the split-KV decode attention. */
#define CU_ATTN_SPLIT_KEYS 128
/* ... with 8 warps per block for a token of up to this many keys, 4 beyond (split_warps; 128 times
 * a power of two, so that a recording's power-of-two split count puts a position on the same side) */
#define CU_ATTN_W8_KEYS 4096
/* Prompt matmuls of at least this many tokens go to cuBLAS on the fast path. */
#define CU_GEMM_MIN_TOKENS (CU_MV_MAX_TOKENS + 1)
int cu_gemm_reserve(cuda_backend *c, int64_t n_batch, ty_err *err);
void cu_gemm_free(cuda_backend *c);
bool cu_gemm_usable(const cuda_backend *c, const cu_weight *w, int64_t n);
void cu_launch_gemm(cuda_backend *c, const cu_weight *w, const float *x, int64_t n, float *y, bool add);
bool cu_matvec_q8_supported(uint32_t type);
/* The activation format of the 8-bit kernel for weights of `type` (CU_ACT_NONE: no such kernel). */
int cu_act_format(uint32_t type);
/* y[i] = w[i] x (y[i] += w[i] x when add[i]), i < n_jobs <= CU_MV_JOBS, for n <= CU_MV_MAX_TOKENS
 * tokens through 8-bit activations: weights of one width (<= c->xq_cap) and input format, of one type
 * (one launch) or two (one launch for decode's Q4_K/Q5_K with Q6_K, else one per type); outputs that
 * overlap neither each other nor x. */
void cu_launch_matvec_q8(cuda_backend *c, const cu_weight *const *w, float *const *y, const bool *add, int n_jobs,
                         const float *x, int64_t n);
/* Whether w (n tokens) may join the k matmuls kept[] of the same input in such a launch. */
bool cu_matvec_q8_joins(const cuda_backend *c, const cu_weight *const *kept, int k, const cu_weight *w, int64_t n);
/* Launches the matmuls kept by cu_mv_defer (cuda_backend.cu); every op but matmul calls it first. */
void cu_mv_flush(cuda_backend *c);
/* act != CU_ACT_NONE (cu_xq_fits): the output is also quantized into c->xq for the next matmul. */
void cu_launch_rmsnorm(cuda_backend *c, const float *x, const cu_weight *w, float eps, int64_t n, float *out,
                       int act);
void cu_launch_rope(cuda_backend *c, float *x, int64_t n, int64_t n_head, int64_t head_dim, int64_t n_rot,
                    int64_t pos0);
void cu_launch_kv_store(cuda_backend *c, uint8_t *dst, uint32_t kv_type, int64_t kv_dim, int64_t n,
                        const float *src);
/* rope of q (n_head heads) and k (n_head_kv heads) in place, then k and v into the cache rows pos0..
 * (or *pos_dev.., read on the device, when pos_dev is set); needs an even head_dim and kv_type F32,
 * F16 or Q8_0 (checked by the caller). */
void cu_launch_rope_store(cuda_backend *c, float *q, float *k, const float *v, uint8_t *k_cache, uint8_t *v_cache,
                          uint64_t row_bytes, uint32_t kv_type, int64_t n, int64_t n_head, int64_t n_head_kv,
                          int64_t head_dim, int64_t n_rot, int64_t pos0, const int32_t *pos_dev);
bool cu_attention_prepare(cuda_backend *c);
/* cuda_attention_mma.cu: prompt attention on fp16 tensor cores (fast path, F16 cache, head_dim 128) */
bool cu_attention_mma_prepare(cuda_backend *c);
bool cu_attention_mma_usable(const cuda_backend *c, uint32_t kv_type, int64_t head_dim, int64_t n_head,
                             int64_t n_head_kv);
void cu_launch_attention_mma(cuda_backend *c, const float *q, const uint8_t *k, const uint8_t *v, uint64_t row_bytes,
                             int64_t n, int64_t pos0, int64_t n_head, int64_t n_head_kv, float *out);
/* cuda_matvec_mma.cu: whether the tensor-core kernels were compiled for this device (sm_80+ code) */
bool cu_mma_compiled();
/* cuda_graph.cu: the step_begin / step_end ops, and dropping the recordings (their buffers change) */
int cu_step_begin(ty_backend *be, int32_t token, int64_t pos);
int cu_step_end(ty_backend *be);
void cu_graphs_clear(cuda_backend *c);
/* act != CU_ACT_NONE: on the split-KV path (up to CU_MV_MAX_TOKENS queries) the output is also
 * quantized into c->xq in that format (the caller checked cu_xq_fits); returns whether it was. */
bool cu_launch_attention(cuda_backend *c, const float *q, const uint8_t *k, const uint8_t *v, uint32_t kv_type,
                         uint64_t row_bytes, int64_t n, int64_t pos0, int64_t n_head, int64_t n_head_kv,
                         int64_t head_dim, float *out, int act);
void cu_launch_swiglu(cuda_backend *c, float *g, const float *u, int64_t n);
/* swiglu of `rows` rows of ne0, the output also quantized into c->xq in format act (cu_xq_fits). */
void cu_launch_swiglu_q8(cuda_backend *c, float *g, const float *u, int64_t ne0, int64_t rows, int act);
void cu_launch_add(cuda_backend *c, float *x, const float *y, int64_t n);

/* ---- what c->xq holds --------------------------------------------------------------------------- */

/* Whether `rows` rows of ne0 elements fit xq in format act: the fast path is on (not exact), the
 * rows are whole blocks of the format and a matmul of that many tokens would take the 8-bit path. */
static inline bool cu_xq_fits(const cuda_backend *c, int act, int64_t ne0, int64_t rows) {
    const int64_t bs = act == CU_ACT_Q8_K ? 256 : 32;
    return act != CU_ACT_NONE && !c->exact && c->xq_mem && rows >= 1 && rows <= CU_MV_MAX_TOKENS && ne0 > 0 &&
           ne0 % bs == 0 && ne0 <= c->xq_cap;
}

/* Records that xq now holds the quantized rows of src (set after the kernel that writes them was
 * queued and checked: cu_after_op forgets what xq held before). */
static inline void cu_xq_set(cuda_backend *c, const float *src, int64_t ne0, int64_t rows, int act) {
    c->xq_src = src;
    c->xq_ne0 = ne0;
    c->xq_rows = rows;
    c->xq_fmt = act;
}

static inline bool cu_xq_holds(const cuda_backend *c, const float *src, int64_t ne0, int64_t rows, int act) {
    return c->xq_src == src && c->xq_ne0 == ne0 && c->xq_rows == rows && c->xq_fmt == act;
}

/* The final store of a matmul output element: y = sum, or (add: matmul_add) y + sum with the add
 * op's rounding (k_add: residual + product), so that a fused residual add gives the add op's bits. */
__device__ __forceinline__ void cu_mm_store(float *y, float sum, bool add) { *y = add ? __fadd_rn(*y, sum) : sum; }

/* ---- programmatic dependent launch (PDL, sm_90+) ------------------------------------------------
 * The decode step is ~450 short kernels in a row. Launched through cu_launch (with c->pdl), a kernel
 * may be started while the one before it is still running: its blocks are placed as soon as every
 * block of the previous kernel has passed cu_pdl_trigger(), and wait in cu_pdl_wait() until that
 * kernel has finished and its writes are visible: the launch latency overlaps the previous kernel
 * (tg128 on an H100: +18%; TY_CUDA_NO_PDL=1 turns it off).
 * Rule for every kernel launched by cu_launch: call cu_pdl_wait() in every block before touching
 * any memory that earlier work writes or reads (reading weights is fine), and never return before
 * it: a kernel whose blocks all skipped it could finish before its predecessor. Kernels launched
 * with <<<>>> keep plain stream order (and so does everything after them). On older GPUs, or
 * without PDL, both calls do nothing. */
__device__ __forceinline__ void cu_pdl_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}
/* Lets the next kernel be launched (called right after cu_pdl_wait: one kernel of look-ahead). */
__device__ __forceinline__ void cu_pdl_trigger() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}

/* Queues kernel f<<<grid, block, smem>>>(args...) on c's stream, with PDL when c->pdl (see above).
 * A launch error is recorded by cu_after_op like any other. */
template <typename... P, typename... A>
static inline void cu_launch_smem(cuda_backend *c, void (*f)(P...), dim3 grid, dim3 block, size_t smem, A... args) {
    cudaLaunchAttribute attr[1];
    attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    attr[0].val.programmaticStreamSerializationAllowed = 1;
    cudaLaunchConfig_t cfg = {};
    cfg.gridDim = grid;
    cfg.blockDim = block;
    cfg.dynamicSmemBytes = smem;
    cfg.stream = c->stream;
    cfg.attrs = attr;
    cfg.numAttrs = c->pdl ? 1 : 0;
    const cudaError_t e = cudaLaunchKernelEx(&cfg, f, ((P)args)...);
    if (e != cudaSuccess) cu_fail(c, "kernel launch: %s", cudaGetErrorString(e));
}
template <typename... P, typename... A>
static inline void cu_launch(cuda_backend *c, void (*f)(P...), dim3 grid, dim3 block, A... args) {
    cu_launch_smem(c, f, grid, block, 0, args...);
}

/* Blocks for a grid-stride loop over n items with `threads` per block. */
static inline unsigned cu_blocks(int64_t n, int threads, unsigned max_blocks) {
    int64_t b = (n + threads - 1) / threads;
    if (b < 1) b = 1;
    return b > (int64_t)max_blocks ? max_blocks : (unsigned)b;
}

#endif
