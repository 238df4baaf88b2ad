#version 450
// The first half of ATTENTION: k and v of every token (slot s, position p) go to the paged
// cache's physical row block_table[s][p / block_size] * block_size + p % block_size. Tokens whose
// position, slot or block id is out of range store nothing (attention.comp writes NaN for them).
// With KV_F16 the caches are f16 read as uint words (no 16-bit storage needed): one invocation
// per pair of elements writes one whole word, rounded as hal's f32_to_f16 (kvdim is even, so
// every row starts on a word and no two invocations share one); kc_off, vc_off count words.
#include "common.glsl"
#include "f16.glsl"
layout(std430, binding = 0) readonly buffer K { float k[]; };
layout(std430, binding = 1) readonly buffer V { float v[]; };
#ifdef KV_F16
layout(std430, binding = 2) buffer KC { uint kc[]; };
layout(std430, binding = 3) buffer VC { uint vc[]; };
#else
layout(std430, binding = 2) buffer KC { float kc[]; };
layout(std430, binding = 3) buffer VC { float vc[]; };
#endif
layout(std430, binding = 4) readonly buffer Pos { int pos[]; };
layout(std430, binding = 5) readonly buffer Slot { int slot[]; };
layout(std430, binding = 6) readonly buffer Table { int table[]; };
layout(push_constant) uniform PC {
  uint k_off, v_off, kc_off, vc_off, pos_off, slot_off, table_off, kvdim, block_size, n_blocks, max_blocks, slots, n;
} pc;

void main() {
#ifdef KV_F16
  const uint e = 2u * gl_GlobalInvocationID.x;
#else
  const uint e = gl_GlobalInvocationID.x;
#endif
  const uint t = gl_WorkGroupID.y;
  if (e >= pc.kvdim || t >= pc.n) return;
  const int p = pos[pc.pos_off + t], s = slot[pc.slot_off + t];
  if (p < 0 || uint(p) >= pc.max_blocks * pc.block_size || s < 0 || uint(s) >= pc.slots) return;
  const int block = table[pc.table_off + uint(s) * pc.max_blocks + uint(p) / pc.block_size];
  if (block < 0 || uint(block) >= pc.n_blocks) return;
  const uint dst = (uint(block) * pc.block_size + uint(p) % pc.block_size) * pc.kvdim + e;
#ifdef KV_F16
  const uint src = t * pc.kvdim + e;
  kc[pc.kc_off + dst / 2u] = f32_to_f16_bits(k[pc.k_off + src]) | (f32_to_f16_bits(k[pc.k_off + src + 1u]) << 16);
  vc[pc.vc_off + dst / 2u] = f32_to_f16_bits(v[pc.v_off + src]) | (f32_to_f16_bits(v[pc.v_off + src + 1u]) << 16);
#else
  kc[pc.kc_off + dst] = k[pc.k_off + t * pc.kvdim + e];
  vc[pc.vc_off + dst] = v[pc.v_off + t * pc.kvdim + e];
#endif
}
