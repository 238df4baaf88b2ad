// The GPU kernels of every op in the catalogue, written once for CUDA and HIP (gpu.h). They
// follow the Vulkan kernels (kernels/vulkan) algorithm for algorithm: weights are read in their
// GGUF block layout and dequantized on the fly, element by element, by weight_decode.h (every
// weight dtype, blocks of 32 or super-blocks of 256; tested on the host against the reference);
// decode uses a mat-vec kernel, prompts a tiled matmul through shared memory; attention streams
// the softmax over the KV cache. Products whose result must be bit-exact with the reference
// (dequantization, COPY) use the _rn intrinsics so that no compiler contracts them into fused
// multiply-adds.
#include <cmath>
#include <cstdint>

#include "op_math.h"
#include "ops.h"
#include "weight_decode.h"

namespace halyard::HALYARD_GPU_NS {
namespace {

constexpr int kThreads = 128;  // a multiple of every warp size (32, 64)

using weight_decode::half_to_float;
using weight_decode::load_weight;
using weight_decode::Weights;

__device__ inline std::uint32_t float_to_half(float value) {  // round to nearest even, as hal/dtype.cpp
  const std::uint32_t x = __float_as_uint(value);
  const std::uint32_t sign = (x >> 16) & 0x8000u;
  const std::uint32_t exp = (x >> 23) & 0xffu;
  std::uint32_t mant = x & 0x7fffffu;
  if (exp == 0xff)
    return sign | 0x7c00u | (mant ? (0x200u | (mant >> 13)) : 0u);
  const int e = static_cast<int>(exp) - 127 + 15;
  if (e >= 31)
    return sign | 0x7c00u;
  if (e <= 0) {
    if (e < -10)
      return sign;
    mant |= 0x800000u;
    const int shift = 14 - e;
    std::uint32_t h = mant >> shift;
    const std::uint32_t rem = mant & ((1u << shift) - 1u);
    const std::uint32_t half = 1u << (shift - 1);
    if (rem > half || (rem == half && (h & 1u)))
      ++h;
    return sign | h;
  }
  std::uint32_t h = (static_cast<std::uint32_t>(e) << 10) | (mant >> 13);
  const std::uint32_t rem = mant & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (h & 1u)))
    ++h;
  return sign | h;
}

__device__ inline std::uint32_t float_to_bf16(float value) {
  const std::uint32_t x = __float_as_uint(value);
  if ((x & 0x7fffffffu) > 0x7f800000u)
    return (x >> 16) | 0x40u;
  return (x + 0x7fffu + ((x >> 16) & 1u)) >> 16;
}

__device__ inline float nan_value() {
  return __uint_as_float(0x7fc00000u);
}

struct Sum {
  __device__ float operator()(float a, float b) const { return a + b; }
};
struct Max {
  __device__ float operator()(float a, float b) const { return fmaxf(a, b); }
};

// Reduces v over the block (blockDim.x a multiple of warpSize); every thread gets the result.
template <typename Op>
__device__ float block_reduce(float v, Op op) {
  __shared__ float partial[32];
  for (int o = warpSize / 2; o > 0; o >>= 1)
    v = op(v, GPU_SHFL_DOWN(v, o));
  const int lane = threadIdx.x % warpSize, warp = threadIdx.x / warpSize;
  if (lane == 0)
    partial[warp] = v;
  __syncthreads();
  float r = partial[0];
  for (int i = 1; i < static_cast<int>(blockDim.x) / warpSize; ++i)
    r = op(r, partial[i]);
  __syncthreads();
  return r;
}

// Kernels over tokens or rows take them from blockIdx.y and stride by gridDim.y (at most 65535).
//
// Rows of a weight table as f32: output row t is table row ids[t] times scale (EMBED; NaN for an
// id out of range) or, with no ids, row t itself (COPY to f32, scale 1: exact). Neither is a hot
// loop, so the dtype is a kernel argument (load_weight's switch is uniform across the grid) and
// one kernel serves all.
__global__ void rows_to_f32_kernel(DType dt, const std::uint8_t* table, std::size_t row_bytes, std::int64_t rows,
                                   const std::int32_t* ids, float* out, int d, std::int64_t n, float scale) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= d)
    return;
  for (std::int64_t t = blockIdx.y; t < n; t += gridDim.y) {
    const std::int64_t r = ids ? ids[t] : t;
    out[t * d + i] = (r < 0 || r >= rows)
                         ? nan_value()
                         : __fmul_rn(load_weight(dt, table + static_cast<std::size_t>(r) * row_bytes, i), scale);
  }
}

// Mat-vec: a block computes NR rows x NT tokens; threads stride over the row, then all NR x NT
// sums are reduced at once (warp shuffles, then one pass through shared memory).
constexpr int kNR = 4, kNT = 4;
template <DType DT>
__global__ void matvec_kernel(const std::uint8_t* w, std::size_t row_bytes, const float* x, float* out, int k, int m,
                              int n) {
  const int r0 = blockIdx.x * kNR, t0 = blockIdx.y * kNT;
  const int nr = min(kNR, m - r0), nt = min(kNT, n - t0);
  float acc[kNR][kNT] = {};
  for (int i = threadIdx.x; i < k; i += blockDim.x) {
    float xv[kNT];
#pragma unroll
    for (int t = 0; t < kNT; ++t)
      xv[t] = t < nt ? x[static_cast<std::int64_t>(t0 + t) * k + i] : 0.f;
#pragma unroll
    for (int r = 0; r < kNR; ++r) {
      if (r < nr) {
        const float wv = Weights<DT>::load(w + static_cast<std::size_t>(r0 + r) * row_bytes, i);
#pragma unroll
        for (int t = 0; t < kNT; ++t)
          acc[r][t] += wv * xv[t];
      }
    }
  }
  __shared__ float partial[kNR * kNT][kThreads / 32];
  const int lane = threadIdx.x % warpSize, warp = threadIdx.x / warpSize;
#pragma unroll
  for (int r = 0; r < kNR; ++r) {
#pragma unroll
    for (int t = 0; t < kNT; ++t) {
      float v = acc[r][t];
      for (int o = warpSize / 2; o > 0; o >>= 1)
        v += GPU_SHFL_DOWN(v, o);
      if (lane == 0)
        partial[r * kNT + t][warp] = v;
    }
  }
  __syncthreads();
  if (threadIdx.x < kNR * kNT) {
    const int r = threadIdx.x / kNT, t = threadIdx.x % kNT;
    if (r < nr && t < nt) {
      float s = 0.f;
      for (int i = 0; i < static_cast<int>(blockDim.x) / warpSize; ++i)
        s += partial[threadIdx.x][i];
      out[static_cast<std::int64_t>(t0 + t) * m + r0 + r] = s;
    }
  }
}

// Tiled matmul: a block of 256 threads computes 64 rows x 64 tokens, 4 x 4 per thread, through
// 32-deep slices of dequantized weights and activations in shared memory.
template <DType DT>
__global__ void matmul_tiled_kernel(const std::uint8_t* w, std::size_t row_bytes, const float* x, float* out, int k,
                                    int m, int n) {
  __shared__ float ws[32][65];
  __shared__ float xs[32][65];
  const int tid = threadIdx.x;
  const int rb = blockIdx.x * 64, tb = blockIdx.y * 64;
  const int lr = tid / 4, kq = (tid % 4) * 8;
  const int tx = tid % 16, ty = tid / 16;
  float acc[4][4] = {};
  for (int k0 = 0; k0 < k; k0 += 32) {
    const int r = rb + lr, t = tb + lr;
#pragma unroll
    for (int j = 0; j < 8; ++j) {
      const int kk = k0 + kq + j;
      ws[kq + j][lr] = (r < m && kk < k) ? Weights<DT>::load(w + static_cast<std::size_t>(r) * row_bytes, kk) : 0.f;
      xs[kq + j][lr] = (t < n && kk < k) ? x[static_cast<std::int64_t>(t) * k + kk] : 0.f;
    }
    __syncthreads();
#pragma unroll 8
    for (int kk = 0; kk < 32; ++kk) {
      float a[4], b[4];
#pragma unroll
      for (int i = 0; i < 4; ++i)
        a[i] = ws[kk][tx + 16 * i];
#pragma unroll
      for (int j = 0; j < 4; ++j)
        b[j] = xs[kk][ty + 16 * j];
#pragma unroll
      for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j)
          acc[i][j] += a[i] * b[j];
    }
    __syncthreads();
  }
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const int r = rb + tx + 16 * i;
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const int t = tb + ty + 16 * j;
      if (r < m && t < n)
        out[static_cast<std::int64_t>(t) * m + r] = acc[i][j];
    }
  }
}

__global__ void rms_norm_kernel(const float* x, const float* w, float* out, int d, float eps) {
  const float* row = x + static_cast<std::int64_t>(blockIdx.x) * d;
  float s = 0.f;
  for (int i = threadIdx.x; i < d; i += blockDim.x)
    s += row[i] * row[i];
  s = block_reduce(s, Sum{});
  const float scale = 1.f / sqrtf(s / static_cast<float>(d) + eps);
  for (int i = threadIdx.x; i < d; i += blockDim.x)
    out[static_cast<std::int64_t>(blockIdx.x) * d + i] = row[i] * scale * w[i];
}

__global__ void add_rms_norm_kernel(const float* a, const float* b, float* sum, const float* w, float* out, int d,
                                    float eps) {
  const std::int64_t base = static_cast<std::int64_t>(blockIdx.x) * d;
  float s = 0.f;
  for (int i = threadIdx.x; i < d; i += blockDim.x) {
    const float v = a[base + i] + b[base + i];
    sum[base + i] = v;
    s += v * v;
  }
  s = block_reduce(s, Sum{});
  const float scale = 1.f / sqrtf(s / static_cast<float>(d) + eps);
  for (int i = threadIdx.x; i < d; i += blockDim.x)
    out[base + i] = (a[base + i] + b[base + i]) * scale * w[i];
}

__global__ void softmax_kernel(const float* x, float* out, int d) {
  const float* row = x + static_cast<std::int64_t>(blockIdx.x) * d;
  float mx = -3.0e38f;
  for (int i = threadIdx.x; i < d; i += blockDim.x)
    mx = fmaxf(mx, row[i]);
  mx = block_reduce(mx, Max{});
  float s = 0.f;
  for (int i = threadIdx.x; i < d; i += blockDim.x)
    s += expf(row[i] - mx);
  s = block_reduce(s, Sum{});
  for (int i = threadIdx.x; i < d; i += blockDim.x)
    out[static_cast<std::int64_t>(blockIdx.x) * d + i] = expf(row[i] - mx) / s;
}

__global__ void argmax_kernel(const float* x, std::int32_t* out, int d) {
  __shared__ float best_v[kThreads];
  __shared__ int best_i[kThreads];
  const float* row = x + static_cast<std::int64_t>(blockIdx.x) * d;
  int bi = -1;
  float bv = 0.f;
  for (int i = threadIdx.x; i < d; i += blockDim.x) {
    if (!isnan(row[i]) && (bi < 0 || row[i] > bv)) {  // the reference never picks a NaN but row[0]
      bv = row[i];
      bi = i;
    }
  }
  best_v[threadIdx.x] = bv;
  best_i[threadIdx.x] = bi;
  __syncthreads();
  for (int s = blockDim.x / 2; s > 0; s >>= 1) {
    if (static_cast<int>(threadIdx.x) < s) {
      const int oi = best_i[threadIdx.x + s], mi = best_i[threadIdx.x];
      const float ov = best_v[threadIdx.x + s], mv = best_v[threadIdx.x];
      if (oi >= 0 && (mi < 0 || ov > mv || (ov == mv && oi < mi))) {
        best_v[threadIdx.x] = ov;
        best_i[threadIdx.x] = oi;
      }
    }
    __syncthreads();
  }
  if (threadIdx.x == 0)
    out[blockIdx.x] = (isnan(row[0]) || best_i[0] < 0) ? 0 : best_i[0];
}

__global__ void binary_kernel(int op, const float* a, const float* b, float* out, int d, int rows, bool broadcast) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= d)
    return;
  for (int r = blockIdx.y; r < rows; r += gridDim.y) {
    const std::int64_t at = static_cast<std::int64_t>(r) * d + i;
    const float av = a[at], bv = b[broadcast ? i : at];
    out[at] = op == 0   ? av + bv
              : op == 1 ? av * bv
              : op == 2 ? av / (1.f + expf(-av)) * bv
                        : op_math::gelu_tanh(av) * bv;
  }
}

// RoPE in double precision, as the reference computes it (op_math::rope_angle).
__global__ void rope_kernel(const float* x, const std::int32_t* pos, const float* factors, float* out, int row, int hd,
                            int dims, bool neox, double base, int n) {
  const int pairs = hd / 2;
  const int g = blockIdx.x * blockDim.x + threadIdx.x;
  if (g >= pairs * (row / hd))
    return;
  const int h = g / pairs, p = g % pairs;
  for (int t = blockIdx.y; t < n; t += gridDim.y) {
    const std::int64_t off = static_cast<std::int64_t>(t) * row + static_cast<std::int64_t>(h) * hd;
    if (p >= dims / 2) {
      const int e = dims + 2 * (p - dims / 2);
      out[off + e] = x[off + e];
      out[off + e + 1] = x[off + e + 1];
      continue;
    }
    const int a = neox ? p : 2 * p, b = neox ? p + dims / 2 : 2 * p + 1;
    const double theta = op_math::rope_angle(pos[t], base, p, dims, factors);
    double sn, cs;
    sincos(theta, &sn, &cs);
    const double x0 = x[off + a], x1 = x[off + b];
    out[off + a] = static_cast<float>(x0 * cs - x1 * sn);
    out[off + b] = static_cast<float>(x0 * sn + x1 * cs);
  }
}

// Logical position j of the sequence whose block table row is `table`: its physical cache row,
// or -1 when the block id is outside the pool.
__device__ std::int64_t paged_row(const std::int32_t* table, int j, const PagedKv& kv) {
  const int block = table[j / kv.block_size];
  if (block < 0 || block >= kv.n_blocks)
    return -1;
  return static_cast<std::int64_t>(block) * kv.block_size + j % kv.block_size;
}

// A KV cache element: f32 as is, or f16 bits (std::uint16_t) rounded to nearest even as
// hal/dtype.cpp and widened exactly.
__device__ inline void kv_put(float* c, std::int64_t i, float x) {
  c[i] = x;
}
__device__ inline void kv_put(std::uint16_t* c, std::int64_t i, float x) {
  c[i] = static_cast<std::uint16_t>(float_to_half(x));
}
__device__ inline float kv_get(const float* c, std::int64_t i) {
  return c[i];
}
__device__ inline float kv_get(const std::uint16_t* c, std::int64_t i) {
  return half_to_float(c[i]);
}

template <typename C>
__global__ void kv_store_kernel(const float* k, const float* v, C* kc, C* vc, const std::int32_t* pos,
                                const std::int32_t* slot, const std::int32_t* table, int kvdim, PagedKv kv, int n) {
  const int e = blockIdx.x * blockDim.x + threadIdx.x;
  if (e >= kvdim)
    return;
  for (int t = blockIdx.y; t < n; t += gridDim.y) {
    const int p = pos[t], s = slot[t];
    if (p < 0 || p >= kv.max_blocks * kv.block_size || s < 0 || s >= kv.slots)
      continue;
    const std::int64_t row = paged_row(table + static_cast<std::int64_t>(s) * kv.max_blocks, p, kv);
    if (row < 0)
      continue;
    const std::int64_t dst = row * kvdim + e;
    kv_put(kc, dst, k[static_cast<std::int64_t>(t) * kvdim + e]);
    kv_put(vc, dst, v[static_cast<std::int64_t>(t) * kvdim + e]);
  }
}

// One block per (query head, token): chunks of blockDim keys, each read through the block table,
// a running softmax, up to two output dims per thread (head_dim <= 2 * blockDim).
template <typename C>
__device__ void attend(const float* q, const C* kc, const C* vc, const std::int32_t* pos, const std::int32_t* slot,
                       const std::int32_t* table, float* out, int hd, int n_heads, int n_kv, PagedKv kv, float scale,
                       int window, int h, int t) {
  __shared__ float qs[256];
  __shared__ float ps[kThreads];
  __shared__ std::int64_t rows[kThreads];
  const int tid = threadIdx.x;
  const int qdim = hd * n_heads, kvdim = hd * n_kv;
  float* o = out + static_cast<std::int64_t>(t) * qdim + static_cast<std::int64_t>(h) * hd;
  const int p = pos[t], s = slot[t];
  bool bad = p < 0 || p >= kv.max_blocks * kv.block_size || s < 0 || s >= kv.slots;
  const std::int32_t* seq = table + static_cast<std::int64_t>(bad ? 0 : s) * kv.max_blocks;
  if (!bad) {
    float any = 0.f;
    for (int b = tid; b <= p / kv.block_size; b += blockDim.x) {
      if (seq[b] < 0 || seq[b] >= kv.n_blocks)
        any = 1.f;
    }
    bad = block_reduce(any, Max{}) > 0.f;
  }
  if (bad) {
    for (int d = tid; d < hd; d += blockDim.x)
      o[d] = nan_value();
    __syncthreads();
    return;
  }
  for (int d = tid; d < hd; d += blockDim.x)
    qs[d] = q[static_cast<std::int64_t>(t) * qdim + static_cast<std::int64_t>(h) * hd + d];
  __syncthreads();
  const int kvh = h / (n_heads / n_kv);
  const int len = p + 1;
  float mx = -3.0e38f, l = 0.f, acc0 = 0.f, acc1 = 0.f;
  // A sliding window starts the walk at its first key: keys before it are never read.
  for (int c0 = op_math::window_first(p, window); c0 < len; c0 += blockDim.x) {
    const int j = c0 + tid;
    float sc = -3.0e38f;
    if (j < len) {
      const std::int64_t row = paged_row(seq, j, kv);
      rows[tid] = row;
      const C* kj = kc + row * kvdim + static_cast<std::int64_t>(kvh) * hd;
      float dot = 0.f;
      for (int i = 0; i < hd; ++i)
        dot += qs[i] * kv_get(kj, i);
      sc = dot * scale;
    }
    const float mnew = fmaxf(mx, block_reduce(sc, Max{}));
    const float pj = j < len ? expf(sc - mnew) : 0.f;
    const float alpha = expf(mx - mnew);
    l = l * alpha + block_reduce(pj, Sum{});
    ps[tid] = pj;
    __syncthreads();
    const int cnt = min(static_cast<int>(blockDim.x), len - c0);
    const C* vb = vc + static_cast<std::int64_t>(kvh) * hd;
    if (tid < hd) {
      float a = acc0 * alpha;
      for (int jj = 0; jj < cnt; ++jj)
        a += ps[jj] * kv_get(vb, rows[jj] * kvdim + tid);
      acc0 = a;
    }
    if (tid + static_cast<int>(blockDim.x) < hd) {
      float a = acc1 * alpha;
      for (int jj = 0; jj < cnt; ++jj)
        a += ps[jj] * kv_get(vb, rows[jj] * kvdim + tid + blockDim.x);
      acc1 = a;
    }
    __syncthreads();
    mx = mnew;
  }
  if (tid < hd)
    o[tid] = acc0 / l;
  if (tid + static_cast<int>(blockDim.x) < hd)
    o[tid + blockDim.x] = acc1 / l;
  __syncthreads();  // qs, ps and rows are reused by the next token of this block
}

template <typename C>
__global__ void attention_kernel(const float* q, const C* kc, const C* vc, const std::int32_t* pos,
                                 const std::int32_t* slot, const std::int32_t* table, float* out, int hd, int n_heads,
                                 int n_kv, PagedKv kv, float scale, int window, int n) {
  for (int t = blockIdx.y; t < n; t += gridDim.y)  // uniform across the block
    attend(q, kc, vc, pos, slot, table, out, hd, n_heads, n_kv, kv, scale, window, blockIdx.x, t);
}
__global__ void to_16bit_kernel(const float* in, std::uint16_t* out, std::int64_t count, bool bf16) {
  const std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < count)
    out[i] = static_cast<std::uint16_t>(bf16 ? float_to_bf16(in[i]) : float_to_half(in[i]));
}

// One thread per 32-element block, as hal/dtype.cpp encodes it: Q8_0, Q4_0 and Q4_1, the formats
// the GPU quantizes to (Q5_x and the K-quants are decoded only).
__global__ void quantize_kernel(DType to, const float* in, std::uint8_t* out, std::int64_t blocks) {
  const std::int64_t b = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (b >= blocks)
    return;
  const float* x = in + b * 32;
  auto put16 = [](std::uint8_t* p, std::uint32_t v) {
    p[0] = static_cast<std::uint8_t>(v & 0xff);
    p[1] = static_cast<std::uint8_t>(v >> 8);
  };
  if (to == DType::kQ8_0) {
    std::uint8_t* o = out + b * 34;
    float amax = 0.f;
    for (int j = 0; j < 32; ++j)
      amax = amax < fabsf(x[j]) ? fabsf(x[j]) : amax;
    const float d = __fdiv_rn(amax, 127.f);
    const float id = d != 0.f ? __fdiv_rn(1.f, d) : 0.f;
    put16(o, float_to_half(d));
    for (int j = 0; j < 32; ++j)
      o[2 + j] = static_cast<std::uint8_t>(static_cast<std::int8_t>(lroundf(__fmul_rn(x[j], id))));
  } else if (to == DType::kQ4_0) {
    std::uint8_t* o = out + b * 18;
    float amax = 0.f, mx = 0.f;
    for (int j = 0; j < 32; ++j) {
      if (fabsf(x[j]) > amax) {
        amax = fabsf(x[j]);
        mx = x[j];
      }
    }
    const float d = __fdiv_rn(mx, -8.f);
    const float id = d != 0.f ? __fdiv_rn(1.f, d) : 0.f;
    put16(o, float_to_half(d));
    for (int j = 0; j < 16; ++j) {
      const int q0 = min(15, static_cast<int>(__fadd_rn(__fmul_rn(x[j], id), 8.5f)));
      const int q1 = min(15, static_cast<int>(__fadd_rn(__fmul_rn(x[j + 16], id), 8.5f)));
      o[2 + j] = static_cast<std::uint8_t>(q0 | (q1 << 4));
    }
  } else {  // Q4_1
    std::uint8_t* o = out + b * 20;
    float lo = x[0], hi = x[0];
    for (int j = 1; j < 32; ++j) {  // std::min / std::max semantics (NaN, signed zeros)
      lo = x[j] < lo ? x[j] : lo;
      hi = hi < x[j] ? x[j] : hi;
    }
    const float d = __fdiv_rn(__fsub_rn(hi, lo), 15.f);
    const float id = d != 0.f ? __fdiv_rn(1.f, d) : 0.f;
    put16(o, float_to_half(d));
    put16(o + 2, float_to_half(lo));
    for (int j = 0; j < 16; ++j) {
      const int q0 = min(15, static_cast<int>(__fadd_rn(__fmul_rn(__fsub_rn(x[j], lo), id), 0.5f)));
      const int q1 = min(15, static_cast<int>(__fadd_rn(__fmul_rn(__fsub_rn(x[j + 16], lo), id), 0.5f)));
      o[4 + j] = static_cast<std::uint8_t>(q0 | (q1 << 4));
    }
  }
}

unsigned blocks_for(std::int64_t n, int per) {
  return static_cast<unsigned>((n + per - 1) / per);
}
unsigned grid_y(std::int64_t n) {
  return static_cast<unsigned>(n < 65535 ? n : 65535);
}  // kernels stride over the rest

// Calls f.template operator()<DT>() for the runtime dtype of a weight: the matrix products, the
// one place where the decode is the hot loop, get a kernel per dtype.
template <typename F>
gpuError_t with_dtype(DType dt, F&& f) {
  switch (dt) {
    case DType::kF32:
      return f.template operator()<DType::kF32>();
    case DType::kF16:
      return f.template operator()<DType::kF16>();
    case DType::kBF16:
      return f.template operator()<DType::kBF16>();
    case DType::kQ8_0:
      return f.template operator()<DType::kQ8_0>();
    case DType::kQ4_0:
      return f.template operator()<DType::kQ4_0>();
    case DType::kQ4_1:
      return f.template operator()<DType::kQ4_1>();
    case DType::kQ5_0:
      return f.template operator()<DType::kQ5_0>();
    case DType::kQ5_1:
      return f.template operator()<DType::kQ5_1>();
    case DType::kQ2_K:
      return f.template operator()<DType::kQ2_K>();
    case DType::kQ3_K:
      return f.template operator()<DType::kQ3_K>();
    case DType::kQ4_K:
      return f.template operator()<DType::kQ4_K>();
    case DType::kQ5_K:
      return f.template operator()<DType::kQ5_K>();
    case DType::kQ6_K:
      return f.template operator()<DType::kQ6_K>();
    case DType::kIQ4_NL:
      return f.template operator()<DType::kIQ4_NL>();
    case DType::kIQ4_XS:
      return f.template operator()<DType::kIQ4_XS>();
    case DType::kI32:  // no weight
      break;
  }
  return gpuErrorInvalidValue;
}

}  // namespace

gpuError_t launch_embed(DType dt, const void* table, std::size_t row_bytes, std::int64_t rows, const std::int32_t* ids,
                        float* out, std::int64_t d, std::int64_t n, float scale, gpuStream_t s) {
  if (dt == DType::kI32)
    return gpuErrorInvalidValue;
  rows_to_f32_kernel<<<dim3(blocks_for(d, kThreads), grid_y(n)), kThreads, 0, s>>>(
      dt, static_cast<const std::uint8_t*>(table), row_bytes, rows, ids, out, static_cast<int>(d), n, scale);
  return gpuGetLastError();
}

gpuError_t launch_matmul(DType dt, const void* w, std::size_t row_bytes, const float* x, float* out, std::int64_t k,
                         std::int64_t m, std::int64_t n, gpuStream_t s) {
  const auto* wb = static_cast<const std::uint8_t*>(w);
  const int ki = static_cast<int>(k), mi = static_cast<int>(m), ni = static_cast<int>(n);
  return with_dtype(dt, [&]<DType DT>() {
    if (n >= 32) {
      matmul_tiled_kernel<DT>
          <<<dim3(blocks_for(m, 64), blocks_for(n, 64)), 256, 0, s>>>(wb, row_bytes, x, out, ki, mi, ni);
    } else {
      matvec_kernel<DT>
          <<<dim3(blocks_for(m, kNR), blocks_for(n, kNT)), kThreads, 0, s>>>(wb, row_bytes, x, out, ki, mi, ni);
    }
    return gpuGetLastError();
  });
}

gpuError_t launch_rms_norm(const float* x, const float* w, float* out, std::int64_t d, std::int64_t rows, float eps,
                           gpuStream_t s) {
  rms_norm_kernel<<<static_cast<unsigned>(rows), kThreads, 0, s>>>(x, w, out, static_cast<int>(d), eps);
  return gpuGetLastError();
}

gpuError_t launch_add_rms_norm(const float* a, const float* b, float* sum, const float* w, float* out, std::int64_t d,
                               std::int64_t rows, float eps, gpuStream_t s) {
  add_rms_norm_kernel<<<static_cast<unsigned>(rows), kThreads, 0, s>>>(a, b, sum, w, out, static_cast<int>(d), eps);
  return gpuGetLastError();
}

gpuError_t launch_softmax(const float* x, float* out, std::int64_t d, std::int64_t rows, gpuStream_t s) {
  softmax_kernel<<<static_cast<unsigned>(rows), kThreads, 0, s>>>(x, out, static_cast<int>(d));
  return gpuGetLastError();
}

gpuError_t launch_argmax(const float* x, std::int32_t* out, std::int64_t d, std::int64_t rows, gpuStream_t s) {
  argmax_kernel<<<static_cast<unsigned>(rows), kThreads, 0, s>>>(x, out, static_cast<int>(d));
  return gpuGetLastError();
}

gpuError_t launch_binary(int op, const float* a, const float* b, float* out, std::int64_t d, std::int64_t rows,
                         bool broadcast, gpuStream_t s) {
  binary_kernel<<<dim3(blocks_for(d, 256), grid_y(rows)), 256, 0, s>>>(op, a, b, out, static_cast<int>(d),
                                                                       static_cast<int>(rows), broadcast);
  return gpuGetLastError();
}

gpuError_t launch_rope(const float* x, const std::int32_t* pos, const float* factors, float* out, std::int64_t row,
                       std::int64_t n, const OpParams& p, gpuStream_t s) {
  const int dims = p.rope_dims ? p.rope_dims : p.head_dim;
  const std::int64_t work = (row / p.head_dim) * (p.head_dim / 2);
  rope_kernel<<<dim3(blocks_for(work, 64), grid_y(n)), 64, 0, s>>>(
      x, pos, factors, out, static_cast<int>(row), p.head_dim, dims, p.rope_layout == RopeLayout::kNeox,
      static_cast<double>(p.rope_base), static_cast<int>(n));
  return gpuGetLastError();
}

namespace {
template <typename C>
gpuError_t launch_attention_as(const float* q, const float* k, const float* v, C* k_cache, C* v_cache,
                               const std::int32_t* pos, const std::int32_t* slot, const std::int32_t* block_table,
                               float* out, std::int64_t n, PagedKv kv, const OpParams& p, gpuStream_t s) {
  const int kvdim = p.head_dim * p.n_kv_heads;
  kv_store_kernel<<<dim3(blocks_for(kvdim, 64), grid_y(n)), 64, 0, s>>>(k, v, k_cache, v_cache, pos, slot, block_table,
                                                                        kvdim, kv, static_cast<int>(n));
  if (gpuError_t e = gpuGetLastError(); e != gpuSuccess)
    return e;
  const float scale = p.attention_scale != 0.f ? p.attention_scale : 1.f / std::sqrt(static_cast<float>(p.head_dim));
  attention_kernel<<<dim3(static_cast<unsigned>(p.n_heads), grid_y(n)), kThreads, 0, s>>>(
      q, k_cache, v_cache, pos, slot, block_table, out, p.head_dim, p.n_heads, p.n_kv_heads, kv, scale,
      p.sliding_window, static_cast<int>(n));
  return gpuGetLastError();
}
}  // namespace

gpuError_t launch_attention(const float* q, const float* k, const float* v, void* k_cache, void* v_cache,
                            bool f16_cache, const std::int32_t* pos, const std::int32_t* slot,
                            const std::int32_t* block_table, float* out, std::int64_t n, PagedKv kv, const OpParams& p,
                            gpuStream_t s) {
  if (f16_cache) {
    return launch_attention_as(q, k, v, static_cast<std::uint16_t*>(k_cache), static_cast<std::uint16_t*>(v_cache), pos,
                               slot, block_table, out, n, kv, p, s);
  }
  return launch_attention_as(q, k, v, static_cast<float*>(k_cache), static_cast<float*>(v_cache), pos, slot,
                             block_table, out, n, kv, p, s);
}

gpuError_t launch_convert(DType from, DType to, const void* in, void* out, std::int64_t d, std::int64_t rows,
                          gpuStream_t s) {
  if (to == DType::kF32 && from != DType::kI32) {
    rows_to_f32_kernel<<<dim3(blocks_for(d, kThreads), grid_y(rows)), kThreads, 0, s>>>(
        from, static_cast<const std::uint8_t*>(in), row_bytes(from, d), rows, nullptr, static_cast<float*>(out),
        static_cast<int>(d), rows, 1.f);
    return gpuGetLastError();
  }
  if (from != DType::kF32)
    return gpuErrorInvalidValue;
  const std::int64_t count = d * rows;
  switch (to) {
    case DType::kF16:
    case DType::kBF16:
      to_16bit_kernel<<<blocks_for(count, 256), 256, 0, s>>>(
          static_cast<const float*>(in), static_cast<std::uint16_t*>(out), count, to == DType::kBF16);
      return gpuGetLastError();
    case DType::kQ8_0:
    case DType::kQ4_0:
    case DType::kQ4_1: {
      const std::int64_t blocks = count / dtype_info(to).block_elements;
      quantize_kernel<<<blocks_for(blocks, 128), 128, 0, s>>>(to, static_cast<const float*>(in),
                                                              static_cast<std::uint8_t*>(out), blocks);
      return gpuGetLastError();
    }
    default:  // quantizing to Q5_0, Q5_1 and the K-quants on the GPU: not implemented (supports() refuses)
      return gpuErrorInvalidValue;
  }
}

}  // namespace halyard::HALYARD_GPU_NS
