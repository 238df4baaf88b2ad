// A scalar model of the NEON intrinsics kernels/cpu/kernels_neon.cpp uses, lane by lane as the
// Arm ACLE defines them, so that file's kernels compile and run on a machine without AArch64
// (cpu_neon_emulated_tests; no qemu-user here). It checks the kernels' logic: layouts, shifts,
// scales, offsets, lane order. It cannot check what only hardware shows (speed, a compiler's
// NEON code generation); the cross build compiles the same file against the real header.
// Only the intrinsics the kernels use are here: a new one fails to compile until it is added.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

#include "halyard/hal/dtype.h"

template <typename T, int N>
struct NeonVec {
  T v[N];
};
using uint8x16_t = NeonVec<std::uint8_t, 16>;
using int8x16_t = NeonVec<std::int8_t, 16>;
using uint8x8_t = NeonVec<std::uint8_t, 8>;
using int8x8_t = NeonVec<std::int8_t, 8>;
using int16x4_t = NeonVec<std::int16_t, 4>;
using int16x8_t = NeonVec<std::int16_t, 8>;
using uint16x4_t = NeonVec<std::uint16_t, 4>;
using int32x4_t = NeonVec<std::int32_t, 4>;
using uint32x4_t = NeonVec<std::uint32_t, 4>;
using uint64x2_t = NeonVec<std::uint64_t, 2>;
using float32x4_t = NeonVec<float, 4>;
struct float16x4_t {
  std::uint16_t v[4];  // f16 bit patterns
};

namespace neon_emulation {
template <typename To, typename From>
To bit_cast(const From& f) {
  static_assert(sizeof(To) == sizeof(From));
  To t;
  std::memcpy(&t, &f, sizeof t);
  return t;
}
template <typename V, typename T>
V dup(T x) {
  V r;
  for (auto& e : r.v)
    e = x;
  return r;
}
template <typename V, typename T>
V load(const T* p) {
  V r;
  std::memcpy(r.v, p, sizeof r.v);
  return r;
}
}  // namespace neon_emulation

// loads, stores, broadcasts, reinterpretations
inline uint8x16_t vld1q_u8(const std::uint8_t* p) {
  return neon_emulation::load<uint8x16_t>(p);
}
inline int8x16_t vld1q_s8(const std::int8_t* p) {
  return neon_emulation::load<int8x16_t>(p);
}
inline float32x4_t vld1q_f32(const float* p) {
  return neon_emulation::load<float32x4_t>(p);
}
inline uint16x4_t vld1_u16(const std::uint16_t* p) {
  return neon_emulation::load<uint16x4_t>(p);
}
inline void vst1q_f32(float* p, float32x4_t a) {
  std::memcpy(p, a.v, sizeof a.v);
}
inline uint8x16_t vdupq_n_u8(std::uint8_t x) {
  return neon_emulation::dup<uint8x16_t>(x);
}
inline int8x16_t vdupq_n_s8(std::int8_t x) {
  return neon_emulation::dup<int8x16_t>(x);
}
inline int32x4_t vdupq_n_s32(std::int32_t x) {
  return neon_emulation::dup<int32x4_t>(x);
}
inline uint64x2_t vdupq_n_u64(std::uint64_t x) {
  return neon_emulation::dup<uint64x2_t>(x);
}
inline float32x4_t vdupq_n_f32(float x) {
  return neon_emulation::dup<float32x4_t>(x);
}
inline uint8x8_t vdup_n_u8(std::uint8_t x) {
  return neon_emulation::dup<uint8x8_t>(x);
}
inline uint16x4_t vdup_n_u16(std::uint16_t x) {
  return neon_emulation::dup<uint16x4_t>(x);
}
inline int8x16_t vreinterpretq_s8_u8(uint8x16_t a) {
  return neon_emulation::bit_cast<int8x16_t>(a);
}
inline uint8x16_t vreinterpretq_u8_u64(uint64x2_t a) {
  return neon_emulation::bit_cast<uint8x16_t>(a);
}
inline float32x4_t vreinterpretq_f32_u32(uint32x4_t a) {
  return neon_emulation::bit_cast<float32x4_t>(a);
}
inline float16x4_t vreinterpret_f16_u16(uint16x4_t a) {
  return neon_emulation::bit_cast<float16x4_t>(a);
}
inline uint8x16_t vcombine_u8(uint8x8_t lo, uint8x8_t hi) {
  uint8x16_t r;
  for (int i = 0; i < 8; ++i) {
    r.v[i] = lo.v[i];
    r.v[i + 8] = hi.v[i];
  }
  return r;
}
inline int16x8_t vcombine_s16(int16x4_t lo, int16x4_t hi) {
  int16x8_t r;
  for (int i = 0; i < 4; ++i) {
    r.v[i] = lo.v[i];
    r.v[i + 4] = hi.v[i];
  }
  return r;
}
inline float vgetq_lane_f32(float32x4_t a, int lane) {
  return a.v[lane];
}

// bytes
inline uint8x16_t vandq_u8(uint8x16_t a, uint8x16_t b) {
  for (int i = 0; i < 16; ++i)
    a.v[i] &= b.v[i];
  return a;
}
inline uint8x16_t vorrq_u8(uint8x16_t a, uint8x16_t b) {
  for (int i = 0; i < 16; ++i)
    a.v[i] |= b.v[i];
  return a;
}
inline uint8x16_t vbicq_u8(uint8x16_t a, uint8x16_t b) {  // a & ~b
  for (int i = 0; i < 16; ++i)
    a.v[i] = static_cast<std::uint8_t>(a.v[i] & ~b.v[i]);
  return a;
}
inline uint8x16_t vsubq_u8(uint8x16_t a, uint8x16_t b) {  // modulo 256
  for (int i = 0; i < 16; ++i)
    a.v[i] = static_cast<std::uint8_t>(a.v[i] - b.v[i]);
  return a;
}
inline uint8x16_t vtstq_u8(uint8x16_t a, uint8x16_t b) {  // all ones where a & b != 0
  for (int i = 0; i < 16; ++i)
    a.v[i] = (a.v[i] & b.v[i]) ? 0xff : 0;
  return a;
}
// TBL with one table register: lane i is t[idx[i]], or 0 where idx[i] >= 16.
inline int8x16_t vqtbl1q_s8(int8x16_t t, uint8x16_t idx) {
  int8x16_t r;
  for (int i = 0; i < 16; ++i)
    r.v[i] = idx.v[i] < 16 ? t.v[idx.v[i]] : std::int8_t{0};
  return r;
}
inline uint8x16_t vshrq_n_u8(uint8x16_t a, int n) {  // logical, n in 1..8
  for (int i = 0; i < 16; ++i)
    a.v[i] = static_cast<std::uint8_t>(n >= 8 ? 0 : a.v[i] >> n);
  return a;
}
// USHL: each lane shifted by the signed low byte of b: left for b >= 0, logical right for b < 0.
inline uint8x16_t vshlq_u8(uint8x16_t a, int8x16_t b) {
  for (int i = 0; i < 16; ++i) {
    const int s = b.v[i];
    a.v[i] = static_cast<std::uint8_t>(s >= 8 || s <= -8 ? 0 : s >= 0 ? a.v[i] << s : a.v[i] >> -s);
  }
  return a;
}

// integers
inline int32x4_t vdotq_s32(int32x4_t acc, int8x16_t a, int8x16_t b) {
  for (int i = 0; i < 4; ++i) {
    for (int j = 0; j < 4; ++j)
      acc.v[i] += a.v[4 * i + j] * b.v[4 * i + j];
  }
  return acc;
}
inline int32x4_t vmulq_n_s32(int32x4_t a, std::int32_t n) {
  for (auto& e : a.v)
    e *= n;
  return a;
}
inline std::int32_t vaddvq_s32(int32x4_t a) {
  return a.v[0] + a.v[1] + a.v[2] + a.v[3];
}
inline int16x4_t vqmovn_s32(int32x4_t a) {
  int16x4_t r;
  for (int i = 0; i < 4; ++i)
    r.v[i] = static_cast<std::int16_t>(a.v[i] > 32767 ? 32767 : a.v[i] < -32768 ? -32768 : a.v[i]);
  return r;
}
inline int8x8_t vqmovn_s16(int16x8_t a) {
  int8x8_t r;
  for (int i = 0; i < 8; ++i)
    r.v[i] = static_cast<std::int8_t>(a.v[i] > 127 ? 127 : a.v[i] < -128 ? -128 : a.v[i]);
  return r;
}
inline uint32x4_t vshll_n_u16(uint16x4_t a, int n) {
  uint32x4_t r;
  for (int i = 0; i < 4; ++i)
    r.v[i] = static_cast<std::uint32_t>(a.v[i]) << n;
  return r;
}

// floats (FMLA and FMLS are fused: one rounding)
inline float32x4_t vcvtq_f32_s32(int32x4_t a) {
  float32x4_t r;
  for (int i = 0; i < 4; ++i)
    r.v[i] = static_cast<float>(a.v[i]);
  return r;
}
inline int32x4_t vcvtnq_s32_f32(float32x4_t a) {  // to nearest, ties to even (default rounding mode)
  int32x4_t r;
  for (int i = 0; i < 4; ++i)
    r.v[i] = static_cast<std::int32_t>(std::nearbyint(a.v[i]));
  return r;
}
inline float32x4_t vcvt_f32_f16(float16x4_t a) {
  float32x4_t r;
  for (int i = 0; i < 4; ++i)
    r.v[i] = halyard::f16_to_f32(a.v[i]);
  return r;
}
inline float32x4_t vaddq_f32(float32x4_t a, float32x4_t b) {
  for (int i = 0; i < 4; ++i)
    a.v[i] += b.v[i];
  return a;
}
inline float32x4_t vmulq_n_f32(float32x4_t a, float n) {
  for (auto& e : a.v)
    e *= n;
  return a;
}
inline float32x4_t vfmaq_f32(float32x4_t a, float32x4_t b, float32x4_t c) {  // a + b c
  for (int i = 0; i < 4; ++i)
    a.v[i] = std::fma(b.v[i], c.v[i], a.v[i]);
  return a;
}
inline float32x4_t vfmaq_n_f32(float32x4_t a, float32x4_t b, float n) {
  for (int i = 0; i < 4; ++i)
    a.v[i] = std::fma(b.v[i], n, a.v[i]);
  return a;
}
inline float32x4_t vfmsq_f32(float32x4_t a, float32x4_t b, float32x4_t c) {  // a - b c
  for (int i = 0; i < 4; ++i)
    a.v[i] = std::fma(-b.v[i], c.v[i], a.v[i]);
  return a;
}
inline float32x4_t vabsq_f32(float32x4_t a) {
  for (auto& e : a.v)
    e = std::fabs(e);
  return a;
}
inline float vmaxvq_f32(float32x4_t a) {
  return std::fmax(std::fmax(a.v[0], a.v[1]), std::fmax(a.v[2], a.v[3]));
}
inline float vaddvq_f32(float32x4_t a) {  // FADDP twice: (a0 + a1) + (a2 + a3)
  return (a.v[0] + a.v[1]) + (a.v[2] + a.v[3]);
}
