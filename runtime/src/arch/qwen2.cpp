// GGUF architecture "qwen2": Qwen2 and Qwen2.5. Llama's layer with biases on the Q, K and V
// projections and NeoX (half-split) RoPE.
#include "arch/architecture.h"
#include "arch/blocks.h"

namespace halyard::runtime {

const Architecture& qwen2_architecture() {
  static const NeoxPreNormArchitecture a("qwen2", AttentionOptions{.biases = true, .qk_norm = false});
  return a;
}

}  // namespace halyard::runtime
