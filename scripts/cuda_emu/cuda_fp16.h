/* cuda_fp16.h - stand-in for scripts/cuda_emu: half conversions through base/fp16.h (round to nearest even). */
#pragma once
#include "cuda_runtime.h"
extern "C" {
#include "base/fp16.h"
}
struct __half { unsigned short x; };
static inline float __half2float(__half h) { return ty_f16_to_f32(h.x); }
static inline __half __ushort_as_half(unsigned short u) { return __half{u}; }
static inline unsigned short __half_as_ushort(__half h) { return h.x; }
static inline __half __float2half_rn(float f) { return __half{ty_f32_to_f16(f)}; }
