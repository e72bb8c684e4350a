/* context_api.c - contexts: a KV cache and activations on the model's device, evaluation of
 * token batches, and the generation loop. */
#include <stdlib.h>
#include <string.h>

#include "api/internal.h"
#include "base/clock.h"
#include "quant/quant.h"

ty_context_params ty_context_default_params(void) {
    ty_context_params p = {.n_ctx = 0, .n_batch = 0, .kv_type = TY_KV_DEFAULT, .draft_model = NULL,
                           .draft_max = 0, .draft_min = 0, .lookup = 0};
    return p;
}

/* Checks the speculative-decoding options and creates the draft model's context. */
static int new_draft_context(ty_context *c, const ty_context_params *p, ty_err *err) {
    int k_max = p->draft_max ? p->draft_max : TY_DRAFT_MAX_DEFAULT, k_min = p->draft_min ? p->draft_min : 1;
    if (k_max < 1 || k_max > TY_DRAFT_MAX_LIMIT || k_min < 1 || k_min > k_max)
        return ty_seterr(err, TY_ERR_INVALID_ARG, "invalid draft length: min %d, max %d (need 1 <= min <= max <= %d)",
                         p->draft_min, p->draft_max, TY_DRAFT_MAX_LIMIT);
    c->draft_min = k_min;
    c->draft_max = k_max;
    c->lookup = p->lookup != 0;
    if (!p->draft_model) return TY_OK;
    char why[200];
    if (!ty_tokenizer_same_vocab(c->model->tok, p->draft_model->tok, why, sizeof why))
        return ty_seterr(err, TY_ERR_INVALID_ARG, "draft vocabulary differs from the target's: %s", why);
    ty_context_params dp = ty_context_default_params();
    dp.n_ctx = c->fw.n_ctx;
    dp.n_batch = c->fw.n_batch;
    dp.kv_type = p->kv_type;
    char *msg = NULL;
    int rc = ty_context_new(p->draft_model, &dp, &c->draft, &msg);
    if (rc) ty_seterr(err, rc, "draft model: %s", msg ? msg : ty_status_string(rc));
    ty_free(msg);
    return rc;
}

int ty_context_new(ty_model *m, const ty_context_params *params, ty_context **out, char **errmsg) {
    ty_err err = {0};
    if (errmsg) *errmsg = NULL;
    if (!m || !out) {
        ty_seterr(&err, TY_ERR_INVALID_ARG, "ty_context_new: model and out are required");
        ty_export_error(&err, errmsg);
        return err.code;
    }
    *out = NULL;
    ty_context_params p = params ? *params : ty_context_default_params();
    const ty_hparams *hp = &m->desc.hp;
    int64_t n_ctx = p.n_ctx > 0 ? p.n_ctx : (hp->n_ctx_train < 4096 ? hp->n_ctx_train : 4096);
    int64_t n_batch = p.n_batch > 0 ? p.n_batch : 512;
    if (p.n_ctx < 0 || p.n_batch < 0 || n_ctx > (1 << 24) || p.kv_type < 0 || p.kv_type > TY_KV_Q8_0) {
        ty_seterr(&err, TY_ERR_INVALID_ARG, "invalid context size %lld or batch size %lld",
                  (long long)p.n_ctx, (long long)p.n_batch);
        ty_export_error(&err, errmsg);
        return err.code;
    }
    if (n_batch > n_ctx) n_batch = n_ctx;
    ty_context *c = calloc(1, sizeof *c);
    if (!c) {
        ty_seterr(&err, TY_ERR_NOMEM, "out of memory");
        ty_export_error(&err, errmsg);
        return err.code;
    }
    c->model = m;
    int rc = ty_backend_new(m->device, &m->be_cfg, &c->be, &err);
    static const uint32_t KV_TYPES[] = {TY_TYPE_F16, TY_TYPE_F32, TY_TYPE_F16, TY_TYPE_Q8_0};
    uint32_t kv = p.kv_type == TY_KV_DEFAULT && m->be_cfg.exact_math ? TY_TYPE_F32 : KV_TYPES[p.kv_type];
    if (!rc) rc = ty_forward_init(&c->fw, &m->desc, c->be, n_ctx, n_batch, kv, &err);
    if (!rc && !(c->tokens = malloc(sizeof *c->tokens * (size_t)n_ctx)))
        rc = ty_seterr(&err, TY_ERR_NOMEM, "out of memory for a context of %lld tokens", (long long)n_ctx);
    if (!rc) rc = new_draft_context(c, &p, &err);
    if (rc) {
        ty_export_error(&err, errmsg);
        ty_context_free(c);
        return rc;
    }
    *out = c;
    return TY_OK;
}

void ty_context_free(ty_context *c) {
    if (!c) return;
    ty_context_free(c->draft);
    free(c->tokens);
    ty_forward_free(&c->fw);
    if (c->be) c->be->ops->destroy(c->be);
    free(c->logits);
    free(c);
}

const char *ty_context_errmsg(const ty_context *c) { return c ? c->err.msg : "no context"; }
int64_t ty_context_n_ctx(const ty_context *c) { return c ? c->fw.n_ctx : 0; }
int64_t ty_context_n_past(const ty_context *c) { return c ? c->n_past : 0; }

int ty_context_truncate(ty_context *c, int64_t n_past) {
    if (!c) return TY_ERR_INVALID_ARG;
    if (n_past < 0 || n_past > c->n_past)
        return ty_seterr(&c->err, TY_ERR_INVALID_ARG, "cannot truncate to %lld: the context holds %lld",
                         (long long)n_past, (long long)c->n_past);
    c->n_past = n_past; /* cache rows past n_past are simply overwritten later */
    c->n_logits = 0;
    return TY_OK;
}

static int reserve_logits(ty_context *c, int64_t rows) {
    if (rows <= c->logits_cap) return TY_OK;
    int64_t V = c->model->desc.hp.n_vocab;
    float *l = realloc(c->logits, sizeof(float) * (size_t)rows * (size_t)V);
    if (!l)
        return ty_seterr(&c->err, TY_ERR_NOMEM, "out of memory for %lld rows of logits", (long long)rows);
    c->logits = l;
    c->logits_cap = rows;
    return TY_OK;
}

int ty_context_eval(ty_context *c, const ty_token *tokens, int64_t n, int logits_mode) {
    if (!c) return TY_ERR_INVALID_ARG;
    if (n <= 0 || !tokens)
        return ty_seterr(&c->err, TY_ERR_INVALID_ARG, "nothing to evaluate (%lld tokens)", (long long)n);
    const int64_t V = c->model->desc.hp.n_vocab;
    for (int64_t i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= V)
            return ty_seterr(&c->err, TY_ERR_INVALID_ARG, "token %lld has id %d, outside [0, %lld)",
                             (long long)i, tokens[i], (long long)V);
    if (n > c->fw.n_ctx - c->n_past)
        return ty_seterr(&c->err, TY_ERR_CONTEXT_FULL,
                         "%lld tokens do not fit in the context: it holds %lld of %lld "
                         "(use a larger -c or a shorter prompt)",
                         (long long)n, (long long)c->n_past, (long long)c->fw.n_ctx);
    int all = logits_mode == TY_LOGITS_ALL;
    int rc = reserve_logits(c, all ? n : 1);
    if (rc) return rc;
    for (int64_t done = 0; done < n;) {
        int64_t m = n - done < c->fw.n_batch ? n - done : c->fw.n_batch;
        float *dst = all ? c->logits + done * V : c->logits;
        ty_forward_batch(&c->fw, tokens + done, m, c->n_past, all, dst);
        memcpy(c->tokens + c->n_past, tokens + done, sizeof *tokens * (size_t)m);
        c->n_past += m;
        done += m;
    }
    c->n_logits = all ? n : 1;
    c->logits_all = all;
    c->n_last_eval = n;
    /* a device backend's ops cannot return errors; a failed one leaves NaN logits behind */
    if (c->be->ops->status) {
        int st = c->be->ops->status(c->be, &c->err);
        if (st) {
            c->n_logits = 0;
            return st;
        }
    }
    return TY_OK;
}

int ty_context_fill_synthetic(ty_context *c, int64_t n, uint64_t seed) {
    if (!c || n < 0) return TY_ERR_INVALID_ARG;
    if (n > c->fw.n_ctx - c->n_past)
        return ty_seterr(&c->err, TY_ERR_CONTEXT_FULL, "%lld synthetic positions do not fit in the context (%lld of %lld used)",
                         (long long)n, (long long)c->n_past, (long long)c->fw.n_ctx);
    ty_forward_fill_synthetic(&c->fw, c->n_past, n, seed);
    for (int64_t i = 0; i < n; i++) c->tokens[c->n_past + i] = -1; /* no real token there */
    c->n_past += n;
    c->n_logits = 0;
    return c->be->ops->status ? c->be->ops->status(c->be, &c->err) : TY_OK;
}

int ty_context_logits(ty_context *c, int64_t i, const float **logits) {
    if (!c || !logits) return TY_ERR_INVALID_ARG;
    if (c->n_logits == 0)
        return ty_seterr(&c->err, TY_ERR_INVALID_ARG, "no logits: evaluate tokens first");
    if (i == -1 || (!c->logits_all && i == c->n_last_eval - 1)) i = c->n_logits - 1;
    else if (!c->logits_all || i < 0 || i >= c->n_logits)
        return ty_seterr(&c->err, TY_ERR_INVALID_ARG,
                         "no logits for token %lld of the last batch (evaluate with TY_LOGITS_ALL)",
                         (long long)i);
    *logits = c->logits + i * c->model->desc.hp.n_vocab;
    return TY_OK;
}

void ty_context_set_draft_oracle(ty_context *c, ty_draft_oracle fn, void *user) {
    c->oracle = fn;
    c->oracle_user = user;
}

int ty_generate(ty_context *c, ty_sampler *s, const ty_token *prompt, int64_t n_prompt,
                int64_t n_predict, ty_token_callback cb, void *user, ty_generate_stats *stats) {
    if (!c || !s || (!prompt && n_prompt)) return TY_ERR_INVALID_ARG;
    if (c->draft || c->lookup) return ty_generate_speculative(c, s, prompt, n_prompt, n_predict, cb, user, stats);
    ty_generate_stats st = {.n_prompt = n_prompt};
    const ty_model *m = c->model;
    const ty_token eos = ty_tokenizer_eos(m->tok);
    double t0 = ty_now();
    int rc = TY_OK;
    if (n_prompt > 0) {
        rc = ty_context_eval(c, prompt, n_prompt, TY_LOGITS_LAST);
        for (int64_t i = 0; i < n_prompt && !rc; i++) ty_sampler_accept(s, prompt[i]);
    } else if (c->n_logits == 0) {
        rc = ty_seterr(&c->err, TY_ERR_INVALID_ARG, "empty prompt and no logits to continue from");
    }
    double t1 = ty_now();
    st.prompt_seconds = t1 - t0;
    /* Every sampled token, the last and EOS included, is evaluated into the cache, so that the
     * context afterwards holds prompt + answer and a conversation can simply continue. */
    char piece[256];
    while (!rc && (n_predict < 0 || st.n_generated < n_predict)) {
        if (c->n_past >= c->fw.n_ctx) break; /* no room to hold another token: the answer ends */
        const float *logits = NULL;
        ty_token tok = 0;
        if ((rc = ty_context_logits(c, -1, &logits))) break;
        if ((rc = ty_sampler_sample(s, logits, m->desc.hp.n_vocab, &tok))) {
            ty_seterr(&c->err, rc, "sampling failed: %s", ty_status_string(rc));
            break;
        }
        ty_sampler_accept(s, tok);
        st.n_generated++;
        if (tok != eos) {
            size_t len = ty_tokenizer_piece(m->tok, tok, false, piece, sizeof piece);
            if (cb && cb(user, tok, piece, len < sizeof piece ? len : sizeof piece)) {
                rc = TY_ERR_CANCELLED;
                ty_seterr(&c->err, rc, "stopped by the callback");
            }
        }
        int rc2 = ty_context_eval(c, &tok, 1, TY_LOGITS_LAST);
        if (!rc) rc = rc2;
        if (tok == eos) {
            st.stopped_by_eos = 1;
            break;
        }
    }
    st.generate_seconds = ty_now() - t1;
    if (stats) *stats = st;
    return rc == TY_ERR_CANCELLED ? TY_OK : rc;
}
