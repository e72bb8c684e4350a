/* backend.h - the operations a device provides to the forward pass.
 *
 * The forward pass (model/forward.c) is written once over these ops; each device implements them
 * on its own buffers (host memory for the CPU, device memory for a GPU) and is free to fuse or
 * reorder work inside an op. All activation buffers hold float32, row-major, one row per token.
 * The KV cache is one buffer per layer for K and one for V, each n_ctx rows of n_head_kv * head_dim
 * elements of the cache type (F32, F16 or Q8_0), written by kv_store and read by attention. */
#ifndef TY_BACKEND_H
#define TY_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "base/error.h"
#include "model/model.h"

typedef struct ty_backend ty_backend;

typedef struct ty_backend_ops {
    const char *name;
    void (*destroy)(ty_backend *be);
    /* float buffers of n elements, zero-filled */
    int (*buffer_new)(ty_backend *be, size_t n, float **buf, ty_err *err);
    void (*buffer_free)(ty_backend *be, float *buf);
    /* a KV cache buffer of `rows` rows of `row_bytes`, zero-filled */
    int (*kv_new)(ty_backend *be, size_t rows, uint64_t row_bytes, void **buf, ty_err *err);
    void (*kv_free)(ty_backend *be, void *buf);
    /* converts n rows of kv_dim floats into cache rows pos0.. of the cache */
    void (*kv_store)(ty_backend *be, void *cache, uint32_t kv_type, int64_t kv_dim, int64_t pos0,
                     int64_t n, const float *src);
    /* sizes internal scratch for batches of up to n_batch tokens and contexts of n_ctx */
    int (*reserve)(ty_backend *be, const ty_hparams *hp, int64_t n_batch, int64_t n_ctx,
                   ty_err *err);
    /* out[i] = dequantized row ids[i] of w (the token embedding lookup) */
    void (*get_rows)(ty_backend *be, const ty_weight *w, const int32_t *ids, int64_t n, float *out);
    /* out[t] = x[t] / rms(x[t]) * w, for n rows of w->ne0 */
    void (*rmsnorm)(ty_backend *be, const float *x, const ty_weight *w, float eps, int64_t n,
                    float *out);
    /* y[t] = W x[t] for n rows: x rows have w->ne0 floats, y rows w->ne1 */
    void (*matmul)(ty_backend *be, const ty_weight *w, const float *x, int64_t n, float *y);
    /* rotates adjacent pairs (x[2i], x[2i+1]) of the first n_rot dims of each head of each row;
     * row t is at position pos0 + t */
    void (*rope)(ty_backend *be, float *x, int64_t n, int64_t n_head, const ty_hparams *hp,
                 int64_t pos0);
    /* causal attention of n query rows at positions pos0.. over cache positions [0, pos0 + n) */
    void (*attention)(ty_backend *be, const float *q, const void *k_cache, const void *v_cache,
                      uint32_t kv_type, int64_t n, int64_t pos0, const ty_hparams *hp, float *out);
    /* g[i] = silu(g[i]) * u[i] */
    void (*swiglu)(ty_backend *be, float *g, const float *u, int64_t n);
    /* x[i] += y[i] */
    void (*add)(ty_backend *be, float *x, const float *y, int64_t n);
    /* device-to-device and device-to-host copies of n floats */
    void (*copy)(ty_backend *be, float *dst, const float *src, int64_t n);
    void (*download)(ty_backend *be, float *host, const float *src, int64_t n);
    /* called once by ty_forward_init before anything else: a device backend copies the model's
     * weights into its memory here (ops then find them by ty_weight.data); the CPU does nothing */
    int (*load_model)(ty_backend *be, const ty_model_desc *model, ty_err *err);
    /* optional (NULL: never fails): TY_OK, or the first failure of an earlier op, which a device
     * backend records because the void ops above cannot return it (TY_ERR_DEVICE + message) */
    int (*status)(ty_backend *be, ty_err *err);

    /* Optional fused ops (NULL: forward.c runs the ops they stand for). Each gives the results of
     * those ops. */
    /* y[t] += W x[t] for n rows (matmul into a scratch row, then add); x and y must not overlap */
    void (*matmul_add)(ty_backend *be, const ty_weight *w, const float *x, int64_t n, float *y);
    /* rope of q (n_head heads) and k (n_head_kv heads) of n rows at positions pos0.. in place, then
     * kv_store of k and v (hp->n_head_kv * hp->head_dim wide) into rows pos0.. of the caches */
    void (*rope_store)(ty_backend *be, float *q, float *k, const float *v, void *k_cache, void *v_cache,
                       uint32_t kv_type, int64_t n, int64_t pos0, const ty_hparams *hp);
    /* optional, for tests: a named counter of the backend's own work, -1 for a name it does not
     * count (CUDA: "act_quant", activation rows a matmul quantized itself, none fused op did;
     * "graph_replays", decode steps replayed from a recording) */
    int64_t (*counter)(ty_backend *be, const char *name);

    /* Optional: recorded decode steps (NULL: none). ty_forward_batch calls step_begin before a
     * one-token step (token id `token` at position pos). It returns 1 when the backend replayed a
     * recording of the whole step, logits included, so that the forward issues no op but the
     * download; 0 when the forward is to issue the ops, which the backend may record, and then call
     * step_end. step_end returns 0, or non-zero when a recording failed and none of its ops ran:
     * the forward then issues them again, plainly. */
    int (*step_begin)(ty_backend *be, int32_t token, int64_t pos);
    int (*step_end)(ty_backend *be);
} ty_backend_ops;

struct ty_backend {
    const ty_backend_ops *ops;
};

typedef struct ty_backend_config {
    int n_threads;   /* CPU threads */
    int exact_math;  /* dequantize weights exactly, compute in float32 */
} ty_backend_config;

/* Creates the backend named by `device`: "cpu", "cuda" (= "cuda:0"), "cuda:N", or "auto" (the first
 * CUDA device when one is usable, else the CPU). */
int ty_backend_new(const char *device, const ty_backend_config *cfg, ty_backend **out, ty_err *err);

int ty_backend_cpu_new(const ty_backend_config *cfg, ty_backend **out, ty_err *err);

/* CUDA device `device_index` (src/backend/cuda/; only in builds with TY_HAVE_CUDA). Fails with
 * TY_ERR_DEVICE and a one-line reason when there is no such device, no driver or no code for it. */
int ty_backend_cuda_new(const ty_backend_config *cfg, int device_index, ty_backend **out, ty_err *err);

#endif
