/* types.c - the table of tensor element types: name, block size, bytes per block. */
#include "quant/quant.h"

#define ROW(id, nm, bs, ts, q, dot) [id] = {nm, bs, ts, q, dot}

static const ty_type_info TYPES[TY_TYPE_COUNT] = {
    ROW(TY_TYPE_F32, "F32", 1, 4, false, TY_TYPE_F32),
    ROW(TY_TYPE_F16, "F16", 1, 2, false, TY_TYPE_F32),
    ROW(TY_TYPE_BF16, "BF16", 1, 2, false, TY_TYPE_F32),
    ROW(TY_TYPE_Q4_0, "Q4_0", TY_QK, 18, true, TY_TYPE_Q8_0),   /* f16 d, 16 bytes of nibbles */
    ROW(TY_TYPE_Q4_1, "Q4_1", TY_QK, 20, true, TY_TYPE_Q8_1),   /* f16 d, f16 m, 16 bytes */
    ROW(TY_TYPE_Q5_0, "Q5_0", TY_QK, 22, true, TY_TYPE_Q8_0),   /* f16 d, u32 high bits, 16 bytes */
    ROW(TY_TYPE_Q5_1, "Q5_1", TY_QK, 24, true, TY_TYPE_Q8_1),   /* f16 d, f16 m, u32 qh, 16 bytes */
    ROW(TY_TYPE_Q8_0, "Q8_0", TY_QK, 34, true, TY_TYPE_Q8_0),   /* f16 d, 32 int8 */
    ROW(TY_TYPE_Q8_1, "Q8_1", TY_QK, 36, true, TY_TYPE_Q8_1),   /* f16 d, f16 d*sum, 32 int8 */
    ROW(TY_TYPE_Q2_K, "Q2_K", TY_QK_K, 84, true, TY_TYPE_Q8_K), /* scales[16] qs[64] d dmin */
    ROW(TY_TYPE_Q3_K, "Q3_K", TY_QK_K, 110, true, TY_TYPE_Q8_K),/* hmask[32] qs[64] scales[12] d */
    ROW(TY_TYPE_Q4_K, "Q4_K", TY_QK_K, 144, true, TY_TYPE_Q8_K),/* d dmin scales[12] qs[128] */
    ROW(TY_TYPE_Q5_K, "Q5_K", TY_QK_K, 176, true, TY_TYPE_Q8_K),/* d dmin scales[12] qh[32] qs[128] */
    ROW(TY_TYPE_Q6_K, "Q6_K", TY_QK_K, 210, true, TY_TYPE_Q8_K),/* ql[128] qh[64] scales[16] d */
    ROW(TY_TYPE_Q8_K, "Q8_K", TY_QK_K, 292, true, TY_TYPE_Q8_K),/* f32 d, qs[256], i16 bsums[16] */
};

const ty_type_info *ty_type_get(uint32_t type) {
    if (type >= TY_TYPE_COUNT || TYPES[type].name == NULL) return NULL;
    return &TYPES[type];
}

const char *ty_type_name(uint32_t type) {
    const ty_type_info *t = ty_type_get(type);
    return t ? t->name : "unknown";
}

uint64_t ty_row_size(uint32_t type, int64_t n) {
    const ty_type_info *t = ty_type_get(type);
    if (!t || n < 0 || n % t->block_size != 0) return 0;
    return (uint64_t)(n / t->block_size) * (uint64_t)t->type_size;
}
