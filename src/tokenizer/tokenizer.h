/* tokenizer.h - SentencePiece-BPE tokenizer of the kind GGUF marks `llama` (Llama, Mistral).
 *
 * Built from a GGUF file's tokenizer.ggml.* metadata: tokens, scores, token_type, bos/eos/unk ids,
 * add_bos_token / add_eos_token. Encoding replaces spaces with U+2581, adds the dummy-prefix U+2581
 * at the start, merges adjacent pieces by score as sentencepiece's BPE does, and falls back to
 * <0xXX> byte tokens for characters the vocabulary lacks. */
#ifndef TY_TOKENIZER_H
#define TY_TOKENIZER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/error.h"
#include "gguf/gguf.h"

/* token_type values as GGUF stores them (sentencepiece piece types) */
enum ty_token_type {
    TY_TOKEN_NORMAL = 1,
    TY_TOKEN_UNKNOWN = 2,
    TY_TOKEN_CONTROL = 3,
    TY_TOKEN_USER_DEFINED = 4,
    TY_TOKEN_UNUSED = 5,
    TY_TOKEN_BYTE = 6
};

typedef struct ty_tokenizer ty_tokenizer;

/* Fails with TY_ERR_UNSUPPORTED if tokenizer.ggml.model is not "llama", TY_ERR_FORMAT if the
 * metadata is missing or inconsistent (array lengths, ids out of range). */
int ty_tokenizer_load(const gguf_file *f, ty_tokenizer **out, ty_err *err);
void ty_tokenizer_free(ty_tokenizer *t);

int32_t ty_tokenizer_n_vocab(const ty_tokenizer *t);
int32_t ty_tokenizer_bos(const ty_tokenizer *t);
int32_t ty_tokenizer_eos(const ty_tokenizer *t);
int32_t ty_tokenizer_unk(const ty_tokenizer *t); /* -1 if none */
bool ty_tokenizer_add_bos(const ty_tokenizer *t);
bool ty_tokenizer_add_eos(const ty_tokenizer *t);
uint32_t ty_tokenizer_type(const ty_tokenizer *t, int32_t id);
/* The token's stored text (with U+2581 for spaces); id must be in range. */
const char *ty_tokenizer_text(const ty_tokenizer *t, int32_t id, size_t *len);
/* Id of the token whose stored text is exactly `text`, or -1. */
int32_t ty_tokenizer_find(const ty_tokenizer *t, const char *text, size_t len);

/* Encodes len bytes of text. Invalid UTF-8 -> TY_ERR_UTF8. With parse_special, the texts of
 * CONTROL (and USER_DEFINED) tokens in the input become their ids; otherwise they are plain text.
 * add_bos/add_eos: prepend BOS / append EOS. Result in a malloc'd array (*ids, *n). */
int ty_tokenizer_encode(const ty_tokenizer *t, const char *text, size_t len, bool add_bos,
                        bool add_eos, bool parse_special, int32_t **ids, int64_t *n, ty_err *err);

/* The bytes one token stands for: U+2581 -> ' ', <0xXX> -> that byte, CONTROL/UNKNOWN -> ""
 * unless special (then its text). Writes at most cap bytes; returns the full length. */
size_t ty_tokenizer_piece(const ty_tokenizer *t, int32_t id, bool special, char *buf, size_t cap);

/* Decodes a sequence as sentencepiece's DecodeIds does: pieces concatenated, control tokens
 * dropped, the single leading space of the first piece removed. Writes at most cap-1 bytes plus a
 * NUL; returns the full length (without NUL). */
size_t ty_tokenizer_decode(const ty_tokenizer *t, const int32_t *ids, int64_t n, char *buf,
                           size_t cap);

#endif
