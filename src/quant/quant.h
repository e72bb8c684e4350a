/* quant.h - tensor element types: sizes, dequantization, quantization and dot products.
 *
 * Type ids and block layouts are those of ggml/GGUF (ggml-common.h defines them): a row of n
 * elements of a quantized type is n / block_size blocks of type_size bytes each.
 *
 * Everything here is the plain scalar reference: the ground truth every SIMD or GPU kernel is
 * tested against. Dot products follow ggml's definitions: the weight row is quantized, the
 * activation row is first quantized to the weight type's "vec_dot_type" (Q8_0, Q8_1 or Q8_K) and
 * the products are summed in integers within a block, scaled in float per block. */
#ifndef TY_QUANT_H
#define TY_QUANT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum ty_type {
    TY_TYPE_F32 = 0,
    TY_TYPE_F16 = 1,
    TY_TYPE_Q4_0 = 2,
    TY_TYPE_Q4_1 = 3,
    TY_TYPE_Q5_0 = 6,
    TY_TYPE_Q5_1 = 7,
    TY_TYPE_Q8_0 = 8,
    TY_TYPE_Q8_1 = 9,
    TY_TYPE_Q2_K = 10,
    TY_TYPE_Q3_K = 11,
    TY_TYPE_Q4_K = 12,
    TY_TYPE_Q5_K = 13,
    TY_TYPE_Q6_K = 14,
    TY_TYPE_Q8_K = 15,
    TY_TYPE_BF16 = 30,
    TY_TYPE_COUNT = 31
};

#define TY_QK 32   /* block size of the 32-element formats */
#define TY_QK_K 256 /* block size of the K-quant (super-block) formats */

typedef struct ty_type_info {
    const char *name;      /* "Q4_K", ... */
    int32_t block_size;    /* elements per block */
    int32_t type_size;     /* bytes per block */
    bool is_quantized;
    uint32_t vec_dot_type; /* activation format its dot product takes */
} ty_type_info;

/* NULL for ids this engine does not implement (so callers can reject unknown tensor types). */
const ty_type_info *ty_type_get(uint32_t type);
const char *ty_type_name(uint32_t type); /* "unknown" for unsupported ids */

/* Bytes of a row of n elements; 0 if n is not a multiple of the block size or type is unknown. */
uint64_t ty_row_size(uint32_t type, int64_t n);

/* Reference dequantization of n elements (n a multiple of the block size). */
void ty_dequantize_row(uint32_t type, const void *src, float *dst, int64_t n);

/* Quantizes n floats to `type` (n a multiple of the block size). Implemented for every type of
 * the table (ty_can_quantize says which): F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q8_1,
 * Q2_K..Q6_K, Q8_K. Byte-identical to ggml's quantize_row_*_ref (what llama-quantize writes without
 * an importance matrix); the 8-bit activation formats round exactly as ggml does. Inputs must be
 * finite. */
bool ty_can_quantize(uint32_t type);
void ty_quantize_row(uint32_t type, const float *src, void *dst, int64_t n);

/* s = dot(w, a) over n elements: w a row of `type`, a a row of ty_type_get(type)->vec_dot_type.
 * Quantized rows may sit at any address; F32 activations must be float-aligned. Bit-identical to
 * ggml's generic ggml_vec_dot_*_q8_* (see src/quant/vec_dot.c for the float summation order). */
void ty_vec_dot(uint32_t type, int64_t n, float *s, const void *w, const void *a);

#endif
