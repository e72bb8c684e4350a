/* test_gguf.c - the GGUF reader and writer: every fixture file, a writer round trip with every
 * value type, and hostile inputs built byte by byte (each must fail cleanly with the right status
 * and a one-line message). Run from the repository root (fixtures at ../shared/fixtures/gguf/). */
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "gguf/gguf.h"
#include "quant/quant.h"

#define FIXTURES "../shared/fixtures/gguf/"

static char g_tmpdir[64];

/* Checks a failure: status, and a non-empty one-line message (containing `needle` if given). */
static void check_fail(int rc, int want, const ty_err *e, const char *label, const char *needle) {
    CHECK(rc == want, "%s: status %d (%s), want %d", label, rc, e->msg, want);
    if (rc == TY_OK) return;
    if (getenv("TEST_GGUF_VERBOSE")) printf("  %-40s -> %s\n", label, e->msg);
    CHECK(e->msg[0] != '\0', "%s: empty error message", label);
    CHECK(strchr(e->msg, '\n') == NULL, "%s: message is not one line: %s", label, e->msg);
    if (needle)
        CHECK(strstr(e->msg, needle) != NULL, "%s: message '%s' lacks '%s'", label, e->msg, needle);
}

/* ---- a byte builder for hand-made (mostly hostile) files ---------------------------------------
 */

typedef struct buf {
    uint8_t *p;
    size_t n, cap;
} buf;

static void put(buf *b, const void *src, size_t n) {
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
        if (!b->p) abort(); /* a test helper; running out of memory here is not a test result */
    }
    memcpy(b->p + b->n, src, n);
    b->n += n;
}

static void put_u8(buf *b, uint8_t v) { put(b, &v, 1); }
static void put_u32(buf *b, uint32_t v) { put(b, &v, 4); } /* little-endian host */
static void put_u64(buf *b, uint64_t v) { put(b, &v, 8); }
static void put_strn(buf *b, const char *s, uint64_t n) {
    put_u64(b, n);
    put(b, s, (size_t)n);
}
static void put_str(buf *b, const char *s) { put_strn(b, s, strlen(s)); }

static void hdr(buf *b, uint32_t version, uint64_t n_tensors, uint64_t n_kv) {
    b->n = 0;
    put(b, "GGUF", 4);
    put_u32(b, version);
    put_u64(b, n_tensors);
    put_u64(b, n_kv);
}

static void kv_u32(buf *b, const char *key, uint32_t v) {
    put_str(b, key);
    put_u32(b, GGUF_TYPE_UINT32);
    put_u32(b, v);
}

static void kv_str(buf *b, const char *key, const char *v) {
    put_str(b, key);
    put_u32(b, GGUF_TYPE_STRING);
    put_str(b, v);
}

/* A tensor info with up to 4 dims given in ne[] (n_dims may lie about how many follow). */
static void tinfo(buf *b, const char *name, uint32_t n_dims, const uint64_t *ne, uint32_t type,
                  uint64_t offset) {
    put_str(b, name);
    put_u32(b, n_dims);
    for (uint32_t d = 0; d < n_dims && d < 8; d++) put_u64(b, ne[d]);
    put_u32(b, type);
    put_u64(b, offset);
}

/* Pads to `align` and appends `n` bytes of tensor data. */
static void data(buf *b, uint64_t align, size_t n) {
    static const uint8_t z[4096];
    while (b->n % align) put_u8(b, 0);
    while (n > 0) {
        size_t k = n < sizeof z ? n : sizeof z;
        put(b, z, k);
        n -= k;
    }
}

/* Opens an exact-size copy (so that ASan sees any read past the end). */
static int try_open(const uint8_t *bytes, size_t n, ty_err *e) {
    uint8_t *copy = malloc(n ? n : 1);
    if (!copy) abort();
    if (n) memcpy(copy, bytes, n);
    gguf_file *f = NULL;
    memset(e, 0, sizeof *e);
    int rc = gguf_open_memory(copy, n, &f, e);
    if (rc == TY_OK) {
        CHECK(f != NULL, "success without a file");
        gguf_close(f);
    } else {
        CHECK(f == NULL, "failure left a file handle");
    }
    free(copy);
    return rc;
}

static void expect(buf *b, int want, const char *label, const char *needle) {
    ty_err e;
    int rc = try_open(b->p, b->n, &e);
    check_fail(rc, want, &e, label, needle);
}

/* A valid file: one kv, tensor "t" F32 [8] at 0. */
static void valid_small(buf *b) {
    uint64_t ne[] = {8};
    hdr(b, 3, 1, 1);
    kv_u32(b, "general.foo", 7);
    tinfo(b, "t", 1, ne, TY_TYPE_F32, 0);
    data(b, 32, 32);
}

static void test_hostile_header(void) {
    buf b = {0};
    valid_small(&b);
    expect(&b, TY_OK, "valid small file", NULL);

    b.p[3] = 'X';
    expect(&b, TY_ERR_FORMAT, "bad magic", "not a GGUF file");
    b.n = 3;
    expect(&b, TY_ERR_FORMAT, "3-byte file", "not a GGUF file");
    b.n = 0;
    expect(&b, TY_ERR_FORMAT, "empty buffer", "not a GGUF file");

    static const uint32_t bad_versions[] = {0, 1, 4, 0xffffffffu};
    for (size_t i = 0; i < sizeof bad_versions / sizeof *bad_versions; i++) {
        char label[64], needle[64];
        valid_small(&b);
        memcpy(b.p + 4, &bad_versions[i], 4);
        snprintf(label, sizeof label, "version %" PRIu32, bad_versions[i]);
        snprintf(needle, sizeof needle, "unsupported GGUF version %" PRIu32, bad_versions[i]);
        expect(&b, TY_ERR_UNSUPPORTED, label, needle);
    }
    valid_small(&b);
    memcpy(b.p + 4, "\0\0\0\3", 4);
    expect(&b, TY_ERR_UNSUPPORTED, "big-endian file", "big-endian");
    valid_small(&b);
    b.p[4] = 2;
    expect(&b, TY_OK, "version 2", NULL);

    /* Absurd counts must be rejected before anything is allocated for them. */
    valid_small(&b);
    uint64_t huge = 1ull << 62;
    memcpy(b.p + 8, &huge, 8);
    expect(&b, TY_ERR_FORMAT, "n_tensors 2^62", "tensors");
    valid_small(&b);
    memcpy(b.p + 16, &huge, 8);
    expect(&b, TY_ERR_FORMAT, "n_kv 2^62", "metadata");
    valid_small(&b);
    huge = UINT64_MAX;
    memcpy(b.p + 16, &huge, 8);
    expect(&b, TY_ERR_FORMAT, "n_kv 2^64-1", "metadata");

    /* No tensors: the file may end without the padding before the (empty) data section. */
    hdr(&b, 3, 0, 1);
    kv_u32(&b, "general.foo", 7);
    expect(&b, TY_OK, "no tensors, no padding", NULL);
    free(b.p);
}

static void test_hostile_metadata(void) {
    buf b = {0};
    uint64_t ne[] = {8};
    const uint64_t huge = 1ull << 62;

    /* string length 2^62 in a value and in a key */
    hdr(&b, 3, 0, 1);
    put_str(&b, "k");
    put_u32(&b, GGUF_TYPE_STRING);
    put_u64(&b, huge);
    put(&b, "abcdefgh", 8);
    expect(&b, TY_ERR_FORMAT, "string value length 2^62", "'k'");
    hdr(&b, 3, 0, 1);
    put_u64(&b, huge);
    put(&b, "abcdefghijklmnop", 16);
    expect(&b, TY_ERR_FORMAT, "key length 2^62", "metadata");

    /* array lengths 2^62 of numbers, strings and u64 */
    static const uint32_t elem_types[] = {GGUF_TYPE_UINT8, GGUF_TYPE_STRING, GGUF_TYPE_UINT64,
                                          GGUF_TYPE_BOOL};
    for (size_t i = 0; i < 4; i++) {
        char label[64];
        hdr(&b, 3, 0, 1);
        put_str(&b, "arr");
        put_u32(&b, GGUF_TYPE_ARRAY);
        put_u32(&b, elem_types[i]);
        put_u64(&b, i == 3 ? UINT64_MAX : huge);
        put(&b, "abcdefghijklmnop", 16);
        snprintf(label, sizeof label, "array of %s, length 2^62", gguf_type_name(elem_types[i]));
        expect(&b, TY_ERR_FORMAT, label, "'arr'");
    }

    hdr(&b, 3, 0, 1);
    put_str(&b, "nested");
    put_u32(&b, GGUF_TYPE_ARRAY);
    put_u32(&b, GGUF_TYPE_ARRAY);
    put_u64(&b, 1);
    put_u32(&b, GGUF_TYPE_UINT8);
    put_u64(&b, 1);
    put_u8(&b, 0);
    expect(&b, TY_ERR_UNSUPPORTED, "nested array", "'nested'");

    hdr(&b, 3, 0, 1);
    put_str(&b, "weird");
    put_u32(&b, 13);
    put_u64(&b, 0);
    expect(&b, TY_ERR_FORMAT, "unknown value type", "unknown value type 13");
    hdr(&b, 3, 0, 1);
    put_str(&b, "weird");
    put_u32(&b, GGUF_TYPE_ARRAY);
    put_u32(&b, 99);
    put_u64(&b, 0);
    expect(&b, TY_ERR_FORMAT, "unknown array element type", "99");

    hdr(&b, 3, 0, 1);
    put_str(&b, "flag");
    put_u32(&b, GGUF_TYPE_BOOL);
    put_u8(&b, 2);
    expect(&b, TY_ERR_FORMAT, "bool value 2", "'flag'");
    hdr(&b, 3, 0, 1);
    put_str(&b, "flags");
    put_u32(&b, GGUF_TYPE_ARRAY);
    put_u32(&b, GGUF_TYPE_BOOL);
    put_u64(&b, 3);
    put(&b, "\1\0\5", 3);
    expect(&b, TY_ERR_FORMAT, "bool array element 5", "'flags'");

    hdr(&b, 3, 0, 2);
    kv_u32(&b, "general.dup", 1);
    kv_str(&b, "general.dup", "x");
    expect(&b, TY_ERR_FORMAT, "duplicate key", "duplicate metadata key 'general.dup'");
    hdr(&b, 3, 0, 2);
    kv_u32(&b, "bad\nkey", 1);
    kv_u32(&b, "bad\nkey", 2);
    expect(&b, TY_ERR_FORMAT, "duplicate key with a newline in it", "duplicate");

    hdr(&b, 3, 0, 1);
    put_strn(&b, "a\0b", 3);
    put_u32(&b, GGUF_TYPE_UINT8);
    put_u8(&b, 0);
    expect(&b, TY_ERR_FORMAT, "key with a NUL byte", "NUL");
    hdr(&b, 3, 0, 1);
    put_strn(&b, "", 0);
    put_u32(&b, GGUF_TYPE_UINT8);
    put_u8(&b, 0);
    put(&b, "padpadpad", 9);
    expect(&b, TY_ERR_FORMAT, "empty key", "empty");
    char *long_key = malloc(65537);
    memset(long_key, 'k', 65536);
    long_key[65536] = '\0';
    hdr(&b, 3, 0, 1);
    kv_u32(&b, long_key, 1);
    expect(&b, TY_ERR_FORMAT, "key of 65536 bytes", "65535");
    long_key[65535] = '\0';
    hdr(&b, 3, 0, 1);
    kv_u32(&b, long_key, 1);
    expect(&b, TY_OK, "key of 65535 bytes", NULL);
    free(long_key);

    /* general.alignment: integer, nonzero power of two */
    static const uint32_t bad_align[] = {0, 3, 48};
    for (size_t i = 0; i < 3; i++) {
        char label[64];
        hdr(&b, 3, 1, 1);
        kv_u32(&b, "general.alignment", bad_align[i]);
        tinfo(&b, "t", 1, ne, TY_TYPE_F32, 0);
        data(&b, 32, 32);
        snprintf(label, sizeof label, "alignment %" PRIu32, bad_align[i]);
        expect(&b, TY_ERR_FORMAT, label, "general.alignment");
    }
    hdr(&b, 3, 1, 1);
    kv_str(&b, "general.alignment", "32");
    tinfo(&b, "t", 1, ne, TY_TYPE_F32, 0);
    data(&b, 32, 32);
    expect(&b, TY_ERR_FORMAT, "alignment as a string", "general.alignment");
    hdr(&b, 3, 1, 1);
    put_str(&b, "general.alignment");
    put_u32(&b, GGUF_TYPE_INT32);
    put_u32(&b, (uint32_t)-32);
    tinfo(&b, "t", 1, ne, TY_TYPE_F32, 0);
    data(&b, 32, 32);
    expect(&b, TY_ERR_FORMAT, "alignment -32", "general.alignment");

    /* a valid non-default alignment: data section and offsets follow it */
    hdr(&b, 3, 2, 1);
    kv_u32(&b, "general.alignment", 256);
    tinfo(&b, "a", 1, ne, TY_TYPE_F32, 0);
    tinfo(&b, "b", 1, ne, TY_TYPE_F32, 256);
    data(&b, 256, 256 + 32);
    gguf_file *f = NULL;
    ty_err e = {0};
    int rc = gguf_open_memory(b.p, b.n, &f, &e);
    CHECK(rc == TY_OK, "alignment 256: %s", e.msg);
    if (rc == TY_OK) {
        CHECK(gguf_alignment(f) == 256, "alignment %" PRIu64, gguf_alignment(f));
        CHECK(gguf_data_offset(f) % 256 == 0 && gguf_data_offset(f) > 0, "data offset %" PRIu64,
              gguf_data_offset(f));
        const gguf_tensor *t = gguf_find_tensor(f, "b");
        CHECK(t && (const uint8_t *)t->data == b.p + gguf_data_offset(f) + 256, "tensor b data");
        gguf_close(f);
    }
    hdr(&b, 3, 1, 1);
    kv_u32(&b, "general.alignment", 256);
    tinfo(&b, "a", 1, ne, TY_TYPE_F32, 32);
    data(&b, 256, 512);
    expect(&b, TY_ERR_FORMAT, "offset 32 with alignment 256", "alignment");
    free(b.p);
}

static void test_hostile_tensors(void) {
    buf b = {0};
    char label[96];

    /* one bad tensor after a good one; `ne` holds up to 5 dims */
    struct {
        const char *label;
        uint32_t n_dims;
        uint64_t ne[5];
        uint32_t type;
        uint64_t offset;
        int want;
        const char *needle;
    } cases[] = {
        /* clang-format off */
        {"data past the end", 1, {16}, TY_TYPE_F32, 64, TY_ERR_FORMAT, "data ends past the end of the file"},
        {"offset past the end", 1, {8}, TY_TYPE_F32, 1ull << 62, TY_ERR_FORMAT, "past the end"},
        {"offset near 2^64", 1, {8}, TY_TYPE_F32, UINT64_MAX - 31, TY_ERR_FORMAT, "past the end"},
        {"unknown type 123", 1, {8}, 123, 32, TY_ERR_UNSUPPORTED, "tensor 'bad' has unknown type 123"},
        {"removed type 4 (Q4_2)", 1, {32}, 4, 32, TY_ERR_UNSUPPORTED, "unknown type 4"},
        {"n_dims 0", 0, {8}, TY_TYPE_F32, 32, TY_ERR_FORMAT, "dimensions"},
        {"n_dims 5", 5, {8, 1, 1, 1, 1}, TY_TYPE_F32, 32, TY_ERR_FORMAT, "dimensions"},
        {"ne product overflows", 2, {1ull << 32, 1ull << 32}, TY_TYPE_F32, 32, TY_ERR_FORMAT, "overflow"},
        {"ne product overflows (4 dims)", 4, {1u << 16, 1u << 16, 1u << 16, 1u << 16}, TY_TYPE_F32, 32,
         TY_ERR_FORMAT, "overflow"},
        {"ne 2^63", 1, {1ull << 63}, TY_TYPE_F32, 32, TY_ERR_FORMAT, "size"},
        {"byte size overflows", 2, {1ull << 40, 1ull << 22}, TY_TYPE_F32, 32, TY_ERR_FORMAT, "2^64"},
        {"row byte size overflows", 1, {1ull << 62}, TY_TYPE_F32, 32, TY_ERR_FORMAT, "2^64"},
        {"ne 0", 2, {8, 0}, TY_TYPE_F32, 32, TY_ERR_FORMAT, "size 0"},
        {"row not a multiple of the block", 1, {100}, TY_TYPE_Q4_K, 32, TY_ERR_FORMAT, "block size 256"},
        {"misaligned offset", 1, {8}, TY_TYPE_F32, 36, TY_ERR_FORMAT, "not a multiple of the alignment"},
        {"overlapping tensors", 1, {8}, TY_TYPE_F32, 0, TY_ERR_FORMAT, "overlap"},
        {"a valid second tensor", 1, {8}, TY_TYPE_F32, 64, TY_OK, NULL},
        /* clang-format on */
    };
    uint64_t ne_good[] = {16};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        hdr(&b, 3, 2, 0);
        tinfo(&b, "good", 1, ne_good, TY_TYPE_F32, 0);
        tinfo(&b, "bad", cases[i].n_dims, cases[i].ne, cases[i].type, cases[i].offset);
        data(&b, 32, 64 + 32);
        expect(&b, cases[i].want, cases[i].label, cases[i].needle);
    }

    uint64_t ne[] = {8};
    hdr(&b, 3, 2, 0);
    tinfo(&b, "same", 1, ne, TY_TYPE_F32, 0);
    tinfo(&b, "same", 1, ne, TY_TYPE_F32, 32);
    data(&b, 32, 64);
    expect(&b, TY_ERR_FORMAT, "duplicate tensor name", "duplicate tensor name 'same'");

    hdr(&b, 3, 1, 0);
    tinfo(&b, "", 1, ne, TY_TYPE_F32, 0);
    data(&b, 32, 32);
    expect(&b, TY_ERR_FORMAT, "empty tensor name", "empty");

    hdr(&b, 3, 1, 0);
    put_strn(&b, "x\0y", 3);
    put_u32(&b, 1);
    put_u64(&b, 8);
    put_u32(&b, TY_TYPE_F32);
    put_u64(&b, 0);
    data(&b, 32, 32);
    expect(&b, TY_ERR_FORMAT, "tensor name with a NUL byte", "NUL");

    /* The tensor infos claim more room than there is: truncated before the data section. */
    hdr(&b, 3, 1, 0);
    tinfo(&b, "t", 1, ne, TY_TYPE_F32, 0);
    expect(&b, TY_ERR_FORMAT, "no data section", "truncated");

    /* Many tensors, all in order: the overlap check must not be fooled by file order. */
    hdr(&b, 3, 3, 0);
    tinfo(&b, "c", 1, ne, TY_TYPE_F32, 64);
    tinfo(&b, "a", 1, ne, TY_TYPE_F32, 0);
    uint64_t ne2[] = {16};
    tinfo(&b, "b", 1, ne2, TY_TYPE_F32, 32);
    data(&b, 32, 96);
    snprintf(label, sizeof label, "overlap in shuffled order");
    expect(&b, TY_ERR_FORMAT, label, "overlap");
    free(b.p);
}

/* ---- writer round trip ----------------------------------------------------------------------- */

typedef struct rt_tensor {
    const char *name;
    uint32_t n_dims;
    int64_t ne[4];
    uint32_t type;
} rt_tensor;

/* clang-format off */
static const rt_tensor RT_TENSORS[] = {
    {"w.f32", 2, {8, 3, 1, 1}, TY_TYPE_F32},
    {"w.f16", 1, {16, 1, 1, 1}, TY_TYPE_F16},
    {"w.q8_0", 2, {64, 2, 1, 1}, TY_TYPE_Q8_0},
    {"w.q4_k", 3, {256, 2, 1, 1}, TY_TYPE_Q4_K},
    {"w.q6_k", 4, {256, 1, 1, 2}, TY_TYPE_Q6_K},
    {"w.last", 1, {8, 1, 1, 1}, TY_TYPE_F32}, /* 32 bytes: the file ends without padding */
};
/* clang-format on */
#define RT_N (sizeof RT_TENSORS / sizeof *RT_TENSORS)

static const char STR_WITH_NUL[] = {'x', '\0', 'y'};

/* Writes a numeric array through gguf_writer_copy_kv (little-endian host). */
static int copy_arr(gguf_writer *w, const char *key, uint32_t type, uint64_t n, const void *data) {
    gguf_kv kv = {.key = key, .type = GGUF_TYPE_ARRAY, .arr_type = type, .arr_n = n};
    kv.arr_data = data;
    return gguf_writer_copy_kv(w, &kv);
}

static int write_roundtrip_file(const char *path, uint8_t **tdata, uint64_t *tbytes) {
    gguf_writer *w = NULL;
    ty_err e = {0};
    REQUIRE(gguf_writer_new(&w, &e) == TY_OK, "gguf_writer_new: %s", e.msg);
    int rc = 0;
    rc |= gguf_writer_set_str(w, "general.architecture", "llama");
    rc |= gguf_writer_set_u32(w, "t.replace", 1);
    rc |= gguf_writer_set_u32(w, "t.u32", 0xfffffffeu);
    rc |= gguf_writer_set_i32(w, "t.i32", -123456);
    rc |= gguf_writer_set_f32(w, "t.f32", 3.25f);
    rc |= gguf_writer_set_bool(w, "t.bool", true);
    rc |= gguf_writer_set_str(w, "t.str", "h\xc3\xa9llo");
    const gguf_str strs[] = {{1, "a"}, {0, ""}, {3, STR_WITH_NUL}, {1, "\n"}};
    rc |= gguf_writer_set_arr_str(w, "t.arr_str", strs, 4);
    const float fs[] = {1.5f, -2.0f, 1e30f};
    rc |= gguf_writer_set_arr_f32(w, "t.arr_f32", fs, 3);
    const int32_t is[] = {-1, 0, INT32_MAX};
    rc |= gguf_writer_set_arr_i32(w, "t.arr_i32", is, 3);
    rc |= gguf_writer_set_arr_f32(w, "t.arr_empty", NULL, 0);
    rc |= gguf_writer_set_u32(w, "t.replace", 2); /* replaces in place */

    /* The other value types through gguf_writer_copy_kv. */
    gguf_kv kv = {0};
    kv.key = "t.u8", kv.type = GGUF_TYPE_UINT8, kv.v.u64 = 200;
    rc |= gguf_writer_copy_kv(w, &kv);
    kv.key = "t.i8", kv.type = GGUF_TYPE_INT8, kv.v.i64 = -100;
    rc |= gguf_writer_copy_kv(w, &kv);
    kv.key = "t.u16", kv.type = GGUF_TYPE_UINT16, kv.v.u64 = 65000;
    rc |= gguf_writer_copy_kv(w, &kv);
    kv.key = "t.i16", kv.type = GGUF_TYPE_INT16, kv.v.i64 = -30000;
    rc |= gguf_writer_copy_kv(w, &kv);
    kv.key = "t.u64", kv.type = GGUF_TYPE_UINT64, kv.v.u64 = (1ull << 63) + 5;
    rc |= gguf_writer_copy_kv(w, &kv);
    kv.key = "t.i64", kv.type = GGUF_TYPE_INT64, kv.v.i64 = INT64_MIN;
    rc |= gguf_writer_copy_kv(w, &kv);
    kv.key = "t.f64", kv.type = GGUF_TYPE_FLOAT64, kv.v.f64 = 1e300;
    rc |= gguf_writer_copy_kv(w, &kv);
    const uint8_t u8s[] = {1, 2, 3}, bools[] = {1, 0, 1};
    const uint64_t u64s[] = {UINT64_MAX};
    const int16_t i16s[] = {-2, 7};
    const double f64s[] = {3.141592653589793};
    rc |= copy_arr(w, "t.arr_u8", GGUF_TYPE_UINT8, 3, u8s);
    rc |= copy_arr(w, "t.arr_bool", GGUF_TYPE_BOOL, 3, bools);
    rc |= copy_arr(w, "t.arr_u64", GGUF_TYPE_UINT64, 1, u64s);
    rc |= copy_arr(w, "t.arr_i16", GGUF_TYPE_INT16, 2, i16s);
    rc |= copy_arr(w, "t.arr_f64", GGUF_TYPE_FLOAT64, 1, f64s);
    CHECK(rc == TY_OK, "writer setters failed");

    for (size_t i = 0; i < RT_N; i++) {
        const rt_tensor *t = &RT_TENSORS[i];
        rc = gguf_writer_add_tensor(w, t->name, t->n_dims, t->ne, t->type, &e);
        CHECK(rc == TY_OK, "add_tensor %s: %s", t->name, e.msg);
    }
    /* Rejected declarations leave the writer usable. */
    const int64_t bad_ne[] = {100, 1};
    check_fail(gguf_writer_add_tensor(w, "w.bad", 2, bad_ne, TY_TYPE_Q4_K, &e), TY_ERR_INVALID_ARG,
               &e, "writer: row not a multiple of the block", "block size");
    check_fail(gguf_writer_add_tensor(w, "w.f16", 1, bad_ne, TY_TYPE_F16, &e), TY_ERR_INVALID_ARG,
               &e, "writer: duplicate tensor", "duplicate");
    check_fail(gguf_writer_add_tensor(w, "w.bad", 1, bad_ne, 123, &e), TY_ERR_INVALID_ARG, &e,
               "writer: unknown type", "unknown type");

    rc = gguf_writer_begin(w, path, &e);
    REQUIRE(rc == TY_OK, "gguf_writer_begin: %s", e.msg);
    CHECK(gguf_writer_set_u32(w, "late", 1) == TY_ERR_INVALID_ARG, "set after begin accepted");
    unsigned long long seed = 42;
    for (size_t i = 0; i < RT_N; i++) {
        const rt_tensor *t = &RT_TENSORS[i];
        tbytes[i] = ty_row_size(t->type, t->ne[0]) * (uint64_t)(t->ne[1] * t->ne[2] * t->ne[3]);
        tdata[i] = malloc(tbytes[i]);
        for (uint64_t j = 0; j < tbytes[i]; j++) tdata[i][j] = (uint8_t)test_rand_u64(&seed);
        if (i == 3) { /* streamed in three pieces */
            uint64_t a = tbytes[i] / 3, bb = tbytes[i] / 2;
            rc = gguf_writer_write_part(w, tdata[i], a, &e);
            if (!rc) rc = gguf_writer_write_part(w, tdata[i] + a, bb - a, &e);
            if (!rc) rc = gguf_writer_write_part(w, tdata[i] + bb, tbytes[i] - bb, &e);
        } else {
            if (i == 1)
                check_fail(gguf_writer_write_data(w, tdata[i], tbytes[i] - 1, &e),
                           TY_ERR_INVALID_ARG, &e, "writer: wrong data size", "bytes");
            rc = gguf_writer_write_data(w, tdata[i], tbytes[i], &e);
        }
        CHECK(rc == TY_OK, "write data %s: %s", t->name, e.msg);
    }
    check_fail(gguf_writer_write_data(w, tdata[0], 4, &e), TY_ERR_INVALID_ARG, &e,
               "writer: data after the last tensor", "after all");
    rc = gguf_writer_finish(w, &e);
    CHECK(rc == TY_OK, "gguf_writer_finish: %s", e.msg);
    gguf_writer_free(w);
    return rc;
}

static const gguf_kv *kv_of(const gguf_file *f, const char *key, uint32_t type) {
    const gguf_kv *kv = gguf_find_kv(f, key);
    CHECK(kv != NULL, "missing key %s", key);
    if (kv)
        CHECK(kv->type == type, "%s: type %s, want %s", key, gguf_type_name(kv->type),
              gguf_type_name(type));
    return kv && kv->type == type ? kv : NULL;
}

static void check_roundtrip_kvs(const gguf_file *f) {
    const gguf_kv *kv;
    gguf_str s;
    ty_err e = {0};
    CHECK(gguf_n_kv(f) == 23, "n_kv %" PRIu64 ", want 23", gguf_n_kv(f));
    kv = gguf_kv_at(f, 1);
    CHECK(kv && strcmp(kv->key, "t.replace") == 0 && kv->v.u64 == 2,
          "replaced key kept its place and took the new value");
    CHECK(gguf_get_str(f, "general.architecture", &s, &e) == TY_OK && s.len == 5 &&
              memcmp(s.ptr, "llama", 5) == 0,
          "architecture");
    if ((kv = kv_of(f, "t.u32", GGUF_TYPE_UINT32))) CHECK(kv->v.u64 == 0xfffffffeu, "t.u32");
    if ((kv = kv_of(f, "t.i32", GGUF_TYPE_INT32))) CHECK(kv->v.i64 == -123456, "t.i32");
    if ((kv = kv_of(f, "t.f32", GGUF_TYPE_FLOAT32))) CHECK(kv->v.f64 == 3.25, "t.f32");
    if ((kv = kv_of(f, "t.bool", GGUF_TYPE_BOOL))) CHECK(kv->v.u64 == 1, "t.bool");
    if ((kv = kv_of(f, "t.str", GGUF_TYPE_STRING)))
        CHECK(kv->v.str.len == 6 && memcmp(kv->v.str.ptr, "h\xc3\xa9llo", 6) == 0, "t.str");
    if ((kv = kv_of(f, "t.u8", GGUF_TYPE_UINT8))) CHECK(kv->v.u64 == 200, "t.u8");
    if ((kv = kv_of(f, "t.i8", GGUF_TYPE_INT8))) CHECK(kv->v.i64 == -100, "t.i8");
    if ((kv = kv_of(f, "t.u16", GGUF_TYPE_UINT16))) CHECK(kv->v.u64 == 65000, "t.u16");
    if ((kv = kv_of(f, "t.i16", GGUF_TYPE_INT16))) CHECK(kv->v.i64 == -30000, "t.i16");
    if ((kv = kv_of(f, "t.u64", GGUF_TYPE_UINT64))) CHECK(kv->v.u64 == (1ull << 63) + 5, "t.u64");
    if ((kv = kv_of(f, "t.i64", GGUF_TYPE_INT64))) CHECK(kv->v.i64 == INT64_MIN, "t.i64");
    if ((kv = kv_of(f, "t.f64", GGUF_TYPE_FLOAT64))) CHECK(kv->v.f64 == 1e300, "t.f64");

    if ((kv = kv_of(f, "t.arr_str", GGUF_TYPE_ARRAY))) {
        CHECK(kv->arr_type == GGUF_TYPE_STRING && kv->arr_n == 4 && kv->arr_str, "t.arr_str shape");
        if (kv->arr_n == 4 && kv->arr_str) {
            CHECK(kv->arr_str[0].len == 1 && kv->arr_str[0].ptr[0] == 'a', "arr_str[0]");
            CHECK(kv->arr_str[1].len == 0, "arr_str[1]");
            CHECK(kv->arr_str[2].len == 3 && memcmp(kv->arr_str[2].ptr, STR_WITH_NUL, 3) == 0,
                  "arr_str[2]");
            CHECK(kv->arr_str[3].len == 1 && kv->arr_str[3].ptr[0] == '\n', "arr_str[3]");
        }
    }
    if ((kv = kv_of(f, "t.arr_f32", GGUF_TYPE_ARRAY)) && kv->arr_n == 3) {
        CHECK(kv->arr_type == GGUF_TYPE_FLOAT32, "arr_f32 type");
        CHECK(gguf_arr_get_f64(kv, 0) == 1.5 && gguf_arr_get_f64(kv, 1) == -2.0 &&
                  gguf_arr_get_f64(kv, 2) == (double)1e30f,
              "arr_f32 values");
        CHECK(gguf_arr_get_i64(kv, 2) == INT64_MAX && gguf_arr_get_i64(kv, 1) == -2,
              "arr_f32 as i64 saturates");
    }
    if ((kv = kv_of(f, "t.arr_i32", GGUF_TYPE_ARRAY)) && kv->arr_n == 3)
        CHECK(gguf_arr_get_i64(kv, 0) == -1 && gguf_arr_get_i64(kv, 2) == INT32_MAX &&
                  gguf_arr_get_f64(kv, 0) == -1.0,
              "arr_i32 values");
    if ((kv = kv_of(f, "t.arr_empty", GGUF_TYPE_ARRAY)))
        CHECK(kv->arr_n == 0 && kv->arr_type == GGUF_TYPE_FLOAT32 && gguf_arr_get_f64(kv, 0) == 0.0,
              "empty array");
    if ((kv = kv_of(f, "t.arr_u8", GGUF_TYPE_ARRAY)) && kv->arr_n == 3)
        CHECK(gguf_arr_get_i64(kv, 2) == 3, "arr_u8");
    if ((kv = kv_of(f, "t.arr_bool", GGUF_TYPE_ARRAY)) && kv->arr_n == 3)
        CHECK(kv->arr_type == GGUF_TYPE_BOOL && gguf_arr_get_i64(kv, 0) == 1 &&
                  gguf_arr_get_i64(kv, 1) == 0,
              "arr_bool");
    if ((kv = kv_of(f, "t.arr_u64", GGUF_TYPE_ARRAY)) && kv->arr_n == 1)
        CHECK(gguf_arr_get_i64(kv, 0) == INT64_MAX &&
                  gguf_arr_get_f64(kv, 0) == 18446744073709551615.0,
              "arr_u64");
    if ((kv = kv_of(f, "t.arr_i16", GGUF_TYPE_ARRAY)) && kv->arr_n == 2)
        CHECK(gguf_arr_get_i64(kv, 0) == -2 && gguf_arr_get_i64(kv, 1) == 7, "arr_i16");
    if ((kv = kv_of(f, "t.arr_f64", GGUF_TYPE_ARRAY)) && kv->arr_n == 1)
        CHECK(gguf_arr_get_f64(kv, 0) == 3.141592653589793 && gguf_arr_get_i64(kv, 0) == 3,
              "arr_f64");
    for (uint64_t i = 0; i < gguf_n_kv(f); i++)
        CHECK(gguf_find_kv(f, gguf_kv_at(f, i)->key) == gguf_kv_at(f, i),
              "find_kv(kv_at(%" PRIu64 "))", i);
}

static void check_getters(const gguf_file *f) {
    ty_err e = {0};
    uint32_t u32 = 0;
    int64_t i64 = 0;
    float f32 = 0;
    bool b = false;
    gguf_str s;
    CHECK(gguf_get_u32(f, "t.u8", &u32, &e) == TY_OK && u32 == 200, "get_u32(u8)");
    CHECK(gguf_get_u32(f, "t.u32", &u32, &e) == TY_OK && u32 == 0xfffffffeu, "get_u32(u32)");
    check_fail(gguf_get_u32(f, "t.i32", &u32, &e), TY_ERR_FORMAT, &e, "get_u32 of a negative",
               "does not fit");
    check_fail(gguf_get_u32(f, "t.u64", &u32, &e), TY_ERR_FORMAT, &e, "get_u32 of 2^63+5",
               "does not fit");
    check_fail(gguf_get_u32(f, "t.str", &u32, &e), TY_ERR_FORMAT, &e, "get_u32 of a string",
               "t.str");
    check_fail(gguf_get_u32(f, "t.bool", &u32, &e), TY_ERR_FORMAT, &e, "get_u32 of a bool",
               "t.bool");
    check_fail(gguf_get_u32(f, "no.such.key", &u32, &e), TY_ERR_FORMAT, &e,
               "get_u32 of a missing key", "'no.such.key' is missing");
    CHECK(gguf_get_i64(f, "t.i16", &i64, &e) == TY_OK && i64 == -30000, "get_i64(i16)");
    CHECK(gguf_get_i64(f, "t.i64", &i64, &e) == TY_OK && i64 == INT64_MIN, "get_i64(i64 min)");
    CHECK(gguf_get_i64(f, "t.u32", &i64, &e) == TY_OK && i64 == 0xfffffffe, "get_i64(u32)");
    check_fail(gguf_get_i64(f, "t.u64", &i64, &e), TY_ERR_FORMAT, &e, "get_i64 of 2^63+5",
               "does not fit");
    check_fail(gguf_get_i64(f, "t.arr_i32", &i64, &e), TY_ERR_FORMAT, &e, "get_i64 of an array",
               "array");
    CHECK(gguf_get_f32(f, "t.f32", &f32, &e) == TY_OK && f32 == 3.25f, "get_f32(f32)");
    check_fail(gguf_get_f32(f, "t.f64", &f32, &e), TY_ERR_FORMAT, &e, "get_f32 of 1e300",
               "does not fit");
    check_fail(gguf_get_f32(f, "t.i32", &f32, &e), TY_ERR_FORMAT, &e, "get_f32 of an int", "t.i32");
    CHECK(gguf_get_bool(f, "t.bool", &b, &e) == TY_OK && b, "get_bool");
    check_fail(gguf_get_bool(f, "t.u8", &b, &e), TY_ERR_FORMAT, &e, "get_bool of a u8", "t.u8");
    CHECK(gguf_get_str(f, "t.str", &s, &e) == TY_OK && s.len == 6, "get_str");
    check_fail(gguf_get_str(f, "t.u8", &s, &e), TY_ERR_FORMAT, &e, "get_str of a u8", "t.u8");
}

static void check_roundtrip_tensors(const gguf_file *f, uint8_t **tdata, const uint64_t *tbytes) {
    CHECK(gguf_n_tensors(f) == RT_N, "n_tensors %" PRIu64, gguf_n_tensors(f));
    CHECK(gguf_version(f) == 3 && gguf_alignment(f) == 32, "version/alignment");
    CHECK(gguf_data_offset(f) % 32 == 0, "data offset %" PRIu64, gguf_data_offset(f));
    for (size_t i = 0; i < RT_N && i < gguf_n_tensors(f); i++) {
        const rt_tensor *want = &RT_TENSORS[i];
        const gguf_tensor *t = gguf_tensor_at(f, i);
        CHECK(strcmp(t->name, want->name) == 0, "tensor %zu name %s", i, t->name);
        CHECK(gguf_find_tensor(f, want->name) == t, "find_tensor(%s)", want->name);
        CHECK(t->n_dims == want->n_dims && t->type == want->type, "%s dims/type", want->name);
        for (int d = 0; d < 4; d++)
            CHECK(t->ne[d] == want->ne[d], "%s ne[%d] = %" PRId64, want->name, d, t->ne[d]);
        CHECK(t->offset % 32 == 0, "%s offset %" PRIu64, want->name, t->offset);
        CHECK(t->nbytes == tbytes[i], "%s nbytes %" PRIu64, want->name, t->nbytes);
        CHECK(t->nbytes == tbytes[i] && memcmp(t->data, tdata[i], tbytes[i]) == 0,
              "%s data differs", want->name);
    }
    CHECK(gguf_find_tensor(f, "w.none") == NULL && gguf_find_kv(f, "none") == NULL,
          "find of absent names");
}

/* Every proper prefix of a valid file that ends right after its last tensor must be rejected as
 * malformed. Each prefix is an exact-size copy, so ASan catches any read past its end. */
static void check_every_truncation(const uint8_t *bytes, size_t size, size_t step,
                                   const char *what) {
    size_t bad = 0;
    for (size_t cut = 0; cut < size; cut += step) {
        ty_err e;
        int rc = try_open(bytes, cut, &e);
        if (rc != TY_ERR_FORMAT || !e.msg[0] || strchr(e.msg, '\n')) {
            if (bad++ < 5) CHECK(0, "%s cut at %zu: status %d, message '%s'", what, cut, rc, e.msg);
        }
    }
    CHECK(bad == 0, "%s: %zu truncations not rejected cleanly", what, bad);
}

static void test_roundtrip(void) {
    char path[128];
    snprintf(path, sizeof path, "%s/roundtrip.gguf", g_tmpdir);
    uint8_t *tdata[RT_N] = {0};
    uint64_t tbytes[RT_N] = {0};
    if (write_roundtrip_file(path, tdata, tbytes) == TY_OK) {
        gguf_file *f = NULL;
        ty_err e = {0};
        int rc = gguf_open(path, &f, &e);
        CHECK(rc == TY_OK, "open round trip file: %s", e.msg);
        if (rc == TY_OK) {
            check_roundtrip_kvs(f);
            check_getters(f);
            check_roundtrip_tensors(f, tdata, tbytes);
            const gguf_tensor *last = gguf_tensor_at(f, RT_N - 1);
            CHECK(gguf_data_offset(f) + last->offset + last->nbytes == gguf_file_size(f),
                  "the file ends with the last tensor");
            gguf_close(f);
        }
        size_t size = 0;
        uint8_t *bytes = read_file(path, &size);
        CHECK(bytes != NULL, "read back %s", path);
        if (bytes) {
            rc = gguf_open_memory(bytes, size, &f, &e);
            CHECK(rc == TY_OK, "open_memory round trip file: %s", e.msg);
            if (rc == TY_OK) {
                check_roundtrip_tensors(f, tdata, tbytes);
                gguf_close(f);
            }
            check_every_truncation(bytes, size, 1, "round trip file");
            printf("round trip file: %zu bytes, every truncation checked\n", size);
            free(bytes);
        }
    }
    for (size_t i = 0; i < RT_N; i++) free(tdata[i]);
    remove(path);
}

static void test_writer_errors(void) {
    char path[128];
    ty_err e = {0};
    gguf_writer *w = NULL;
    const int64_t ne[] = {32};
    snprintf(path, sizeof path, "%s/unfinished.gguf", g_tmpdir);

    /* An unfinished writer removes its file. */
    if (gguf_writer_new(&w, &e) != TY_OK) return;
    gguf_writer_add_tensor(w, "a", 1, ne, TY_TYPE_F32, &e);
    gguf_writer_add_tensor(w, "b", 1, ne, TY_TYPE_F32, &e);
    CHECK(gguf_writer_begin(w, path, &e) == TY_OK, "begin: %s", e.msg);
    float zeros[32] = {0};
    CHECK(gguf_writer_write_data(w, zeros, sizeof zeros, &e) == TY_OK, "write a: %s", e.msg);
    check_fail(gguf_writer_finish(w, &e), TY_ERR_INVALID_ARG, &e, "finish before all data",
               "1 of 2");
    CHECK(access(path, F_OK) == 0, "the file exists while writing");
    gguf_writer_free(w);
    CHECK(access(path, F_OK) != 0, "an unfinished file is removed");

    /* Unwritable path. */
    gguf_writer_new(&w, &e);
    check_fail(gguf_writer_begin(w, "/nonexistent-dir/x.gguf", &e), TY_ERR_IO, &e,
               "begin in a missing dir", "/nonexistent-dir/x.gguf");
    gguf_writer_free(w);

    /* Bad alignment, and a good non-default one. */
    gguf_writer_new(&w, &e);
    gguf_writer_set_u32(w, "general.alignment", 48);
    check_fail(gguf_writer_begin(w, path, &e), TY_ERR_INVALID_ARG, &e, "writer alignment 48",
               "general.alignment");
    gguf_writer_free(w);
    gguf_writer_new(&w, &e);
    gguf_writer_set_u32(w, "general.alignment", 128);
    const int64_t ne3[] = {8};
    gguf_writer_add_tensor(w, "a", 1, ne3, TY_TYPE_F32, &e);
    gguf_writer_add_tensor(w, "b", 1, ne3, TY_TYPE_F32, &e);
    int rc = gguf_writer_begin(w, path, &e);
    if (!rc) rc = gguf_writer_write_data(w, zeros, 32, &e);
    if (!rc) rc = gguf_writer_write_data(w, zeros, 32, &e);
    if (!rc) rc = gguf_writer_finish(w, &e);
    CHECK(rc == TY_OK, "writer with alignment 128: %s", e.msg);
    gguf_writer_free(w);
    gguf_file *f = NULL;
    if (rc == TY_OK && gguf_open(path, &f, &e) == TY_OK) {
        CHECK(gguf_alignment(f) == 128 && gguf_data_offset(f) % 128 == 0,
              "alignment 128 read back");
        CHECK(gguf_tensor_at(f, 1)->offset == 128, "second tensor at 128");
        gguf_close(f);
    } else {
        CHECK(0, "open alignment-128 file: %s", e.msg);
    }
    remove(path);

    /* A bad setter makes begin fail. */
    gguf_writer_new(&w, &e);
    CHECK(gguf_writer_set_str(w, "", "x") == TY_ERR_INVALID_ARG, "empty key accepted");
    check_fail(gguf_writer_begin(w, path, &e), TY_ERR_INVALID_ARG, &e,
               "begin after a failed setter", "key");
    gguf_writer_free(w);
}

/* ---- reading files from disk ----------------------------------------------------------------- */

static void test_open_errors(void) {
    gguf_file *f = (gguf_file *)&f;
    ty_err e = {0};
    check_fail(gguf_open("/nonexistent/model.gguf", &f, &e), TY_ERR_IO, &e, "missing file",
               "cannot open");
    CHECK(f == NULL, "out cleared on failure");
    check_fail(gguf_open(g_tmpdir, &f, &e), TY_ERR_IO, &e, "a directory", "not a regular file");
    char path[128];
    snprintf(path, sizeof path, "%s/empty.gguf", g_tmpdir);
    FILE *fp = fopen(path, "wb");
    if (fp) fclose(fp);
    check_fail(gguf_open(path, &f, &e), TY_ERR_FORMAT, &e, "an empty file", "empty");
    remove(path);
}

typedef struct fixture {
    const char *file;
    uint32_t file_type;
    const char *main_type; /* type of the 2-D tensors not listed in `others` */
    const char *others;    /* "name=TYPE ..." exceptions */
} fixture;

/* clang-format off */
static const fixture FIXTURE_FILES[] = {
    {"tiny-e2e-f32", 0, "F32", ""},
    {"tiny-e2e-f16", 1, "F16", ""},
    {"tiny-e2e-q8_0", 7, "Q8_0", ""},
    {"tiny-e2e-q4_0", 2, "Q4_0", "output=Q8_0"},
    {"tiny-e2e-q4_k_m", 15, "Q5_0", "blk.0.ffn_down=Q4_K blk.1.ffn_down=Q6_K blk.1.attn_v=Q8_0 output=Q8_0"},
    {"tiny-e2e-q5_k_m", 17, "Q5_1", "blk.0.ffn_down=Q5_K blk.1.ffn_down=Q6_K blk.1.attn_v=Q8_0 output=Q8_0"},
    {"tiny-e2e-q6_k", 18, "Q8_0", "blk.0.ffn_down=Q6_K blk.1.ffn_down=Q6_K"},
    {"tiny-hd128-f32", 0, "F32", ""},
    {"tiny-hd128-f16", 1, "F16", ""},
    {"tiny-hd128-q8_0", 7, "Q8_0", ""},
    {"tiny-hd128-q4_0", 2, "Q4_0", "output=Q6_K"},
    {"tiny-hd128-q4_k_m", 15, "Q4_K", "blk.1.attn_v=Q6_K blk.1.ffn_down=Q6_K output=Q6_K"},
    {"tiny-hd128-q5_k_m", 17, "Q5_K", "blk.1.attn_v=Q6_K blk.1.ffn_down=Q6_K output=Q6_K"},
    {"tiny-hd128-q6_k", 18, "Q6_K", ""},
};
/* clang-format on */

/* The expected type of a 2-D tensor "<stem>.weight". */
static const char *expected_type(const fixture *fx, const char *name) {
    static char stem[64];
    size_t n = strlen(name);
    if (n < 7 || n - 7 >= sizeof stem || strcmp(name + n - 7, ".weight") != 0) return "?";
    memcpy(stem, name, n - 7);
    stem[n - 7] = '\0';
    const char *p = fx->others;
    while (*p) {
        const char *eq = strchr(p, '='), *end = strchr(p, ' ');
        if (!end) end = p + strlen(p);
        if ((size_t)(eq - p) == n - 7 && memcmp(p, stem, n - 7) == 0) {
            static char type[16];
            snprintf(type, sizeof type, "%.*s", (int)(end - eq - 1), eq + 1);
            return type;
        }
        p = *end ? end + 1 : end;
    }
    return fx->main_type;
}

static bool str_is(gguf_str s, const char *want) {
    return s.len == strlen(want) && memcmp(s.ptr, want, s.len) == 0;
}

static void check_fixture(const fixture *fx) {
    char path[256];
    snprintf(path, sizeof path, FIXTURES "%s.gguf", fx->file);
    gguf_file *f = NULL;
    ty_err e = {0};
    int rc = gguf_open(path, &f, &e);
    CHECK(rc == TY_OK, "%s: %s", path, e.msg);
    if (rc) return;
    bool e2e = strncmp(fx->file, "tiny-e2e", 8) == 0;
    int64_t dim = e2e ? 64 : 512, vocab = e2e ? 32768 : 512;

    gguf_str arch = {0};
    uint32_t ft = 99, n_layer = 0;
    int64_t n_embd = 0;
    CHECK(gguf_get_str(f, "general.architecture", &arch, &e) == TY_OK && str_is(arch, "llama"),
          "%s: architecture", fx->file);
    CHECK(gguf_get_u32(f, "general.file_type", &ft, &e) == TY_OK && ft == fx->file_type,
          "%s: file_type %" PRIu32 ", want %" PRIu32, fx->file, ft, fx->file_type);
    CHECK(gguf_get_u32(f, "llama.block_count", &n_layer, &e) == TY_OK && n_layer == 2,
          "%s: block_count", fx->file);
    CHECK(gguf_get_i64(f, "llama.embedding_length", &n_embd, &e) == TY_OK && n_embd == dim,
          "%s: n_embd", fx->file);
    CHECK(gguf_version(f) == 3 && gguf_alignment(f) == 32 && gguf_n_kv(f) == 26, "%s: header",
          fx->file);

    const gguf_kv *tok = gguf_find_kv(f, "tokenizer.ggml.tokens");
    CHECK(tok && tok->type == GGUF_TYPE_ARRAY && tok->arr_type == GGUF_TYPE_STRING &&
              tok->arr_n == (uint64_t)vocab,
          "%s: tokens array", fx->file);
    if (tok && tok->arr_str && tok->arr_n == (uint64_t)vocab)
        CHECK(str_is(tok->arr_str[0], "<unk>") && str_is(tok->arr_str[1], "<s>") &&
                  str_is(tok->arr_str[2], "</s>"),
              "%s: first tokens", fx->file);
    const gguf_kv *scores = gguf_find_kv(f, "tokenizer.ggml.scores");
    CHECK(scores && scores->arr_type == GGUF_TYPE_FLOAT32 && scores->arr_n == (uint64_t)vocab,
          "%s: scores", fx->file);
    const gguf_kv *types = gguf_find_kv(f, "tokenizer.ggml.token_type");
    CHECK(types && types->arr_type == GGUF_TYPE_INT32 && types->arr_n == (uint64_t)vocab &&
              gguf_arr_get_i64(types, 1) == 3,
          "%s: token types (<s> is CONTROL)", fx->file);

    CHECK(gguf_n_tensors(f) == 21, "%s: %" PRIu64 " tensors", fx->file, gguf_n_tensors(f));
    const gguf_tensor *emb = gguf_find_tensor(f, "token_embd.weight");
    CHECK(emb && emb->n_dims == 2 && emb->ne[0] == dim && emb->ne[1] == vocab,
          "%s: token_embd shape", fx->file);
    for (uint64_t i = 0; i < gguf_n_tensors(f); i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        const char *want = t->n_dims == 1 ? "F32" : expected_type(fx, t->name);
        CHECK(strcmp(ty_type_name(t->type), want) == 0, "%s: %s is %s, want %s", fx->file, t->name,
              ty_type_name(t->type), want);
        if (t->n_dims == 1) CHECK(t->ne[0] == dim, "%s: %s length", fx->file, t->name);
        uint64_t rows = (uint64_t)(t->ne[1] * t->ne[2] * t->ne[3]);
        CHECK(t->nbytes == ty_row_size(t->type, t->ne[0]) * rows, "%s: %s nbytes", fx->file,
              t->name);
        CHECK(gguf_find_tensor(f, t->name) == t, "%s: find %s", fx->file, t->name);
    }
    gguf_close(f);
}

/* Truncations of a real file: every byte of the header, and around each tensor's end. */
static void test_fixture_truncations(void) {
    size_t size = 0;
    uint8_t *bytes = read_file(FIXTURES "tiny-hd128-q4_k_m.gguf", &size);
    CHECK(bytes != NULL, "read tiny-hd128-q4_k_m.gguf");
    if (!bytes) return;
    gguf_file *f = NULL;
    ty_err e = {0};
    if (gguf_open_memory(bytes, size, &f, &e) != TY_OK) {
        CHECK(0, "open_memory fixture: %s", e.msg);
        free(bytes);
        return;
    }
    uint64_t data = gguf_data_offset(f), end = 0;
    for (uint64_t i = 0; i < gguf_n_tensors(f); i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        if (data + t->offset + t->nbytes > end) end = data + t->offset + t->nbytes;
    }
    check_every_truncation(bytes, (size_t)data, 1, "tiny-hd128-q4_k_m header");
    size_t bad = 0;
    for (uint64_t i = 0; i < gguf_n_tensors(f); i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        uint64_t cuts[] = {data + t->offset, data + t->offset + t->nbytes / 2,
                           data + t->offset + t->nbytes - 1};
        for (int k = 0; k < 3; k++) {
            if (cuts[k] >= end) continue;
            if (try_open(bytes, (size_t)cuts[k], &e) != TY_ERR_FORMAT) bad++;
        }
    }
    CHECK(bad == 0, "%zu truncations inside the tensor data were accepted", bad);
    CHECK(try_open(bytes, (size_t)end, &e) == TY_OK, "cut right after the last tensor: %s", e.msg);
    gguf_close(f);
    free(bytes);
}

static void test_fixtures(void) {
    for (size_t i = 0; i < sizeof FIXTURE_FILES / sizeof *FIXTURE_FILES; i++)
        check_fixture(&FIXTURE_FILES[i]);
    test_fixture_truncations();
}

int main(void) {
    snprintf(g_tmpdir, sizeof g_tmpdir, "/tmp/test_gguf_XXXXXX");
    REQUIRE(mkdtemp(g_tmpdir) != NULL, "mkdtemp failed");
    CHECK(strcmp(gguf_type_name(GGUF_TYPE_FLOAT64), "float64") == 0 &&
              strcmp(gguf_type_name(99), "unknown") == 0,
          "gguf_type_name");
    CHECK(gguf_value_size(GGUF_TYPE_UINT16) == 2 && gguf_value_size(GGUF_TYPE_STRING) == 0 &&
              gguf_value_size(GGUF_TYPE_FLOAT64) == 8 && gguf_value_size(77) == 0,
          "gguf_value_size");
    test_hostile_header();
    test_hostile_metadata();
    test_hostile_tensors();
    test_roundtrip();
    test_writer_errors();
    test_open_errors();
    test_fixtures();
    rmdir(g_tmpdir);
    return check_summary("test_gguf");
}
