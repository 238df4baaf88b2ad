// Tensor descriptors: dtype and up to 4 dims, ne[0] fastest-varying (the GGUF convention).
// Strides are in bytes; Halyard tensors are contiguous today, so strides follow from ne.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

#include "halyard/hal/dtype.h"

namespace halyard {

inline constexpr int kMaxDims = 4;

struct TensorDesc {
  DType dtype = DType::kF32;
  std::array<std::int64_t, kMaxDims> ne{1, 1, 1, 1};

  static TensorDesc make(DType dtype, std::int64_t ne0, std::int64_t ne1 = 1, std::int64_t ne2 = 1,
                         std::int64_t ne3 = 1) {
    return TensorDesc{dtype, {ne0, ne1, ne2, ne3}};
  }
  std::int64_t elements() const { return ne[0] * ne[1] * ne[2] * ne[3]; }
  // Number of rows: all dims but the first.
  std::int64_t rows() const { return ne[1] * ne[2] * ne[3]; }
  std::size_t row_size() const { return row_bytes(dtype, ne[0]); }
  std::size_t bytes() const { return row_size() * static_cast<std::size_t>(rows()); }
  // Byte stride of dim d (contiguous layout).
  std::size_t stride(int d) const;
  bool operator==(const TensorDesc&) const = default;
  std::string to_string() const;  // e.g. "q4_1[576, 1536]"
};

}  // namespace halyard
