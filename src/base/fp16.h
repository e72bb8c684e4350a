/* fp16.h - IEEE half and bfloat16 <-> float32 conversions (bit-exact, round to nearest even). */
#ifndef TY_BASE_FP16_H
#define TY_BASE_FP16_H

#include <stdint.h>
#include <string.h>

static inline float ty_bits_to_f32(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }
static inline uint32_t ty_f32_to_bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }

static inline float ty_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f;
    uint32_t man = h & 0x3ff;
    if (exp == 0x1f) return ty_bits_to_f32(sign | 0x7f800000u | (man << 13)); /* inf / nan */
    if (exp == 0) {
        if (man == 0) return ty_bits_to_f32(sign);
        /* subnormal: value = man * 2^-24 */
        float v = (float)man * (1.0f / 16777216.0f);
        return sign ? -v : v;
    }
    return ty_bits_to_f32(sign | ((exp + 112) << 23) | (man << 13));
}

static inline uint16_t ty_f32_to_f16(float f) {
    uint32_t x = ty_f32_to_bits(f);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000);
    uint32_t ax = x & 0x7fffffffu;
    if (ax >= 0x7f800000u) return (uint16_t)(sign | 0x7c00 | (ax > 0x7f800000u ? 0x200 : 0)); /* inf/nan */
    if (ax >= 0x477ff000u) return (uint16_t)(sign | 0x7c00); /* rounds to >= 65520: overflow */
    if (ax < 0x38800000u) {
        /* result is subnormal or zero: scale so that the integer part is the half mantissa */
        float a = ty_bits_to_f32(ax) * 16777216.0f; /* units of 2^-24 */
        uint32_t m = (uint32_t)a;
        float rem = a - (float)m;
        if (rem > 0.5f || (rem == 0.5f && (m & 1))) m++;
        return (uint16_t)(sign | m);
    }
    uint32_t e = (ax >> 23) - 112;
    uint32_t man = ax & 0x7fffff;
    uint32_t h = (e << 10) | (man >> 13);
    uint32_t rest = man & 0x1fff;
    if (rest > 0x1000 || (rest == 0x1000 && (h & 1))) h++; /* carry into exponent is correct */
    return (uint16_t)(sign | h);
}

static inline float ty_bf16_to_f32(uint16_t b) { return ty_bits_to_f32((uint32_t)b << 16); }

static inline uint16_t ty_f32_to_bf16(float f) {
    uint32_t x = ty_f32_to_bits(f);
    if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 64); /* quiet nan */
    x += 0x7fff + ((x >> 16) & 1);
    return (uint16_t)(x >> 16);
}

#endif
