#version 450
// ARGMAX per token (the first maximum wins): one workgroup per token, a shared-memory
// reduction of (value, index) pairs. WG must be a power of two.
#include "common.glsl"
layout(std430, binding = 0) readonly buffer X { float x[]; };
layout(std430, binding = 1) writeonly buffer Out { int o[]; };
layout(push_constant) uniform PC { uint x_off, o_off, d; } pc;
shared uint best_i[WG];

void main() {
  const uint tid = gl_LocalInvocationID.x;
  const uint base = pc.x_off + gl_WorkGroupID.x * pc.d;
  uint bi = 0xffffffffu;
  float bv = 0.0;
  for (uint i = tid; i < pc.d; i += WG) {
    if (!isnan(x[base + i]) && (bi == 0xffffffffu || x[base + i] > bv)) {  // NaN wins only at index 0, as in the reference
      bv = x[base + i];
      bi = i;
    }
  }
  red_buf[tid] = bv;
  best_i[tid] = bi;
  barrier();
  for (uint s = WG / 2; s > 0; s >>= 1) {
    if (tid < s) {
      const uint oi = best_i[tid + s];
      const float ov = red_buf[tid + s];
      const uint mi = best_i[tid];
      if (oi != 0xffffffffu && (mi == 0xffffffffu || ov > red_buf[tid] || (ov == red_buf[tid] && oi < mi))) {
        red_buf[tid] = ov;
        best_i[tid] = oi;
      }
    }
    barrier();
  }
  if (tid == 0u) o[pc.o_off + gl_WorkGroupID.x] = (isnan(x[base]) || best_i[0] == 0xffffffffu) ? 0 : int(best_i[0]);
}
