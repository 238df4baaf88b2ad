// GGUF architecture "qwen2": Qwen2 and Qwen2.5. Llama's layer with biases on the Q, K and V
// projections and NeoX (half-split) RoPE.
#include "arch/architecture.h"
#include "arch/blocks.h"

namespace halyard::runtime {
namespace {

class Qwen2 final : public Architecture {
 public:
  std::string_view name() const override { return "qwen2"; }

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
      add_attention_tensors(c, l, /*biases=*/true, /*qk_norm=*/false, out);
      add_layer_norm(c, l, "ffn_norm.weight", out);
      add_ffn_tensors(c, l, out);
    }
    return out;
  }

  Result<TensorId> build_layer(GraphBlocks& b, int layer, TensorId x) const override {
    AttentionOptions o;
    o.biases = true;
    return pre_norm_layer(b, layer, x, o);
  }
};

}  // namespace

const Architecture& qwen2_architecture() {
  static const Qwen2 a;
  return a;
}

}  // namespace halyard::runtime
