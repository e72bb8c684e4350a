/* model.h - the llama architecture (Llama 2, Mistral 7B v0.1-v0.3) as GGUF stores it:
 * hyperparameters read from llama.* metadata and tensor views bound from the tensor table.
 *
 * Shapes use ggml's order: ne[0] is the input (contiguous) dimension of a weight matrix, so a
 * matrix of ne = {in, out} is `out` rows of `in` elements, and y = W x is one dot per row. */
#ifndef TY_MODEL_H
#define TY_MODEL_H

#include <stdint.h>

#include "base/error.h"
#include "gguf/gguf.h"

typedef struct ty_hparams {
    int64_t n_vocab;
    int64_t n_ctx_train;   /* llama.context_length */
    int64_t n_embd;        /* dim */
    int64_t n_layer;
    int64_t n_head;
    int64_t n_head_kv;     /* < n_head: grouped-query attention */
    int64_t n_ff;          /* SwiGLU hidden size */
    int64_t head_dim;      /* n_embd / n_head unless the file says otherwise */
    int64_t n_rot;         /* rotated dims per head (llama.rope.dimension_count) */
    float rope_freq_base;
    float rms_norm_eps;
} ty_hparams;

/* A weight matrix (or vector) in its file form. */
typedef struct ty_weight {
    const char *name;
    uint32_t type;         /* enum ty_type */
    int64_t ne0, ne1;      /* ne0 = elements per row (input dim), ne1 = rows (output dim) */
    uint64_t row_bytes;
    const uint8_t *data;
} ty_weight;

typedef struct ty_layer_weights {
    ty_weight attn_norm;   /* (n_embd) */
    ty_weight wq;          /* (n_embd) -> (n_head * head_dim), rows permuted for adjacent-pair RoPE */
    ty_weight wk;          /* (n_embd) -> (n_head_kv * head_dim), same permutation */
    ty_weight wv;          /* (n_embd) -> (n_head_kv * head_dim) */
    ty_weight wo;          /* (n_head * head_dim) -> (n_embd) */
    ty_weight ffn_norm;    /* (n_embd) */
    ty_weight w_gate;      /* (n_embd) -> (n_ff) */
    ty_weight w_up;        /* (n_embd) -> (n_ff) */
    ty_weight w_down;      /* (n_ff) -> (n_embd) */
} ty_layer_weights;

typedef struct ty_model_desc {
    ty_hparams hp;
    ty_weight tok_embd;    /* (n_embd) x n_vocab rows */
    ty_weight output_norm; /* (n_embd) */
    ty_weight output;      /* (n_embd) -> (n_vocab); token_embd when the file ties them */
    ty_layer_weights *layers; /* n_layer entries */
    uint64_t n_params;
    uint64_t weight_bytes;
    uint32_t file_type;    /* general.file_type, or UINT32_MAX */
} ty_model_desc;

/* Reads hyperparameters and binds every tensor, checking names, types and shapes.
 * TY_ERR_UNSUPPORTED if the file is not a llama-architecture model. */
int ty_model_desc_load(const gguf_file *f, ty_model_desc *out, ty_err *err);
void ty_model_desc_free(ty_model_desc *d);

/* "Q4_K_M" etc. for a general.file_type value; "unknown" otherwise. */
const char *ty_file_type_name(uint32_t file_type);

#endif
