#version 450
// COPY from f32 to f16, bf16, q8_0, q4_0 or q4_1, bit-exact with the reference encoders
// (hal/src/dtype.cpp): one invocation per 32-bit word of the output, since 18-, 20- and 34-byte
// blocks share words. Every byte of a block recomputes that block's scale: this op is for
// conversions, not for a hot path.
#include "common.glsl"
#include "f16.glsl"
layout(std430, binding = 0) readonly buffer In { float x[]; };
layout(std430, binding = 1) buffer Out { uint o[]; };
layout(push_constant) uniform PC { uint in_off, o_off, bytes; } pc;

uint f32_to_bf16_bits(float value) {
  const uint v = floatBitsToUint(value);
  if ((v & 0x7fffffffu) > 0x7f800000u) return (v >> 16) | 0x40u;
  return (v + 0x7fffu + ((v >> 16) & 1u)) >> 16;
}

int round_half_away(float v) {  // std::lround
  const float a = abs(v);
  const float f = floor(a);
  const int q = int(f) + (a - f >= 0.5 ? 1 : 0);
  return v < 0.0 ? -q : q;
}

float xin(uint e) { return x[pc.in_off + e]; }

#if defined(DT_F16) || defined(DT_BF16)
uint out_byte(uint b) {
#ifdef DT_F16
  const uint h = f32_to_f16_bits(xin(b / 2u));
#else
  const uint h = f32_to_bf16_bits(xin(b / 2u));
#endif
  return (b & 1u) != 0u ? (h >> 8) : (h & 0xffu);
}
#elif defined(DT_Q8_0)
uint out_byte(uint b) {
  const uint blk = b / 34u, off = b % 34u, e0 = blk * 32u;
  float amax = 0.0;
  for (uint j = 0; j < 32u; ++j) amax = max(amax, abs(xin(e0 + j)));
  precise const float d = amax / 127.0;
  precise const float id = d != 0.0 ? 1.0 / d : 0.0;
  if (off < 2u) return (f32_to_f16_bits(d) >> (8u * off)) & 0xffu;
  precise const float scaled = xin(e0 + off - 2u) * id;
  return uint(round_half_away(scaled)) & 0xffu;
}
#elif defined(DT_Q4_0)
uint out_byte(uint b) {
  const uint blk = b / 18u, off = b % 18u, e0 = blk * 32u;
  float amax = 0.0, mx = 0.0;
  for (uint j = 0; j < 32u; ++j) {
    const float v = xin(e0 + j);
    if (abs(v) > amax) {
      amax = abs(v);
      mx = v;
    }
  }
  precise const float d = mx / -8.0;
  precise const float id = d != 0.0 ? 1.0 / d : 0.0;
  if (off < 2u) return (f32_to_f16_bits(d) >> (8u * off)) & 0xffu;
  const uint j = off - 2u;
  precise const float s0 = xin(e0 + j) * id + 8.5;
  precise const float s1 = xin(e0 + j + 16u) * id + 8.5;
  const uint q0 = uint(min(15, int(s0))), q1 = uint(min(15, int(s1)));
  return q0 | (q1 << 4);
}
#elif defined(DT_Q4_1)
uint out_byte(uint b) {
  const uint blk = b / 20u, off = b % 20u, e0 = blk * 32u;
  float lo = xin(e0), hi = xin(e0);
  for (uint j = 1; j < 32u; ++j) {
    lo = min(lo, xin(e0 + j));
    hi = max(hi, xin(e0 + j));
  }
  precise const float d = (hi - lo) / 15.0;
  precise const float id = d != 0.0 ? 1.0 / d : 0.0;
  if (off < 2u) return (f32_to_f16_bits(d) >> (8u * off)) & 0xffu;
  if (off < 4u) return (f32_to_f16_bits(lo) >> (8u * (off - 2u))) & 0xffu;
  const uint j = off - 4u;
  precise const float s0 = (xin(e0 + j) - lo) * id + 0.5;
  precise const float s1 = (xin(e0 + j + 16u) - lo) * id + 0.5;
  const uint q0 = uint(min(15, int(s0))), q1 = uint(min(15, int(s1)));
  return q0 | (q1 << 4);
}
#else
#error "define one of DT_F16, DT_BF16, DT_Q8_0, DT_Q4_0, DT_Q4_1"
#endif

void main() {
  const uint wi = gl_GlobalInvocationID.x;
  if (wi * 4u >= pc.bytes) return;
  uint word = 0u;
  const uint old = (wi * 4u + 4u > pc.bytes) ? o[pc.o_off + wi] : 0u;  // a last, partial word keeps its tail
  for (uint b = 0; b < 4u; ++b) {
    const uint gb = wi * 4u + b;
    word |= (gb < pc.bytes ? out_byte(gb) : ((old >> (8u * b)) & 0xffu)) << (8u * b);
  }
  o[pc.o_off + wi] = word;
}
