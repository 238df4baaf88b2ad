#version 450
// ROPE: one invocation per pair of a head of a token. Pairs below rope_dims/2 rotate (NORMAL:
// elements 2i, 2i+1; NEOX: i, i + rope_dims/2); the rest of the head is copied. The angle is
// position * freq[i] with freq computed by the host in double precision; with ROPE_F64 the
// angle is reduced modulo 2 pi in double before sin/cos, which keeps 4096-position angles exact
// to float rounding. With has_factors (ROPE's third input, Llama 3.1's rope_freqs) pair i's angle
// is divided by factors[i], a graph input read here because it is data, not a parameter; without
// it binding 4 is the device's dummy buffer and is never read.
#include "common.glsl"
#ifdef ROPE_F64
layout(std430, binding = 3) readonly buffer Freq { double freq[]; };
#else
layout(std430, binding = 3) readonly buffer Freq { float freq[]; };
#endif
layout(std430, binding = 0) readonly buffer X { float x[]; };
layout(std430, binding = 1) readonly buffer Pos { int pos[]; };
layout(std430, binding = 2) writeonly buffer Out { float o[]; };
layout(std430, binding = 4) readonly buffer Factors { float factors[]; };
// f_off is 0 when there are no factors (the host pushes it in the binding's place).
layout(push_constant) uniform PC { uint x_off, pos_off, o_off, f_off, row, hd, dims, neox, n, has_factors; } pc;

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
  if (pc.has_factors != 0u) th /= double(factors[pc.f_off + p]);
  th -= floor(th / two_pi) * two_pi;
  const float ang = float(th);
#else
  float ang = float(pos[pc.pos_off + t]) * freq[p];
  if (pc.has_factors != 0u) ang /= factors[pc.f_off + p];
#endif
  const float c = cos(ang), s = sin(ang);
  const float x0 = x[pc.x_off + base + a], x1 = x[pc.x_off + base + b];
  o[pc.o_off + base + a] = x0 * c - x1 * s;
  o[pc.o_off + base + b] = x0 * s + x1 * c;
}
