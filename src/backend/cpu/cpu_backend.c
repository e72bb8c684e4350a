/* cpu_backend.c - the CPU device: float32 activations in host memory, weights read in place from
 * the mmapped file, work split over a thread pool.
 *
 * Two matmul paths:
 *   fast  (default): each activation row is quantized once to the weight type's 8-bit dot format
 *                    (Q8_0/Q8_1/Q8_K), then integer block dot products, as the GGUF ecosystem does;
 *   exact (exact_math): each weight row is dequantized exactly and dotted with the float32
 *                    activations in double precision - the reference the fixtures' dequant/ logits
 *                    were computed with. */
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "backend/cpu/attention.h"
#include "base/threadpool.h"
#include "quant/kernels.h"
#include "quant/quant.h"

typedef struct cpu_backend {
    ty_backend base;
    ty_pool *pool;
    int exact;
    const ty_kernels *kern; /* the fastest dot/quantize kernels this CPU runs */
    /* scratch sized by cpu_reserve for the largest batch and context */
    uint8_t *xq;    /* quantized activation rows: n_batch x (2 bytes per element, an upper bound) */
    float *deq;     /* exact path: one dequantized weight row per thread */
    float *scores;  /* attention scratch: ty_attn_scratch_floats per thread */
} cpu_backend;

static cpu_backend *cpu(ty_backend *be) { return (cpu_backend *)be; }

static void cpu_destroy(ty_backend *be) {
    cpu_backend *c = cpu(be);
    ty_pool_free(c->pool);
    free(c->xq);
    free(c->deq);
    free(c->scores);
    free(c);
}

static int cpu_reserve(ty_backend *be, const ty_hparams *hp, int64_t n_batch, int64_t n_ctx,
                       ty_err *err) {
    cpu_backend *c = cpu(be);
    size_t nth = (size_t)ty_pool_size(c->pool);
    int64_t max_in = hp->n_embd;
    if (hp->n_ff > max_in) max_in = hp->n_ff;
    if (hp->n_head * hp->head_dim > max_in) max_in = hp->n_head * hp->head_dim;
    free(c->xq);
    free(c->deq);
    free(c->scores);
    c->xq = malloc((size_t)n_batch * (size_t)max_in * 2);
    c->deq = malloc(sizeof(float) * nth * (size_t)max_in);
    c->scores = malloc(sizeof(float) * nth * ty_attn_scratch_floats(hp->n_head, hp->n_head_kv, hp->head_dim));
    if (!c->xq || !c->deq || !c->scores)
        return ty_seterr(err, TY_ERR_NOMEM, "out of memory reserving CPU scratch for %lld tokens",
                         (long long)n_batch);
    return TY_OK;
}

static int cpu_buffer_new(ty_backend *be, size_t n, float **buf, ty_err *err) {
    *buf = calloc(n ? n : 1, sizeof(float));
    if (!*buf) return ty_seterr(err, TY_ERR_NOMEM, "out of memory allocating %zu floats", n);
    return TY_OK;
}

static void cpu_buffer_free(ty_backend *be, float *buf) { free(buf); }

static void cpu_get_rows(ty_backend *be, const ty_weight *w, const int32_t *ids, int64_t n,
                         float *out) {
    for (int64_t i = 0; i < n; i++)
        ty_dequantize_row(w->type, w->data + (uint64_t)ids[i] * w->row_bytes, out + i * w->ne0,
                          w->ne0);
}

/* ---- matmul ----------------------------------------------------------------------------------- */

typedef struct matmul_job {
    const ty_weight *w;
    const float *x;      /* n rows of ne0 floats */
    const uint8_t *xq;   /* fast path: n rows of the quantized activations */
    uint64_t xq_row;     /* bytes per quantized activation row */
    float *deq;          /* exact path: nth rows of ne0 floats */
    const ty_kernels *kern;
    int64_t n;
    float *y;
    _Alignas(64) atomic_llong next; /* the first row (one token) or unit (a prompt) no thread has
                                     * taken yet (on its own cache line: the threads write it) */
} matmul_job;

static void quantize_rows_task(void *arg, int ith, int nth) {
    matmul_job *j = arg;
    long long b, e;
    ty_split(j->n, ith, nth, &b, &e);
    uint32_t vdt = ty_type_get(j->w->type)->vec_dot_type;
    ty_quantize_row_fn quantize = j->kern->quantize_row[vdt];
    for (long long t = b; t < e; t++)
        quantize(j->x + t * j->w->ne0, (uint8_t *)j->xq + t * j->xq_row, j->w->ne0);
}

/* Rows of W are handed to the threads in chunks. For a prompt, the tokens are taken in blocks whose
 * quantized activations stay in L2 (about 256 KiB), and each weight row meets a whole block at
 * once through vec_dot_multi, which unpacks every weight block once per 4 or 8 tokens. The results are
 * bit-identical to one vec_dot per token, so prompt and decode give the same logits. */
static void matmul_fast_task(void *arg, int ith, int nth) {
    matmul_job *j = arg;
    const ty_weight *w = j->w;
    if (j->n == 1) {
        /* Decode: the threads take chunks of contiguous rows in turn, so that one slowed by the
         * machine (other processes, its share of the memory bus) takes fewer instead of keeping the
         * others waiting at the barrier; about 64 chunks per thread. A chunk is one vec_dot_multi of
         * one token: the bits of vec_dot, and for Q4_0 the activations re-laid out once for the
         * chunk's rows, with unsigned weights (kernels_avx2.c). */
        const ty_vec_dot_multi_fn multi = j->kern->vec_dot_multi[w->type];
        const uint8_t *const data = w->data, *const xq = j->xq;
        float *const y = j->y;
        const long long rows = w->ne1;
        const uint64_t row_bytes = w->row_bytes;
        const int64_t ne0 = w->ne0;
        long long chunk = rows / (64LL * nth);
        if (chunk < 8) chunk = 8;
        for (long long b; (b = atomic_fetch_add_explicit(&j->next, chunk, memory_order_relaxed)) < rows;) {
            const long long e = b + chunk < rows ? b + chunk : rows;
            multi(ne0, &y[b], rows, data + (uint64_t)b * row_bytes, row_bytes, e - b, xq, j->xq_row, 1);
        }
        return;
    }
    /* A prompt: units of (block of tokens, chunk of rows), token blocks first, taken in turn from the
     * same counter (about 16 chunks per thread and block): both threads work on one token block at a
     * time, its activations in each core's L2, and one slowed by the machine takes fewer units. */
    ty_vec_dot_multi_fn multi = j->kern->vec_dot_multi[w->type];
    int64_t block = (int64_t)((256 << 10) / j->xq_row) / 4 * 4;
    if (block < 4) block = 4;
    const long long rows = w->ne1;
    long long chunk = (rows / (16LL * nth) + 15) / 16 * 16;
    if (chunk < 16) chunk = 16;
    const long long n_chunks = (rows + chunk - 1) / chunk, units = (j->n + block - 1) / block * n_chunks;
    for (long long u; (u = atomic_fetch_add_explicit(&j->next, 1, memory_order_relaxed)) < units;) {
        const int64_t t0 = u / n_chunks * block, nt = j->n - t0 < block ? j->n - t0 : block;
        const long long b = u % n_chunks * chunk, e = b + chunk < rows ? b + chunk : rows;
        multi(w->ne0, &j->y[t0 * w->ne1 + b], w->ne1, w->data + (uint64_t)b * w->row_bytes, w->row_bytes, e - b,
              j->xq + (uint64_t)t0 * j->xq_row, j->xq_row, nt);
    }
}

static void matmul_exact_task(void *arg, int ith, int nth) {
    matmul_job *j = arg;
    const ty_weight *w = j->w;
    float *deq = j->deq + (size_t)ith * w->ne0;
    long long b, e;
    ty_split(w->ne1, ith, nth, &b, &e);
    for (long long r = b; r < e; r++) {
        ty_dequantize_row(w->type, w->data + (uint64_t)r * w->row_bytes, deq, w->ne0);
        for (int64_t t = 0; t < j->n; t++) {
            const float *x = j->x + t * w->ne0;
            double s[4] = {0, 0, 0, 0}; /* four independent sums: same result every run, 4x faster */
            int64_t i = 0;
            for (; i + 4 <= w->ne0; i += 4)
                for (int k = 0; k < 4; k++) s[k] += (double)deq[i + k] * x[i + k];
            for (; i < w->ne0; i++) s[0] += (double)deq[i] * x[i];
            j->y[t * w->ne1 + r] = (float)((s[0] + s[1]) + (s[2] + s[3]));
        }
    }
}

static void cpu_matmul(ty_backend *be, const ty_weight *w, const float *x, int64_t n, float *y) {
    cpu_backend *c = cpu(be);
    matmul_job j = {.w = w, .x = x, .n = n, .y = y, .deq = c->deq, .xq = c->xq, .kern = c->kern};
    atomic_init(&j.next, 0);
    uint32_t vdt = ty_type_get(w->type)->vec_dot_type;
    if (c->exact) {
        ty_pool_run(c->pool, matmul_exact_task, &j);
    } else if (vdt == TY_TYPE_F32) {
        j.xq = (const uint8_t *)x; /* float weights take the float activations as they are */
        j.xq_row = sizeof(float) * (uint64_t)w->ne0;
        ty_pool_run(c->pool, matmul_fast_task, &j);
    } else {
        j.xq_row = ty_row_size(vdt, w->ne0);
        ty_pool_run(c->pool, quantize_rows_task, &j);
        ty_pool_run(c->pool, matmul_fast_task, &j);
    }
}

/* ---- element-wise and normalisation ----------------------------------------------------------- */

static void cpu_rmsnorm(ty_backend *be, const float *x, const ty_weight *w, float eps, int64_t n,
                        float *out) {
    int64_t d = w->ne0;
    const float *wf = (const float *)w->data;
    if (w->type != TY_TYPE_F32) { /* F16/BF16 norm weights: widen into the (idle) dequant scratch */
        ty_dequantize_row(w->type, w->data, cpu(be)->deq, d);
        wf = cpu(be)->deq;
    }
    for (int64_t t = 0; t < n; t++) {
        const float *xr = x + t * d;
        double ss = 0;
        for (int64_t i = 0; i < d; i++) ss += (double)xr[i] * xr[i];
        float scale = (float)(1.0 / sqrt(ss / (double)d + (double)eps));
        for (int64_t i = 0; i < d; i++) out[t * d + i] = wf[i] * (xr[i] * scale);
    }
}

static void cpu_rope(ty_backend *be, float *x, int64_t n, int64_t n_head, const ty_hparams *hp,
                     int64_t pos0) {
    int64_t half = hp->n_rot / 2;
    float inv_freq[2048];
    if (half > 2048) return; /* head_dim <= 4096 is checked at load */
    /* As Hugging Face computes it: float32 inverse frequencies and float32 angles. */
    for (int64_t i = 0; i < half; i++)
        inv_freq[i] = (float)(1.0 / pow((double)hp->rope_freq_base, (double)(2 * i) / (double)hp->n_rot));
    for (int64_t t = 0; t < n; t++) {
        float p = (float)(pos0 + t);
        for (int64_t i = 0; i < half; i++) {
            float angle = p * inv_freq[i];
            float cs = (float)cos((double)angle), sn = (float)sin((double)angle);
            for (int64_t h = 0; h < n_head; h++) {
                float *v = x + (t * n_head + h) * hp->head_dim + 2 * i;
                float a = v[0], b = v[1];
                v[0] = a * cs - b * sn;
                v[1] = a * sn + b * cs;
            }
        }
    }
}

/* ---- KV cache and attention ------------------------------------------------------------------ */

static int cpu_kv_new(ty_backend *be, size_t rows, uint64_t row_bytes, void **buf, ty_err *err) {
    *buf = calloc(rows ? rows : 1, (size_t)row_bytes);
    if (!*buf)
        return ty_seterr(err, TY_ERR_NOMEM, "out of memory allocating a KV cache of %zu x %llu bytes",
                         rows, (unsigned long long)row_bytes);
    return TY_OK;
}

static void cpu_kv_free(ty_backend *be, void *buf) { free(buf); }

static void cpu_kv_store(ty_backend *be, void *cache, uint32_t kv_type, int64_t kv_dim, int64_t pos0,
                         int64_t n, const float *src) {
    ty_kv_store(cache, kv_type, ty_row_size(kv_type, kv_dim), kv_dim, pos0, n, src);
}

typedef struct attn_job {
    ty_attn_args args;
    float *scratch; /* ty_attn_scratch_floats per thread */
    size_t per_thread;
} attn_job;

static void attention_task(void *arg, int ith, int nth) {
    attn_job *j = arg;
    long long b, e;
    ty_split(j->args.n * j->args.n_head_kv, ith, nth, &b, &e);
    ty_attn_tiled(&j->args, b, e, j->scratch + (size_t)ith * j->per_thread);
}

static void cpu_attention(ty_backend *be, const float *q, const void *k_cache, const void *v_cache,
                          uint32_t kv_type, int64_t n, int64_t pos0, const ty_hparams *hp, float *out) {
    cpu_backend *c = cpu(be);
    attn_job j = {
        .args = {.q = q, .k = k_cache, .v = v_cache, .kv_type = kv_type,
                 .row_bytes = ty_row_size(kv_type, hp->n_head_kv * hp->head_dim), .n = n, .pos0 = pos0,
                 .n_head = hp->n_head, .n_head_kv = hp->n_head_kv, .head_dim = hp->head_dim, .out = out},
        .scratch = c->scores,
        .per_thread = ty_attn_scratch_floats(hp->n_head, hp->n_head_kv, hp->head_dim),
    };
    ty_pool_run(c->pool, attention_task, &j);
}

static void cpu_swiglu(ty_backend *be, float *g, const float *u, int64_t n) {
    for (int64_t i = 0; i < n; i++) g[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}

static void cpu_add(ty_backend *be, float *x, const float *y, int64_t n) {
    for (int64_t i = 0; i < n; i++) x[i] += y[i];
}

static void cpu_copy(ty_backend *be, float *dst, const float *src, int64_t n) {
    memcpy(dst, src, sizeof(float) * (size_t)n);
}

static int cpu_load_model(ty_backend *be, const ty_model_desc *model, ty_err *err) {
    return TY_OK; /* weights are read in place from the mapping */
}

static const ty_backend_ops CPU_OPS = {
    .name = "cpu",
    .destroy = cpu_destroy,
    .buffer_new = cpu_buffer_new,
    .buffer_free = cpu_buffer_free,
    .reserve = cpu_reserve,
    .kv_new = cpu_kv_new,
    .kv_free = cpu_kv_free,
    .kv_store = cpu_kv_store,
    .get_rows = cpu_get_rows,
    .rmsnorm = cpu_rmsnorm,
    .matmul = cpu_matmul,
    .rope = cpu_rope,
    .attention = cpu_attention,
    .swiglu = cpu_swiglu,
    .add = cpu_add,
    .copy = cpu_copy,
    .download = cpu_copy,
    .load_model = cpu_load_model,
};

int ty_backend_cpu_new(const ty_backend_config *cfg, ty_backend **out, ty_err *err) {
    cpu_backend *c = calloc(1, sizeof *c);
    if (!c) return ty_seterr(err, TY_ERR_NOMEM, "out of memory creating the CPU backend");
    c->base.ops = &CPU_OPS;
    c->exact = cfg->exact_math;
    c->kern = ty_kernels_best();
    int nth = cfg->n_threads > 0 ? cfg->n_threads : ty_physical_cores();
    c->pool = ty_pool_new(nth);
    if (!c->pool) {
        free(c);
        return ty_seterr(err, TY_ERR_NOMEM, "cannot start %d CPU threads", nth);
    }
    *out = &c->base;
    return TY_OK;
}
