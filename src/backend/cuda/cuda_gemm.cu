/* cuda_gemm.cu - prompt matmuls (several tokens) on the fast path: the weight matrix is decoded to
 * fp16 into a workspace (deq32's exact float values, rounded to nearest half), the activations are
 * rounded to fp16, and cuBLAS multiplies them on the tensor cores with fp32 accumulation and fp32
 * output. One matrix is decoded at a time, so the workspace is the largest weight matrix in fp16
 * (the output matrix: n_vocab x n_embd) plus n_batch rows of the widest input.
 *
 * Error: fp16 keeps 11 significant bits, so each operand is off by up to 2^-12 relative, far less
 * than the 8-bit activations of decode. The exact path (exact_math) never comes here. */
#include <cublas_v2.h>

#include "backend/cuda/cuda_common.cuh"
#include "backend/cuda/cuda_quant.cuh"

/* One thread per 32-element group of a row: decode, round to half, four 16-byte stores. */
template <int T>
__global__ void k_dequant_f16(const uint8_t *__restrict__ W, uint64_t pitch, int64_t ne0, int64_t ne1,
                              __half *__restrict__ out) {
    const int64_t groups = ne0 / 32, total = groups * ne1;
    for (int64_t idx = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; idx < total;
         idx += (int64_t)gridDim.x * blockDim.x) {
        const int64_t r = idx / groups, g = idx % groups, e = g * 32;
        constexpr int BS = qt<T>::BS, TS = qt<T>::TS;
        float y[32];
        deq32<T>(W + (uint64_t)r * pitch + (uint64_t)(e / BS) * TS, (int)((e % BS) / 32), y);
        uint4 *o = (uint4 *)(out + r * ne0 + e);
#pragma unroll
        for (int i = 0; i < 4; i++) {
            __half2 h[4];
#pragma unroll
            for (int k = 0; k < 4; k++) h[k] = __floats2half2_rn(y[8 * i + 2 * k], y[8 * i + 2 * k + 1]);
            o[i] = *(uint4 *)h;
        }
    }
}

__global__ void k_f32_to_f16(const float *__restrict__ x, int64_t n, __half *__restrict__ out) {
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n / 2; i += (int64_t)gridDim.x * blockDim.x)
        ((__half2 *)out)[i] = __floats2half2_rn(x[2 * i], x[2 * i + 1]);
}

int cu_gemm_reserve(cuda_backend *c, int64_t n_batch, ty_err *err) {
    if (c->exact || n_batch < CU_GEMM_MIN_TOKENS) return TY_OK;
    size_t w_need = 0, x_need = 0;
    for (size_t i = 0; i < c->n_w; i++) {
        const size_t el = (size_t)c->w[i].ne0 * (size_t)c->w[i].ne1;
        if (el > w_need) w_need = el;
        if ((size_t)c->w[i].ne0 * (size_t)n_batch > x_need) x_need = (size_t)c->w[i].ne0 * (size_t)n_batch;
    }
    if (w_need <= c->wf16_cap && x_need <= c->xf16_cap) return TY_OK;
    if (!c->cublas) {
        cublasHandle_t h = NULL;
        if (cublasCreate(&h) != CUBLAS_STATUS_SUCCESS)
            return ty_seterr(err, TY_ERR_DEVICE, "CUDA: cannot create a cuBLAS handle (prompts need it)");
        cublasSetStream(h, c->stream);
        c->cublas = h;
    }
    cudaStreamSynchronize(c->stream); /* earlier work may still use the old workspace */
    cudaFree(c->wf16);
    c->wf16 = NULL;
    c->wf16_cap = c->xf16_cap = 0;
    const size_t bytes = 2 * (w_need + x_need) + 256;
    void *p = NULL;
    cudaError_t e = cudaMalloc(&p, bytes);
    if (e != cudaSuccess) {
        cudaGetLastError();
        size_t fr = 0, tot = 0;
        cudaMemGetInfo(&fr, &tot);
        return ty_seterr(err, TY_ERR_NOMEM,
                         "out of GPU memory for the prompt workspace: %.1f MiB asked, %.1f MiB free",
                         (double)bytes / 1048576.0, (double)fr / 1048576.0);
    }
    c->wf16 = (__half *)p;
    c->xf16 = c->wf16 + (w_need + 127) / 128 * 128;
    c->wf16_cap = w_need;
    c->xf16_cap = x_need;
    return TY_OK;
}

void cu_gemm_free(cuda_backend *c) {
    if (c->cublas) cublasDestroy((cublasHandle_t)c->cublas);
    cudaFree(c->wf16);
    c->cublas = NULL;
    c->wf16 = c->xf16 = NULL;
    c->wf16_cap = c->xf16_cap = 0;
}

bool cu_gemm_usable(const cuda_backend *c, const cu_weight *w, int64_t n) {
    return !c->exact && c->cublas && n >= CU_GEMM_MIN_TOKENS && (size_t)(w->ne0 * w->ne1) <= c->wf16_cap &&
           (size_t)(w->ne0 * n) <= c->xf16_cap;
}

void cu_launch_gemm(cuda_backend *c, const cu_weight *w, const float *x, int64_t n, float *y, bool add) {
    const int threads = 256;
    const unsigned wblocks = cu_blocks(w->ne1 * (w->ne0 / 32), threads, 65535u * 16);
    switch (w->type) {
#define X(T)                                                                                                 \
    case T: k_dequant_f16<T><<<wblocks, threads, 0, c->stream>>>(w->dev, w->pitch, w->ne0, w->ne1, c->wf16); \
        break;
        CU_FOR_EACH_TYPE(X)
#undef X
    default: cu_fail(c, "matmul: type %s is not implemented on CUDA", ty_type_name(w->type)); return;
    }
    k_f32_to_f16<<<cu_blocks(n * w->ne0 / 2, threads, 65535u * 16), threads, 0, c->stream>>>(x, n * w->ne0, c->xf16);
    /* Row-major Y[n][ne1] = X[n][ne0] W[ne1][ne0]^T is column-major Y^T = W^T' X' with W read as
     * the ne0 x ne1 column-major matrix it is in memory: C (ne1 x n) = op(A)^T (ne1 x ne0) * B.
     * matmul_add: beta = 1, C = A B + C in cuBLAS's epilogue (not necessarily the bits of a separate
     * add: cuBLAS may sum split-K parts into C in another order). */
    const float one = 1.0f, zero = 0.0f;
    cublasStatus_t st = cublasGemmEx((cublasHandle_t)c->cublas, CUBLAS_OP_T, CUBLAS_OP_N, (int)w->ne1, (int)n,
                                     (int)w->ne0, &one, c->wf16, CUDA_R_16F, (int)w->ne0, c->xf16, CUDA_R_16F,
                                     (int)w->ne0, add ? &one : &zero, y, CUDA_R_32F, (int)w->ne1, CUBLAS_COMPUTE_32F,
                                     CUBLAS_GEMM_DEFAULT);
    if (st != CUBLAS_STATUS_SUCCESS) cu_fail(c, "matmul: cublasGemmEx failed (status %d)", (int)st);
}
