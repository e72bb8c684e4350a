/* tokenizer_impl.h - the tokenizer's private layout, shared by tokenizer.c (vocabulary, hash map,
 * decoding) and tokenizer_encode.c (encoding). Not for use outside src/tokenizer/. */
#ifndef TY_TOKENIZER_IMPL_H
#define TY_TOKENIZER_IMPL_H

#include "tokenizer/tokenizer.h"

#define TOK_SPACE "\xE2\x96\x81"       /* U+2581 LOWER ONE EIGHTH BLOCK: sentencepiece's space */
#define TOK_UNK_SURFACE "\xE2\x81\x87" /* U+2047 DOUBLE QUESTION MARK: sentencepiece's <unk> */
#define TOK_REPLACEMENT "\xEF\xBF\xBD" /* U+FFFD */

typedef struct tok_trie_node {
    int32_t child, sibling; /* first child / next sibling node, -1 if none */
    int32_t id;             /* token whose text ends here, or -1 */
    int32_t rank;           /* its position in ty_tokenizer.specials (special trie only) */
    uint8_t byte;
} tok_trie_node;

/* A byte trie; node 0 is the root. nodes == NULL: empty. */
typedef struct tok_trie {
    tok_trie_node *nodes;
    size_t n, cap;
} tok_trie;

struct ty_tokenizer {
    int32_t n;
    char *text;  /* all token texts, each followed by a NUL */
    size_t *off; /* text of token i: text + off[i], len[i] bytes */
    size_t *len;
    float *score;
    uint8_t *type; /* enum ty_token_type (0 = undefined, treated as NORMAL) */
    int32_t *map;  /* open addressing text -> id, -1 = empty slot */
    uint64_t map_mask;
    int32_t bos, eos, unk, pad;
    bool add_bos, add_eos, add_space_prefix;
    int32_t byte_id[256]; /* token "<0xXX>" per byte, -1 if absent */
    bool byte_fallback;   /* the vocabulary has BYTE tokens (or no types and "<0xXX>" texts) */
    int32_t *specials;    /* CONTROL / UNKNOWN / USER_DEFINED tokens, longest text first */
    size_t n_specials;
    tok_trie special_trie; /* the texts of specials[] (rank = index there) */
    tok_trie user_trie;    /* USER_DEFINED texts; empty if none */
};

/* Id of the token with exactly this text (any type), or -1. */
int32_t tok_lookup(const ty_tokenizer *t, const char *p, size_t n);
/* Length of the longest USER_DEFINED token text that prefixes p[0..n), 0 if none. */
size_t tok_user_defined_match(const ty_tokenizer *t, const char *p, size_t n);
/* The byte a "<0xXX>" token stands for, or -1 if its text is not of that form. */
int tok_byte_value(const ty_tokenizer *t, int32_t id);
/* Length of the valid UTF-8 sequence at s[0..n), 0 if the bytes there are not one (strict:
 * no overlongs, surrogates or code points above U+10FFFF). */
size_t tok_utf8_valid_len(const unsigned char *s, size_t n);

#endif
