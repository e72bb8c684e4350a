/* model.c - reading llama-architecture hyperparameters and binding the tensors of a GGUF file. */
#include "model/model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "quant/quant.h"

const char *ty_file_type_name(uint32_t ft) {
    switch (ft) {
    case 0: return "F32";
    case 1: return "F16";
    case 2: return "Q4_0";
    case 3: return "Q4_1";
    case 7: return "Q8_0";
    case 8: return "Q5_0";
    case 9: return "Q5_1";
    case 10: return "Q2_K";
    case 11: return "Q3_K_S";
    case 12: return "Q3_K_M";
    case 13: return "Q3_K_L";
    case 14: return "Q4_K_S";
    case 15: return "Q4_K_M";
    case 16: return "Q5_K_S";
    case 17: return "Q5_K_M";
    case 18: return "Q6_K";
    case 32: return "BF16";
    default: return "unknown";
    }
}

/* Integer hyperparameter: required ones fail when absent; every value must lie in [lo, hi]. */
static int get_int(const gguf_file *f, const char *key, int required, int64_t def, int64_t lo,
                   int64_t hi, int64_t *out, ty_err *err) {
    if (!gguf_find_kv(f, key)) {
        if (required) return ty_seterr(err, TY_ERR_FORMAT, "missing required metadata '%s'", key);
        *out = def;
        return TY_OK;
    }
    int rc = gguf_get_i64(f, key, out, err);
    if (rc) return rc;
    if (*out < lo || *out > hi)
        return ty_seterr(err, TY_ERR_FORMAT, "metadata '%s' = %lld is out of range [%lld, %lld]",
                         key, (long long)*out, (long long)lo, (long long)hi);
    return TY_OK;
}

static int get_float(const gguf_file *f, const char *key, float def, float lo, float hi,
                     float *out, ty_err *err) {
    if (!gguf_find_kv(f, key)) {
        *out = def;
        return TY_OK;
    }
    int rc = gguf_get_f32(f, key, out, err);
    if (rc) return rc;
    if (!(*out >= lo && *out <= hi)) /* also rejects NaN */
        return ty_seterr(err, TY_ERR_FORMAT, "metadata '%s' = %g is out of range", key, (double)*out);
    return TY_OK;
}

static int read_hparams(const gguf_file *f, ty_hparams *hp, ty_err *err) {
    gguf_str arch;
    if (!gguf_find_kv(f, "general.architecture"))
        return ty_seterr(err, TY_ERR_FORMAT, "missing required metadata 'general.architecture'");
    int rc = gguf_get_str(f, "general.architecture", &arch, err);
    if (rc) return rc;
    if (arch.len != 5 || memcmp(arch.ptr, "llama", 5) != 0)
        return ty_seterr(err, TY_ERR_UNSUPPORTED,
                         "not a llama-architecture model (general.architecture = '%.*s'); "
                         "supported: llama (Llama, Mistral)",
                         (int)(arch.len > 64 ? 64 : arch.len), arch.ptr);
    const int64_t BIG = 1 << 20;
    if ((rc = get_int(f, "llama.block_count", 1, 0, 1, 4096, &hp->n_layer, err)) ||
        (rc = get_int(f, "llama.embedding_length", 1, 0, 1, BIG, &hp->n_embd, err)) ||
        (rc = get_int(f, "llama.feed_forward_length", 1, 0, 1, BIG, &hp->n_ff, err)) ||
        (rc = get_int(f, "llama.attention.head_count", 1, 0, 1, 4096, &hp->n_head, err)) ||
        (rc = get_int(f, "llama.attention.head_count_kv", 0, hp->n_head, 1, hp->n_head,
                      &hp->n_head_kv, err)) ||
        (rc = get_int(f, "llama.context_length", 1, 0, 1, 1 << 24, &hp->n_ctx_train, err)))
        return rc;
    if (hp->n_head % hp->n_head_kv != 0)
        return ty_seterr(err, TY_ERR_FORMAT, "head_count %lld is not a multiple of head_count_kv %lld",
                         (long long)hp->n_head, (long long)hp->n_head_kv);
    int64_t def_hd = hp->n_embd / hp->n_head;
    if ((rc = get_int(f, "llama.attention.key_length", 0, def_hd, 2, 4096, &hp->head_dim, err)))
        return rc;
    int64_t vdim;
    if ((rc = get_int(f, "llama.attention.value_length", 0, hp->head_dim, 1, 4096, &vdim, err)))
        return rc;
    if (vdim != hp->head_dim)
        return ty_seterr(err, TY_ERR_UNSUPPORTED, "key_length %lld != value_length %lld",
                         (long long)hp->head_dim, (long long)vdim);
    if ((rc = get_int(f, "llama.rope.dimension_count", 0, hp->head_dim, 2, hp->head_dim, &hp->n_rot,
                      err)))
        return rc;
    if (hp->n_rot % 2 || hp->head_dim % 2)
        return ty_seterr(err, TY_ERR_FORMAT, "rope dimension count %lld must be even",
                         (long long)hp->n_rot);
    if ((rc = get_float(f, "llama.rope.freq_base", 10000.0f, 1.0f, 1e12f, &hp->rope_freq_base, err)) ||
        (rc = get_float(f, "llama.attention.layer_norm_rms_epsilon", 1e-5f, 0.0f, 1.0f,
                        &hp->rms_norm_eps, err)))
        return rc;
    /* Scaled RoPE variants would silently give wrong answers: refuse them. */
    const gguf_kv *scaling = gguf_find_kv(f, "llama.rope.scaling.type");
    if (scaling && scaling->type == GGUF_TYPE_STRING &&
        !(scaling->v.str.len == 4 && memcmp(scaling->v.str.ptr, "none", 4) == 0))
        return ty_seterr(err, TY_ERR_UNSUPPORTED, "RoPE scaling '%.*s' is not supported",
                         (int)(scaling->v.str.len > 32 ? 32 : scaling->v.str.len), scaling->v.str.ptr);
    const gguf_kv *tokens = gguf_find_kv(f, "tokenizer.ggml.tokens");
    if (!tokens || tokens->type != GGUF_TYPE_ARRAY || tokens->arr_type != GGUF_TYPE_STRING)
        return ty_seterr(err, TY_ERR_FORMAT, "missing required metadata 'tokenizer.ggml.tokens'");
    hp->n_vocab = (int64_t)tokens->arr_n;
    if (hp->n_vocab < 3 || hp->n_vocab > (1 << 24))
        return ty_seterr(err, TY_ERR_FORMAT, "vocabulary size %lld is out of range",
                         (long long)hp->n_vocab);
    return TY_OK;
}

/* Binds tensor `name`, which must have shape (ne0, ne1) (ne1 = 1 for vectors). */
static int bind(const gguf_file *f, const char *name, int64_t ne0, int64_t ne1, ty_weight *w,
                ty_model_desc *d, ty_err *err) {
    const gguf_tensor *t = gguf_find_tensor(f, name);
    if (!t) return ty_seterr(err, TY_ERR_FORMAT, "missing tensor '%s'", name);
    int64_t t1 = t->n_dims >= 2 ? t->ne[1] : 1;
    for (uint32_t i = 2; i < t->n_dims; i++)
        if (t->ne[i] != 1) t1 = -1;
    if (t->ne[0] != ne0 || t1 != ne1)
        return ty_seterr(err, TY_ERR_FORMAT, "tensor '%s' has shape [%lld, %lld], expected [%lld, %lld]",
                         name, (long long)t->ne[0], (long long)t1, (long long)ne0, (long long)ne1);
    const ty_type_info *ti = ty_type_get(t->type);
    if (!ti || t->type == TY_TYPE_Q8_1 || t->type == TY_TYPE_Q8_K)
        return ty_seterr(err, TY_ERR_UNSUPPORTED, "tensor '%s' has unsupported type %s (%u)", name,
                         ty_type_name(t->type), t->type);
    if (ne1 == 1 && t->type != TY_TYPE_F32 && t->type != TY_TYPE_F16 && t->type != TY_TYPE_BF16)
        return ty_seterr(err, TY_ERR_UNSUPPORTED, "norm tensor '%s' must be F32, F16 or BF16", name);
    w->name = t->name;
    w->type = t->type;
    w->ne0 = ne0;
    w->ne1 = ne1;
    w->row_bytes = ty_row_size(t->type, ne0);
    w->data = t->data;
    d->n_params += (uint64_t)ne0 * (uint64_t)ne1;
    d->weight_bytes += t->nbytes;
    return TY_OK;
}

int ty_model_desc_load(const gguf_file *f, ty_model_desc *d, ty_err *err) {
    memset(d, 0, sizeof *d);
    ty_hparams *hp = &d->hp;
    int rc = read_hparams(f, hp, err);
    if (rc) return rc;
    const int64_t E = hp->n_embd, Q = hp->n_head * hp->head_dim, KV = hp->n_head_kv * hp->head_dim;
    d->file_type = UINT32_MAX;
    if (gguf_find_kv(f, "general.file_type")) {
        uint32_t ft;
        if (gguf_get_u32(f, "general.file_type", &ft, err) == TY_OK) d->file_type = ft;
    }
    if ((rc = bind(f, "token_embd.weight", E, hp->n_vocab, &d->tok_embd, d, err)) ||
        (rc = bind(f, "output_norm.weight", E, 1, &d->output_norm, d, err)))
        return rc;
    if (gguf_find_tensor(f, "output.weight")) {
        if ((rc = bind(f, "output.weight", E, hp->n_vocab, &d->output, d, err))) return rc;
    } else {
        d->output = d->tok_embd; /* tied embeddings */
    }
    d->layers = calloc((size_t)hp->n_layer, sizeof *d->layers);
    if (!d->layers) return ty_seterr(err, TY_ERR_NOMEM, "out of memory binding %lld layers",
                                     (long long)hp->n_layer);
    for (int64_t l = 0; l < hp->n_layer; l++) {
        ty_layer_weights *L = &d->layers[l];
        struct { const char *suffix; int64_t ne0, ne1; ty_weight *w; } spec[] = {
            {"attn_norm", E, 1, &L->attn_norm},   {"attn_q", E, Q, &L->wq},
            {"attn_k", E, KV, &L->wk},            {"attn_v", E, KV, &L->wv},
            {"attn_output", Q, E, &L->wo},        {"ffn_norm", E, 1, &L->ffn_norm},
            {"ffn_gate", E, hp->n_ff, &L->w_gate}, {"ffn_up", E, hp->n_ff, &L->w_up},
            {"ffn_down", hp->n_ff, E, &L->w_down},
        };
        for (size_t i = 0; i < sizeof spec / sizeof spec[0]; i++) {
            char name[96];
            snprintf(name, sizeof name, "blk.%lld.%s.weight", (long long)l, spec[i].suffix);
            if ((rc = bind(f, name, spec[i].ne0, spec[i].ne1, spec[i].w, d, err))) {
                ty_model_desc_free(d);
                return rc;
            }
        }
    }
    if (gguf_find_tensor(f, "blk.0.ffn_gate_inp.weight")) {
        ty_model_desc_free(d);
        return ty_seterr(err, TY_ERR_UNSUPPORTED, "mixture-of-experts llama models are not supported");
    }
    return TY_OK;
}

void ty_model_desc_free(ty_model_desc *d) {
    free(d->layers);
    d->layers = NULL;
}
