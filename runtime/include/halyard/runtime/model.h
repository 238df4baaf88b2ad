// A Llama-family model loaded from GGUF onto one device: its hyper-parameters, tokenizer, chat
// template and weights (uploaded once). Graph building lives in llama_graph.h; running in session.h.
// Ownership: the Model owns its Device and weight Buffers; Sessions borrow the Model and must not
// outlive it. Thread safety: immutable after load.
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

struct LlamaConfig {
  std::string architecture;
  int n_layers = 0;
  int d_model = 0;
  int d_ff = 0;
  int n_heads = 0;
  int n_kv_heads = 0;
  int head_dim = 0;
  int vocab_size = 0;
  int context_train = 0;
  int rope_dims = 0;
  float rope_base = 10000.f;
  float rms_eps = 1e-5f;
  RopeLayout rope_layout = RopeLayout::kNormal;
  bool tied_output = false;  // output projection reuses token_embd.weight

  static Result<LlamaConfig> from_gguf(const GgufFile& file);
};

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
};

struct Weight {
  TensorDesc desc;
  std::unique_ptr<Buffer> buffer;
};

class Model {
 public:
  static Result<std::unique_ptr<Model>> load(const std::string& path, const ModelOptions& options,
                                             BackendRegistry& registry);

  const LlamaConfig& config() const { return config_; }
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
  LlamaConfig config_;
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
  std::uint64_t parameter_count_ = 0;
  std::uint64_t fingerprint_ = 0;
};

}  // namespace halyard::runtime
