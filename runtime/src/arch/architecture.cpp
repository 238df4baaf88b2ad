#include "arch/architecture.h"

#include <array>

namespace halyard::runtime {
namespace {

Result<int> require_int(const GgufFile& f, const std::string& key, std::int64_t lo, std::int64_t hi) {
  const auto v = f.get_int(key);
  if (!v)
    return data_loss("model metadata '" + key + "' is missing or not an integer");
  if (*v < lo || *v > hi)
    return data_loss("model metadata '" + key + "' = " + std::to_string(*v) + " is out of range");
  return static_cast<int>(*v);
}

// The registry: adding an architecture is one file and one line here.
const std::array<const Architecture*, 4>& registry() {
  static const std::array<const Architecture*, 4> all = {&llama_architecture(), &qwen2_architecture(),
                                                         &qwen3_architecture(), &gemma3_architecture()};
  return all;
}

}  // namespace

const Architecture* find_architecture(std::string_view name) {
  for (const Architecture* a : registry()) {
    if (a->name() == name)
      return a;
  }
  return nullptr;
}

std::string architecture_names() {
  std::string out;
  for (const Architecture* a : registry())
    out += (out.empty() ? "" : ", ") + std::string(a->name());
  return out;
}

Status read_common_config(const GgufFile& f, ModelConfig& c) {
  const std::string a = c.architecture + ".";
  HALYARD_ASSIGN_OR_RETURN(c.n_layers, require_int(f, a + "block_count", 1, 4096));
  HALYARD_ASSIGN_OR_RETURN(c.d_model, require_int(f, a + "embedding_length", 1, 1 << 20));
  HALYARD_ASSIGN_OR_RETURN(c.d_ff, require_int(f, a + "feed_forward_length", 1, 1 << 22));
  HALYARD_ASSIGN_OR_RETURN(c.n_heads, require_int(f, a + "attention.head_count", 1, 4096));
  c.n_kv_heads = c.n_heads;
  if (f.find(a + "attention.head_count_kv")) {
    HALYARD_ASSIGN_OR_RETURN(c.n_kv_heads, require_int(f, a + "attention.head_count_kv", 1, 4096));
  }
  HALYARD_ASSIGN_OR_RETURN(c.context_train, require_int(f, a + "context_length", 1, 1 << 24));
  if (c.n_heads % c.n_kv_heads != 0) {
    return data_loss("model heads do not divide: heads " + std::to_string(c.n_heads) + ", kv heads " +
                     std::to_string(c.n_kv_heads));
  }
  // The head size is its own key in files whose heads are not d_model / n_heads wide
  // (Mistral-Nemo, Qwen3, Gemma 3); older files leave it implied.
  if (f.find(a + "attention.key_length")) {
    HALYARD_ASSIGN_OR_RETURN(c.head_dim, require_int(f, a + "attention.key_length", 1, 1 << 16));
  } else if (c.d_model % c.n_heads != 0) {
    return data_loss("model heads do not divide: embedding " + std::to_string(c.d_model) + ", heads " +
                     std::to_string(c.n_heads) + ", and no attention.key_length");
  } else {
    c.head_dim = c.d_model / c.n_heads;
  }
  if (f.find(a + "attention.value_length")) {
    HALYARD_ASSIGN_OR_RETURN(const int value_length, require_int(f, a + "attention.value_length", 1, 1 << 16));
    // The KV cache and ATTENTION keep one head size for K and V.
    if (value_length != c.head_dim) {
      return unimplemented("attention.value_length " + std::to_string(value_length) + " differs from key_length " +
                           std::to_string(c.head_dim) + "; Halyard needs one head size for keys and values");
    }
  }
  if (std::int64_t{c.head_dim} * c.n_heads > (1 << 22))
    return data_loss("model attention width head_dim x heads is out of range");
  c.rope_dims = c.head_dim;
  if (f.find(a + "rope.dimension_count")) {
    HALYARD_ASSIGN_OR_RETURN(c.rope_dims, require_int(f, a + "rope.dimension_count", 2, c.head_dim));
  }
  if (c.rope_dims % 2 != 0)
    return data_loss("rope.dimension_count must be even, got " + std::to_string(c.rope_dims));
  c.rope_base = static_cast<float>(f.get_float(a + "rope.freq_base").value_or(10000.0));
  c.rms_eps = static_cast<float>(f.get_float(a + "attention.layer_norm_rms_epsilon").value_or(1e-5));
  if (!(c.rope_base > 0.f) || !(c.rms_eps > 0.f))
    return data_loss("rope.freq_base and the RMS epsilon must be positive");
  return Status::ok();
}

void add_io_tensors(const ModelConfig& c, std::vector<TensorSpec>& out) {
  const std::int64_t d = c.d_model;
  out.push_back({"token_embd.weight", {d, c.vocab_size}});
  out.push_back({"output_norm.weight", {d, 1}, TensorSpec::Kind::kVector});
  if (!c.tied_output)
    out.push_back({"output.weight", {d, c.vocab_size}});
}

void add_attention_tensors(const ModelConfig& c, int layer, bool biases, bool qk_norm, std::vector<TensorSpec>& out) {
  const std::string p = "blk." + std::to_string(layer) + ".";
  const std::int64_t d = c.d_model, q = c.q_dim(), kv = c.kv_dim();
  out.push_back({p + "attn_q.weight", {d, q}});
  out.push_back({p + "attn_k.weight", {d, kv}});
  out.push_back({p + "attn_v.weight", {d, kv}});
  if (biases) {
    out.push_back({p + "attn_q.bias", {q, 1}, TensorSpec::Kind::kVector});
    out.push_back({p + "attn_k.bias", {kv, 1}, TensorSpec::Kind::kVector});
    out.push_back({p + "attn_v.bias", {kv, 1}, TensorSpec::Kind::kVector});
  }
  if (qk_norm) {
    out.push_back({p + "attn_q_norm.weight", {c.head_dim, 1}, TensorSpec::Kind::kVector});
    out.push_back({p + "attn_k_norm.weight", {c.head_dim, 1}, TensorSpec::Kind::kVector});
  }
  out.push_back({p + "attn_output.weight", {q, d}});
}

void add_ffn_tensors(const ModelConfig& c, int layer, std::vector<TensorSpec>& out) {
  const std::string p = "blk." + std::to_string(layer) + ".";
  const std::int64_t d = c.d_model;
  out.push_back({p + "ffn_gate.weight", {d, c.d_ff}});
  out.push_back({p + "ffn_up.weight", {d, c.d_ff}});
  out.push_back({p + "ffn_down.weight", {c.d_ff, d}});
}

void add_layer_norm(const ModelConfig& c, int layer, const std::string& name, std::vector<TensorSpec>& out) {
  out.push_back({"blk." + std::to_string(layer) + "." + name, {c.d_model, 1}, TensorSpec::Kind::kVector});
}

}  // namespace halyard::runtime
