/* options.c - option parsing and model opening shared by the subcommands. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

#ifndef TY_DEFAULT_MODEL
#define TY_DEFAULT_MODEL "data/yard-target-27m-q8_0.gguf"
#endif

const char *cli_default_model(void) { return TY_DEFAULT_MODEL; }

int cli_fail(const char *what, const char *msg) {
    fprintf(stderr, "trainyard: %s: %s\n", what, msg);
    return 1;
}

static int parse_i64(const char *opt, const char *s, int64_t lo, int64_t hi, int64_t *out) {
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) {
        fprintf(stderr, "trainyard: option %s expects an integer in [%lld, %lld], got '%s'\n", opt,
                (long long)lo, (long long)hi, s);
        return 2;
    }
    *out = v;
    return 0;
}

static int parse_f32(const char *opt, const char *s, float lo, float hi, float *out) {
    char *end;
    errno = 0;
    float v = strtof(s, &end);
    if (errno || end == s || *end || !(v >= lo && v <= hi)) {
        fprintf(stderr, "trainyard: option %s expects a number in [%g, %g], got '%s'\n", opt,
                (double)lo, (double)hi, s);
        return 2;
    }
    *out = v;
    return 0;
}

/* Is `name` in the space-separated list? */
static bool allowed_opt(const char *allowed, const char *name) {
    size_t n = strlen(name);
    for (const char *p = allowed; (p = strstr(p, name)); p += n)
        if ((p == allowed || p[-1] == ' ') && (p[n] == ' ' || p[n] == 0)) return true;
    return false;
}

int cli_parse(int argc, char **argv, const char *allowed, cli_opts *o) {
    memset(o, 0, sizeof *o);
    o->n_predict = -1;
    o->sp = ty_sampler_default_params();
    o->device = "cpu";
    o->pos = calloc((size_t)argc + 1, sizeof(char *));
    if (!o->pos) return 2;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (a[0] != '-' || a[1] == 0 || (a[1] >= '0' && a[1] <= '9')) {
            o->pos[o->n_pos++] = argv[i];
            continue;
        }
        if (strcmp(a, "--") == 0) {
            while (++i < argc) o->pos[o->n_pos++] = argv[i];
            break;
        }
        if (!allowed_opt(allowed, a)) {
            fprintf(stderr, "trainyard %s: unknown option '%s'\n", argv[0], a);
            return 2;
        }
        /* flags without a value */
        if (!strcmp(a, "--exact")) { o->exact = true; continue; }
        if (!strcmp(a, "--raw")) { o->raw = true; continue; }
        if (!strcmp(a, "--no-bos")) { o->no_bos = true; continue; }
        if (!strcmp(a, "--parse-special")) { o->parse_special = true; continue; }
        if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) { o->verbose = true; continue; }
        if (!strcmp(a, "--json")) { o->json = true; continue; }
        if (!strcmp(a, "--no-bandwidth")) { o->no_bandwidth = true; continue; }
        if (!strcmp(a, "--synthetic-depth")) { o->synthetic_depth = true; continue; }
        if (!strcmp(a, "--lookup")) { o->lookup = true; continue; }
        if (i + 1 >= argc) {
            fprintf(stderr, "trainyard %s: option %s needs a value\n", argv[0], a);
            return 2;
        }
        const char *v = argv[++i];
        int64_t iv = 0;
        int rc = 0;
        if (!strcmp(a, "-m") || !strcmp(a, "--model")) o->model = v;
        else if (!strcmp(a, "-p") || !strcmp(a, "--prompt")) o->prompt = v;
        else if (!strcmp(a, "-f") || !strcmp(a, "--file")) o->prompt_file = v;
        else if (!strcmp(a, "--system")) o->system = v;
        else if (!strcmp(a, "-o")) o->out = v;
        else if (!strcmp(a, "--tokens")) o->tokens = v;
        else if (!strcmp(a, "--device")) o->device = v;
        else if (!strcmp(a, "--draft-model")) o->draft_model = v;
        else if (!strcmp(a, "--draft-max")) { rc = parse_i64(a, v, 1, TY_DRAFT_MAX_LIMIT, &iv); o->draft_max = (int)iv; }
        else if (!strcmp(a, "--draft-min")) { rc = parse_i64(a, v, 1, TY_DRAFT_MAX_LIMIT, &iv); o->draft_min = (int)iv; }
        else if (!strcmp(a, "--oracle-accept")) o->oracle_accept = v; /* a list: bench_spec.c parses it */
        else if (!strcmp(a, "--kv")) {
            if (!strcmp(v, "f16")) o->kv_type = TY_KV_F16;
            else if (!strcmp(v, "f32")) o->kv_type = TY_KV_F32;
            else if (!strcmp(v, "q8_0")) o->kv_type = TY_KV_Q8_0;
            else {
                fprintf(stderr, "trainyard: option --kv expects f16, f32 or q8_0, got '%s'\n", v);
                return 2;
            }
        }
        else if (!strcmp(a, "-n")) rc = parse_i64(a, v, -1, INT32_MAX, &o->n_predict);
        else if (!strcmp(a, "-r")) rc = parse_i64(a, v, 1, 1000, &o->repeats);
        else if (!strcmp(a, "--ctx-depth")) rc = parse_i64(a, v, 0, 1 << 24, &o->depth);
        else if (!strcmp(a, "-c")) rc = parse_i64(a, v, 0, 1 << 24, &o->n_ctx);
        else if (!strcmp(a, "-t")) { rc = parse_i64(a, v, 0, 1024, &iv); o->n_threads = (int)iv; }
        else if (!strcmp(a, "--temp")) rc = parse_f32(a, v, 0.0f, 100.0f, &o->sp.temperature);
        else if (!strcmp(a, "--top-k")) { rc = parse_i64(a, v, 0, INT32_MAX, &iv); o->sp.top_k = (int32_t)iv; }
        else if (!strcmp(a, "--top-p")) rc = parse_f32(a, v, 0.0f, 1.0f, &o->sp.top_p);
        else if (!strcmp(a, "--min-p")) rc = parse_f32(a, v, 0.0f, 1.0f, &o->sp.min_p);
        else if (!strcmp(a, "--repeat-penalty")) rc = parse_f32(a, v, 0.01f, 100.0f, &o->sp.repeat_penalty);
        else if (!strcmp(a, "--repeat-last-n")) { rc = parse_i64(a, v, 0, 1 << 20, &iv); o->sp.repeat_last_n = (int32_t)iv; }
        else if (!strcmp(a, "--seed")) {
            char *end;
            errno = 0;
            unsigned long long s = strtoull(v, &end, 10);
            if (errno || end == v || *end) {
                fprintf(stderr, "trainyard: option --seed expects a non-negative integer, got '%s'\n", v);
                return 2;
            }
            o->sp.seed = s;
            o->seed_set = true;
        } else {
            fprintf(stderr, "trainyard %s: unknown option '%s'\n", argv[0], a);
            return 2;
        }
        if (rc) return rc;
    }
    return 0;
}

static int open_path(const cli_opts *o, const char *path, const char *what, ty_model **model,
                     double *load_seconds) {
    ty_model_params mp = ty_model_default_params();
    mp.device = o->device;
    mp.n_threads = o->n_threads;
    mp.exact_math = o->exact;
    char *err = NULL;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int rc = ty_model_open(path, &mp, model, &err);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (load_seconds) *load_seconds = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9;
    if (rc) {
        fprintf(stderr, "trainyard: cannot load %s: %s\n", what, err ? err : ty_status_string(rc));
        ty_free(err);
        return 1;
    }
    return 0;
}

int cli_open_model(const cli_opts *o, ty_model **model, double *load_seconds) {
    return open_path(o, o->model ? o->model : cli_default_model(), "model", model, load_seconds);
}

int cli_open_draft(const cli_opts *o, ty_model **model) {
    *model = NULL;
    return o->draft_model ? open_path(o, o->draft_model, "draft model", model, NULL) : 0;
}

void cli_speculative_params(const cli_opts *o, ty_model *draft, ty_context_params *cp) {
    cp->draft_model = draft;
    cp->draft_max = o->draft_max;
    cp->draft_min = o->draft_min;
    cp->lookup = o->lookup;
}

void cli_print_speculative(const ty_generate_stats *st) {
    if (st->n_steps == 0) return;
    double tried = (double)(st->n_accepted + st->n_rejected);
    fprintf(stderr, "[speculative: %lld drafted, %lld accepted, acceptance rate %.1f%% (per token checked "
                    "%.1f%%), mean accepted length %.2f, %.2f tokens per step, %.2f tokens/s]\n",
            (long long)st->n_drafted, (long long)st->n_accepted,
            st->n_drafted ? 100.0 * (double)st->n_accepted / (double)st->n_drafted : 0.0,
            tried > 0 ? 100.0 * (double)st->n_accepted / tried : 0.0,
            (double)st->n_accepted / (double)st->n_steps, (double)st->n_generated / (double)st->n_steps,
            st->generate_seconds > 0 ? (double)st->n_generated / st->generate_seconds : 0.0);
}

void cli_done(cli_opts *o) {
    free(o->pos);
    o->pos = NULL;
}

char *cli_read_text(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "trainyard: cannot open '%s': %s\n", path, strerror(errno));
        return NULL;
    }
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    while (buf) {
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (n < cap) break;
        char *p = realloc(buf, cap * 2 + 1);
        if (!p) { free(buf); buf = NULL; break; }
        buf = p;
        cap *= 2;
    }
    int bad = ferror(f);
    fclose(f);
    if (!buf || bad) {
        free(buf);
        fprintf(stderr, "trainyard: cannot read '%s'\n", path);
        return NULL;
    }
    buf[n] = 0;
    *len = n;
    return buf;
}
