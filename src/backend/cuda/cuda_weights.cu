/* cuda_weights.cu - uploading a model's weights once, in their GGUF form, and finding them again.
 *
 * load_model gathers every weight of the model description (tied output counted once), checks that
 * the kernels can read it, and copies all of them into one device allocation (the "pool"): each
 * weight's rows at a pitch of row_bytes rounded up to 16 (padding zeroed), each weight starting at a
 * 256-byte boundary. The copy streams the pool's byte image through two pinned staging buffers:
 * while the DMA engine copies one to the device, the host fills the other from the mapped file
 * (which is where the file is actually read), so disk/page-cache reads and PCIe transfers overlap.
 *
 * Lookup: ops receive the host ty_weight; its data pointer (into the mapping) is the key of a
 * sorted array searched by bisection: O(log n) for a few hundred weights, no hashing.
 *
 * load_model also records where the fused ops should quantize to (set_act_hints). */
#include <stdlib.h>
#include <string.h>

#include "backend/cuda/cuda_common.cuh"

#define STAGE_BYTES ((size_t)32 << 20) /* per staging buffer */
#define POOL_ALIGN 256

bool cu_type_supported(uint32_t type) {
    switch (type) {
    case TY_TYPE_F32: case TY_TYPE_F16: case TY_TYPE_BF16: case TY_TYPE_Q4_0: case TY_TYPE_Q4_1:
    case TY_TYPE_Q5_0: case TY_TYPE_Q5_1: case TY_TYPE_Q8_0: case TY_TYPE_Q2_K: case TY_TYPE_Q3_K:
    case TY_TYPE_Q4_K: case TY_TYPE_Q5_K: case TY_TYPE_Q6_K: return true;
    default: return false;
    }
}

void cu_free_weights(cuda_backend *c) {
    if (c->wpool) cudaFree(c->wpool);
    c->wpool = NULL;
    c->wpool_bytes = 0;
    free(c->w);
    c->w = NULL;
    c->n_w = 0;
    c->ffn_act = CU_ACT_NONE;
    c->ffn_act_ne0 = 0;
}

static int cmp_host(const void *a, const void *b) {
    const uint8_t *x = ((const cu_weight *)a)->host, *y = ((const cu_weight *)b)->host;
    return x < y ? -1 : x > y;
}

/* The entry of the weight whose host data is at `host`, or NULL. */
static cu_weight *find_entry(cuda_backend *c, const uint8_t *host) {
    size_t lo = 0, hi = c->n_w;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (c->w[mid].host < host) lo = mid + 1;
        else hi = mid;
    }
    return lo < c->n_w && c->w[lo].host == host ? &c->w[lo] : NULL;
}

const cu_weight *cu_find_weight(cuda_backend *c, const ty_weight *w) {
    const cu_weight *e = w->data ? find_entry(c, w->data) : NULL;
    if (e) {
        if (e->type == w->type && e->ne0 == w->ne0 && e->ne1 == w->ne1) return e;
        cu_fail(c, "weight '%s' does not match its uploaded copy (type or shape)", w->name ? w->name : "?");
        return NULL;
    }
    cu_fail(c, "weight '%s' was not uploaded to the GPU (load_model was not called with its model)",
            w->name ? w->name : "?");
    return NULL;
}

/* ---- the staged copy ------------------------------------------------------------------------------ */

typedef struct stager {
    cuda_backend *c;
    uint8_t *buf[2];
    cudaEvent_t ev[2];
    int cur;
    size_t fill;       /* bytes in buf[cur] */
    uint64_t dst_off;  /* pool offset where buf[cur] goes */
    bool ok;
} stager;

static void stage_flush(stager *s) {
    if (!s->ok || s->fill == 0) return;
    cuda_backend *c = s->c;
    s->ok = CU_OK(c, cudaMemcpyAsync(c->wpool + s->dst_off, s->buf[s->cur], s->fill, cudaMemcpyHostToDevice,
                                     c->stream)) &&
            CU_OK(c, cudaEventRecord(s->ev[s->cur], c->stream));
    s->dst_off += s->fill;
    s->fill = 0;
    s->cur ^= 1;
    /* the other buffer may still be on its way to the device: wait before refilling it */
    if (s->ok) s->ok = CU_OK(c, cudaEventSynchronize(s->ev[s->cur]));
}

/* Appends len bytes (src NULL: zeros) to the pool image. */
static void stage_put(stager *s, const uint8_t *src, uint64_t len) {
    while (s->ok && len > 0) {
        size_t k = STAGE_BYTES - s->fill;
        if (k > len) k = (size_t)len;
        if (src) {
            memcpy(s->buf[s->cur] + s->fill, src, k);
            src += k;
        } else {
            memset(s->buf[s->cur] + s->fill, 0, k);
        }
        s->fill += k;
        len -= k;
        if (s->fill == STAGE_BYTES) stage_flush(s);
    }
}

static void add_weight(cu_weight *list, size_t *n, const ty_weight *w) {
    cu_weight *e = &list[(*n)++];
    memset(e, 0, sizeof *e);
    e->host = w->data;
    e->type = w->type;
    e->ne0 = w->ne0;
    e->ne1 = w->ne1;
    e->row_bytes = w->row_bytes;
}

#define PER_LAYER 9

/* The weights of one layer, in a fixed order. */
static void layer_weights(const ty_layer_weights *L, const ty_weight *out[PER_LAYER]) {
    const ty_weight *ws[PER_LAYER] = {&L->attn_norm, &L->wq,     &L->wk,   &L->wv,    &L->wo,
                                      &L->ffn_norm,  &L->w_gate, &L->w_up, &L->w_down};
    memcpy(out, ws, sizeof ws);
}

static const char *weight_name(const ty_model_desc *d, const uint8_t *data) {
    if (d->tok_embd.data == data) return d->tok_embd.name;
    if (d->output.data == data) return d->output.name;
    if (d->output_norm.data == data) return d->output_norm.name;
    for (int64_t l = 0; l < d->hp.n_layer; l++) {
        const ty_weight *ws[PER_LAYER];
        layer_weights(&d->layers[l], ws);
        for (int i = 0; i < PER_LAYER; i++)
            if (ws[i]->data == data) return ws[i]->name ? ws[i]->name : "?";
    }
    return "?";
}

/* ---- hints for the fused quantization (cu_weight.act_next, cuda_backend.ffn_act) ----------------- */

static void hint_norm(cuda_backend *c, const ty_weight *norm, const ty_weight *next) {
    cu_weight *e = norm->data ? find_entry(c, norm->data) : NULL;
    if (e) e->act_next = next->data && next->ne0 == e->ne0 ? cu_act_format(next->type) : CU_ACT_NONE;
}

/* Folds weight w of one layer into a format shared by all layers (CU_ACT_NONE once two differ). */
static void hint_shared(int *act, int64_t *ne0, const ty_weight *w, bool first) {
    const int a = w->data ? cu_act_format(w->type) : CU_ACT_NONE;
    if (first) *act = a, *ne0 = w->ne0;
    else if (a != *act || w->ne0 != *ne0) *act = CU_ACT_NONE;
    if (*act == CU_ACT_NONE) *ne0 = 0;
}

/* What rmsnorm, swiglu and attention quantize their output for: the format of the matmul after each
 * norm, and of w_down (w_o) when all layers share it (with mixed formats the matmuls quantize for
 * themselves). */
static void set_act_hints(cuda_backend *c, const ty_model_desc *d) {
    hint_norm(c, &d->output_norm, &d->output);
    c->ffn_act = c->attn_act = CU_ACT_NONE;
    c->ffn_act_ne0 = c->attn_act_ne0 = 0;
    for (int64_t l = 0; l < d->hp.n_layer; l++) {
        const ty_layer_weights *L = &d->layers[l];
        hint_norm(c, &L->attn_norm, &L->wq);
        hint_norm(c, &L->ffn_norm, &L->w_gate);
        hint_shared(&c->ffn_act, &c->ffn_act_ne0, &L->w_down, l == 0);
        hint_shared(&c->attn_act, &c->attn_act_ne0, &L->wo, l == 0);
    }
}

int cu_load_model(ty_backend *be, const ty_model_desc *d, ty_err *err) {
    cuda_backend *c = cu_be(be);
    if (!cu_enter(c)) return ty_seterr(err, TY_ERR_DEVICE, "CUDA: %s", c->errmsg);
    cu_mv_flush(c); /* nothing kept may read the weights freed here */
    if (c->failed) return ty_seterr(err, TY_ERR_DEVICE, "CUDA backend failed earlier: %s", c->errmsg);
    cu_free_weights(c);

    /* every weight of the description, checked */
    const size_t cap = 3 + PER_LAYER * (size_t)(d->hp.n_layer > 0 ? d->hp.n_layer : 0);
    cu_weight *list = (cu_weight *)calloc(cap, sizeof *list);
    if (!list) return ty_seterr(err, TY_ERR_NOMEM, "out of memory listing %zu weights", cap);
    size_t n = 0;
    const ty_weight *top[3] = {&d->tok_embd, &d->output_norm, &d->output};
    for (int i = 0; i < 3; i++)
        if (top[i]->data) add_weight(list, &n, top[i]);
    for (int64_t l = 0; l < d->hp.n_layer; l++) {
        const ty_weight *ws[PER_LAYER];
        layer_weights(&d->layers[l], ws);
        for (int i = 0; i < PER_LAYER; i++)
            if (ws[i]->data) add_weight(list, &n, ws[i]);
    }
    qsort(list, n, sizeof *list, cmp_host);
    size_t m = 0; /* drop repeats (tied embeddings) */
    for (size_t i = 0; i < n; i++) {
        if (m > 0 && list[m - 1].host == list[i].host) {
            if (list[m - 1].type != list[i].type || list[m - 1].ne0 != list[i].ne0 || list[m - 1].ne1 != list[i].ne1) {
                free(list);
                return ty_seterr(err, TY_ERR_INTERNAL, "two weights share data but differ in type or shape");
            }
            continue;
        }
        list[m++] = list[i];
    }
    n = m;
    uint64_t total = 0;
    int rc = TY_OK;
    for (size_t i = 0; i < n && rc == TY_OK; i++) {
        cu_weight *w = &list[i];
        const char *name = weight_name(d, w->host);
        if (!cu_type_supported(w->type))
            rc = ty_seterr(err, TY_ERR_UNSUPPORTED, "the CUDA backend cannot compute with tensor '%s' of type %s", name,
                           ty_type_name(w->type));
        else if (w->ne0 <= 0 || w->ne1 <= 0 || w->ne0 % 32 != 0)
            rc = ty_seterr(err, TY_ERR_UNSUPPORTED,
                           "the CUDA backend needs rows of a multiple of 32 elements; tensor '%s' has %lld", name,
                           (long long)w->ne0);
        else if (w->row_bytes != ty_row_size(w->type, w->ne0))
            rc = ty_seterr(err, TY_ERR_INTERNAL, "tensor '%s': row size %llu does not match its type", name,
                           (unsigned long long)w->row_bytes);
        w->pitch = (w->row_bytes + 15) / 16 * 16;
        total += (w->pitch * (uint64_t)w->ne1 + POOL_ALIGN - 1) / POOL_ALIGN * POOL_ALIGN;
    }
    if (rc) {
        free(list);
        return rc;
    }

    /* the pool */
    size_t free_b = 0, total_b = 0;
    if (!CU_OK(c, cudaMemGetInfo(&free_b, &total_b))) {
        free(list);
        return ty_seterr(err, TY_ERR_DEVICE, "CUDA: %s", c->errmsg);
    }
    const double MiB = 1024.0 * 1024.0;
    if (total > free_b) {
        free(list);
        return ty_seterr(err, TY_ERR_NOMEM,
                         "not enough GPU memory for the weights: %.1f MiB needed, %.1f MiB free of %.1f MiB",
                         (double)total / MiB, (double)free_b / MiB, (double)total_b / MiB);
    }
    void *pool = NULL;
    cudaError_t e = cudaMalloc(&pool, total ? (size_t)total : 1);
    if (e != cudaSuccess) {
        cudaGetLastError();
        free(list);
        return ty_seterr(err, TY_ERR_NOMEM, "cannot allocate %.1f MiB of GPU memory for the weights (%.1f MiB free): %s",
                         (double)total / MiB, (double)free_b / MiB, cudaGetErrorString(e));
    }
    c->wpool = (uint8_t *)pool;
    c->wpool_bytes = total;

    /* the copy */
    stager s;
    memset(&s, 0, sizeof s);
    s.c = c;
    s.ok = true;
    for (int b = 0; b < 2 && rc == TY_OK; b++) {
        e = cudaHostAlloc((void **)&s.buf[b], STAGE_BYTES, cudaHostAllocDefault);
        if (e != cudaSuccess) {
            cudaGetLastError();
            s.buf[b] = NULL;
            rc = ty_seterr(err, TY_ERR_NOMEM, "cannot allocate %zu MiB of pinned host memory for the upload: %s",
                           STAGE_BYTES >> 20, cudaGetErrorString(e));
        } else if (!CU_OK(c, cudaEventCreateWithFlags(&s.ev[b], cudaEventDisableTiming))) {
            rc = ty_seterr(err, TY_ERR_DEVICE, "CUDA: %s", c->errmsg);
        }
    }
    uint64_t off = 0;
    for (size_t i = 0; i < n && rc == TY_OK && s.ok; i++) {
        cu_weight *w = &list[i];
        w->dev = c->wpool + off;
        if (w->pitch == w->row_bytes) {
            stage_put(&s, w->host, w->row_bytes * (uint64_t)w->ne1);
        } else {
            for (int64_t r = 0; r < w->ne1 && s.ok; r++) {
                stage_put(&s, w->host + (uint64_t)r * w->row_bytes, w->row_bytes);
                stage_put(&s, NULL, w->pitch - w->row_bytes);
            }
        }
        const uint64_t bytes = w->pitch * (uint64_t)w->ne1;
        const uint64_t padded = (bytes + POOL_ALIGN - 1) / POOL_ALIGN * POOL_ALIGN;
        stage_put(&s, NULL, padded - bytes);
        off += padded;
    }
    stage_flush(&s);
    if (rc == TY_OK && s.ok) s.ok = CU_OK(c, cudaStreamSynchronize(c->stream));
    if (rc == TY_OK && !s.ok) rc = ty_seterr(err, TY_ERR_DEVICE, "uploading the weights failed: %s", c->errmsg);
    if (rc == TY_OK && off != total) rc = ty_seterr(err, TY_ERR_INTERNAL, "weight pool size mismatch");
    cudaStreamSynchronize(c->stream); /* nothing may still read the staging buffers */
    for (int b = 0; b < 2; b++) {
        if (s.ev[b]) cudaEventDestroy(s.ev[b]);
        if (s.buf[b]) cudaFreeHost(s.buf[b]);
    }
    if (rc != TY_OK) {
        free(list);
        cu_free_weights(c);
        return rc;
    }
    c->w = list; /* still sorted by host pointer */
    c->n_w = n;
    set_act_hints(c, d);
    return TY_OK;
}
