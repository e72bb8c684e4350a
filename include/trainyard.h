/* trainyard.h - the public C API of the trainyard inference engine.
 *
 * Lifecycle:   ty_model_open -> ty_context_new -> (ty_tokenize, ty_context_eval, ty_context_logits,
 *              ty_sampler_sample, ty_token_to_piece | ty_generate) -> ty_context_free -> ty_model_close.
 *
 * Rules that hold for every function here:
 *   - the return value is a status code: TY_OK (0) or one of TY_ERR_*; ty_status_string() names it;
 *   - after a failure on a handle, ty_model_errmsg()/ty_context_errmsg() return a one-line message
 *     (a model shared by threads keeps the message of its latest failure on any of them);
 *     open/new calls that fail before a handle exists return the message through `errmsg`
 *     (a malloc'd string the caller frees with ty_free; pass NULL to ignore it);
 *   - the library never prints, exits or aborts, and keeps no global mutable state;
 *   - a model may be shared by several contexts; a context is used by one thread at a time.
 */
#ifndef TRAINYARD_H
#define TRAINYARD_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TY_VERSION "0.1.0"

/* Status codes. Values are stable. */
enum {
    TY_OK = 0,
    TY_ERR_INVALID_ARG = 1,     /* a NULL handle, a bad option, a token id out of range */
    TY_ERR_IO = 2,              /* a file could not be opened, read or mapped */
    TY_ERR_FORMAT = 3,          /* the model file is malformed (truncated, corrupt, hostile) */
    TY_ERR_UNSUPPORTED = 4,     /* well-formed, but uses something this engine does not implement */
    TY_ERR_NOMEM = 5,           /* out of memory */
    TY_ERR_CONTEXT_FULL = 6,    /* the tokens do not fit in the context window */
    TY_ERR_DEVICE = 7,          /* the requested device is missing or failed */
    TY_ERR_UTF8 = 8,            /* text is not valid UTF-8 */
    TY_ERR_BUFFER_TOO_SMALL = 9,/* an output buffer is too small; the needed size is reported */
    TY_ERR_CANCELLED = 10,      /* a callback asked to stop */
    TY_ERR_INTERNAL = 11        /* a bug: please report it */
};

typedef int32_t ty_token;

typedef struct ty_model ty_model;
typedef struct ty_context ty_context;
typedef struct ty_sampler ty_sampler;

const char *ty_status_string(int status);
const char *ty_version(void);
void ty_free(void *p); /* frees strings the library returned through out-parameters */

/* ---- model ---------------------------------------------------------------------------------- */

typedef struct ty_model_params {
    const char *device; /* "cpu" (default), "cuda" / "cuda:N" (builds with CUDA), "auto" (CUDA if a
                           device is usable, else CPU); later "vulkan", "metal" */
    int n_threads;      /* 0: one per physical core */
    int exact_math;     /* 1: dequantize weights exactly and compute in float32 (slow reference
                           path); 0: the fast path with 8-bit quantized activations */
} ty_model_params;

ty_model_params ty_model_default_params(void);

int ty_model_open(const char *path, const ty_model_params *params, ty_model **out, char **errmsg);
void ty_model_close(ty_model *model);
const char *ty_model_errmsg(const ty_model *model);

typedef struct ty_model_info {
    const char *architecture; /* "llama" */
    const char *name;         /* general.name, or "" */
    int64_t n_vocab, n_ctx_train, n_embd, n_layer, n_head, n_head_kv, n_ff, head_dim, n_rot;
    float rope_freq_base, rms_norm_eps;
    uint64_t n_params, weight_bytes, file_bytes;
    uint64_t bytes_per_token; /* weight bytes one decode step reads: all but the embedding table,
                                 of which one row */
    const char *file_type;    /* e.g. "Q4_K_M", from general.file_type, or "unknown" */
    const char *tokenizer;    /* tokenizer.ggml.model: "llama" */
    int add_bos, add_eos;
    int64_t n_tensors;
    int n_threads;            /* CPU threads the model's contexts use */
} ty_model_info;

int ty_model_get_info(const ty_model *model, ty_model_info *info);

typedef struct ty_tensor_info {
    const char *name;
    const char *type;   /* "Q4_K", "F32", ... */
    int n_dims;
    int64_t ne[4];      /* ne[0] is the contiguous dimension */
    uint64_t offset;    /* from the start of the file */
    uint64_t nbytes;
} ty_tensor_info;

/* Describes tensor i (0 <= i < info.n_tensors) of the model file, in file order. */
int ty_model_tensor(const ty_model *model, int64_t i, ty_tensor_info *info);

/* ---- vocabulary and tokenizer ----------------------------------------------------------------- */

ty_token ty_token_bos(const ty_model *model);
ty_token ty_token_eos(const ty_model *model);
int64_t ty_n_vocab(const ty_model *model);
/* Returns the id of a control token such as "[INST]", or -1 if the vocabulary has none. */
ty_token ty_token_lookup(const ty_model *model, const char *text);

enum { TY_TOKENIZE_ADD_BOS = 1, TY_TOKENIZE_PARSE_SPECIAL = 2 };

/* Tokenizes `len` bytes of UTF-8 text into ids[0..cap). *n_ids receives the count; when it exceeds
 * cap, TY_ERR_BUFFER_TOO_SMALL is returned and nothing beyond cap is written. */
int ty_tokenize(const ty_model *model, const char *text, size_t len, int flags,
                ty_token *ids, int64_t cap, int64_t *n_ids);

/* Writes the text of one token (bytes, not NUL-terminated) into buf[0..cap); *n_bytes receives the
 * length. Control tokens yield "" unless `special` is set. */
int ty_token_to_piece(const ty_model *model, ty_token id, int special, char *buf, size_t cap,
                      size_t *n_bytes);

/* Decodes a whole sequence as sentencepiece does (the leading space of the first word removed,
 * control tokens dropped). Output is NUL-terminated; *n_bytes excludes the NUL. */
int ty_detokenize(const ty_model *model, const ty_token *ids, int64_t n, char *buf, size_t cap,
                  size_t *n_bytes);

/* ---- context ---------------------------------------------------------------------------------- */

typedef struct ty_context_params {
    int64_t n_ctx;   /* context window in tokens; 0: min(model's training context, 4096) */
    int64_t n_batch; /* most tokens evaluated in one pass; 0: 512 */
    int kv_type;     /* TY_KV_DEFAULT: F16 (F32 when the model uses exact math), or one below */

    /* Speculative decoding, used by ty_generate (its output is what the model alone would write:
     * token for token when greedy, the same distribution when sampling). Proposals come from a
     * draft model and/or prompt lookup; the model checks them all in one batched pass. */
    ty_model *draft_model; /* NULL: none. A smaller model with exactly this model's vocabulary
                              (else ty_context_new fails naming the difference); the context keeps
                              a KV cache of n_ctx for it. It must outlive the context. */
    int draft_max;   /* most tokens proposed per step, 1..TY_DRAFT_MAX_LIMIT; 0: TY_DRAFT_MAX_DEFAULT */
    int draft_min;   /* fewest, 1..draft_max; 0: 1. Between the two, the length follows the recent
                        acceptance rate; draft_min == draft_max fixes it */
    int lookup;      /* 1: propose the continuation of the latest earlier occurrence of the last
                        few tokens in the context (draft-free; tried before the draft model) */
} ty_context_params;

enum { TY_KV_DEFAULT = 0, TY_KV_F32 = 1, TY_KV_F16 = 2, TY_KV_Q8_0 = 3 };
enum { TY_DRAFT_MAX_DEFAULT = 8, TY_DRAFT_MAX_LIMIT = 64 };

ty_context_params ty_context_default_params(void);

int ty_context_new(ty_model *model, const ty_context_params *params, ty_context **out,
                   char **errmsg);
void ty_context_free(ty_context *ctx);
const char *ty_context_errmsg(const ty_context *ctx);
int64_t ty_context_n_ctx(const ty_context *ctx);
int64_t ty_context_n_past(const ty_context *ctx); /* tokens held in the KV cache */

/* Forgets every cached position >= n_past (0 clears the cache). */
int ty_context_truncate(ty_context *ctx, int64_t n_past);

enum { TY_LOGITS_LAST = 0, TY_LOGITS_ALL = 1 };

/* Appends n tokens to the sequence and runs the model over them in batches. With TY_LOGITS_ALL,
 * logits for each of the n positions are kept; otherwise only for the last. */
int ty_context_eval(ty_context *ctx, const ty_token *tokens, int64_t n, int logits_mode);

/* Logits of the i-th token of the last ty_context_eval call (i = -1: the last one): n_vocab floats,
 * valid until the next eval. */
int ty_context_logits(ty_context *ctx, int64_t i, const float **logits);

/* ---- sampling --------------------------------------------------------------------------------- */

typedef struct ty_sampler_params {
    float temperature;    /* <= 0: greedy (argmax) */
    int32_t top_k;        /* <= 0: off */
    float top_p;          /* >= 1: off */
    float min_p;          /* <= 0: off */
    float repeat_penalty; /* 1: off; applied to the last repeat_last_n tokens */
    int32_t repeat_last_n;
    uint64_t seed;
} ty_sampler_params;

ty_sampler_params ty_sampler_default_params(void);
int ty_sampler_new(const ty_sampler_params *params, ty_sampler **out);
void ty_sampler_free(ty_sampler *s);
/* Tells the sampler about a token that entered the sequence (for the repetition penalty). */
void ty_sampler_accept(ty_sampler *s, ty_token token);
int ty_sampler_sample(ty_sampler *s, const float *logits, int64_t n_vocab, ty_token *out);

/* ---- chat ------------------------------------------------------------------------------------- */

typedef struct ty_chat_message {
    const char *role; /* "system", "user" or "assistant" */
    const char *content;
} ty_chat_message;

/* Builds the model's instruct prompt (Mistral: BOS, [INST] user [/INST] answer EOS ..., the system
 * text joined to the last user message) token by token, as mistral-common does. Same buffer rules
 * as ty_tokenize. */
int ty_chat_tokenize(const ty_model *model, const ty_chat_message *msgs, int64_t n_msgs,
                     ty_token *ids, int64_t cap, int64_t *n_ids);

/* ---- generation ------------------------------------------------------------------------------- */

/* Called with each new token and its bytes; return non-zero to stop. */
typedef int (*ty_token_callback)(void *user, ty_token token, const char *piece, size_t len);

typedef struct ty_generate_stats {
    int64_t n_prompt, n_generated;
    double prompt_seconds, generate_seconds;
    int stopped_by_eos;
    /* speculative decoding (all 0 without it): */
    int64_t n_steps;    /* passes of the model over a pending token and its proposals */
    int64_t n_drafted;  /* tokens proposed by the draft model or prompt lookup */
    int64_t n_accepted; /* proposals accepted; acceptance rate = n_accepted / n_drafted, mean
                           accepted length = n_accepted / n_steps */
    int64_t n_rejected; /* proposals rejected: at most one a step, those after it go unchecked;
                           n_accepted / (n_accepted + n_rejected) is the per-token agreement */
} ty_generate_stats;

/* Evaluates the prompt (appended to what the context holds) and samples up to n_predict tokens
 * (-1: until EOS or the context is full), calling cb for each but EOS. Every sampled token, EOS and
 * the last included, is evaluated into the context, so a conversation continues from it. A prompt
 * that does not fit fails with TY_ERR_CONTEXT_FULL; an answer that fills the context just ends.
 * With speculative decoding (ty_context_params.draft_model / lookup), the tokens are the same
 * (greedy) or drawn from the same distribution (sampling: the accept/reject rule of Leviathan et
 * al. and Chen et al., 2023; the same seed gives the same text), rejected proposals are rolled
 * out of both KV caches, and stats count the proposals. */
int ty_generate(ty_context *ctx, ty_sampler *sampler, const ty_token *prompt, int64_t n_prompt,
                int64_t n_predict, ty_token_callback cb, void *user, ty_generate_stats *stats);

#ifdef __cplusplus
}
#endif
#endif
