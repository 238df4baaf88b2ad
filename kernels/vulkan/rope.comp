#version 450
// ROPE: one invocation per pair of a head of a token. Pairs below rope_dims/2 rotate (NORMAL:
// elements 2i, 2i+1; NEOX: i, i + rope_dims/2); the rest of the head is copied. The angle is
// position * freq[i] with freq computed by the host in double precision; with ROPE_F64 the
// angle is reduced modulo 2 pi in double before sin/cos, which keeps 4096-position angles exact
// to float rounding.
#include "common.glsl"
#ifdef ROPE_F64
layout(std430, binding = 3) readonly buffer Freq { double freq[]; };
#else
layout(std430, binding = 3) readonly buffer Freq { float freq[]; };
#endif
layout(std430, binding = 0) readonly buffer X { float x[]; };
layout(std430, binding = 1) readonly buffer Pos { int pos[]; };
layout(std430, binding = 2) writeonly buffer Out { float o[]; };
layout(push_constant) uniform PC { uint x_off, pos_off, o_off, row, hd, dims, neox, n; } pc;

void main() {
  const uint pairs = pc.hd / 2u;
  const uint g = gl_GlobalInvocationID.x;
  const uint t = gl_WorkGroupID.y;
  if (g >= pairs * (pc.row / pc.hd) || t >= pc.n) return;
  const uint h = g / pairs, p = g % pairs;
  const uint base = t * pc.row + h * pc.hd;
  if (p >= pc.dims / 2u) {  // beyond the rotated dims: copy
    const uint e = pc.dims + 2u * (p - pc.dims / 2u);
    o[pc.o_off + base + e] = x[pc.x_off + base + e];
    o[pc.o_off + base + e + 1u] = x[pc.x_off + base + e + 1u];
    return;
  }
  const uint a = pc.neox != 0u ? p : 2u * p;
  const uint b = pc.neox != 0u ? p + pc.dims / 2u : 2u * p + 1u;
#ifdef ROPE_F64
  const double two_pi = 6.283185307179586476925286766559LF;
  double th = double(pos[pc.pos_off + t]) * freq[p];
  th -= floor(th / two_pi) * two_pi;
  const float ang = float(th);
#else
  const float ang = float(pos[pc.pos_off + t]) * freq[p];
#endif
  const float c = cos(ang), s = sin(ang);
  const float x0 = x[pc.x_off + base + a], x1 = x[pc.x_off + base + b];
  o[pc.o_off + base + a] = x0 * c - x1 * s;
  o[pc.o_off + base + b] = x0 * s + x1 * c;
}
