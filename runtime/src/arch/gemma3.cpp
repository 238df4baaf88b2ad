// GGUF architecture "gemma3": Gemma 3 text models (270M, 1B, 4B, ...). Against Llama's layer:
// embeddings scaled by sqrt(d_model); RMS norms both before and after attention and the FFN
// (attn_norm, post_attention_norm, ffn_norm, post_ffw_norm); per-head Q/K norms; GEGLU; NeoX
// RoPE; and local layers (a sliding window, rope base rope.freq_base_swa) between global ones.
// The GGUF converter already folds Gemma's (1 + w) into the norm weights, so they are used as is.
#include <cmath>

#include "arch/architecture.h"
#include "arch/blocks.h"

namespace halyard::runtime {
namespace {

// Gemma 3 has five local layers, then one global one; a file may say otherwise with
// attention.sliding_window_pattern (the period).
constexpr int kDefaultPattern = 6;

class Gemma3 final : public Architecture {
 public:
  std::string_view name() const override { return "gemma3"; }
  ChatFormat default_chat_format(const Tokenizer&) const override { return ChatFormat::kGemma; }

  Status configure(const GgufFile& f, ModelConfig& c) const override {
    HALYARD_RETURN_IF_ERROR(read_common_config(f, c));
    c.rope_layout = RopeLayout::kNeox;
    c.embed_scale = std::sqrt(static_cast<float>(c.d_model));
    if (f.find("gemma3.final_logit_softcapping"))
      return unimplemented("gemma3.final_logit_softcapping is not implemented");
    // Softmax scale 1/sqrt(head_dim), except Gemma 3 27B (62 layers), whose query_pre_attn_scalar
    // is d_model / n_heads; the GGUF does not carry the scalar, so (like llama.cpp) the layer
    // count tells.
    if (c.n_layers == 62)
      c.attention_scale = 1.f / std::sqrt(static_cast<float>(c.d_model / c.n_heads));
    const auto window = f.get_int("gemma3.attention.sliding_window");
    if (window && *window > 0) {
      if (*window > (1 << 24))
        return data_loss("gemma3.attention.sliding_window is out of range");
      c.sliding_window = static_cast<int>(*window);
      c.rope_base_local = static_cast<float>(f.get_float("gemma3.rope.freq_base_swa").value_or(10000.0));
      if (!(c.rope_base_local > 0.f))
        return data_loss("gemma3.rope.freq_base_swa must be positive");
      int pattern = kDefaultPattern;
      if (f.find("gemma3.attention.sliding_window_pattern")) {
        const auto v = f.get_int("gemma3.attention.sliding_window_pattern");
        if (!v || *v < 0 || *v > 4096)
          return unimplemented("gemma3.attention.sliding_window_pattern must be one integer in [0, 4096]");
        pattern = static_cast<int>(*v);
      }
      // Layer l is global when it closes a period (l % pattern == pattern - 1); 0: all local.
      c.local_layers.resize(static_cast<std::size_t>(c.n_layers));
      for (int l = 0; l < c.n_layers; ++l)
        c.local_layers[l] = pattern == 0 || l % pattern < pattern - 1;
    }
    return Status::ok();
  }

  std::vector<TensorSpec> tensors(const ModelConfig& c) const override {
    std::vector<TensorSpec> out;
    add_io_tensors(c, out);
    for (int l = 0; l < c.n_layers; ++l) {
      add_layer_norm(c, l, "attn_norm.weight", out);
      add_attention_tensors(c, l, /*biases=*/false, /*qk_norm=*/true, out);
      add_layer_norm(c, l, "post_attention_norm.weight", out);
      add_layer_norm(c, l, "ffn_norm.weight", out);
      add_ffn_tensors(c, l, out);
      add_layer_norm(c, l, "post_ffw_norm.weight", out);
    }
    return out;
  }

  Result<TensorId> build_layer(GraphBlocks& b, int layer, TensorId x) const override {
    const std::string p = layer_prefix(layer);
    AttentionOptions o;
    o.qk_norm = true;
    HALYARD_ASSIGN_OR_RETURN(TensorId h, b.rms_norm(x, p + "attn_norm.weight", p + "attn_in"));
    HALYARD_ASSIGN_OR_RETURN(TensorId a, attention_block(b, layer, h, o));
    HALYARD_ASSIGN_OR_RETURN(a, b.rms_norm(a, p + "post_attention_norm.weight", p + "attn_post"));
    HALYARD_ASSIGN_OR_RETURN(x, b.add(x, a, p + "attn_residual"));
    HALYARD_ASSIGN_OR_RETURN(h, b.rms_norm(x, p + "ffn_norm.weight", p + "ffn_in"));
    HALYARD_ASSIGN_OR_RETURN(TensorId down, ffn_block(b, layer, h, OpKind::kGeglu));
    HALYARD_ASSIGN_OR_RETURN(down, b.rms_norm(down, p + "post_ffw_norm.weight", p + "ffn_post"));
    return b.add(x, down, p + "ffn_residual");
  }
};

}  // namespace

const Architecture& gemma3_architecture() {
  static const Gemma3 a;
  return a;
}

}  // namespace halyard::runtime
