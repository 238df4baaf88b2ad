#include "halyard/reference/ops.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

namespace halyard::reference {
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

// Row r of a (possibly quantized) 2-D tensor, as f32.
void row_to_f32(const HostTensor& t, std::int64_t r, float* dst) {
  const auto* base = static_cast<const std::uint8_t*>(t.data) + static_cast<std::size_t>(r) * t.desc.row_size();
  dequantize_row(t.desc.dtype, base, dst, t.desc.ne[0]);
}

Status embed(const HostTensor& table, const HostTensor& ids, const HostTensor& out, float scale) {
  const std::int64_t d = table.desc.ne[0];
  const std::int64_t rows = table.desc.ne[1];
  for (std::int64_t i = 0; i < ids.desc.ne[0]; ++i) {
    const std::int32_t id = i32(ids)[i];
    if (id < 0 || id >= rows) {
      return out_of_range("EMBED: id " + std::to_string(id) + " outside [0, " + std::to_string(rows) + ")");
    }
    float* row = f32_out(out) + i * d;
    row_to_f32(table, id, row);
    if (scale != 1.f) {
      for (std::int64_t j = 0; j < d; ++j)
        row[j] = static_cast<float>(static_cast<double>(row[j]) * scale);
    }
  }
  return Status::ok();
}

// Each run of `group` elements (the row when norm_group is 0) is normalized on its own.
Status rms_norm(const HostTensor& x, const HostTensor& w, const HostTensor& out, float eps, int norm_group) {
  const std::int64_t d = norm_group > 0 ? norm_group : x.desc.ne[0];
  for (std::int64_t t = 0; t < x.desc.rows() * (x.desc.ne[0] / d); ++t) {
    const float* row = f32(x) + t * d;
    double sum = 0.0;
    for (std::int64_t i = 0; i < d; ++i)
      sum += static_cast<double>(row[i]) * row[i];
    const double scale = 1.0 / std::sqrt(sum / static_cast<double>(d) + eps);
    for (std::int64_t i = 0; i < d; ++i) {
      f32_out(out)[t * d + i] = static_cast<float>(row[i] * scale * f32(w)[i]);
    }
  }
  return Status::ok();
}

Status matmul(const HostTensor& w, const HostTensor& x, const HostTensor& out) {
  const std::int64_t k = w.desc.ne[0];
  const std::int64_t m = w.desc.ne[1];
  const std::int64_t n = x.desc.ne[1];
  std::vector<float> row(static_cast<std::size_t>(k));
  for (std::int64_t j = 0; j < m; ++j) {
    row_to_f32(w, j, row.data());
    for (std::int64_t t = 0; t < n; ++t) {
      const float* xv = f32(x) + t * k;
      double acc = 0.0;
      for (std::int64_t i = 0; i < k; ++i)
        acc += static_cast<double>(row[static_cast<std::size_t>(i)]) * xv[i];
      f32_out(out)[t * m + j] = static_cast<float>(acc);
    }
  }
  return Status::ok();
}

Status rope(const HostTensor& x, const HostTensor& positions, const HostTensor* factors, const HostTensor& out,
            const OpParams& p) {
  const std::int64_t row = x.desc.ne[0];
  const int hd = p.head_dim;
  const int dims = p.rope_dims ? p.rope_dims : hd;
  if (x.data != out.data)
    std::memcpy(out.data, x.data, x.desc.bytes());
  for (std::int64_t t = 0; t < x.desc.ne[1]; ++t) {
    const double pos = i32(positions)[t];
    for (std::int64_t h = 0; h < row / hd; ++h) {
      float* v = f32_out(out) + t * row + h * hd;
      for (int i = 0; i < dims / 2; ++i) {
        double theta = pos * std::pow(static_cast<double>(p.rope_base), -2.0 * i / dims);
        if (factors)
          theta /= static_cast<double>(f32(*factors)[i]);
        const int a = p.rope_layout == RopeLayout::kNormal ? 2 * i : i;
        const int b = p.rope_layout == RopeLayout::kNormal ? 2 * i + 1 : i + dims / 2;
        const double x0 = v[a], x1 = v[b];
        v[a] = static_cast<float>(x0 * std::cos(theta) - x1 * std::sin(theta));
        v[b] = static_cast<float>(x0 * std::sin(theta) + x1 * std::cos(theta));
      }
    }
  }
  return Status::ok();
}

Status attention(std::span<const HostTensor> in, const HostTensor& out, const OpParams& p) {
  const HostTensor& q = in[0];
  const HostTensor& k = in[1];
  const HostTensor& v = in[2];
  const HostTensor& k_cache = in[3];
  const HostTensor& v_cache = in[4];
  const std::int32_t* pos = i32(in[5]);
  const std::int32_t* slot = i32(in[6]);
  const std::int32_t* table = i32(in[7]);
  const std::int64_t n = q.desc.ne[1];
  const std::int64_t hd = p.head_dim;
  const std::int64_t kvdim = hd * p.n_kv_heads;
  const std::int64_t qdim = hd * p.n_heads;
  const std::int64_t block_size = k_cache.desc.ne[1];
  const std::int64_t n_blocks = k_cache.desc.ne[2];
  const std::int64_t max_blocks = in[7].desc.ne[0];
  const std::int64_t slots = in[7].desc.ne[1];
  const std::int64_t group = p.n_heads / p.n_kv_heads;
  const double scale = p.attention_scale != 0.f ? p.attention_scale : 1.0 / std::sqrt(static_cast<double>(hd));

  // Every table entry a token will touch (its sequence's blocks up to its own) is checked before
  // anything is written: a bad entry is an error, never a write outside the pool.
  for (std::int64_t t = 0; t < n; ++t) {
    if (pos[t] < 0 || pos[t] >= max_blocks * block_size) {
      return out_of_range("ATTENTION: position " + std::to_string(pos[t]) + " outside the " +
                          std::to_string(max_blocks) + " blocks of " + std::to_string(block_size) +
                          " positions a block table row holds");
    }
    if (slot[t] < 0 || slot[t] >= slots) {
      return out_of_range("ATTENTION: sequence slot " + std::to_string(slot[t]) + " outside [0, " +
                          std::to_string(slots) + ")");
    }
    for (std::int64_t b = 0; b <= pos[t] / block_size; ++b) {
      const std::int32_t id = table[slot[t] * max_blocks + b];
      if (id < 0 || id >= n_blocks) {
        return out_of_range("ATTENTION: block_table[" + std::to_string(slot[t]) + "][" + std::to_string(b) + "] = " +
                            std::to_string(id) + " outside the pool's [0, " + std::to_string(n_blocks) + ") blocks");
      }
    }
  }
  // Logical position j of sequence s, through the block table: the element offset of its row.
  auto cache_off = [&](std::int64_t s, std::int64_t j) {
    const std::int64_t block = table[s * max_blocks + j / block_size];
    return (block * block_size + j % block_size) * kvdim;
  };
  // An F16 cache stores each element rounded to nearest even (hal's f32_to_f16) and is read
  // back exactly; an F32 cache stores it as is. Reads go through one f32 row buffer.
  const bool f16_cache = k_cache.desc.dtype == DType::kF16;
  auto store_row = [&](const HostTensor& c, std::int64_t off, const float* src) {
    if (f16_cache) {
      auto* dst = static_cast<std::uint16_t*>(c.data) + off;
      for (std::int64_t i = 0; i < kvdim; ++i)
        dst[i] = f32_to_f16(src[i]);
    } else {
      std::memcpy(f32_out(c) + off, src, static_cast<std::size_t>(kvdim) * 4);
    }
  };
  std::vector<float> row_buf(static_cast<std::size_t>(hd));
  auto read_head = [&](const HostTensor& c, std::int64_t s, std::int64_t j, std::int64_t kvh) -> const float* {
    const std::int64_t off = cache_off(s, j) + kvh * hd;
    if (!f16_cache)
      return f32(c) + off;
    const auto* src = static_cast<const std::uint16_t*>(c.data) + off;
    for (std::int64_t i = 0; i < hd; ++i)
      row_buf[static_cast<std::size_t>(i)] = f16_to_f32(src[i]);
    return row_buf.data();
  };
  // Append first, so every token of this batch sees its own and earlier tokens.
  for (std::int64_t t = 0; t < n; ++t) {
    store_row(k_cache, cache_off(slot[t], pos[t]), f32(k) + t * kvdim);
    store_row(v_cache, cache_off(slot[t], pos[t]), f32(v) + t * kvdim);
  }
  std::vector<double> scores;
  std::vector<double> acc(static_cast<std::size_t>(hd));
  for (std::int64_t t = 0; t < n; ++t) {
    // Keys before `first` are outside the sliding window and take no part in the softmax.
    const std::int64_t len = pos[t] + 1;
    const std::int64_t first = p.sliding_window > 0 ? std::max<std::int64_t>(0, len - p.sliding_window) : 0;
    scores.assign(static_cast<std::size_t>(len), 0.0);
    for (std::int64_t h = 0; h < p.n_heads; ++h) {
      const float* qh = f32(q) + t * qdim + h * hd;
      const std::int64_t kvh = h / group;
      double max_score = -std::numeric_limits<double>::infinity();
      for (std::int64_t j = first; j < len; ++j) {
        const float* kj = read_head(k_cache, slot[t], j, kvh);
        double dot = 0.0;
        for (std::int64_t i = 0; i < hd; ++i)
          dot += static_cast<double>(qh[i]) * kj[i];
        scores[static_cast<std::size_t>(j)] = dot * scale;
        max_score = std::max(max_score, dot * scale);
      }
      double denom = 0.0;
      for (std::int64_t j = first; j < len; ++j) {
        double& s = scores[static_cast<std::size_t>(j)];
        s = std::exp(s - max_score);
        denom += s;
      }
      std::fill(acc.begin(), acc.end(), 0.0);
      for (std::int64_t j = first; j < len; ++j) {
        const float* vj = read_head(v_cache, slot[t], j, kvh);
        const double w = scores[static_cast<std::size_t>(j)] / denom;
        for (std::int64_t i = 0; i < hd; ++i)
          acc[static_cast<std::size_t>(i)] += w * vj[i];
      }
      for (std::int64_t i = 0; i < hd; ++i)
        f32_out(out)[t * qdim + h * hd + i] = static_cast<float>(acc[static_cast<std::size_t>(i)]);
    }
  }
  return Status::ok();
}

template <typename Fn>
Status binary(const HostTensor& a, const HostTensor& b, const HostTensor& out, Fn fn) {
  const std::int64_t d = a.desc.ne[0];
  const bool broadcast = b.desc.rows() == 1 && a.desc.rows() != 1;
  for (std::int64_t t = 0; t < a.desc.rows(); ++t) {
    for (std::int64_t i = 0; i < d; ++i) {
      const double bv = f32(b)[broadcast ? i : t * d + i];
      f32_out(out)[t * d + i] = static_cast<float>(fn(static_cast<double>(f32(a)[t * d + i]), bv));
    }
  }
  return Status::ok();
}

Status softmax(const HostTensor& x, const HostTensor& out) {
  const std::int64_t d = x.desc.ne[0];
  for (std::int64_t t = 0; t < x.desc.rows(); ++t) {
    const float* row = f32(x) + t * d;
    double max_v = -std::numeric_limits<double>::infinity();
    for (std::int64_t i = 0; i < d; ++i)
      max_v = std::max(max_v, static_cast<double>(row[i]));
    double sum = 0.0;
    for (std::int64_t i = 0; i < d; ++i)
      sum += std::exp(row[i] - max_v);
    for (std::int64_t i = 0; i < d; ++i)
      f32_out(out)[t * d + i] = static_cast<float>(std::exp(row[i] - max_v) / sum);
  }
  return Status::ok();
}

Status argmax(const HostTensor& x, const HostTensor& out) {
  const std::int64_t d = x.desc.ne[0];
  auto* o = static_cast<std::int32_t*>(out.data);
  for (std::int64_t t = 0; t < x.desc.rows(); ++t) {
    const float* row = f32(x) + t * d;
    std::int64_t best = 0;
    for (std::int64_t i = 1; i < d; ++i) {
      if (row[i] > row[best])
        best = i;
    }
    o[t] = static_cast<std::int32_t>(best);
  }
  return Status::ok();
}

Status copy(const HostTensor& x, const HostTensor& out) {
  if (x.desc.dtype == out.desc.dtype) {
    std::memcpy(out.data, x.data, x.desc.bytes());
    return Status::ok();
  }
  if (x.desc.dtype == DType::kI32 || out.desc.dtype == DType::kI32) {
    return unimplemented("COPY between i32 and floating types");
  }
  const std::int64_t d = x.desc.ne[0];
  std::vector<float> row(static_cast<std::size_t>(d));
  for (std::int64_t r = 0; r < x.desc.rows(); ++r) {
    row_to_f32(x, r, row.data());
    quantize_row(out.desc.dtype, row.data(), static_cast<std::uint8_t*>(out.data) + r * out.desc.row_size(), d);
  }
  return Status::ok();
}

}  // namespace

Status run_op(OpKind op, std::span<const HostTensor> in, const HostTensor& out, const OpParams& p) {
  std::vector<TensorDesc> descs;
  for (const auto& t : in)
    descs.push_back(t.desc);
  HALYARD_ASSIGN_OR_RETURN(TensorDesc expected, infer_output(op, descs, p));
  if (expected != out.desc) {
    return invalid_argument(std::string(op_name(op)) + ": output is " + out.desc.to_string() + ", expected " +
                            expected.to_string());
  }
  switch (op) {
    case OpKind::kEmbed:
      return embed(in[0], in[1], out, p.scale);
    case OpKind::kRmsNorm:
      return rms_norm(in[0], in[1], out, p.eps, p.norm_group);
    case OpKind::kMatmul:
      return matmul(in[0], in[1], out);
    case OpKind::kRope:
      return rope(in[0], in[1], in.size() == 3 ? &in[2] : nullptr, out, p);
    case OpKind::kAttention:
      return attention(in, out, p);
    case OpKind::kSwiglu:
      return binary(in[0], in[1], out, [](double g, double u) { return g / (1.0 + std::exp(-g)) * u; });
    case OpKind::kGeglu:
      return binary(in[0], in[1], out, [](double g, double u) {
        constexpr double kSqrt2OverPi = 0.79788456080286535588;
        return 0.5 * g * (1.0 + std::tanh(kSqrt2OverPi * (g + 0.044715 * g * g * g))) * u;
      });
    case OpKind::kAdd:
      return binary(in[0], in[1], out, [](double a, double b) { return a + b; });
    case OpKind::kMul:
      return binary(in[0], in[1], out, [](double a, double b) { return a * b; });
    case OpKind::kSoftmax:
      return softmax(in[0], out);
    case OpKind::kArgmax:
      return argmax(in[0], out);
    case OpKind::kCopy:
      return copy(in[0], out);
  }
  return unimplemented("unknown op");
}

}  // namespace halyard::reference
