/* make_seeds.c - writes the small valid GGUF files in fuzz/seed/ with the project's own writer.
 *
 *   gcc -std=c11 -D_GNU_SOURCE -Iinclude -Isrc src/base/error.c src/quant/types.c \
 *       src/gguf/gguf_read.c src/gguf/gguf_write.c fuzz/make_seeds.c -o /tmp/make_seeds
 *   /tmp/make_seeds fuzz/seed
 *
 * Seeds are named *.bin because .gitignore ignores *.gguf. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gguf/gguf.h"
#include "quant/quant.h"

static unsigned long long rng = 0x9E3779B97F4A7C15ull;

static uint8_t rand_byte(void) {
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (uint8_t)(rng >> 24);
}

static int add(gguf_writer *w, const char *name, uint32_t n_dims, int64_t ne0, int64_t ne1,
               uint32_t type) {
    ty_err e;
    int64_t ne[2] = {ne0, ne1};
    int rc = gguf_writer_add_tensor(w, name, n_dims, ne, type, &e);
    if (rc) fprintf(stderr, "%s\n", e.msg);
    return rc;
}

/* Writes random bytes as the data of every declared tensor (the reader never looks at values). */
static int finish(gguf_writer *w, const char *path, const int64_t *sizes, int n) {
    ty_err e;
    int rc = gguf_writer_begin(w, path, &e);
    for (int i = 0; i < n && !rc; i++) {
        uint8_t *buf = malloc((size_t)sizes[i]);
        for (int64_t j = 0; j < sizes[i]; j++) buf[j] = rand_byte();
        rc = gguf_writer_write_data(w, buf, (uint64_t)sizes[i], &e);
        free(buf);
    }
    if (!rc) rc = gguf_writer_finish(w, &e);
    if (rc) fprintf(stderr, "%s: %s\n", path, e.msg);
    gguf_writer_free(w);
    return rc;
}

static int seed_all_types(const char *dir) {
    char path[512];
    gguf_writer *w;
    ty_err e;
    if (gguf_writer_new(&w, &e)) return 1;
    gguf_writer_set_str(w, "general.architecture", "llama");
    gguf_writer_set_u32(w, "s.u32", 7);
    gguf_writer_set_i32(w, "s.i32", -7);
    gguf_writer_set_f32(w, "s.f32", 0.5f);
    gguf_writer_set_bool(w, "s.bool", true);
    gguf_writer_set_str(w, "s.str", "text");
    gguf_kv kv = {0};
    static const uint32_t scalar_types[] = {GGUF_TYPE_UINT8,  GGUF_TYPE_INT8,  GGUF_TYPE_UINT16,
                                            GGUF_TYPE_INT16,  GGUF_TYPE_UINT64, GGUF_TYPE_INT64,
                                            GGUF_TYPE_FLOAT64};
    char key[32];
    for (int i = 0; i < 7; i++) {
        snprintf(key, sizeof key, "s.%s", gguf_type_name(scalar_types[i]));
        kv = (gguf_kv){.key = key, .type = scalar_types[i]};
        kv.v.u64 = 3;
        gguf_writer_copy_kv(w, &kv);
    }
    static const uint8_t raw[64] = {1, 0, 1, 1, 2, 3, 4, 5, 6, 7, 8, 9};
    static const uint32_t arr_types[] = {GGUF_TYPE_UINT8,   GGUF_TYPE_INT8,   GGUF_TYPE_UINT16,
                                         GGUF_TYPE_INT16,   GGUF_TYPE_UINT32, GGUF_TYPE_INT32,
                                         GGUF_TYPE_FLOAT32, GGUF_TYPE_BOOL,   GGUF_TYPE_UINT64,
                                         GGUF_TYPE_INT64,   GGUF_TYPE_FLOAT64};
    for (int i = 0; i < 11; i++) {
        snprintf(key, sizeof key, "a.%s", gguf_type_name(arr_types[i]));
        /* 3 elements of raw: for bool arrays that is 1, 0, 1 */
        kv = (gguf_kv){.key = key, .type = GGUF_TYPE_ARRAY, .arr_type = arr_types[i], .arr_n = 3};
        kv.arr_data = raw;
        gguf_writer_copy_kv(w, &kv);
    }
    const gguf_str strs[] = {{3, "one"}, {0, ""}, {5, "three"}};
    gguf_writer_set_arr_str(w, "a.string", strs, 3);
    gguf_writer_set_arr_f32(w, "a.empty", NULL, 0);
    static const uint32_t types[] = {TY_TYPE_F32,  TY_TYPE_F16,  TY_TYPE_BF16, TY_TYPE_Q4_0,
                                     TY_TYPE_Q4_1, TY_TYPE_Q5_0, TY_TYPE_Q5_1, TY_TYPE_Q8_0,
                                     TY_TYPE_Q2_K, TY_TYPE_Q3_K, TY_TYPE_Q4_K, TY_TYPE_Q5_K,
                                     TY_TYPE_Q6_K};
    int64_t sizes[13];
    for (int i = 0; i < 13; i++) {
        const ty_type_info *ti = ty_type_get(types[i]);
        int64_t ne0 = ti->block_size == 1 ? 8 : ti->block_size;
        snprintf(key, sizeof key, "t.%s", ti->name);
        if (add(w, key, i % 2 ? 2 : 1, ne0, 2, types[i])) return 1;
        sizes[i] = (int64_t)ty_row_size(types[i], ne0) * (i % 2 ? 2 : 1);
    }
    snprintf(path, sizeof path, "%s/all-types.bin", dir);
    return finish(w, path, sizes, 13);
}

/* A llama-shaped model with a tiny vocabulary: 1 layer, dim 32, F32 norms, Q8_0 matrices. */
static int seed_llama(const char *dir, const char *name, uint32_t alignment) {
    char path[512];
    gguf_writer *w;
    ty_err e;
    if (gguf_writer_new(&w, &e)) return 1;
    const int dim = 32, ff = 64, vocab = 8;
    gguf_writer_set_str(w, "general.architecture", "llama");
    gguf_writer_set_str(w, "general.name", "seed");
    if (alignment) gguf_writer_set_u32(w, "general.alignment", alignment);
    gguf_writer_set_u32(w, "llama.block_count", 1);
    gguf_writer_set_u32(w, "llama.context_length", 64);
    gguf_writer_set_u32(w, "llama.embedding_length", (uint32_t)dim);
    gguf_writer_set_u32(w, "llama.feed_forward_length", (uint32_t)ff);
    gguf_writer_set_u32(w, "llama.attention.head_count", 2);
    gguf_writer_set_u32(w, "llama.attention.head_count_kv", 1);
    gguf_writer_set_f32(w, "llama.rope.freq_base", 1e6f);
    gguf_writer_set_f32(w, "llama.attention.layer_norm_rms_epsilon", 1e-5f);
    gguf_writer_set_u32(w, "general.file_type", 7);
    gguf_writer_set_str(w, "tokenizer.ggml.model", "llama");
    const gguf_str toks[] = {{5, "<unk>"}, {3, "<s>"}, {4, "</s>"}, {6, "<0x00>"},
                             {3, "\xe2\x96\x81"}, {1, "a"}, {2, "ab"}, {4, "\xe2\x96\x81" "a"}};
    const float scores[] = {0, 0, 0, 0, -1, -2, -3, -4};
    const int32_t ttypes[] = {2, 3, 3, 6, 1, 1, 1, 1};
    gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", toks, (uint64_t)vocab);
    gguf_writer_set_arr_f32(w, "tokenizer.ggml.scores", scores, (uint64_t)vocab);
    gguf_writer_set_arr_i32(w, "tokenizer.ggml.token_type", ttypes, (uint64_t)vocab);
    gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", 1);
    gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", 2);
    gguf_writer_set_bool(w, "tokenizer.ggml.add_bos_token", true);
    struct { const char *name; int nd; int64_t ne0, ne1; uint32_t type; } ts[] = {
        {"token_embd.weight", 2, dim, vocab, TY_TYPE_Q8_0},
        {"output_norm.weight", 1, dim, 1, TY_TYPE_F32},
        {"output.weight", 2, dim, vocab, TY_TYPE_Q8_0},
        {"blk.0.attn_norm.weight", 1, dim, 1, TY_TYPE_F32},
        {"blk.0.attn_q.weight", 2, dim, dim, TY_TYPE_Q8_0},
        {"blk.0.attn_k.weight", 2, dim, dim / 2, TY_TYPE_Q8_0},
        {"blk.0.attn_v.weight", 2, dim, dim / 2, TY_TYPE_Q8_0},
        {"blk.0.attn_output.weight", 2, dim, dim, TY_TYPE_Q8_0},
        {"blk.0.ffn_norm.weight", 1, dim, 1, TY_TYPE_F32},
        {"blk.0.ffn_gate.weight", 2, dim, ff, TY_TYPE_Q8_0},
        {"blk.0.ffn_up.weight", 2, dim, ff, TY_TYPE_Q8_0},
        {"blk.0.ffn_down.weight", 2, ff, dim, TY_TYPE_Q8_0},
    };
    int64_t sizes[12];
    for (int i = 0; i < 12; i++) {
        if (add(w, ts[i].name, (uint32_t)ts[i].nd, ts[i].ne0, ts[i].ne1, ts[i].type)) return 1;
        sizes[i] = (int64_t)ty_row_size(ts[i].type, ts[i].ne0) * ts[i].ne1;
    }
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return finish(w, path, sizes, 12);
}

/* The writer only writes v3; v2 has the same layout, so patch the version field. */
static int patch_version(const char *dir, const char *name, uint8_t version) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "r+b");
    if (!f) return 1;
    int rc = fseek(f, 4, SEEK_SET) != 0 || fputc(version, f) == EOF;
    return fclose(f) != 0 || rc;
}

int main(int argc, char **argv) {
    const char *dir = argc > 1 ? argv[1] : "fuzz/seed";
    int rc = seed_all_types(dir);
    rc |= seed_llama(dir, "llama-tiny.bin", 0);
    rc |= seed_llama(dir, "llama-v2-align64.bin", 64);
    rc |= patch_version(dir, "llama-v2-align64.bin", 2);
    if (rc) fprintf(stderr, "make_seeds failed\n");
    return rc;
}
