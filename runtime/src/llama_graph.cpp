#include "halyard/runtime/llama_graph.h"

namespace halyard::runtime {

Result<LlamaGraph> build_llama_graph(const Model& model, int n_tokens, int n_outputs, const KvLayout& kv,
                                     StepOutput output) {
  const LlamaConfig& c = model.config();
  if (n_tokens < 1 || n_outputs < 1 || n_outputs > n_tokens)
    return invalid_argument("graph needs 1 <= outputs <= tokens");
  if (kv.n_blocks < 1 || kv.max_blocks_per_sequence < 1 || kv.n_sequences < 1 || kv.block_size < 1)
    return invalid_argument("graph needs a KV cache of at least one block, sequence and position");
  LlamaGraph lg;
  lg.n_tokens = n_tokens;
  lg.n_outputs = n_outputs;
  lg.output = output;
  Graph& g = lg.graph;
  auto weight = [&](const std::string& name) -> Result<TensorId> {
    const Weight* w = model.weight(name);
    if (!w)
      return internal_error("weight '" + name + "' was not loaded");
    const TensorId id = g.add_tensor(name, w->desc, TensorRole::kWeight);
    lg.weights.emplace_back(id, name);
    return id;
  };
  lg.token_ids = g.add_tensor("token_ids", TensorDesc::make(DType::kI32, n_tokens), TensorRole::kInput);
  lg.positions = g.add_tensor("positions", TensorDesc::make(DType::kI32, n_tokens), TensorRole::kInput);
  lg.slots = g.add_tensor("slots", TensorDesc::make(DType::kI32, n_tokens), TensorRole::kInput);
  lg.out_rows = g.add_tensor("out_rows", TensorDesc::make(DType::kI32, n_outputs), TensorRole::kInput);

  const std::int64_t kv_dim = std::int64_t{c.head_dim} * c.n_kv_heads;
  lg.block_table = g.add_tensor(
      "block_table", TensorDesc::make(DType::kI32, kv.max_blocks_per_sequence, kv.n_sequences), TensorRole::kInput);
  const TensorDesc cache_desc = TensorDesc::make(kv.dtype, kv_dim, kv.block_size, kv.n_blocks);

  OpParams norm;
  norm.eps = c.rms_eps;
  OpParams rope;
  rope.head_dim = c.head_dim;
  rope.rope_dims = c.rope_dims;
  rope.rope_base = c.rope_base;
  rope.rope_layout = c.rope_layout;
  OpParams attn;
  attn.head_dim = c.head_dim;
  attn.n_heads = c.n_heads;
  attn.n_kv_heads = c.n_kv_heads;

  HALYARD_ASSIGN_OR_RETURN(TensorId embd, weight("token_embd.weight"));
  HALYARD_ASSIGN_OR_RETURN(TensorId x, g.add_op(OpKind::kEmbed, {embd, lg.token_ids}, {}, "embed"));
  for (int l = 0; l < c.n_layers; ++l) {
    const std::string p = "blk." + std::to_string(l) + ".";
    auto w = [&](const char* n) { return weight(p + n); };
    lg.k_cache.push_back(g.add_tensor(p + "k_cache", cache_desc, TensorRole::kState));
    lg.v_cache.push_back(g.add_tensor(p + "v_cache", cache_desc, TensorRole::kState));

    HALYARD_ASSIGN_OR_RETURN(TensorId attn_norm, w("attn_norm.weight"));
    HALYARD_ASSIGN_OR_RETURN(TensorId h, g.add_op(OpKind::kRmsNorm, {x, attn_norm}, norm, p + "attn_in"));
    HALYARD_ASSIGN_OR_RETURN(TensorId wq, w("attn_q.weight"));
    HALYARD_ASSIGN_OR_RETURN(TensorId wk, w("attn_k.weight"));
    HALYARD_ASSIGN_OR_RETURN(TensorId wv, w("attn_v.weight"));
    HALYARD_ASSIGN_OR_RETURN(TensorId q, g.add_op(OpKind::kMatmul, {wq, h}, {}, p + "q"));
    HALYARD_ASSIGN_OR_RETURN(TensorId k, g.add_op(OpKind::kMatmul, {wk, h}, {}, p + "k"));
    HALYARD_ASSIGN_OR_RETURN(TensorId v, g.add_op(OpKind::kMatmul, {wv, h}, {}, p + "v"));
    HALYARD_ASSIGN_OR_RETURN(TensorId q_rot, g.add_op(OpKind::kRope, {q, lg.positions}, rope, p + "q_rope"));
    HALYARD_ASSIGN_OR_RETURN(TensorId k_rot, g.add_op(OpKind::kRope, {k, lg.positions}, rope, p + "k_rope"));
    HALYARD_ASSIGN_OR_RETURN(TensorId a, g.add_op(OpKind::kAttention,
                                                  {q_rot, k_rot, v, lg.k_cache.back(), lg.v_cache.back(), lg.positions,
                                                   lg.slots, lg.block_table},
                                                  attn, p + "attention"));
    HALYARD_ASSIGN_OR_RETURN(TensorId wo, w("attn_output.weight"));
    HALYARD_ASSIGN_OR_RETURN(TensorId o, g.add_op(OpKind::kMatmul, {wo, a}, {}, p + "attn_out"));
    HALYARD_ASSIGN_OR_RETURN(x, g.add_op(OpKind::kAdd, {x, o}, {}, p + "attn_residual"));

    HALYARD_ASSIGN_OR_RETURN(TensorId ffn_norm, w("ffn_norm.weight"));
    HALYARD_ASSIGN_OR_RETURN(h, g.add_op(OpKind::kRmsNorm, {x, ffn_norm}, norm, p + "ffn_in"));
    HALYARD_ASSIGN_OR_RETURN(TensorId wg, w("ffn_gate.weight"));
    HALYARD_ASSIGN_OR_RETURN(TensorId wu, w("ffn_up.weight"));
    HALYARD_ASSIGN_OR_RETURN(TensorId wd, w("ffn_down.weight"));
    HALYARD_ASSIGN_OR_RETURN(TensorId gate, g.add_op(OpKind::kMatmul, {wg, h}, {}, p + "gate"));
    HALYARD_ASSIGN_OR_RETURN(TensorId up, g.add_op(OpKind::kMatmul, {wu, h}, {}, p + "up"));
    HALYARD_ASSIGN_OR_RETURN(TensorId act, g.add_op(OpKind::kSwiglu, {gate, up}, {}, p + "swiglu"));
    HALYARD_ASSIGN_OR_RETURN(TensorId down, g.add_op(OpKind::kMatmul, {wd, act}, {}, p + "ffn_out"));
    HALYARD_ASSIGN_OR_RETURN(x, g.add_op(OpKind::kAdd, {x, down}, {}, p + "ffn_residual"));
  }
  // Only the rows that need logits go through the (large) output projection.
  HALYARD_ASSIGN_OR_RETURN(TensorId picked, g.add_op(OpKind::kEmbed, {x, lg.out_rows}, {}, "output_rows"));
  HALYARD_ASSIGN_OR_RETURN(TensorId out_norm, weight("output_norm.weight"));
  HALYARD_ASSIGN_OR_RETURN(TensorId normed, g.add_op(OpKind::kRmsNorm, {picked, out_norm}, norm, "output_norm"));
  TensorId out_w = embd;
  if (!c.tied_output) {
    HALYARD_ASSIGN_OR_RETURN(out_w, weight("output.weight"));
  }
  HALYARD_ASSIGN_OR_RETURN(lg.logits, g.add_op(OpKind::kMatmul, {out_w, normed}, {}, "logits"));
  if (output == StepOutput::kArgmax) {
    HALYARD_ASSIGN_OR_RETURN(lg.argmax, g.add_op(OpKind::kArgmax, {lg.logits}, {}, "argmax"));
    g.mark_output(lg.argmax);
  } else {
    g.mark_output(lg.logits);
  }
  HALYARD_RETURN_IF_ERROR(g.validate());
  return lg;
}

}  // namespace halyard::runtime
