/* attention.c - tiled (online-softmax) causal attention over an F32/F16/Q8_0 KV cache. */
#include "backend/cpu/attention.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/fp16.h"
#include "quant/kernels.h"
#include "quant/quant.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define TY_X86 1
#endif

size_t ty_attn_scratch_floats(int64_t n_head, int64_t n_head_kv, int64_t head_dim) {
    int64_t g = n_head / n_head_kv;
    /* o[g][hd], m[g], l[g], s[g][TILE], row[hd] */
    return (size_t)(g * head_dim + 2 * g + g * TY_ATTN_TILE + head_dim);
}

/* Head `h` of cache row `p`, as floats. Returns a pointer to the data (F32 rows are used in place). */
static const float *load_head(const void *cache, uint32_t type, uint64_t row_bytes, int64_t p,
                              int64_t h, int64_t hd, float *buf) {
    const uint8_t *row = (const uint8_t *)cache + (uint64_t)p * row_bytes;
    if (type == TY_TYPE_F32) return (const float *)row + h * hd;
    ty_dequantize_row(type, row + ty_row_size(type, h * hd), buf, hd);
    return buf;
}

#ifdef TY_X86
/* F16 cache rows read directly with F16C: dot(q, k) and o += a * v over hd (a multiple of 8). */
__attribute__((target("avx2,fma,f16c"))) static float dot_f16_avx2(const float *q, const uint16_t *k,
                                                                    int64_t hd) {
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < hd; i += 8) {
        __m256 kv = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(k + i)));
        acc = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), kv, acc);
    }
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

__attribute__((target("avx2,fma,f16c"))) static void axpy_f16_avx2(float *o, float a, const uint16_t *v,
                                                                    int64_t hd) {
    __m256 av = _mm256_set1_ps(a);
    for (int64_t i = 0; i < hd; i += 8) {
        __m256 vv = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(v + i)));
        _mm256_storeu_ps(o + i, _mm256_fmadd_ps(av, vv, _mm256_loadu_ps(o + i)));
    }
}

/* One head's slice of a cache row is 256 bytes of a 2 KiB row (all KV heads interleaved): a stride
 * the hardware prefetcher does not follow, so at 4k keys each key waited for memory twice (K, V)
 * and attention cost as much as all the weights (tg at 4k depth: 1.60 tokens/s; 8 rows ahead 2.47,
 * 16 rows ahead 2.67). A prefetch past the cache's end is harmless: it never faults. */
#define PREFETCH_KEYS 16
static inline void prefetch_head(uintptr_t p, int64_t bytes) { /* an address, maybe past the cache */
    for (int64_t o = 0; o < bytes; o += 64) _mm_prefetch((const char *)(p + (uintptr_t)o), _MM_HINT_T0);
}

/* The AVX2 kernel set is chosen only on CPUs with AVX2, FMA and F16C. */
static int have_f16c(void) { return ty_kernels_best() != ty_kernels_scalar(); }
#endif

/* expf, flushed to 0 below e^-64 (1.6e-28): on x86 every operation on a subnormal float costs ~100
 * cycles, and a peaked softmax over thousands of keys makes weights (below e^-87) and weighted V
 * values (weight x value) that small by the thousand: decode at 512 keys ran 20% slower on synthetic
 * K/V that did. A weight dropped here is below 1e-27 of the largest one. */
static inline float exp_normal(float x) { return x < -64.0f ? 0.0f : expf(x); }

static float dot(const float *a, const float *b, int64_t n) {
    float s = 0;
    for (int64_t i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

void ty_attn_tiled(const ty_attn_args *a, int64_t begin, int64_t end, float *scratch) {
    const int64_t hd = a->head_dim, g = a->n_head / a->n_head_kv, q_stride = a->n_head * hd;
    const float scale = 1.0f / sqrtf((float)hd);
    float *o = scratch, *m = o + g * hd, *l = m + g, *s = l + g, *row = s + g * TY_ATTN_TILE;
    int fast_f16 = 0;
#ifdef TY_X86
    fast_f16 = a->kv_type == TY_TYPE_F16 && hd % 8 == 0 && have_f16c();
#endif
    for (int64_t job = begin; job < end; job++) {
        const int64_t t = job / a->n_head_kv, kvh = job % a->n_head_kv, n_keys = a->pos0 + t + 1;
        const float *q = a->q + t * q_stride + kvh * g * hd; /* the g query heads of this KV head */
        memset(o, 0, sizeof(float) * (size_t)(g * hd));
        for (int64_t i = 0; i < g; i++) { m[i] = -INFINITY; l[i] = 0; }
        for (int64_t p0 = 0; p0 < n_keys; p0 += TY_ATTN_TILE) {
            const int64_t nt = n_keys - p0 < TY_ATTN_TILE ? n_keys - p0 : TY_ATTN_TILE;
            /* scores of the tile */
            for (int64_t j = 0; j < nt; j++) {
#ifdef TY_X86
                if (fast_f16) {
                    const uint16_t *k = (const uint16_t *)((const uint8_t *)a->k + (uint64_t)(p0 + j) * a->row_bytes) + kvh * hd;
                    prefetch_head((uintptr_t)k + PREFETCH_KEYS * a->row_bytes, hd * 2);
                    for (int64_t i = 0; i < g; i++) s[i * TY_ATTN_TILE + j] = dot_f16_avx2(q + i * hd, k, hd) * scale;
                    continue;
                }
#endif
                const float *k = load_head(a->k, a->kv_type, a->row_bytes, p0 + j, kvh, hd, row);
                for (int64_t i = 0; i < g; i++) s[i * TY_ATTN_TILE + j] = dot(q + i * hd, k, hd) * scale;
            }
            /* online softmax: rescale what was accumulated to the new running maximum */
            for (int64_t i = 0; i < g; i++) {
                float *si = s + i * TY_ATTN_TILE, mx = m[i];
                for (int64_t j = 0; j < nt; j++) mx = si[j] > mx ? si[j] : mx;
                float corr = exp_normal(m[i] - mx); /* 0 on the first tile (m = -inf) */
                float sum = 0;
                for (int64_t j = 0; j < nt; j++) sum += si[j] = exp_normal(si[j] - mx);
                l[i] = l[i] * corr + sum;
                m[i] = mx;
                if (corr != 1.0f)
                    for (int64_t d = 0; d < hd; d++) o[i * hd + d] *= corr;
            }
            for (int64_t j = 0; j < nt; j++) {
#ifdef TY_X86
                if (fast_f16) {
                    const uint16_t *v = (const uint16_t *)((const uint8_t *)a->v + (uint64_t)(p0 + j) * a->row_bytes) + kvh * hd;
                    prefetch_head((uintptr_t)v + PREFETCH_KEYS * a->row_bytes, hd * 2);
                    for (int64_t i = 0; i < g; i++) axpy_f16_avx2(o + i * hd, s[i * TY_ATTN_TILE + j], v, hd);
                    continue;
                }
#endif
                const float *v = load_head(a->v, a->kv_type, a->row_bytes, p0 + j, kvh, hd, row);
                for (int64_t i = 0; i < g; i++) {
                    float w = s[i * TY_ATTN_TILE + j];
                    for (int64_t d = 0; d < hd; d++) o[i * hd + d] += w * v[d];
                }
            }
        }
        float *out = a->out + t * q_stride + kvh * g * hd;
        for (int64_t i = 0; i < g; i++)
            for (int64_t d = 0; d < hd; d++) out[i * hd + d] = o[i * hd + d] / l[i];
    }
}

void ty_attn_reference(const ty_attn_args *a) {
    const int64_t hd = a->head_dim, g = a->n_head / a->n_head_kv, q_stride = a->n_head * hd;
    const int64_t n_keys_max = a->pos0 + a->n;
    double *sc = malloc(sizeof(double) * (size_t)n_keys_max);
    float *row = malloc(sizeof(float) * (size_t)hd);
    double *acc = malloc(sizeof(double) * (size_t)hd);
    if (!sc || !row || !acc) goto done;
    for (int64_t t = 0; t < a->n; t++)
        for (int64_t h = 0; h < a->n_head; h++) {
            const int64_t kvh = h / g, n_keys = a->pos0 + t + 1;
            const float *q = a->q + t * q_stride + h * hd;
            double mx = -INFINITY, sum = 0;
            for (int64_t p = 0; p < n_keys; p++) {
                const float *k = load_head(a->k, a->kv_type, a->row_bytes, p, kvh, hd, row);
                double d = 0;
                for (int64_t i = 0; i < hd; i++) d += (double)q[i] * k[i];
                sc[p] = d / sqrt((double)hd);
                mx = sc[p] > mx ? sc[p] : mx;
            }
            for (int64_t p = 0; p < n_keys; p++) sum += sc[p] = exp(sc[p] - mx);
            memset(acc, 0, sizeof(double) * (size_t)hd);
            for (int64_t p = 0; p < n_keys; p++) {
                const float *v = load_head(a->v, a->kv_type, a->row_bytes, p, kvh, hd, row);
                for (int64_t i = 0; i < hd; i++) acc[i] += sc[p] / sum * v[i];
            }
            for (int64_t i = 0; i < hd; i++) a->out[t * q_stride + h * hd + i] = (float)acc[i];
        }
done:
    free(sc);
    free(row);
    free(acc);
}

void ty_kv_store(void *cache, uint32_t kv_type, uint64_t row_bytes, int64_t kv_dim, int64_t pos0,
                 int64_t n, const float *src) {
    uint8_t *dst = (uint8_t *)cache + (uint64_t)pos0 * row_bytes;
    for (int64_t t = 0; t < n; t++)
        ty_quantize_row(kv_type, src + t * kv_dim, dst + (uint64_t)t * row_bytes, kv_dim);
}
