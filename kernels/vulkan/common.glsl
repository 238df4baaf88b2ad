// Shared by every Halyard compute shader: the workgroup size (specialization constant 0, chosen
// by the host per pipeline) and workgroup-wide reductions. With USE_SUBGROUP the reductions use
// subgroup arithmetic; without it, a shared-memory tree that runs on any Vulkan 1.1 device
// (the workgroup size must then be a power of two).
#extension GL_EXT_control_flow_attributes : enable
#ifdef USE_SUBGROUP
#extension GL_KHR_shader_subgroup_basic : enable
#extension GL_KHR_shader_subgroup_arithmetic : enable
#endif

layout(constant_id = 0) const uint WG = 128;
layout(local_size_x_id = 0) in;

shared float red_buf[WG];

float wg_sum(float v) {
#ifdef USE_SUBGROUP
  v = subgroupAdd(v);
  if (subgroupElect()) red_buf[gl_SubgroupID] = v;
  barrier();
  float r = 0.0;
  for (uint i = 0; i < gl_NumSubgroups; ++i) r += red_buf[i];
  barrier();
  return r;
#else
  const uint tid = gl_LocalInvocationID.x;
  red_buf[tid] = v;
  barrier();
  for (uint s = WG / 2; s > 0; s >>= 1) {
    if (tid < s) red_buf[tid] += red_buf[tid + s];
    barrier();
  }
  const float r = red_buf[0];
  barrier();
  return r;
#endif
}

float wg_max(float v) {
#ifdef USE_SUBGROUP
  v = subgroupMax(v);
  if (subgroupElect()) red_buf[gl_SubgroupID] = v;
  barrier();
  float r = red_buf[0];
  for (uint i = 1; i < gl_NumSubgroups; ++i) r = max(r, red_buf[i]);
  barrier();
  return r;
#else
  const uint tid = gl_LocalInvocationID.x;
  red_buf[tid] = v;
  barrier();
  for (uint s = WG / 2; s > 0; s >>= 1) {
    if (tid < s) red_buf[tid] = max(red_buf[tid], red_buf[tid + s]);
    barrier();
  }
  const float r = red_buf[0];
  barrier();
  return r;
#endif
}

// A quiet NaN: what an op writes where its input is out of range (never silent garbage).
float halyard_nan() { return uintBitsToFloat(0x7fc00000u); }
