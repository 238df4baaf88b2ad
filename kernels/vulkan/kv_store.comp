#version 450
// The first half of ATTENTION: k and v of every token (slot s, position p) go to the paged
// cache's physical row block_table[s][p / block_size] * block_size + p % block_size. Tokens whose
// position, slot or block id is out of range store nothing (attention.comp writes NaN for them).
#include "common.glsl"
layout(std430, binding = 0) readonly buffer K { float k[]; };
layout(std430, binding = 1) readonly buffer V { float v[]; };
layout(std430, binding = 2) buffer KC { float kc[]; };
layout(std430, binding = 3) buffer VC { float vc[]; };
layout(std430, binding = 4) readonly buffer Pos { int pos[]; };
layout(std430, binding = 5) readonly buffer Slot { int slot[]; };
layout(std430, binding = 6) readonly buffer Table { int table[]; };
layout(push_constant) uniform PC {
  uint k_off, v_off, kc_off, vc_off, pos_off, slot_off, table_off, kvdim, block_size, n_blocks, max_blocks, slots, n;
} pc;

void main() {
  const uint e = gl_GlobalInvocationID.x;
  const uint t = gl_WorkGroupID.y;
  if (e >= pc.kvdim || t >= pc.n) return;
  const int p = pos[pc.pos_off + t], s = slot[pc.slot_off + t];
  if (p < 0 || uint(p) >= pc.max_blocks * pc.block_size || s < 0 || uint(s) >= pc.slots) return;
  const int block = table[pc.table_off + uint(s) * pc.max_blocks + uint(p) / pc.block_size];
  if (block < 0 || uint(block) >= pc.n_blocks) return;
  const uint dst = (uint(block) * pc.block_size + uint(p) % pc.block_size) * pc.kvdim + e;
  kc[pc.kc_off + dst] = k[pc.k_off + t * pc.kvdim + e];
  vc[pc.vc_off + dst] = v[pc.v_off + t * pc.kvdim + e];
}
