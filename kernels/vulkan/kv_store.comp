#version 450
// The first half of ATTENTION: k and v of every token go to cache[slot][position]. Tokens
// whose position or slot is out of range store nothing (attention.comp writes NaN for them).
#include "common.glsl"
layout(std430, binding = 0) readonly buffer K { float k[]; };
layout(std430, binding = 1) readonly buffer V { float v[]; };
layout(std430, binding = 2) buffer KC { float kc[]; };
layout(std430, binding = 3) buffer VC { float vc[]; };
layout(std430, binding = 4) readonly buffer Pos { int pos[]; };
layout(std430, binding = 5) readonly buffer Slot { int slot[]; };
layout(push_constant) uniform PC { uint k_off, v_off, kc_off, vc_off, pos_off, slot_off, kvdim, ctx, slots, n; } pc;

void main() {
  const uint e = gl_GlobalInvocationID.x;
  const uint t = gl_WorkGroupID.y;
  if (e >= pc.kvdim || t >= pc.n) return;
  const int p = pos[pc.pos_off + t], s = slot[pc.slot_off + t];
  if (p < 0 || uint(p) >= pc.ctx || s < 0 || uint(s) >= pc.slots) return;
  const uint dst = (uint(s) * pc.ctx + uint(p)) * pc.kvdim + e;
  kc[pc.kc_off + dst] = k[pc.k_off + t * pc.kvdim + e];
  vc[pc.vc_off + dst] = v[pc.v_off + t * pc.kvdim + e];
}
