// The tables a build for this architecture does not have.
#include "kernels.h"

namespace halyard::cpu {
#if !defined(__x86_64__)
const KernelTable* avx2_kernels() {
  return nullptr;
}
const KernelTable* avx512vnni_kernels() {
  return nullptr;
}
#endif
#if !defined(__aarch64__)
const KernelTable* neon_kernels() {
  return nullptr;
}
#endif
#if !defined(__x86_64__)
bool cpu_has_avx512_bf16() {
  return false;
}
void dequantize_row_fast(DType dtype, const void* src, float* dst, std::int64_t n) {
  dequantize_row(dtype, src, dst, n);
}
#endif
}  // namespace halyard::cpu
