/* kernels.h - fast dot-product and activation-quantization kernels, chosen at run time.
 *
 * A ty_kernels table holds, per tensor type, the row dot product (same contract as ty_vec_dot:
 * w a row of that type, a a row of its vec_dot_type, n a multiple of the block size, rows at any
 * address) and the row quantizer (same contract as ty_quantize_row). Entries a CPU cannot
 * accelerate point to wrappers around the scalar reference, so every entry is non-NULL exactly
 * where the reference supports it: vec_dot for the weight types (F32, F16, BF16, Q4_0, Q4_1,
 * Q5_0, Q5_1, Q8_0, Q2_K..Q6_K, Q8_K), quantize_row for the types ty_can_quantize accepts.
 *
 * Exactness of the accelerated (AVX2) entries against the scalar reference:
 *   quantize_row (Q8_0, Q8_1, Q8_K): byte-identical, for finite inputs.
 *   vec_dot: the integer part of every block is exact (for int8 activations in [-127, 127], which
 *   is all the quantizers produce; -128 may overflow the sign trick of Q4_0/Q5_0/Q8_0, as in
 *   ggml); only the order of the float additions across blocks (and, for F32/F16/BF16, across
 *   elements) differs, so results agree to float rounding: see tests/test_kernels.c for the bound.
 *   When every block result and partial sum is an integer below 2^24 the two agree bit for bit.
 *
 * Typical use (cpu_backend's matmul):
 *     const ty_kernels *k = ty_kernels_best();   // once; cheap and pure, may be called per matmul
 *     uint32_t vdt = ty_type_get(w->type)->vec_dot_type;
 *     k->quantize_row[vdt](x, xq, ne0);          // skip for vdt == F32
 *     k->vec_dot[w->type](ne0, &y[r], w->data + r * w->row_bytes, xq);
 */
#ifndef TY_QUANT_KERNELS_H
#define TY_QUANT_KERNELS_H

#include <stdint.h>

#include "quant/quant.h"

typedef void (*ty_vec_dot_fn)(int64_t n, float *s, const void *w, const void *a);
typedef void (*ty_quantize_row_fn)(const float *x, void *y, int64_t n);

typedef struct ty_kernels {
    const char *name; /* "scalar", "avx2" */
    void (*vec_dot[TY_TYPE_COUNT])(int64_t n, float *s, const void *w, const void *a);
    void (*quantize_row[TY_TYPE_COUNT])(const float *x, void *y, int64_t n);
} ty_kernels;

/* The fastest set this CPU supports (AVX2+FMA+F16C on x86-64, else the scalar set). Pure: it
 * returns a pointer to a static const table and keeps no state. */
const ty_kernels *ty_kernels_best(void);

/* The scalar reference behind the same interface. */
const ty_kernels *ty_kernels_scalar(void);

#endif
