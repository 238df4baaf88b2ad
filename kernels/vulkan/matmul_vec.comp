#version 450
// MATMUL for few tokens (decode): one workgroup per weight row and group of NT tokens; the
// workgroup walks the row in units of 8 elements, dequantizing on the fly, then reduces.
// out[t * m_total + row_begin + r] = dot(W[r], x[t]) for the rows of this range.
#include "common.glsl"
layout(std430, binding = 0) readonly buffer W { uint w[]; };
layout(std430, binding = 1) readonly buffer X { float x[]; };
layout(std430, binding = 2) writeonly buffer Out { float o[]; };
layout(push_constant) uniform PC {
  uint w_off;  // bytes: where row 0 of this range starts
  uint x_off, o_off, k, rows, n, row_begin, m_total, row_bytes;
} pc;
#define WBUF w
#include "weights.glsl"
#define NT 4u

void main() {
  const uint r = gl_WorkGroupID.x + gl_WorkGroupID.y * 32768u;
  const uint t0 = gl_WorkGroupID.z * NT;
  if (r >= pc.rows) return;  // uniform across the workgroup
  const uint tid = gl_LocalInvocationID.x;
  const uint row = pc.w_off + r * pc.row_bytes;
  const uint nt = min(NT, pc.n - t0);
  float acc[NT];
  [[unroll]] for (uint t = 0; t < NT; ++t) acc[t] = 0.0;
  const uint full = pc.k / 8u;
  for (uint u = tid; u < full; u += WG) {
    float v[8];
    wload8(row, u * 8u, v);
    [[unroll]] for (uint t = 0; t < NT; ++t) {
      if (t < nt) {
        const uint xb = pc.x_off + (t0 + t) * pc.k + u * 8u;
        float s = 0.0;
        [[unroll]] for (uint j = 0; j < 8; ++j) s += v[j] * x[xb + j];
        acc[t] += s;
      }
    }
  }
  for (uint i = full * 8u + tid; i < pc.k; i += WG) {  // a tail shorter than 8 (float dtypes)
    const float v = wload(row, i);
    for (uint t = 0; t < nt; ++t) acc[t] += v * x[pc.x_off + (t0 + t) * pc.k + i];
  }
  [[unroll]] for (uint t = 0; t < NT; ++t) {
    const float s = wg_sum(acc[t]);
    if (tid == 0u && t < nt) o[pc.o_off + (t0 + t) * pc.m_total + pc.row_begin + r] = s;
  }
}
