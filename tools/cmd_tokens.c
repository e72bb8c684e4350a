/* cmd_tokens.c - inspection subcommands: tokenize, detokenize, logits. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

int cmd_tokenize(int argc, char **argv) {
    cli_opts o;
    if (cli_parse(argc, argv, "-m --model --no-bos --parse-special -f --file -p --prompt", &o)) {
        cli_done(&o);
        return 2;
    }
    char *file_text = NULL;
    size_t len = 0;
    const char *text = o.prompt ? o.prompt : o.n_pos > 0 ? o.pos[0] : NULL;
    if (o.prompt_file) text = file_text = cli_read_text(o.prompt_file, &len);
    else if (text) len = strlen(text);
    int ret = 0;
    ty_model *m = NULL;
    ty_token *ids = NULL;
    if (!text) ret = o.prompt_file ? 1 : (fprintf(stderr, "usage: trainyard tokenize -m FILE [--no-bos] [--parse-special] (TEXT | --file F)\n"), 2);
    if (!ret) {
        o.n_threads = 1;
        ret = cli_open_model(&o, &m, NULL);
    }
    if (!ret) {
        int flags = (o.no_bos ? 0 : TY_TOKENIZE_ADD_BOS) | (o.parse_special ? TY_TOKENIZE_PARSE_SPECIAL : 0);
        int64_t n = 0;
        int rc = ty_tokenize(m, text, len, flags, NULL, 0, &n);
        if (rc == TY_ERR_BUFFER_TOO_SMALL || rc == TY_OK) {
            ids = malloc(sizeof *ids * (size_t)(n ? n : 1));
            rc = ids ? ty_tokenize(m, text, len, flags, ids, n, &n) : TY_ERR_NOMEM;
        }
        if (rc) ret = cli_fail("cannot tokenize", rc == TY_ERR_NOMEM ? "out of memory" : ty_model_errmsg(m));
        else {
            putchar('[');
            for (int64_t i = 0; i < n; i++) printf(i ? ", %d" : "%d", ids[i]);
            printf("]\n");
        }
    }
    free(ids);
    free(file_text);
    ty_model_close(m);
    cli_done(&o);
    return ret;
}

/* Parses "12" or "1,2,3" lists (commas and/or separate arguments) into ids. */
static int parse_ids(char **args, int n_args, ty_token **ids, int64_t *n) {
    int64_t cap = 16;
    *n = 0;
    *ids = malloc(sizeof **ids * (size_t)cap);
    if (!*ids) return cli_fail("ids", "out of memory");
    for (int a = 0; a < n_args; a++) {
        const char *p = args[a];
        while (*p) {
            char *end;
            errno = 0;
            long long v = strtoll(p, &end, 10);
            if (end == p || errno || v < 0 || v > INT32_MAX) {
                fprintf(stderr, "trainyard: '%s' is not a list of token ids\n", args[a]);
                return 2;
            }
            if (*n == cap) {
                ty_token *q = realloc(*ids, sizeof *q * (size_t)(cap *= 2));
                if (!q) return cli_fail("ids", "out of memory");
                *ids = q;
            }
            (*ids)[(*n)++] = (ty_token)v;
            p = end;
            if (*p == ',') p++;
            else if (*p) {
                fprintf(stderr, "trainyard: '%s' is not a list of token ids\n", args[a]);
                return 2;
            }
        }
    }
    return 0;
}

int cmd_detokenize(int argc, char **argv) {
    cli_opts o;
    if (cli_parse(argc, argv, "-m --model", &o)) { cli_done(&o); return 2; }
    ty_token *ids = NULL;
    int64_t n = 0;
    ty_model *m = NULL;
    char *text = NULL;
    int ret = parse_ids(o.pos, o.n_pos, &ids, &n);
    if (!ret) {
        o.n_threads = 1;
        ret = cli_open_model(&o, &m, NULL);
    }
    if (!ret) {
        size_t need = 0;
        int rc = ty_detokenize(m, ids, n, NULL, 0, &need);
        if (rc == TY_ERR_BUFFER_TOO_SMALL) {
            text = malloc(need + 1);
            rc = text ? ty_detokenize(m, ids, n, text, need + 1, &need) : TY_ERR_NOMEM;
        }
        if (rc) ret = cli_fail("cannot detokenize", ty_model_errmsg(m));
        else {
            fwrite(text, 1, need, stdout);
            putchar('\n');
        }
    }
    free(text);
    free(ids);
    ty_model_close(m);
    cli_done(&o);
    return ret;
}

int cmd_logits(int argc, char **argv) {
    cli_opts o;
    if (cli_parse(argc, argv, "-m --model --tokens -o -t -c --device --exact --kv", &o)) {
        cli_done(&o);
        return 2;
    }
    if (!o.tokens || !o.out) {
        cli_done(&o);
        fprintf(stderr, "usage: trainyard logits -m FILE --tokens 1,2,3 -o OUT [--exact]\n");
        return 2;
    }
    ty_token *ids = NULL;
    int64_t n = 0;
    ty_model *m = NULL;
    ty_context *c = NULL;
    char *tok_arg = (char *)o.tokens;
    int ret = parse_ids(&tok_arg, 1, &ids, &n);
    if (!ret && n == 0) ret = cli_fail("logits", "no tokens given");
    if (!ret) ret = cli_open_model(&o, &m, NULL);
    if (!ret) {
        ty_context_params cp = ty_context_default_params();
        cp.n_ctx = o.n_ctx ? o.n_ctx : n;
        cp.kv_type = o.kv_type ? o.kv_type : TY_KV_F32; /* an inspection tool: most accurate by default */
        char *err = NULL;
        int rc = ty_context_new(m, &cp, &c, &err);
        if (rc) ret = cli_fail("cannot create context", err ? err : ty_status_string(rc));
        ty_free(err);
    }
    if (!ret && ty_context_eval(c, ids, n, TY_LOGITS_ALL)) ret = cli_fail("logits", ty_context_errmsg(c));
    if (!ret) {
        FILE *f = fopen(o.out, "wb");
        if (!f) ret = cli_fail(o.out, strerror(errno));
        for (int64_t i = 0; f && i < n; i++) {
            const float *row;
            ty_context_logits(c, i, &row);
            if (fwrite(row, sizeof(float), (size_t)ty_n_vocab(m), f) != (size_t)ty_n_vocab(m)) {
                ret = cli_fail(o.out, "write failed");
                break;
            }
        }
        if (f && fclose(f) && !ret) ret = cli_fail(o.out, "write failed");
    }
    free(ids);
    ty_context_free(c);
    ty_model_close(m);
    cli_done(&o);
    return ret;
}
