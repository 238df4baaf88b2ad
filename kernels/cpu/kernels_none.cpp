// The tables a build for this architecture does not have.
#include "kernels.h"

namespace halyard::cpu {
#if !defined(__x86_64__)
const KernelTable* avx2_kernels() { return nullptr; }
const KernelTable* avx512vnni_kernels() { return nullptr; }
#endif
#if !defined(__aarch64__)
const KernelTable* neon_kernels() { return nullptr; }
#endif
}  // namespace halyard::cpu
