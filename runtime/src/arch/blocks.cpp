#include "arch/blocks.h"

namespace halyard::runtime {

std::string layer_prefix(int layer) {
  return "blk." + std::to_string(layer) + ".";
}

Result<TensorId> GraphBlocks::weight(const std::string& name) {
  const Weight* w = model_.weight(name);
  if (!w)
    return internal_error("weight '" + name + "' was not loaded");
  const TensorId id = g_.add_tensor(name, w->desc, TensorRole::kWeight);
  lg_.weights.emplace_back(id, name);
  return id;
}

Result<TensorId> GraphBlocks::rms_norm(TensorId x, const std::string& name, const std::string& label, int group) {
  OpParams p;
  p.eps = c_.rms_eps;
  p.norm_group = group;
  HALYARD_ASSIGN_OR_RETURN(TensorId w, weight(name));
  return g_.add_op(OpKind::kRmsNorm, {x, w}, p, label);
}

Result<TensorId> GraphBlocks::linear(TensorId x, const std::string& name, const std::string& label,
                                     const std::string& bias) {
  HALYARD_ASSIGN_OR_RETURN(TensorId w, weight(name));
  HALYARD_ASSIGN_OR_RETURN(TensorId y, g_.add_op(OpKind::kMatmul, {w, x}, {}, label));
  if (bias.empty())
    return y;
  HALYARD_ASSIGN_OR_RETURN(TensorId b, weight(bias));
  return g_.add_op(OpKind::kAdd, {y, b}, {}, label + "_bias");
}

Result<TensorId> GraphBlocks::add(TensorId a, TensorId b, const std::string& label) {
  return g_.add_op(OpKind::kAdd, {a, b}, {}, label);
}

Result<TensorId> attention_block(GraphBlocks& b, int layer, TensorId h, const AttentionOptions& options) {
  const ModelConfig& c = b.config();
  LlamaGraph& lg = b.plan();
  Graph& g = b.graph();
  const std::string p = layer_prefix(layer);
  const bool local = c.is_local(layer);

  auto project = [&](const char* which) {
    const std::string n = p + "attn_" + which;
    return b.linear(h, n + ".weight", p + which, options.biases ? n + ".bias" : "");
  };
  HALYARD_ASSIGN_OR_RETURN(TensorId q, project("q"));
  HALYARD_ASSIGN_OR_RETURN(TensorId k, project("k"));
  HALYARD_ASSIGN_OR_RETURN(TensorId v, project("v"));
  if (options.qk_norm) {
    HALYARD_ASSIGN_OR_RETURN(q, b.rms_norm(q, p + "attn_q_norm.weight", p + "q_norm", c.head_dim));
    HALYARD_ASSIGN_OR_RETURN(k, b.rms_norm(k, p + "attn_k_norm.weight", p + "k_norm", c.head_dim));
  }

  OpParams rope;
  rope.head_dim = c.head_dim;
  rope.rope_dims = c.rope_dims;
  rope.rope_base = local ? c.rope_base_local : c.rope_base;
  rope.rope_layout = c.rope_layout;
  std::vector<TensorId> q_in = {q, lg.positions}, k_in = {k, lg.positions};
  if (c.rope_freqs) {
    HALYARD_ASSIGN_OR_RETURN(TensorId factors, b.weight("rope_freqs.weight"));
    q_in.push_back(factors);
    k_in.push_back(factors);
  }
  HALYARD_ASSIGN_OR_RETURN(TensorId q_rot, g.add_op(OpKind::kRope, q_in, rope, p + "q_rope"));
  HALYARD_ASSIGN_OR_RETURN(TensorId k_rot, g.add_op(OpKind::kRope, k_in, rope, p + "k_rope"));

  OpParams attn;
  attn.head_dim = c.head_dim;
  attn.n_heads = c.n_heads;
  attn.n_kv_heads = c.n_kv_heads;
  attn.attention_scale = c.attention_scale;
  attn.sliding_window = local ? c.sliding_window : 0;
  HALYARD_ASSIGN_OR_RETURN(TensorId a, g.add_op(OpKind::kAttention,
                                                {q_rot, k_rot, v, lg.k_cache.at(layer), lg.v_cache.at(layer),
                                                 lg.positions, lg.slots, lg.block_table},
                                                attn, p + "attention"));
  return b.linear(a, p + "attn_output.weight", p + "attn_out");
}

Result<TensorId> ffn_block(GraphBlocks& b, int layer, TensorId h, OpKind activation) {
  const std::string p = layer_prefix(layer);
  HALYARD_ASSIGN_OR_RETURN(TensorId gate, b.linear(h, p + "ffn_gate.weight", p + "gate"));
  HALYARD_ASSIGN_OR_RETURN(TensorId up, b.linear(h, p + "ffn_up.weight", p + "up"));
  HALYARD_ASSIGN_OR_RETURN(TensorId act, b.graph().add_op(activation, {gate, up}, {}, p + "ffn_act"));
  return b.linear(act, p + "ffn_down.weight", p + "ffn_out");
}

Result<TensorId> pre_norm_layer(GraphBlocks& b, int layer, TensorId x, const AttentionOptions& options) {
  const std::string p = layer_prefix(layer);
  HALYARD_ASSIGN_OR_RETURN(TensorId h, b.rms_norm(x, p + "attn_norm.weight", p + "attn_in"));
  HALYARD_ASSIGN_OR_RETURN(TensorId o, attention_block(b, layer, h, options));
  HALYARD_ASSIGN_OR_RETURN(x, b.add(x, o, p + "attn_residual"));
  HALYARD_ASSIGN_OR_RETURN(h, b.rms_norm(x, p + "ffn_norm.weight", p + "ffn_in"));
  HALYARD_ASSIGN_OR_RETURN(TensorId down, ffn_block(b, layer, h, OpKind::kSwiglu));
  return b.add(x, down, p + "ffn_residual");
}

void add_pre_norm_layer_tensors(const ModelConfig& c, int layer, const AttentionOptions& options,
                                std::vector<TensorSpec>& out) {
  add_layer_norm(c, layer, "attn_norm.weight", out);
  add_attention_tensors(c, layer, options.biases, options.qk_norm, out);
  add_layer_norm(c, layer, "ffn_norm.weight", out);
  add_ffn_tensors(c, layer, out);
}

Status NeoxPreNormArchitecture::configure(const GgufFile& f, ModelConfig& c) const {
  HALYARD_RETURN_IF_ERROR(read_common_config(f, c));
  c.rope_layout = RopeLayout::kNeox;
  return Status::ok();
}

std::vector<TensorSpec> NeoxPreNormArchitecture::tensors(const ModelConfig& c) const {
  std::vector<TensorSpec> out;
  add_io_tensors(c, out);
  for (int l = 0; l < c.n_layers; ++l)
    add_pre_norm_layer_tensors(c, l, options_, out);
  return out;
}

Result<TensorId> NeoxPreNormArchitecture::build_layer(GraphBlocks& b, int layer, TensorId x) const {
  return pre_norm_layer(b, layer, x, options_);
}

}  // namespace halyard::runtime
