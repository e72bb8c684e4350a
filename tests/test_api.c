/* test_api.c - the public C API (include/trainyard.h) as a user sees it: chat prompts, the
 * tokenizer calls, contexts (KV cache consistency, batching, truncation, errors), the sampler
 * (greedy, filters, seeds, statistics, repetition penalty), ty_generate, and model open errors.
 * Models: ../shared/fixtures/gguf/tiny-e2e-f16.gguf (real Mistral v3 vocabulary),
 * ../shared/fixtures/gguf/tiny-hd128-f32.gguf (vocab 512) and the built-in data/yard-target-27m-q8_0.gguf. */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "json.h"
#include "trainyard.h"

#define FIX "../shared/fixtures/"
#define E2E FIX "gguf/tiny-e2e-f16.gguf"
#define HD128 FIX "gguf/tiny-hd128-f32.gguf"
#define BUILTIN "data/yard-target-27m-q8_0.gguf"

static ty_model *open_model(const char *path) {
    ty_model *m = NULL;
    char *err = NULL;
    int rc = ty_model_open(path, NULL, &m, &err);
    if (rc) fprintf(stderr, "cannot open %s: %s (%s)\n", path, ty_status_string(rc), err ? err : "");
    ty_free(err);
    return m;
}

static ty_context *new_context(ty_model *m, int64_t n_ctx, int64_t n_batch) {
    ty_context_params p = ty_context_default_params();
    p.n_ctx = n_ctx;
    p.n_batch = n_batch;
    ty_context *c = NULL;
    char *err = NULL;
    int rc = ty_context_new(m, &p, &c, &err);
    if (rc) fprintf(stderr, "cannot create a context: %s (%s)\n", ty_status_string(rc), err ? err : "");
    ty_free(err);
    return c;
}

static int64_t argmax_f(const float *x, int64_t n) {
    int64_t b = 0;
    for (int64_t i = 1; i < n; i++)
        if (x[i] > x[b]) b = i;
    return b;
}

static double max_abs_diff(const float *a, const float *b, int64_t n) {
    double m = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (!(d <= m)) m = d; /* NaN propagates as a failure */
    }
    return m;
}

static int64_t tokenize(const ty_model *m, const char *s, int flags, ty_token *ids, int64_t cap) {
    int64_t n = -1;
    int rc = ty_tokenize(m, s, strlen(s), flags, ids, cap, &n);
    return rc ? -1 : n;
}

/* ---- 1. chat -------------------------------------------------------------------------------- */

static int test_chat(void) {
    char err[256];
    json *doc = json_parse_file(FIX "cases.json", err, sizeof err);
    REQUIRE(doc, "cases.json: %s", err);
    const json *cases = json_get(json_get(json_get(doc, "models"), "tiny-e2e"), "cases");
    const json *chat = NULL;
    for (size_t i = 0; i < json_len(cases); i++)
        if (json_str(json_get(json_at(cases, i), "name")) &&
            strcmp(json_str(json_get(json_at(cases, i), "name")), "chat_instructional_design") == 0)
            chat = json_at(cases, i);
    REQUIRE(chat, "no chat_instructional_design case");
    const json *jids = json_get(chat, "ids"), *jmsgs = json_get(chat, "messages");
    REQUIRE(json_len(jids) == 163 && json_len(jmsgs) == 3, "unexpected chat case shape");
    ty_token ref[163];
    for (int i = 0; i < 163; i++) ref[i] = (ty_token)json_num(json_at(jids, (size_t)i));
    ty_chat_message msgs[3];
    for (int i = 0; i < 3; i++) {
        msgs[i].role = json_str(json_get(json_at(jmsgs, (size_t)i), "role"));
        msgs[i].content = json_str(json_get(json_at(jmsgs, (size_t)i), "content"));
    }
    REQUIRE(msgs[0].role && strcmp(msgs[0].role, "user") == 0 && msgs[1].role &&
                strcmp(msgs[1].role, "assistant") == 0 && msgs[2].role && strcmp(msgs[2].role, "user") == 0,
            "unexpected roles in the chat case");

    ty_model *m = open_model(E2E);
    REQUIRE(m, "tiny-e2e-f16");
    ty_token ids[512];
    int64_t n = -1;
    int rc = ty_chat_tokenize(m, msgs, 3, ids, 512, &n);
    CHECK(rc == TY_OK, "chat: %s %s", ty_status_string(rc), ty_model_errmsg(m));
    CHECK(n == 163, "chat: %lld ids, expected 163", (long long)n);
    if (rc == TY_OK && n == 163) {
        int first = -1;
        for (int i = 0; i < 163 && first < 0; i++)
            if (ids[i] != ref[i]) first = i;
        CHECK(first < 0, "chat ids differ from the fixture at %d: %d vs %d", first, ids[first], ref[first]);
    }

    /* the token-wise structure: BOS [INST] sp(u) [/INST] for a single user message */
    {
        ty_chat_message one = {"user", "Hello there, how are you?"};
        ty_token a[64], b[64];
        int64_t na = -1;
        int64_t nb = tokenize(m, one.content, 0, b, 64);
        CHECK(ty_chat_tokenize(m, &one, 1, a, 64, &na) == TY_OK && nb > 0 && na == nb + 3 && a[0] == 1 &&
                  a[1] == 3 && a[na - 1] == 4 && memcmp(a + 2, b, sizeof *b * (size_t)nb) == 0,
              "single user message: %lld ids (text %lld)", (long long)na, (long long)nb);
        /* no messages: just BOS */
        CHECK(ty_chat_tokenize(m, NULL, 0, a, 64, &na) == TY_OK && na == 1 && a[0] == 1, "empty chat");
    }

    /* a system message is joined to the last user message as "system\n\nuser" */
    {
        const char *sys = "You are a careful assistant. Answer briefly.";
        size_t ls = strlen(sys), lu = strlen(msgs[2].content);
        char *joined = malloc(ls + lu + 3);
        REQUIRE(joined, "oom");
        memcpy(joined, sys, ls);
        memcpy(joined + ls, "\n\n", 2);
        memcpy(joined + ls + 2, msgs[2].content, lu + 1);
        ty_chat_message with_sys[4] = {{"system", sys}, msgs[0], msgs[1], msgs[2]};
        ty_chat_message expect_msgs[3] = {msgs[0], msgs[1], {"user", joined}};
        ty_token a[512], b[512];
        int64_t na = -1, nb = -2;
        int rca = ty_chat_tokenize(m, with_sys, 4, a, 512, &na);
        int rcb = ty_chat_tokenize(m, expect_msgs, 3, b, 512, &nb);
        CHECK(rca == TY_OK && rcb == TY_OK, "system chat: %d %d", rca, rcb);
        CHECK(na == nb && na > 163 && memcmp(a, b, sizeof *a * (size_t)(na > 0 ? na : 0)) == 0,
              "system joined to the last user message: %lld vs %lld ids", (long long)na, (long long)nb);
        /* the first user turn is untouched: the prefix up to the second [INST] equals the fixture's */
        int64_t second_inst = -1;
        for (int64_t i = 2; i < na && second_inst < 0; i++)
            if (a[i] == 3) second_inst = i;
        CHECK(second_inst == 135 && ref[135] == 3 && memcmp(a, ref, sizeof *a * 136) == 0,
              "first turn changed by the system message (second [INST] at %lld)", (long long)second_inst);
        /* the system message may come anywhere; it still goes to the last user message */
        ty_chat_message sys_mid[4] = {msgs[0], {"system", sys}, msgs[1], msgs[2]};
        int64_t nc = -1;
        ty_token c2[512];
        CHECK(ty_chat_tokenize(m, sys_mid, 4, c2, 512, &nc) == TY_OK && nc == nb &&
                  memcmp(c2, b, sizeof *b * (size_t)(nb > 0 ? nb : 0)) == 0,
              "system message in the middle");
        free(joined);
    }

    /* buffer too small: needed size reported, nothing written beyond cap */
    {
        ty_token buf[200];
        for (int i = 0; i < 200; i++) buf[i] = -7;
        int64_t need = -1;
        rc = ty_chat_tokenize(m, msgs, 3, buf, 100, &need);
        CHECK(rc == TY_ERR_BUFFER_TOO_SMALL, "small buffer: %s", ty_status_string(rc));
        CHECK(need == 163, "small buffer: needed %lld", (long long)need);
        int clobbered = 0;
        for (int i = 100; i < 200; i++) clobbered |= buf[i] != -7;
        CHECK(!clobbered, "chat wrote beyond cap");
        CHECK(ty_model_errmsg(m)[0] != 0, "no message for a small buffer");
        need = -1;
        need = -1;
        rc = ty_chat_tokenize(m, msgs, 3, buf, 162, &need); /* one short */
        clobbered = 0;
        for (int i = 162; i < 200; i++) clobbered |= buf[i] != -7;
        CHECK(rc == TY_ERR_BUFFER_TOO_SMALL && need == 163 && !clobbered, "chat buffer one short: %s",
              ty_status_string(rc));
        need = -1;
        rc = ty_chat_tokenize(m, msgs, 3, NULL, 0, &need);
        CHECK(rc == TY_ERR_BUFFER_TOO_SMALL && need == 163, "size query: %s %lld", ty_status_string(rc),
              (long long)need);
        rc = ty_chat_tokenize(m, msgs, 3, buf, 163, &need);
        CHECK(rc == TY_OK && need == 163 && memcmp(buf, ref, sizeof ref) == 0 && buf[163] == -7,
              "exact-size buffer: %s", ty_status_string(rc));
    }

    /* invalid role, missing content, bad arguments */
    {
        ty_chat_message bad[2] = {{"user", "hi"}, {"robot", "beep"}};
        int64_t nn = 0;
        ty_token buf[64];
        rc = ty_chat_tokenize(m, bad, 2, buf, 64, &nn);
        CHECK(rc == TY_ERR_INVALID_ARG, "invalid role: %s", ty_status_string(rc));
        const char *msg = ty_model_errmsg(m);
        CHECK(msg && strstr(msg, "robot") && !strchr(msg, '\n'), "invalid role message: '%s'", msg ? msg : "(null)");
        ty_chat_message badutf8[2] = {{"user", "ok"}, {"assistant", "bad \xff byte"}};
        CHECK(ty_chat_tokenize(m, badutf8, 2, buf, 64, &nn) == TY_ERR_UTF8 && ty_model_errmsg(m)[0],
              "invalid UTF-8 in a message");
        ty_chat_message nocontent = {"user", NULL}, norole = {NULL, "x"};
        CHECK(ty_chat_tokenize(m, &nocontent, 1, buf, 64, &nn) == TY_ERR_INVALID_ARG, "NULL content");
        CHECK(ty_chat_tokenize(m, &norole, 1, buf, 64, &nn) == TY_ERR_INVALID_ARG, "NULL role");
        CHECK(ty_chat_tokenize(NULL, msgs, 3, buf, 64, &nn) == TY_ERR_INVALID_ARG, "NULL model");
        CHECK(ty_chat_tokenize(m, msgs, 3, buf, 64, NULL) == TY_ERR_INVALID_ARG, "NULL n_ids");
        CHECK(ty_chat_tokenize(m, msgs, -1, buf, 64, &nn) == TY_ERR_INVALID_ARG, "negative n_msgs");
    }
    ty_model_close(m);

    /* a vocabulary without an [INST] control token gets the layout as text */
    m = open_model(HD128);
    if (m) {
        ty_chat_message one = {"user", "the cat"};
        ty_token a[128], b[128];
        int64_t na = -1, nb = tokenize(m, "[INST] the cat [/INST]", TY_TOKENIZE_ADD_BOS, b, 128);
        CHECK(ty_chat_tokenize(m, &one, 1, a, 128, &na) == TY_OK && na == nb && nb > 1 &&
                  memcmp(a, b, sizeof *a * (size_t)nb) == 0,
              "text-form chat on a vocabulary without [INST]: %lld vs %lld", (long long)na, (long long)nb);
        ty_model_close(m);
    } else {
        CHECK(0, "tiny-hd128 did not open");
    }
    json_free(doc);
    return 0;
}

/* ---- 2. tokenizer calls --------------------------------------------------------------------- */

static int test_tokenize(void) {
    ty_model *m = open_model(E2E);
    REQUIRE(m, "tiny-e2e-f16");
    const int64_t V = ty_n_vocab(m);
    CHECK(V == 32768, "n_vocab %lld", (long long)V);
    CHECK(ty_token_bos(m) == 1 && ty_token_eos(m) == 2, "bos %d eos %d", ty_token_bos(m), ty_token_eos(m));
    ty_token ids[256];
    int64_t n = -1;

    /* the fixture's short_en case: [1] + sp.encode(text) */
    {
        static const ty_token ref[13] = {1, 1183, 3704, 9828, 1053, 1910, 1229, 11343, 1522, 1040, 18666, 4682, 29491};
        char err[256];
        json *doc = json_parse_file(FIX "cases.json", err, sizeof err);
        const char *text = json_str(json_get(json_at(json_get(json_get(json_get(doc, "models"), "tiny-e2e"), "cases"), 0), "text"));
        CHECK(text != NULL, "no short_en text");
        if (text) {
            n = tokenize(m, text, TY_TOKENIZE_ADD_BOS, ids, 256);
            CHECK(n == 13 && memcmp(ids, ref, sizeof ref) == 0, "short_en: %lld ids", (long long)n);
            n = tokenize(m, text, 0, ids, 256);
            CHECK(n == 12 && memcmp(ids, ref + 1, sizeof ref - sizeof *ref) == 0, "short_en without BOS");
        }
        json_free(doc);
    }

    /* flags */
    n = tokenize(m, "[INST]", TY_TOKENIZE_PARSE_SPECIAL, ids, 256);
    CHECK(n == 1 && ids[0] == 3, "[INST] parsed: %lld ids, first %d", (long long)n, ids[0]);
    n = tokenize(m, "[INST]", TY_TOKENIZE_PARSE_SPECIAL | TY_TOKENIZE_ADD_BOS, ids, 256);
    CHECK(n == 2 && ids[0] == 1 && ids[1] == 3, "BOS + [INST]: %lld ids", (long long)n);
    n = tokenize(m, "[INST]", 0, ids, 256);
    {
        int has3 = 0;
        for (int64_t i = 0; i < n; i++) has3 |= ids[i] == 3;
        CHECK(n > 1 && !has3, "[INST] as text: %lld ids", (long long)n);
    }
    n = tokenize(m, "", 0, ids, 256);
    CHECK(n == 0, "empty text: %lld ids", (long long)n);
    n = tokenize(m, "", TY_TOKENIZE_ADD_BOS, ids, 256);
    CHECK(n == 1 && ids[0] == 1, "empty text + BOS: %lld ids", (long long)n);
    n = -1;
    CHECK(ty_tokenize(m, NULL, 0, 0, NULL, 0, &n) == TY_OK && n == 0, "NULL text of length 0");

    /* buffer too small */
    {
        const char *s = "The quick brown fox jumps over the lazy dog.";
        int64_t need = tokenize(m, s, TY_TOKENIZE_ADD_BOS, ids, 256);
        CHECK(need > 5, "fox: %lld", (long long)need);
        ty_token buf[64];
        for (int i = 0; i < 64; i++) buf[i] = -9;
        n = -1;
        int rc = ty_tokenize(m, s, strlen(s), TY_TOKENIZE_ADD_BOS, buf, 3, &n);
        CHECK(rc == TY_ERR_BUFFER_TOO_SMALL && n == need, "small buffer: %s, %lld", ty_status_string(rc), (long long)n);
        int clobbered = 0;
        for (int i = 3; i < 64; i++) clobbered |= buf[i] != -9;
        CHECK(!clobbered, "tokenize wrote beyond cap");
        for (int i = 0; i < 64; i++) buf[i] = -9;
        rc = ty_tokenize(m, s, strlen(s), TY_TOKENIZE_ADD_BOS, buf, need - 1, &n); /* one short */
        clobbered = 0;
        for (int64_t i = need - 1; i < 64; i++) clobbered |= buf[i] != -9;
        CHECK(rc == TY_ERR_BUFFER_TOO_SMALL && n == need && !clobbered, "buffer one short: %s", ty_status_string(rc));
        rc = ty_tokenize(m, s, strlen(s), TY_TOKENIZE_ADD_BOS, NULL, 0, &n);
        CHECK(rc == TY_ERR_BUFFER_TOO_SMALL && n == need, "size query");
        rc = ty_tokenize(m, s, strlen(s), TY_TOKENIZE_ADD_BOS, buf, need, &n);
        CHECK(rc == TY_OK && n == need && memcmp(buf, ids, sizeof *buf * (size_t)need) == 0 && buf[need] == -9,
              "exact-size buffer");
        CHECK(ty_tokenize(m, s, strlen(s), 0, buf, -1, &n) == TY_ERR_INVALID_ARG, "negative cap");
        CHECK(ty_tokenize(m, s, strlen(s), 0, buf, 64, NULL) == TY_ERR_INVALID_ARG, "NULL n_ids");
        CHECK(ty_tokenize(NULL, s, strlen(s), 0, buf, 64, &n) == TY_ERR_INVALID_ARG, "NULL model");
    }

    /* invalid UTF-8 */
    {
        static const char *bad[] = {"abc\xff", "\xc3", "caf\xc3\x28", "\xed\xa0\x80", "\xc0\xaf", "x\xf5\x80\x80\x80"};
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
            int rc = ty_tokenize(m, bad[i], strlen(bad[i]), TY_TOKENIZE_ADD_BOS, ids, 256, &n);
            CHECK(rc == TY_ERR_UTF8, "invalid UTF-8 #%zu: %s", i, ty_status_string(rc));
            CHECK(ty_model_errmsg(m)[0] != 0, "no message for invalid UTF-8 #%zu", i);
        }
        /* an embedded NUL is valid UTF-8: len, not strlen, counts */
        int rc = ty_tokenize(m, "a\0b", 3, 0, ids, 256, &n);
        CHECK(rc == TY_OK && n >= 2, "embedded NUL: %s", ty_status_string(rc));
    }

    /* pieces and detokenize round trip */
    {
        static const char *texts[] = {"Hello world", "naïve café, 東京 and Zürich!", "x = f(a, b) + 42;",
                                      "emoji 🙂 and 𝔸 fallback", "tabs\tand\nnewlines"};
        for (size_t k = 0; k < sizeof texts / sizeof texts[0]; k++) {
            const char *s = texts[k];
            n = tokenize(m, s, TY_TOKENIZE_ADD_BOS, ids, 256);
            CHECK(n > 1 && ids[0] == 1, "tokenize '%s'", s);
            if (n <= 1) continue;
            char out[512];
            size_t nb = 0;
            int rc = ty_detokenize(m, ids, n, out, sizeof out, &nb);
            CHECK(rc == TY_OK && nb == strlen(s) && strcmp(out, s) == 0, "detokenize '%s' -> '%s'", s,
                  rc == TY_OK ? out : "");
            /* concatenated pieces (BOS gives "") = the text with the dummy-prefix space */
            char cat[512];
            size_t len = 0;
            int ok = 1;
            for (int64_t i = 0; i < n && ok; i++) {
                size_t pn = 0;
                ok = ty_token_to_piece(m, ids[i], 0, cat + len, sizeof cat - len, &pn) == TY_OK;
                len += pn;
            }
            CHECK(ok && len == strlen(s) + 1 && cat[0] == ' ' && memcmp(cat + 1, s, strlen(s)) == 0,
                  "pieces of '%s' (%zu bytes)", s, len);
        }
        size_t pn = 99;
        char buf[16];
        memset(buf, 'z', sizeof buf);
        CHECK(ty_token_to_piece(m, 3, 0, buf, sizeof buf, &pn) == TY_OK && pn == 0, "control piece not special");
        CHECK(ty_token_to_piece(m, 3, 1, buf, sizeof buf, &pn) == TY_OK && pn == 6 && memcmp(buf, "[INST]", 6) == 0,
              "control piece special");
        memset(buf, 'z', sizeof buf);
        CHECK(ty_token_to_piece(m, 3, 1, buf, 2, &pn) == TY_ERR_BUFFER_TOO_SMALL && pn == 6, "piece buffer too small");
        CHECK(buf[2] == 'z' && buf[3] == 'z', "piece wrote beyond cap");
        CHECK(ty_token_to_piece(m, -1, 0, buf, sizeof buf, &pn) == TY_ERR_INVALID_ARG, "piece of -1");
        CHECK(ty_token_to_piece(m, (ty_token)V, 0, buf, sizeof buf, &pn) == TY_ERR_INVALID_ARG, "piece of n_vocab");
        CHECK(ty_token_to_piece(m, 5, 0, buf, sizeof buf, NULL) == TY_ERR_INVALID_ARG, "piece NULL n_bytes");

        /* detokenize: control tokens dropped, buffer too small, ids out of range */
        static const ty_token seq[] = {1, 3, 22557, 4, 2};
        char out[64];
        size_t nb = 0;
        int rc = ty_detokenize(m, seq, 5, out, sizeof out, &nb);
        char piece[64];
        size_t np = 0;
        ty_token_to_piece(m, 22557, 0, piece, sizeof piece, &np);
        piece[np] = 0;
        const char *expect = piece[0] == ' ' ? piece + 1 : piece;
        CHECK(rc == TY_OK && strcmp(out, expect) == 0, "detokenize with control tokens: '%s' vs '%s'", out, expect);
        const char *s = "Hello world, again";
        n = tokenize(m, s, 0, ids, 256);
        memset(out, 'z', sizeof out);
        rc = ty_detokenize(m, ids, n, out, 6, &nb);
        CHECK(rc == TY_ERR_BUFFER_TOO_SMALL && nb == strlen(s), "detokenize small buffer: %s %zu", ty_status_string(rc), nb);
        CHECK(memcmp(out, "Hello", 5) == 0 && out[5] == 0 && out[6] == 'z', "detokenize truncated output");
        rc = ty_detokenize(m, ids, n, NULL, 0, &nb);
        CHECK(rc == TY_ERR_BUFFER_TOO_SMALL && nb == strlen(s), "detokenize size query");
        memset(out, 'z', sizeof out);
        rc = ty_detokenize(m, ids, n, out, strlen(s), &nb); /* no room for the NUL */
        CHECK(rc == TY_ERR_BUFFER_TOO_SMALL && nb == strlen(s) && out[strlen(s) - 1] == 0 && out[strlen(s)] == 'z' &&
                  memcmp(out, s, strlen(s) - 1) == 0,
              "detokenize without room for the NUL: %s", ty_status_string(rc));
        rc = ty_detokenize(m, ids, n, out, strlen(s) + 1, &nb);
        CHECK(rc == TY_OK && strcmp(out, s) == 0, "detokenize exact buffer");
        ty_token badid[] = {1, 5, (ty_token)V};
        CHECK(ty_detokenize(m, badid, 3, out, sizeof out, &nb) == TY_ERR_INVALID_ARG, "detokenize id n_vocab");
        badid[2] = -3;
        CHECK(ty_detokenize(m, badid, 3, out, sizeof out, &nb) == TY_ERR_INVALID_ARG, "detokenize id -3");
        CHECK(ty_detokenize(m, ids, 0, out, sizeof out, &nb) == TY_OK && nb == 0 && out[0] == 0, "detokenize nothing");
    }

    /* lookup */
    CHECK(ty_token_lookup(m, "[INST]") == 3, "lookup [INST]: %d", ty_token_lookup(m, "[INST]"));
    CHECK(ty_token_lookup(m, "[/INST]") == 4, "lookup [/INST]");
    CHECK(ty_token_lookup(m, "</s>") == 2 && ty_token_lookup(m, "<s>") == 1, "lookup </s> <s>");
    CHECK(ty_token_lookup(m, "hello") == -1, "lookup hello: %d", ty_token_lookup(m, "hello"));
    CHECK(ty_token_lookup(m, "\xe2\x96\x81the") == -1, "lookup of a normal piece");
    CHECK(ty_token_lookup(m, "[INST") == -1 && ty_token_lookup(m, "") == -1, "lookup of non-tokens");
    CHECK(ty_token_lookup(m, NULL) == -1 && ty_token_lookup(NULL, "[INST]") == -1, "lookup NULL");

    ty_model_close(m);
    return 0;
}

/* ---- 3. contexts ---------------------------------------------------------------------------- */

/* KV-cache consistency on one model: all-at-once vs one by one vs two chunks vs small batches,
 * truncate + re-evaluate. */
static int context_consistency(const char *path, int64_t n_tok, double tol) {
    ty_model *m = open_model(path);
    REQUIRE(m, "%s", path);
    const int64_t V = ty_n_vocab(m);
    ty_token *toks = malloc(sizeof *toks * (size_t)n_tok);
    float *all = malloc(sizeof(float) * (size_t)(n_tok * V));
    REQUIRE(toks && all, "oom");
    unsigned long long st = 12345;
    toks[0] = ty_token_bos(m);
    for (int64_t i = 1; i < n_tok; i++) toks[i] = (ty_token)(3 + test_rand_u64(&st) % (unsigned long long)(V - 3));

    ty_context *c = new_context(m, 64, 0);
    REQUIRE(c, "context");
    CHECK(ty_context_n_ctx(c) == 64 && ty_context_n_past(c) == 0, "n_ctx %lld", (long long)ty_context_n_ctx(c));
    const float *lg = NULL;
    CHECK(ty_context_logits(c, -1, &lg) == TY_ERR_INVALID_ARG, "logits before any eval");
    int rc = ty_context_eval(c, toks, n_tok, TY_LOGITS_ALL);
    REQUIRE(rc == TY_OK, "eval: %s %s", ty_status_string(rc), ty_context_errmsg(c));
    CHECK(ty_context_n_past(c) == n_tok, "n_past %lld", (long long)ty_context_n_past(c));
    for (int64_t i = 0; i < n_tok; i++) {
        rc = ty_context_logits(c, i, &lg);
        REQUIRE(rc == TY_OK, "logits %lld", (long long)i);
        memcpy(all + i * V, lg, sizeof(float) * (size_t)V);
    }
    const float *last = NULL;
    CHECK(ty_context_logits(c, -1, &last) == TY_OK && last == lg, "logits -1 is the last row");
    int finite = 1;
    for (int64_t i = 0; i < n_tok * V; i++) finite &= isfinite(all[i]) != 0;
    CHECK(finite, "non-finite logits");
    /* rows differ from each other (the positions matter) */
    CHECK(max_abs_diff(all, all + V, V) > 1e-3, "rows 0 and 1 equal");
    /* logits index errors */
    CHECK(ty_context_logits(c, n_tok, &lg) == TY_ERR_INVALID_ARG, "logits index n");
    CHECK(ty_context_logits(c, -2, &lg) == TY_ERR_INVALID_ARG, "logits index -2");
    CHECK(ty_context_logits(c, 0, NULL) == TY_ERR_INVALID_ARG, "logits NULL out");

    /* token by token in a fresh context */
    ty_context *c1 = new_context(m, 64, 0);
    REQUIRE(c1, "context");
    double worst = 0;
    for (int64_t i = 0; i < n_tok; i++) {
        rc = ty_context_eval(c1, toks + i, 1, TY_LOGITS_LAST);
        if (rc || ty_context_logits(c1, -1, &lg)) { worst = INFINITY; break; }
        double d = max_abs_diff(lg, all + i * V, V);
        if (!(d <= worst)) worst = d;
        /* with TY_LOGITS_LAST of one token, index 0 is that token */
        const float *l0 = NULL;
        if (ty_context_logits(c1, 0, &l0) || l0 != lg) worst = INFINITY;
    }
    CHECK(worst <= tol, "%s: token by token vs one batch: max abs %g", path, worst);
    CHECK(ty_context_n_past(c1) == n_tok, "n_past after token by token");

    /* two chunks */
    ty_context_truncate(c1, 0);
    CHECK(ty_context_n_past(c1) == 0, "truncate 0");
    CHECK(ty_context_logits(c1, -1, &lg) == TY_ERR_INVALID_ARG, "logits after truncate");
    int64_t k = n_tok / 3;
    rc = ty_context_eval(c1, toks, k, TY_LOGITS_LAST);
    CHECK(rc == TY_OK, "chunk 1");
    CHECK(ty_context_logits(c1, -1, &lg) == TY_OK && max_abs_diff(lg, all + (k - 1) * V, V) <= tol, "chunk 1 last logits");
    CHECK(ty_context_logits(c1, k - 1, &lg) == TY_OK, "LAST mode: index n-1 is allowed");
    CHECK(ty_context_logits(c1, 0, &lg) == TY_ERR_INVALID_ARG, "LAST mode: index 0 of %lld is an error", (long long)k);
    rc = ty_context_eval(c1, toks + k, n_tok - k, TY_LOGITS_ALL);
    CHECK(rc == TY_OK, "chunk 2");
    worst = 0;
    for (int64_t i = k; i < n_tok; i++) {
        if (ty_context_logits(c1, i - k, &lg)) { worst = INFINITY; break; }
        double d = max_abs_diff(lg, all + i * V, V);
        if (!(d <= worst)) worst = d;
    }
    CHECK(worst <= tol, "%s: two chunks vs one batch: max abs %g", path, worst);
    CHECK(ty_context_logits(c1, n_tok - k, &lg) == TY_ERR_INVALID_ARG, "index past chunk 2");

    /* truncate(k2) and re-evaluate tokens k2..: the same logits */
    int64_t k2 = n_tok / 2;
    CHECK(ty_context_truncate(c1, n_tok + 1) == TY_ERR_INVALID_ARG, "truncate beyond n_past");
    CHECK(ty_context_truncate(c1, -1) == TY_ERR_INVALID_ARG, "truncate -1");
    CHECK(ty_context_n_past(c1) == n_tok, "failed truncate changed n_past");
    CHECK(ty_context_truncate(c1, k2) == TY_OK && ty_context_n_past(c1) == k2, "truncate k2");
    rc = ty_context_eval(c1, toks + k2, n_tok - k2, TY_LOGITS_ALL);
    worst = rc ? INFINITY : 0;
    for (int64_t i = k2; i < n_tok && !rc; i++) {
        if (ty_context_logits(c1, i - k2, &lg)) { worst = INFINITY; break; }
        double d = max_abs_diff(lg, all + i * V, V);
        if (!(d <= worst)) worst = d;
    }
    CHECK(worst <= tol, "%s: truncate + re-eval: max abs %g", path, worst);
    /* truncate then evaluate different tokens, then truncate back and re-evaluate the originals:
     * the stale cache rows must not leak */
    ty_context_truncate(c1, k2);
    ty_token other[4] = {toks[1], toks[2], toks[3], toks[4]};
    CHECK(ty_context_eval(c1, other, 4, TY_LOGITS_LAST) == TY_OK, "eval other");
    ty_context_truncate(c1, k2);
    rc = ty_context_eval(c1, toks + k2, n_tok - k2, TY_LOGITS_LAST);
    CHECK(rc == TY_OK && ty_context_logits(c1, -1, &lg) == TY_OK &&
              max_abs_diff(lg, all + (n_tok - 1) * V, V) <= tol,
          "re-eval after overwriting the cache");

    /* n_batch smaller than the prompt */
    ty_context *c7 = new_context(m, 64, 7);
    REQUIRE(c7, "context n_batch 7");
    rc = ty_context_eval(c7, toks, n_tok, TY_LOGITS_ALL);
    worst = rc ? INFINITY : 0;
    for (int64_t i = 0; i < n_tok && !rc; i++) {
        if (ty_context_logits(c7, i, &lg)) { worst = INFINITY; break; }
        double d = max_abs_diff(lg, all + i * V, V);
        if (!(d <= worst)) worst = d;
    }
    CHECK(worst <= tol, "%s: n_batch 7 vs one batch: max abs %g", path, worst);
    CHECK(ty_context_n_past(c7) == n_tok, "n_past with n_batch 7");
    /* LAST mode over several batches gives the last row */
    ty_context_truncate(c7, 0);
    rc = ty_context_eval(c7, toks, n_tok, TY_LOGITS_LAST);
    CHECK(rc == TY_OK && ty_context_logits(c7, -1, &lg) == TY_OK && max_abs_diff(lg, all + (n_tok - 1) * V, V) <= tol,
          "n_batch 7, LAST mode");

    /* context full: n_past unchanged, a message naming the sizes */
    int64_t before = ty_context_n_past(c7);
    ty_token *many = malloc(sizeof *many * 80);
    REQUIRE(many, "oom");
    for (int i = 0; i < 80; i++) many[i] = toks[i % n_tok];
    rc = ty_context_eval(c7, many, 64 - before + 1, TY_LOGITS_LAST);
    CHECK(rc == TY_ERR_CONTEXT_FULL, "overflow: %s", ty_status_string(rc));
    CHECK(ty_context_n_past(c7) == before, "n_past changed by a failed eval");
    {
        char want_n[32], want_past[32];
        snprintf(want_n, sizeof want_n, "%lld", (long long)(64 - before + 1));
        snprintf(want_past, sizeof want_past, "%lld", (long long)before);
        const char *msg = ty_context_errmsg(c7);
        CHECK(msg && strstr(msg, want_n) && strstr(msg, want_past) && strstr(msg, "64") && !strchr(msg, '\n'),
              "context full message: '%s'", msg ? msg : "(null)");
    }
    /* the previous logits survive a failed eval */
    CHECK(ty_context_logits(c7, -1, &lg) == TY_OK && max_abs_diff(lg, all + (n_tok - 1) * V, V) <= tol,
          "logits after a failed eval");
    /* exactly filling works */
    rc = ty_context_eval(c7, many, 64 - before, TY_LOGITS_LAST);
    CHECK(rc == TY_OK && ty_context_n_past(c7) == 64, "fill to n_ctx: %s", ty_status_string(rc));
    rc = ty_context_eval(c7, many, 1, TY_LOGITS_LAST);
    CHECK(rc == TY_ERR_CONTEXT_FULL && ty_context_n_past(c7) == 64, "one more token into a full context");
    ty_context_truncate(c7, 0);
    rc = ty_context_eval(c7, many, 65, TY_LOGITS_ALL);
    CHECK(rc == TY_ERR_CONTEXT_FULL && ty_context_n_past(c7) == 0, "65 tokens into 64");
    free(many);

    /* bad tokens and arguments: INVALID_ARG, nothing evaluated */
    ty_context_truncate(c, 3);
    ty_token bad[3] = {toks[1], (ty_token)V, toks[2]};
    rc = ty_context_eval(c, bad, 3, TY_LOGITS_LAST);
    CHECK(rc == TY_ERR_INVALID_ARG && ty_context_n_past(c) == 3, "token id n_vocab: %s", ty_status_string(rc));
    CHECK(ty_context_errmsg(c)[0] != 0, "no message for a bad token");
    bad[1] = -1;
    CHECK(ty_context_eval(c, bad, 3, TY_LOGITS_LAST) == TY_ERR_INVALID_ARG && ty_context_n_past(c) == 3, "token id -1");
    CHECK(ty_context_eval(c, toks, 0, TY_LOGITS_LAST) == TY_ERR_INVALID_ARG, "eval of 0 tokens");
    CHECK(ty_context_eval(c, NULL, 2, TY_LOGITS_LAST) == TY_ERR_INVALID_ARG, "eval of NULL");
    CHECK(ty_context_eval(NULL, toks, 2, TY_LOGITS_LAST) == TY_ERR_INVALID_ARG, "eval on NULL context");
    CHECK(ty_context_n_past(c) == 3, "n_past after bad evals");
    /* and the cache still continues correctly from position 3 */
    rc = ty_context_eval(c, toks + 3, n_tok - 3, TY_LOGITS_LAST);
    CHECK(rc == TY_OK && ty_context_logits(c, -1, &lg) == TY_OK && max_abs_diff(lg, all + (n_tok - 1) * V, V) <= tol,
          "continue after bad evals");

    ty_context_free(c7);
    ty_context_free(c1);
    ty_context_free(c);
    free(all);
    free(toks);
    ty_model_close(m);
    return 0;
}

static int test_context(void) {
    int r = context_consistency(HD128, 40, 1e-5);
    r |= context_consistency(BUILTIN, 24, 1e-5);

    ty_model *m = open_model(HD128);
    REQUIRE(m, "hd128");
    ty_model_info info;
    CHECK(ty_model_get_info(m, &info) == TY_OK && info.n_vocab == 512 && info.n_layer == 2 && info.head_dim == 128,
          "hd128 info");
    ty_context *c = new_context(m, 0, 0);
    REQUIRE(c, "default context");
    int64_t want = info.n_ctx_train < 4096 ? info.n_ctx_train : 4096;
    CHECK(ty_context_n_ctx(c) == want, "default n_ctx %lld, expected %lld", (long long)ty_context_n_ctx(c),
          (long long)want);
    ty_context_free(c);
    c = new_context(m, 5, 100); /* n_batch > n_ctx is fine */
    CHECK(c && ty_context_n_ctx(c) == 5, "n_ctx 5");
    ty_token t[6] = {1, 10, 20, 30, 40, 50};
    CHECK(c && ty_context_eval(c, t, 5, TY_LOGITS_ALL) == TY_OK && ty_context_n_past(c) == 5, "fill 5");
    CHECK(c && ty_context_eval(c, t + 5, 1, TY_LOGITS_ALL) == TY_ERR_CONTEXT_FULL, "6th token");
    ty_context_free(c);
    ty_context_params p = ty_context_default_params();
    p.n_ctx = -1;
    char *err = NULL;
    c = NULL;
    CHECK(ty_context_new(m, &p, &c, &err) == TY_ERR_INVALID_ARG && !c && err && err[0], "n_ctx -1");
    ty_free(err);
    err = NULL;
    CHECK(ty_context_new(NULL, NULL, &c, &err) == TY_ERR_INVALID_ARG && err, "context of NULL model");
    ty_free(err);
    CHECK(ty_context_new(m, NULL, NULL, NULL) == TY_ERR_INVALID_ARG, "context NULL out");
    CHECK(ty_context_n_ctx(NULL) == 0 && ty_context_n_past(NULL) == 0 && ty_context_errmsg(NULL) != NULL, "NULL ctx");
    CHECK(ty_context_truncate(NULL, 0) == TY_ERR_INVALID_ARG, "truncate NULL");
    ty_context_free(NULL);
    ty_model_close(m);
    return r;
}

/* ---- 4. sampler ----------------------------------------------------------------------------- */

static ty_sampler *sampler(float temp, int32_t top_k, float top_p, float min_p, float rp, uint64_t seed) {
    ty_sampler_params p = ty_sampler_default_params();
    p.temperature = temp;
    p.top_k = top_k;
    p.top_p = top_p;
    p.min_p = min_p;
    p.repeat_penalty = rp;
    p.seed = seed;
    ty_sampler *s = NULL;
    if (ty_sampler_new(&p, &s)) return NULL;
    return s;
}

static void softmax_ref(const float *l, int n, double t, double *p) {
    double mx = -INFINITY, sum = 0;
    for (int i = 0; i < n; i++) mx = l[i] > mx ? l[i] : mx;
    for (int i = 0; i < n; i++) sum += p[i] = exp((l[i] - mx) / t);
    for (int i = 0; i < n; i++) p[i] /= sum;
}

static double chi2_test(float temp, int32_t top_k, const float *l, int n, const double *p, int trials, uint64_t seed) {
    ty_sampler *s = sampler(temp, top_k, 1.0f, 0.0f, 1.0f, seed);
    if (!s) return INFINITY;
    long cnt[16] = {0};
    for (int t = 0; t < trials; t++) {
        ty_token tok = -1;
        if (ty_sampler_sample(s, l, n, &tok) || tok < 0 || tok >= n) { ty_sampler_free(s); return INFINITY; }
        cnt[tok]++;
    }
    ty_sampler_free(s);
    double chi2 = 0;
    for (int i = 0; i < n; i++) {
        double e = p[i] * trials;
        if (e == 0) { if (cnt[i]) return INFINITY; continue; }
        chi2 += (cnt[i] - e) * (cnt[i] - e) / e;
    }
    return chi2;
}

static int test_sampler(void) {
    unsigned long long st = 777;
    enum { NV = 1000 };
    float *l = malloc(sizeof *l * NV);
    REQUIRE(l, "oom");
    ty_token tok;

    /* temperature 0 -> argmax; top_k 1 -> argmax at any temperature */
    {
        ty_sampler *g = sampler(0.0f, 40, 0.95f, 0.05f, 1.0f, 1);
        ty_sampler *gneg = sampler(-1.0f, 0, 1.0f, 0.0f, 1.0f, 1);
        ty_sampler *k1[4] = {sampler(0.5f, 1, 1.0f, 0.0f, 1.0f, 2), sampler(1.0f, 1, 1.0f, 0.0f, 1.0f, 3),
                             sampler(5.0f, 1, 1.0f, 0.0f, 1.0f, 4), sampler(1000.0f, 1, 1.0f, 0.0f, 1.0f, 5)};
        REQUIRE(g && gneg && k1[0] && k1[1] && k1[2] && k1[3], "sampler_new");
        int bad_g = 0, bad_k = 0;
        for (int t = 0; t < 300; t++) {
            for (int i = 0; i < NV; i++) l[i] = 4.0f * test_rand_uniform(&st);
            ty_token best = (ty_token)argmax_f(l, NV);
            bad_g += ty_sampler_sample(g, l, NV, &tok) != TY_OK || tok != best;
            bad_g += ty_sampler_sample(gneg, l, NV, &tok) != TY_OK || tok != best;
            for (int j = 0; j < 4; j++) bad_k += ty_sampler_sample(k1[j], l, NV, &tok) != TY_OK || tok != best;
        }
        CHECK(bad_g == 0, "temperature 0: %d non-argmax picks", bad_g);
        CHECK(bad_k == 0, "top_k 1: %d non-argmax picks", bad_k);
        /* a small vocabulary with the max at the end and at the start */
        float a[3] = {0.1f, 0.2f, 0.3f}, b[3] = {0.3f, 0.2f, 0.1f};
        CHECK(ty_sampler_sample(g, a, 3, &tok) == TY_OK && tok == 2, "argmax at the end");
        CHECK(ty_sampler_sample(g, b, 3, &tok) == TY_OK && tok == 0, "argmax at the start");
        ty_sampler_free(g);
        ty_sampler_free(gneg);
        for (int j = 0; j < 4; j++) ty_sampler_free(k1[j]);
    }

    /* seeds: same seed, same sequence; different seeds, different sequences */
    {
        for (int i = 0; i < 100; i++) l[i] = 0.3f * test_rand_uniform(&st);
        enum { NS = 10, LEN = 64 };
        ty_token seqs[NS][LEN];
        int ok = 1;
        for (int k = 0; k < NS; k++) {
            ty_sampler *s = sampler(1.0f, 0, 1.0f, 0.0f, 1.0f, 1000 + (uint64_t)k);
            ok &= s != NULL;
            for (int t = 0; t < LEN && s; t++) ok &= ty_sampler_sample(s, l, 100, &seqs[k][t]) == TY_OK;
            ty_sampler_free(s);
        }
        CHECK(ok, "sampling for the seed test");
        ty_sampler *s = sampler(1.0f, 0, 1.0f, 0.0f, 1.0f, 1000);
        int same = s != NULL;
        for (int t = 0; t < LEN && s; t++) same &= ty_sampler_sample(s, l, 100, &tok) == TY_OK && tok == seqs[0][t];
        ty_sampler_free(s);
        CHECK(same, "same seed gave a different sequence");
        int n_equal_pairs = 0, distinct = 0;
        for (int a = 0; a < NS; a++)
            for (int b = a + 1; b < NS; b++) n_equal_pairs += memcmp(seqs[a], seqs[b], sizeof seqs[a]) == 0;
        {
            int seen[100] = {0};
            for (int t = 0; t < LEN; t++) distinct += !seen[seqs[0][t]]++;
        }
        CHECK(n_equal_pairs == 0, "%d pairs of seeds gave the same sequence", n_equal_pairs);
        CHECK(distinct > 20, "a near-flat distribution gave only %d distinct tokens in %d draws", distinct, LEN);
    }

    /* statistics: temperature 1 (and 2), no filters: frequencies match softmax */
    {
        float f[5] = {1.0f, 0.5f, 0.0f, -0.5f, 2.0f};
        double p[5];
        softmax_ref(f, 5, 1.0, p);
        double chi = chi2_test(1.0f, 0, f, 5, p, 20000, 42);
        CHECK(chi < 20, "chi2 at temperature 1: %g (4 dof)", chi);
        softmax_ref(f, 5, 2.0, p);
        chi = chi2_test(2.0f, 0, f, 5, p, 20000, 43);
        CHECK(chi < 20, "chi2 at temperature 2: %g (4 dof)", chi);
        softmax_ref(f, 5, 0.5, p);
        chi = chi2_test(0.5f, 0, f, 5, p, 20000, 44);
        CHECK(chi < 20, "chi2 at temperature 0.5: %g (4 dof)", chi);
        /* top_k 2: renormalised over the two best */
        double q[5] = {0};
        double z = exp(2.0) + exp(1.0);
        q[4] = exp(2.0) / z;
        q[0] = exp(1.0) / z;
        chi = chi2_test(1.0f, 2, f, 5, q, 20000, 45);
        CHECK(chi < 11, "chi2 with top_k 2: %g (1 dof)", chi);
        /* a wrong distribution would fail the same bound (the test has power) */
        double wrong[5] = {0.2, 0.2, 0.2, 0.2, 0.2};
        chi = chi2_test(1.0f, 0, f, 5, wrong, 20000, 42);
        CHECK(chi > 100, "chi2 against a uniform distribution only %g", chi);
    }

    /* top_p 0.5: only the smallest set reaching 0.5 */
    {
        float f[10];
        for (int i = 0; i < 10; i++) f[i] = 0.7f * test_rand_uniform(&st) * 3;
        double p[10];
        softmax_ref(f, 10, 1.0, p);
        int order[10];
        for (int i = 0; i < 10; i++) order[i] = i;
        for (int i = 0; i < 10; i++)
            for (int j = i + 1; j < 10; j++)
                if (p[order[j]] > p[order[i]]) { int t = order[i]; order[i] = order[j]; order[j] = t; }
        int allowed[10] = {0}, n_allowed = 0;
        double cum = 0;
        for (int i = 0; i < 10 && cum < 0.5; i++) { cum += p[order[i]]; allowed[order[i]] = 1; n_allowed++; }
        ty_sampler *s = sampler(1.0f, 0, 0.5f, 0.0f, 1.0f, 9);
        REQUIRE(s, "top_p sampler");
        int outside = 0, hits[10] = {0};
        for (int t = 0; t < 5000; t++) {
            if (ty_sampler_sample(s, f, 10, &tok) || tok < 0 || tok >= 10) { outside++; continue; }
            outside += !allowed[tok];
            hits[tok]++;
        }
        ty_sampler_free(s);
        int n_hit = 0;
        for (int i = 0; i < 10; i++) n_hit += hits[i] > 0;
        CHECK(outside == 0, "top_p 0.5: %d picks outside the nucleus", outside);
        CHECK(n_allowed >= 2 && n_hit == n_allowed, "top_p 0.5: %d of %d nucleus tokens drawn", n_hit, n_allowed);
    }

    /* min_p 0.2: never a token with p < 0.2 p_max */
    {
        /* p / p_max = exp(l - 3): 0.2 at l = 1.391, so 1.4 (0.202) stays and 1.35 (0.192) goes */
        float f[8] = {3.0f, 2.5f, 2.0f, 1.5f, 1.4f, 1.35f, 1.0f, -1.0f};
        ty_sampler *s = sampler(1.0f, 0, 1.0f, 0.2f, 1.0f, 11);
        REQUIRE(s, "min_p sampler");
        int outside = 0, hits[8] = {0};
        for (int t = 0; t < 5000; t++) {
            if (ty_sampler_sample(s, f, 8, &tok) || tok < 0 || tok >= 8) { outside++; continue; }
            outside += exp(f[tok] - f[0]) < 0.2;
            hits[tok]++;
        }
        ty_sampler_free(s);
        CHECK(outside == 0, "min_p 0.2: %d picks below the floor", outside);
        CHECK(hits[0] && hits[1] && hits[2] && hits[3] && hits[4], "min_p 0.2: allowed tokens not all drawn");
    }

    /* repetition penalty */
    {
        ty_sampler_params p = ty_sampler_default_params();
        p.temperature = 0;
        p.repeat_penalty = 1.1f;
        p.repeat_last_n = 4;
        ty_sampler *s = NULL;
        REQUIRE(ty_sampler_new(&p, &s) == TY_OK, "penalty sampler");
        float pos[4] = {2.0f, 1.9f, 0.0f, -3.0f}; /* 2.0 / 1.1 = 1.818 < 1.9 */
        CHECK(ty_sampler_sample(s, pos, 4, &tok) == TY_OK && tok == 0, "before accept");
        ty_sampler_accept(s, 0);
        CHECK(ty_sampler_sample(s, pos, 4, &tok) == TY_OK && tok == 1, "positive logit divided: picked %d", tok);
        float posbig[4] = {2.0f, 1.7f, 0.0f, -3.0f}; /* 1.818 > 1.7: still token 0 */
        CHECK(ty_sampler_sample(s, posbig, 4, &tok) == TY_OK && tok == 0, "margin too large: picked %d", tok);
        ty_sampler_accept(s, 0); /* a repeated token is penalised once: 1.818 (not 1.65) > 1.7 */
        CHECK(ty_sampler_sample(s, posbig, 4, &tok) == TY_OK && tok == 0, "penalised twice: picked %d", tok);
        float neg[4] = {-1.0f, -1.05f, -4.0f, -5.0f}; /* -1.0 * 1.1 = -1.1 < -1.05 */
        CHECK(ty_sampler_sample(s, neg, 4, &tok) == TY_OK && tok == 1, "negative logit multiplied: picked %d", tok);
        /* the window: after 4 other tokens, token 0 is no longer penalised */
        for (int i = 0; i < 4; i++) ty_sampler_accept(s, 3);
        CHECK(ty_sampler_sample(s, pos, 4, &tok) == TY_OK && tok == 0, "penalty outside the window: picked %d", tok);
        /* the input logits are not modified */
        CHECK(pos[0] == 2.0f && neg[0] == -1.0f, "sampler modified the logits");
        ty_sampler_accept(s, 1000); /* out of the vocabulary: ignored */
        CHECK(ty_sampler_sample(s, pos, 4, &tok) == TY_OK, "sample after an out-of-range accept");
        ty_sampler_free(s);
    }

    /* NaN logits are never chosen */
    {
        float f[6] = {NAN, 1.0f, NAN, 0.5f, -2.0f, NAN};
        ty_sampler *g = sampler(0.0f, 0, 1.0f, 0.0f, 1.0f, 1);
        ty_sampler *s = sampler(1.0f, 0, 1.0f, 0.0f, 1.0f, 2);
        ty_sampler *d = sampler(0.8f, 40, 0.95f, 0.05f, 1.0f, 3);
        REQUIRE(g && s && d, "samplers");
        int bad = 0;
        for (int t = 0; t < 3000; t++) {
            ty_token a = -1, b = -1, c2 = -1;
            bad += ty_sampler_sample(g, f, 6, &a) || a != 1;
            bad += ty_sampler_sample(s, f, 6, &b) || b < 0 || b >= 6 || f[b] != f[b];
            bad += ty_sampler_sample(d, f, 6, &c2) || c2 < 0 || c2 >= 6 || f[c2] != f[c2];
        }
        CHECK(bad == 0, "NaN logits chosen %d times", bad);
        ty_sampler_free(g);
        ty_sampler_free(s);
        ty_sampler_free(d);
    }

    /* an infinite logit: that token always (the softmax must not become NaN) */
    {
        float f[4] = {1.0f, INFINITY, 0.5f, -2.0f};
        static const float tp[3] = {1.0f, 0.9f, 1.0f}, mp[3] = {0.0f, 0.0f, 0.05f};
        int bad = 0;
        for (int k = 0; k < 3; k++) {
            ty_sampler *s = sampler(1.0f, 0, tp[k], mp[k], 1.0f, 5 + (uint64_t)k);
            REQUIRE(s, "sampler");
            for (int t = 0; t < 200; t++) bad += ty_sampler_sample(s, f, 4, &tok) != TY_OK || tok != 1;
            ty_sampler_free(s);
        }
        CHECK(bad == 0, "+inf logit not chosen %d times of 600", bad);
    }

    /* invalid parameters and arguments */
    {
        ty_sampler_params p = ty_sampler_default_params();
        ty_sampler *s = (ty_sampler *)&p; /* must be set to NULL on failure */
        p.temperature = NAN;
        CHECK(ty_sampler_new(&p, &s) == TY_ERR_INVALID_ARG && s == NULL, "NaN temperature");
        p = ty_sampler_default_params();
        p.repeat_penalty = 0;
        CHECK(ty_sampler_new(&p, &s) == TY_ERR_INVALID_ARG, "repeat_penalty 0");
        p.repeat_penalty = -1;
        CHECK(ty_sampler_new(&p, &s) == TY_ERR_INVALID_ARG, "repeat_penalty -1");
        p.repeat_penalty = NAN;
        CHECK(ty_sampler_new(&p, &s) == TY_ERR_INVALID_ARG, "repeat_penalty NaN");
        p = ty_sampler_default_params();
        p.top_p = NAN;
        CHECK(ty_sampler_new(&p, &s) == TY_ERR_INVALID_ARG, "top_p NaN");
        p = ty_sampler_default_params();
        p.min_p = NAN;
        CHECK(ty_sampler_new(&p, &s) == TY_ERR_INVALID_ARG, "min_p NaN");
        p = ty_sampler_default_params();
        p.repeat_last_n = -1;
        CHECK(ty_sampler_new(&p, &s) == TY_ERR_INVALID_ARG, "repeat_last_n -1");
        CHECK(ty_sampler_new(NULL, NULL) == TY_ERR_INVALID_ARG, "NULL out");
        CHECK(ty_sampler_new(NULL, &s) == TY_OK && s, "NULL params: defaults");
        CHECK(ty_sampler_sample(s, NULL, 10, &tok) == TY_ERR_INVALID_ARG, "NULL logits");
        CHECK(ty_sampler_sample(s, l, 0, &tok) == TY_ERR_INVALID_ARG, "n_vocab 0");
        CHECK(ty_sampler_sample(s, l, 10, NULL) == TY_ERR_INVALID_ARG, "NULL out token");
        CHECK(ty_sampler_sample(NULL, l, 10, &tok) == TY_ERR_INVALID_ARG, "NULL sampler");
        ty_sampler_accept(NULL, 1);
        ty_sampler_free(s);
        ty_sampler_free(NULL);
    }
    free(l);
    return 0;
}

/* ---- 5. generate ---------------------------------------------------------------------------- */

typedef struct collect {
    ty_token toks[512];
    int n, stop_after, bad_piece;
    const ty_model *m;
} collect;

static int collect_cb(void *user, ty_token token, const char *piece, size_t len) {
    collect *c = user;
    if (c->n < 512) c->toks[c->n] = token;
    c->n++;
    char buf[256];
    size_t n = 0;
    if (ty_token_to_piece(c->m, token, 0, buf, sizeof buf, &n) != TY_OK || n != len || (len && memcmp(buf, piece, len)))
        c->bad_piece++;
    return c->stop_after > 0 && c->n >= c->stop_after;
}

static int test_generate(void) {
    ty_model *m = open_model(BUILTIN);
    REQUIRE(m, "built-in model");
    const int64_t V = ty_n_vocab(m);
    const ty_token eos = ty_token_eos(m);
    ty_token prompt[64];
    const char *text = "The configuration file is read at startup. To change the port,";
    int64_t np = tokenize(m, text, TY_TOKENIZE_ADD_BOS, prompt, 64);
    REQUIRE(np > 5, "prompt");

    /* manual greedy loop */
    ty_context *c = new_context(m, 128, 0);
    REQUIRE(c, "context");
    ty_token manual[16];
    int n_manual = 0;
    const float *lg = NULL;
    int rc = ty_context_eval(c, prompt, np, TY_LOGITS_LAST);
    REQUIRE(rc == TY_OK, "eval prompt");
    while (n_manual < 16) {
        REQUIRE(ty_context_logits(c, -1, &lg) == TY_OK, "logits");
        ty_token t = (ty_token)argmax_f(lg, V);
        manual[n_manual++] = t;
        REQUIRE(ty_context_eval(c, &t, 1, TY_LOGITS_LAST) == TY_OK, "eval token");
        if (t == eos) break;
    }
    float *manual_next = malloc(sizeof(float) * (size_t)V);
    REQUIRE(manual_next && ty_context_logits(c, -1, &lg) == TY_OK, "logits");
    memcpy(manual_next, lg, sizeof(float) * (size_t)V);

    ty_sampler_params sp = ty_sampler_default_params();
    sp.temperature = 0;
    ty_sampler *g = NULL;
    REQUIRE(ty_sampler_new(&sp, &g) == TY_OK, "sampler");
    ty_context *c2 = new_context(m, 128, 0);
    REQUIRE(c2, "context");
    collect col = {.m = m};
    ty_generate_stats stats;
    memset(&stats, 0xff, sizeof stats);
    rc = ty_generate(c2, g, prompt, np, 16, collect_cb, &col, &stats);
    CHECK(rc == TY_OK, "generate: %s %s", ty_status_string(rc), ty_context_errmsg(c2));
    CHECK(stats.n_prompt == np && stats.n_generated == n_manual, "stats: prompt %lld generated %lld (manual %d)",
          (long long)stats.n_prompt, (long long)stats.n_generated, n_manual);
    int got_eos = n_manual > 0 && manual[n_manual - 1] == eos;
    CHECK(stats.stopped_by_eos == got_eos, "stopped_by_eos %d", stats.stopped_by_eos);
    CHECK(col.n == n_manual - got_eos && memcmp(col.toks, manual, sizeof *manual * (size_t)col.n) == 0,
          "generated tokens differ from the manual greedy loop (%d callbacks)", col.n);
    CHECK(col.bad_piece == 0, "%d callbacks with a wrong piece", col.bad_piece);
    CHECK(ty_context_n_past(c2) == np + stats.n_generated, "n_past %lld after generate, expected %lld",
          (long long)ty_context_n_past(c2), (long long)(np + stats.n_generated));
    CHECK(stats.prompt_seconds >= 0 && stats.generate_seconds >= 0, "times");
    /* the context continues from the last sampled token: its logits are the manual loop's */
    CHECK(ty_context_logits(c2, -1, &lg) == TY_OK && max_abs_diff(lg, manual_next, V) <= 1e-5,
          "logits after generate are not those after the last token");
    if (got_eos) fprintf(stderr, "note: the built-in model emitted EOS within 16 greedy tokens\n");

    /* generating 6 and then 10 more from an empty prompt = generating 16 */
    {
        ty_sampler *g2 = NULL;
        REQUIRE(ty_sampler_new(&sp, &g2) == TY_OK, "sampler");
        ty_context *c3 = new_context(m, 128, 0);
        REQUIRE(c3, "context");
        ty_generate_stats st2 = {0};
        collect a = {.m = m};
        CHECK(ty_generate(c3, g2, NULL, 0, 4, collect_cb, &a, &st2) == TY_ERR_INVALID_ARG,
              "empty prompt with no logits");
        CHECK(ty_context_n_past(c3) == 0 && a.n == 0, "nothing happened");
        rc = ty_generate(c3, g2, prompt, np, 6, collect_cb, &a, &st2);
        CHECK(rc == TY_OK && (st2.n_generated == 6 || st2.stopped_by_eos), "first part");
        if (!st2.stopped_by_eos) {
            rc = ty_generate(c3, g2, NULL, 0, 10, collect_cb, &a, &st2);
            CHECK(rc == TY_OK && st2.n_prompt == 0, "continuation: %s", ty_status_string(rc));
            CHECK(a.n == col.n && memcmp(a.toks, col.toks, sizeof *a.toks * (size_t)a.n) == 0,
                  "6 + 10 tokens differ from 16 (%d vs %d)", a.n, col.n);
            CHECK(ty_context_n_past(c3) == ty_context_n_past(c2), "n_past after the continuation");
        }
        ty_context_free(c3);
        ty_sampler_free(g2);
    }

    /* the callback stops generation */
    {
        ty_sampler *g3 = NULL;
        REQUIRE(ty_sampler_new(&sp, &g3) == TY_OK, "sampler");
        ty_context *c4 = new_context(m, 128, 0);
        REQUIRE(c4, "context");
        collect s5 = {.m = m, .stop_after = 5};
        ty_generate_stats st3 = {0};
        rc = ty_generate(c4, g3, prompt, np, 16, collect_cb, &s5, &st3);
        CHECK(rc == TY_OK, "stopped by the callback: %s", ty_status_string(rc));
        if (col.n >= 5) {
            CHECK(s5.n == 5 && st3.n_generated == 5 && !st3.stopped_by_eos, "callback stop: %d callbacks, %lld generated",
                  s5.n, (long long)st3.n_generated);
            CHECK(memcmp(s5.toks, col.toks, sizeof *col.toks * 5) == 0, "tokens before the stop");
        }
        CHECK(ty_context_n_past(c4) == np + st3.n_generated, "n_past %lld after a callback stop",
              (long long)ty_context_n_past(c4));
        /* n_predict 0: nothing generated */
        int64_t before = ty_context_n_past(c4);
        collect none = {.m = m};
        rc = ty_generate(c4, g3, NULL, 0, 0, collect_cb, &none, &st3);
        CHECK(rc == TY_OK && st3.n_generated == 0 && none.n == 0 && ty_context_n_past(c4) == before, "n_predict 0");
        /* stats may be NULL, cb may be NULL */
        rc = ty_generate(c4, g3, NULL, 0, 2, NULL, NULL, NULL);
        CHECK(rc == TY_OK && ty_context_n_past(c4) <= before + 2 && ty_context_n_past(c4) > before, "NULL cb/stats");
        ty_context_free(c4);
        ty_sampler_free(g3);
    }

    /* a prompt longer than the context; an answer that fills the context */
    {
        ty_sampler *g4 = NULL;
        REQUIRE(ty_sampler_new(&sp, &g4) == TY_OK, "sampler");
        ty_context *small = new_context(m, np - 1, 0);
        REQUIRE(small, "small context");
        ty_generate_stats st4 = {0};
        collect none = {.m = m};
        rc = ty_generate(small, g4, prompt, np, 4, collect_cb, &none, &st4);
        CHECK(rc == TY_ERR_CONTEXT_FULL && none.n == 0 && ty_context_n_past(small) == 0 && st4.n_generated == 0,
              "prompt longer than the context: %s", ty_status_string(rc));
        ty_context_free(small);

        int64_t n_ctx = np + 8;
        ty_context *fit = new_context(m, n_ctx, 0);
        REQUIRE(fit, "context");
        collect all = {.m = m};
        rc = ty_generate(fit, g4, prompt, np, -1, collect_cb, &all, &st4);
        CHECK(rc == TY_OK, "filling the context: %s %s", ty_status_string(rc), ty_context_errmsg(fit));
        if (!st4.stopped_by_eos) {
            CHECK(ty_context_n_past(fit) == n_ctx && st4.n_generated == 8 && all.n == 8,
                  "full context: n_past %lld, generated %lld", (long long)ty_context_n_past(fit),
                  (long long)st4.n_generated);
            CHECK(memcmp(all.toks, col.toks, sizeof *col.toks * 8) == 0, "tokens in the small context");
        } else {
            CHECK(ty_context_n_past(fit) == np + st4.n_generated, "EOS in the small context");
        }
        /* n_predict larger than the room left: also ends at n_ctx with TY_OK */
        ty_context_truncate(fit, 0);
        rc = ty_generate(fit, g4, prompt, np, 100, NULL, NULL, &st4);
        CHECK(rc == TY_OK && (st4.stopped_by_eos || ty_context_n_past(fit) == n_ctx), "n_predict past the end");
        /* a full context and an empty prompt: nothing to do, TY_OK */
        if (ty_context_n_past(fit) == n_ctx) {
            rc = ty_generate(fit, g4, NULL, 0, 5, NULL, NULL, &st4);
            CHECK(rc == TY_OK && st4.n_generated == 0 && ty_context_n_past(fit) == n_ctx, "generate on a full context");
            ty_token one = prompt[1];
            rc = ty_generate(fit, g4, &one, 1, 5, NULL, NULL, &st4);
            CHECK(rc == TY_ERR_CONTEXT_FULL && ty_context_n_past(fit) == n_ctx, "prompt into a full context");
        }
        ty_context_free(fit);
        ty_sampler_free(g4);
    }
    CHECK(ty_generate(NULL, g, prompt, np, 1, NULL, NULL, NULL) == TY_ERR_INVALID_ARG, "generate NULL ctx");
    CHECK(ty_generate(c2, NULL, prompt, np, 1, NULL, NULL, NULL) == TY_ERR_INVALID_ARG, "generate NULL sampler");
    CHECK(ty_generate(c2, g, NULL, 3, 1, NULL, NULL, NULL) == TY_ERR_INVALID_ARG, "generate NULL prompt");
    free(manual_next);
    ty_sampler_free(g);
    ty_context_free(c2);
    ty_context_free(c);
    ty_model_close(m);
    return 0;
}

/* ---- 6. model open ------------------------------------------------------------------------- */

static int test_open(void) {
    ty_model *m = (ty_model *)&m; /* must be reset to NULL on failure */
    char *err = NULL;
    int rc = ty_model_open(NULL, NULL, &m, &err);
    CHECK(rc == TY_ERR_INVALID_ARG && err && err[0] && !strchr(err, '\n'), "NULL path: %s", ty_status_string(rc));
    ty_free(err);
    err = NULL;
    rc = ty_model_open(E2E, NULL, NULL, &err);
    CHECK(rc == TY_ERR_INVALID_ARG && err && err[0], "NULL out: %s", ty_status_string(rc));
    ty_free(err);
    CHECK(ty_model_open(NULL, NULL, NULL, NULL) == TY_ERR_INVALID_ARG, "all NULL");

    err = NULL;
    m = (ty_model *)&m;
    const char *missing = "../shared/fixtures/gguf/does-not-exist.gguf";
    rc = ty_model_open(missing, NULL, &m, &err);
    CHECK(rc == TY_ERR_IO, "missing file: %s", ty_status_string(rc));
    CHECK(m == NULL, "out not reset on failure");
    CHECK(err && err[0] && !strchr(err, '\n') && strstr(err, "does-not-exist"), "missing file message: '%s'",
          err ? err : "(null)");
    ty_free(err);
    m = (ty_model *)&m;
    CHECK(ty_model_open(missing, NULL, &m, NULL) == TY_ERR_IO && m == NULL, "missing file without errmsg");
    err = NULL;
    CHECK(ty_model_open(".", NULL, &m, &err) != TY_OK && m == NULL && err && err[0], "a directory");
    ty_free(err);
    err = NULL;
    CHECK(ty_model_open(FIX "cases.json", NULL, &m, &err) == TY_ERR_FORMAT && m == NULL && err && !strchr(err, '\n'),
          "not a GGUF: %s", err ? err : "(null)");
    ty_free(err);

    /* devices */
    static const struct { const char *dev; int rc; } devs[] = {
        {"cuda", TY_ERR_DEVICE}, {"cuda:1", TY_ERR_DEVICE}, {"vulkan", TY_ERR_DEVICE}, {"metal", TY_ERR_DEVICE},
        {"tpu", TY_ERR_INVALID_ARG}, {"cudax", TY_ERR_INVALID_ARG}, {"CPU!", TY_ERR_INVALID_ARG},
        {"cpu", TY_OK}, {"auto", TY_OK}, {NULL, TY_OK}};
    for (size_t i = 0; i < sizeof devs / sizeof devs[0]; i++) {
        ty_model_params p = ty_model_default_params();
        p.device = devs[i].dev;
        p.n_threads = 2;
        err = NULL;
        m = NULL;
        rc = ty_model_open(E2E, &p, &m, &err);
        const char *d = devs[i].dev ? devs[i].dev : "(null)";
        CHECK(rc == devs[i].rc, "device %s: %s, expected %s", d, ty_status_string(rc), ty_status_string(devs[i].rc));
        if (rc) {
            CHECK(m == NULL && err && err[0] && !strchr(err, '\n') && strstr(err, devs[i].dev),
                  "device %s message: '%s'", d, err ? err : "(null)");
        } else {
            CHECK(m && !err, "device %s: handle", d);
            ty_context *c = m ? new_context(m, 16, 0) : NULL;
            ty_token t[2] = {1, 1183};
            const float *lg = NULL;
            CHECK(c && ty_context_eval(c, t, 2, TY_LOGITS_LAST) == TY_OK && ty_context_logits(c, -1, &lg) == TY_OK &&
                      isfinite(lg[0]),
                  "device %s: eval", d);
            ty_context_free(c);
        }
        ty_free(err);
        ty_model_close(m);
    }

    /* status strings, version, NULL-safe accessors */
    const char *names[12];
    int distinct = 1;
    for (int s = 0; s <= TY_ERR_INTERNAL; s++) {
        names[s] = ty_status_string(s);
        CHECK(names[s] && names[s][0], "status %d has no name", s);
        for (int j = 0; j < s; j++) distinct &= !(names[s] && names[j] && strcmp(names[s], names[j]) == 0);
    }
    CHECK(distinct, "status names not distinct");
    CHECK(ty_status_string(999) != NULL && ty_status_string(-1) != NULL, "unknown status");
    CHECK(strcmp(ty_version(), TY_VERSION) == 0, "version %s", ty_version());
    CHECK(ty_model_errmsg(NULL) != NULL && ty_n_vocab(NULL) == 0 && ty_token_bos(NULL) == -1, "NULL model accessors");
    ty_model_close(NULL);
    ty_free(NULL);

    m = open_model(E2E);
    REQUIRE(m, "e2e");
    ty_model_info info;
    CHECK(ty_model_get_info(m, &info) == TY_OK && info.n_vocab == 32768 && info.n_embd == 64 && info.n_layer == 2 &&
              info.n_head == 2 && info.n_head_kv == 1 && info.head_dim == 32 && info.n_ff == 256 &&
              strcmp(info.name, "Tiny E2E") == 0 && info.add_bos == 1 && info.add_eos == 0,
          "tiny-e2e info");
    CHECK(ty_model_errmsg(m) && ty_model_errmsg(m)[0] == 0, "fresh model has an error message");
    CHECK(ty_model_get_info(m, NULL) == TY_ERR_INVALID_ARG && ty_model_get_info(NULL, &info) == TY_ERR_INVALID_ARG,
          "get_info NULL");
    ty_tensor_info ti;
    CHECK(ty_model_tensor(m, 0, &ti) == TY_OK && ti.name && ti.nbytes > 0, "tensor 0");
    CHECK(ty_model_tensor(m, info.n_tensors, &ti) == TY_ERR_INVALID_ARG && ty_model_tensor(m, -1, &ti) == TY_ERR_INVALID_ARG,
          "tensor index out of range");
    ty_model_close(m);
    return 0;
}

/* A model shared by threads: failing tokenizer calls on all of them at once. Each must return its own
 * status, and the model's message must be one of the two whole messages afterwards (writes of the
 * error record raced before it was written under a lock). */
typedef struct tok_worker {
    ty_model *m;
    int kind; /* 0: a buffer too small; 1: invalid UTF-8 */
    int wrong;
} tok_worker;

static void *tok_worker_run(void *arg) {
    tok_worker *w = arg;
    const char *text = w->kind ? "caf\xc3 au lait, a rather longer text than the other" : "hello world";
    for (int i = 0; i < 3000; i++) {
        ty_token ids[1];
        int64_t n = 0;
        int rc = ty_tokenize(w->m, text, strlen(text), 0, ids, w->kind ? 64 : 0, &n);
        w->wrong += rc != (w->kind ? TY_ERR_UTF8 : TY_ERR_BUFFER_TOO_SMALL);
    }
    return NULL;
}

static int test_tokenize_threads(void) {
    ty_model *m = open_model(E2E);
    REQUIRE(m, "e2e");
    char msg[2][256];
    ty_token ids[64];
    int64_t n = 0;
    const char *bad = "caf\xc3 au lait, a rather longer text than the other";
    CHECK(ty_tokenize(m, "hello world", 11, 0, ids, 0, &n) == TY_ERR_BUFFER_TOO_SMALL, "small buffer");
    snprintf(msg[0], sizeof msg[0], "%s", ty_model_errmsg(m));
    CHECK(ty_tokenize(m, bad, strlen(bad), 0, ids, 64, &n) == TY_ERR_UTF8, "invalid UTF-8");
    snprintf(msg[1], sizeof msg[1], "%s", ty_model_errmsg(m));
    CHECK(strcmp(msg[0], msg[1]) != 0 && msg[0][0] && msg[1][0], "two distinct messages");
    pthread_t th[4];
    tok_worker w[4];
    for (int i = 0; i < 4; i++) {
        w[i] = (tok_worker){m, i % 2, 0};
        CHECK(pthread_create(&th[i], NULL, tok_worker_run, &w[i]) == 0, "thread %d", i);
    }
    for (int i = 0; i < 4; i++) pthread_join(th[i], NULL);
    for (int i = 0; i < 4; i++) CHECK(w[i].wrong == 0, "thread %d: %d wrong statuses", i, w[i].wrong);
    const char *last = ty_model_errmsg(m);
    CHECK(strcmp(last, msg[0]) == 0 || strcmp(last, msg[1]) == 0, "torn error message: '%s'", last);
    ty_model_close(m);
    return 0;
}

int main(void) {
    if (test_open()) check_failed++;
    if (test_tokenize_threads()) check_failed++;
    if (test_chat()) check_failed++;
    if (test_tokenize()) check_failed++;
    if (test_sampler()) check_failed++;
    if (test_context()) check_failed++;
    if (test_generate()) check_failed++;
    return check_summary("test_api");
}
