#version 450
// SOFTMAX over the features of each token: one workgroup per token.
#include "common.glsl"
layout(std430, binding = 0) readonly buffer X { float x[]; };
layout(std430, binding = 1) writeonly buffer Out { float o[]; };
layout(push_constant) uniform PC { uint x_off, o_off, d; } pc;

void main() {
  const uint base = pc.x_off + gl_WorkGroupID.x * pc.d;
  float m = -3.0e38;
  for (uint i = gl_LocalInvocationID.x; i < pc.d; i += WG) m = max(m, x[base + i]);
  m = wg_max(m);
  float s = 0.0;
  for (uint i = gl_LocalInvocationID.x; i < pc.d; i += WG) s += exp(x[base + i] - m);
  s = wg_sum(s);
  for (uint i = gl_LocalInvocationID.x; i < pc.d; i += WG) o[pc.o_off + gl_WorkGroupID.x * pc.d + i] = exp(x[base + i] - m) / s;
}
