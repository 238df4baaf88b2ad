#version 450
// ADD, MUL, SWIGLU and GEGLU: out = a + b, a * b, silu(a) * b or gelu(a) * b (gelu by its tanh
// form), with b broadcast over tokens when it is a single row.
#include "common.glsl"
layout(std430, binding = 0) readonly buffer A { float a[]; };
layout(std430, binding = 1) readonly buffer B { float b[]; };
layout(std430, binding = 2) writeonly buffer Out { float o[]; };
layout(push_constant) uniform PC { uint a_off, b_off, o_off, d, n, op, broadcast; } pc;

void main() {
  const uint i = gl_GlobalInvocationID.x;
  const uint t = gl_WorkGroupID.y;
  if (i >= pc.d || t >= pc.n) return;
  const float av = a[pc.a_off + t * pc.d + i];
  const float bv = b[pc.b_off + (pc.broadcast != 0u ? i : t * pc.d + i)];
  float r;
  if (pc.op == 0u) r = av + bv;
  else if (pc.op == 1u) r = av * bv;
  else if (pc.op == 2u) r = av / (1.0 + exp(-av)) * bv;
  else {
    // tanh's argument is clamped: tanh(+-10) is +-1 in f32, and a large argument must not reach
    // an implementation that forms tanh from exp(2x) (inf / inf is NaN).
    const float u = clamp(0.7978845608028654 * (av + 0.044715 * av * av * av), -10.0, 10.0);
    r = 0.5 * av * (1.0 + tanh(u)) * bv;
  }
  o[pc.o_off + t * pc.d + i] = r;
}
