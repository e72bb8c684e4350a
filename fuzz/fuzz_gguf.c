/* fuzz_gguf.c - libFuzzer target for the GGUF reader.
 *
 * Opens the input with gguf_open_memory; on success touches every kv, array element and tensor
 * through the public API and checks the reader's promises (data inside the buffer, nbytes matching
 * type and shape, lookups finding each entry). A broken promise traps, which libFuzzer reports
 * like a crash. Build and run with fuzz/run.sh. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "gguf/gguf.h"
#include "quant/quant.h"

#define EXPECT(cond)                                                                               \
    do {                                                                                           \
        if (!(cond)) __builtin_trap();                                                             \
    } while (0)

static volatile uint64_t sink; /* keeps the reads from being optimized away */

static void touch_bytes(const void *p, uint64_t n) {
    const uint8_t *b = p;
    uint64_t s = 0;
    for (uint64_t i = 0; i < n; i++) s += b[i];
    sink += s;
}

static void touch_kv(const gguf_file *f, const gguf_kv *kv) {
    ty_err err;
    uint32_t u32;
    int64_t i64;
    float f32;
    bool b;
    gguf_str s;
    EXPECT(kv->key && kv->key[0]);
    EXPECT(gguf_find_kv(f, kv->key) == kv);
    sink += strlen(gguf_type_name(kv->type));
    /* Each getter either succeeds or fails with a one-line message. */
    if (gguf_get_u32(f, kv->key, &u32, &err)) EXPECT(err.msg[0] && !strchr(err.msg, '\n'));
    if (gguf_get_i64(f, kv->key, &i64, &err)) EXPECT(err.msg[0] && !strchr(err.msg, '\n'));
    if (gguf_get_f32(f, kv->key, &f32, &err)) EXPECT(err.msg[0] && !strchr(err.msg, '\n'));
    if (gguf_get_bool(f, kv->key, &b, &err)) EXPECT(err.msg[0] && !strchr(err.msg, '\n'));
    if (gguf_get_str(f, kv->key, &s, &err) == TY_OK)
        touch_bytes(s.ptr, s.len);
    else
        EXPECT(err.msg[0] && !strchr(err.msg, '\n'));
    if (kv->type != GGUF_TYPE_ARRAY) return;
    EXPECT(kv->arr_type != GGUF_TYPE_ARRAY && kv->arr_type < GGUF_TYPE_COUNT);
    if (kv->arr_type == GGUF_TYPE_STRING) {
        for (uint64_t i = 0; i < kv->arr_n; i++)
            touch_bytes(kv->arr_str[i].ptr, kv->arr_str[i].len);
        return;
    }
    for (uint64_t i = 0; i < kv->arr_n; i++) {
        double d = gguf_arr_get_f64(kv, i);
        sink += (uint64_t)gguf_arr_get_i64(kv, i) + (d == d);
    }
}

static void touch_tensor(const gguf_file *f, const gguf_tensor *t, const uint8_t *data,
                         size_t size) {
    EXPECT(t->name && t->name[0]);
    EXPECT(gguf_find_tensor(f, t->name) == t);
    EXPECT(t->n_dims >= 1 && t->n_dims <= GGUF_MAX_DIMS);
    const ty_type_info *ti = ty_type_get(t->type);
    EXPECT(ti != NULL);
    for (int d = 0; d < GGUF_MAX_DIMS; d++) EXPECT(t->ne[d] >= 1);
    uint64_t rows = (uint64_t)(t->ne[1] * t->ne[2] * t->ne[3]);
    EXPECT(t->nbytes == ty_row_size(t->type, t->ne[0]) * rows);
    const uint8_t *p = t->data;
    EXPECT(p >= data && t->nbytes <= size && (uint64_t)(p - data) <= size - t->nbytes);
    EXPECT(t->offset % gguf_alignment(f) == 0);
    touch_bytes(p, t->nbytes < 4096 ? t->nbytes : 4096);
    sink += p[t->nbytes - 1];
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    gguf_file *f = NULL;
    ty_err err = {0};
    int rc = gguf_open_memory(data, size, &f, &err);
    if (rc != TY_OK) {
        EXPECT(f == NULL);
        EXPECT(err.code == rc && err.msg[0] && !strchr(err.msg, '\n'));
        EXPECT(rc == TY_ERR_FORMAT || rc == TY_ERR_UNSUPPORTED);
        return 0;
    }
    EXPECT(gguf_version(f) == 2 || gguf_version(f) == 3);
    uint64_t a = gguf_alignment(f);
    EXPECT(a && (a & (a - 1)) == 0);
    EXPECT(gguf_data_offset(f) <= size && gguf_file_size(f) == size);
    for (uint64_t i = 0; i < gguf_n_kv(f); i++) touch_kv(f, gguf_kv_at(f, i));
    for (uint64_t i = 0; i < gguf_n_tensors(f); i++)
        touch_tensor(f, gguf_tensor_at(f, i), data, size);
    EXPECT(gguf_kv_at(f, gguf_n_kv(f)) == NULL && gguf_tensor_at(f, gguf_n_tensors(f)) == NULL);
    gguf_close(f);
    return 0;
}
