/* chat.c - Mistral's instruct format, built token by token as mistral-common does:
 *
 *   BOS [INST] user_1 [/INST] answer_1 EOS [INST] user_2 [/INST] ...
 *
 * Control tokens are emitted as ids, never parsed from text; every text fragment is tokenized on
 * its own (so each gets sentencepiece's dummy-prefix space). A system message is joined to the
 * last user message as "system\n\nuser", where Mistral's v3 template places it. Vocabularies
 * without an [INST] control token (Mistral v0.1's) get the same layout with [INST]/[/INST] as
 * text, as that model was trained. */
#include <stdlib.h>
#include <string.h>

#include "api/internal.h"

typedef struct tok_buf {
    ty_token *ids;
    int64_t n, cap;
} tok_buf;

static int push(tok_buf *b, const int32_t *ids, int64_t n) {
    if (b->n + n > b->cap) {
        int64_t cap = (b->n + n) * 2 + 16;
        ty_token *p = realloc(b->ids, sizeof *p * (size_t)cap);
        if (!p) return TY_ERR_NOMEM;
        b->ids = p;
        b->cap = cap;
    }
    memcpy(b->ids + b->n, ids, sizeof *ids * (size_t)n);
    b->n += n;
    return TY_OK;
}

static int push_text(tok_buf *b, const ty_tokenizer *t, const char *text, size_t len, ty_err *err) {
    int32_t *ids = NULL;
    int64_t n = 0;
    int rc = ty_tokenizer_encode(t, text, len, false, false, false, &ids, &n, err);
    if (!rc) rc = push(b, ids, n);
    free(ids);
    return rc;
}

static int is_role(const ty_chat_message *m, const char *role) {
    return m->role && strcmp(m->role, role) == 0;
}

int ty_chat_tokenize(const ty_model *model, const ty_chat_message *msgs, int64_t n_msgs,
                     ty_token *ids, int64_t cap, int64_t *n_ids) {
    if (!model || (!msgs && n_msgs) || n_msgs < 0 || !n_ids || cap < 0 || (!ids && cap))
        return TY_ERR_INVALID_ARG;
    const ty_model *m = model;
    ty_err err = {0}; /* recorded in the model on failure (ty_model_record_error) */
    const ty_tokenizer *t = m->tok;
    int32_t inst = ty_tokenizer_find(t, "[INST]", 6), inst_end = ty_tokenizer_find(t, "[/INST]", 7);
    int as_ids = inst >= 0 && inst_end >= 0 && ty_tokenizer_type(t, inst) == TY_TOKEN_CONTROL &&
                 ty_tokenizer_type(t, inst_end) == TY_TOKEN_CONTROL;
    const char *system = NULL;
    int64_t last_user = -1;
    for (int64_t i = 0; i < n_msgs; i++) {
        if (!msgs[i].content || !msgs[i].role) {
            ty_seterr(&err, TY_ERR_INVALID_ARG, "chat message %lld has no role or content", (long long)i);
            return ty_model_record_error(m, &err);
        }
        if (is_role(&msgs[i], "system")) system = msgs[i].content;
        else if (is_role(&msgs[i], "user")) last_user = i;
        else if (!is_role(&msgs[i], "assistant")) {
            ty_seterr(&err, TY_ERR_INVALID_ARG, "chat message %lld has role '%s' (expected system, user or assistant)",
                      (long long)i, msgs[i].role);
            return ty_model_record_error(m, &err);
        }
    }
    tok_buf b = {0};
    int32_t bos = ty_tokenizer_bos(t), eos = ty_tokenizer_eos(t);
    int rc = push(&b, &bos, 1);
    for (int64_t i = 0; i < n_msgs && !rc; i++) {
        const char *text = msgs[i].content;
        if (is_role(&msgs[i], "user")) {
            char *joined = NULL;
            if (system && i == last_user) {
                size_t ls = strlen(system), lu = strlen(text);
                joined = malloc(ls + lu + 3);
                if (!joined) { rc = TY_ERR_NOMEM; break; }
                memcpy(joined, system, ls);
                memcpy(joined + ls, "\n\n", 2);
                memcpy(joined + ls + 2, text, lu + 1);
                text = joined;
            }
            if (as_ids) {
                rc = push(&b, &inst, 1);
                if (!rc) rc = push_text(&b, t, text, strlen(text), &err);
                if (!rc) rc = push(&b, &inst_end, 1);
            } else {
                size_t lt = strlen(text);
                char *wrapped = malloc(lt + 17);
                if (!wrapped) rc = TY_ERR_NOMEM;
                else {
                    memcpy(wrapped, "[INST] ", 7);
                    memcpy(wrapped + 7, text, lt);
                    memcpy(wrapped + 7 + lt, " [/INST]", 9);
                    rc = push_text(&b, t, wrapped, lt + 15, &err);
                    free(wrapped);
                }
            }
            free(joined);
        } else if (is_role(&msgs[i], "assistant")) {
            rc = push_text(&b, t, text, strlen(text), &err);
            if (!rc) rc = push(&b, &eos, 1);
        }
    }
    if (rc == TY_ERR_NOMEM) ty_seterr(&err, rc, "out of memory building the chat prompt");
    if (!rc) {
        *n_ids = b.n;
        if (b.n > cap)
            rc = ty_seterr(&err, TY_ERR_BUFFER_TOO_SMALL, "%lld tokens do not fit in a buffer of %lld",
                           (long long)b.n, (long long)cap);
        else
            memcpy(ids, b.ids, sizeof *ids * (size_t)b.n);
    }
    free(b.ids);
    if (rc && err.code == 0) ty_seterr(&err, rc, "building the chat prompt failed: %s", ty_status_string(rc));
    return rc ? ty_model_record_error(m, &err) : TY_OK;
}
