#version 450
// MATMUL for few tokens (decode): one workgroup per NR weight rows and group of NT tokens; the
// workgroup walks the rows in units of 8 elements, dequantizing on the fly, then reduces.
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
#define NR 4u  // rows per workgroup
shared float partial[NR * NT][WG];

void main() {
  const uint r0 = (gl_WorkGroupID.x + gl_WorkGroupID.y * 32768u) * NR;
  const uint t0 = gl_WorkGroupID.z * NT;
  if (r0 >= pc.rows) return;  // uniform across the workgroup
  const uint tid = gl_LocalInvocationID.x;
  const uint nt = min(NT, pc.n - t0);
  const uint nr = min(NR, pc.rows - r0);
  float acc[NR][NT];
  [[unroll]] for (uint r = 0; r < NR; ++r) [[unroll]] for (uint t = 0; t < NT; ++t) acc[r][t] = 0.0;
  const uint full = pc.k / 8u;
  for (uint u = tid; u < full; u += WG) {
    float xv[NT][8];
    [[unroll]] for (uint t = 0; t < NT; ++t) {
      const uint xb = pc.x_off + (t0 + min(t, nt - 1u)) * pc.k + u * 8u;
      [[unroll]] for (uint j = 0; j < 8; ++j) xv[t][j] = x[xb + j];
    }
    [[unroll]] for (uint r = 0; r < NR; ++r) {
      if (r < nr) {
        float v[8];
        wload8(pc.w_off + (r0 + r) * pc.row_bytes, u * 8u, v);
        [[unroll]] for (uint t = 0; t < NT; ++t) {
          if (t < nt) {
            float s = 0.0;
            [[unroll]] for (uint j = 0; j < 8; ++j) s += v[j] * xv[t][j];
            acc[r][t] += s;
          }
        }
      }
    }
  }
  for (uint i = full * 8u + tid; i < pc.k; i += WG) {  // a tail shorter than 8 (float dtypes)
    for (uint r = 0; r < nr; ++r) {
      const float v = wload(pc.w_off + (r0 + r) * pc.row_bytes, i);
      for (uint t = 0; t < nt; ++t) acc[r][t] += v * x[pc.x_off + (t0 + t) * pc.k + i];
    }
  }
  // All NR x NT sums at once, with a single barrier: per subgroup (or per invocation without
  // subgroup arithmetic) partial sums go to shared memory, then one invocation per output adds them.
#ifdef USE_SUBGROUP
  const uint parts = gl_NumSubgroups;
  [[unroll]] for (uint r = 0; r < NR; ++r) [[unroll]] for (uint t = 0; t < NT; ++t) {
    const float s = subgroupAdd(acc[r][t]);
    if (subgroupElect()) partial[r * NT + t][gl_SubgroupID] = s;
  }
#else
  const uint parts = WG;
  [[unroll]] for (uint r = 0; r < NR; ++r) [[unroll]] for (uint t = 0; t < NT; ++t) partial[r * NT + t][tid] = acc[r][t];
#endif
  barrier();
  if (tid < NR * NT) {
    const uint r = tid / NT, t = tid % NT;
    if (r < nr && t < nt) {
      float s = 0.0;
      for (uint i = 0; i < parts; ++i) s += partial[tid][i];
      o[pc.o_off + (t0 + t) * pc.m_total + pc.row_begin + r0 + r] = s;
    }
  }
}
