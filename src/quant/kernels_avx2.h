/* kernels_avx2.h - private to src/quant/: the AVX2+FMA+F16C kernels of kernels_avx2.c, which
 * kernels.c puts in the "avx2" table. Call them only where ty_kernels_best() chose that table
 * (they execute AVX2 instructions whatever the build flags). Contracts: those of kernels.h. */
#ifndef TY_QUANT_KERNELS_AVX2_H
#define TY_QUANT_KERNELS_AVX2_H

#include <stddef.h>
#include <stdint.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define TY_HAVE_AVX2_KERNELS 1

void ty_avx2_dot_f32(int64_t n, float *s, const void *w, const void *a);
void ty_avx2_dot_f16(int64_t n, float *s, const void *w, const void *a);
void ty_avx2_dot_bf16(int64_t n, float *s, const void *w, const void *a);
void ty_avx2_dot_q4_0(int64_t n, float *s, const void *w, const void *a);
void ty_avx2_dot_q4_1(int64_t n, float *s, const void *w, const void *a);
void ty_avx2_dot_q5_0(int64_t n, float *s, const void *w, const void *a);
void ty_avx2_dot_q5_1(int64_t n, float *s, const void *w, const void *a);
void ty_avx2_dot_q8_0(int64_t n, float *s, const void *w, const void *a);
void ty_avx2_dot_q2_K(int64_t n, float *s, const void *w, const void *a);
void ty_avx2_dot_q3_K(int64_t n, float *s, const void *w, const void *a);
void ty_avx2_dot_q4_K(int64_t n, float *s, const void *w, const void *a);
void ty_avx2_dot_q5_K(int64_t n, float *s, const void *w, const void *a);
void ty_avx2_dot_q6_K(int64_t n, float *s, const void *w, const void *a);

/* vec_dot_multi (kernels.h): n_rows weight rows times n_tok activation rows. */
void ty_avx2_dot_multi_q4_0(int64_t n, float *s, int64_t s_stride, const void *w, size_t w_stride, int64_t n_rows,
                            const void *a, size_t a_stride, int64_t n_tok);
void ty_avx2_dot_multi_q4_1(int64_t n, float *s, int64_t s_stride, const void *w, size_t w_stride, int64_t n_rows,
                            const void *a, size_t a_stride, int64_t n_tok);
void ty_avx2_dot_multi_q5_0(int64_t n, float *s, int64_t s_stride, const void *w, size_t w_stride, int64_t n_rows,
                            const void *a, size_t a_stride, int64_t n_tok);
void ty_avx2_dot_multi_q5_1(int64_t n, float *s, int64_t s_stride, const void *w, size_t w_stride, int64_t n_rows,
                            const void *a, size_t a_stride, int64_t n_tok);
void ty_avx2_dot_multi_q8_0(int64_t n, float *s, int64_t s_stride, const void *w, size_t w_stride, int64_t n_rows,
                            const void *a, size_t a_stride, int64_t n_tok);
void ty_avx2_dot_multi_q2_K(int64_t n, float *s, int64_t s_stride, const void *w, size_t w_stride, int64_t n_rows,
                            const void *a, size_t a_stride, int64_t n_tok);
void ty_avx2_dot_multi_q3_K(int64_t n, float *s, int64_t s_stride, const void *w, size_t w_stride, int64_t n_rows,
                            const void *a, size_t a_stride, int64_t n_tok);
void ty_avx2_dot_multi_q4_K(int64_t n, float *s, int64_t s_stride, const void *w, size_t w_stride, int64_t n_rows,
                            const void *a, size_t a_stride, int64_t n_tok);
void ty_avx2_dot_multi_q5_K(int64_t n, float *s, int64_t s_stride, const void *w, size_t w_stride, int64_t n_rows,
                            const void *a, size_t a_stride, int64_t n_tok);
void ty_avx2_dot_multi_q6_K(int64_t n, float *s, int64_t s_stride, const void *w, size_t w_stride, int64_t n_rows,
                            const void *a, size_t a_stride, int64_t n_tok);

void ty_avx2_quantize_q8_0(const float *x, void *y, int64_t n);
void ty_avx2_quantize_q8_1(const float *x, void *y, int64_t n);
void ty_avx2_quantize_q8_K(const float *x, void *y, int64_t n);
#endif

#endif
