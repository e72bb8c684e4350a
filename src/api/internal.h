/* internal.h - what the public handles hold. */
#ifndef TY_API_INTERNAL_H
#define TY_API_INTERNAL_H

#include "trainyard.h"

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
    ty_err err;
};

struct ty_context {
    ty_model *model;
    ty_backend *be;
    ty_forward fw;
    int64_t n_past;
    float *logits;      /* host: n_logits rows of n_vocab */
    int64_t n_logits;   /* rows held from the last eval */
    int64_t logits_cap; /* rows allocated */
    int logits_all;
    int64_t n_last_eval;
    ty_err err;
};

/* Copies err into a newly malloc'd string for an errmsg out-parameter (NULL-safe). */
void ty_export_error(const ty_err *err, char **errmsg);

#endif
