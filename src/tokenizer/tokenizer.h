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
 * metadata is missing or inconsistent (array lengths, ids out of range). Optional keys and their
 * defaults: scores (0), token_type (NORMAL), bos_token_id (1), eos_token_id (2),
 * unknown_token_id (0 if token 0 is typed UNKNOWN, else the first UNKNOWN token, else -1),
 * padding_token_id (-1), add_bos_token (true), add_eos_token (false), add_space_prefix (true);
 * an id of -1 / 0xFFFFFFFF means none. The tokenizer keeps copies: f may be closed after. */
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

/* Encodes len bytes of text. Invalid UTF-8 -> TY_ERR_UTF8 (the message gives the byte offset).
 * Without parse_special the result is sentencepiece's EncodeAsIds: the whole text is one
 * fragment; USER_DEFINED pieces are matched as whole units (as sentencepiece does), CONTROL texts
 * such as "</s>" are plain text. With parse_special (llama.cpp's parse_special=true): the texts of
 * CONTROL, UNKNOWN and USER_DEFINED tokens in the input become their ids (longer texts first), and
 * every text fragment between them is encoded separately, each with its own dummy prefix.
 * add_bos/add_eos: prepend BOS / append EOS (if the vocabulary has one). The empty text gives no
 * tokens (but BOS/EOS). Result in a malloc'd array (*ids, never NULL on success; *n). */
int ty_tokenizer_encode(const ty_tokenizer *t, const char *text, size_t len, bool add_bos,
                        bool add_eos, bool parse_special, int32_t **ids, int64_t *n, ty_err *err);

/* The bytes one token stands for: U+2581 -> ' ', <0xXX> -> that byte, CONTROL/UNKNOWN -> ""
 * unless special (then its text). Writes at most cap bytes; returns the full length. */
size_t ty_tokenizer_piece(const ty_tokenizer *t, int32_t id, bool special, char *buf, size_t cap);

/* Decodes a sequence as sentencepiece's DecodeIds does: pieces concatenated, control tokens
 * dropped, the single leading space of the first piece removed. Writes at most cap-1 bytes plus a
 * NUL; returns the full length (without NUL). Details as sentencepiece: the leading U+2581 is
 * removed from the first piece that is not CONTROL (a BYTE or UNKNOWN first piece ends that);
 * UNKNOWN renders as " \xE2\x81\x87 " (space, U+2047, space); runs of BYTE tokens become their
 * bytes, each byte that does not begin a valid UTF-8 sequence becoming U+FFFD; ids out of range
 * are skipped. */
size_t ty_tokenizer_decode(const ty_tokenizer *t, const int32_t *ids, int64_t n, char *buf,
                           size_t cap);

/* ---- additions ------------------------------------------------------------------------------ */

int32_t ty_tokenizer_pad(const ty_tokenizer *t); /* -1 if none */

/* A vocabulary given as arrays (what ty_tokenizer_load reads from GGUF; tests also build one from
 * a sentencepiece .model file). All arrays have n_tokens entries; they are copied. */
typedef struct ty_tokenizer_vocab {
    int32_t n_tokens;
    const gguf_str *texts;
    const float *scores;  /* NULL: all 0 */
    const int32_t *types; /* enum ty_token_type, 0 (undefined) treated as NORMAL; NULL: NORMAL */
    int32_t bos, eos, unk, pad; /* -1: none */
    bool add_bos, add_eos;
    bool add_space_prefix; /* sentencepiece's add_dummy_prefix (GGUF
                              tokenizer.ggml.add_space_prefix, default true) */
} ty_tokenizer_vocab;

/* TY_ERR_FORMAT if the arrays are inconsistent (ids out of range, unknown token types). */
int ty_tokenizer_new(const ty_tokenizer_vocab *v, ty_tokenizer **out, ty_err *err);

/* True if `other` gives every id the meaning `ref` gives it: same count, pieces, types, scores,
 * BOS and EOS. Otherwise writes the first difference into why ("32000 vs 32768 tokens", other's
 * value first) and returns false. */
bool ty_tokenizer_same_vocab(const ty_tokenizer *ref, const ty_tokenizer *other, char *why, size_t cap);

#endif
