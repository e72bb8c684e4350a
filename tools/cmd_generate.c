/* cmd_generate.c - `trainyard generate` (one answer) and `trainyard chat` (a conversation). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"

#define GEN_OPTS "-m --model -p --prompt -f --file --system -n -c -t --device --exact --raw " \
                 "--kv --temp --top-k --top-p --min-p --repeat-penalty --repeat-last-n --seed -v --verbose " \
                 "--draft-model --draft-max --draft-min --lookup"

typedef struct stream_state {
    int at_start; /* drop the dummy-prefix space of the first piece, as sentencepiece decoding does */
} stream_state;

static int print_piece(void *user, ty_token tok, const char *piece, size_t len) {
    stream_state *st = user;
    if (st->at_start && len > 0) {
        if (piece[0] == ' ') { piece++; len--; }
        st->at_start = 0;
    }
    fwrite(piece, 1, len, stdout);
    fflush(stdout);
    return 0;
}

/* Opens the model, the draft model (--draft-model), a context and a sampler. */
static int open_all(cli_opts *o, ty_model **m, ty_model **draft, ty_context **c, ty_sampler **s,
                    double *load_s) {
    if (cli_open_model(o, m, load_s) || cli_open_draft(o, draft)) return 1;
    ty_context_params cp = ty_context_default_params();
    cp.n_ctx = o->n_ctx;
    cp.kv_type = o->kv_type;
    cli_speculative_params(o, *draft, &cp);
    char *err = NULL;
    int rc = ty_context_new(*m, &cp, c, &err);
    if (rc) {
        cli_fail("cannot create context", err ? err : ty_status_string(rc));
        ty_free(err);
        return 1;
    }
    if (!o->seed_set) o->sp.seed = (uint64_t)time(NULL);
    if (ty_sampler_new(&o->sp, s)) return cli_fail("sampler", "invalid sampling options");
    return 0;
}

static void print_stats(const ty_generate_stats *st, double load_s) {
    fprintf(stderr, "\n[load %.2f s | prompt %lld tokens, %.1f tokens/s | generated %lld tokens, "
                    "%.2f tokens/s]\n",
            load_s, (long long)st->n_prompt,
            st->prompt_seconds > 0 ? (double)st->n_prompt / st->prompt_seconds : 0.0,
            (long long)st->n_generated,
            st->generate_seconds > 0 ? (double)st->n_generated / st->generate_seconds : 0.0);
}

/* Tokenizes msgs (chat) or text (raw) into a malloc'd array. */
static int build_prompt(ty_model *m, const cli_opts *o, const ty_chat_message *msgs, int64_t n_msgs,
                        const char *text, size_t len, ty_token **ids, int64_t *n) {
    int64_t need = 0;
    int rc = msgs ? ty_chat_tokenize(m, msgs, n_msgs, NULL, 0, &need)
                  : ty_tokenize(m, text, len, o->no_bos ? 0 : TY_TOKENIZE_ADD_BOS, NULL, 0, &need);
    if (rc && rc != TY_ERR_BUFFER_TOO_SMALL) return cli_fail("cannot tokenize the prompt", ty_model_errmsg(m));
    *ids = malloc(sizeof **ids * (size_t)(need ? need : 1));
    if (!*ids) return cli_fail("prompt", "out of memory");
    rc = msgs ? ty_chat_tokenize(m, msgs, n_msgs, *ids, need, n)
              : ty_tokenize(m, text, len, o->no_bos ? 0 : TY_TOKENIZE_ADD_BOS, *ids, need, n);
    if (rc) return cli_fail("cannot tokenize the prompt", ty_model_errmsg(m));
    return 0;
}

int cmd_generate(int argc, char **argv) {
    cli_opts o;
    if (cli_parse(argc, argv, GEN_OPTS, &o)) { cli_done(&o); return 2; }
    char *file_text = NULL;
    size_t len = 0;
    const char *text = o.prompt;
    if (o.prompt_file) {
        if (!(file_text = cli_read_text(o.prompt_file, &len))) { cli_done(&o); return 1; }
        text = file_text;
    } else if (!text && o.n_pos > 0) {
        text = o.pos[0];
    }
    if (!text) {
        cli_done(&o);
        fprintf(stderr, "trainyard generate: give a prompt with -p TEXT or -f FILE\n");
        return 2;
    }
    if (!o.prompt_file) len = strlen(text);
    ty_model *m = NULL, *draft = NULL;
    ty_context *c = NULL;
    ty_sampler *s = NULL;
    ty_token *ids = NULL;
    int64_t n = 0;
    double load_s = 0;
    int ret = open_all(&o, &m, &draft, &c, &s, &load_s);
    if (!ret) {
        ty_chat_message msgs[2];
        int64_t n_msgs = 0;
        if (o.system) msgs[n_msgs++] = (ty_chat_message){"system", o.system};
        msgs[n_msgs++] = (ty_chat_message){"user", text};
        if (!o.raw && memchr(text, 0, len))
            ret = cli_fail("prompt", "contains a NUL byte");
        else
            ret = build_prompt(m, &o, o.raw ? NULL : msgs, n_msgs, text, len, &ids, &n);
    }
    if (!ret) {
        stream_state st = {.at_start = 1};
        ty_generate_stats stats;
        int rc = ty_generate(c, s, ids, n, o.n_predict, print_piece, &st, &stats);
        if (rc) ret = cli_fail("generation failed", ty_context_errmsg(c));
        else {
            fputc('\n', stdout);
            print_stats(&stats, load_s);
            cli_print_speculative(&stats);
        }
    }
    free(ids);
    free(file_text);
    ty_sampler_free(s);
    ty_context_free(c);
    ty_model_close(draft);
    ty_model_close(m);
    cli_done(&o);
    return ret;
}

/* ---- chat ------------------------------------------------------------------------------------- */

typedef struct conversation {
    ty_chat_message *msgs;
    char **owned;       /* the strdup'd contents */
    int64_t n, cap;
    ty_token *held;     /* tokens the context holds */
    int64_t n_held, cap_held;
    ty_token *answer;   /* tokens of the answer being generated */
    int64_t n_answer, cap_answer;
    stream_state stream;
} conversation;

static int conv_add(conversation *cv, const char *role, const char *content) {
    if (cv->n == cv->cap) {
        int64_t cap = cv->cap * 2 + 8;
        ty_chat_message *m = realloc(cv->msgs, sizeof *m * (size_t)cap);
        if (!m) return 1;
        cv->msgs = m;
        char **o = realloc(cv->owned, sizeof *o * (size_t)cap);
        if (!o) return 1;
        cv->owned = o;
        cv->cap = cap;
    }
    char *copy = strdup(content);
    if (!copy) return 1;
    cv->owned[cv->n] = copy;
    cv->msgs[cv->n++] = (ty_chat_message){role, copy};
    return 0;
}

static int chat_piece(void *user, ty_token tok, const char *piece, size_t len) {
    conversation *cv = user;
    if (cv->n_answer == cv->cap_answer) {
        int64_t cap = cv->cap_answer * 2 + 64;
        ty_token *p = realloc(cv->answer, sizeof *p * (size_t)cap);
        if (!p) return 1;
        cv->answer = p;
        cv->cap_answer = cap;
    }
    cv->answer[cv->n_answer++] = tok;
    return print_piece(&cv->stream, tok, piece, len);
}

int cmd_chat(int argc, char **argv) {
    cli_opts o;
    if (cli_parse(argc, argv, GEN_OPTS, &o)) { cli_done(&o); return 2; }
    ty_model *m = NULL, *draft = NULL;
    ty_context *c = NULL;
    ty_sampler *s = NULL;
    double load_s = 0;
    conversation cv = {0};
    int ret = open_all(&o, &m, &draft, &c, &s, &load_s);
    if (!ret && o.system && conv_add(&cv, "system", o.system)) ret = cli_fail("chat", "out of memory");
    if (!ret)
        fprintf(stderr, "trainyard chat: model loaded in %.2f s, context %lld tokens. Type a message; "
                        "/reset starts over, /quit or end of input leaves.\n",
                load_s, (long long)ty_context_n_ctx(c));
    char line[8192];
    while (!ret) {
        fprintf(stderr, "> ");
        if (!fgets(line, sizeof line, stdin)) break;
        line[strcspn(line, "\r\n")] = 0;
        if (!strcmp(line, "/quit")) break;
        if (!strcmp(line, "/reset")) {
            for (int64_t i = o.system ? 1 : 0; i < cv.n; i++) free(cv.owned[i]);
            cv.n = o.system ? 1 : 0;
            continue;
        }
        if (!line[0]) continue;
        if (conv_add(&cv, "user", line)) { ret = cli_fail("chat", "out of memory"); break; }
        ty_token *ids = NULL;
        int64_t n = 0;
        if (build_prompt(m, &o, cv.msgs, cv.n, NULL, 0, &ids, &n)) { ret = 1; break; }
        /* Reuse the cached prefix; the system text moves to the newest user turn, so the tail
         * after the first differing token is evaluated again. */
        int64_t keep = 0;
        while (keep < cv.n_held && keep < n - 1 && cv.held[keep] == ids[keep]) keep++;
        ty_context_truncate(c, keep);
        cv.n_answer = 0;
        cv.stream.at_start = 1;
        ty_generate_stats st;
        int rc = ty_generate(c, s, ids + keep, n - keep, o.n_predict, chat_piece, &cv, &st);
        fputc('\n', stdout);
        if (rc) {
            cli_fail("chat", ty_context_errmsg(c));
            fprintf(stderr, "(use /reset to start over)\n");
            free(ids);
            free(cv.owned[--cv.n]);
            ty_context_truncate(c, 0);
            cv.n_held = 0;
            continue;
        }
        if (o.verbose) print_stats(&st, load_s);
        cli_print_speculative(&st);
        /* the context now holds the prompt, the answer and (if sampled) EOS */
        char *answer_text = NULL;
        size_t need = 0;
        ty_detokenize(m, cv.answer, cv.n_answer, NULL, 0, &need);
        answer_text = malloc(need + 1);
        if (!answer_text || ty_detokenize(m, cv.answer, cv.n_answer, answer_text, need + 1, &need) ||
            conv_add(&cv, "assistant", answer_text)) {
            free(answer_text);
            free(ids);
            ret = cli_fail("chat", "out of memory");
            break;
        }
        free(answer_text);
        int64_t total = n + cv.n_answer + (st.stopped_by_eos ? 1 : 0);
        if (total > cv.cap_held) {
            ty_token *h = realloc(cv.held, sizeof *h * (size_t)total);
            if (!h) { free(ids); ret = cli_fail("chat", "out of memory"); break; }
            cv.held = h;
            cv.cap_held = total;
        }
        memcpy(cv.held, ids, sizeof *ids * (size_t)n);
        memcpy(cv.held + n, cv.answer, sizeof *ids * (size_t)cv.n_answer);
        if (st.stopped_by_eos) cv.held[n + cv.n_answer] = ty_token_eos(m);
        cv.n_held = total;
        free(ids);
    }
    for (int64_t i = 0; i < cv.n; i++) free(cv.owned[i]);
    free(cv.owned);
    free(cv.msgs);
    free(cv.held);
    free(cv.answer);
    ty_sampler_free(s);
    ty_context_free(c);
    ty_model_close(draft);
    ty_model_close(m);
    cli_done(&o);
    return ret;
}
