#include "cpu_ops.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>

#include "blas_matmul.h"
#include "gemm_matmul.h"

namespace halyard::cpu {
namespace {

const float* f32(const HostTensor& t) {
  return static_cast<const float*>(t.data);
}
float* f32_out(const HostTensor& t) {
  return static_cast<float*>(t.data);
}
const std::int32_t* i32(const HostTensor& t) {
  return static_cast<const std::int32_t*>(t.data);
}
const std::uint8_t* bytes(const HostTensor& t) {
  return static_cast<const std::uint8_t*>(t.data);
}

// A matrix product of a group: the weights and the output.
struct MatmulPart {
  const HostTensor* w = nullptr;
  const HostTensor* out = nullptr;
};

// Prompt-sized products (at least this many tokens) take the device's prefill path.
constexpr std::int64_t kPrefillMinTokens = 32;

// Quantized weights take the integer kernels of the table's entry for their dtype.
bool quantized(DType dt) {
  return dtype_info(dt).quantized;
}

// Rows [j0, j1) of out = w x, every token. `act` holds x quantized (for quantized weights).
void matmul_rows(const KernelTable& kt, const HostTensor& w, const HostTensor& x, const ActBlock* act,
                 const HostTensor& out, std::int64_t j0, std::int64_t j1) {
  const std::int64_t k = w.desc.ne[0], m = w.desc.ne[1], n = x.desc.ne[1];
  const DType dt = w.desc.dtype;
  const std::size_t row_size = w.desc.row_size();
  const int nb = static_cast<int>(k / kQuantBlock);
  const QuantKernels& qk = kt.quantized(dt);
  auto dot = [&](std::int64_t j, std::int64_t t) -> float {
    const std::uint8_t* row = bytes(w) + static_cast<std::size_t>(j) * row_size;
    if (qk.dot)
      return qk.dot(row, act + t * nb, nb);
    switch (dt) {
      case DType::kF32:
        return kt.dot_f32(reinterpret_cast<const float*>(row), f32(x) + t * k, static_cast<int>(k));
      case DType::kF16:
        return kt.dot_f16(reinterpret_cast<const std::uint16_t*>(row), f32(x) + t * k, static_cast<int>(k));
      case DType::kBF16:
        return kt.dot_bf16(reinterpret_cast<const std::uint16_t*>(row), f32(x) + t * k, static_cast<int>(k));
      default:  // I32, and the formats without kernels here (supports() refuses them)
        break;
    }
    return std::numeric_limits<float>::quiet_NaN();
  };
  // Tokens go in blocks so a band of rows stays in cache while it meets every token of the
  // block. Quantized weights go through R x T tiles.
  constexpr std::int64_t kTokenBlock = 32;
  const int R = qk.tile ? qk.tile_rows : 1, T = qk.tile ? qk.tile_tokens : 1;
  auto tile = [&](std::int64_t j, std::int64_t t) {
    const std::uint8_t* w0 = bytes(w) + static_cast<std::size_t>(j) * row_size;
    const void* wr[8];
    const ActBlock* xr[8];
    for (int r = 0; r < R; ++r)
      wr[r] = w0 + static_cast<std::size_t>(r) * row_size;
    for (int i = 0; i < T; ++i)
      xr[i] = act + (t + i) * nb;
    float* o = f32_out(out) + t * m + j;
    const int ldo = static_cast<int>(m);
    qk.tile(wr, xr, nb, o, ldo);
  };
  for (std::int64_t t0 = 0; t0 < n; t0 += kTokenBlock) {
    const std::int64_t t1 = std::min(n, t0 + kTokenBlock);
    std::int64_t j = j0;
    if (R * T > 1 && t1 - t0 >= T) {
      for (; j + R <= j1; j += R) {
        std::int64_t t = t0;
        for (; t + T <= t1; t += T)
          tile(j, t);
        for (; t < t1; ++t) {
          for (int r = 0; r < R; ++r)
            f32_out(out)[t * m + j + r] = dot(j + r, t);
        }
      }
    }
    for (; j < j1; ++j) {
      for (std::int64_t t = t0; t < t1; ++t)
        f32_out(out)[t * m + j] = dot(j, t);
    }
  }
}

// Matrix products that read the same activations x (one, or a group such as Q, K and V): x is
// quantized once, and every product's rows go to the pool as one parallel region, in bands
// that shrink towards the end (guided scheduling) so the threads finish together. Decode
// streams every weight once per step; a region boundary is a moment one thread idles.
Status matmul_group(CpuContext& ctx, std::span<const MatmulPart> parts, const HostTensor& x) {
  const std::int64_t k = x.desc.ne[0], n = x.desc.ne[1];
  const int nb = static_cast<int>(k / kQuantBlock);
  const KernelTable& kt = ctx.kernels;
  if (std::any_of(parts.begin(), parts.end(), [](const MatmulPart& p) { return quantized(p.w->desc.dtype); })) {
    auto& act = ctx.scratch.activations;
    act.resize(static_cast<std::size_t>(n * nb));
    ctx.pool.parallel_for(static_cast<int>(n), [&](int t) {
      kt.quantize_activations(f32(x) + t * k, act.data() + static_cast<std::ptrdiff_t>(t) * nb, nb);
    });
  }
  // Bands in bytes of weights: each takes 1/(2 x threads) of what is left, at least kMinBand and
  // a whole number of tiles.
  constexpr std::size_t kMinBand = 16 << 10;
  std::size_t left = 0;
  for (const MatmulPart& p : parts)
    left += p.w->desc.bytes();
  auto& bands = ctx.scratch.bands;
  bands.clear();
  const std::size_t share = 2 * static_cast<std::size_t>(ctx.pool.size());
  for (std::size_t i = 0; i < parts.size(); ++i) {
    const TensorDesc& wd = parts[i].w->desc;
    const QuantKernels& qk = kt.quantized(wd.dtype);
    const std::int64_t m = wd.ne[1], R = qk.tile ? qk.tile_rows : 1;
    const std::size_t row_size = wd.row_size();
    for (std::int64_t j = 0; j < m;) {
      const std::size_t target = std::max(kMinBand, left / share);
      const std::int64_t rows =
          std::max<std::int64_t>(R, static_cast<std::int64_t>((target + row_size * R - 1) / (row_size * R)) * R);
      const std::int64_t j1 = std::min(m, j + rows);
      bands.push_back({static_cast<int>(i), j, j1});
      left -= static_cast<std::size_t>(j1 - j) * row_size;
      j = j1;
    }
  }
  const ActBlock* act = ctx.scratch.activations.data();
  ctx.pool.parallel_for(static_cast<int>(bands.size()), [&](int b) {
    const MatmulBand& band = bands[static_cast<std::size_t>(b)];
    const MatmulPart& p = parts[static_cast<std::size_t>(band.part)];
    matmul_rows(kt, *p.w, x, act, *p.out, band.j0, band.j1);
  });
  return Status::ok();
}

// Prompt-sized products take the device's prefill path (if not the integer tiles).
bool takes_prefill_path(const CpuContext& ctx, std::int64_t tokens) {
  return tokens >= kPrefillMinTokens && ctx.prefill != PrefillPath::kTiles;
}

Status matmul(CpuContext& ctx, const HostTensor& w, const HostTensor& x, const HostTensor& out) {
  const std::int64_t n = x.desc.ne[1];
  if (takes_prefill_path(ctx, n)) {
    switch (ctx.prefill) {
      case PrefillPath::kGemm:
        return gemm_matmul(ctx, w, x, out);
      case PrefillPath::kGemmBf16:
        return gemm_bf16_matmul(ctx, w, x, out);
      case PrefillPath::kBlas:
        return blas_matmul(ctx, w, x, out);
      case PrefillPath::kTiles:
        break;
    }
  }
  const MatmulPart part{&w, &out};
  return matmul_group(ctx, std::span(&part, 1), x);
}

Status embed(const HostTensor& table, const HostTensor& ids, const HostTensor& out) {
  const std::int64_t d = table.desc.ne[0], rows = table.desc.ne[1];
  for (std::int64_t i = 0; i < ids.desc.ne[0]; ++i) {
    const std::int32_t id = i32(ids)[i];
    if (id < 0 || id >= rows)
      return out_of_range("EMBED: id " + std::to_string(id) + " outside [0, " + std::to_string(rows) + ")");
    dequantize_row(table.desc.dtype, bytes(table) + static_cast<std::size_t>(id) * table.desc.row_size(),
                   f32_out(out) + i * d, d);
  }
  return Status::ok();
}

// Runs fn(r0, r1) over row ranges covering [0, rows): on the pool where the op is big enough to
// pay for the hand-off (a prompt), else on the calling thread (a decode step's single row).
template <typename Fn>
void for_rows(CpuContext& ctx, std::int64_t rows, std::int64_t row_elements, Fn&& fn) {
  constexpr std::int64_t kParallelElements = 1 << 14;
  const int threads = ctx.pool.size();
  if (threads == 1 || rows < 2 || rows * row_elements < kParallelElements) {
    fn(std::int64_t{0}, rows);
    return;
  }
  const std::int64_t chunks = std::min<std::int64_t>(rows, std::int64_t{threads} * 4);
  const std::int64_t per = (rows + chunks - 1) / chunks;
  ctx.pool.parallel_for(static_cast<int>((rows + per - 1) / per),
                        [&](int c) { fn(std::int64_t{c} * per, std::min(rows, std::int64_t{c + 1} * per)); });
}

Status rms_norm(CpuContext& ctx, const HostTensor& x, const HostTensor& w, const HostTensor& out, float eps) {
  const std::int64_t d = x.desc.ne[0];
  for_rows(ctx, x.desc.ne[1], d, [&](std::int64_t t0, std::int64_t t1) {
    for (std::int64_t t = t0; t < t1; ++t) {
      const float* row = f32(x) + t * d;
      float sum = 0.f;
      for (std::int64_t i = 0; i < d; ++i)
        sum += row[i] * row[i];
      const float scale = 1.f / std::sqrt(sum / static_cast<float>(d) + eps);
      float* o = f32_out(out) + t * d;
      for (std::int64_t i = 0; i < d; ++i)
        o[i] = row[i] * scale * f32(w)[i];
    }
  });
  return Status::ok();
}

Status rope(CpuContext& ctx, const HostTensor& x, const HostTensor& positions, const HostTensor& out,
            const OpParams& p) {
  const std::int64_t row = x.desc.ne[0];
  const int hd = p.head_dim, dims = p.rope_dims ? p.rope_dims : hd;
  for_rows(ctx, x.desc.ne[1], row, [&](std::int64_t t0, std::int64_t t1) {
    if (x.data != out.data)
      std::memcpy(f32_out(out) + t0 * row, f32(x) + t0 * row, static_cast<std::size_t>((t1 - t0) * row) * 4);
    thread_local std::vector<float> cos_t, sin_t;  // no allocation per decode step
    cos_t.resize(static_cast<std::size_t>(dims / 2));
    sin_t.resize(cos_t.size());
    for (std::int64_t t = t0; t < t1; ++t) {
      const double pos = i32(positions)[t];
      // Angles in double: at position 4096 a float angle would be off by ~2e-4 rad.
      for (int i = 0; i < dims / 2; ++i) {
        const double theta = pos * std::pow(static_cast<double>(p.rope_base), -2.0 * i / dims);
        cos_t[static_cast<std::size_t>(i)] = static_cast<float>(std::cos(theta));
        sin_t[static_cast<std::size_t>(i)] = static_cast<float>(std::sin(theta));
      }
      const bool normal = p.rope_layout == RopeLayout::kNormal;
      for (std::int64_t h = 0; h < row / hd; ++h) {
        float* v = f32_out(out) + t * row + h * hd;
        for (int i = 0; i < dims / 2; ++i) {
          const int a = normal ? 2 * i : i, b = normal ? 2 * i + 1 : i + dims / 2;
          const float x0 = v[a], x1 = v[b], c = cos_t[static_cast<std::size_t>(i)],
                      s = sin_t[static_cast<std::size_t>(i)];
          v[a] = x0 * c - x1 * s;
          v[b] = x0 * s + x1 * c;
        }
      }
    }
  });
  return Status::ok();
}

// An F32 cache's elements; nullptr for an F16 one (read through widened copies instead).
const float* f32_cache_or_null(const HostTensor& c) {
  return c.desc.dtype == DType::kF32 ? f32(c) : nullptr;
}

// A sequence's view of the paged KV cache: logical position j lives in physical row
// table[j / block_size] * block_size + j % block_size of the pool. Runs of logically consecutive
// positions whose blocks are physically consecutive too (all of them under an identity table) are
// read as one stretch of rows, so the kernels see as long a contiguous cache as the table allows.
struct SequenceView {
  const std::int32_t* table;  // this sequence's row of the block table
  std::int64_t block_size;
  std::int64_t row(std::int64_t j) const { return std::int64_t{table[j / block_size]} * block_size + j % block_size; }
  // The end of the contiguous run of logical positions that starts at j, capped at len.
  std::int64_t run_end(std::int64_t j, std::int64_t len) const {
    std::int64_t b = j / block_size;
    while ((b + 1) * block_size < len && table[b + 1] == table[b] + 1)
      ++b;
    return std::min(len, (b + 1) * block_size);
  }
};

// Prompt attention of one sequence through the f32 GEMM block: the query rows that share a KV
// head (its GQA heads times the tokens, token-major) go in blocks of kGemmRows; per block,
// S = Q K^T over 64-key slices of the transposed keys, a causal softmax per row, then
// O = P V with V read in place (its rows are the GEMM's contiguous side), one product per
// physically contiguous run of cache blocks, accumulated. The cache already holds this batch's
// keys and values.
void blocked_prefill_attention(CpuContext& ctx, std::span<const HostTensor> in, const HostTensor& out,
                               const OpParams& p, float scale) {
  const HostTensor &q = in[0], &kc = in[3], &vc = in[4];
  const std::int32_t* pos = i32(in[5]);
  const SequenceView seq{i32(in[7]) + static_cast<std::int64_t>(i32(in[6])[0]) * in[7].desc.ne[0], kc.desc.ne[1]};
  const int n = static_cast<int>(q.desc.ne[1]), hd = p.head_dim, n_kv = p.n_kv_heads;
  const int group = p.n_heads / n_kv, kvdim = hd * n_kv, qdim = hd * p.n_heads;
  const int keys = *std::max_element(pos, pos + n) + 1;
  const int keys_pad = (keys + kGemmTokens - 1) / kGemmTokens * kGemmTokens;

  // K^T per KV head, zero past the last key. An f16 cache is widened here (exactly), and its V
  // rows into an f32 copy in logical order, so the GEMM blocks stay f32 and V reads as one run.
  const bool f16_cache = kc.desc.dtype == DType::kF16;
  std::vector<float>& kt = ctx.scratch.keys_t;
  kt.resize(static_cast<std::size_t>(n_kv) * hd * keys_pad);
  std::vector<float>& vf = ctx.scratch.values_f32;
  if (f16_cache) {
    vf.resize(static_cast<std::size_t>(keys) * kvdim);
    ctx.pool.parallel_for(keys, [&](int j) {
      ctx.kernels.widen_f16(static_cast<const std::uint16_t*>(vc.data) + seq.row(j) * kvdim,
                            vf.data() + static_cast<std::ptrdiff_t>(j) * kvdim, kvdim);
    });
  }
  ctx.pool.parallel_for(n_kv, [&](int h) {
    float* dst = kt.data() + static_cast<std::size_t>(h) * hd * keys_pad;
    thread_local std::vector<float> row;
    row.resize(static_cast<std::size_t>(hd));
    for (int j = 0; j < keys; ++j) {
      const std::ptrdiff_t off = seq.row(j) * kvdim + static_cast<std::ptrdiff_t>(h) * hd;
      if (f16_cache) {
        ctx.kernels.widen_f16(static_cast<const std::uint16_t*>(kc.data) + off, row.data(), hd);
        for (int i = 0; i < hd; ++i)
          dst[static_cast<std::ptrdiff_t>(i) * keys_pad + j] = row[static_cast<std::size_t>(i)];
      } else {
        const float* src = f32(kc) + off;
        for (int i = 0; i < hd; ++i)
          dst[static_cast<std::ptrdiff_t>(i) * keys_pad + j] = src[i];
      }
    }
    for (int i = 0; i < hd; ++i)
      std::fill(dst + static_cast<std::ptrdiff_t>(i) * keys_pad + keys, dst + (i + 1) * keys_pad, 0.f);
  });

  const int rows = n * group;
  const int blocks = (rows + kGemmRows - 1) / kGemmRows;
  ctx.pool.parallel_for(n_kv * blocks, [&](int task) {
    const int h = task / blocks, r0 = (task % blocks) * kGemmRows;
    const int nr = std::min(kGemmRows, rows - r0);
    thread_local std::vector<float> qb, s, o;
    qb.resize(static_cast<std::size_t>(kGemmRows) * hd);
    o.resize(static_cast<std::size_t>(kGemmRows) * hd);
    int len_max = 0;
    for (int r = 0; r < nr; ++r) {
      const int t = (r0 + r) / group, head = h * group + (r0 + r) % group;
      const float* src = f32(q) + static_cast<std::ptrdiff_t>(t) * qdim + static_cast<std::ptrdiff_t>(head) * hd;
      for (int i = 0; i < hd; ++i)
        qb[static_cast<std::size_t>(r) * hd + i] = src[i] * scale;
      len_max = std::max(len_max, pos[t] + 1);
    }
    const int len_pad = (len_max + kGemmTokens - 1) / kGemmTokens * kGemmTokens;
    s.resize(static_cast<std::size_t>(kGemmRows) * len_pad);
    const float* kth = kt.data() + static_cast<std::size_t>(h) * hd * keys_pad;
    for (int c = 0; c < len_pad; c += kGemmTokens)
      ctx.kernels.gemm_f32_block(qb.data(), hd, nr, kth + c, keys_pad, hd, s.data() + c, len_pad, false);
    for (int r = 0; r < nr; ++r) {
      const int len = pos[(r0 + r) / group] + 1;
      float* row = s.data() + static_cast<std::size_t>(r) * len_pad;
      const float mx = *std::max_element(row, row + len);
      const float inv = 1.f / ctx.kernels.exp_sum(row, len, mx);
      for (int j = 0; j < len; ++j)
        row[j] *= inv;
      std::fill(row + len, row + len_max, 0.f);  // causal: later keys get no weight
    }
    for (int j0 = 0; j0 < len_max;) {
      const int j1 = f16_cache ? len_max : static_cast<int>(seq.run_end(j0, len_max));
      const float* vrun =
          (f16_cache ? vf.data() + static_cast<std::ptrdiff_t>(j0) * kvdim : f32(vc) + seq.row(j0) * kvdim) +
          static_cast<std::ptrdiff_t>(h) * hd;
      for (int d0 = 0; d0 < hd; d0 += kGemmTokens) {
        ctx.kernels.gemm_f32_block(s.data() + j0, len_pad, nr, vrun + d0, kvdim, j1 - j0, o.data() + d0, hd, j0 > 0);
      }
      j0 = j1;
    }
    for (int r = 0; r < nr; ++r) {
      const int t = (r0 + r) / group, head = h * group + (r0 + r) % group;
      std::memcpy(f32_out(out) + static_cast<std::ptrdiff_t>(t) * qdim + static_cast<std::ptrdiff_t>(head) * hd,
                  o.data() + static_cast<std::size_t>(r) * hd, static_cast<std::size_t>(hd) * 4);
    }
  });
}

Status attention(CpuContext& ctx, std::span<const HostTensor> in, const HostTensor& out, const OpParams& p) {
  const HostTensor &q = in[0], &k = in[1], &v = in[2], &kc = in[3], &vc = in[4];
  const std::int32_t* pos = i32(in[5]);
  const std::int32_t* slot = i32(in[6]);
  const std::int32_t* table = i32(in[7]);
  const std::int64_t n = q.desc.ne[1], hd = p.head_dim, kvdim = hd * p.n_kv_heads, qdim = hd * p.n_heads;
  const std::int64_t block_size = kc.desc.ne[1], n_blocks = kc.desc.ne[2], group = p.n_heads / p.n_kv_heads;
  const std::int64_t max_blocks = in[7].desc.ne[0], slots = in[7].desc.ne[1];
  const float scale = p.attention_scale != 0.f ? p.attention_scale : 1.f / std::sqrt(static_cast<float>(hd));
  // Every table entry a token touches is checked before anything is written.
  for (std::int64_t t = 0; t < n; ++t) {
    if (pos[t] < 0 || pos[t] >= max_blocks * block_size)
      return out_of_range("ATTENTION: position " + std::to_string(pos[t]) + " outside the " +
                          std::to_string(max_blocks * block_size) + " positions a block table row holds");
    if (slot[t] < 0 || slot[t] >= slots)
      return out_of_range("ATTENTION: sequence slot " + std::to_string(slot[t]) + " out of range");
    for (std::int64_t b = 0; b <= pos[t] / block_size; ++b) {
      const std::int32_t id = table[slot[t] * max_blocks + b];
      if (id < 0 || id >= n_blocks)
        return out_of_range("ATTENTION: block_table[" + std::to_string(slot[t]) + "][" + std::to_string(b) + "] = " +
                            std::to_string(id) + " outside the pool's [0, " + std::to_string(n_blocks) + ") blocks");
    }
  }
  auto view = [&](std::int64_t s) { return SequenceView{table + s * max_blocks, block_size}; };
  const bool f16_cache = kc.desc.dtype == DType::kF16;
  for (std::int64_t t = 0; t < n; ++t) {
    const std::int64_t r = view(slot[t]).row(pos[t]);
    if (f16_cache) {  // round to nearest even, as hal's f32_to_f16 (every backend stores the same bits)
      auto* kd = static_cast<std::uint16_t*>(kc.data) + r * kvdim;
      auto* vd = static_cast<std::uint16_t*>(vc.data) + r * kvdim;
      for (std::int64_t i = 0; i < kvdim; ++i) {
        kd[i] = f32_to_f16(f32(k)[t * kvdim + i]);
        vd[i] = f32_to_f16(f32(v)[t * kvdim + i]);
      }
    } else {
      std::memcpy(f32_out(kc) + r * kvdim, f32(k) + t * kvdim, static_cast<std::size_t>(kvdim) * 4);
      std::memcpy(f32_out(vc) + r * kvdim, f32(v) + t * kvdim, static_cast<std::size_t>(kvdim) * 4);
    }
  }
  if (ctx.kernels.gemm_f32_block && n >= 16 && hd % kGemmTokens == 0 &&
      std::all_of(slot, slot + n, [&](std::int32_t s) { return s == slot[0]; })) {
    blocked_prefill_attention(ctx, in, out, p, scale);
    return Status::ok();
  }
  // An f16 cache is widened (exactly) into f32 copies of a KV head's rows in logical order,
  // [len, hd] each, read by the same f32 kernels as one run: one task per token and KV head then,
  // so the rows are widened once for the `group` query heads that read them (GQA), not once per
  // head. An f32 cache is read in place, one task per token and head.
  const std::int64_t heads_per_task = f16_cache ? group : 1;
  const std::int64_t tasks_per_token = p.n_heads / heads_per_task;
  ctx.pool.parallel_for(static_cast<int>(n * tasks_per_token), [&](int task) {
    const std::int64_t t = task / tasks_per_token, h0 = (task % tasks_per_token) * heads_per_task;
    const std::int64_t kvh = h0 / group;
    const std::int64_t len = pos[t] + 1;
    const SequenceView seq = view(slot[t]);
    thread_local std::vector<float> scores, part, kbuf, vbuf;
    scores.resize(static_cast<std::size_t>(len));
    const float* kbase = f32_cache_or_null(kc);
    const float* vbase = f32_cache_or_null(vc);
    std::int64_t stride = kvdim;
    if (f16_cache) {
      kbuf.resize(static_cast<std::size_t>(len * hd));
      vbuf.resize(static_cast<std::size_t>(len * hd));
      for (std::int64_t j = 0; j < len; ++j) {
        const std::int64_t off = seq.row(j) * kvdim + kvh * hd;
        ctx.kernels.widen_f16(static_cast<const std::uint16_t*>(kc.data) + off, kbuf.data() + j * hd,
                              static_cast<int>(hd));
        ctx.kernels.widen_f16(static_cast<const std::uint16_t*>(vc.data) + off, vbuf.data() + j * hd,
                              static_cast<int>(hd));
      }
      stride = hd;
    }
    auto run_end = [&](std::int64_t j0) { return f16_cache ? len : seq.run_end(j0, len); };
    auto k_at = [&](std::int64_t j) {
      return f16_cache ? kbuf.data() + j * hd : kbase + seq.row(j) * kvdim + kvh * hd;
    };
    auto v_at = [&](std::int64_t j) {
      return f16_cache ? vbuf.data() + j * hd : vbase + seq.row(j) * kvdim + kvh * hd;
    };
    for (std::int64_t h = h0; h < h0 + heads_per_task; ++h) {
      const float* qh = f32(q) + t * qdim + h * hd;
      for (std::int64_t j0 = 0; j0 < len;) {
        const std::int64_t j1 = run_end(j0);
        ctx.kernels.dot_many_f32(qh, k_at(j0), static_cast<int>(stride), static_cast<int>(j1 - j0),
                                 static_cast<int>(hd), scores.data() + j0);
        j0 = j1;
      }
      float max_score = -std::numeric_limits<float>::infinity();
      for (auto& sc : scores) {
        sc *= scale;
        max_score = std::max(max_score, sc);
      }
      const float inv = 1.f / ctx.kernels.exp_sum(scores.data(), static_cast<int>(len), max_score);
      for (auto& sc : scores)
        sc *= inv;
      float* o = f32_out(out) + t * qdim + h * hd;
      part.resize(static_cast<std::size_t>(hd));
      for (std::int64_t j0 = 0; j0 < len;) {
        const std::int64_t j1 = run_end(j0);
        // The first run writes the output; later runs (a table that is not contiguous) add to it.
        float* dst = j0 == 0 ? o : part.data();
        ctx.kernels.weighted_sum_f32(scores.data() + j0, v_at(j0), static_cast<int>(stride), static_cast<int>(j1 - j0),
                                     static_cast<int>(hd), dst);
        if (j0 > 0) {
          for (std::int64_t i = 0; i < hd; ++i)
            o[i] += part[static_cast<std::size_t>(i)];
        }
        j0 = j1;
      }
    }
  });
  return Status::ok();
}

// fn(a_row, b_row, out_row, d) per row; b is one row broadcast over a's rows, or one per row.
template <typename Fn>
void binary_rows(CpuContext& ctx, const HostTensor& a, const HostTensor& b, const HostTensor& out, Fn fn) {
  const std::int64_t d = a.desc.ne[0], rows = a.desc.rows();
  const bool broadcast = b.desc.rows() == 1 && rows != 1;
  for_rows(ctx, rows, d, [&](std::int64_t t0, std::int64_t t1) {
    for (std::int64_t t = t0; t < t1; ++t)
      fn(f32(a) + t * d, f32(b) + (broadcast ? 0 : t * d), f32_out(out) + t * d, d);
  });
}

template <typename Fn>
void binary(CpuContext& ctx, const HostTensor& a, const HostTensor& b, const HostTensor& out, Fn fn) {
  binary_rows(ctx, a, b, out, [&](const float* av, const float* bv, float* o, std::int64_t d) {
    for (std::int64_t i = 0; i < d; ++i)
      o[i] = fn(av[i], bv[i]);
  });
}

void softmax(CpuContext& ctx, const HostTensor& x, const HostTensor& out) {
  const std::int64_t d = x.desc.ne[0];
  for_rows(ctx, x.desc.rows(), d, [&](std::int64_t t0, std::int64_t t1) {
    for (std::int64_t t = t0; t < t1; ++t) {
      const float* r = f32(x) + t * d;
      float* o = f32_out(out) + t * d;
      const float m = *std::max_element(r, r + d);
      double sum = 0;
      for (std::int64_t i = 0; i < d; ++i) {
        o[i] = std::exp(r[i] - m);
        sum += o[i];
      }
      const float inv = static_cast<float>(1.0 / sum);
      for (std::int64_t i = 0; i < d; ++i)
        o[i] *= inv;
    }
  });
}

void argmax(const HostTensor& x, const HostTensor& out) {
  const std::int64_t d = x.desc.ne[0];
  for (std::int64_t t = 0; t < x.desc.rows(); ++t) {
    const float* r = f32(x) + t * d;
    static_cast<std::int32_t*>(out.data)[t] = static_cast<std::int32_t>(std::max_element(r, r + d) - r);
  }
}

Status copy(const HostTensor& x, const HostTensor& out) {
  if (x.desc.dtype == out.desc.dtype) {
    std::memcpy(out.data, x.data, x.desc.bytes());
    return Status::ok();
  }
  if (x.desc.dtype == DType::kI32 || out.desc.dtype == DType::kI32)
    return unimplemented("COPY between i32 and floating types");
  const std::int64_t d = x.desc.ne[0];
  std::vector<float> tmp(static_cast<std::size_t>(d));
  for (std::int64_t r = 0; r < x.desc.rows(); ++r) {
    dequantize_row(x.desc.dtype, bytes(x) + static_cast<std::size_t>(r) * x.desc.row_size(), tmp.data(), d);
    quantize_row(out.desc.dtype, tmp.data(),
                 static_cast<std::uint8_t*>(out.data) + static_cast<std::size_t>(r) * out.desc.row_size(), d);
  }
  return Status::ok();
}

}  // namespace

std::size_t cpu_group_size(const Graph& graph, std::size_t first) {
  const auto& nodes = graph.nodes();
  if (nodes[first].op != OpKind::kMatmul)
    return 1;
  const TensorId x = nodes[first].inputs[1];
  std::size_t end = first + 1;
  while (end < nodes.size() && end - first < kMaxMatmulGroup && nodes[end].op == OpKind::kMatmul &&
         nodes[end].inputs[1] == x)
    ++end;
  return end - first;
}

bool has_matmul_kernels(DType dtype) {
  if (quantized(dtype))
    return generic_kernels().quantized(dtype).dot != nullptr;  // every table has the generic entries
  return dtype == DType::kF32 || dtype == DType::kF16 || dtype == DType::kBF16;
}

// A graph compiled without asking supports() gets an error, not NaN rows.
Status check_matmul_dtype(DType dtype) {
  if (has_matmul_kernels(dtype))
    return Status::ok();
  return unimplemented("MATMUL on " + std::string(dtype_name(dtype)) +
                       " weights: the cpu backend has no kernels for it yet");
}

Status run_cpu_group(CpuContext& ctx, std::span<const HostNodeCall> calls) {
  for (const HostNodeCall& c : calls)
    HALYARD_RETURN_IF_ERROR(check_matmul_dtype(c.inputs[0].desc.dtype));
  const HostTensor& x = calls[0].inputs[1];
  if (takes_prefill_path(ctx, x.desc.ne[1])) {  // compute-bound: one product at a time
    for (const HostNodeCall& c : calls)
      HALYARD_RETURN_IF_ERROR(matmul(ctx, c.inputs[0], c.inputs[1], c.output));
    return Status::ok();
  }
  MatmulPart parts[kMaxMatmulGroup];
  for (std::size_t i = 0; i < calls.size(); ++i)
    parts[i] = {&calls[i].inputs[0], &calls[i].output};
  return matmul_group(ctx, std::span(parts, calls.size()), x);
}

Status run_cpu_op(CpuContext& ctx, const GraphNode& node, std::span<const HostTensor> in, const HostTensor& out) {
  switch (node.op) {
    case OpKind::kEmbed:
      return embed(in[0], in[1], out);
    case OpKind::kRmsNorm:
      return rms_norm(ctx, in[0], in[1], out, node.params.eps);
    case OpKind::kMatmul:
      HALYARD_RETURN_IF_ERROR(check_matmul_dtype(in[0].desc.dtype));
      return matmul(ctx, in[0], in[1], out);
    case OpKind::kRope:
      return rope(ctx, in[0], in[1], out, node.params);
    case OpKind::kAttention:
      return attention(ctx, in, out, node.params);
    case OpKind::kSwiglu:
      binary_rows(ctx, in[0], in[1], out, [&](const float* g, const float* u, float* o, std::int64_t d) {
        ctx.kernels.swiglu(g, u, o, static_cast<int>(d));
      });
      return Status::ok();
    case OpKind::kAdd:
      binary(ctx, in[0], in[1], out, [](float a, float b) { return a + b; });
      return Status::ok();
    case OpKind::kMul:
      binary(ctx, in[0], in[1], out, [](float a, float b) { return a * b; });
      return Status::ok();
    case OpKind::kSoftmax:
      softmax(ctx, in[0], out);
      return Status::ok();
    case OpKind::kArgmax:
      argmax(in[0], out);
      return Status::ok();
    case OpKind::kCopy:
      return copy(in[0], out);
  }
  return unimplemented("cpu: unknown op");
}

}  // namespace halyard::cpu
