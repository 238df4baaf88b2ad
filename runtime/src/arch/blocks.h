// The building blocks architectures assemble their layers from: the graph under construction
// (weights bound by name, the per-step inputs, the KV-cache pools) and the attention and FFN
// blocks with their variants (biases, per-head Q/K norms, sliding window, GEGLU or SwiGLU).
#pragma once

#include <string>

#include "arch/architecture.h"
#include "halyard/runtime/llama_graph.h"

namespace halyard::runtime {

class GraphBlocks {
 public:
  GraphBlocks(const Model& model, LlamaGraph& lg) : model_(model), c_(model.config()), lg_(lg), g_(lg.graph) {}

  const ModelConfig& config() const { return c_; }
  Graph& graph() { return g_; }
  LlamaGraph& plan() { return lg_; }

  // The model weight `name` as a graph tensor (each bound once per use, like the builder did).
  Result<TensorId> weight(const std::string& name);
  // RMS_NORM of x with weight `name`; group > 0 normalizes each run of `group` elements (per head).
  Result<TensorId> rms_norm(TensorId x, const std::string& name, const std::string& label, int group = 0);
  // MATMUL by weight `name`, plus the row-broadcast bias `bias` when it is not empty.
  Result<TensorId> linear(TensorId x, const std::string& name, const std::string& label, const std::string& bias = "");
  Result<TensorId> add(TensorId a, TensorId b, const std::string& label);

 private:
  const Model& model_;
  const ModelConfig& c_;
  LlamaGraph& lg_;
  Graph& g_;
};

struct AttentionOptions {
  bool biases = false;   // attn_q/k/v.bias (Qwen2)
  bool qk_norm = false;  // attn_q_norm / attn_k_norm over each head before RoPE (Qwen3, Gemma 3)
};

// Self-attention of layer `layer` on the normed input h: Q/K/V projections, RoPE (the layer's base,
// rope_freqs when the model has them), paged ATTENTION (the layer's sliding window), attn_output.
Result<TensorId> attention_block(GraphBlocks& b, int layer, TensorId h, const AttentionOptions& options);
// The gated FFN of layer `layer` on the normed input h: down(act(gate h) * up h), act being
// OpKind::kSwiglu or OpKind::kGeglu.
Result<TensorId> ffn_block(GraphBlocks& b, int layer, TensorId h, OpKind activation);
// The pre-norm layer of Llama, Qwen2 and Qwen3: x + attn(norm x), then + ffn(norm x).
Result<TensorId> pre_norm_layer(GraphBlocks& b, int layer, TensorId x, const AttentionOptions& options);
// The tensors pre_norm_layer reads for layer `layer`: attn_norm, the attention projections (with
// the options' biases or Q/K norms), ffn_norm, the FFN.
void add_pre_norm_layer_tensors(const ModelConfig& c, int layer, const AttentionOptions& options,
                                std::vector<TensorSpec>& out);

// An architecture of pre-norm layers with NeoX RoPE that differs from the others only in its
// attention options: Qwen2 (Q/K/V biases) and Qwen3 (per-head Q/K norms) are one each.
class NeoxPreNormArchitecture final : public Architecture {
 public:
  NeoxPreNormArchitecture(std::string_view name, AttentionOptions options) : name_(name), options_(options) {}
  std::string_view name() const override { return name_; }
  Status configure(const GgufFile& f, ModelConfig& c) const override;
  std::vector<TensorSpec> tensors(const ModelConfig& c) const override;
  Result<TensorId> build_layer(GraphBlocks& b, int layer, TensorId x) const override;

 private:
  std::string_view name_;
  AttentionOptions options_;
};

std::string layer_prefix(int layer);

}  // namespace halyard::runtime
