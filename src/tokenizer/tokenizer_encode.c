/* tokenizer_encode.c - text -> token ids, as sentencepiece's BPE model (EncodeAsIds) does, plus
 * llama.cpp's special-token splitting for parse_special.
 *
 * One fragment of text is normalized (' ' -> U+2581, one U+2581 prepended: add_dummy_prefix),
 * split into symbols (one UTF-8 character each, or a whole USER_DEFINED piece, which is frozen),
 * and then adjacent symbols are merged repeatedly: always the pair whose concatenation is a
 * NORMAL / USER_DEFINED / UNUSED vocabulary piece with the highest score, the leftmost on ties
 * (a binary heap of candidate pairs over a linked list of symbols; stale candidates are skipped,
 * O(n log n)). Each final symbol becomes its id; UNUSED pieces are split back into the two parts
 * they were made of (sentencepiece's resegmentation); symbols that are not pieces become their
 * UTF-8 bytes as <0xXX> tokens (byte fallback), or the unknown token. */
#include "tokenizer/tokenizer_impl.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct sym {
    size_t off, len; /* in the normalized buffer; len 0 once merged into its left neighbour */
    int32_t prev, next;
    bool freeze;
} sym;

typedef struct cand {
    float score;
    int32_t left, right;
    size_t size; /* len(left) + len(right) when queued; a mismatch later means stale */
} cand;

typedef struct span {
    size_t off, len;
} span;

typedef struct frag {
    int32_t id; /* special token, or -1 for raw text */
    size_t off, len;
} frag;

typedef struct enc {
    const ty_tokenizer *t;
    ty_err *err;
    char *norm;
    size_t norm_cap;
    sym *syms;
    size_t syms_cap;
    cand *heap;
    size_t heap_n, heap_cap;
    int32_t *out;
    size_t out_n, out_cap;
    /* UNUSED piece id -> length of its left part (sentencepiece's rev_merge) */
    int32_t *rm_key;
    size_t *rm_val;
    size_t rm_n, rm_cap; /* rm_cap: power of two or 0 */
    span *stk;
    size_t stk_n, stk_cap;
    bool
        prev_unk; /* the last symbol of this fragment became the unknown token (no byte fallback) */
} enc;

static int nomem(enc *e) { return ty_seterr(e->err, TY_ERR_NOMEM, "tokenizer: out of memory"); }

static int reserve(enc *e, void **p, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return TY_OK;
    size_t nc = *cap ? *cap : 16;
    while (nc < need) {
        if (nc > SIZE_MAX / 2 / elem) return nomem(e);
        nc *= 2;
    }
    void *np = realloc(*p, nc * elem);
    if (!np) return nomem(e);
    *p = np;
    *cap = nc;
    return TY_OK;
}

static int out_push(enc *e, int32_t id) {
    if (e->out_n == e->out_cap &&
        reserve(e, (void **)&e->out, &e->out_cap, e->out_n + 1, sizeof *e->out))
        return TY_ERR_NOMEM;
    e->out[e->out_n++] = id;
    return TY_OK;
}

/* ---- UTF-8 validation ----------------------------------------------------------------------- */

static int validate_utf8(const char *text, size_t len, ty_err *err) {
    const unsigned char *s = (const unsigned char *)text;
    size_t i = 0;
    while (i < len) {
        if (s[i] < 0x80) {
            i++;
            continue;
        }
        size_t l = tok_utf8_valid_len(s + i, len - i);
        if (l) {
            i += l;
            continue;
        }
        unsigned char c = s[i];
        const char *fmt = "tokenizer: invalid UTF-8 at byte %zu: %s";
        char why[120];
        if (c <= 0xBF) {
            snprintf(why, sizeof why, "unexpected continuation byte 0x%02X", c);
        } else if (c == 0xC0 || c == 0xC1) {
            snprintf(why, sizeof why, "overlong encoding (lead byte 0x%02X)", c);
        } else if (c >= 0xF5) {
            snprintf(why, sizeof why, "byte 0x%02X never occurs in UTF-8", c);
        } else {
            size_t need = c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
            size_t q = 1;
            while (q < need && i + q < len && (s[i + q] & 0xC0) == 0x80) q++;
            if (q < need) {
                if (i + q >= len)
                    snprintf(why, sizeof why,
                             "truncated sequence (lead byte 0x%02X needs %zu bytes, the text ends)",
                             c, need);
                else
                    snprintf(why, sizeof why,
                             "truncated sequence (lead byte 0x%02X needs %zu bytes, byte 0x%02X "
                             "follows)",
                             c, need, s[i + q]);
            } else if ((c == 0xE0 && s[i + 1] < 0xA0) || (c == 0xF0 && s[i + 1] < 0x90)) {
                snprintf(why, sizeof why, "overlong encoding");
            } else if (c == 0xED) {
                snprintf(why, sizeof why, "surrogate code point (U+D800..U+DFFF)");
            } else {
                snprintf(why, sizeof why, "code point above U+10FFFF");
            }
        }
        return ty_seterr(err, TY_ERR_UTF8, fmt, i, why);
    }
    return TY_OK;
}

/* ---- the candidate heap ---------------------------------------------------------------------- */

static bool cand_before(const cand *a, const cand *b) {
    return a->score > b->score || (a->score == b->score && a->left < b->left);
}

static int heap_push(enc *e, cand c) {
    if (e->heap_n == e->heap_cap &&
        reserve(e, (void **)&e->heap, &e->heap_cap, e->heap_n + 1, sizeof *e->heap))
        return TY_ERR_NOMEM;
    size_t i = e->heap_n++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!cand_before(&c, &e->heap[p])) break;
        e->heap[i] = e->heap[p];
        i = p;
    }
    e->heap[i] = c;
    return TY_OK;
}

static cand heap_pop(enc *e) {
    cand top = e->heap[0];
    cand last = e->heap[--e->heap_n];
    size_t n = e->heap_n, i = 0;
    for (;;) {
        size_t l = 2 * i + 1;
        if (l >= n) break;
        size_t best = l;
        if (l + 1 < n && cand_before(&e->heap[l + 1], &e->heap[l])) best = l + 1;
        if (!cand_before(&e->heap[best], &last)) break;
        e->heap[i] = e->heap[best];
        i = best;
    }
    if (n) e->heap[i] = last;
    return top;
}

/* ---- rev_merge map (UNUSED pieces) ---------------------------------------------------------- */

static int rm_set(enc *e, int32_t id, size_t left_len) {
    if ((e->rm_n + 1) * 2 > e->rm_cap) {
        size_t nc = e->rm_cap ? e->rm_cap * 2 : 16;
        int32_t *nk = malloc(nc * sizeof *nk);
        size_t *nv = malloc(nc * sizeof *nv);
        if (!nk || !nv) {
            free(nk);
            free(nv);
            return nomem(e);
        }
        memset(nk, 0xFF, nc * sizeof *nk);
        for (size_t i = 0; i < e->rm_cap; i++) {
            if (e->rm_key[i] < 0) continue;
            size_t j = ((uint32_t)e->rm_key[i] * 2654435761u) & (nc - 1);
            while (nk[j] >= 0) j = (j + 1) & (nc - 1);
            nk[j] = e->rm_key[i];
            nv[j] = e->rm_val[i];
        }
        free(e->rm_key);
        free(e->rm_val);
        e->rm_key = nk;
        e->rm_val = nv;
        e->rm_cap = nc;
    }
    size_t j = ((uint32_t)id * 2654435761u) & (e->rm_cap - 1);
    while (e->rm_key[j] >= 0 && e->rm_key[j] != id) j = (j + 1) & (e->rm_cap - 1);
    if (e->rm_key[j] < 0) {
        e->rm_key[j] = id;
        e->rm_n++;
    }
    e->rm_val[j] = left_len; /* the last candidate wins, as in sentencepiece */
    return TY_OK;
}

static size_t rm_get(const enc *e, int32_t id) {
    if (!e->rm_cap) return 0;
    size_t j = ((uint32_t)id * 2654435761u) & (e->rm_cap - 1);
    while (e->rm_key[j] >= 0) {
        if (e->rm_key[j] == id) return e->rm_val[j];
        j = (j + 1) & (e->rm_cap - 1);
    }
    return 0;
}

static void rm_clear(enc *e) {
    if (e->rm_n) memset(e->rm_key, 0xFF, e->rm_cap * sizeof *e->rm_key);
    e->rm_n = 0;
}

/* ---- BPE over one fragment ------------------------------------------------------------------ */

static bool mergeable(uint8_t type) {
    return type == TY_TOKEN_NORMAL || type == TY_TOKEN_USER_DEFINED || type == TY_TOKEN_UNUSED ||
           type == 0;
}

static int try_add(enc *e, int32_t l, int32_t r) {
    if (l < 0 || r < 0) return TY_OK;
    const sym *a = &e->syms[l], *b = &e->syms[r];
    if (a->freeze || b->freeze || a->len == 0 || b->len == 0) return TY_OK;
    size_t size = a->len + b->len;
    int32_t id = tok_lookup(e->t, e->norm + a->off, size);
    if (id < 0 || !mergeable(e->t->type[id])) return TY_OK;
    cand c = {e->t->score[id], l, r, size};
    if (heap_push(e, c)) return TY_ERR_NOMEM;
    if (e->t->type[id] == TY_TOKEN_UNUSED && rm_set(e, id, a->len)) return TY_ERR_NOMEM;
    return TY_OK;
}

/* Emits the bytes of norm[off, off+len) as byte tokens (or the unknown token). */
static int emit_fallback(enc *e, size_t off, size_t len) {
    const ty_tokenizer *t = e->t;
    if (!t->byte_fallback) {
        /* no byte fallback: one unknown token, and consecutive unknown symbols share it (as
         * sentencepiece merges consecutive unknown pieces) */
        if (t->unk < 0)
            return ty_seterr(e->err, TY_ERR_UNSUPPORTED,
                             "tokenizer: '%.*s' is not in the vocabulary, which has neither byte "
                             "tokens nor an unknown token",
                             (int)(len > 32 ? 32 : len), e->norm + off);
        if (e->prev_unk) return TY_OK;
        e->prev_unk = true;
        return out_push(e, t->unk);
    }
    for (size_t k = 0; k < len; k++) {
        unsigned char b = (unsigned char)e->norm[off + k];
        int32_t id = t->byte_id[b] >= 0 ? t->byte_id[b] : t->unk;
        if (id < 0)
            return ty_seterr(
                e->err, TY_ERR_UNSUPPORTED,
                "tokenizer: byte 0x%02X has no <0x%02X> token and there is no unknown token", b, b);
        int rc = out_push(e, id);
        if (rc) return rc;
    }
    return TY_OK;
}

static int emit_symbol(enc *e, size_t off, size_t len) {
    const ty_tokenizer *t = e->t;
    e->stk_n = 0;
    if (reserve(e, (void **)&e->stk, &e->stk_cap, 1, sizeof *e->stk)) return TY_ERR_NOMEM;
    e->stk[e->stk_n++] = (span){off, len};
    while (e->stk_n) {
        span s = e->stk[--e->stk_n];
        int32_t id = tok_lookup(t, e->norm + s.off, s.len);
        if (id >= 0 && t->type[id] == TY_TOKEN_UNUSED) {
            size_t left = rm_get(e, id);
            if (left > 0 && left < s.len) {
                if (reserve(e, (void **)&e->stk, &e->stk_cap, e->stk_n + 2, sizeof *e->stk))
                    return TY_ERR_NOMEM;
                e->stk[e->stk_n++] = (span){s.off + left, s.len - left}; /* right, done second */
                e->stk[e->stk_n++] = (span){s.off, left};
                continue;
            }
        }
        int rc;
        if (id >= 0 && t->type[id] != TY_TOKEN_UNKNOWN) {
            e->prev_unk = false;
            rc = out_push(e, id);
        } else {
            rc = emit_fallback(e, s.off, s.len);
        }
        if (rc) return rc;
    }
    return TY_OK;
}

static size_t utf8_char_len(unsigned char c) {
    return c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
}

static int encode_fragment(enc *e, const char *text, size_t len) {
    const ty_tokenizer *t = e->t;
    if (len == 0) return TY_OK;
    size_t spaces = 0;
    for (size_t i = 0; i < len; i++) spaces += text[i] == ' ';
    size_t pre = t->add_space_prefix ? 3 : 0;
    if (len > (size_t)INT32_MAX / 4)
        return ty_seterr(e->err, TY_ERR_INVALID_ARG, "tokenizer: text of %zu bytes is too long",
                         len);
    size_t nlen = len + 2 * spaces + pre;
    if (reserve(e, (void **)&e->norm, &e->norm_cap, nlen, 1)) return TY_ERR_NOMEM;
    char *q = e->norm;
    if (pre) {
        memcpy(q, TOK_SPACE, 3);
        q += 3;
    }
    for (size_t i = 0; i < len; i++) {
        if (text[i] == ' ') {
            memcpy(q, TOK_SPACE, 3);
            q += 3;
        } else {
            *q++ = text[i];
        }
    }

    /* symbols: at most one per character */
    size_t n_chars = pre ? 1 : 0;
    for (size_t i = 0; i < len; i++) n_chars += ((unsigned char)text[i] & 0xC0) != 0x80;
    if (reserve(e, (void **)&e->syms, &e->syms_cap, n_chars, sizeof *e->syms)) return TY_ERR_NOMEM;
    int32_t ns = 0;
    for (size_t i = 0; i < nlen;) {
        size_t m = tok_user_defined_match(t, e->norm + i, nlen - i);
        bool freeze = m > 0;
        if (!m) {
            m = utf8_char_len((unsigned char)e->norm[i]);
            if (m > nlen - i) m = nlen - i; /* cannot happen for validated text */
        }
        sym *s = &e->syms[ns];
        s->off = i;
        s->len = m;
        s->prev = ns - 1;
        s->next = ns + 1;
        s->freeze = freeze;
        ns++;
        i += m;
    }
    e->syms[ns - 1].next = -1;

    /* merges */
    e->heap_n = 0;
    rm_clear(e);
    for (int32_t i = 0; i + 1 < ns; i++)
        if (try_add(e, i, i + 1)) return TY_ERR_NOMEM;
    while (e->heap_n) {
        cand c = heap_pop(e);
        sym *a = &e->syms[c.left], *b = &e->syms[c.right];
        if (a->len == 0 || b->len == 0 || a->len + b->len != c.size) continue; /* stale */
        a->len += b->len;
        b->len = 0;
        a->next = b->next;
        if (b->next >= 0) e->syms[b->next].prev = c.left;
        if (try_add(e, a->prev, c.left)) return TY_ERR_NOMEM;
        if (try_add(e, c.left, e->syms[c.left].next)) return TY_ERR_NOMEM;
    }

    /* output */
    e->prev_unk = false;
    for (int32_t i = 0; i >= 0; i = e->syms[i].next) {
        int rc = emit_symbol(e, e->syms[i].off, e->syms[i].len);
        if (rc) return rc;
    }
    return TY_OK;
}

/* ---- special-token splitting (llama.cpp's tokenizer_st_partition) --------------------------- */

/* llama.cpp takes the special tokens one after the other, longest text first, and splits every
 * remaining raw-text fragment at the token's occurrences, leftmost first, never overlapping. The
 * same result without rescanning the text once per special token: find every occurrence of every
 * special text with one trie walk per position, sort them by (rank of the token, position), and
 * accept an occurrence when none of its bytes belongs to an occurrence accepted before (an
 * occurrence lies inside one raw fragment exactly when none of its bytes is taken; among the
 * occurrences of one token the leftmost is taken first, later overlapping ones are refused). */

typedef struct occ {
    int32_t rank, id;
    size_t pos, len;
} occ;

static int occ_cmp(const void *a, const void *b) {
    const occ *x = a, *y = b;
    if (x->rank != y->rank) return x->rank < y->rank ? -1 : 1;
    return (x->pos > y->pos) - (x->pos < y->pos);
}

static int occ_pos_cmp(const void *a, const void *b) {
    const occ *x = a, *y = b;
    return (x->pos > y->pos) - (x->pos < y->pos);
}

static int partition(enc *e, const char *text, size_t len, frag **out, size_t *out_n) {
    const tok_trie_node *nd = e->t->special_trie.nodes;
    occ *oc = NULL;
    size_t n_oc = 0, cap_oc = 0;
    unsigned char *taken = NULL;
    frag *fr = NULL;
    size_t nf = 0, cap_f = 0;
    int rc = TY_OK;
    *out = NULL;
    *out_n = 0;
    for (size_t i = 0; nd && i < len; i++) {
        int32_t node = 0;
        for (size_t k = i; k < len; k++) {
            unsigned char c = (unsigned char)text[k];
            int32_t ch = nd[node].child;
            while (ch >= 0 && nd[ch].byte != c) ch = nd[ch].sibling;
            if (ch < 0) break;
            node = ch;
            if (nd[node].id >= 0) {
                if ((rc = reserve(e, (void **)&oc, &cap_oc, n_oc + 1, sizeof *oc))) goto done;
                oc[n_oc++] = (occ){nd[node].rank, nd[node].id, i, k + 1 - i};
            }
        }
    }
    size_t n_acc = 0;
    if (n_oc) {
        qsort(oc, n_oc, sizeof *oc, occ_cmp);
        taken = calloc(len, 1);
        if (!taken) {
            rc = nomem(e);
            goto done;
        }
        for (size_t k = 0; k < n_oc; k++) {
            bool free_range = true;
            for (size_t q = 0; q < oc[k].len && free_range; q++) free_range = !taken[oc[k].pos + q];
            if (!free_range) continue;
            memset(taken + oc[k].pos, 1, oc[k].len);
            oc[n_acc++] = oc[k]; /* n_acc <= k: compacting in place is safe */
        }
        qsort(oc, n_acc, sizeof *oc, occ_pos_cmp);
    }
    size_t at = 0;
    for (size_t k = 0; k <= n_acc; k++) {
        size_t end = k < n_acc ? oc[k].pos : len;
        if ((rc = reserve(e, (void **)&fr, &cap_f, nf + 2, sizeof *fr))) goto done;
        if (end > at) fr[nf++] = (frag){-1, at, end - at};
        if (k < n_acc) {
            fr[nf++] = (frag){oc[k].id, oc[k].pos, oc[k].len};
            at = oc[k].pos + oc[k].len;
        }
    }
    *out = fr;
    *out_n = nf;
    fr = NULL;
done:
    free(oc);
    free(taken);
    free(fr);
    return rc;
}

/* ---- the entry point ------------------------------------------------------------------------ */

int ty_tokenizer_encode(const ty_tokenizer *t, const char *text, size_t len, bool add_bos,
                        bool add_eos, bool parse_special, int32_t **ids, int64_t *n, ty_err *err) {
    if (ids) *ids = NULL;
    if (n) *n = 0;
    if (!t || !ids || !n || (!text && len))
        return ty_seterr(err, TY_ERR_INVALID_ARG, "tokenizer: NULL argument");
    int rc = validate_utf8(text, len, err);
    if (rc) return rc;

    enc e = {0};
    e.t = t;
    e.err = err;
    if (reserve(&e, (void **)&e.out, &e.out_cap, len / 2 + 8, sizeof *e.out)) return TY_ERR_NOMEM;
    if (add_bos && t->bos >= 0) rc = out_push(&e, t->bos);
    if (!rc && len > 0) {
        if (parse_special && t->n_specials) {
            frag *fr = NULL;
            size_t nf = 0;
            rc = partition(&e, text, len, &fr, &nf);
            for (size_t k = 0; !rc && k < nf; k++)
                rc = fr[k].id >= 0 ? out_push(&e, fr[k].id)
                                   : encode_fragment(&e, text + fr[k].off, fr[k].len);
            free(fr);
        } else {
            rc = encode_fragment(&e, text, len);
        }
    }
    if (!rc && add_eos && t->eos >= 0) rc = out_push(&e, t->eos);
    free(e.norm);
    free(e.syms);
    free(e.heap);
    free(e.rm_key);
    free(e.rm_val);
    free(e.stk);
    if (rc) {
        free(e.out);
        return rc;
    }
    *ids = e.out;
    *n = (int64_t)e.out_n;
    return TY_OK;
}
