// GGUF architecture "qwen3": Qwen3 dense models. Llama's layer with an RMS norm over each Q and
// K head before RoPE (attn_q_norm / attn_k_norm, f32 [head_dim]), NeoX RoPE, no biases; heads
// are attention.key_length wide, not d_model / n_heads.
#include "arch/architecture.h"
#include "arch/blocks.h"

namespace halyard::runtime {

const Architecture& qwen3_architecture() {
  static const NeoxPreNormArchitecture a("qwen3", AttentionOptions{.biases = false, .qk_norm = true});
  return a;
}

}  // namespace halyard::runtime
