#version 450
// MATMUL for many tokens (prefill): each workgroup of 256 computes a 64-row x 64-token tile,
// staging 32-deep slices of dequantized weights and of activations in shared memory; each
// invocation accumulates a 4 x 4 block. Push constants as in matmul_vec.comp.
// USE_FP16 (devices with shaderFloat16): the tiles are half precision and so are the products,
// which halves shared-memory traffic and doubles the arithmetic rate where fp16 is faster;
// sums stay in f32. Weights and activations beyond the f16 range (65504) would overflow.
#ifdef USE_FP16
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#define TILE_T float16_t
#else
#define TILE_T float
#endif
#include "common.glsl"
layout(std430, binding = 0) readonly buffer W { uint w[]; };
layout(std430, binding = 1) readonly buffer X { float x[]; };
layout(std430, binding = 2) writeonly buffer Out { float o[]; };
layout(push_constant) uniform PC {
  uint w_off, x_off, o_off, k, rows, n, row_begin, m_total, row_bytes;
} pc;
#define WBUF w
#include "weights.glsl"
#define TM 64u
#define TN 64u
#define TK 32u

shared TILE_T ws[TK][TM + 1];
shared TILE_T xs[TK][TN + 1];

void main() {
  const uint tid = gl_LocalInvocationID.x;  // WG must be 256
  const uint rb = gl_WorkGroupID.x * TM;
  const uint tb = gl_WorkGroupID.y * TN;
  const uint lr = tid / 4u, kq = (tid % 4u) * 8u;
  const uint tx = tid % 16u, ty = tid / 16u;
  float acc[4][4];
  [[unroll]] for (uint i = 0; i < 4; ++i) [[unroll]] for (uint j = 0; j < 4; ++j) acc[i][j] = 0.0;
  for (uint k0 = 0; k0 < pc.k; k0 += TK) {
    {
      const uint r = rb + lr;
      const uint row = pc.w_off + r * pc.row_bytes;
      float v[8];
      if (r < pc.rows && k0 + kq + 8u <= pc.k) {
        wload8(row, k0 + kq, v);
      } else {
        [[unroll]] for (uint j = 0; j < 8; ++j) v[j] = (r < pc.rows && k0 + kq + j < pc.k) ? wload(row, k0 + kq + j) : 0.0;
      }
      [[unroll]] for (uint j = 0; j < 8; ++j) ws[kq + j][lr] = TILE_T(v[j]);
      const uint t = tb + lr;
      [[unroll]] for (uint j = 0; j < 8; ++j) {
        const uint kk = k0 + kq + j;
        xs[kq + j][lr] = TILE_T((t < pc.n && kk < pc.k) ? x[pc.x_off + t * pc.k + kk] : 0.0);
      }
    }
    barrier();
    [[unroll]] for (uint kk = 0; kk < TK; ++kk) {
      TILE_T a[4], b[4];
      [[unroll]] for (uint i = 0; i < 4; ++i) a[i] = ws[kk][tx + 16u * i];
      [[unroll]] for (uint j = 0; j < 4; ++j) b[j] = xs[kk][ty + 16u * j];
      [[unroll]] for (uint i = 0; i < 4; ++i) [[unroll]] for (uint j = 0; j < 4; ++j) acc[i][j] += float(a[i] * b[j]);
    }
    barrier();
  }
  [[unroll]] for (uint i = 0; i < 4; ++i) {
    const uint r = rb + tx + 16u * i;
    [[unroll]] for (uint j = 0; j < 4; ++j) {
      const uint t = tb + ty + 16u * j;
      if (r < pc.rows && t < pc.n) o[pc.o_off + t * pc.m_total + pc.row_begin + r] = acc[i][j];
    }
  }
}
