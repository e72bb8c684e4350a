/* forward.c - one batch of the llama transformer:
 *
 *   x = embed(tokens)
 *   for each layer:  h = rmsnorm(x) * attn_norm
 *                    q, k, v = Wq h, Wk h, Wv h;  rope(q), rope(k);  cache[pos] = k, v
 *                    x += Wo attention(q, cache)
 *                    h = rmsnorm(x) * ffn_norm
 *                    x += Wdown (silu(Wgate h) * Wup h)
 *   logits = Woutput (rmsnorm(x) * output_norm)
 *
 * A backend may provide fused ops (backend.h: rope_store, matmul_add) that do several of these steps
 * in one; the results are the same.
 */
#include "model/forward.h"

#include <stdlib.h>
#include <string.h>

#include "quant/quant.h"

static int alloc(ty_backend *be, size_t n, float **buf, ty_err *err) {
    return be->ops->buffer_new(be, n, buf, err);
}

int ty_forward_init(ty_forward *fw, const ty_model_desc *model, ty_backend *be, int64_t n_ctx,
                    int64_t n_batch, uint32_t kv_type, ty_err *err) {
    memset(fw, 0, sizeof *fw);
    fw->model = model;
    fw->be = be;
    fw->n_ctx = n_ctx;
    fw->n_batch = n_batch;
    fw->kv_type = kv_type;
    const ty_hparams *hp = &model->hp;
    /* a device backend uploads the weights now, before the (smaller) buffers take its memory */
    if (be->ops->load_model) {
        int lrc = be->ops->load_model(be, model, err);
        if (lrc) {
            ty_forward_free(fw);
            return lrc;
        }
    }
    const size_t B = (size_t)n_batch, E = (size_t)hp->n_embd, Q = (size_t)(hp->n_head * hp->head_dim),
                 KV = (size_t)(hp->n_head_kv * hp->head_dim), F = (size_t)hp->n_ff;
    fw->k_cache = calloc((size_t)hp->n_layer, sizeof(void *));
    fw->v_cache = calloc((size_t)hp->n_layer, sizeof(void *));
    if (!fw->k_cache || !fw->v_cache) {
        ty_forward_free(fw);
        return ty_seterr(err, TY_ERR_NOMEM, "out of memory");
    }
    int rc = TY_OK;
    uint64_t row_bytes = ty_row_size(kv_type, (int64_t)KV);
    if (!row_bytes)
        rc = ty_seterr(err, TY_ERR_UNSUPPORTED, "KV cache type %s needs a KV width (%zu) that is a multiple of its block size",
                       ty_type_name(kv_type), KV);
    for (int64_t l = 0; l < hp->n_layer && !rc; l++) {
        if (!(rc = be->ops->kv_new(be, (size_t)n_ctx, row_bytes, &fw->k_cache[l], err)))
            rc = be->ops->kv_new(be, (size_t)n_ctx, row_bytes, &fw->v_cache[l], err);
    }
    if (!rc) rc = alloc(be, B * KV, &fw->k, err);
    if (!rc) rc = alloc(be, B * KV, &fw->v, err);
    if (!rc) rc = alloc(be, B * E, &fw->x, err);
    if (!rc) rc = alloc(be, B * E, &fw->xb, err);
    if (!rc) rc = alloc(be, B * Q, &fw->q, err);
    if (!rc) rc = alloc(be, B * Q, &fw->att, err);
    if (!rc) rc = alloc(be, B * E, &fw->proj, err);
    if (!rc) rc = alloc(be, B * F, &fw->gate, err);
    if (!rc) rc = alloc(be, B * F, &fw->up, err);
    if (!rc) rc = alloc(be, B * (size_t)hp->n_vocab, &fw->logits, err);
    if (!rc) rc = be->ops->reserve(be, hp, n_batch, n_ctx, err);
    if (rc) {
        ty_forward_free(fw);
        return ty_preferr(err, "context of %lld tokens", (long long)n_ctx);
    }
    return TY_OK;
}

void ty_forward_free(ty_forward *fw) {
    ty_backend *be = fw->be;
    if (!be) return;
    if (fw->k_cache)
        for (int64_t l = 0; l < fw->model->hp.n_layer; l++) {
            be->ops->kv_free(be, fw->k_cache[l]);
            be->ops->kv_free(be, fw->v_cache[l]);
        }
    free(fw->k_cache);
    free(fw->v_cache);
    float *bufs[] = {fw->x, fw->xb, fw->q, fw->k, fw->v, fw->att, fw->proj, fw->gate, fw->up, fw->logits};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) be->ops->buffer_free(be, bufs[i]);
    memset(fw, 0, sizeof *fw);
}

/* x += W in (the residual add after wo and w_down), fused when the backend can */
static void residual_matmul(ty_forward *fw, const ty_weight *w, const float *in, int64_t n) {
    const ty_backend_ops *op = fw->be->ops;
    if (op->matmul_add) {
        op->matmul_add(fw->be, w, in, n, fw->x);
    } else {
        op->matmul(fw->be, w, in, n, fw->proj);
        op->add(fw->be, fw->x, fw->proj, n * fw->model->hp.n_embd);
    }
}

/* The ops of one batch, up to the logits of its last row (all rows with all_logits) in fw->logits. */
static void forward_ops(ty_forward *fw, const int32_t *tokens, int64_t n, int64_t pos0, int all_logits) {
    const ty_model_desc *m = fw->model;
    const ty_hparams *hp = &m->hp;
    const ty_backend_ops *op = fw->be->ops;
    ty_backend *be = fw->be;
    const int64_t E = hp->n_embd, KV = hp->n_head_kv * hp->head_dim;

    op->get_rows(be, &m->tok_embd, tokens, n, fw->x);
    for (int64_t l = 0; l < hp->n_layer; l++) {
        const ty_layer_weights *L = &m->layers[l];
        op->rmsnorm(be, fw->x, &L->attn_norm, hp->rms_norm_eps, n, fw->xb);
        op->matmul(be, &L->wq, fw->xb, n, fw->q);
        op->matmul(be, &L->wk, fw->xb, n, fw->k);
        op->matmul(be, &L->wv, fw->xb, n, fw->v);
        if (op->rope_store) {
            op->rope_store(be, fw->q, fw->k, fw->v, fw->k_cache[l], fw->v_cache[l], fw->kv_type, n, pos0, hp);
        } else {
            op->rope(be, fw->q, n, hp->n_head, hp, pos0);
            op->rope(be, fw->k, n, hp->n_head_kv, hp, pos0);
            op->kv_store(be, fw->k_cache[l], fw->kv_type, KV, pos0, n, fw->k);
            op->kv_store(be, fw->v_cache[l], fw->kv_type, KV, pos0, n, fw->v);
        }
        op->attention(be, fw->q, fw->k_cache[l], fw->v_cache[l], fw->kv_type, n, pos0, hp, fw->att);
        residual_matmul(fw, &L->wo, fw->att, n);

        op->rmsnorm(be, fw->x, &L->ffn_norm, hp->rms_norm_eps, n, fw->xb);
        op->matmul(be, &L->w_gate, fw->xb, n, fw->gate);
        op->matmul(be, &L->w_up, fw->xb, n, fw->up);
        op->swiglu(be, fw->gate, fw->up, n * hp->n_ff);
        residual_matmul(fw, &L->w_down, fw->gate, n);
    }
    /* Only the rows whose logits are wanted go through the (large) output matrix. */
    const float *rows = all_logits ? fw->x : fw->x + (n - 1) * E;
    int64_t n_out = all_logits ? n : 1;
    op->rmsnorm(be, rows, &m->output_norm, hp->rms_norm_eps, n_out, fw->xb);
    op->matmul(be, &m->output, fw->xb, n_out, fw->logits);
}

void ty_forward_batch(ty_forward *fw, const int32_t *tokens, int64_t n, int64_t pos0, int all_logits,
                      float *logits) {
    const ty_backend_ops *op = fw->be->ops;
    /* a decode step may be replayed from (or recorded into) a device-side recording */
    const int step = n == 1 && op->step_begin;
    if (!step || !op->step_begin(fw->be, tokens[0], pos0)) {
        forward_ops(fw, tokens, n, pos0, all_logits);
        if (step && op->step_end(fw->be)) forward_ops(fw, tokens, n, pos0, all_logits);
    }
    op->download(fw->be, logits, fw->logits, (all_logits ? n : 1) * fw->model->hp.n_vocab);
}

void ty_forward_fill_synthetic(ty_forward *fw, int64_t pos0, int64_t n, uint64_t seed) {
    const ty_model_desc *m = fw->model;
    const ty_hparams *hp = &m->hp;
    const ty_backend_ops *op = fw->be->ops;
    const int64_t E = hp->n_embd, KV = hp->n_head_kv * hp->head_dim;
    int32_t ids[64];
    const int64_t toks = fw->n_batch < 64 ? fw->n_batch : 64;
    const int64_t rows_per_chunk = toks * E / KV; /* KV rows that toks embedding rows hold */
    for (int64_t done = 0; done < n && rows_per_chunk > 0;) {
        for (int64_t i = 0; i < toks; i++) { /* splitmix64 steps: any ids in [0, n_vocab) do */
            uint64_t z = (seed += 0x9E3779B97F4A7C15ull);
            z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
            z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
            ids[i] = (int32_t)((z ^ (z >> 31)) % (uint64_t)hp->n_vocab);
        }
        op->get_rows(fw->be, &m->tok_embd, ids, toks, fw->x);
        const int64_t r = n - done < rows_per_chunk ? n - done : rows_per_chunk;
        for (int64_t l = 0; l < hp->n_layer; l++) {
            op->kv_store(fw->be, fw->k_cache[l], fw->kv_type, KV, pos0 + done, r, fw->x);
            op->kv_store(fw->be, fw->v_cache[l], fw->kv_type, KV, pos0 + done, r, fw->x);
        }
        done += r;
    }
}
