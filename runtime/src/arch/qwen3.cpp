// GGUF architecture "qwen3": Qwen3 dense models. Llama's layer with an RMS norm over each Q and
// K head before RoPE (attn_q_norm / attn_k_norm, f32 [head_dim]), NeoX RoPE, no biases; heads
// are attention.key_length wide, not d_model / n_heads.
#include "arch/architecture.h"
#include "arch/blocks.h"

namespace halyard::runtime {
namespace {

class Qwen3 final : public Architecture {
 public:
  std::string_view name() const override { return "qwen3"; }

  Status configure(const GgufFile& f, ModelConfig& c) const override {
    HALYARD_RETURN_IF_ERROR(read_common_config(f, c));
    c.rope_layout = RopeLayout::kNeox;
    return Status::ok();
  }

  std::vector<TensorSpec> tensors(const ModelConfig& c) const override {
    std::vector<TensorSpec> out;
    add_io_tensors(c, out);
    for (int l = 0; l < c.n_layers; ++l) {
      add_layer_norm(c, l, "attn_norm.weight", out);
      add_attention_tensors(c, l, /*biases=*/false, /*qk_norm=*/true, out);
      add_layer_norm(c, l, "ffn_norm.weight", out);
      add_ffn_tensors(c, l, out);
    }
    return out;
  }

  Result<TensorId> build_layer(GraphBlocks& b, int layer, TensorId x) const override {
    AttentionOptions o;
    o.qk_norm = true;
    return pre_norm_layer(b, layer, x, o);
  }
};

}  // namespace

const Architecture& qwen3_architecture() {
  static const Qwen3 a;
  return a;
}

}  // namespace halyard::runtime
