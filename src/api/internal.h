/* internal.h - what the public handles hold. */
#ifndef TY_API_INTERNAL_H
#define TY_API_INTERNAL_H

#include "trainyard.h"

#include <pthread.h>

#include "backend/backend.h"
#include "base/error.h"
#include "gguf/gguf.h"
#include "model/forward.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"

struct ty_model {
    gguf_file *file;
    ty_model_desc desc;
    ty_tokenizer *tok;
    char device[64];
    ty_backend_config be_cfg;
    char name[128];
    /* The last failure. Calls that take a const model (tokenize, detokenize, chat_tokenize) may run
     * on several threads at once: they write it through ty_model_record_error, under err_lock. */
    ty_err err;
    pthread_mutex_t err_lock;
};

/* Benchmarks only: replaces the draft model's proposal for sequence position pos (the draft still
 * runs at its full cost, and the replacement is what it is fed). */
typedef ty_token (*ty_draft_oracle)(void *user, int64_t pos, ty_token proposed);

struct ty_context {
    ty_model *model;
    ty_backend *be;
    ty_forward fw;
    int64_t n_past;
    ty_token *tokens;   /* the token at each cached position (-1: synthetic), n_ctx entries */
    float *logits;      /* host: n_logits rows of n_vocab */
    int64_t n_logits;   /* rows held from the last eval */
    int64_t logits_cap; /* rows allocated */
    int logits_all;
    int64_t n_last_eval;
    /* speculative decoding (speculative.c) */
    ty_context *draft;  /* the draft model's context, or NULL */
    int draft_min, draft_max, lookup;
    ty_draft_oracle oracle;
    void *oracle_user;
    ty_err err;
};

/* Benchmarks only: appends n positions of synthetic K/V (ty_forward_fill_synthetic) to the
 * context, as if n tokens had been evaluated; the logits are dropped. */
int ty_context_fill_synthetic(ty_context *c, int64_t n, uint64_t seed);

/* Benchmarks only: see ty_draft_oracle (NULL turns it off). */
void ty_context_set_draft_oracle(ty_context *c, ty_draft_oracle fn, void *user);

/* ty_generate for a context with a draft model or prompt lookup (speculative.c). */
int ty_generate_speculative(ty_context *c, ty_sampler *s, const ty_token *prompt, int64_t n_prompt,
                            int64_t n_predict, ty_token_callback cb, void *user,
                            ty_generate_stats *stats);

/* Records err as the model's last failure (under its lock) and returns err->code. */
int ty_model_record_error(const ty_model *m, const ty_err *err);

/* Weight bytes one decode step reads (ty_model_info.bytes_per_token). */
uint64_t ty_model_bytes_per_token(const ty_model *m);

/* Copies err into a newly malloc'd string for an errmsg out-parameter (NULL-safe). */
void ty_export_error(const ty_err *err, char **errmsg);

#endif
