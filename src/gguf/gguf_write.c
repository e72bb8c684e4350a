/* gguf_write.c - the streaming GGUF (v3) writer.
 *
 * Metadata values are serialized (type tag + value, as they appear in the file) when they are
 * set; tensors are declared with their shapes. gguf_writer_begin computes the data offsets and
 * writes the whole header in one go; tensor data then streams straight to the file in
 * declaration order, so a multi-gigabyte file never has to be held in memory. */
#include "gguf/gguf.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "quant/quant.h"

#define NAME_MAX_LEN 65535u

/* ---- a growable byte buffer ------------------------------------------------------------------ */

typedef struct bbuf {
    uint8_t *p;
    size_t n, cap;
    bool oom; /* sticky: set by the first failed allocation */
} bbuf;

static void bb_put(bbuf *b, const void *src, uint64_t n) {
    if (b->oom) return;
    if (n > SIZE_MAX - b->n) {
        b->oom = true;
        return;
    }
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n) cap = cap > SIZE_MAX / 2 ? b->n + (size_t)n : cap * 2;
        uint8_t *p = realloc(b->p, cap);
        if (!p) {
            b->oom = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    if (n) memcpy(b->p + b->n, src, (size_t)n);
    b->n += (size_t)n;
}

static void bb_uint(bbuf *b, uint64_t v, unsigned nbytes) {
    uint8_t le[8];
    for (unsigned i = 0; i < nbytes; i++) le[i] = (uint8_t)(v >> (8 * i));
    bb_put(b, le, nbytes);
}

static void bb_u32(bbuf *b, uint32_t v) { bb_uint(b, v, 4); }
static void bb_u64(bbuf *b, uint64_t v) { bb_uint(b, v, 8); }

static void bb_str(bbuf *b, const char *s, uint64_t len) {
    bb_u64(b, len);
    bb_put(b, s, len);
}

static uint32_t f32_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

/* ---- the writer ------------------------------------------------------------------------------ */

typedef struct wkv {
    char *key;
    uint8_t *val; /* u32 type tag + the value, as written to the file */
    size_t val_len;
} wkv;

typedef struct wtensor {
    char *name;
    uint32_t n_dims;
    int64_t ne[GGUF_MAX_DIMS];
    uint32_t type;
    uint64_t nbytes, offset;
} wtensor;

struct gguf_writer {
    wkv *kv;
    size_t n_kv, cap_kv;
    wtensor *t;
    size_t n_t, cap_t;
    int status; /* the first failure of a setter (they have no ty_err); begin reports it */
    char msg[200];
    FILE *fp; /* open between begin and finish */
    char *path;
    uint64_t alignment;
    size_t next;   /* the tensor whose data comes next */
    uint64_t part; /* bytes of it written so far */
    bool begun;
};

static int fail(gguf_writer *w, int code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

static int fail(gguf_writer *w, int code, const char *fmt, ...) {
    if (w->status == TY_OK) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(w->msg, sizeof w->msg, fmt, ap);
        va_end(ap);
        w->status = code;
    }
    return code;
}

int gguf_writer_new(gguf_writer **out, ty_err *err) {
    if (!out) return ty_seterr(err, TY_ERR_INVALID_ARG, "gguf_writer_new: out is NULL");
    *out = calloc(1, sizeof **out);
    if (!*out) return ty_seterr(err, TY_ERR_NOMEM, "out of memory creating a GGUF writer");
    (*out)->alignment = GGUF_DEFAULT_ALIGNMENT;
    return TY_OK;
}

/* Closes and deletes an incomplete output file. */
static void abandon_file(gguf_writer *w) {
    if (w->fp) {
        fclose(w->fp);
        w->fp = NULL;
        remove(w->path);
    }
}

void gguf_writer_free(gguf_writer *w) {
    if (!w) return;
    abandon_file(w);
    for (size_t i = 0; i < w->n_kv; i++) {
        free(w->kv[i].key);
        free(w->kv[i].val);
    }
    for (size_t i = 0; i < w->n_t; i++) free(w->t[i].name);
    free(w->kv);
    free(w->t);
    free(w->path);
    free(w);
}

static bool grow(void **arr, size_t *cap, size_t n, size_t elem) {
    if (n < *cap) return true;
    size_t c = *cap ? *cap * 2 : 16;
    void *p = realloc(*arr, c * elem);
    if (!p) return false;
    *arr = p;
    *cap = c;
    return true;
}

/* Stores a serialized value under key (replacing an existing one); takes b's buffer. */
static int set_value(gguf_writer *w, const char *key, bbuf *b) {
    int rc = TY_OK;
    if (!w || w->begun)
        rc = TY_ERR_INVALID_ARG; /* too late to matter: the header is written */
    else if (!key || !key[0] || strlen(key) > NAME_MAX_LEN)
        rc = fail(w, TY_ERR_INVALID_ARG, "metadata key is NULL, empty or longer than %u bytes",
                  NAME_MAX_LEN);
    else if (b->oom)
        rc = fail(w, TY_ERR_NOMEM, "out of memory setting metadata '%.80s'", key);
    if (rc) {
        free(b->p);
        return rc;
    }
    for (size_t i = 0; i < w->n_kv; i++) {
        if (strcmp(w->kv[i].key, key) == 0) {
            free(w->kv[i].val);
            w->kv[i].val = b->p;
            w->kv[i].val_len = b->n;
            return TY_OK;
        }
    }
    char *k = strdup(key);
    if (!k || !grow((void **)&w->kv, &w->cap_kv, w->n_kv, sizeof *w->kv)) {
        free(k);
        free(b->p);
        return fail(w, TY_ERR_NOMEM, "out of memory setting metadata '%.80s'", key);
    }
    w->kv[w->n_kv++] = (wkv){k, b->p, b->n};
    return TY_OK;
}

static int set_scalar(gguf_writer *w, const char *key, uint32_t type, uint64_t raw) {
    bbuf b = {0};
    bb_u32(&b, type);
    bb_uint(&b, raw, (unsigned)gguf_value_size(type));
    return set_value(w, key, &b);
}

int gguf_writer_set_u32(gguf_writer *w, const char *key, uint32_t v) {
    return set_scalar(w, key, GGUF_TYPE_UINT32, v);
}

int gguf_writer_set_i32(gguf_writer *w, const char *key, int32_t v) {
    return set_scalar(w, key, GGUF_TYPE_INT32, (uint32_t)v);
}

int gguf_writer_set_f32(gguf_writer *w, const char *key, float v) {
    return set_scalar(w, key, GGUF_TYPE_FLOAT32, f32_bits(v));
}

int gguf_writer_set_bool(gguf_writer *w, const char *key, bool v) {
    return set_scalar(w, key, GGUF_TYPE_BOOL, v ? 1 : 0);
}

int gguf_writer_set_str(gguf_writer *w, const char *key, const char *v) {
    if (!v)
        return w ? fail(w, TY_ERR_INVALID_ARG, "metadata '%.80s': NULL string", key ? key : "")
                 : TY_ERR_INVALID_ARG;
    bbuf b = {0};
    bb_u32(&b, GGUF_TYPE_STRING);
    bb_str(&b, v, strlen(v));
    return set_value(w, key, &b);
}

static int bad_array(gguf_writer *w, const char *key) {
    return w ? fail(w, TY_ERR_INVALID_ARG, "metadata '%.80s': NULL array or string", key ? key : "")
             : TY_ERR_INVALID_ARG;
}

int gguf_writer_set_arr_str(gguf_writer *w, const char *key, const gguf_str *v, uint64_t n) {
    if (n && !v) return bad_array(w, key);
    for (uint64_t i = 0; i < n; i++)
        if (v[i].len && !v[i].ptr) return bad_array(w, key);
    bbuf b = {0};
    bb_u32(&b, GGUF_TYPE_ARRAY);
    bb_u32(&b, GGUF_TYPE_STRING);
    bb_u64(&b, n);
    for (uint64_t i = 0; i < n; i++) bb_str(&b, v[i].ptr, v[i].len);
    return set_value(w, key, &b);
}

int gguf_writer_set_arr_f32(gguf_writer *w, const char *key, const float *v, uint64_t n) {
    if (n && !v) return bad_array(w, key);
    bbuf b = {0};
    bb_u32(&b, GGUF_TYPE_ARRAY);
    bb_u32(&b, GGUF_TYPE_FLOAT32);
    bb_u64(&b, n);
    for (uint64_t i = 0; i < n; i++) bb_u32(&b, f32_bits(v[i]));
    return set_value(w, key, &b);
}

int gguf_writer_set_arr_i32(gguf_writer *w, const char *key, const int32_t *v, uint64_t n) {
    if (n && !v) return bad_array(w, key);
    bbuf b = {0};
    bb_u32(&b, GGUF_TYPE_ARRAY);
    bb_u32(&b, GGUF_TYPE_INT32);
    bb_u64(&b, n);
    for (uint64_t i = 0; i < n; i++) bb_u32(&b, (uint32_t)v[i]);
    return set_value(w, key, &b);
}

/* The raw little-endian bits of a scalar kv of a fixed-size type. */
static uint64_t scalar_raw(const gguf_kv *kv) {
    switch (kv->type) {
    case GGUF_TYPE_FLOAT32: return f32_bits((float)kv->v.f64);
    case GGUF_TYPE_FLOAT64: {
        uint64_t u;
        memcpy(&u, &kv->v.f64, sizeof u);
        return u;
    }
    default: return kv->v.u64; /* integers (two's complement) and bool; the tag keeps the width */
    }
}

int gguf_writer_copy_kv(gguf_writer *w, const gguf_kv *kv) {
    if (!w || !kv) return TY_ERR_INVALID_ARG;
    if (kv->type >= GGUF_TYPE_COUNT ||
        (kv->type == GGUF_TYPE_ARRAY &&
         (kv->arr_type >= GGUF_TYPE_COUNT || kv->arr_type == GGUF_TYPE_ARRAY)))
        return fail(w, TY_ERR_INVALID_ARG, "metadata '%.80s': unsupported value type",
                    kv->key ? kv->key : "");
    bbuf b = {0};
    bb_u32(&b, kv->type);
    if (kv->type == GGUF_TYPE_STRING) {
        if (kv->v.str.len && !kv->v.str.ptr) {
            free(b.p);
            return bad_array(w, kv->key);
        }
        bb_str(&b, kv->v.str.ptr, kv->v.str.len);
    } else if (kv->type != GGUF_TYPE_ARRAY) {
        bb_uint(&b, scalar_raw(kv), (unsigned)gguf_value_size(kv->type));
    } else if (kv->arr_type == GGUF_TYPE_STRING) {
        free(b.p);
        return gguf_writer_set_arr_str(w, kv->key, kv->arr_str, kv->arr_n);
    } else {
        uint64_t sz = gguf_value_size(kv->arr_type);
        if (kv->arr_n && !kv->arr_data) {
            free(b.p);
            return bad_array(w, kv->key);
        }
        if (kv->arr_n > UINT64_MAX / sz) b.oom = true;
        bb_u32(&b, kv->arr_type);
        bb_u64(&b, kv->arr_n);
        if (!b.oom) bb_put(&b, kv->arr_data, kv->arr_n * sz); /* already little-endian */
    }
    return set_value(w, kv->key, &b);
}

int gguf_writer_add_tensor(gguf_writer *w, const char *name, uint32_t n_dims, const int64_t *ne,
                           uint32_t type, ty_err *err) {
    if (!w || !name || !ne)
        return ty_seterr(err, TY_ERR_INVALID_ARG, "gguf_writer_add_tensor: NULL argument");
    if (w->begun)
        return ty_seterr(err, TY_ERR_INVALID_ARG, "tensor '%.80s' added after gguf_writer_begin",
                         name);
    if (!name[0] || strlen(name) > NAME_MAX_LEN)
        return ty_seterr(err, TY_ERR_INVALID_ARG, "tensor name is empty or longer than %u bytes",
                         NAME_MAX_LEN);
    if (n_dims < 1 || n_dims > GGUF_MAX_DIMS)
        return ty_seterr(err, TY_ERR_INVALID_ARG,
                         "tensor '%.80s': %" PRIu32 " dimensions (must be 1 to %d)", name, n_dims,
                         GGUF_MAX_DIMS);
    const ty_type_info *ti = ty_type_get(type);
    if (!ti)
        return ty_seterr(err, TY_ERR_INVALID_ARG, "tensor '%.80s': unknown type %" PRIu32, name,
                         type);
    wtensor t = {.n_dims = n_dims, .type = type, .ne = {1, 1, 1, 1}};
    int64_t n_elem = 1;
    for (uint32_t d = 0; d < n_dims; d++) {
        if (ne[d] < 1 || ne[d] > INT64_MAX / n_elem)
            return ty_seterr(err, TY_ERR_INVALID_ARG,
                             "tensor '%.80s': bad dimension %" PRIu32 " = %" PRId64
                             " (or too many elements)",
                             name, d, ne[d]);
        n_elem *= ne[d];
        t.ne[d] = ne[d];
    }
    if (t.ne[0] % ti->block_size != 0)
        return ty_seterr(err, TY_ERR_INVALID_ARG,
                         "tensor '%.80s': rows of %" PRId64
                         " elements are not a multiple of the %s block size %" PRId32,
                         name, t.ne[0], ti->name, ti->block_size);
    uint64_t rows = (uint64_t)(t.ne[1] * t.ne[2] * t.ne[3]);
    uint64_t blocks = (uint64_t)(t.ne[0] / ti->block_size), block_bytes = (uint64_t)ti->type_size;
    /* below 2^63 bytes, so that begin can add up offsets without overflow */
    if (blocks > (UINT64_MAX / 2) / block_bytes || rows > (UINT64_MAX / 2) / (blocks * block_bytes))
        return ty_seterr(err, TY_ERR_INVALID_ARG, "tensor '%.80s' is too large", name);
    t.nbytes = rows * blocks * block_bytes;
    for (size_t i = 0; i < w->n_t; i++)
        if (strcmp(w->t[i].name, name) == 0)
            return ty_seterr(err, TY_ERR_INVALID_ARG, "duplicate tensor name '%.80s'", name);
    t.name = strdup(name);
    if (!t.name || !grow((void **)&w->t, &w->cap_t, w->n_t, sizeof *w->t)) {
        free(t.name);
        return ty_seterr(err, TY_ERR_NOMEM, "out of memory adding tensor '%.80s'", name);
    }
    w->t[w->n_t++] = t;
    return TY_OK;
}

static uint64_t pad_to(uint64_t n, uint64_t align) { return (align - n % align) % align; }

/* general.alignment, if set, must be a uint32 power of two. */
static int resolve_alignment(gguf_writer *w, ty_err *err) {
    for (size_t i = 0; i < w->n_kv; i++) {
        if (strcmp(w->kv[i].key, "general.alignment") != 0) continue;
        const uint8_t *v = w->kv[i].val;
        uint32_t a = 0;
        bool ok = w->kv[i].val_len == 8 && v[0] == GGUF_TYPE_UINT32 && !v[1] && !v[2] && !v[3];
        if (ok)
            a = (uint32_t)v[4] | (uint32_t)v[5] << 8 | (uint32_t)v[6] << 16 | (uint32_t)v[7] << 24;
        if (!ok || a == 0 || (a & (a - 1)) != 0)
            return ty_seterr(err, TY_ERR_INVALID_ARG,
                             "general.alignment must be a uint32 power of two");
        w->alignment = a;
    }
    return TY_OK;
}

static int io_error(gguf_writer *w, const char *what, ty_err *err) {
    int e = errno;
    abandon_file(w);
    fail(w, TY_ERR_IO, "cannot %s '%.200s': %s", what, w->path, strerror(e));
    return ty_seterr(err, TY_ERR_IO, "%s", w->msg);
}

int gguf_writer_begin(gguf_writer *w, const char *path, ty_err *err) {
    if (!w || !path) return ty_seterr(err, TY_ERR_INVALID_ARG, "gguf_writer_begin: NULL argument");
    if (w->begun) return ty_seterr(err, TY_ERR_INVALID_ARG, "gguf_writer_begin called twice");
    if (w->status) return ty_seterr(err, w->status, "GGUF writer: %s", w->msg);
    int rc = resolve_alignment(w, err);
    if (rc) return rc;

    uint64_t off = 0;
    for (size_t i = 0; i < w->n_t; i++) {
        uint64_t size = w->t[i].nbytes + pad_to(w->t[i].nbytes, w->alignment); /* < 2^63 + 2^32 */
        if (off > UINT64_MAX / 2 - size)
            return ty_seterr(err, TY_ERR_INVALID_ARG, "the tensors add up to more than 2^63 bytes");
        w->t[i].offset = off;
        off += size;
    }

    bbuf b = {0};
    bb_put(&b, "GGUF", 4);
    bb_u32(&b, 3);
    bb_u64(&b, w->n_t);
    bb_u64(&b, w->n_kv);
    for (size_t i = 0; i < w->n_kv; i++) {
        bb_str(&b, w->kv[i].key, strlen(w->kv[i].key));
        bb_put(&b, w->kv[i].val, w->kv[i].val_len);
    }
    for (size_t i = 0; i < w->n_t; i++) {
        const wtensor *t = &w->t[i];
        bb_str(&b, t->name, strlen(t->name));
        bb_u32(&b, t->n_dims);
        for (uint32_t d = 0; d < t->n_dims; d++) bb_u64(&b, (uint64_t)t->ne[d]);
        bb_u32(&b, t->type);
        bb_u64(&b, t->offset);
    }
    static const uint8_t zeros[64];
    for (uint64_t pad = pad_to(b.n, w->alignment); pad > 0;) {
        uint64_t n = pad < sizeof zeros ? pad : sizeof zeros;
        bb_put(&b, zeros, n);
        pad -= n;
    }
    if (b.oom) {
        free(b.p);
        return ty_seterr(err, TY_ERR_NOMEM, "out of memory building the GGUF header");
    }

    w->begun = true;
    w->path = strdup(path);
    if (!w->path) {
        free(b.p);
        fail(w, TY_ERR_NOMEM, "out of memory");
        return ty_seterr(err, TY_ERR_NOMEM, "out of memory");
    }
    w->fp = fopen(path, "wb");
    if (!w->fp) {
        free(b.p);
        int e = errno;
        fail(w, TY_ERR_IO, "cannot create '%.200s': %s", path, strerror(e));
        return ty_seterr(err, TY_ERR_IO, "%s", w->msg);
    }
    setvbuf(w->fp, NULL, _IOFBF, 1 << 20);
    size_t n = fwrite(b.p, 1, b.n, w->fp);
    size_t want = b.n;
    free(b.p);
    return n == want ? TY_OK : io_error(w, "write", err);
}

static int write_padding(gguf_writer *w, uint64_t n, ty_err *err) {
    static const uint8_t zeros[4096];
    while (n > 0) {
        size_t k = n < sizeof zeros ? (size_t)n : sizeof zeros;
        if (fwrite(zeros, 1, k, w->fp) != k) return io_error(w, "write", err);
        n -= k;
    }
    return TY_OK;
}

int gguf_writer_write_part(gguf_writer *w, const void *data, uint64_t n, ty_err *err) {
    if (!w) return ty_seterr(err, TY_ERR_INVALID_ARG, "gguf_writer_write_part: NULL writer");
    if (w->status) return ty_seterr(err, w->status, "GGUF writer: %s", w->msg);
    if (!w->fp)
        return ty_seterr(err, TY_ERR_INVALID_ARG,
                         "tensor data written before gguf_writer_begin or after finish");
    if (w->next >= w->n_t)
        return ty_seterr(err, TY_ERR_INVALID_ARG,
                         "tensor data written after all %zu tensors were complete", w->n_t);
    const wtensor *t = &w->t[w->next];
    if (n > t->nbytes - w->part)
        return ty_seterr(err, TY_ERR_INVALID_ARG,
                         "tensor '%.80s': %" PRIu64 " bytes given but only %" PRIu64 " remain",
                         t->name, n, t->nbytes - w->part);
    if (n && !data) return ty_seterr(err, TY_ERR_INVALID_ARG, "tensor '%.80s': NULL data", t->name);
    if (n && fwrite(data, 1, (size_t)n, w->fp) != (size_t)n) return io_error(w, "write", err);
    w->part += n;
    if (w->part < t->nbytes) return TY_OK;
    w->next++;
    w->part = 0;
    return write_padding(w, pad_to(t->nbytes, w->alignment), err);
}

int gguf_writer_write_data(gguf_writer *w, const void *data, uint64_t nbytes, ty_err *err) {
    if (w && w->fp && w->next < w->n_t) {
        const wtensor *t = &w->t[w->next];
        if (w->part != 0 || nbytes != t->nbytes)
            return ty_seterr(err, TY_ERR_INVALID_ARG,
                             "tensor '%.80s' has %" PRIu64 " bytes of data, got %" PRIu64 "%s",
                             t->name, t->nbytes, nbytes, w->part ? " (after a partial write)" : "");
    }
    return gguf_writer_write_part(w, data, nbytes, err);
}

int gguf_writer_finish(gguf_writer *w, ty_err *err) {
    if (!w) return ty_seterr(err, TY_ERR_INVALID_ARG, "gguf_writer_finish: NULL writer");
    if (w->status) return ty_seterr(err, w->status, "GGUF writer: %s", w->msg);
    if (!w->fp)
        return ty_seterr(err, TY_ERR_INVALID_ARG, "gguf_writer_finish without a successful begin");
    if (w->next < w->n_t)
        return ty_seterr(err, TY_ERR_INVALID_ARG, "the data of only %zu of %zu tensors was written",
                         w->next, w->n_t);
    if (fflush(w->fp) != 0 || ferror(w->fp)) return io_error(w, "write", err);
    FILE *fp = w->fp;
    w->fp = NULL;
    if (fclose(fp) != 0) {
        int e = errno;
        remove(w->path);
        fail(w, TY_ERR_IO, "cannot write '%.200s': %s", w->path, strerror(e));
        return ty_seterr(err, TY_ERR_IO, "%s", w->msg);
    }
    return TY_OK;
}
