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
 * vec_dot_multi[type](n, s, s_stride, w, w_stride, n_rows, a, a_stride, n_tok): n_rows weight rows
 * (w + r * w_stride) times n_tok activation rows (a + t * a_stride), for prompt processing. For r in
 * [0, n_rows) and t in [0, n_tok), s[t * s_stride + r] is what vec_dot[type](n, &s[t * s_stride + r],
 * w + r * w_stride, a + t * a_stride) stores, BIT FOR BIT, in every set and for every type vec_dot
 * supports (so a batched prompt and a token-by-token decode give the same logits). Strides are in
 * bytes for w and a (a: usually ty_row_size(vec_dot_type, n), or 4 * n for F32 activations), in
 * floats for s (the matmul's number of rows for y[t * ne1 + r]); n_rows, n_tok >= 0, any values.
 * The AVX2 set unpacks each weight block once for a group of 8 tokens (Q4_0, Q5_0, Q8_0, Q4_K, Q6_K)
 * or 4 (the others), leftover tokens by 4, then one by one; Q4_0, Q5_0 and Q8_0 also re-lay out each
 * group's activations once for all n_rows rows (kernels_avx2.c). The F32/F16/BF16/Q8_K entries loop
 * over vec_dot.
 *
 * Typical use (cpu_backend's matmul):
 *     const ty_kernels *k = ty_kernels_best();   // once; cheap and pure, may be called per matmul
 *     uint32_t vdt = ty_type_get(w->type)->vec_dot_type;
 *     k->quantize_row[vdt](x, xq, ne0);          // skip for vdt == F32
 *     k->vec_dot[w->type](ne0, &y[r], w->data + r * w->row_bytes, xq);
 * and for n tokens (y[t * ne1 + r], xq rows xq_row bytes apart), a thread's rows [r0, r1) at once.
 * For a long prompt, take the tokens in blocks of ~64, so that a block's quantized activations stay
 * in L2 (64 x 4096 Q8_K = 292 KiB) instead of streaming all n rows from L3 for every weight row:
 *     for (t0 = 0; t0 < n; t0 += 64)
 *         k->vec_dot_multi[w->type](ne0, &y[t0 * ne1 + r0], ne1, w->data + r0 * w->row_bytes, w->row_bytes,
 *                                   r1 - r0, xq + t0 * xq_row, xq_row, min(64, n - t0));
 */
#ifndef TY_QUANT_KERNELS_H
#define TY_QUANT_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "quant/quant.h"

typedef void (*ty_vec_dot_fn)(int64_t n, float *s, const void *w, const void *a);
typedef void (*ty_quantize_row_fn)(const float *x, void *y, int64_t n);
typedef void (*ty_vec_dot_multi_fn)(int64_t n, float *s, int64_t s_stride, const void *w, size_t w_stride,
                                    int64_t n_rows, const void *a, size_t a_stride, int64_t n_tok);

typedef struct ty_kernels {
    const char *name; /* "scalar", "avx2" */
    void (*vec_dot[TY_TYPE_COUNT])(int64_t n, float *s, const void *w, const void *a);
    void (*quantize_row[TY_TYPE_COUNT])(const float *x, void *y, int64_t n);
    /* n_rows weight rows times n_tok activation rows (see above); non-NULL exactly where vec_dot is */
    ty_vec_dot_multi_fn vec_dot_multi[TY_TYPE_COUNT];
} ty_kernels;

/* The fastest set this CPU supports (AVX2+FMA+F16C on x86-64, else the scalar set). Pure: it
 * returns a pointer to a static const table and keeps no state. */
const ty_kernels *ty_kernels_best(void);

/* The scalar reference behind the same interface. */
const ty_kernels *ty_kernels_scalar(void);

#endif
