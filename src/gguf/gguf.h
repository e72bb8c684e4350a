/* gguf.h - bounds-checked reading (and streaming writing) of GGUF files.
 *
 * File layout (GGUF v2/v3, little-endian):
 *   u32 magic "GGUF" | u32 version | u64 n_tensors | u64 n_kv
 *   n_kv x { string key | u32 value_type | value }
 *   n_tensors x { string name | u32 n_dims | u64 ne[n_dims] | u32 ggml_type | u64 offset }
 *   padding to `general.alignment` (default 32)
 *   tensor data; each tensor at data_start + offset, offsets aligned
 * string = u64 length + bytes (no NUL). array = u32 elem_type + u64 count + elements.
 *
 * The reader maps the file read-only and validates every count, offset and size with overflow-safe
 * 64-bit arithmetic before anything is used, so later code may trust what it returns: every
 * gguf_tensor's data lies inside the mapping and nbytes matches its type and shape. */
#ifndef TY_GGUF_H
#define TY_GGUF_H

#include <stdbool.h>
#include <stdint.h>

#include "base/error.h"

enum gguf_value_type {
    GGUF_TYPE_UINT8 = 0,
    GGUF_TYPE_INT8 = 1,
    GGUF_TYPE_UINT16 = 2,
    GGUF_TYPE_INT16 = 3,
    GGUF_TYPE_UINT32 = 4,
    GGUF_TYPE_INT32 = 5,
    GGUF_TYPE_FLOAT32 = 6,
    GGUF_TYPE_BOOL = 7,
    GGUF_TYPE_STRING = 8,
    GGUF_TYPE_ARRAY = 9,
    GGUF_TYPE_UINT64 = 10,
    GGUF_TYPE_INT64 = 11,
    GGUF_TYPE_FLOAT64 = 12,
    GGUF_TYPE_COUNT
};

#define GGUF_MAX_DIMS 4
#define GGUF_DEFAULT_ALIGNMENT 32

/* A string inside the mapping: not NUL-terminated, may contain any bytes. */
typedef struct gguf_str {
    uint64_t len;
    const char *ptr;
} gguf_str;

typedef struct gguf_kv {
    const char *key;       /* NUL-terminated copy */
    uint32_t type;         /* enum gguf_value_type */
    /* scalars (type != ARRAY): */
    union {
        uint64_t u64;      /* UINT8..UINT64, BOOL (0/1) */
        int64_t i64;       /* INT8..INT64 */
        double f64;        /* FLOAT32, FLOAT64 */
        gguf_str str;      /* STRING */
    } v;
    /* arrays (type == ARRAY): */
    uint32_t arr_type;     /* element type; never ARRAY (nested arrays are rejected) */
    uint64_t arr_n;
    const uint8_t *arr_data; /* numeric arrays: the packed little-endian elements */
    gguf_str *arr_str;     /* string arrays: arr_n entries (owned by the gguf_file) */
} gguf_kv;

typedef struct gguf_tensor {
    const char *name;      /* NUL-terminated copy */
    uint32_t n_dims;
    int64_t ne[GGUF_MAX_DIMS]; /* ne[0] is the contiguous (row) dimension; unused dims are 1 */
    uint32_t type;         /* ggml type id, see quant/types.h */
    uint64_t offset;       /* relative to the data section */
    uint64_t nbytes;
    const void *data;      /* inside the mapping */
} gguf_tensor;

typedef struct gguf_file gguf_file;

/* Maps and validates a file. */
int gguf_open(const char *path, gguf_file **out, ty_err *err);
/* Validates a buffer the caller keeps alive (used by the fuzzer and tests). */
int gguf_open_memory(const void *data, uint64_t size, gguf_file **out, ty_err *err);
void gguf_close(gguf_file *f);

uint32_t gguf_version(const gguf_file *f);
uint64_t gguf_alignment(const gguf_file *f);
uint64_t gguf_file_size(const gguf_file *f);
uint64_t gguf_data_offset(const gguf_file *f); /* where the data section starts in the file */

uint64_t gguf_n_kv(const gguf_file *f);
const gguf_kv *gguf_kv_at(const gguf_file *f, uint64_t i);
const gguf_kv *gguf_find_kv(const gguf_file *f, const char *key); /* NULL if absent */

uint64_t gguf_n_tensors(const gguf_file *f);
const gguf_tensor *gguf_tensor_at(const gguf_file *f, uint64_t i);
const gguf_tensor *gguf_find_tensor(const gguf_file *f, const char *name); /* NULL if absent */

/* Typed getters: TY_OK, or TY_ERR_FORMAT with a message naming the key when it is missing, has
 * an incompatible type, or its value does not fit. Integer getters accept any integer type whose
 * value fits; gguf_get_f32 accepts FLOAT32 and FLOAT64. */
int gguf_get_u32(const gguf_file *f, const char *key, uint32_t *out, ty_err *err);
int gguf_get_i64(const gguf_file *f, const char *key, int64_t *out, ty_err *err);
int gguf_get_f32(const gguf_file *f, const char *key, float *out, ty_err *err);
int gguf_get_bool(const gguf_file *f, const char *key, bool *out, ty_err *err);
int gguf_get_str(const gguf_file *f, const char *key, gguf_str *out, ty_err *err);

/* Element i of a numeric array, converted (caller checks i < arr_n and the element type). */
double gguf_arr_get_f64(const gguf_kv *kv, uint64_t i);
int64_t gguf_arr_get_i64(const gguf_kv *kv, uint64_t i);

const char *gguf_type_name(uint32_t value_type);
/* Size in bytes of one element of a fixed-size value type, 0 for STRING/ARRAY/unknown. */
uint64_t gguf_value_size(uint32_t value_type);

/* ---- writer: metadata and tensor infos first, then tensor data in the same order ---------------- */

typedef struct gguf_writer gguf_writer;

int gguf_writer_new(gguf_writer **out, ty_err *err);
void gguf_writer_free(gguf_writer *w);
int gguf_writer_set_u32(gguf_writer *w, const char *key, uint32_t v);
int gguf_writer_set_i32(gguf_writer *w, const char *key, int32_t v);
int gguf_writer_set_f32(gguf_writer *w, const char *key, float v);
int gguf_writer_set_bool(gguf_writer *w, const char *key, bool v);
int gguf_writer_set_str(gguf_writer *w, const char *key, const char *v);
/* Setters return TY_OK or an error code; a failure is also remembered, and gguf_writer_begin then
 * fails with its message. Setting a key that is already set replaces its value in place. Arrays
 * are copied. */
int gguf_writer_set_arr_str(gguf_writer *w, const char *key, const gguf_str *v, uint64_t n);
int gguf_writer_set_arr_f32(gguf_writer *w, const char *key, const float *v, uint64_t n);
int gguf_writer_set_arr_i32(gguf_writer *w, const char *key, const int32_t *v, uint64_t n);
/* Copies any value, e.g. one read by gguf_open (arrays too; the reader's buffers may go away after). */
int gguf_writer_copy_kv(gguf_writer *w, const gguf_kv *kv);
/* Declares a tensor; its data must later be written with gguf_writer_write_data in declaration
 * order. ne[0] must be a multiple of the type's block size. */
int gguf_writer_add_tensor(gguf_writer *w, const char *name, uint32_t n_dims, const int64_t *ne,
                           uint32_t type, ty_err *err);
/* Opens path and writes header, metadata and tensor infos. */
int gguf_writer_begin(gguf_writer *w, const char *path, ty_err *err);
/* Writes the data of the next declared tensor (exactly its nbytes) plus alignment padding. */
int gguf_writer_write_data(gguf_writer *w, const void *data, uint64_t nbytes, ty_err *err);
/* Streams the next tensor's data in pieces: the padding follows once its nbytes have been written. */
int gguf_writer_write_part(gguf_writer *w, const void *data, uint64_t n, ty_err *err);
/* Checks every tensor was written, flushes and closes. On failure, and when a writer is freed
 * before finishing, the incomplete file is removed. */
int gguf_writer_finish(gguf_writer *w, ty_err *err);

#endif
