/* vocab_compare.c - do two vocabularies give every id the same meaning? Speculative decoding
 * feeds one model's token ids to another, so the pieces, their types and scores, and the BOS/EOS
 * ids must all agree; the first difference is named. */
#include <stdio.h>
#include <string.h>

#include "tokenizer/tokenizer_impl.h"

/* Writes a piece for a message: at most 24 bytes, quoted. */
static void quote(char *dst, size_t cap, const ty_tokenizer *t, int32_t id) {
    size_t n = t->len[id] < 24 ? t->len[id] : 24;
    snprintf(dst, cap, "'%.*s%s'", (int)n, t->text + t->off[id], t->len[id] > 24 ? "..." : "");
}

/* a: the reference (target), b: the other (draft); messages give b's value first. */
bool ty_tokenizer_same_vocab(const ty_tokenizer *a, const ty_tokenizer *b, char *why, size_t cap) {
    if (a->n != b->n) {
        snprintf(why, cap, "%d vs %d tokens", b->n, a->n);
        return false;
    }
    if (a->bos != b->bos || a->eos != b->eos) {
        snprintf(why, cap, "BOS/EOS ids %d/%d vs %d/%d", b->bos, b->eos, a->bos, a->eos);
        return false;
    }
    for (int32_t i = 0; i < a->n; i++) {
        if (a->len[i] != b->len[i] || memcmp(a->text + a->off[i], b->text + b->off[i], a->len[i])) {
            char qa[40], qb[40];
            quote(qa, sizeof qa, a, i);
            quote(qb, sizeof qb, b, i);
            snprintf(why, cap, "token %d is %s vs %s", i, qb, qa);
            return false;
        }
        if (a->type[i] != b->type[i]) {
            snprintf(why, cap, "token %d has type %u vs %u", i, b->type[i], a->type[i]);
            return false;
        }
        /* scores decide merges: another score order would tokenize differently */
        if (a->score[i] != b->score[i]) { /* never NaN: the loader maps NaN to -inf */
            snprintf(why, cap, "token %d has score %g vs %g", i, (double)b->score[i], (double)a->score[i]);
            return false;
        }
    }
    return true;
}
