// AVX-512 VNNI kernels: the AVX2 code with vpdpbusd for the integer dot products
// (compiled with -mavx512f -mavx512bw -mavx512vl -mavx512vnni -mavx2 -mfma -mf16c).
// GCC 12 warns that its own AVX-512 intrinsics (used by the zmm K-quant decode kernels) read an
// uninitialised value (their "undefined" pass-through operand; GCC bug 105593, fixed in GCC 13).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#define HALYARD_X86_VNNI 1
#define HALYARD_X86_NAME "avx512vnni"
#define HALYARD_X86_TILE_ROWS 4  // 32 registers with AVX-512VL
#define HALYARD_X86_GEMM gemm_f32_block_avx512
#include "kernels_x86.inc"

namespace halyard::cpu {
const KernelTable* avx512vnni_kernels() {
  static const KernelTable table = make_table();
  return &table;
}
}  // namespace halyard::cpu
