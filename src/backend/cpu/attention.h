/* attention.h - causal attention over the KV cache on the CPU.
 *
 * The cache holds one row per position: n_head_kv heads of head_dim elements, in F32, F16 or Q8_0
 * (a Q8_0 row is kv_dim/32 blocks; head h owns blocks [h*head_dim/32, (h+1)*head_dim/32)).
 *
 * ty_attn_tiled never materialises the score matrix: keys are visited in tiles, with a running
 * maximum, a running sum and a rescaled output accumulator (the online softmax of flash attention),
 * so memory stays O(tile) at any context length. One job handles all query heads that share a KV
 * head (grouped-query attention), so each cached row is read once per query token, not once per
 * query head. ty_attn_reference is the plain three-pass version the tests compare it with. */
#ifndef TY_CPU_ATTENTION_H
#define TY_CPU_ATTENTION_H

#include <stddef.h>
#include <stdint.h>

#include "model/model.h"

#define TY_ATTN_TILE 128 /* keys per tile */

typedef struct ty_attn_args {
    const float *q;       /* [n][n_head * head_dim] */
    const void *k, *v;    /* caches: [>= pos0 + n] rows of row_bytes */
    uint32_t kv_type;     /* TY_TYPE_F32, TY_TYPE_F16 or TY_TYPE_Q8_0 */
    uint64_t row_bytes;
    int64_t n, pos0;      /* query row t sits at position pos0 + t and sees keys 0..pos0 + t */
    int64_t n_head, n_head_kv, head_dim;
    float *out;           /* [n][n_head * head_dim] */
} ty_attn_args;

/* Floats of scratch one thread needs for ty_attn_tiled. */
size_t ty_attn_scratch_floats(int64_t n_head, int64_t n_head_kv, int64_t head_dim);

/* Jobs are (query token, KV head) pairs: run jobs [begin, end) of n * n_head_kv. */
void ty_attn_tiled(const ty_attn_args *a, int64_t begin, int64_t end, float *scratch);

/* Straightforward reference: scores, softmax, weighted sum, in double. */
void ty_attn_reference(const ty_attn_args *a);

/* Converts n rows of kv_dim floats into cache rows of kv_type at row pos0. */
void ty_kv_store(void *cache, uint32_t kv_type, uint64_t row_bytes, int64_t kv_dim, int64_t pos0,
                 int64_t n, const float *src);

#endif
