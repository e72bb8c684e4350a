/* gguf_read.c - the GGUF reader: maps a file (or takes a caller's buffer) and validates all of it.
 *
 * Everything is read through a bounds-checked cursor. Counts and lengths from the file are
 * compared with the bytes that remain before anything is allocated, so an allocation is never
 * larger than a small multiple of the file size. Keys and tensor names are copied (NUL-terminated);
 * string values, numeric arrays and tensor data point into the mapping. */
#include "gguf/gguf.h"

#include <fcntl.h>
#include <inttypes.h>
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "quant/quant.h"

#define NAME_MAX_LEN 65535u
/* The smallest possible encodings, used to reject impossible counts before allocating:
 * key (u64 length + >= 1 byte) + u32 type + >= 1 byte of value; tensor info: name (u64 + >= 1)
 * + u32 n_dims + >= 1 u64 dim + u32 type + u64 offset. */
#define MIN_KV_BYTES 14u
#define MIN_TENSOR_INFO_BYTES 33u

struct gguf_file {
    const uint8_t *data;
    uint64_t size;
    void *map; /* non-NULL when gguf_open mapped the file */
    uint32_t version;
    uint64_t alignment;
    uint64_t data_offset;
    uint64_t n_kv;
    gguf_kv *kv;
    const gguf_kv **kv_by_key; /* sorted by key, for duplicate checks and binary search */
    uint64_t n_tensors;
    gguf_tensor *tensors;
    const gguf_tensor **tensor_by_name; /* sorted by name */
};

/* ---- small helpers --------------------------------------------------------------------------- */

static uint64_t load_le(const uint8_t *p, unsigned n) {
    uint64_t v = 0;
    for (unsigned i = n; i-- > 0;) v = v << 8 | p[i];
    return v;
}

static uint64_t sat_add(uint64_t a, uint64_t b) { return a > UINT64_MAX - b ? UINT64_MAX : a + b; }

/* Copies up to 60 bytes of s into buf as printable ASCII (other bytes as \xNN) so that names from
 * a hostile file cannot break a one-line message. */
static const char *show(char *buf, size_t cap, const char *s, uint64_t len) {
    size_t o = 0;
    uint64_t i;
    for (i = 0; i < len && i < 60 && o + 5 < cap; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch >= 0x20 && ch < 0x7f && ch != '\\')
            buf[o++] = (char)ch;
        else
            o += (size_t)snprintf(buf + o, cap - o, "\\x%02x", ch);
    }
    if (i < len && o + 4 <= cap) {
        memcpy(buf + o, "...", 3);
        o += 3;
    }
    buf[o < cap ? o : cap - 1] = '\0';
    return buf;
}

static bool is_pow2(uint64_t v) { return v != 0 && (v & (v - 1)) == 0; }

static bool is_int_type(uint32_t t) {
    return t <= GGUF_TYPE_INT32 || t == GGUF_TYPE_UINT64 || t == GGUF_TYPE_INT64;
}

static bool is_signed_type(uint32_t t) {
    return t == GGUF_TYPE_INT8 || t == GGUF_TYPE_INT16 || t == GGUF_TYPE_INT32 ||
        t == GGUF_TYPE_INT64;
}

const char *gguf_type_name(uint32_t t) {
    static const char *const names[GGUF_TYPE_COUNT] = {
        "uint8", "int8",   "uint16", "int16",  "uint32", "int32",  "float32",
        "bool",  "string", "array",  "uint64", "int64",  "float64"};
    return t < GGUF_TYPE_COUNT ? names[t] : "unknown";
}

uint64_t gguf_value_size(uint32_t t) {
    static const uint8_t sizes[GGUF_TYPE_COUNT] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
    return t < GGUF_TYPE_COUNT ? sizes[t] : 0;
}

/* Decodes one fixed-size element of type t at p into kv->v. */
static void decode_scalar(uint32_t t, const uint8_t *p, gguf_kv *kv) {
    uint64_t raw = load_le(p, (unsigned)gguf_value_size(t));
    switch (t) {
    case GGUF_TYPE_INT8: kv->v.i64 = (int8_t)raw; break;
    case GGUF_TYPE_INT16: kv->v.i64 = (int16_t)raw; break;
    case GGUF_TYPE_INT32: kv->v.i64 = (int32_t)raw; break;
    case GGUF_TYPE_INT64: kv->v.i64 = (int64_t)raw; break;
    case GGUF_TYPE_FLOAT32: {
        uint32_t u = (uint32_t)raw;
        float x;
        memcpy(&x, &u, sizeof x);
        kv->v.f64 = x;
        break;
    }
    case GGUF_TYPE_FLOAT64: memcpy(&kv->v.f64, &raw, sizeof raw); break;
    default: kv->v.u64 = raw; break; /* unsigned types and bool */
    }
}

/* ---- the cursor ------------------------------------------------------------------------------ */

typedef struct parser {
    const uint8_t *base;
    uint64_t size;
    uint64_t pos; /* invariant: pos <= size */
    ty_err *err;
    char what[160]; /* the thing being read, for messages: "metadata key 'x'" */
} parser;

static uint64_t remaining(const parser *p) { return p->size - p->pos; }

/* Checks that n elements of `unit` bytes follow. `count_name` names n for the message when it is
 * so large that it cannot be a mere truncation (more bytes than the whole file). */
static int need(parser *p, uint64_t n, uint64_t unit, const char *count_name) {
    uint64_t bytes = (unit != 0 && n > UINT64_MAX / unit) ? UINT64_MAX : n * unit;
    if (bytes <= remaining(p)) return TY_OK;
    if (count_name && bytes > p->size)
        return ty_seterr(p->err, TY_ERR_FORMAT,
                         "corrupt file: %s has %s %" PRIu64 " (at byte %" PRIu64
                         "), more than the whole file of %" PRIu64 " bytes could hold",
                         p->what, count_name, n, p->pos, p->size);
    return ty_seterr(p->err, TY_ERR_FORMAT,
                     "truncated file: %s ends at byte %" PRIu64 " but the file has %" PRIu64
                     " bytes",
                     p->what, sat_add(p->pos, bytes), p->size);
}

static int rd_uint(parser *p, unsigned n, uint64_t *out) {
    int rc = need(p, 1, n, NULL);
    if (rc) return rc;
    *out = load_le(p->base + p->pos, n);
    p->pos += n;
    return TY_OK;
}

static int rd_u32(parser *p, uint32_t *out) {
    uint64_t v = 0;
    int rc = rd_uint(p, 4, &v);
    *out = (uint32_t)v;
    return rc;
}

static int rd_u64(parser *p, uint64_t *out) { return rd_uint(p, 8, out); }

/* A length-prefixed string; points into the buffer. */
static int rd_str(parser *p, gguf_str *out) {
    uint64_t len;
    int rc = rd_u64(p, &len);
    if (!rc) rc = need(p, len, 1, "a string length of");
    if (rc) return rc;
    out->len = len;
    out->ptr = (const char *)(p->base + p->pos);
    p->pos += len;
    return TY_OK;
}

/* A key or tensor name: non-empty, at most NAME_MAX_LEN bytes, no NUL; returns a malloc'd copy. */
static int rd_name(parser *p, const char *kind, char **out) {
    uint64_t at = p->pos;
    gguf_str s;
    uint64_t len;
    int rc = rd_u64(p, &len);
    if (rc) return rc;
    if (len == 0)
        return ty_seterr(p->err, TY_ERR_FORMAT, "corrupt file: %s has an empty %s", p->what, kind);
    if (len > NAME_MAX_LEN)
        return ty_seterr(p->err, TY_ERR_FORMAT,
                         "corrupt file: %s has a %s of %" PRIu64 " bytes (the limit is %u)",
                         p->what, kind, len, NAME_MAX_LEN);
    p->pos = at;
    rc = rd_str(p, &s);
    if (rc) return rc;
    if (memchr(s.ptr, 0, s.len)) {
        char shown[256];
        return ty_seterr(p->err, TY_ERR_FORMAT,
                         "corrupt file: %s has a %s containing a NUL byte ('%s')", p->what, kind,
                         show(shown, sizeof shown, s.ptr, s.len));
    }
    char *copy = malloc(s.len + 1);
    if (!copy) return ty_seterr(p->err, TY_ERR_NOMEM, "out of memory reading %s", p->what);
    memcpy(copy, s.ptr, s.len);
    copy[s.len] = '\0';
    *out = copy;
    return TY_OK;
}

/* ---- metadata -------------------------------------------------------------------------------- */

static int rd_array(parser *p, gguf_kv *kv) {
    uint32_t et;
    uint64_t n;
    int rc = rd_u32(p, &et);
    if (rc) return rc;
    if (et == GGUF_TYPE_ARRAY)
        return ty_seterr(p->err, TY_ERR_UNSUPPORTED,
                         "%s is an array of arrays, which is not supported", p->what);
    if (et >= GGUF_TYPE_COUNT)
        return ty_seterr(p->err, TY_ERR_FORMAT,
                         "corrupt file: %s is an array of unknown value type %" PRIu32, p->what,
                         et);
    if ((rc = rd_u64(p, &n))) return rc;
    kv->arr_type = et;
    kv->arr_n = n;
    if (et != GGUF_TYPE_STRING) {
        uint64_t sz = gguf_value_size(et);
        if ((rc = need(p, n, sz, "an array length of"))) return rc;
        kv->arr_data = p->base + p->pos;
        if (et == GGUF_TYPE_BOOL) {
            for (uint64_t i = 0; i < n; i++)
                if (kv->arr_data[i] > 1)
                    return ty_seterr(p->err, TY_ERR_FORMAT,
                                     "corrupt file: %s: bool element %" PRIu64
                                     " is %u (must be 0 or 1)",
                                     p->what, i, kv->arr_data[i]);
        }
        p->pos += n * sz;
        return TY_OK;
    }
    /* Each string takes at least its 8-byte length: this bounds the allocation below. */
    if ((rc = need(p, n, 8, "an array length of"))) return rc;
    if (n == 0) return TY_OK;
    kv->arr_str = malloc(n * sizeof *kv->arr_str);
    if (!kv->arr_str) return ty_seterr(p->err, TY_ERR_NOMEM, "out of memory reading %s", p->what);
    for (uint64_t i = 0; i < n; i++)
        if ((rc = rd_str(p, &kv->arr_str[i]))) return rc;
    return TY_OK;
}

static int rd_value(parser *p, gguf_kv *kv) {
    uint32_t t = kv->type;
    int rc;
    if (t == GGUF_TYPE_ARRAY) return rd_array(p, kv);
    if (t == GGUF_TYPE_STRING) return rd_str(p, &kv->v.str);
    if (t >= GGUF_TYPE_COUNT)
        return ty_seterr(p->err, TY_ERR_FORMAT, "corrupt file: %s has unknown value type %" PRIu32,
                         p->what, t);
    unsigned sz = (unsigned)gguf_value_size(t);
    if ((rc = need(p, 1, sz, NULL))) return rc;
    decode_scalar(t, p->base + p->pos, kv);
    if (t == GGUF_TYPE_BOOL && kv->v.u64 > 1)
        return ty_seterr(p->err, TY_ERR_FORMAT,
                         "corrupt file: %s: bool value %" PRIu64 " at byte %" PRIu64
                         " is not 0 or 1",
                         p->what, kv->v.u64, p->pos);
    p->pos += sz;
    return TY_OK;
}

static int rd_kv(parser *p, uint64_t i, gguf_kv *kv) {
    char shown[256];
    int rc;
    snprintf(p->what, sizeof p->what, "metadata entry %" PRIu64 " (at byte %" PRIu64 ")", i,
             p->pos);
    char *key = NULL;
    if ((rc = rd_name(p, "metadata key", &key))) return rc;
    kv->key = key;
    snprintf(p->what, sizeof p->what, "metadata key '%s'",
             show(shown, sizeof shown, key, strlen(key)));
    if ((rc = rd_u32(p, &kv->type))) return rc;
    return rd_value(p, kv);
}

static int cmp_kv_ptr(const void *a, const void *b) {
    return strcmp((*(const gguf_kv *const *)a)->key, (*(const gguf_kv *const *)b)->key);
}

static int cmp_tensor_name(const void *a, const void *b) {
    return strcmp((*(const gguf_tensor *const *)a)->name, (*(const gguf_tensor *const *)b)->name);
}

static int cmp_tensor_offset(const void *a, const void *b) {
    uint64_t x = (*(const gguf_tensor *const *)a)->offset;
    uint64_t y = (*(const gguf_tensor *const *)b)->offset;
    return x < y ? -1 : x > y;
}

/* Sorts the kv index by key and rejects duplicates. */
static int index_kvs(gguf_file *f, ty_err *err) {
    if (f->n_kv == 0) return TY_OK;
    f->kv_by_key = malloc(f->n_kv * sizeof *f->kv_by_key);
    if (!f->kv_by_key) return ty_seterr(err, TY_ERR_NOMEM, "out of memory indexing metadata");
    for (uint64_t i = 0; i < f->n_kv; i++) f->kv_by_key[i] = &f->kv[i];
    qsort(f->kv_by_key, f->n_kv, sizeof *f->kv_by_key, cmp_kv_ptr);
    for (uint64_t i = 1; i < f->n_kv; i++) {
        const gguf_kv *a = f->kv_by_key[i - 1], *b = f->kv_by_key[i];
        if (strcmp(a->key, b->key) == 0) {
            char shown[256];
            uint64_t ia = (uint64_t)(a - f->kv), ib = (uint64_t)(b - f->kv);
            return ty_seterr(err, TY_ERR_FORMAT,
                             "corrupt file: duplicate metadata key '%s' (entries %" PRIu64
                             " and %" PRIu64 ")",
                             show(shown, sizeof shown, a->key, strlen(a->key)), ia < ib ? ia : ib,
                             ia < ib ? ib : ia);
        }
    }
    return TY_OK;
}

/* general.alignment: an integer, a nonzero power of two; default 32. */
static int read_alignment(gguf_file *f, ty_err *err) {
    const gguf_kv *kv = gguf_find_kv(f, "general.alignment");
    f->alignment = GGUF_DEFAULT_ALIGNMENT;
    if (!kv) return TY_OK;
    if (!is_int_type(kv->type))
        return ty_seterr(err, TY_ERR_FORMAT,
                         "corrupt file: general.alignment has type %s (must be an integer)",
                         gguf_type_name(kv->type));
    if (is_signed_type(kv->type) && kv->v.i64 < 0)
        return ty_seterr(err, TY_ERR_FORMAT,
                         "corrupt file: general.alignment is %" PRId64
                         " (must be a nonzero power of two)",
                         kv->v.i64);
    if (!is_pow2(kv->v.u64))
        return ty_seterr(err, TY_ERR_FORMAT,
                         "corrupt file: general.alignment is %" PRIu64
                         " (must be a nonzero power of two)",
                         kv->v.u64);
    f->alignment = kv->v.u64;
    return TY_OK;
}

/* ---- tensor infos ---------------------------------------------------------------------------- */

static int rd_shape(parser *p, gguf_tensor *t) {
    int rc = rd_u32(p, &t->n_dims);
    if (rc) return rc;
    if (t->n_dims < 1 || t->n_dims > GGUF_MAX_DIMS)
        return ty_seterr(p->err, TY_ERR_FORMAT,
                         "corrupt file: %s has %" PRIu32 " dimensions (must be 1 to %d)", p->what,
                         t->n_dims, GGUF_MAX_DIMS);
    int64_t n_elem = 1;
    for (uint32_t d = 0; d < GGUF_MAX_DIMS; d++) t->ne[d] = 1;
    for (uint32_t d = 0; d < t->n_dims; d++) {
        uint64_t ne;
        if ((rc = rd_u64(p, &ne))) return rc;
        if (ne == 0 || ne > (uint64_t)INT64_MAX)
            return ty_seterr(p->err, TY_ERR_FORMAT,
                             "corrupt file: %s has dimension %" PRIu32 " of size %" PRIu64
                             " (must be 1 to 2^63-1)",
                             p->what, d, ne);
        t->ne[d] = (int64_t)ne;
        if (t->ne[d] > INT64_MAX / n_elem)
            return ty_seterr(p->err, TY_ERR_FORMAT,
                             "corrupt file: %s has too many elements (the product of its "
                             "dimensions overflows 64 bits)",
                             p->what);
        n_elem *= t->ne[d];
    }
    return TY_OK;
}

static int rd_tensor_info(parser *p, uint64_t i, uint64_t alignment, gguf_tensor *t) {
    char shown[256];
    int rc;
    snprintf(p->what, sizeof p->what, "tensor info %" PRIu64 " (at byte %" PRIu64 ")", i, p->pos);
    char *name = NULL;
    if ((rc = rd_name(p, "tensor name", &name))) return rc;
    t->name = name;
    snprintf(p->what, sizeof p->what, "tensor '%s'", show(shown, sizeof shown, name, strlen(name)));
    if ((rc = rd_shape(p, t)) || (rc = rd_u32(p, &t->type)) || (rc = rd_u64(p, &t->offset)))
        return rc;
    const ty_type_info *ti = ty_type_get(t->type);
    if (!ti)
        return ty_seterr(p->err, TY_ERR_UNSUPPORTED, "%s has unknown type %" PRIu32, p->what,
                         t->type);
    if (t->ne[0] % ti->block_size != 0)
        return ty_seterr(p->err, TY_ERR_FORMAT,
                         "corrupt file: %s has rows of %" PRId64
                         " elements, not a multiple of the %s block size %" PRId32,
                         p->what, t->ne[0], ti->name, ti->block_size);
    /* nbytes = blocks per row * block bytes * rows, each product checked (ne[0] alone can be
     * large enough for the row size to wrap around). */
    uint64_t rows = (uint64_t)(t->ne[1] * t->ne[2] * t->ne[3]); /* no overflow: checked above */
    uint64_t blocks = (uint64_t)(t->ne[0] / ti->block_size), block_bytes = (uint64_t)ti->type_size;
    if (blocks > UINT64_MAX / block_bytes || rows > UINT64_MAX / (blocks * block_bytes))
        return ty_seterr(p->err, TY_ERR_FORMAT, "corrupt file: %s is larger than 2^64 bytes",
                         p->what);
    t->nbytes = rows * blocks * block_bytes;
    if (t->offset % alignment != 0)
        return ty_seterr(p->err, TY_ERR_FORMAT,
                         "corrupt file: %s has offset %" PRIu64
                         ", not a multiple of the alignment %" PRIu64,
                         p->what, t->offset, alignment);
    return TY_OK;
}

/* Checks every tensor's data lies in the file, sets its data pointer, and rejects overlaps. */
static int place_tensors(gguf_file *f, ty_err *err) {
    char s1[256], s2[256];
    uint64_t room = f->size - f->data_offset;
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        gguf_tensor *t = &f->tensors[i];
        if (t->offset > room || t->nbytes > room - t->offset)
            return ty_seterr(err, TY_ERR_FORMAT,
                             "truncated file: tensor '%s' data ends past the end of the file "
                             "(needs %" PRIu64 " bytes, file has %" PRIu64 ")",
                             show(s1, sizeof s1, t->name, strlen(t->name)),
                             sat_add(sat_add(f->data_offset, t->offset), t->nbytes), f->size);
        t->data = f->data + f->data_offset + t->offset;
    }
    if (f->n_tensors < 2) return TY_OK;
    const gguf_tensor **by_off = malloc(f->n_tensors * sizeof *by_off);
    if (!by_off) return ty_seterr(err, TY_ERR_NOMEM, "out of memory checking tensor offsets");
    for (uint64_t i = 0; i < f->n_tensors; i++) by_off[i] = &f->tensors[i];
    qsort(by_off, f->n_tensors, sizeof *by_off, cmp_tensor_offset);
    int rc = TY_OK;
    for (uint64_t i = 1; i < f->n_tensors && !rc; i++) {
        const gguf_tensor *a = by_off[i - 1], *b = by_off[i];
        if (a->offset + a->nbytes > b->offset) /* no overflow: both lie inside the file */
            rc = ty_seterr(err, TY_ERR_FORMAT,
                           "corrupt file: tensors '%s' (data bytes %" PRIu64 "..%" PRIu64
                           ") and '%s' (from byte %" PRIu64 ") overlap",
                           show(s1, sizeof s1, a->name, strlen(a->name)), a->offset,
                           a->offset + a->nbytes, show(s2, sizeof s2, b->name, strlen(b->name)),
                           b->offset);
    }
    free(by_off);
    return rc;
}

static int index_tensors(gguf_file *f, ty_err *err) {
    if (f->n_tensors == 0) return TY_OK;
    f->tensor_by_name = malloc(f->n_tensors * sizeof *f->tensor_by_name);
    if (!f->tensor_by_name) return ty_seterr(err, TY_ERR_NOMEM, "out of memory indexing tensors");
    for (uint64_t i = 0; i < f->n_tensors; i++) f->tensor_by_name[i] = &f->tensors[i];
    qsort(f->tensor_by_name, f->n_tensors, sizeof *f->tensor_by_name, cmp_tensor_name);
    for (uint64_t i = 1; i < f->n_tensors; i++) {
        const gguf_tensor *a = f->tensor_by_name[i - 1], *b = f->tensor_by_name[i];
        if (strcmp(a->name, b->name) == 0) {
            char shown[256];
            uint64_t ia = (uint64_t)(a - f->tensors), ib = (uint64_t)(b - f->tensors);
            return ty_seterr(err, TY_ERR_FORMAT,
                             "corrupt file: duplicate tensor name '%s' (tensor infos %" PRIu64
                             " and %" PRIu64 ")",
                             show(shown, sizeof shown, a->name, strlen(a->name)), ia < ib ? ia : ib,
                             ia < ib ? ib : ia);
        }
    }
    return TY_OK;
}

/* ---- the whole file -------------------------------------------------------------------------- */

static int rd_header(parser *p, gguf_file *f, uint64_t *n_tensors, uint64_t *n_kv) {
    char shown[64];
    if (p->size < 4)
        return ty_seterr(p->err, TY_ERR_FORMAT, "not a GGUF file (only %" PRIu64 " bytes long)",
                         p->size);
    if (memcmp(p->base, "GGUF", 4) != 0)
        return ty_seterr(p->err, TY_ERR_FORMAT, "not a GGUF file (bad magic '%s')",
                         show(shown, sizeof shown, (const char *)p->base, 4));
    p->pos = 4;
    snprintf(p->what, sizeof p->what, "the GGUF header");
    int rc = rd_u32(p, &f->version);
    if (rc) return rc;
    uint32_t swapped = __builtin_bswap32(f->version);
    if (f->version != 2 && f->version != 3) {
        if (swapped >= 1 && swapped <= 3)
            return ty_seterr(p->err, TY_ERR_UNSUPPORTED,
                             "unsupported GGUF file: big-endian (version %" PRIu32 ")", swapped);
        return ty_seterr(p->err, TY_ERR_UNSUPPORTED,
                         "unsupported GGUF version %" PRIu32 " (versions 2 and 3 are supported)",
                         f->version);
    }
    if ((rc = rd_u64(p, n_tensors)) || (rc = rd_u64(p, n_kv))) return rc;
    /* Reject counts the remaining bytes cannot possibly hold, before allocating for them. */
    uint64_t rem = remaining(p);
    if (*n_kv > rem / MIN_KV_BYTES)
        return ty_seterr(p->err, TY_ERR_FORMAT,
                         "corrupt file: the header claims %" PRIu64
                         " metadata entries, more than the file (%" PRIu64 " bytes) can hold",
                         *n_kv, p->size);
    if (*n_tensors > (rem - *n_kv * MIN_KV_BYTES) / MIN_TENSOR_INFO_BYTES)
        return ty_seterr(p->err, TY_ERR_FORMAT,
                         "corrupt file: the header claims %" PRIu64
                         " tensors, more than the file (%" PRIu64 " bytes) can hold",
                         *n_tensors, p->size);
    return TY_OK;
}

static int parse(gguf_file *f, ty_err *err) {
    parser p = {.base = f->data, .size = f->size, .pos = 0, .err = err, .what = ""};
    uint64_t n_tensors = 0, n_kv = 0;
    int rc = rd_header(&p, f, &n_tensors, &n_kv);
    if (rc) return rc;

    if (n_kv) {
        f->kv = calloc(n_kv, sizeof *f->kv);
        if (!f->kv)
            return ty_seterr(err, TY_ERR_NOMEM, "out of memory for %" PRIu64 " metadata entries",
                             n_kv);
    }
    for (uint64_t i = 0; i < n_kv; i++) {
        f->n_kv = i + 1; /* so that gguf_close frees what entry i allocated */
        if ((rc = rd_kv(&p, i, &f->kv[i]))) return rc;
    }
    if ((rc = index_kvs(f, err)) || (rc = read_alignment(f, err))) return rc;

    if (n_tensors) {
        f->tensors = calloc(n_tensors, sizeof *f->tensors);
        if (!f->tensors)
            return ty_seterr(err, TY_ERR_NOMEM, "out of memory for %" PRIu64 " tensors", n_tensors);
    }
    for (uint64_t i = 0; i < n_tensors; i++) {
        f->n_tensors = i + 1;
        if ((rc = rd_tensor_info(&p, i, f->alignment, &f->tensors[i]))) return rc;
    }
    if ((rc = index_tensors(f, err))) return rc;

    /* The data section starts at the next multiple of the alignment. A file without tensors
     * may end before that padding. */
    uint64_t pad = (f->alignment - p.pos % f->alignment) % f->alignment;
    if (pad > remaining(&p)) {
        if (n_tensors)
            return ty_seterr(
                err, TY_ERR_FORMAT,
                "truncated file: the padding before the tensor data ends at byte %" PRIu64
                " but the file has %" PRIu64 " bytes",
                sat_add(p.pos, pad), p.size);
        pad = remaining(&p);
    }
    f->data_offset = p.pos + pad;
    return place_tensors(f, err);
}

static int open_buffer(const void *data, uint64_t size, void *map, gguf_file **out, ty_err *err) {
    gguf_file *f = calloc(1, sizeof *f);
    if (!f) {
        if (map) munmap(map, (size_t)size);
        return ty_seterr(err, TY_ERR_NOMEM, "out of memory opening a GGUF file");
    }
    f->data = data;
    f->size = size;
    f->map = map;
    int rc = parse(f, err);
    if (rc) {
        gguf_close(f);
        return rc;
    }
    *out = f;
    return TY_OK;
}

int gguf_open_memory(const void *data, uint64_t size, gguf_file **out, ty_err *err) {
    if (!out) return ty_seterr(err, TY_ERR_INVALID_ARG, "gguf_open_memory: out is NULL");
    *out = NULL;
    if (!data && size) return ty_seterr(err, TY_ERR_INVALID_ARG, "gguf_open_memory: data is NULL");
    static const uint8_t empty[1];
    return open_buffer(data ? data : empty, size, NULL, out, err);
}

/* I/O errors name the path; format errors do not (the caller adds context if it wants). */
int gguf_open(const char *path, gguf_file **out, ty_err *err) {
    char shown[256];
    if (!out) return ty_seterr(err, TY_ERR_INVALID_ARG, "gguf_open: out is NULL");
    *out = NULL;
    if (!path) return ty_seterr(err, TY_ERR_INVALID_ARG, "gguf_open: path is NULL");
    show(shown, sizeof shown, path, strlen(path));
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return ty_seterr(err, TY_ERR_IO, "cannot open '%s': %s", shown, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return ty_seterr(err, TY_ERR_IO, "cannot stat '%s': %s", shown, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return ty_seterr(err, TY_ERR_IO, "cannot open '%s': not a regular file", shown);
    }
    if (st.st_size == 0) {
        close(fd);
        return ty_seterr(err, TY_ERR_FORMAT, "not a GGUF file ('%s' is empty)", shown);
    }
    if ((uint64_t)st.st_size > SIZE_MAX) {
        close(fd);
        return ty_seterr(err, TY_ERR_IO, "cannot map '%s': too large for this system", shown);
    }
    void *map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    int e = errno;
    close(fd);
    if (map == MAP_FAILED)
        return ty_seterr(err, TY_ERR_IO, "cannot map '%s': %s", shown, strerror(e));
    return open_buffer(map, (uint64_t)st.st_size, map, out, err);
}

void gguf_close(gguf_file *f) {
    if (!f) return;
    for (uint64_t i = 0; i < f->n_kv; i++) {
        free((void *)f->kv[i].key);
        free(f->kv[i].arr_str);
    }
    for (uint64_t i = 0; i < f->n_tensors; i++) free((void *)f->tensors[i].name);
    free(f->kv);
    free(f->kv_by_key);
    free(f->tensors);
    free(f->tensor_by_name);
    if (f->map) munmap(f->map, (size_t)f->size);
    free(f);
}

/* ---- accessors ------------------------------------------------------------------------------- */

uint32_t gguf_version(const gguf_file *f) { return f ? f->version : 0; }
uint64_t gguf_alignment(const gguf_file *f) { return f ? f->alignment : 0; }
uint64_t gguf_file_size(const gguf_file *f) { return f ? f->size : 0; }
uint64_t gguf_data_offset(const gguf_file *f) { return f ? f->data_offset : 0; }
uint64_t gguf_n_kv(const gguf_file *f) { return f ? f->n_kv : 0; }
uint64_t gguf_n_tensors(const gguf_file *f) { return f ? f->n_tensors : 0; }

const gguf_kv *gguf_kv_at(const gguf_file *f, uint64_t i) {
    return f && i < f->n_kv ? &f->kv[i] : NULL;
}

const gguf_tensor *gguf_tensor_at(const gguf_file *f, uint64_t i) {
    return f && i < f->n_tensors ? &f->tensors[i] : NULL;
}

static int cmp_key_kv(const void *key, const void *elem) {
    return strcmp((const char *)key, (*(const gguf_kv *const *)elem)->key);
}

static int cmp_name_tensor(const void *name, const void *elem) {
    return strcmp((const char *)name, (*(const gguf_tensor *const *)elem)->name);
}

const gguf_kv *gguf_find_kv(const gguf_file *f, const char *key) {
    if (!f || !key || !f->kv_by_key) return NULL;
    const gguf_kv *const *hit =
        bsearch(key, f->kv_by_key, f->n_kv, sizeof *f->kv_by_key, cmp_key_kv);
    return hit ? *hit : NULL;
}

const gguf_tensor *gguf_find_tensor(const gguf_file *f, const char *name) {
    if (!f || !name || !f->tensor_by_name) return NULL;
    const gguf_tensor *const *hit =
        bsearch(name, f->tensor_by_name, f->n_tensors, sizeof *f->tensor_by_name, cmp_name_tensor);
    return hit ? *hit : NULL;
}

/* ---- typed getters --------------------------------------------------------------------------- */

static int find_typed(const gguf_file *f, const char *key, const gguf_kv **out, ty_err *err) {
    char shown[256];
    *out = gguf_find_kv(f, key);
    if (*out) return TY_OK;
    return ty_seterr(err, TY_ERR_FORMAT, "metadata key '%s' is missing",
                     key ? show(shown, sizeof shown, key, strlen(key)) : "(null)");
}

static int wrong_type(const gguf_kv *kv, const char *expected, ty_err *err) {
    char shown[256];
    return ty_seterr(err, TY_ERR_FORMAT, "metadata key '%s' has type %s, expected %s",
                     show(shown, sizeof shown, kv->key, strlen(kv->key)),
                     kv->type == GGUF_TYPE_ARRAY ? "array" : gguf_type_name(kv->type), expected);
}

/* An integer kv as (is_negative, magnitude-or-value) checked against [lo, hi]. */
static int int_in_range(const gguf_kv *kv, int64_t lo, uint64_t hi, const char *what, ty_err *err) {
    char shown[256];
    if (!is_int_type(kv->type)) return wrong_type(kv, "an integer", err);
    bool neg = is_signed_type(kv->type) && kv->v.i64 < 0;
    bool ok = neg ? kv->v.i64 >= lo : kv->v.u64 <= hi;
    if (ok) return TY_OK;
    show(shown, sizeof shown, kv->key, strlen(kv->key));
    if (neg)
        return ty_seterr(err, TY_ERR_FORMAT, "metadata key '%s' = %" PRId64 " does not fit in %s",
                         shown, kv->v.i64, what);
    return ty_seterr(err, TY_ERR_FORMAT, "metadata key '%s' = %" PRIu64 " does not fit in %s",
                     shown, kv->v.u64, what);
}

int gguf_get_u32(const gguf_file *f, const char *key, uint32_t *out, ty_err *err) {
    const gguf_kv *kv;
    int rc = find_typed(f, key, &kv, err);
    if (!rc) rc = int_in_range(kv, 0, UINT32_MAX, "uint32", err);
    if (!rc) *out = (uint32_t)kv->v.u64;
    return rc;
}

int gguf_get_i64(const gguf_file *f, const char *key, int64_t *out, ty_err *err) {
    const gguf_kv *kv;
    int rc = find_typed(f, key, &kv, err);
    if (!rc) rc = int_in_range(kv, INT64_MIN, INT64_MAX, "int64", err);
    if (!rc) *out = kv->v.i64;
    return rc;
}

int gguf_get_f32(const gguf_file *f, const char *key, float *out, ty_err *err) {
    const gguf_kv *kv;
    int rc = find_typed(f, key, &kv, err);
    if (rc) return rc;
    if (kv->type != GGUF_TYPE_FLOAT32 && kv->type != GGUF_TYPE_FLOAT64)
        return wrong_type(kv, "a float", err);
    double v = kv->v.f64;
    if (isfinite(v) && (v > FLT_MAX || v < -FLT_MAX)) { /* inf and nan pass through as they are */
        char shown[256];
        return ty_seterr(err, TY_ERR_FORMAT, "metadata key '%s' = %g does not fit in float32",
                         show(shown, sizeof shown, kv->key, strlen(kv->key)), v);
    }
    *out = (float)v;
    return TY_OK;
}

int gguf_get_bool(const gguf_file *f, const char *key, bool *out, ty_err *err) {
    const gguf_kv *kv;
    int rc = find_typed(f, key, &kv, err);
    if (rc) return rc;
    if (kv->type != GGUF_TYPE_BOOL) return wrong_type(kv, "bool", err);
    *out = kv->v.u64 != 0;
    return TY_OK;
}

int gguf_get_str(const gguf_file *f, const char *key, gguf_str *out, ty_err *err) {
    const gguf_kv *kv;
    int rc = find_typed(f, key, &kv, err);
    if (rc) return rc;
    if (kv->type != GGUF_TYPE_STRING) return wrong_type(kv, "string", err);
    *out = kv->v.str;
    return TY_OK;
}

/* ---- array elements -------------------------------------------------------------------------- */

static bool arr_elem(const gguf_kv *kv, uint64_t i, gguf_kv *tmp) {
    if (!kv || kv->type != GGUF_TYPE_ARRAY || i >= kv->arr_n || !kv->arr_data) return false;
    uint64_t sz = gguf_value_size(kv->arr_type);
    if (sz == 0) return false;
    tmp->type = kv->arr_type;
    decode_scalar(kv->arr_type, kv->arr_data + i * sz, tmp);
    return true;
}

double gguf_arr_get_f64(const gguf_kv *kv, uint64_t i) {
    gguf_kv e;
    if (!arr_elem(kv, i, &e)) return 0.0;
    if (e.type == GGUF_TYPE_FLOAT32 || e.type == GGUF_TYPE_FLOAT64) return e.v.f64;
    return is_signed_type(e.type) ? (double)e.v.i64 : (double)e.v.u64;
}

int64_t gguf_arr_get_i64(const gguf_kv *kv, uint64_t i) {
    gguf_kv e;
    if (!arr_elem(kv, i, &e)) return 0;
    if (e.type == GGUF_TYPE_FLOAT32 || e.type == GGUF_TYPE_FLOAT64) {
        double v = e.v.f64; /* truncated toward zero, saturated (converting out of range is UB) */
        if (v != v) return 0;
        if (v >= 9223372036854775808.0) return INT64_MAX;
        if (v < -9223372036854775808.0) return INT64_MIN;
        return (int64_t)v;
    }
    if (is_signed_type(e.type)) return e.v.i64;
    return e.v.u64 > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)e.v.u64;
}
