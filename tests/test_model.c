/* test_model.c - the whole engine against the fixtures' references (../shared/fixtures/README.md):
 *   F32/F16 files     vs Hugging Face transformers: logits at every position, greedy continuations,
 *                     and the KV-cache step logits;
 *   quantized files   exact path vs the exactly-dequantized float64 reference (strict), default
 *                     (8-bit activation) path vs llama.cpp (its tolerance), and vs HF as a bound. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "json.h"
#include "trainyard.h"

#define FIX "../shared/fixtures/"
#define MAX_CASES 16
#define MAX_TOKENS 512

typedef struct tcase {
    char model[32], name[64];
    int n;
    ty_token ids[MAX_TOKENS];
} tcase;

static tcase cases[MAX_CASES];
static int n_cases;

static int load_cases(void) {
    FILE *f = fopen(FIX "cases.txt", "r");
    if (!f) return 0;
    while (n_cases < MAX_CASES) {
        tcase *c = &cases[n_cases];
        if (fscanf(f, "%31s %63s %d", c->model, c->name, &c->n) != 3) break;
        if (c->n <= 0 || c->n > MAX_TOKENS) break;
        for (int i = 0; i < c->n; i++)
            if (fscanf(f, "%d", &c->ids[i]) != 1) { fclose(f); return 0; }
        n_cases++;
    }
    fclose(f);
    return n_cases;
}

/* Accumulated comparison of logits against a reference. */
typedef struct metrics {
    double sq_diff, sq_ref, max_abs, kl_sum;
    long rows, argmax_same;
} metrics;

static void softmax_d(const float *x, int n, double *p) {
    double mx = -INFINITY, s = 0;
    for (int i = 0; i < n; i++) mx = x[i] > mx ? x[i] : mx;
    for (int i = 0; i < n; i++) s += p[i] = exp(x[i] - mx);
    for (int i = 0; i < n; i++) p[i] /= s;
}

static int argmax(const float *x, int n) {
    int b = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[b]) b = i;
    return b;
}

static float margin(const float *x, int n) {
    int b = argmax(x, n);
    float second = -INFINITY;
    for (int i = 0; i < n; i++)
        if (i != b && x[i] > second) second = x[i];
    return x[b] - second;
}

static void compare_rows(metrics *m, const float *test, const float *ref, int rows, int nv) {
    double *p = malloc(sizeof(double) * (size_t)nv), *q = malloc(sizeof(double) * (size_t)nv);
    for (int r = 0; r < rows; r++) {
        const float *a = test + (size_t)r * nv, *b = ref + (size_t)r * nv;
        for (int i = 0; i < nv; i++) {
            double d = (double)a[i] - b[i];
            m->sq_diff += d * d;
            m->sq_ref += (double)b[i] * b[i];
            if (fabs(d) > m->max_abs) m->max_abs = fabs(d);
        }
        softmax_d(b, nv, p);
        softmax_d(a, nv, q);
        double kl = 0;
        for (int i = 0; i < nv; i++)
            if (p[i] > 0) kl += p[i] * (log(p[i]) - log(q[i] > 1e-300 ? q[i] : 1e-300));
        m->kl_sum += kl;
        m->argmax_same += argmax(a, nv) == argmax(b, nv);
        m->rows++;
    }
    free(p);
    free(q);
}

static double rel_l2(const metrics *m) { return sqrt(m->sq_diff / m->sq_ref); }

static ty_model *open_model(const char *file, int exact) {
    char path[256];
    snprintf(path, sizeof path, FIX "gguf/%s.gguf", file);
    ty_model_params p = ty_model_default_params();
    p.exact_math = exact;
    p.n_threads = 2;
    ty_model *m = NULL;
    char *err = NULL;
    if (ty_model_open(path, &p, &m, &err)) {
        fprintf(stderr, "cannot open %s: %s\n", path, err);
        ty_free(err);
        return NULL;
    }
    return m;
}

/* All-position logits of one case, malloc'd [n][n_vocab]. */
static float *eval_case(ty_model *m, const tcase *c, int kv_type) {
    ty_context_params cp = ty_context_default_params();
    cp.kv_type = kv_type;
    cp.n_ctx = 512;
    cp.n_batch = 128; /* several batches for the long cases: exercises the cache across batches */
    ty_context *ctx;
    if (ty_context_new(m, &cp, &ctx, NULL)) return NULL;
    int64_t nv = ty_n_vocab(m);
    float *out = malloc(sizeof(float) * (size_t)c->n * (size_t)nv);
    if (ty_context_eval(ctx, c->ids, c->n, TY_LOGITS_ALL)) {
        free(out);
        ty_context_free(ctx);
        return NULL;
    }
    for (int i = 0; i < c->n; i++) {
        const float *row;
        ty_context_logits(ctx, i, &row);
        memcpy(out + (size_t)i * nv, row, sizeof(float) * (size_t)nv);
    }
    ty_context_free(ctx);
    return out;
}

static float *read_ref(const char *dir, const char *model_file, const tcase *c, int nv) {
    char path[256];
    snprintf(path, sizeof path, FIX "%s/%s/%s.logits.f32", dir, model_file, c->name);
    size_t size = 0;
    float *ref = read_file(path, &size);
    if (ref && size != sizeof(float) * (size_t)c->n * (size_t)nv) {
        fprintf(stderr, "%s has %zu bytes, expected %zu\n", path, size, sizeof(float) * (size_t)c->n * nv);
        free(ref);
        return NULL;
    }
    return ref;
}

/* F32 and F16 files: strict tolerance against HF at every position of every case. */
static void test_float_files(const char *model, const char *type) {
    char file[64];
    snprintf(file, sizeof file, "%s-%s", model, type);
    ty_model *m = open_model(file, 0);
    CHECK(m != NULL, "open %s", file);
    if (!m) return;
    int nv = (int)ty_n_vocab(m);
    for (int k = 0; k < n_cases; k++) {
        const tcase *c = &cases[k];
        if (strcmp(c->model, model)) continue;
        float *ref = read_ref("hf", model, c, nv), *got = eval_case(m, c, TY_KV_F32);
        float *got16 = eval_case(m, c, TY_KV_F16);
        CHECK(ref && got && got16, "%s %s: reference or evaluation missing", file, c->name);
        if (ref && got16) { /* an F16 KV cache rounds K and V: the README's f16-activation tolerance */
            metrics mt = {0};
            compare_rows(&mt, got16, ref, c->n, nv);
            CHECK(mt.max_abs <= 0.05 && rel_l2(&mt) <= 2e-3, "%s %s, F16 KV cache: max_abs %.3g rel_l2 %.3g",
                  file, c->name, mt.max_abs, rel_l2(&mt));
        }
        free(got16);
        if (ref && got) {
            metrics mt = {0};
            compare_rows(&mt, got, ref, c->n, nv);
            CHECK(mt.max_abs <= 1e-3 && rel_l2(&mt) <= 2e-5, "%s %s: max_abs %.3g rel_l2 %.3g", file,
                  c->name, mt.max_abs, rel_l2(&mt));
            int bad = 0;
            for (int i = 0; i < c->n; i++) {
                const float *r = ref + (size_t)i * nv;
                if (margin(r, nv) >= 1e-3f && argmax(got + (size_t)i * nv, nv) != argmax(r, nv)) bad++;
            }
            CHECK(bad == 0, "%s %s: argmax differs at %d positions with margin >= 1e-3", file, c->name, bad);
        }
        free(ref);
        free(got);
    }
    ty_model_close(m);
}

/* Greedy continuation through the KV cache, one token per eval, compared with HF's. Step logits of
 * tiny-hd128 are compared too when step_logits is given. */
static void test_greedy(const char *model, const char *type, const json *greedy, const json *step_logits) {
    char file[64];
    snprintf(file, sizeof file, "%s-%s", model, type);
    ty_model *m = open_model(file, 0);
    CHECK(m != NULL, "open %s", file);
    if (!m) return;
    int nv = (int)ty_n_vocab(m);
    for (int k = 0; k < n_cases; k++) {
        const tcase *c = &cases[k];
        if (strcmp(c->model, model)) continue;
        const json *g = json_get(greedy, c->name);
        const json *toks = json_get(g, "tokens"), *margins = json_get(g, "step_margin");
        const json *steps = json_get(step_logits, c->name);
        CHECK(json_len(toks) == 32, "%s: greedy reference for %s", file, c->name);
        ty_context_params cp = ty_context_default_params();
        cp.n_ctx = 512;
        cp.kv_type = TY_KV_F32;
        ty_context *ctx;
        if (ty_context_new(m, &cp, &ctx, NULL)) { CHECK(0, "context"); break; }
        int rc = ty_context_eval(ctx, c->ids, c->n, TY_LOGITS_LAST);
        int same = 0, tie = 0;
        metrics mt = {0};
        for (int s = 0; s < 32 && !rc; s++) {
            const float *row;
            ty_context_logits(ctx, -1, &row);
            if (steps) {
                const json *ref_row = json_at(steps, (size_t)s);
                float ref[512];
                for (int i = 0; i < nv && i < 512; i++) ref[i] = (float)json_num(json_at(ref_row, (size_t)i));
                compare_rows(&mt, row, ref, 1, nv);
            }
            ty_token t = argmax(row, nv);
            if (t != (ty_token)json_num(json_at(toks, (size_t)s))) {
                tie = json_num(json_at(margins, (size_t)s)) < 1e-3;
                break;
            }
            same++;
            rc = ty_context_eval(ctx, &t, 1, TY_LOGITS_LAST);
        }
        CHECK(!rc, "%s %s: eval failed", file, c->name);
        CHECK(same == 32 || tie, "%s %s: greedy matches HF for %d of 32 tokens", file, c->name, same);
        if (steps)
            CHECK(mt.max_abs <= 1e-3 && rel_l2(&mt) <= 2e-5, "%s %s: step logits max_abs %.3g rel_l2 %.3g",
                  file, c->name, mt.max_abs, rel_l2(&mt));
        ty_context_free(ctx);
    }
    ty_model_close(m);
}

/* Quantized files. `hf_bound` is 1.2x llama.cpp's rel_l2 against HF for the file (README table). */
static void test_quantized(const char *model, const char *type, int has_dequant, double hf_bound) {
    char file[64];
    snprintf(file, sizeof file, "%s-%s", model, type);
    ty_model *exact = has_dequant ? open_model(file, 1) : NULL, *fast = open_model(file, 0);
    CHECK(fast && (exact || !has_dequant), "open %s", file);
    if (!fast) { ty_model_close(exact); return; }
    int nv = (int)ty_n_vocab(fast), hd128 = strcmp(model, "tiny-hd128") == 0;
    metrics vs_llama = {0}, vs_hf = {0};
    for (int k = 0; k < n_cases; k++) {
        const tcase *c = &cases[k];
        if (strcmp(c->model, model)) continue;
        if (exact) {
            float *ref = read_ref("dequant", file, c, nv), *got = eval_case(exact, c, TY_KV_F32);
            CHECK(ref && got, "%s %s: dequant reference or evaluation missing", file, c->name);
            if (ref && got) {
                metrics mt = {0};
                compare_rows(&mt, got, ref, c->n, nv);
                CHECK(mt.max_abs <= 1e-3 && rel_l2(&mt) <= 2e-5,
                      "%s %s exact path vs dequant: max_abs %.3g rel_l2 %.3g", file, c->name, mt.max_abs,
                      rel_l2(&mt));
            }
            free(ref);
            free(got);
        }
        float *ref = read_ref("llamacpp", file, c, nv); /* tiny-e2e: short_en only */
        if (!ref && !hd128) continue;
        float *got = eval_case(fast, c, TY_KV_DEFAULT); /* F16 cache, as users run it */
        if (got && ref) compare_rows(&vs_llama, got, ref, c->n, nv);
        free(ref);
        ref = NULL;
        if (hd128 && got && (ref = read_ref("hf", model, c, nv))) compare_rows(&vs_hf, got, ref, c->n, nv);
        free(ref);
        free(got);
    }
    double max_rel = hd128 ? 0.04 : 0.015, max_kl = hd128 ? 5e-3 : 5e-4;
    CHECK(vs_llama.rows > 0, "%s: no llama.cpp reference compared", file);
    double agree = vs_llama.rows ? (double)vs_llama.argmax_same / vs_llama.rows : 0;
    CHECK(rel_l2(&vs_llama) <= max_rel && vs_llama.kl_sum / vs_llama.rows <= max_kl && agree >= 0.93,
          "%s default path vs llama.cpp: rel_l2 %.4f kl_mean %.2e argmax %.3f", file, rel_l2(&vs_llama),
          vs_llama.kl_sum / vs_llama.rows, agree);
    printf("%-22s vs llama.cpp: rel_l2 %.4f kl_mean %.2e argmax %.3f over %ld positions\n", file,
           rel_l2(&vs_llama), vs_llama.kl_sum / vs_llama.rows, agree, vs_llama.rows);
    if (hd128)
        CHECK(rel_l2(&vs_hf) <= hf_bound, "%s default path vs HF: rel_l2 %.4f > %.4f", file, rel_l2(&vs_hf),
              hf_bound);
    ty_model_close(exact);
    ty_model_close(fast);
}

int main(void) {
    REQUIRE(load_cases() == 12, "cannot read " FIX "cases.txt");
    char err[256];
    json *g_e2e = json_parse_file(FIX "hf/greedy-tiny-e2e.json", err, sizeof err);
    json *g_hd = json_parse_file(FIX "hf/greedy-tiny-hd128.json", err, sizeof err);
    json *steps = json_parse_file(FIX "hf/greedy-step-logits-tiny-hd128.json", err, sizeof err);
    REQUIRE(g_e2e && g_hd && steps, "cannot read the greedy references: %s", err);

    const char *models[] = {"tiny-e2e", "tiny-hd128"}, *float_types[] = {"f32", "f16"};
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 2; j++) {
            test_float_files(models[i], float_types[j]);
            test_greedy(models[i], float_types[j], i ? g_hd : g_e2e, i ? steps : NULL);
        }
    /* hf bounds: 1.2 x llama.cpp's rel_l2 vs HF from the README's table */
    test_quantized("tiny-hd128", "q8_0", 1, 1.2 * 0.0243);
    test_quantized("tiny-hd128", "q6_k", 1, 1.2 * 0.0658);
    test_quantized("tiny-hd128", "q5_k_m", 1, 1.2 * 0.123);
    test_quantized("tiny-hd128", "q4_k_m", 1, 1.2 * 0.236);
    test_quantized("tiny-hd128", "q4_0", 1, 1.2 * 0.279);
    const char *e2e_q[] = {"q8_0", "q6_k", "q5_k_m", "q4_k_m", "q4_0"};
    for (int i = 0; i < 5; i++) test_quantized("tiny-e2e", e2e_q[i], 0, 0);
    json_free(g_e2e);
    json_free(g_hd);
    json_free(steps);
    return check_summary("test_model");
}
