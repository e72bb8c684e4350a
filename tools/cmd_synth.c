/* cmd_synth.c - `trainyard synth`: writes a random-weight llama-architecture GGUF of any shape.
 *
 * The files are for speed work and loader tests: tensor names, shapes, types and metadata are
 * those llama.cpp expects of a llama model (so both engines load them), the weights are noise.
 * Quantizing billions of random floats would take minutes, so each weight type gets one pool of a
 * few MB of genuinely quantized random blocks, and every tensor is streamed from that pool
 * starting at a random block (wrapping around). Writing a 7B Q4_K_M file is then disk-bound. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "gguf/gguf.h"
#include "quant/quant.h"

#define DEFAULT_VOCAB_SOURCE "../shared/models/yard-draft-9m-q8_0.gguf"
#define POOL_BYTES (2u << 20) /* per weight type */
#define WEIGHT_STD 0.02

typedef struct synth_cfg {
    const char *out, *preset, *type_name, *vocab_from;
    bool synthetic_vocab;
    int64_t dim, layers, heads, kv_heads, ffn, vocab, ctx;
    float rope_base, eps;
    uint32_t ftype;
    uint64_t seed;
} synth_cfg;

static const struct {
    const char *name;
    uint32_t ftype; /* general.file_type (llama_ftype) */
} FILE_TYPES[] = {{"F32", 0}, {"F16", 1}, {"Q4_0", 2}, {"Q8_0", 7}, {"Q4_K_M", 15}};

enum { FT_F32 = 0, FT_F16 = 1, FT_Q4_0 = 2, FT_Q8_0 = 7, FT_Q4_K_M = 15 };

static void usage(FILE *f) {
    fprintf(f,
            "usage: trainyard synth -o OUT [--preset mistral-7b|draft|tiny]\n"
            "       [--type Q4_K_M|Q8_0|Q4_0|F16|F32] [--dim N] [--layers N] [--heads N]\n"
            "       [--kv-heads N] [--ffn N] [--vocab N] [--ctx N]\n"
            "       [--vocab-from FILE | --synthetic-vocab] [--seed N]\n"
            "writes a random-weight llama-architecture GGUF (default: mistral-7b shape, Q4_K_M,\n"
            "the vocabulary of " DEFAULT_VOCAB_SOURCE " if present, else a synthetic one)\n");
}

static int usage_error(const char *fmt, const char *arg) {
    fprintf(stderr, "trainyard synth: ");
    fprintf(stderr, fmt, arg);
    fputc('\n', stderr);
    usage(stderr);
    return 2;
}

static int fail(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;

static int fail(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "trainyard synth: ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return 1;
}

/* ---- options --------------------------------------------------------------------------------- */

static void apply_preset(synth_cfg *c, const char *preset) {
    if (strcmp(preset, "tiny") == 0) {
        /* Small but K-quant friendly: every row length is a multiple of 256. */
        c->dim = 256, c->layers = 2, c->heads = 4, c->kv_heads = 2, c->ffn = 768, c->ctx = 2048;
    } else if (strcmp(preset, "draft") == 0) {
        /* A speculative-decoding draft for mistral-7b: same vocabulary, about 1/50 of its weight
         * bytes (Q4_K_M: 88 MB against 4.37 GB). */
        c->dim = 768, c->layers = 14, c->heads = 12, c->kv_heads = 4, c->ffn = 2048, c->ctx = 32768;
    } else { /* mistral-7b (v0.3) */
        c->dim = 4096, c->layers = 32, c->heads = 32, c->kv_heads = 8, c->ffn = 14336;
        c->ctx = 32768;
    }
    c->vocab = 32768;
    c->rope_base = 1e6f;
    c->eps = 1e-5f;
}

static int parse_int(const char *opt, const char *s, int64_t lo, int64_t hi, int64_t *out) {
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) {
        fprintf(stderr, "trainyard synth: option %s expects an integer in [%lld, %lld], got '%s'\n",
                opt, (long long)lo, (long long)hi, s);
        return 2;
    }
    *out = v;
    return 0;
}

static int parse_args(int argc, char **argv, synth_cfg *c, bool *vocab_set) {
    /* The preset first, so that explicit sizes override it wherever they appear. */
    c->preset = "mistral-7b";
    for (int i = 1; i + 1 < argc; i++)
        if (strcmp(argv[i], "--preset") == 0) c->preset = argv[i + 1];
    if (strcmp(c->preset, "mistral-7b") != 0 && strcmp(c->preset, "tiny") != 0 &&
        strcmp(c->preset, "draft") != 0)
        return usage_error("unknown preset '%s' (mistral-7b, draft or tiny)", c->preset);
    apply_preset(c, c->preset);
    c->type_name = "Q4_K_M";
    c->seed = 1;
    *vocab_set = false;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--synthetic-vocab") == 0) {
            c->synthetic_vocab = true;
            continue;
        }
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return -1; /* not an error: cmd_synth returns 0 */
        }
        if (i + 1 >= argc) return usage_error("option %s needs a value", a);
        const char *v = argv[++i];
        int rc = 0;
        if (strcmp(a, "-o") == 0) c->out = v;
        else if (strcmp(a, "--preset") == 0) continue;
        else if (strcmp(a, "--type") == 0) c->type_name = v;
        else if (strcmp(a, "--vocab-from") == 0) c->vocab_from = v;
        else if (strcmp(a, "--dim") == 0) rc = parse_int(a, v, 1, 1 << 20, &c->dim);
        else if (strcmp(a, "--layers") == 0) rc = parse_int(a, v, 1, 4096, &c->layers);
        else if (strcmp(a, "--heads") == 0) rc = parse_int(a, v, 1, 1 << 16, &c->heads);
        else if (strcmp(a, "--kv-heads") == 0) rc = parse_int(a, v, 1, 1 << 16, &c->kv_heads);
        else if (strcmp(a, "--ffn") == 0) rc = parse_int(a, v, 1, 1 << 22, &c->ffn);
        else if (strcmp(a, "--ctx") == 0) rc = parse_int(a, v, 1, 1 << 24, &c->ctx);
        else if (strcmp(a, "--vocab") == 0) {
            rc = parse_int(a, v, 1, 1 << 24, &c->vocab);
            *vocab_set = true;
        } else if (strcmp(a, "--seed") == 0) {
            char *end;
            errno = 0;
            c->seed = strtoull(v, &end, 10);
            if (errno || end == v || *end || v[0] == '-')
                return usage_error("--seed expects a non-negative integer, got '%s'", v);
        } else {
            return usage_error("unknown option '%s'", a);
        }
        if (rc) return rc;
    }
    if (!c->out) return usage_error("%s", "missing -o OUT");
    synth_cfg preset = *c;
    apply_preset(&preset, c->preset);
    if (preset.dim != c->dim || preset.layers != c->layers || preset.heads != c->heads ||
        preset.kv_heads != c->kv_heads || preset.ffn != c->ffn || preset.ctx != c->ctx)
        c->preset = "custom"; /* for the summary and general.name */
    bool known = false;
    for (size_t i = 0; i < sizeof FILE_TYPES / sizeof *FILE_TYPES; i++) {
        if (strcasecmp(c->type_name, FILE_TYPES[i].name) == 0) {
            c->type_name = FILE_TYPES[i].name;
            c->ftype = FILE_TYPES[i].ftype;
            known = true;
        }
    }
    if (!known)
        return usage_error("unknown type '%s' (Q4_K_M, Q8_0, Q4_0, F16 or F32)", c->type_name);
    if (c->vocab_from && c->synthetic_vocab)
        return usage_error("%s", "--vocab-from and --synthetic-vocab exclude each other");
    return 0;
}

static int check_shape(const synth_cfg *c) {
    if (c->dim % c->heads != 0)
        return fail("--dim %" PRId64 " is not a multiple of --heads %" PRId64, c->dim, c->heads);
    if (c->heads % c->kv_heads != 0)
        return fail("--heads %" PRId64 " is not a multiple of --kv-heads %" PRId64, c->heads,
                    c->kv_heads);
    if ((c->dim / c->heads) % 2 != 0)
        return fail("the head dimension %" PRId64 " must be even (rotary embedding)",
                    c->dim / c->heads);
    /* Quantized row lengths (dim for most matrices, ffn for ffn_down) must be whole blocks. */
    if (c->ftype != FT_F32 && c->ftype != FT_F16 && (c->dim % 32 != 0 || c->ffn % 32 != 0))
        return fail("--dim and --ffn must be multiples of 32 for %s", c->type_name);
    return 0;
}

/* ---- vocabulary ------------------------------------------------------------------------------ */

/* Copies every tokenizer.* key of an existing GGUF; its vocabulary size goes to *n_vocab. */
static int vocab_from_file(gguf_writer *w, const char *path, int64_t *n_vocab) {
    gguf_file *src = NULL;
    ty_err err = {0};
    if (gguf_open(path, &src, &err) != TY_OK) return fail("--vocab-from %s: %s", path, err.msg);
    const gguf_kv *tokens = gguf_find_kv(src, "tokenizer.ggml.tokens");
    if (!tokens || tokens->type != GGUF_TYPE_ARRAY || tokens->arr_type != GGUF_TYPE_STRING ||
        tokens->arr_n == 0) {
        gguf_close(src);
        return fail("%s has no tokenizer.ggml.tokens string array", path);
    }
    *n_vocab = (int64_t)tokens->arr_n;
    int rc = 0;
    for (uint64_t i = 0; i < gguf_n_kv(src) && !rc; i++) {
        const gguf_kv *kv = gguf_kv_at(src, i);
        if (strncmp(kv->key, "tokenizer.", 10) == 0) rc = gguf_writer_copy_kv(w, kv);
    }
    gguf_close(src);
    return rc ? fail("out of memory copying the vocabulary of %s", path) : 0;
}

/* A byte-fallback SentencePiece-style vocabulary: <unk> <s> </s>, the 256 byte tokens, then
 * distinct made-up pieces ("▁a", "▁b", ..., "▁ba", ...) with decreasing scores. */
static int vocab_synthetic(gguf_writer *w, int64_t n) {
    if (n < 259)
        return fail("a synthetic vocabulary needs --vocab >= 259 (3 specials + 256 bytes), "
                    "got %" PRId64, n);
    gguf_str *pieces = calloc((size_t)n, sizeof *pieces);
    char *text = malloc((size_t)n * 16);
    float *scores = malloc((size_t)n * sizeof *scores);
    int32_t *types = malloc((size_t)n * sizeof *types);
    int rc = 0;
    if (!pieces || !text || !scores || !types) {
        rc = fail("out of memory building a vocabulary of %" PRId64 " tokens", n);
        goto done;
    }
    for (int64_t i = 0; i < n; i++) {
        char *t = text + i * 16;
        if (i < 3) {
            strcpy(t, i == 0 ? "<unk>" : i == 1 ? "<s>" : "</s>");
            types[i] = i == 0 ? 2 : 3; /* UNKNOWN, CONTROL */
        } else if (i < 259) {
            snprintf(t, 16, "<0x%02X>", (unsigned)(i - 3));
            types[i] = 6; /* BYTE */
        } else {
            int k = snprintf(t, 16, "\xe2\x96\x81"); /* "▁", the SentencePiece space */
            for (int64_t v = i - 259; k < 15; v = v / 26 - 1) { /* bijective base 26 */
                t[k++] = (char)('a' + v % 26);
                if (v < 26) break;
            }
            t[k] = '\0';
            types[i] = 1; /* NORMAL */
        }
        pieces[i] = (gguf_str){strlen(t), t};
        scores[i] = i < 259 ? 0.0f : -(float)(i - 259);
    }
    rc |= gguf_writer_set_str(w, "tokenizer.ggml.model", "llama");
    rc |= gguf_writer_set_str(w, "tokenizer.ggml.pre", "default");
    rc |= gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", pieces, (uint64_t)n);
    rc |= gguf_writer_set_arr_f32(w, "tokenizer.ggml.scores", scores, (uint64_t)n);
    rc |= gguf_writer_set_arr_i32(w, "tokenizer.ggml.token_type", types, (uint64_t)n);
    rc |= gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", 1);
    rc |= gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", 2);
    rc |= gguf_writer_set_u32(w, "tokenizer.ggml.unknown_token_id", 0);
    rc |= gguf_writer_set_bool(w, "tokenizer.ggml.add_bos_token", true);
    rc |= gguf_writer_set_bool(w, "tokenizer.ggml.add_eos_token", false);
    if (rc) rc = fail("out of memory setting the vocabulary");
done:
    free(pieces);
    free(text);
    free(scores);
    free(types);
    return rc;
}

static int set_vocab(gguf_writer *w, synth_cfg *c, bool vocab_set) {
    const char *src = c->vocab_from;
    if (!src && !c->synthetic_vocab && access(DEFAULT_VOCAB_SOURCE, R_OK) == 0)
        src = DEFAULT_VOCAB_SOURCE;
    if (!src) return vocab_synthetic(w, c->vocab);
    int64_t n = 0;
    int rc = vocab_from_file(w, src, &n);
    if (rc) return rc;
    if (vocab_set && n != c->vocab)
        return fail("--vocab %" PRId64 " does not match the %" PRId64
                    " tokens of %s (use --synthetic-vocab for another size)",
                    c->vocab, n, src);
    c->vocab = n;
    c->vocab_from = src;
    return 0;
}

static int set_hparams(gguf_writer *w, const synth_cfg *c) {
    char name[96];
    snprintf(name, sizeof name, "synthetic %s %s (random weights)", c->preset, c->type_name);
    int rc = 0;
    rc |= gguf_writer_set_str(w, "general.architecture", "llama");
    rc |= gguf_writer_set_str(w, "general.name", name);
    rc |= gguf_writer_set_u32(w, "general.alignment", GGUF_DEFAULT_ALIGNMENT);
    rc |= gguf_writer_set_u32(w, "llama.block_count", (uint32_t)c->layers);
    rc |= gguf_writer_set_u32(w, "llama.context_length", (uint32_t)c->ctx);
    rc |= gguf_writer_set_u32(w, "llama.embedding_length", (uint32_t)c->dim);
    rc |= gguf_writer_set_u32(w, "llama.feed_forward_length", (uint32_t)c->ffn);
    rc |= gguf_writer_set_u32(w, "llama.attention.head_count", (uint32_t)c->heads);
    rc |= gguf_writer_set_u32(w, "llama.attention.head_count_kv", (uint32_t)c->kv_heads);
    rc |= gguf_writer_set_f32(w, "llama.rope.freq_base", c->rope_base);
    rc |= gguf_writer_set_f32(w, "llama.attention.layer_norm_rms_epsilon", c->eps);
    rc |= gguf_writer_set_u32(w, "llama.rope.dimension_count", (uint32_t)(c->dim / c->heads));
    rc |= gguf_writer_set_u32(w, "llama.vocab_size", (uint32_t)c->vocab);
    rc |= gguf_writer_set_u32(w, "general.file_type", c->ftype);
    rc |= gguf_writer_set_u32(w, "general.quantization_version", 2);
    return rc ? fail("out of memory setting metadata") : 0;
}

/* ---- tensor types (llama.cpp's choices for each file type) ----------------------------------- */

/* llama.cpp's use_more_bits: the layers that get more bits in the _M mixes. */
static bool use_more_bits(int64_t i, int64_t n) {
    return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2;
}

/* llama.cpp's fallback when a row is not a whole number of 256-element super-blocks. */
static uint32_t fit_type(uint32_t t, int64_t ne0) {
    if (ne0 % TY_QK_K == 0) return t;
    if (t == TY_TYPE_Q4_K) return TY_TYPE_Q5_0;
    if (t == TY_TYPE_Q6_K) return TY_TYPE_Q8_0;
    return t;
}

/* kind: "token_embd", "output", or the per-layer name ("attn_q", ...). */
static uint32_t matrix_type(const synth_cfg *c, const char *kind, int64_t layer, int64_t ne0) {
    switch (c->ftype) {
    case FT_F32: return TY_TYPE_F32;
    case FT_F16: return TY_TYPE_F16;
    case FT_Q8_0: return TY_TYPE_Q8_0;
    case FT_Q4_0: return strcmp(kind, "output") == 0 ? fit_type(TY_TYPE_Q6_K, ne0) : TY_TYPE_Q4_0;
    default: break; /* Q4_K_M */
    }
    bool more = strcmp(kind, "output") == 0 ||
                ((strcmp(kind, "attn_v") == 0 || strcmp(kind, "ffn_down") == 0) &&
                 use_more_bits(layer, c->layers));
    return fit_type(more ? TY_TYPE_Q6_K : TY_TYPE_Q4_K, ne0);
}

typedef struct planned {
    char name[48];
    uint32_t n_dims, type;
    int64_t ne[2];
} planned;

static void plan_one(planned *p, const synth_cfg *c, const char *kind, int64_t layer, int64_t ne0,
                     int64_t ne1) {
    if (layer < 0) snprintf(p->name, sizeof p->name, "%s.weight", kind);
    else snprintf(p->name, sizeof p->name, "blk.%" PRId64 ".%s.weight", layer, kind);
    p->ne[0] = ne0;
    p->ne[1] = ne1;
    p->n_dims = ne1 > 0 ? 2 : 1;
    if (ne1 <= 0) p->ne[1] = 1;
    p->type = p->n_dims == 1 ? TY_TYPE_F32 : matrix_type(c, kind, layer, ne0);
}

/* The tensors in llama.cpp's converter order; ne[0] is the input dimension. Returns the count. */
static size_t plan_tensors(const synth_cfg *c, planned *p) {
    const int64_t d = c->dim, kv = c->dim / c->heads * c->kv_heads;
    size_t n = 0;
    plan_one(&p[n++], c, "token_embd", -1, d, c->vocab);
    for (int64_t l = 0; l < c->layers; l++) {
        plan_one(&p[n++], c, "attn_norm", l, d, 0);
        plan_one(&p[n++], c, "attn_q", l, d, d);
        plan_one(&p[n++], c, "attn_k", l, d, kv);
        plan_one(&p[n++], c, "attn_v", l, d, kv);
        plan_one(&p[n++], c, "attn_output", l, d, d);
        plan_one(&p[n++], c, "ffn_norm", l, d, 0);
        plan_one(&p[n++], c, "ffn_gate", l, d, c->ffn);
        plan_one(&p[n++], c, "ffn_up", l, d, c->ffn);
        plan_one(&p[n++], c, "ffn_down", l, c->ffn, d);
    }
    plan_one(&p[n++], c, "output_norm", -1, d, 0);
    plan_one(&p[n++], c, "output", -1, d, c->vocab);
    return n;
}

/* ---- random weights -------------------------------------------------------------------------- */

static uint64_t splitmix64(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

typedef struct pool {
    uint8_t *data; /* a whole number of blocks */
    uint64_t bytes, block_bytes;
} pool;

/* POOL_BYTES worth of blocks of `type`, quantized from uniform noise with std WEIGHT_STD. */
static int make_pool(pool *p, uint32_t type, uint64_t *rng) {
    const ty_type_info *ti = ty_type_get(type);
    uint64_t n_blocks = POOL_BYTES / (uint64_t)ti->type_size;
    int64_t n = (int64_t)n_blocks * ti->block_size;
    float *src = malloc((size_t)n * sizeof *src);
    p->data = malloc((size_t)(n_blocks * (uint64_t)ti->type_size));
    if (!src || !p->data) {
        free(src);
        return fail("out of memory for random weights");
    }
    const double a = WEIGHT_STD * sqrt(3.0); /* uniform on [-a, a] has standard deviation std */
    for (int64_t i = 0; i < n; i++)
        src[i] = (float)(((double)(splitmix64(rng) >> 11) * 0x1p-53 * 2.0 - 1.0) * a);
    ty_quantize_row(type, src, p->data, n);
    /* Guard against a quantizer bug producing inf/nan scales: spot-check a few blocks. */
    ty_dequantize_row(type, p->data, src, ti->block_size * 16);
    for (int64_t i = 0; i < ti->block_size * 16; i++) {
        if (!(fabsf(src[i]) < 1.0f)) {
            double bad = src[i];
            free(src);
            return fail("internal error: quantized %s noise dequantizes to %g", ti->name, bad);
        }
    }
    free(src);
    p->bytes = n_blocks * (uint64_t)ti->type_size;
    p->block_bytes = (uint64_t)ti->type_size;
    return 0;
}

/* Streams nbytes from the pool, starting at a random block and wrapping around. */
static int write_from_pool(gguf_writer *w, const pool *p, uint64_t nbytes, uint64_t *rng,
                           ty_err *err) {
    uint64_t pos = splitmix64(rng) % (p->bytes / p->block_bytes) * p->block_bytes;
    while (nbytes > 0) {
        uint64_t k = p->bytes - pos < nbytes ? p->bytes - pos : nbytes;
        int rc = gguf_writer_write_part(w, p->data + pos, k, err);
        if (rc) return rc;
        nbytes -= k;
        pos = 0;
    }
    return TY_OK;
}

static int write_weights(gguf_writer *w, const synth_cfg *c, const planned *plan, size_t n,
                         uint64_t *rng) {
    pool pools[TY_TYPE_COUNT] = {{0}};
    float *ones = malloc((size_t)c->dim * sizeof *ones);
    ty_err err = {0};
    int rc = ones ? 0 : fail("out of memory");
    for (int64_t i = 0; ones && i < c->dim; i++) ones[i] = 1.0f;
    for (size_t i = 0; i < n && !rc; i++) {
        const planned *t = &plan[i];
        uint64_t nbytes = ty_row_size(t->type, t->ne[0]) * (uint64_t)t->ne[1];
        if (t->n_dims == 1) { /* norms: all ones */
            rc = gguf_writer_write_data(w, ones, nbytes, &err) ? fail("%s", err.msg) : 0;
            continue;
        }
        if (!pools[t->type].data && (rc = make_pool(&pools[t->type], t->type, rng))) break;
        if (write_from_pool(w, &pools[t->type], nbytes, rng, &err)) rc = fail("%s", err.msg);
    }
    for (int i = 0; i < TY_TYPE_COUNT; i++) free(pools[i].data);
    free(ones);
    return rc;
}

/* ---- the command ----------------------------------------------------------------------------- */

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int synth(synth_cfg *c, bool vocab_set) {
    double t0 = now_seconds();
    gguf_writer *w = NULL;
    ty_err err = {0};
    planned *plan = NULL;
    size_t n = 0;
    uint64_t n_params = 0;
    if (gguf_writer_new(&w, &err)) return fail("%s", err.msg);
    /* Hyperparameters first (general.architecture leads, as llama.cpp writes it); the vocabulary
     * source may change the vocabulary size, which then replaces llama.vocab_size in place. */
    int rc = set_hparams(w, c);
    if (!rc) rc = set_vocab(w, c, vocab_set);
    if (!rc && gguf_writer_set_u32(w, "llama.vocab_size", (uint32_t)c->vocab))
        rc = fail("out of memory");
    if (!rc && !(plan = calloc((size_t)(3 + 9 * c->layers), sizeof *plan)))
        rc = fail("out of memory");
    if (!rc) {
        n = plan_tensors(c, plan);
        for (size_t i = 0; i < n && !rc; i++) {
            n_params += (uint64_t)(plan[i].ne[0] * plan[i].ne[1]);
            const planned *t = &plan[i];
            if (gguf_writer_add_tensor(w, t->name, t->n_dims, t->ne, t->type, &err))
                rc = fail("%s", err.msg);
        }
    }
    if (!rc && gguf_writer_begin(w, c->out, &err)) rc = fail("%s", err.msg);
    uint64_t rng = c->seed;
    if (!rc) rc = write_weights(w, c, plan, n, &rng);
    if (!rc && gguf_writer_finish(w, &err)) rc = fail("%s", err.msg);
    gguf_writer_free(w); /* removes the file if it was not finished */
    free(plan);
    if (rc) return rc;

    FILE *f = fopen(c->out, "rb");
    double gib = 0;
    if (f && fseek(f, 0, SEEK_END) == 0) gib = (double)ftell(f) / (1u << 30);
    if (f) fclose(f);
    printf("wrote %s: %s %s, %.2f B parameters in %zu tensors, vocabulary %" PRId64
           " (%s), %.2f GiB in %.1f s\n",
           c->out, c->preset, c->type_name, (double)n_params / 1e9, n, c->vocab,
           c->vocab_from ? c->vocab_from : "synthetic", gib, now_seconds() - t0);
    return 0;
}

int cmd_synth(int argc, char **argv) {
    synth_cfg c = {0};
    bool vocab_set = false;
    int rc = parse_args(argc, argv, &c, &vocab_set);
    if (rc) return rc < 0 ? 0 : rc;
    if ((rc = check_shape(&c))) return rc;
    return synth(&c, vocab_set);
}
