/* tokenizer.c - vocabulary loading (GGUF metadata or arrays), the token-text hash map, decoding.
 * Encoding (BPE merges, byte fallback, special-token splitting) is in tokenizer_encode.c. */
#include "tokenizer/tokenizer_impl.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- hash map text -> id (open addressing, linear probing) ---------------------------------- */

static uint64_t hash_bytes(const char *p, size_t n) {
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a, then a final mix */
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)p[i];
        h *= 0x100000001b3ull;
    }
    h ^= h >> 32;
    h *= 0xd6e8feb86659fd93ull;
    h ^= h >> 32;
    return h;
}

int32_t tok_lookup(const ty_tokenizer *t, const char *p, size_t n) {
    uint64_t i = hash_bytes(p, n) & t->map_mask;
    for (;;) {
        int32_t id = t->map[i];
        if (id < 0) return -1;
        if (t->len[id] == n && memcmp(t->text + t->off[id], p, n) == 0) return id;
        i = (i + 1) & t->map_mask;
    }
}

static void map_insert(ty_tokenizer *t, int32_t id) {
    const char *p = t->text + t->off[id];
    size_t n = t->len[id];
    uint64_t i = hash_bytes(p, n) & t->map_mask;
    for (;;) {
        int32_t cur = t->map[i];
        if (cur < 0) {
            t->map[i] = id;
            return;
        }
        if (t->len[cur] == n && memcmp(t->text + t->off[cur], p, n) == 0) return; /* keep first */
        i = (i + 1) & t->map_mask;
    }
}

/* ---- byte tries (user-defined pieces; special-token texts) ---------------------------------- */

static int trie_add(tok_trie *tr, const char *p, size_t n, int32_t id, int32_t rank) {
    if (!tr->nodes) {
        tr->cap = 64;
        tr->nodes = malloc(tr->cap * sizeof *tr->nodes);
        if (!tr->nodes) return TY_ERR_NOMEM;
        tr->n = 1;
        tr->nodes[0] = (tok_trie_node){-1, -1, -1, -1, 0};
    }
    int32_t node = 0;
    for (size_t k = 0; k < n; k++) {
        unsigned char c = (unsigned char)p[k];
        int32_t ch = tr->nodes[node].child;
        while (ch >= 0 && tr->nodes[ch].byte != c) ch = tr->nodes[ch].sibling;
        if (ch < 0) {
            if (tr->n == tr->cap) {
                if (tr->cap > (size_t)INT32_MAX / 2) return TY_ERR_NOMEM;
                size_t nc = tr->cap * 2;
                tok_trie_node *nt = realloc(tr->nodes, nc * sizeof *nt);
                if (!nt) return TY_ERR_NOMEM;
                tr->nodes = nt;
                tr->cap = nc;
            }
            ch = (int32_t)tr->n++;
            tr->nodes[ch] = (tok_trie_node){-1, tr->nodes[node].child, -1, -1, c};
            tr->nodes[node].child = ch;
        }
        node = ch;
    }
    if (tr->nodes[node].id < 0) {
        tr->nodes[node].id = id;
        tr->nodes[node].rank = rank;
    }
    return TY_OK;
}

size_t tok_user_defined_match(const ty_tokenizer *t, const char *p, size_t n) {
    const tok_trie_node *nd = t->user_trie.nodes;
    if (!nd) return 0;
    size_t best = 0;
    int32_t node = 0;
    for (size_t k = 0; k < n; k++) {
        unsigned char c = (unsigned char)p[k];
        int32_t ch = nd[node].child;
        while (ch >= 0 && nd[ch].byte != c) ch = nd[ch].sibling;
        if (ch < 0) break;
        node = ch;
        if (nd[node].id >= 0) best = k + 1;
    }
    return best;
}

/* ---- construction --------------------------------------------------------------------------- */

static int parse_byte_token(const char *p, size_t n) {
    /* "<0xXX>" with upper- or lower-case hex digits */
    if (n != 6 || p[0] != '<' || p[1] != '0' || p[2] != 'x' || p[5] != '>') return -1;
    int v = 0;
    for (int i = 3; i < 5; i++) {
        char c = p[i];
        int h = (c >= '0' && c <= '9')   ? c - '0'
                : (c >= 'A' && c <= 'F') ? c - 'A' + 10
                : (c >= 'a' && c <= 'f') ? c - 'a' + 10
                                         : -1;
        if (h < 0) return -1;
        v = v * 16 + h;
    }
    return v;
}

/* Merge sort by text length (descending), then id (a stable order, no global comparator state). */
static void sort_specials(const ty_tokenizer *t, int32_t *a, int32_t *tmp, size_t n) {
    if (n < 2) return;
    size_t h = n / 2;
    sort_specials(t, a, tmp, h);
    sort_specials(t, a + h, tmp, n - h);
    size_t i = 0, j = h, k = 0;
    while (i < h && j < n) {
        int32_t x = a[i], y = a[j];
        bool take_x = t->len[x] > t->len[y] || (t->len[x] == t->len[y] && x <= y);
        tmp[k++] = take_x ? a[i++] : a[j++];
    }
    while (i < h) tmp[k++] = a[i++];
    while (j < n) tmp[k++] = a[j++];
    memcpy(a, tmp, n * sizeof *a);
}

int ty_tokenizer_new(const ty_tokenizer_vocab *v, ty_tokenizer **out, ty_err *err) {
    if (!v || !out) return ty_seterr(err, TY_ERR_INVALID_ARG, "tokenizer: NULL argument");
    *out = NULL;
    int32_t n = v->n_tokens;
    if (n <= 0 || !v->texts)
        return ty_seterr(err, TY_ERR_FORMAT, "tokenizer: the vocabulary is empty");
    struct {
        const char *name;
        int32_t id;
    } ids[4] = {{"bos", v->bos}, {"eos", v->eos}, {"unknown", v->unk}, {"padding", v->pad}};
    for (int i = 0; i < 4; i++)
        if (ids[i].id < -1 || ids[i].id >= n)
            return ty_seterr(err, TY_ERR_FORMAT,
                             "tokenizer: %s token id %ld is out of range (vocabulary of %ld)",
                             ids[i].name, (long)ids[i].id, (long)n);
    uint64_t total = 0;
    for (int32_t i = 0; i < n; i++) {
        if (v->texts[i].len > 0 && !v->texts[i].ptr)
            return ty_seterr(err, TY_ERR_FORMAT, "tokenizer: token %ld has no text", (long)i);
        if (v->texts[i].len > (uint64_t)1 << 30)
            return ty_seterr(err, TY_ERR_FORMAT,
                             "tokenizer: token %ld is implausibly long (%llu bytes)", (long)i,
                             (unsigned long long)v->texts[i].len);
        total += v->texts[i].len + 1;
        if (v->types) {
            int32_t ty = v->types[i];
            if (ty < 0 || ty > TY_TOKEN_BYTE)
                return ty_seterr(err, TY_ERR_FORMAT,
                                 "tokenizer: token %ld has unknown token type %ld", (long)i,
                                 (long)ty);
        }
    }
    if (total > (uint64_t)SIZE_MAX / 2)
        return ty_seterr(err, TY_ERR_NOMEM, "tokenizer: vocabulary text too large");

    ty_tokenizer *t = calloc(1, sizeof *t);
    if (!t) return ty_seterr(err, TY_ERR_NOMEM, "tokenizer: out of memory");
    t->n = n;
    t->bos = v->bos;
    t->eos = v->eos;
    t->unk = v->unk;
    t->pad = v->pad;
    t->add_bos = v->add_bos;
    t->add_eos = v->add_eos;
    t->add_space_prefix = v->add_space_prefix;
    size_t cap = 16;
    while (cap < (size_t)n * 2) cap *= 2;
    t->map_mask = cap - 1;
    t->text = malloc((size_t)total);
    t->off = malloc((size_t)n * sizeof *t->off);
    t->len = malloc((size_t)n * sizeof *t->len);
    t->score = malloc((size_t)n * sizeof *t->score);
    t->type = malloc((size_t)n * sizeof *t->type);
    t->map = malloc(cap * sizeof *t->map);
    if (!t->text || !t->off || !t->len || !t->score || !t->type || !t->map) goto nomem;
    memset(t->map, 0xFF, cap * sizeof *t->map); /* -1 = empty */

    size_t pos = 0;
    bool any_user_defined = false;
    size_t n_special = 0;
    for (int32_t i = 0; i < n; i++) {
        size_t l = (size_t)v->texts[i].len;
        if (l) memcpy(t->text + pos, v->texts[i].ptr, l);
        t->text[pos + l] = 0;
        t->off[i] = pos;
        t->len[i] = l;
        pos += l + 1;
        float s = v->scores ? v->scores[i] : 0.0f;
        t->score[i] = isnan(s) ? -INFINITY : s;
        int32_t ty = v->types ? v->types[i] : TY_TOKEN_NORMAL;
        t->type[i] = (uint8_t)ty;
        if (ty == TY_TOKEN_USER_DEFINED && l > 0) any_user_defined = true;
        if ((ty == TY_TOKEN_CONTROL || ty == TY_TOKEN_USER_DEFINED || ty == TY_TOKEN_UNKNOWN) &&
            l > 0)
            n_special++;
    }
    for (int32_t i = 0; i < n; i++) map_insert(t, i);

    /* byte tokens: <0xXX>; the one of type BYTE if several texts could qualify */
    for (int b = 0; b < 256; b++) t->byte_id[b] = -1;
    for (int32_t i = 0; i < n; i++) {
        int b = parse_byte_token(t->text + t->off[i], t->len[i]);
        if (b < 0) continue;
        if (t->byte_id[b] < 0 ||
            (t->type[i] == TY_TOKEN_BYTE && t->type[t->byte_id[b]] != TY_TOKEN_BYTE))
            t->byte_id[b] = i;
    }
    /* sentencepiece falls back to bytes when its model has byte pieces (trainer byte_fallback,
     * which requires them); GGUF has no flag, so: when there are BYTE tokens, or no types at all
     * and "<0xXX>" texts */
    t->byte_fallback = false;
    for (int32_t i = 0; i < n && !t->byte_fallback; i++)
        t->byte_fallback = t->type[i] == TY_TOKEN_BYTE;
    if (!v->types)
        for (int b = 0; b < 256 && !t->byte_fallback; b++) t->byte_fallback = t->byte_id[b] >= 0;

    /* special tokens for parse_special, longest text first */
    if (n_special) {
        t->specials = malloc(n_special * sizeof *t->specials);
        int32_t *tmp = malloc(n_special * sizeof *tmp);
        if (!t->specials || !tmp) {
            free(tmp);
            goto nomem;
        }
        size_t k = 0;
        for (int32_t i = 0; i < n; i++) {
            uint8_t ty = t->type[i];
            if ((ty == TY_TOKEN_CONTROL || ty == TY_TOKEN_USER_DEFINED || ty == TY_TOKEN_UNKNOWN) &&
                t->len[i] > 0)
                t->specials[k++] = i;
        }
        sort_specials(t, t->specials, tmp, n_special);
        free(tmp);
        t->n_specials = n_special;
    }

    for (size_t k = 0; k < t->n_specials; k++) {
        int32_t id = t->specials[k];
        if (trie_add(&t->special_trie, t->text + t->off[id], t->len[id], id, (int32_t)k))
            goto nomem;
    }
    /* user-defined pieces, matched as whole units before BPE */
    if (any_user_defined)
        for (int32_t i = 0; i < n; i++)
            if (t->type[i] == TY_TOKEN_USER_DEFINED && t->len[i] > 0)
                if (trie_add(&t->user_trie, t->text + t->off[i], t->len[i], i, -1)) goto nomem;
    *out = t;
    return TY_OK;
nomem:
    ty_tokenizer_free(t);
    return ty_seterr(err, TY_ERR_NOMEM, "tokenizer: out of memory");
}

void ty_tokenizer_free(ty_tokenizer *t) {
    if (!t) return;
    free(t->text);
    free(t->off);
    free(t->len);
    free(t->score);
    free(t->type);
    free(t->map);
    free(t->specials);
    free(t->special_trie.nodes);
    free(t->user_trie.nodes);
    free(t);
}

/* ---- loading from GGUF ---------------------------------------------------------------------- */

static bool is_int_type(uint32_t ty) {
    return ty == GGUF_TYPE_UINT8 || ty == GGUF_TYPE_INT8 || ty == GGUF_TYPE_UINT16 ||
           ty == GGUF_TYPE_INT16 || ty == GGUF_TYPE_UINT32 || ty == GGUF_TYPE_INT32 ||
           ty == GGUF_TYPE_UINT64 || ty == GGUF_TYPE_INT64;
}

/* An optional token id key: absent -> *id unchanged; -1 / 0xFFFFFFFF -> -1 (none). */
static int get_opt_id(const gguf_file *f, const char *key, int32_t n, int32_t *id, ty_err *err) {
    const gguf_kv *kv = gguf_find_kv(f, key);
    if (!kv) return TY_OK;
    int64_t v;
    int rc = gguf_get_i64(f, key, &v, err);
    if (rc) return ty_seterr(err, TY_ERR_FORMAT, "tokenizer: %s must be an integer", key);
    if (v == -1 || v == 0xFFFFFFFFll) {
        *id = -1;
        return TY_OK;
    }
    if (v < 0 || v >= n)
        return ty_seterr(err, TY_ERR_FORMAT,
                         "tokenizer: %s = %lld is out of range (vocabulary of %ld)", key,
                         (long long)v, (long)n);
    *id = (int32_t)v;
    return TY_OK;
}

static int get_opt_bool(const gguf_file *f, const char *key, bool *out, ty_err *err) {
    const gguf_kv *kv = gguf_find_kv(f, key);
    if (!kv) return TY_OK;
    if (kv->type == GGUF_TYPE_BOOL) {
        *out = kv->v.u64 != 0;
        return TY_OK;
    }
    if (is_int_type(kv->type)) { /* tolerate 0/1 stored as an integer */
        *out = kv->v.u64 != 0;
        return TY_OK;
    }
    return ty_seterr(err, TY_ERR_FORMAT, "tokenizer: %s must be a bool (has type %s)", key,
                     gguf_type_name(kv->type));
}

int ty_tokenizer_load(const gguf_file *f, ty_tokenizer **out, ty_err *err) {
    if (!f || !out) return ty_seterr(err, TY_ERR_INVALID_ARG, "tokenizer: NULL argument");
    *out = NULL;
    const gguf_kv *model = gguf_find_kv(f, "tokenizer.ggml.model");
    if (!model) return ty_seterr(err, TY_ERR_FORMAT, "tokenizer: tokenizer.ggml.model is missing");
    if (model->type != GGUF_TYPE_STRING)
        return ty_seterr(err, TY_ERR_FORMAT, "tokenizer: tokenizer.ggml.model must be a string");
    if (!(model->v.str.len == 5 && memcmp(model->v.str.ptr, "llama", 5) == 0)) {
        int shown = model->v.str.len > 64 ? 64 : (int)model->v.str.len;
        return ty_seterr(err, TY_ERR_UNSUPPORTED,
                         "tokenizer: tokenizer model '%.*s' is not supported (only 'llama', "
                         "sentencepiece BPE)",
                         shown, model->v.str.ptr);
    }
    const gguf_kv *tokens = gguf_find_kv(f, "tokenizer.ggml.tokens");
    if (!tokens)
        return ty_seterr(err, TY_ERR_FORMAT, "tokenizer: tokenizer.ggml.tokens is missing");
    if (tokens->type != GGUF_TYPE_ARRAY || tokens->arr_type != GGUF_TYPE_STRING || !tokens->arr_str)
        return ty_seterr(err, TY_ERR_FORMAT,
                         "tokenizer: tokenizer.ggml.tokens must be an array of strings");
    if (tokens->arr_n == 0 || tokens->arr_n > (uint64_t)INT32_MAX - 1)
        return ty_seterr(err, TY_ERR_FORMAT, "tokenizer: tokenizer.ggml.tokens has %llu entries",
                         (unsigned long long)tokens->arr_n);
    int32_t n = (int32_t)tokens->arr_n;

    const gguf_kv *scores = gguf_find_kv(f, "tokenizer.ggml.scores");
    if (scores) {
        if (scores->type != GGUF_TYPE_ARRAY ||
            !(scores->arr_type == GGUF_TYPE_FLOAT32 || scores->arr_type == GGUF_TYPE_FLOAT64))
            return ty_seterr(err, TY_ERR_FORMAT,
                             "tokenizer: tokenizer.ggml.scores must be an array of floats");
        if (scores->arr_n != tokens->arr_n)
            return ty_seterr(
                err, TY_ERR_FORMAT,
                "tokenizer: tokenizer.ggml.scores has %llu entries but there are %ld tokens",
                (unsigned long long)scores->arr_n, (long)n);
    }
    const gguf_kv *types = gguf_find_kv(f, "tokenizer.ggml.token_type");
    if (types) {
        if (types->type != GGUF_TYPE_ARRAY || !is_int_type(types->arr_type))
            return ty_seterr(err, TY_ERR_FORMAT,
                             "tokenizer: tokenizer.ggml.token_type must be an array of integers");
        if (types->arr_n != tokens->arr_n)
            return ty_seterr(
                err, TY_ERR_FORMAT,
                "tokenizer: tokenizer.ggml.token_type has %llu entries but there are %ld tokens",
                (unsigned long long)types->arr_n, (long)n);
    }

    float *sc = NULL;
    int32_t *ty = NULL;
    if (scores) {
        sc = malloc((size_t)n * sizeof *sc);
        if (!sc) return ty_seterr(err, TY_ERR_NOMEM, "tokenizer: out of memory");
        for (int32_t i = 0; i < n; i++) sc[i] = (float)gguf_arr_get_f64(scores, (uint64_t)i);
    }
    if (types) {
        ty = malloc((size_t)n * sizeof *ty);
        if (!ty) {
            free(sc);
            return ty_seterr(err, TY_ERR_NOMEM, "tokenizer: out of memory");
        }
        for (int32_t i = 0; i < n; i++) {
            int64_t x = gguf_arr_get_i64(types, (uint64_t)i);
            if (x < 0 || x > TY_TOKEN_BYTE) {
                free(sc);
                free(ty);
                return ty_seterr(
                    err, TY_ERR_FORMAT,
                    "tokenizer: tokenizer.ggml.token_type[%ld] = %lld is not a token type", (long)i,
                    (long long)x);
            }
            ty[i] = (int32_t)x;
        }
    }

    ty_tokenizer_vocab v = {0};
    v.n_tokens = n;
    v.texts = tokens->arr_str;
    v.scores = sc;
    v.types = ty;
    v.bos = n > 1 ? 1 : -1;
    v.eos = n > 2 ? 2 : -1;
    v.unk = -1;
    v.pad = -1;
    v.add_bos = true;
    v.add_eos = false;
    v.add_space_prefix = true;
    if (ty) {
        if (ty[0] == TY_TOKEN_UNKNOWN) {
            v.unk = 0;
        } else {
            for (int32_t i = 0; i < n; i++)
                if (ty[i] == TY_TOKEN_UNKNOWN) {
                    v.unk = i;
                    break;
                }
        }
    }
    int rc = get_opt_id(f, "tokenizer.ggml.bos_token_id", n, &v.bos, err);
    if (!rc) rc = get_opt_id(f, "tokenizer.ggml.eos_token_id", n, &v.eos, err);
    if (!rc) rc = get_opt_id(f, "tokenizer.ggml.unknown_token_id", n, &v.unk, err);
    if (!rc) rc = get_opt_id(f, "tokenizer.ggml.padding_token_id", n, &v.pad, err);
    if (!rc) rc = get_opt_bool(f, "tokenizer.ggml.add_bos_token", &v.add_bos, err);
    if (!rc) rc = get_opt_bool(f, "tokenizer.ggml.add_eos_token", &v.add_eos, err);
    if (!rc) rc = get_opt_bool(f, "tokenizer.ggml.add_space_prefix", &v.add_space_prefix, err);
    if (!rc) rc = ty_tokenizer_new(&v, out, err);
    free(sc);
    free(ty);
    return rc;
}

/* ---- accessors ------------------------------------------------------------------------------ */

int32_t ty_tokenizer_n_vocab(const ty_tokenizer *t) { return t ? t->n : 0; }
int32_t ty_tokenizer_bos(const ty_tokenizer *t) { return t ? t->bos : -1; }
int32_t ty_tokenizer_eos(const ty_tokenizer *t) { return t ? t->eos : -1; }
int32_t ty_tokenizer_unk(const ty_tokenizer *t) { return t ? t->unk : -1; }
int32_t ty_tokenizer_pad(const ty_tokenizer *t) { return t ? t->pad : -1; }
bool ty_tokenizer_add_bos(const ty_tokenizer *t) { return t && t->add_bos; }
bool ty_tokenizer_add_eos(const ty_tokenizer *t) { return t && t->add_eos; }

uint32_t ty_tokenizer_type(const ty_tokenizer *t, int32_t id) {
    if (!t || id < 0 || id >= t->n) return 0;
    return t->type[id];
}

const char *ty_tokenizer_text(const ty_tokenizer *t, int32_t id, size_t *len) {
    if (!t || id < 0 || id >= t->n) {
        if (len) *len = 0;
        return "";
    }
    if (len) *len = t->len[id];
    return t->text + t->off[id];
}

int32_t ty_tokenizer_find(const ty_tokenizer *t, const char *text, size_t len) {
    if (!t || (!text && len)) return -1;
    return tok_lookup(t, text ? text : "", len);
}

/* ---- pieces and decoding -------------------------------------------------------------------- */

typedef struct outbuf {
    char *buf;
    size_t limit, len; /* at most limit bytes are written; len counts all */
} outbuf;

static void out_put(outbuf *o, const char *p, size_t n) {
    if (o->buf && o->len < o->limit) {
        size_t room = o->limit - o->len;
        memcpy(o->buf + o->len, p, n < room ? n : room);
    }
    o->len += n;
}

/* Appends a token text with U+2581 replaced by ' ' (skipping one leading U+2581 if strip). */
static void out_put_piece(outbuf *o, const char *p, size_t n, bool strip) {
    size_t i = 0;
    if (strip && n >= 3 && memcmp(p, TOK_SPACE, 3) == 0) i = 3;
    size_t run = i;
    while (i < n) {
        if (i + 3 <= n && memcmp(p + i, TOK_SPACE, 3) == 0) {
            out_put(o, p + run, i - run);
            out_put(o, " ", 1);
            i += 3;
            run = i;
        } else {
            i++;
        }
    }
    out_put(o, p + run, n - run);
}

int tok_byte_value(const ty_tokenizer *t, int32_t id) {
    return parse_byte_token(t->text + t->off[id], t->len[id]);
}

size_t ty_tokenizer_piece(const ty_tokenizer *t, int32_t id, bool special, char *buf, size_t cap) {
    if (!t || id < 0 || id >= t->n) return 0;
    const char *p = t->text + t->off[id];
    size_t n = t->len[id];
    outbuf o = {buf, cap, 0}; /* no terminating NUL */
    switch (t->type[id]) {
    case TY_TOKEN_CONTROL:
    case TY_TOKEN_UNKNOWN:
        if (special) out_put(&o, p, n);
        break;
    case TY_TOKEN_BYTE: {
        int b = tok_byte_value(t, id);
        if (b >= 0) {
            char c = (char)b;
            out_put(&o, &c, 1);
        } else {
            out_put_piece(&o, p, n, false);
        }
        break;
    }
    default: out_put_piece(&o, p, n, false); break;
    }
    return o.len;
}

/* Length of the valid UTF-8 sequence starting at bytes[0] (of n), or 0 if invalid there
 * (the same rules as sentencepiece's DecodeUTF8 / the encoder's validation). */
size_t tok_utf8_valid_len(const unsigned char *s, size_t n) {
    unsigned char c = s[0];
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) return (n >= 2 && (s[1] & 0xC0) == 0x80) ? 2 : 0;
    if (c >= 0xE0 && c <= 0xEF) {
        if (n < 3 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80) return 0;
        if (c == 0xE0 && s[1] < 0xA0) return 0; /* overlong */
        if (c == 0xED && s[1] > 0x9F) return 0; /* surrogate */
        return 3;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        if (n < 4 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80 || (s[3] & 0xC0) != 0x80)
            return 0;
        if (c == 0xF0 && s[1] < 0x90) return 0; /* overlong */
        if (c == 0xF4 && s[1] > 0x8F) return 0; /* > U+10FFFF */
        return 4;
    }
    return 0;
}

size_t ty_tokenizer_decode(const ty_tokenizer *t, const int32_t *ids, int64_t n, char *buf,
                           size_t cap) {
    outbuf o = {buf, cap ? cap - 1 : 0, 0}; /* room for the NUL */
    if (t && ids) {
        bool bos_ws = true; /* the next visible piece may lose its leading U+2581 */
        int64_t i = 0;
        while (i < n) {
            int32_t id = ids[i];
            if (id < 0 || id >= t->n) {
                i++;
                continue;
            }
            uint8_t ty = t->type[id];
            if (ty == TY_TOKEN_CONTROL) {
                i++;
                continue;
            }
            if (ty == TY_TOKEN_UNKNOWN) {
                out_put(&o, " " TOK_UNK_SURFACE " ", 5);
                bos_ws = false;
                i++;
                continue;
            }
            if (ty == TY_TOKEN_BYTE && tok_byte_value(t, id) >= 0) {
                /* a run of byte tokens: their bytes, each byte that does not start a valid UTF-8
                 * sequence within the run -> U+FFFD (as sentencepiece) */
                int64_t j = i + 1;
                while (j < n && ids[j] >= 0 && ids[j] < t->n && t->type[ids[j]] == TY_TOKEN_BYTE &&
                       tok_byte_value(t, ids[j]) >= 0)
                    j++;
                int64_t k = i;
                while (k < j) {
                    unsigned char s4[4];
                    size_t m = (size_t)(j - k < 4 ? j - k : 4);
                    for (size_t q = 0; q < m; q++)
                        s4[q] = (unsigned char)tok_byte_value(t, ids[k + (int64_t)q]);
                    size_t l = tok_utf8_valid_len(s4, m);
                    if (l) {
                        out_put(&o, (const char *)s4, l);
                        k += (int64_t)l;
                    } else {
                        out_put(&o, TOK_REPLACEMENT, 3);
                        k++;
                    }
                }
                i = j;
                bos_ws = false;
                continue;
            }
            out_put_piece(&o, t->text + t->off[id], t->len[id], bos_ws);
            bos_ws = false;
            i++;
        }
    }
    if (buf && cap > 0) buf[o.len < cap ? o.len : cap - 1] = 0;
    return o.len;
}
