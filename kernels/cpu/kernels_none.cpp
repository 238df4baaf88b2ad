// Non-x86 builds: only the generic table (NEON kernels are future work).
#include "kernels.h"

namespace halyard::cpu {
const KernelTable* avx2_kernels() { return nullptr; }
const KernelTable* avx512vnni_kernels() { return nullptr; }
}  // namespace halyard::cpu
