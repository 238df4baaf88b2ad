#version 450
// EMBED for one row range of the table: out[:, t] = table[ids[t]] * scale for ids in
// [row_begin, row_end) (scale 1 but for Gemma's sqrt(d); one f32 product, rounded as the
// reference rounds it).
// Ids outside [0, rows_total) give NaN (written by the dispatch that starts at row 0).
#include "common.glsl"
layout(std430, binding = 0) readonly buffer Table { uint table[]; };
layout(std430, binding = 1) readonly buffer Ids { int ids[]; };
layout(std430, binding = 2) writeonly buffer Out { float o[]; };
layout(push_constant) uniform PC {
  uint table_off;  // bytes: where row row_begin starts
  uint ids_off, o_off, d, n, row_bytes, row_begin, row_end, rows_total;
  float scale;
} pc;
#define WBUF table
#include "weights.glsl"

void main() {
  const uint i = gl_GlobalInvocationID.x;
  const uint t = gl_WorkGroupID.y;
  if (i >= pc.d || t >= pc.n) return;
  const int id = ids[pc.ids_off + t];
  if (id < 0 || uint(id) >= pc.rows_total) {
    if (pc.row_begin == 0u) o[pc.o_off + t * pc.d + i] = halyard_nan();
    return;
  }
  if (uint(id) < pc.row_begin || uint(id) >= pc.row_end) return;
  o[pc.o_off + t * pc.d + i] = wload(pc.table_off + (uint(id) - pc.row_begin) * pc.row_bytes, i) * pc.scale;
}
