#include "halyard/hal/ops.h"

#include <array>
#include <cmath>
#include <string>

namespace halyard {
namespace {

constexpr std::array<std::string_view, kOpCount> kOpNames{
    "EMBED", "RMS_NORM", "MATMUL", "ROPE", "ATTENTION", "SWIGLU", "ADD", "MUL", "SOFTMAX", "ARGMAX", "COPY", "GEGLU"};

Status shape_error(OpKind op, const std::string& what) {
  return invalid_argument(std::string(op_name(op)) + ": " + what);
}

bool is_2d(const TensorDesc& d) {
  return d.ne[2] == 1 && d.ne[3] == 1;
}

Status check_arity(OpKind op, std::span<const TensorDesc> in, std::size_t n) {
  if (in.size() != n) {
    return shape_error(op, "expects " + std::to_string(n) + " inputs, got " + std::to_string(in.size()));
  }
  return Status::ok();
}

Status check_f32_2d(OpKind op, const TensorDesc& d, const char* what) {
  if (d.dtype != DType::kF32 || !is_2d(d)) {
    return shape_error(op, std::string(what) + " must be a 2-D f32 tensor, got " + d.to_string());
  }
  return Status::ok();
}

Status check_ids(OpKind op, const TensorDesc& d, std::int64_t n, const char* what) {
  if (d.dtype != DType::kI32 || d.ne[0] != n || d.rows() != 1) {
    return shape_error(op, std::string(what) + " must be i32[" + std::to_string(n) + "], got " + d.to_string());
  }
  return Status::ok();
}

Status check_weight_rows(OpKind op, const TensorDesc& d) {
  if (!is_weight_dtype(d.dtype) || !is_2d(d))
    return shape_error(op, "weight must be 2-D, got " + d.to_string());
  if (d.ne[0] % dtype_info(d.dtype).block_elements != 0) {
    return shape_error(op, "row length of " + d.to_string() + " is not a multiple of its block size");
  }
  return Status::ok();
}

}  // namespace

std::string_view op_name(OpKind op) {
  return kOpNames[static_cast<std::size_t>(op)];
}

std::optional<OpKind> op_from_name(std::string_view name) {
  for (std::size_t i = 0; i < kOpNames.size(); ++i) {
    if (kOpNames[i] == name)
      return static_cast<OpKind>(i);
  }
  return std::nullopt;
}

bool uses_extended_params(OpKind op, const OpParams& p) {
  switch (op) {
    case OpKind::kEmbed:
      return p.scale != 1.f;
    case OpKind::kRmsNorm:
      return p.norm_group != 0;
    case OpKind::kAttention:
      return p.sliding_window != 0;
    default:
      return false;
  }
}

Result<TensorDesc> infer_output(OpKind op, std::span<const TensorDesc> in, const OpParams& p) {
  switch (op) {
    case OpKind::kEmbed: {
      HALYARD_RETURN_IF_ERROR(check_arity(op, in, 2));
      HALYARD_RETURN_IF_ERROR(check_weight_rows(op, in[0]));
      if (in[1].dtype != DType::kI32 || in[1].rows() != 1)
        return shape_error(op, "ids must be i32[n]");
      if (!std::isfinite(p.scale))
        return shape_error(op, "scale must be finite");
      return TensorDesc::make(DType::kF32, in[0].ne[0], in[1].ne[0]);
    }
    case OpKind::kRmsNorm: {
      HALYARD_RETURN_IF_ERROR(check_arity(op, in, 2));
      HALYARD_RETURN_IF_ERROR(check_f32_2d(op, in[0], "x"));
      if (p.norm_group < 0 || (p.norm_group > 0 && in[0].ne[0] % p.norm_group != 0)) {
        return shape_error(op, "norm_group " + std::to_string(p.norm_group) + " does not divide the row of " +
                                   std::to_string(in[0].ne[0]));
      }
      const std::int64_t group = p.norm_group > 0 ? p.norm_group : in[0].ne[0];
      if (in[1].dtype != DType::kF32 || in[1].ne[0] != group || in[1].rows() != 1) {
        return shape_error(op, "weight must be f32[" + std::to_string(group) + "]");
      }
      if (!(p.eps > 0.f))
        return shape_error(op, "eps must be positive");
      return in[0];
    }
    case OpKind::kMatmul: {
      HALYARD_RETURN_IF_ERROR(check_arity(op, in, 2));
      HALYARD_RETURN_IF_ERROR(check_weight_rows(op, in[0]));
      HALYARD_RETURN_IF_ERROR(check_f32_2d(op, in[1], "x"));
      if (in[0].ne[0] != in[1].ne[0]) {
        return shape_error(op, "inner sizes differ: " + in[0].to_string() + " x " + in[1].to_string());
      }
      return TensorDesc::make(DType::kF32, in[0].ne[1], in[1].ne[1]);
    }
    case OpKind::kRope: {
      if (in.size() != 2 && in.size() != 3)
        return shape_error(op, "expects 2 inputs (3 with frequency factors), got " + std::to_string(in.size()));
      HALYARD_RETURN_IF_ERROR(check_f32_2d(op, in[0], "x"));
      HALYARD_RETURN_IF_ERROR(check_ids(op, in[1], in[0].ne[1], "positions"));
      const int dims = p.rope_dims ? p.rope_dims : p.head_dim;
      if (p.head_dim <= 0 || in[0].ne[0] % p.head_dim != 0)
        return shape_error(op, "head_dim must divide the row");
      if (dims <= 0 || dims > p.head_dim || dims % 2 != 0)
        return shape_error(op, "rope_dims must be even and <= head_dim");
      if (in.size() == 3 && (in[2].dtype != DType::kF32 || in[2].ne[0] != dims / 2 || in[2].rows() != 1)) {
        return shape_error(op, "freq_factors must be f32[" + std::to_string(dims / 2) + "], got " + in[2].to_string());
      }
      return in[0];
    }
    case OpKind::kAttention: {
      HALYARD_RETURN_IF_ERROR(check_arity(op, in, 8));
      if (p.head_dim <= 0 || p.n_heads <= 0 || p.n_kv_heads <= 0 || p.n_heads % p.n_kv_heads != 0) {
        return shape_error(op, "needs head_dim > 0 and n_heads a multiple of n_kv_heads");
      }
      if (p.sliding_window < 0)
        return shape_error(op, "sliding_window must be >= 0");
      const std::int64_t n = in[0].ne[1];
      const std::int64_t qdim = std::int64_t{p.head_dim} * p.n_heads;
      const std::int64_t kvdim = std::int64_t{p.head_dim} * p.n_kv_heads;
      HALYARD_RETURN_IF_ERROR(check_f32_2d(op, in[0], "q"));
      HALYARD_RETURN_IF_ERROR(check_f32_2d(op, in[1], "k"));
      HALYARD_RETURN_IF_ERROR(check_f32_2d(op, in[2], "v"));
      if (in[0].ne[0] != qdim)
        return shape_error(op, "q rows must be head_dim * n_heads");
      if (in[1].ne[0] != kvdim || in[2].ne[0] != kvdim || in[1].ne[1] != n || in[2].ne[1] != n) {
        return shape_error(op, "k and v must be [head_dim * n_kv_heads, n]");
      }
      for (int c = 3; c <= 4; ++c) {
        const auto& cache = in[static_cast<std::size_t>(c)];
        if (cache.dtype != DType::kF32 && cache.dtype != DType::kF16) {
          return shape_error(op, "caches must be f32 or f16, got " + cache.to_string());
        }
        if (cache.ne[0] != kvdim || cache.ne[1] < 1 || cache.ne[2] < 1 || cache.ne[3] != 1) {
          return shape_error(
              op, "caches must be block pools [head_dim * n_kv_heads, block_size, n_blocks], got " + cache.to_string());
        }
      }
      if (in[3] != in[4])
        return shape_error(
            op, "k and v caches differ in shape or dtype: " + in[3].to_string() + " vs " + in[4].to_string());
      HALYARD_RETURN_IF_ERROR(check_ids(op, in[5], n, "positions"));
      HALYARD_RETURN_IF_ERROR(check_ids(op, in[6], n, "slots"));
      const TensorDesc& table = in[7];
      if (table.dtype != DType::kI32 || !is_2d(table) || table.ne[0] < 1 || table.ne[1] < 1) {
        return shape_error(op, "block_table must be i32[max_blocks_per_sequence, n_slots], got " + table.to_string());
      }
      return TensorDesc::make(DType::kF32, qdim, n);
    }
    case OpKind::kSwiglu:
    case OpKind::kGeglu:
    case OpKind::kAdd:
    case OpKind::kMul: {
      HALYARD_RETURN_IF_ERROR(check_arity(op, in, 2));
      HALYARD_RETURN_IF_ERROR(check_f32_2d(op, in[0], "a"));
      HALYARD_RETURN_IF_ERROR(check_f32_2d(op, in[1], "b"));
      const bool same = in[0] == in[1];
      const bool row_broadcast =
          op != OpKind::kSwiglu && op != OpKind::kGeglu && in[1].ne[0] == in[0].ne[0] && in[1].rows() == 1;
      if (!same && !row_broadcast)
        return shape_error(op, "shapes differ: " + in[0].to_string() + " vs " + in[1].to_string());
      return in[0];
    }
    case OpKind::kSoftmax: {
      HALYARD_RETURN_IF_ERROR(check_arity(op, in, 1));
      HALYARD_RETURN_IF_ERROR(check_f32_2d(op, in[0], "x"));
      return in[0];
    }
    case OpKind::kArgmax: {
      HALYARD_RETURN_IF_ERROR(check_arity(op, in, 1));
      HALYARD_RETURN_IF_ERROR(check_f32_2d(op, in[0], "x"));
      return TensorDesc::make(DType::kI32, in[0].ne[1]);
    }
    case OpKind::kCopy: {
      HALYARD_RETURN_IF_ERROR(check_arity(op, in, 1));
      TensorDesc out = in[0];
      out.dtype = p.out_dtype;
      const auto block = dtype_info(p.out_dtype).block_elements;
      if (in[0].ne[0] % block != 0 || in[0].ne[0] % dtype_info(in[0].dtype).block_elements != 0) {
        return shape_error(op, "row length must be a multiple of both block sizes");
      }
      return out;
    }
  }
  return shape_error(op, "unknown op");
}

}  // namespace halyard
