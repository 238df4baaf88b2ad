// A model of one of the architectures in runtime/src/arch/ loaded from GGUF onto one device: its
// hyper-parameters, tokenizer, chat template and weights (uploaded once, or used in place from the
// mapped file). Graph building lives in llama_graph.h; running in session.h. Ownership: the Model
// owns its Device, weight Buffers and the mapped file they may point into; Sessions borrow the
// Model and must not outlive it. Thread safety: immutable after load.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "halyard/hal/backend_options.h"
#include "halyard/hal/device.h"
#include "halyard/hal/registry.h"
#include "halyard/runtime/chat_template.h"
#include "halyard/runtime/gguf.h"
#include "halyard/runtime/tokenizer.h"

namespace halyard::runtime {

// The hyper-parameters of one model, read from GGUF by its architecture (runtime/src/arch/: one
// file per GGUF general.architecture). The common fields mean the same for every architecture;
// the rest say which variant of a block the architecture's layers use.
struct ModelConfig {
  std::string architecture;
  int n_layers = 0;
  int d_model = 0;
  int d_ff = 0;
  int n_heads = 0;
  int n_kv_heads = 0;
  int head_dim = 0;  // attention.key_length (= value_length), else d_model / n_heads
  int vocab_size = 0;
  int context_train = 0;
  int rope_dims = 0;
  float rope_base = 10000.f;
  float rms_eps = 1e-5f;
  RopeLayout rope_layout = RopeLayout::kNormal;
  bool tied_output = false;  // output projection reuses token_embd.weight
  // Llama 3.1: rope_freqs.weight, f32 [rope_dims / 2], divides each pair's frequency.
  bool rope_freqs = false;
  float embed_scale = 1.f;      // EMBED's scale (Gemma: sqrt(d_model))
  float attention_scale = 0.f;  // ATTENTION's; 0 means 1/sqrt(head_dim)
  // Sliding-window attention (Gemma 3): window > 0 and, per layer, whether the layer is local
  // (windowed, rope_base_local) or global (full context, rope_base). Empty: every layer global.
  int sliding_window = 0;
  float rope_base_local = 10000.f;
  std::vector<bool> local_layers;

  int q_dim() const { return head_dim * n_heads; }
  int kv_dim() const { return head_dim * n_kv_heads; }
  bool is_local(int layer) const {
    return sliding_window > 0 && static_cast<std::size_t>(layer) < local_layers.size() && local_layers[layer];
  }

  static Result<ModelConfig> from_gguf(const GgufFile& file);
};
// The name before more architectures than Llama's were read; kept for existing callers.
using LlamaConfig = ModelConfig;

struct ModelOptions {
  std::string device = "auto";
  int context_length = 0;  // 0: min(the model's training context, 4096)
  int max_sequences = 1;   // KV-cache slots
  int threads = 0;         // CPU threads for host backends; 0: the backend's default
  // Backend options ("cpu.kernels" = "avx2", ...): passed to the device as DeviceOptions'
  // backend_options; the registry adds their HALYARD_* variables and the backend checks them.
  std::vector<OptionSetting> backend_options;
  // The KV cache's element type: F16 (half the memory and bandwidth of F32, rounded to nearest
  // even) or F32 (the exact reference).
  DType kv_dtype = DType::kF16;
  TokenizerOptions tokenizer;  // e.g. force_gpt2_split for an unknown tokenizer.ggml.pre
  // On a device that reads host memory in place (ref, cpu), weights are used straight from the
  // memory-mapped file instead of copied into device buffers: a load then holds the file's pages
  // once (shared with the page cache) instead of twice. false copies them, as GPUs always do
  // (llama.cpp's --no-mmap): for a file that may change while loaded, or to measure the copy.
  bool map_weights = true;
};

struct Weight {
  TensorDesc desc;
  std::unique_ptr<Buffer> buffer;
};

class Model {
 public:
  static Result<std::unique_ptr<Model>> load(const std::string& path, const ModelOptions& options,
                                             BackendRegistry& registry);

  const ModelConfig& config() const { return config_; }
  const Tokenizer& tokenizer() const { return *tokenizer_; }
  const ChatTemplate& chat_template() const { return chat_template_; }
  // Non-empty when the file's template cannot be rendered (or there is none and the builtin
  // format is a guess), so a builtin format stands in for it.
  const std::string& chat_template_warning() const { return chat_template_warning_; }
  Device& device() { return *device_; }
  const std::string& device_uri() const { return device_uri_; }
  const DeviceInfo& device_info() const { return device_->info(); }
  int context_length() const { return context_length_; }
  int max_sequences() const { return max_sequences_; }
  DType kv_dtype() const { return kv_dtype_; }
  const std::string& name() const { return name_; }
  std::size_t weight_bytes() const { return weight_bytes_; }
  // The part of weight_bytes() used in place from the mapped file (ModelOptions::map_weights);
  // the rest was copied into device buffers. 0 on devices that cannot read host memory.
  std::size_t mapped_weight_bytes() const { return mapped_weight_bytes_; }
  std::uint64_t parameter_count() const { return parameter_count_; }
  // A 64-bit name of the weights, computed once at load: FNV-1a over the architecture config and,
  // per tensor the graph uses, its name, dtype, shape and first and last 4 KiB (model.cpp says
  // why not every byte). The same file gives the same fingerprint on every device, context
  // length and KV dtype; a saved sequence state loads only into a model with the same one.
  std::uint64_t fingerprint() const { return fingerprint_; }
  // nullptr when the model has no tensor of that name.
  const Weight* weight(const std::string& name) const;

 private:
  Model() = default;
  ModelConfig config_;
  // Declared before device_ and weights_, so destroyed after them: weight buffers may point into
  // its mapping (Device::wrap_host).
  std::unique_ptr<GgufFile> file_;
  std::unique_ptr<Tokenizer> tokenizer_;
  ChatTemplate chat_template_;
  std::string chat_template_warning_;
  std::unique_ptr<Device> device_;
  std::string device_uri_;
  std::map<std::string, Weight, std::less<>> weights_;
  int context_length_ = 0;
  int max_sequences_ = 1;
  DType kv_dtype_ = DType::kF16;
  std::string name_;
  std::size_t weight_bytes_ = 0;
  std::size_t mapped_weight_bytes_ = 0;
  std::uint64_t parameter_count_ = 0;
  std::uint64_t fingerprint_ = 0;
};

}  // namespace halyard::runtime
