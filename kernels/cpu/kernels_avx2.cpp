// AVX2 + FMA + F16C kernels (compiled with -mavx2 -mfma -mf16c).
#define HALYARD_X86_VNNI 0
#define HALYARD_X86_NAME "avx2"
#define HALYARD_X86_TILE_ROWS 2  // accumulators fit 16 ymm registers
#define HALYARD_X86_GEMM nullptr
#include "kernels_x86.inc"

namespace halyard::cpu {
const KernelTable* avx2_kernels() {
  static const KernelTable table = make_table();
  return &table;
}
}  // namespace halyard::cpu
