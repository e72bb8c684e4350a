/* cuda_backend.cu - the CUDA device: float32 activations and KV caches in device memory, weights
 * uploaded once in their GGUF form (cuda_weights.cu), every op queued on one stream.
 *
 * This file holds the backend's life cycle (device choice and checks, destruction), its buffers and
 * the ops table: each op validates its arguments on the host, finds the device copy of its weight,
 * queues its kernels (cuda_matmul.cu, cuda_ops.cu, cuda_attention.cu) and checks the launch. Only
 * `download` waits for the device. See cuda_common.cuh for how failures are reported. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cuda/cuda_common.cuh"

/* ---- errors ------------------------------------------------------------------------------------- */

void cu_fail(cuda_backend *c, const char *fmt, ...) {
    if (c->failed) return;
    c->failed = 1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->errmsg, sizeof c->errmsg, fmt, ap);
    va_end(ap);
}

bool cu_check(cuda_backend *c, cudaError_t e, const char *what, const char *file, int line) {
    if (e == cudaSuccess) return true;
    cudaGetLastError(); /* clear it if it is not sticky */
    const char *base = strrchr(file, '/');
    cu_fail(c, "%s: %s (%s:%d)", what, cudaGetErrorString(e), base ? base + 1 : file, line);
    return false;
}

void cu_after_op(cuda_backend *c, const char *op) {
    /* any other op may have written the quantized input (or, rmsnorm and swiglu, xq itself) */
    if (strcmp(op, "matmul") != 0 && strcmp(op, "matmul_add") != 0) c->xq_src = NULL;
    cudaError_t e = cudaGetLastError();
    if (e == cudaSuccess && c->sync_each_op) e = cudaStreamSynchronize(c->stream);
    if (e != cudaSuccess) cu_fail(c, "CUDA error in %s: %s", op, cudaGetErrorString(e));
}

bool cu_enter(cuda_backend *c) {
    int cur = -1;
    if (cudaGetDevice(&cur) == cudaSuccess && cur == c->device) return true;
    return CU_OK(c, cudaSetDevice(c->device));
}

/* True when ops should run: the device is current and nothing failed before. Every op but matmul
 * starts here, which first launches the matmuls kept for one launch (cu_mv_defer). */
static bool cu_ready(cuda_backend *c) {
    if (c->failed || !cu_enter(c)) return false;
    cu_mv_flush(c);
    return !c->failed;
}

static const double MiB = 1024.0 * 1024.0;

/* Allocates zero-filled device memory; TY_ERR_NOMEM names the size asked for and what is free. */
static int cu_alloc_zeroed(cuda_backend *c, size_t bytes, void **out, const char *what, ty_err *err) {
    *out = NULL;
    if (!cu_enter(c)) return ty_seterr(err, TY_ERR_DEVICE, "CUDA: %s", c->errmsg);
    if (c->failed) return ty_seterr(err, TY_ERR_DEVICE, "CUDA backend failed earlier: %s", c->errmsg);
    void *p = NULL;
    cudaError_t e = cudaMalloc(&p, bytes ? bytes : 16);
    if (e != cudaSuccess) {
        cudaGetLastError();
        size_t free_b = 0, total_b = 0;
        cudaMemGetInfo(&free_b, &total_b);
        return ty_seterr(err, TY_ERR_NOMEM, "out of GPU memory allocating %s: %.1f MiB asked, %.1f MiB free of %.1f MiB",
                         what, (double)bytes / MiB, (double)free_b / MiB, (double)total_b / MiB);
    }
    if (!CU_OK(c, cudaMemsetAsync(p, 0, bytes ? bytes : 16, c->stream))) {
        cudaFree(p);
        return ty_seterr(err, TY_ERR_DEVICE, "CUDA: %s", c->errmsg);
    }
    *out = p;
    return TY_OK;
}

/* ---- life cycle --------------------------------------------------------------------------------- */

__global__ void k_probe(int *p) {
    if (p) *p = 1;
}

static void cu_destroy(ty_backend *be) {
    cuda_backend *c = cu_be(be);
    cudaSetDevice(c->device);
    cu_mv_flush(c);
    if (c->stream) cudaStreamSynchronize(c->stream);
    cu_graphs_clear(c);
    if (c->step_host) cudaFreeHost(c->step_host);
    if (c->step_dev) cudaFree(c->step_dev);
    cu_free_weights(c);
    for (size_t i = 0; i < c->n_kv; i++) cudaFree(c->kv[i].ptr); /* normally freed by kv_free already */
    free(c->kv);
    if (c->ids_host) cudaFreeHost(c->ids_host);
    if (c->ids_dev) cudaFree(c->ids_dev);
    if (c->ids_done) cudaEventDestroy(c->ids_done);
    if (c->rope_inv_freq) cudaFree(c->rope_inv_freq);
    if (c->xq_mem) cudaFree(c->xq_mem);
    if (c->attn_part) cudaFree(c->attn_part);
    cu_gemm_free(c);
    if (c->stream) cudaStreamDestroy(c->stream);
    free(c);
}

/* ---- buffers ------------------------------------------------------------------------------------ */

static int cu_buffer_new(ty_backend *be, size_t n, float **buf, ty_err *err) {
    char what[64];
    snprintf(what, sizeof what, "%zu floats", n);
    if (n > SIZE_MAX / sizeof(float)) return ty_seterr(err, TY_ERR_NOMEM, "buffer of %zu floats is too large", n);
    return cu_alloc_zeroed(cu_be(be), n * sizeof(float), (void **)buf, what, err);
}

static void cu_buffer_free(ty_backend *be, float *buf) {
    if (!buf) return;
    cuda_backend *c = cu_be(be);
    c->xq_src = NULL; /* a new buffer may get this address */
    cudaSetDevice(c->device);
    cu_mv_flush(c); /* a kept matmul may write it */
    cu_graphs_clear(c); /* recordings may use it */
    cudaFree(buf);
}

static int cu_kv_new(ty_backend *be, size_t rows, uint64_t row_bytes, void **buf, ty_err *err) {
    cuda_backend *c = cu_be(be);
    *buf = NULL;
    if (row_bytes && rows > SIZE_MAX / row_bytes)
        return ty_seterr(err, TY_ERR_NOMEM, "KV cache of %zu x %llu bytes is too large", rows, (unsigned long long)row_bytes);
    if (c->n_kv == c->cap_kv) {
        size_t cap = c->cap_kv ? 2 * c->cap_kv : 64;
        cu_alloc *k = (cu_alloc *)realloc(c->kv, cap * sizeof *k);
        if (!k) return ty_seterr(err, TY_ERR_NOMEM, "out of memory");
        c->kv = k;
        c->cap_kv = cap;
    }
    const size_t bytes = rows * (size_t)row_bytes;
    char what[96];
    snprintf(what, sizeof what, "a KV cache of %zu x %llu bytes", rows, (unsigned long long)row_bytes);
    void *p = NULL;
    int rc = cu_alloc_zeroed(c, bytes, &p, what, err);
    if (rc) return rc;
    c->kv[c->n_kv].ptr = (uint8_t *)p;
    c->kv[c->n_kv].bytes = bytes;
    c->n_kv++;
    *buf = p;
    return TY_OK;
}

static void cu_kv_free(ty_backend *be, void *buf) {
    if (!buf) return;
    cuda_backend *c = cu_be(be);
    for (size_t i = 0; i < c->n_kv; i++)
        if (c->kv[i].ptr == buf) {
            c->kv[i] = c->kv[--c->n_kv];
            break;
        }
    cudaSetDevice(c->device);
    cu_mv_flush(c);
    cu_graphs_clear(c);
    cudaFree(buf);
}

/* The KV allocation holding [p, p + bytes), or NULL (recorded as a failure). The test is
 * a->ptr <= p < a->ptr + a->bytes, never <=: cudaMalloc often places the V cache right after the K
 * cache, and K's one-past-the-end address is then V's start. */
static const cu_alloc *kv_find(cuda_backend *c, const void *p, uint64_t bytes, const char *op) {
    const uint8_t *b = (const uint8_t *)p;
    for (size_t i = 0; i < c->n_kv; i++) {
        const cu_alloc *a = &c->kv[i];
        if (b >= a->ptr && b < a->ptr + a->bytes) {
            const uint64_t off = (uint64_t)(b - a->ptr);
            if (bytes <= a->bytes - off) return a;
            cu_fail(c, "%s: %llu bytes from offset %llu exceed a KV cache of %llu bytes", op,
                    (unsigned long long)bytes, (unsigned long long)off, (unsigned long long)a->bytes);
            return NULL;
        }
    }
    cu_fail(c, "%s: the cache pointer is not a KV cache of this backend", op);
    return NULL;
}

static int ensure_ids(cuda_backend *c, int64_t n, ty_err *err) {
    if (n <= c->ids_cap) return TY_OK;
    if (c->ids_done) cudaEventSynchronize(c->ids_done);
    if (c->ids_host) cudaFreeHost(c->ids_host);
    if (c->ids_dev) cudaFree(c->ids_dev);
    c->ids_host = c->ids_dev = NULL;
    c->ids_cap = 0;
    cudaError_t e = cudaHostAlloc((void **)&c->ids_host, sizeof(int32_t) * (size_t)n, cudaHostAllocDefault);
    if (e == cudaSuccess) e = cudaMalloc((void **)&c->ids_dev, sizeof(int32_t) * (size_t)n);
    if (e != cudaSuccess) {
        cudaGetLastError();
        return ty_seterr(err, TY_ERR_NOMEM, "cannot allocate token id buffers for %lld tokens: %s", (long long)n,
                         cudaGetErrorString(e));
    }
    c->ids_cap = n;
    return TY_OK;
}

/* The RoPE inverse frequencies for (n_rot, base), computed as cpu_rope does and uploaded. */
static int ensure_rope(cuda_backend *c, const ty_hparams *hp, ty_err *err) {
    if (c->rope_inv_freq && c->rope_n_rot == hp->n_rot && c->rope_base == hp->rope_freq_base) return TY_OK;
    const int64_t half = hp->n_rot / 2;
    if (half <= 0 || half > 2048) return ty_seterr(err, TY_ERR_UNSUPPORTED, "RoPE over %lld dims", (long long)hp->n_rot);
    float host[2048];
    for (int64_t i = 0; i < half; i++)
        host[i] = (float)(1.0 / pow((double)hp->rope_freq_base, (double)(2 * i) / (double)hp->n_rot));
    if (c->rope_inv_freq) {
        cu_graphs_clear(c);
        cudaStreamSynchronize(c->stream); /* earlier rope kernels may still read the old table */
        cudaFree(c->rope_inv_freq);
        c->rope_inv_freq = NULL;
    }
    void *p = NULL;
    cudaError_t e = cudaMalloc(&p, sizeof(float) * 2048);
    if (e == cudaSuccess) e = cudaMemcpy(p, host, sizeof(float) * (size_t)half, cudaMemcpyHostToDevice);
    if (e != cudaSuccess) {
        cudaGetLastError();
        if (p) cudaFree(p);
        return ty_seterr(err, TY_ERR_NOMEM, "cannot upload the RoPE table: %s", cudaGetErrorString(e));
    }
    c->rope_inv_freq = (float *)p;
    c->rope_n_rot = hp->n_rot;
    c->rope_base = hp->rope_freq_base;
    return TY_OK;
}

/* The 8-bit activation vector for the widest matmul input of the model (fast path only). */
static int ensure_xq(cuda_backend *c, const ty_hparams *hp, ty_err *err) {
    int64_t need = hp->n_embd;
    if (hp->n_ff > need) need = hp->n_ff;
    if (hp->n_head * hp->head_dim > need) need = hp->n_head * hp->head_dim;
    need = (need + 255) / 256 * 256;
    if (c->exact || need <= c->xq_cap) return TY_OK;
    if (c->xq_mem) {
        cudaStreamSynchronize(c->stream); /* kernels queued earlier may still read it */
        cudaFree(c->xq_mem);
        c->xq_mem = NULL;
        c->xq_cap = 0;
    }
    /* per token row: q need bytes; d32: need / 32; s16: need / 16; dk: need / 256 */
    const size_t T = CU_MV_MAX_TOKENS;
    const size_t bytes = T * ((size_t)need + 4 * (size_t)(need / 32) + 4 * (size_t)(need / 16) + 4 * (size_t)(need / 256)) + 64;
    int rc = cu_alloc_zeroed(c, bytes, &c->xq_mem, "the 8-bit activation buffer", err);
    if (rc) return rc;
    uint8_t *p = (uint8_t *)c->xq_mem;
    c->xq.q = (int8_t *)p;
    p += T * need;
    c->xq.d32 = (float *)p;
    p += T * 4 * (need / 32);
    c->xq.s16 = (int *)p;
    p += T * 4 * (need / 16);
    c->xq.dk = (float *)p;
    c->xq.stride = (int)need;
    c->xq_cap = need;
    return TY_OK;
}

/* Workspace of the split-KV decode attention (cuda_attention.cu): for each query head and each split
 * of CU_ATTN_SPLIT_KEYS keys and each query of a batch of up to CU_MV_MAX_TOKENS, 128 + 4 floats
 * (a 32k context, 32 heads: 4.3 MB per query). */
static int ensure_attn_part(cuda_backend *c, const ty_hparams *hp, int64_t n_ctx, int64_t n_queries, ty_err *err) {
    if (n_queries < 1) n_queries = 1;
    const int64_t need = n_queries * hp->n_head * ((n_ctx + CU_ATTN_SPLIT_KEYS - 1) / CU_ATTN_SPLIT_KEYS) * 132;
    if (need <= c->attn_part_cap) return TY_OK;
    if (c->attn_part) {
        cudaStreamSynchronize(c->stream);
        cudaFree(c->attn_part);
        c->attn_part = NULL;
        c->attn_part_cap = 0;
    }
    void *p = NULL;
    int rc = cu_alloc_zeroed(c, sizeof(float) * (size_t)need, &p, "the attention workspace", err);
    if (rc) return rc;
    c->attn_part = (float *)p;
    c->attn_part_cap = need;
    return TY_OK;
}

static int cu_reserve(ty_backend *be, const ty_hparams *hp, int64_t n_batch, int64_t n_ctx, ty_err *err) {
    cuda_backend *c = cu_be(be);
    if (!cu_enter(c)) return ty_seterr(err, TY_ERR_DEVICE, "CUDA: %s", c->errmsg);
    cu_mv_flush(c); /* the buffers a kept matmul reads may be reallocated */
    cu_graphs_clear(c); /* and so may those of the recordings */
    if (hp->head_dim > 4096 || hp->n_head_kv <= 0 || hp->n_head % hp->n_head_kv != 0)
        return ty_seterr(err, TY_ERR_UNSUPPORTED, "the CUDA backend cannot run attention with %lld heads of %lld over %lld KV heads",
                         (long long)hp->n_head, (long long)hp->head_dim, (long long)hp->n_head_kv);
    if (n_batch > 65535 || n_ctx > INT32_MAX)
        return ty_seterr(err, TY_ERR_UNSUPPORTED, "the CUDA backend takes batches of at most 65535 tokens (asked %lld)",
                         (long long)n_batch);
    int rc = ensure_ids(c, n_batch > 0 ? n_batch : 1, err);
    if (!rc) rc = ensure_rope(c, hp, err);
    if (!rc) rc = ensure_xq(c, hp, err);
    if (!rc) rc = cu_gemm_reserve(c, n_batch, err);
    if (!rc) rc = ensure_attn_part(c, hp, n_ctx, n_batch < CU_MV_MAX_TOKENS ? n_batch : CU_MV_MAX_TOKENS, err);
    if (!rc && !cu_attention_prepare(c)) rc = ty_seterr(err, TY_ERR_DEVICE, "CUDA: %s", c->errmsg);
    return rc;
}

/* ---- ops ---------------------------------------------------------------------------------------- */

static void cu_kv_store(ty_backend *be, void *cache, uint32_t kv_type, int64_t kv_dim, int64_t pos0, int64_t n,
                        const float *src) {
    cuda_backend *c = cu_be(be);
    if (!cu_ready(c) || n <= 0) return;
    const uint64_t row_bytes = ty_row_size(kv_type, kv_dim);
    if (!row_bytes || pos0 < 0) {
        cu_fail(c, "kv_store: bad cache type %s / width %lld / position %lld", ty_type_name(kv_type), (long long)kv_dim,
                (long long)pos0);
        return;
    }
    uint8_t *dst = (uint8_t *)cache + (uint64_t)pos0 * row_bytes;
    if (!kv_find(c, cache, (uint64_t)(pos0 + n) * row_bytes, "kv_store")) return;
    c->capture_bad |= c->capturing; /* the row is fixed at launch */
    cu_launch_kv_store(c, dst, kv_type, kv_dim, n, src);
    cu_after_op(c, "kv_store");
}

static void cu_get_rows(ty_backend *be, const ty_weight *w, const int32_t *ids, int64_t n, float *out) {
    cuda_backend *c = cu_be(be);
    if (!cu_ready(c) || n <= 0) return;
    const cu_weight *cw = cu_find_weight(c, w);
    if (!cw) return;
    if (n > INT32_MAX || ((uintptr_t)out & 15) != 0) {
        cu_fail(c, "get_rows: %lld rows into %p (16-byte aligned rows needed)", (long long)n, (void *)out);
        return;
    }
    if (c->capturing && n == 1) { /* a recorded step: the token id is data in step_dev */
        cu_launch_get_rows(c, cw, c->step_dev, 1, out);
        cu_after_op(c, "get_rows");
        return;
    }
    c->capture_bad |= c->capturing;
    ty_err err = {};
    if (ensure_ids(c, n, &err)) {
        cu_fail(c, "get_rows: %s", err.msg);
        return;
    }
    /* the previous copy out of the pinned buffer must be done before it is overwritten */
    if (!c->ids_done && !CU_OK(c, cudaEventCreateWithFlags(&c->ids_done, cudaEventDisableTiming))) return;
    if (!CU_OK(c, cudaEventSynchronize(c->ids_done))) return;
    memcpy(c->ids_host, ids, sizeof(int32_t) * (size_t)n);
    if (!CU_OK(c, cudaMemcpyAsync(c->ids_dev, c->ids_host, sizeof(int32_t) * (size_t)n, cudaMemcpyHostToDevice,
                                  c->stream)) ||
        !CU_OK(c, cudaEventRecord(c->ids_done, c->stream)))
        return;
    cu_launch_get_rows(c, cw, c->ids_dev, n, out);
    cu_after_op(c, "get_rows");
}

static void cu_rmsnorm(ty_backend *be, const float *x, const ty_weight *w, float eps, int64_t n, float *out) {
    cuda_backend *c = cu_be(be);
    if (!cu_ready(c) || n <= 0) return;
    const cu_weight *cw = cu_find_weight(c, w);
    if (!cw) return;
    /* fused: the output also quantized for the matmul that reads it (cu_weight.act_next) */
    const int act = c->fuse && cu_xq_fits(c, cw->act_next, cw->ne0, n) ? cw->act_next : CU_ACT_NONE;
    cu_launch_rmsnorm(c, x, cw, eps, n, out, act);
    cu_after_op(c, "rmsnorm");
    if (act != CU_ACT_NONE) cu_xq_set(c, out, cw->ne0, n, act);
}

/* ---- matmuls kept for one launch -----------------------------------------------------------------
 * q, k and v (gate and up) multiply the same input, and each matrix alone is too small to keep the
 * GPU busy: every launch would ramp up and drain on its own, and with PDL the next one starts only
 * after that. So with fusion on, a fast-path matmul (8-bit kernels, up to CU_MV_MAX_TOKENS tokens)
 * of an input that xq already holds (rmsnorm quantized it) is kept instead of launched; matmuls of
 * the same input, token count, type and width join it (for decode also Q6_K with Q4_K / Q5_K:
 * Q4_K_M's v beside q and k), and the next other op (cu_ready) or a matmul that cannot join launches
 * them all as one kernel. Each output gets the bits of its own launch: the kernels compute every
 * matrix the same way. */

static bool overlap(const float *a, int64_t na, const float *b, int64_t nb) { return a < b + nb && b < a + na; }

static bool cu_mv_defer(cuda_backend *c, const cu_weight *w, const float *x, int64_t n, float *y, bool add) {
    const int act = cu_act_format(w->type);
    if (!c->fuse || c->exact || n > CU_MV_MAX_TOKENS || act == CU_ACT_NONE || !cu_xq_holds(c, x, w->ne0, n, act) ||
        overlap(y, n * w->ne1, x, n * w->ne0))
        return false;
    bool joins = c->mv_pending > 0 && c->mv_x == x && c->mv_n == n && cu_matvec_q8_joins(c, c->mv_w, c->mv_pending, w, n);
    for (int i = 0; joins && i < c->mv_pending; i++) joins = !overlap(y, n * w->ne1, c->mv_y[i], n * c->mv_w[i]->ne1);
    if (!joins) cu_mv_flush(c);
    const int k = c->mv_pending++;
    c->mv_w[k] = w;
    c->mv_y[k] = y;
    c->mv_add[k] = add;
    c->mv_x = x;
    c->mv_n = n;
    return true;
}

void cu_mv_flush(cuda_backend *c) {
    const int k = c->mv_pending;
    if (k == 0) return;
    c->mv_pending = 0;
    if (c->failed) return;
    cu_launch_matvec_q8(c, c->mv_w, c->mv_y, c->mv_add, k, c->mv_x, c->mv_n);
    cu_after_op(c, "matmul");
}

/* matmul and matmul_add (y += W x, the add fused into the kernels' final store) */
static void matmul_op(ty_backend *be, const ty_weight *w, const float *x, int64_t n, float *y, bool add) {
    cuda_backend *c = cu_be(be);
    if (c->failed || !cu_enter(c) || n <= 0) return; /* not cu_ready: kept matmuls may be joined */
    const cu_weight *cw = cu_find_weight(c, w);
    if (!cw) return;
    if (add && overlap(y, n * cw->ne1, x, n * cw->ne0)) {
        cu_fail(c, "matmul_add: the output overlaps the input");
        return;
    }
    if (cu_mv_defer(c, cw, x, n, y, add)) return;
    cu_mv_flush(c);
    cu_launch_matmul(c, cw, x, n, y, add);
    if (c->xq_src && y < c->xq_src + c->xq_ne0 * c->xq_rows && c->xq_src < y + n * cw->ne1) c->xq_src = NULL;
    cu_after_op(c, add ? "matmul_add" : "matmul");
}

static void cu_matmul(ty_backend *be, const ty_weight *w, const float *x, int64_t n, float *y) {
    matmul_op(be, w, x, n, y, false);
}

static void cu_matmul_add(ty_backend *be, const ty_weight *w, const float *x, int64_t n, float *y) {
    matmul_op(be, w, x, n, y, true);
}

static void cu_rope(ty_backend *be, float *x, int64_t n, int64_t n_head, const ty_hparams *hp, int64_t pos0) {
    cuda_backend *c = cu_be(be);
    if (!cu_ready(c) || n <= 0) return;
    ty_err err = {};
    if (hp->n_rot > hp->head_dim || ensure_rope(c, hp, &err)) {
        cu_fail(c, "rope: %s", err.msg[0] ? err.msg : "n_rot exceeds head_dim");
        return;
    }
    c->capture_bad |= c->capturing; /* the position is fixed at launch */
    cu_launch_rope(c, x, n, n_head, hp->head_dim, hp->n_rot, pos0);
    cu_after_op(c, "rope");
}

static void cu_attention(ty_backend *be, const float *q, const void *k_cache, const void *v_cache, uint32_t kv_type,
                         int64_t n, int64_t pos0, const ty_hparams *hp, float *out) {
    cuda_backend *c = cu_be(be);
    if (!cu_ready(c) || n <= 0) return;
    const uint64_t row_bytes = ty_row_size(kv_type, hp->n_head_kv * hp->head_dim);
    if (!row_bytes || pos0 < 0) {
        cu_fail(c, "attention: bad cache type %s or position %lld", ty_type_name(kv_type), (long long)pos0);
        return;
    }
    const uint64_t need = (uint64_t)(pos0 + n) * row_bytes;
    if (!kv_find(c, k_cache, need, "attention (K)") || !kv_find(c, v_cache, need, "attention (V)")) return;
    /* fused: the output quantized for w_o on the way (decode and small batches) */
    const int64_t ne0 = hp->n_head * hp->head_dim;
    const int act = c->fuse && ne0 == c->attn_act_ne0 && cu_xq_fits(c, c->attn_act, ne0, n) ? c->attn_act : CU_ACT_NONE;
    const bool quantized = cu_launch_attention(c, q, (const uint8_t *)k_cache, (const uint8_t *)v_cache, kv_type,
                                               row_bytes, n, pos0, hp->n_head, hp->n_head_kv, hp->head_dim, out, act);
    cu_after_op(c, "attention");
    if (quantized) cu_xq_set(c, out, ne0, n, act);
}

/* rope of q and k, then kv_store of k and v, in one launch when head_dim is even (else the four
 * kernels of those ops). The checks are those of rope and kv_store. */
static void cu_rope_store(ty_backend *be, float *q, float *k, const float *v, void *k_cache, void *v_cache,
                          uint32_t kv_type, int64_t n, int64_t pos0, const ty_hparams *hp) {
    cuda_backend *c = cu_be(be);
    if (!cu_ready(c) || n <= 0) return;
    const int64_t kv_dim = hp->n_head_kv * hp->head_dim;
    const uint64_t row_bytes = ty_row_size(kv_type, kv_dim);
    if (!row_bytes || pos0 < 0 ||
        (kv_type != TY_TYPE_F32 && kv_type != TY_TYPE_F16 && kv_type != TY_TYPE_Q8_0)) {
        cu_fail(c, "rope_store: bad cache type %s / width %lld / position %lld", ty_type_name(kv_type),
                (long long)kv_dim, (long long)pos0);
        return;
    }
    ty_err err = {};
    if (hp->n_rot > hp->head_dim || hp->n_head * hp->head_dim > INT32_MAX || ensure_rope(c, hp, &err)) {
        cu_fail(c, "rope_store: %s", err.msg[0] ? err.msg : "n_rot exceeds head_dim, or q rows too wide");
        return;
    }
    const uint64_t need = (uint64_t)(pos0 + n) * row_bytes;
    if (!kv_find(c, k_cache, need, "rope_store (K)") || !kv_find(c, v_cache, need, "rope_store (V)")) return;
    uint8_t *kd = (uint8_t *)k_cache + (uint64_t)pos0 * row_bytes, *vd = (uint8_t *)v_cache + (uint64_t)pos0 * row_bytes;
    if (hp->head_dim % 2 == 0) {
        cu_launch_rope_store(c, q, k, v, (uint8_t *)k_cache, (uint8_t *)v_cache, row_bytes, kv_type, n, hp->n_head,
                             hp->n_head_kv, hp->head_dim, hp->n_rot, pos0, c->capturing ? c->step_dev + 1 : NULL);
    } else {
        c->capture_bad |= c->capturing;
        cu_launch_rope(c, q, n, hp->n_head, hp->head_dim, hp->n_rot, pos0);
        cu_launch_rope(c, k, n, hp->n_head_kv, hp->head_dim, hp->n_rot, pos0);
        cu_launch_kv_store(c, kd, kv_type, kv_dim, n, k);
        cu_launch_kv_store(c, vd, kv_type, kv_dim, n, v);
    }
    cu_after_op(c, "rope_store");
}

static void cu_swiglu(ty_backend *be, float *g, const float *u, int64_t n) {
    cuda_backend *c = cu_be(be);
    if (!cu_ready(c)) return;
    /* fused: rows of w_down's width, quantized for it on the way */
    const int64_t ne0 = c->ffn_act_ne0, rows = ne0 > 0 && n % ne0 == 0 ? n / ne0 : 0;
    const bool fused = c->fuse && cu_xq_fits(c, c->ffn_act, ne0, rows);
    if (fused) cu_launch_swiglu_q8(c, g, u, ne0, rows, c->ffn_act);
    else cu_launch_swiglu(c, g, u, n);
    cu_after_op(c, "swiglu");
    if (fused) cu_xq_set(c, g, ne0, rows, c->ffn_act);
}

static void cu_add(ty_backend *be, float *x, const float *y, int64_t n) {
    cuda_backend *c = cu_be(be);
    if (!cu_ready(c)) return;
    cu_launch_add(c, x, y, n);
    cu_after_op(c, "add");
}

static void cu_copy(ty_backend *be, float *dst, const float *src, int64_t n) {
    cuda_backend *c = cu_be(be);
    if (!cu_ready(c) || n <= 0) return;
    CU_OK(c, cudaMemcpyAsync(dst, src, sizeof(float) * (size_t)n, cudaMemcpyDeviceToDevice, c->stream));
    cu_after_op(c, "copy");
}

/* Waits for everything queued, then copies to the host. After any failure the host buffer is
 * filled with NaN instead: callers have no other error channel (see cuda_common.cuh). */
static void cu_download(ty_backend *be, float *host, const float *src, int64_t n) {
    cuda_backend *c = cu_be(be);
    if (n <= 0) return;
    if (cu_ready(c)) {
        CU_OK(c, cudaMemcpyAsync(host, src, sizeof(float) * (size_t)n, cudaMemcpyDeviceToHost, c->stream)) &&
            CU_OK(c, cudaStreamSynchronize(c->stream));
    }
    if (c->failed)
        for (int64_t i = 0; i < n; i++) host[i] = NAN;
}

static int cu_status(ty_backend *be, ty_err *err) {
    cuda_backend *c = cu_be(be);
    if (!c->failed && cu_enter(c)) cu_mv_flush(c); /* launch errors of kept matmuls show here */
    return c->failed ? ty_seterr(err, TY_ERR_DEVICE, "CUDA: %s", c->errmsg) : TY_OK;
}

static int64_t cu_counter(ty_backend *be, const char *name) {
    cuda_backend *c = cu_be(be);
    if (strcmp(name, "act_quant") == 0) return c->n_act_quant;
    if (strcmp(name, "graph_replays") == 0) return c->n_replays;
    if (strcmp(name, "attn_mma") == 0) return c->n_attn_mma;
    if (strcmp(name, "attn_quant") == 0) return c->n_attn_quant;
    if (strcmp(name, "attn_split4") == 0) return c->n_attn_split4;
    if (strcmp(name, "mv_pair") == 0) return c->n_mv_pair;
    if (strcmp(name, "mv_split") == 0) return c->n_mv_split;
    if (strcmp(name, "mma_capable") == 0) return c->mma; /* 1 where the tensor-core kernels may run */
    return -1;
}

/* Fills the ops table (member by member, so that it does not depend on the order of backend.h); the
 * optional fused ops only when `fuse`. */
static void cu_fill_ops(ty_backend_ops *o, bool fuse) {
    memset(o, 0, sizeof *o);
    o->name = "cuda";
    o->destroy = cu_destroy;
    o->buffer_new = cu_buffer_new;
    o->buffer_free = cu_buffer_free;
    o->kv_new = cu_kv_new;
    o->kv_free = cu_kv_free;
    o->kv_store = cu_kv_store;
    o->reserve = cu_reserve;
    o->get_rows = cu_get_rows;
    o->rmsnorm = cu_rmsnorm;
    o->matmul = cu_matmul;
    o->rope = cu_rope;
    o->attention = cu_attention;
    o->swiglu = cu_swiglu;
    o->add = cu_add;
    o->copy = cu_copy;
    o->download = cu_download;
    o->load_model = cu_load_model;
    o->status = cu_status;
    o->counter = cu_counter;
    if (fuse) {
        o->matmul_add = cu_matmul_add;
        o->rope_store = cu_rope_store;
        o->step_begin = cu_step_begin;
        o->step_end = cu_step_end;
    }
}

/* ---- creation ----------------------------------------------------------------------------------- */

extern "C" int ty_backend_cuda_new(const ty_backend_config *cfg, int device_index, ty_backend **out, ty_err *err) {
    *out = NULL;
    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess) {
        cudaGetLastError();
        return ty_seterr(err, TY_ERR_DEVICE, "no usable CUDA device: %s (cudaGetDeviceCount: %s)", cudaGetErrorString(e),
                         cudaGetErrorName(e));
    }
    if (count <= 0) return ty_seterr(err, TY_ERR_DEVICE, "no CUDA device found");
    if (device_index < 0 || device_index >= count)
        return ty_seterr(err, TY_ERR_DEVICE, "CUDA device %d does not exist (%d device%s found: cuda:0..cuda:%d)",
                         device_index, count, count == 1 ? "" : "s", count - 1);
    e = cudaSetDevice(device_index);
    cudaDeviceProp prop;
    if (e == cudaSuccess) e = cudaGetDeviceProperties(&prop, device_index);
    if (e != cudaSuccess) {
        cudaGetLastError();
        return ty_seterr(err, TY_ERR_DEVICE, "cannot use CUDA device %d: %s", device_index, cudaGetErrorString(e));
    }
    cudaFuncAttributes fa;
    e = cudaFuncGetAttributes(&fa, k_probe);
    if (e != cudaSuccess) {
        cudaGetLastError();
        return ty_seterr(err, TY_ERR_DEVICE,
                         "this build has no GPU code for CUDA device %d (%s, compute capability %d.%d): %s; "
                         "rebuild with -DTY_CUDA_ARCHS=%d%d",
                         device_index, prop.name, prop.major, prop.minor, cudaGetErrorString(e), prop.major, prop.minor);
    }
    cuda_backend *c = (cuda_backend *)calloc(1, sizeof *c);
    if (!c) return ty_seterr(err, TY_ERR_NOMEM, "out of memory creating the CUDA backend");
    const char *no_fuse = getenv("TY_CUDA_NO_FUSE");
    c->fuse = !(no_fuse && *no_fuse && strcmp(no_fuse, "0") != 0);
    const char *no_pdl = getenv("TY_CUDA_NO_PDL");
    c->pdl = prop.major >= 9 && !(no_pdl && *no_pdl && strcmp(no_pdl, "0") != 0);
    const char *no_mma = getenv("TY_CUDA_NO_MMA");
    c->mma = prop.major >= 8 && !(no_mma && *no_mma && strcmp(no_mma, "0") != 0) && cu_mma_compiled();
    cu_fill_ops(&c->ops, c->fuse);
    c->base.ops = &c->ops;
    c->device = device_index;
    c->n_sm = prop.multiProcessorCount;
    c->exact = cfg && cfg->exact_math;
#ifndef NDEBUG
    c->sync_each_op = 1;
#endif
    /* tests move the attention's 8-warp threshold; rounded down to 128 times a power of two (below
     * 128: 0, never 8 warps), which a recording's power-of-two split count needs (split_warps) */
    const char *w8 = getenv("TY_CUDA_SPLIT_W8_KEYS");
    c->split_w8_keys = CU_ATTN_W8_KEYS;
    if (w8 && *w8) {
        const long long v = atoll(w8);
        c->split_w8_keys = v < 128 ? 0 : 128;
        while (v >= 128 && 2 * c->split_w8_keys <= v) c->split_w8_keys *= 2;
    }
    const char *split = getenv("TY_CUDA_MV_SPLIT");
    c->mv_split_below = split && *split ? atoll(split) : CU_MV_SPLIT_BELOW;
    const char *sync = getenv("TY_CUDA_SYNC");
    if (sync && *sync && strcmp(sync, "0") != 0) c->sync_each_op = 1;
    const char *no_graph = getenv("TY_CUDA_NO_GRAPH");
    c->graphs_on = !c->sync_each_op && !(no_graph && *no_graph && strcmp(no_graph, "0") != 0);
    e = cudaStreamCreateWithFlags(&c->stream, cudaStreamNonBlocking);
    if (e != cudaSuccess) {
        cudaGetLastError();
        free(c);
        return ty_seterr(err, TY_ERR_DEVICE, "cannot create a CUDA stream on device %d: %s", device_index,
                         cudaGetErrorString(e));
    }
    *out = &c->base;
    return TY_OK;
}
