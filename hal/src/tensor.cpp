#include "halyard/hal/tensor.h"

namespace halyard {

std::size_t TensorDesc::stride(int d) const {
  std::size_t s = row_size();
  if (d == 0)
    return dtype_info(dtype).block_bytes;
  for (int i = 1; i < d; ++i)
    s *= static_cast<std::size_t>(ne[static_cast<std::size_t>(i)]);
  return s;
}

std::string TensorDesc::to_string() const {
  std::string s(dtype_name(dtype));
  int rank = kMaxDims;
  while (rank > 1 && ne[static_cast<std::size_t>(rank - 1)] == 1)
    --rank;
  s += "[";
  for (int i = 0; i < rank; ++i) {
    if (i)
      s += ", ";
    s += std::to_string(ne[static_cast<std::size_t>(i)]);
  }
  return s + "]";
}

}  // namespace halyard
