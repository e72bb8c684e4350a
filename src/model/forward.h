/* forward.h - the transformer forward pass over a backend, with its KV cache and activations. */
#ifndef TY_MODEL_FORWARD_H
#define TY_MODEL_FORWARD_H

#include "backend/backend.h"
#include "model/model.h"

typedef struct ty_forward {
    const ty_model_desc *model;
    ty_backend *be;
    int64_t n_ctx, n_batch;
    uint32_t kv_type;           /* TY_TYPE_F32, F16 or Q8_0 */
    void **k_cache, **v_cache;  /* n_layer buffers of n_ctx rows of (n_head_kv * head_dim) kv_type */
    /* activations, rows of one batch (n_batch rows) */
    float *x;      /* [n_batch][n_embd] residual stream */
    float *xb;     /* [n_batch][n_embd] normalised input of a block */
    float *q;      /* [n_batch][n_head * head_dim] */
    float *k, *v;  /* [n_batch][n_head_kv * head_dim] before they enter the cache */
    float *att;    /* [n_batch][n_head * head_dim] attention output */
    float *proj;   /* [n_batch][n_embd] block output before the residual add */
    float *gate;   /* [n_batch][n_ff] */
    float *up;     /* [n_batch][n_ff] */
    float *logits; /* [n_batch][n_vocab] on the device */
} ty_forward;

int ty_forward_init(ty_forward *fw, const ty_model_desc *model, ty_backend *be, int64_t n_ctx,
                    int64_t n_batch, uint32_t kv_type, ty_err *err);
void ty_forward_free(ty_forward *fw);

/* Runs n (<= n_batch) tokens at positions pos0..pos0+n-1, writing their K/V into the cache.
 * Logits go to host memory `logits`: for every token when all_logits (n rows), else only the last
 * (one row). pos0 + n <= n_ctx is the caller's invariant. */
void ty_forward_batch(ty_forward *fw, const int32_t *tokens, int64_t n, int64_t pos0, int all_logits,
                      float *logits);

/* Writes K/V rows at positions [pos0, pos0 + n) of every layer without running the model: the
 * embedding values of pseudo-random tokens, cut into rows of the cache's width. For benchmarks of
 * decode at depth only (a step's time does not depend on the values, and a real 16k-token fill
 * takes most of an hour on a laptop CPU); the cache then holds no real tokens. */
void ty_forward_fill_synthetic(ty_forward *fw, int64_t pos0, int64_t n, uint64_t seed);

#endif
