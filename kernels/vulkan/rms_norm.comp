#version 450
// RMS_NORM: one workgroup per run of d elements normalized together: a token's row, or with a
// norm group one head of it (the host passes d = norm_group and counts every head as a row; the
// weight is then [norm_group]). Rows beyond 65535 workgroups continue in gl_WorkGroupID.y.
#include "common.glsl"
layout(std430, binding = 0) readonly buffer X { float x[]; };
layout(std430, binding = 1) readonly buffer Wt { float w[]; };
layout(std430, binding = 2) writeonly buffer Out { float o[]; };
layout(push_constant) uniform PC { uint x_off, w_off, o_off, d; float eps; uint rows; } pc;

void main() {
  const uint t = gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x;
  if (t >= pc.rows) return;  // uniform across the workgroup, before any barrier
  const uint base = pc.x_off + t * pc.d;
  float s = 0.0;
  for (uint i = gl_LocalInvocationID.x; i < pc.d; i += WG) s += x[base + i] * x[base + i];
  s = wg_sum(s);
  const float scale = 1.0 / sqrt(s / float(pc.d) + pc.eps);
  for (uint i = gl_LocalInvocationID.x; i < pc.d; i += WG) o[pc.o_off + t * pc.d + i] = x[base + i] * scale * w[pc.w_off + i];
}
