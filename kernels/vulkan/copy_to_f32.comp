#version 450
// COPY from a weight dtype to f32: one invocation per element, bit-exact with the reference.
#include "common.glsl"
layout(std430, binding = 0) readonly buffer In { uint src[]; };
layout(std430, binding = 1) writeonly buffer Out { float o[]; };
layout(push_constant) uniform PC { uint in_off, o_off, d, rows, row_bytes; } pc;
#define WBUF src
#include "weights.glsl"

void main() {
  const uint i = gl_GlobalInvocationID.x;
  const uint r = gl_WorkGroupID.y;
  if (i >= pc.d || r >= pc.rows) return;
  o[pc.o_off + r * pc.d + i] = wload(pc.in_off + r * pc.row_bytes, i);
}
