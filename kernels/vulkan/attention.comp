#version 450
// The second half of ATTENTION: one workgroup per (query head, token) walks the token's sequence
// up to its position in chunks of WG keys, each logical position read through the block table
// (physical row block_table[slot][j / block_size] * block_size + j % block_size of the pool):
// each invocation scores one key, the chunk's maximum and sum update a running softmax, and each
// invocation accumulates up to two dims of the output (head_dim <= 2 * WG). The head size is
// specialization constant 1. A token whose position, slot or any block id it reads is out of
// range gets NaN. With a sliding window w > 0 the walk starts at position p - w + 1: keys outside
// the window are never read (not read and masked), so a local layer's cost is bounded by w.
// With KV_F16 the caches are f16, read as uint words (element i is half i & 1 of
// word i / 2; no 16-bit storage needed) and widened exactly; kc_off, vc_off count words.
#include "common.glsl"
layout(std430, binding = 0) readonly buffer Q { float q[]; };
#ifdef KV_F16
layout(std430, binding = 1) readonly buffer KC { uint kc[]; };
layout(std430, binding = 2) readonly buffer VC { uint vc[]; };
#else
layout(std430, binding = 1) readonly buffer KC { float kc[]; };
layout(std430, binding = 2) readonly buffer VC { float vc[]; };
#endif
layout(std430, binding = 3) readonly buffer Pos { int pos[]; };
layout(std430, binding = 4) readonly buffer Slot { int slot[]; };
layout(std430, binding = 5) readonly buffer Table { int table[]; };
layout(std430, binding = 6) writeonly buffer Out { float o[]; };
layout(push_constant) uniform PC {
  uint q_off, kc_off, vc_off, pos_off, slot_off, table_off, o_off, hd, n_heads, n_kv, block_size, n_blocks,
      max_blocks, slots;
  float scale;
  uint window;  // 0: attend to the whole sequence
} pc;
// Element i of a cache (from the start of its binding's range), as f32.
#ifdef KV_F16
float kload(uint i) { return unpackHalf2x16(kc[pc.kc_off + i / 2u])[i & 1u]; }
float vload(uint i) { return unpackHalf2x16(vc[pc.vc_off + i / 2u])[i & 1u]; }
#else
float kload(uint i) { return kc[pc.kc_off + i]; }
float vload(uint i) { return vc[pc.vc_off + i]; }
#endif
layout(constant_id = 1) const uint HEAD_DIM = 256;  // the model's head_dim (at most 2 * WG)
shared float qs[HEAD_DIM];
shared float ps[WG];
shared uint rows[WG];  // the physical cache row of each key of the chunk

void main() {
  const uint h = gl_WorkGroupID.x, t = gl_WorkGroupID.y, tid = gl_LocalInvocationID.x;
  const uint qdim = pc.hd * pc.n_heads, kvdim = pc.hd * pc.n_kv;
  const uint obase = pc.o_off + t * qdim + h * pc.hd;
  const int p = pos[pc.pos_off + t], s = slot[pc.slot_off + t];
  if (p < 0 || uint(p) >= pc.max_blocks * pc.block_size || s < 0 || uint(s) >= pc.slots) {
    for (uint d = tid; d < pc.hd; d += WG) o[obase + d] = halyard_nan();
    return;
  }
  const uint tbase = pc.table_off + uint(s) * pc.max_blocks;
  float bad = 0.0;
  for (uint b = tid; b <= uint(p) / pc.block_size; b += WG) {
    const int id = table[tbase + b];
    if (id < 0 || uint(id) >= pc.n_blocks) bad = 1.0;
  }
  if (wg_max(bad) > 0.0) {
    for (uint d = tid; d < pc.hd; d += WG) o[obase + d] = halyard_nan();
    return;
  }
  for (uint d = tid; d < pc.hd; d += WG) qs[d] = q[pc.q_off + t * qdim + h * pc.hd + d];
  barrier();
  const uint kvh = h / (pc.n_heads / pc.n_kv);
  const uint len = uint(p) + 1u;
  const uint first = pc.window != 0u && len > pc.window ? len - pc.window : 0u;
  float m = -3.0e38, l = 0.0;
  float acc0 = 0.0, acc1 = 0.0;
  for (uint c0 = first; c0 < len; c0 += WG) {
    const uint j = c0 + tid;
    float sc = -3.0e38;
    if (j < len) {
      const uint row = uint(table[tbase + j / pc.block_size]) * pc.block_size + j % pc.block_size;
      rows[tid] = row;
      const uint kb = row * kvdim + kvh * pc.hd;
      float dot = 0.0;
      for (uint i = 0; i < pc.hd; ++i) dot += qs[i] * kload(kb + i);
      sc = dot * pc.scale;
    }
    const float mnew = max(m, wg_max(sc));
    const float pj = j < len ? exp(sc - mnew) : 0.0;
    const float alpha = exp(m - mnew);
    l = l * alpha + wg_sum(pj);
    ps[tid] = pj;
    barrier();
    const uint cnt = min(WG, len - c0);
    const uint vb = kvh * pc.hd;
    if (tid < pc.hd) {
      float a = acc0 * alpha;
      for (uint jj = 0; jj < cnt; ++jj) a += ps[jj] * vload(vb + rows[jj] * kvdim + tid);
      acc0 = a;
    }
    if (tid + WG < pc.hd) {
      float a = acc1 * alpha;
      for (uint jj = 0; jj < cnt; ++jj) a += ps[jj] * vload(vb + rows[jj] * kvdim + tid + WG);
      acc1 = a;
    }
    barrier();
    m = mnew;
  }
  if (tid < pc.hd) o[obase + tid] = acc0 / l;
  if (tid + WG < pc.hd) o[obase + tid + WG] = acc1 / l;
}
