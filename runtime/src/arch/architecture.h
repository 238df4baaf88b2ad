// One GGUF architecture (general.architecture): the metadata keys it reads, the tensors it needs
// with their shapes, and its transformer layer built from the shared blocks (blocks.h). Each
// lives in its own file (llama.cpp, qwen2.cpp, ...) and is listed once in architecture.cpp's
// registry, so the loader and the graph builder never branch on an architecture's name.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "halyard/runtime/chat_template.h"
#include "halyard/runtime/model.h"

namespace halyard::runtime {

class GraphBlocks;

struct TensorSpec {
  enum class Kind : std::uint8_t {
    kMatrix,  // EMBED or MATMUL weight: any weight dtype the device supports
    kVector,  // a norm weight, a bias, frequency factors: read as f32 by RMS_NORM, ADD, ROPE
  };
  std::string name;
  std::array<std::int64_t, 2> shape;  // [ne0, ne1]; a vector is [n, 1]
  Kind kind = Kind::kMatrix;
};

class Architecture {
 public:
  virtual ~Architecture() = default;
  virtual std::string_view name() const = 0;
  // Reads the architecture's hyper-parameters into `c` (architecture, vocab_size and tied_output
  // are already set); bad or unsupported values are a clear error.
  virtual Status configure(const GgufFile& file, ModelConfig& c) const = 0;
  // Every tensor the graph uses, with its shape, in a stable order (it feeds the fingerprint).
  virtual std::vector<TensorSpec> tensors(const ModelConfig& c) const = 0;
  // Layer `layer` of the forward pass: the residual stream `x` in, the layer's output out.
  virtual Result<TensorId> build_layer(GraphBlocks& b, int layer, TensorId x) const = 0;
  // The builtin chat format for a file without a chat template: by default the one the
  // vocabulary's markers name (Llama-3's <|start_header_id|>, else ChatML, which llama files such
  // as SmolLM2 and Qwen's use); an architecture with a format of its own says so.
  virtual ChatFormat default_chat_format(const Tokenizer& tok) const {
    return tok.find("<|start_header_id|>") ? ChatFormat::kLlama3 : ChatFormat::kChatML;
  }
};

// nullptr for an architecture Halyard does not run.
const Architecture* find_architecture(std::string_view name);
// "llama, qwen2, ..." for messages.
std::string architecture_names();

// The registry's entries, one per file.
const Architecture& llama_architecture();
const Architecture& qwen2_architecture();
const Architecture& qwen3_architecture();
const Architecture& gemma3_architecture();

// Keys every architecture here reads the same way, under "<architecture>.": block_count,
// embedding_length, feed_forward_length, attention.head_count(_kv), context_length,
// attention.key_length / value_length (head_dim; they must agree), rope.dimension_count,
// rope.freq_base, attention.layer_norm_rms_epsilon.
Status read_common_config(const GgufFile& file, ModelConfig& c);

// The tensors every architecture here shares: token_embd, output_norm, output (unless tied).
void add_io_tensors(const ModelConfig& c, std::vector<TensorSpec>& out);
// blk.<l>.attn_q/k/v/output.weight (and attn_q/k/v.bias with biases, attn_q/k_norm.weight with
// per-head norms).
void add_attention_tensors(const ModelConfig& c, int layer, bool biases, bool qk_norm, std::vector<TensorSpec>& out);
// blk.<l>.ffn_gate/up/down.weight.
void add_ffn_tensors(const ModelConfig& c, int layer, std::vector<TensorSpec>& out);
// blk.<l>.<name>, f32 [d_model].
void add_layer_norm(const ModelConfig& c, int layer, const std::string& name, std::vector<TensorSpec>& out);

}  // namespace halyard::runtime
