/* model_api.c - opening a model: map the file, read the architecture, load the tokenizer. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/internal.h"
#include "base/threadpool.h"
#include "quant/quant.h"

const char *ty_version(void) { return TY_VERSION; }

void ty_free(void *p) { free(p); }

void ty_export_error(const ty_err *err, char **errmsg) {
    if (!errmsg) return;
    *errmsg = strdup(err->msg[0] ? err->msg : ty_status_string(err->code));
}

ty_model_params ty_model_default_params(void) {
    ty_model_params p = {.device = "cpu", .n_threads = 0, .exact_math = 0};
    return p;
}

int ty_model_open(const char *path, const ty_model_params *params, ty_model **out, char **errmsg) {
    ty_err err = {0};
    if (errmsg) *errmsg = NULL;
    if (!out || !path) {
        ty_seterr(&err, TY_ERR_INVALID_ARG, "ty_model_open: path and out are required");
        ty_export_error(&err, errmsg);
        return err.code;
    }
    *out = NULL;
    ty_model_params p = params ? *params : ty_model_default_params();
    ty_model *m = calloc(1, sizeof *m);
    if (!m || pthread_mutex_init(&m->err_lock, NULL) != 0) {
        free(m);
        ty_seterr(&err, TY_ERR_NOMEM, "out of memory");
        ty_export_error(&err, errmsg);
        return err.code;
    }
    snprintf(m->device, sizeof m->device, "%s", p.device ? p.device : "cpu");
    m->be_cfg.n_threads = p.n_threads > 0 ? p.n_threads : ty_physical_cores();
    m->be_cfg.exact_math = p.exact_math;
    int rc = gguf_open(path, &m->file, &err);
    if (!rc) rc = ty_model_desc_load(m->file, &m->desc, &err);
    if (!rc) rc = ty_tokenizer_load(m->file, &m->tok, &err);
    if (!rc && ty_tokenizer_n_vocab(m->tok) != m->desc.hp.n_vocab)
        rc = ty_seterr(&err, TY_ERR_FORMAT, "tokenizer has %d tokens but the model %lld",
                       ty_tokenizer_n_vocab(m->tok), (long long)m->desc.hp.n_vocab);
    if (!rc) { /* fail now, not at the first context, when the device is missing */
        ty_backend *be = NULL;
        rc = ty_backend_new(m->device, &m->be_cfg, &be, &err);
        if (be) be->ops->destroy(be);
    }
    if (rc) {
        if (m->file) ty_preferr(&err, "%s", path);
        ty_export_error(&err, errmsg);
        ty_model_close(m);
        return rc;
    }
    gguf_str name;
    ty_err ignore;
    if (gguf_find_kv(m->file, "general.name") && !gguf_get_str(m->file, "general.name", &name, &ignore))
        snprintf(m->name, sizeof m->name, "%.*s", (int)(name.len < 127 ? name.len : 127), name.ptr);
    *out = m;
    return TY_OK;
}

void ty_model_close(ty_model *m) {
    if (!m) return;
    ty_tokenizer_free(m->tok);
    ty_model_desc_free(&m->desc);
    gguf_close(m->file);
    pthread_mutex_destroy(&m->err_lock);
    free(m);
}

int ty_model_record_error(const ty_model *m, const ty_err *err) {
    ty_model *mm = (ty_model *)m; /* the error record is the only thing written */
    pthread_mutex_lock(&mm->err_lock);
    mm->err = *err;
    pthread_mutex_unlock(&mm->err_lock);
    return err->code;
}

const char *ty_model_errmsg(const ty_model *m) { return m ? m->err.msg : "no model"; }

uint64_t ty_model_bytes_per_token(const ty_model *m) {
    /* all weights but the embedding table, of which one row (unless the output matrix is it) */
    const ty_weight *emb = &m->desc.tok_embd;
    return m->desc.weight_bytes + emb->row_bytes -
           (m->desc.output.data == emb->data ? 0 : emb->row_bytes * (uint64_t)emb->ne1);
}

int ty_model_get_info(const ty_model *m, ty_model_info *info) {
    if (!m || !info) return TY_ERR_INVALID_ARG;
    const ty_hparams *hp = &m->desc.hp;
    info->architecture = "llama";
    info->name = m->name;
    info->n_vocab = hp->n_vocab;
    info->n_ctx_train = hp->n_ctx_train;
    info->n_embd = hp->n_embd;
    info->n_layer = hp->n_layer;
    info->n_head = hp->n_head;
    info->n_head_kv = hp->n_head_kv;
    info->n_ff = hp->n_ff;
    info->head_dim = hp->head_dim;
    info->n_rot = hp->n_rot;
    info->rope_freq_base = hp->rope_freq_base;
    info->rms_norm_eps = hp->rms_norm_eps;
    info->n_params = m->desc.n_params;
    info->weight_bytes = m->desc.weight_bytes;
    info->file_bytes = gguf_file_size(m->file);
    info->bytes_per_token = ty_model_bytes_per_token(m);
    info->file_type = ty_file_type_name(m->desc.file_type);
    info->tokenizer = "llama";
    info->add_bos = ty_tokenizer_add_bos(m->tok);
    info->add_eos = ty_tokenizer_add_eos(m->tok);
    info->n_tensors = (int64_t)gguf_n_tensors(m->file);
    info->n_threads = m->be_cfg.n_threads;
    return TY_OK;
}

int ty_model_tensor(const ty_model *m, int64_t i, ty_tensor_info *info) {
    if (!m || !info || i < 0 || (uint64_t)i >= gguf_n_tensors(m->file)) return TY_ERR_INVALID_ARG;
    const gguf_tensor *t = gguf_tensor_at(m->file, (uint64_t)i);
    info->name = t->name;
    info->type = ty_type_name(t->type);
    info->n_dims = (int)t->n_dims;
    for (int d = 0; d < 4; d++) info->ne[d] = t->ne[d];
    info->offset = gguf_data_offset(m->file) + t->offset;
    info->nbytes = t->nbytes;
    return TY_OK;
}

/* ---- vocabulary ------------------------------------------------------------------------------- */

ty_token ty_token_bos(const ty_model *m) { return m ? ty_tokenizer_bos(m->tok) : -1; }
ty_token ty_token_eos(const ty_model *m) { return m ? ty_tokenizer_eos(m->tok) : -1; }
int64_t ty_n_vocab(const ty_model *m) { return m ? m->desc.hp.n_vocab : 0; }

ty_token ty_token_lookup(const ty_model *m, const char *text) {
    if (!m || !text) return -1;
    int32_t id = ty_tokenizer_find(m->tok, text, strlen(text));
    return id >= 0 && ty_tokenizer_type(m->tok, id) == TY_TOKEN_CONTROL ? id : -1;
}

int ty_tokenize(const ty_model *m, const char *text, size_t len, int flags, ty_token *ids,
                int64_t cap, int64_t *n_ids) {
    if (!m || (!text && len) || !n_ids || cap < 0 || (!ids && cap)) return TY_ERR_INVALID_ARG;
    int32_t *tmp = NULL;
    int64_t n = 0;
    ty_err err = {0};
    int rc = ty_tokenizer_encode(m->tok, text ? text : "", len, flags & TY_TOKENIZE_ADD_BOS, false,
                                 flags & TY_TOKENIZE_PARSE_SPECIAL, &tmp, &n, &err);
    if (rc) return ty_model_record_error(m, &err);
    *n_ids = n;
    if (n > cap) {
        free(tmp);
        ty_seterr(&err, TY_ERR_BUFFER_TOO_SMALL, "%lld tokens do not fit in a buffer of %lld", (long long)n,
                  (long long)cap);
        return ty_model_record_error(m, &err);
    }
    if (n) memcpy(ids, tmp, sizeof *ids * (size_t)n);
    free(tmp);
    return TY_OK;
}

int ty_token_to_piece(const ty_model *m, ty_token id, int special, char *buf, size_t cap,
                      size_t *n_bytes) {
    if (!m || !n_bytes || (!buf && cap)) return TY_ERR_INVALID_ARG;
    if (id < 0 || id >= m->desc.hp.n_vocab) return TY_ERR_INVALID_ARG;
    *n_bytes = ty_tokenizer_piece(m->tok, id, special, buf, cap);
    return *n_bytes > cap ? TY_ERR_BUFFER_TOO_SMALL : TY_OK;
}

int ty_detokenize(const ty_model *m, const ty_token *ids, int64_t n, char *buf, size_t cap,
                  size_t *n_bytes) {
    if (!m || !n_bytes || n < 0 || (!ids && n) || (!buf && cap)) return TY_ERR_INVALID_ARG;
    for (int64_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= m->desc.hp.n_vocab) {
            ty_err err = {0};
            ty_seterr(&err, TY_ERR_INVALID_ARG, "token id %d is out of range [0, %lld)", ids[i],
                      (long long)m->desc.hp.n_vocab);
            return ty_model_record_error(m, &err);
        }
    *n_bytes = ty_tokenizer_decode(m->tok, ids, n, buf, cap);
    return *n_bytes + 1 > cap ? TY_ERR_BUFFER_TOO_SMALL : TY_OK;
}
