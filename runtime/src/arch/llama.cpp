// GGUF architecture "llama": Llama 2/3/3.1/3.2, SmolLM, Mistral and Mistral-Nemo files (whose
// heads may be wider or narrower than d_model / n_heads: attention.key_length). Pre-norm layers,
// SwiGLU, adjacent-pair RoPE, with Llama 3.1's rope_freqs.weight frequency factors when present.
#include <spdlog/spdlog.h>

#include "arch/architecture.h"
#include "arch/blocks.h"

namespace halyard::runtime {
namespace {

class Llama final : public Architecture {
 public:
  std::string_view name() const override { return "llama"; }

  Status configure(const GgufFile& f, ModelConfig& c) const override {
    HALYARD_RETURN_IF_ERROR(read_common_config(f, c));
    c.rope_layout = RopeLayout::kNormal;
    c.rope_freqs = f.find_tensor("rope_freqs.weight") != nullptr;
    // With rope_freqs (Llama 3.1's scaling baked into per-pair factors) the scaling keys only
    // describe the factors; without them, the scaling is not applied.
    if (!c.rope_freqs && (f.find("llama.rope.scaling.type") || f.find("llama.rope.scaling.factor"))) {
      spdlog::warn("model asks for RoPE scaling, which Halyard does not implement yet; long contexts will be off");
    }
    return Status::ok();
  }

  std::vector<TensorSpec> tensors(const ModelConfig& c) const override {
    std::vector<TensorSpec> out;
    add_io_tensors(c, out);
    if (c.rope_freqs)
      out.push_back({"rope_freqs.weight", {c.rope_dims / 2, 1}, TensorSpec::Kind::kVector});
    for (int l = 0; l < c.n_layers; ++l)
      add_pre_norm_layer_tensors(c, l, AttentionOptions{}, out);
    return out;
  }

  Result<TensorId> build_layer(GraphBlocks& b, int layer, TensorId x) const override {
    return pre_norm_layer(b, layer, x, AttentionOptions{});
  }
};

}  // namespace

const Architecture& llama_architecture() {
  static const Llama a;
  return a;
}

}  // namespace halyard::runtime
