#include "halyard/runtime/llama_graph.h"

#include "arch/architecture.h"
#include "arch/blocks.h"

namespace halyard::runtime {

Result<LlamaGraph> build_llama_graph(const Model& model, int n_tokens, int n_outputs, const KvLayout& kv,
                                     StepOutput output) {
  const ModelConfig& c = model.config();
  if (n_tokens < 1 || n_outputs < 1 || n_outputs > n_tokens)
    return invalid_argument("graph needs 1 <= outputs <= tokens");
  if (kv.n_blocks < 1 || kv.max_blocks_per_sequence < 1 || kv.n_sequences < 1 || kv.block_size < 1)
    return invalid_argument("graph needs a KV cache of at least one block, sequence and position");
  LlamaGraph lg;
  lg.n_tokens = n_tokens;
  lg.n_outputs = n_outputs;
  lg.output = output;
  Graph& g = lg.graph;
  lg.token_ids = g.add_tensor("token_ids", TensorDesc::make(DType::kI32, n_tokens), TensorRole::kInput);
  lg.positions = g.add_tensor("positions", TensorDesc::make(DType::kI32, n_tokens), TensorRole::kInput);
  lg.slots = g.add_tensor("slots", TensorDesc::make(DType::kI32, n_tokens), TensorRole::kInput);
  lg.out_rows = g.add_tensor("out_rows", TensorDesc::make(DType::kI32, n_outputs), TensorRole::kInput);

  const std::int64_t kv_dim = c.kv_dim();
  lg.block_table = g.add_tensor(
      "block_table", TensorDesc::make(DType::kI32, kv.max_blocks_per_sequence, kv.n_sequences), TensorRole::kInput);
  const TensorDesc cache_desc = TensorDesc::make(kv.dtype, kv_dim, kv.block_size, kv.n_blocks);

  const Architecture* arch = find_architecture(c.architecture);
  if (!arch)
    return internal_error("no graph for architecture '" + c.architecture + "'");
  GraphBlocks b(model, lg);
  OpParams embed;
  embed.scale = c.embed_scale;
  HALYARD_ASSIGN_OR_RETURN(TensorId embd, b.weight("token_embd.weight"));
  HALYARD_ASSIGN_OR_RETURN(TensorId x, g.add_op(OpKind::kEmbed, {embd, lg.token_ids}, embed, "embed"));
  for (int l = 0; l < c.n_layers; ++l) {
    const std::string p = layer_prefix(l);
    lg.k_cache.push_back(g.add_tensor(p + "k_cache", cache_desc, TensorRole::kState));
    lg.v_cache.push_back(g.add_tensor(p + "v_cache", cache_desc, TensorRole::kState));
    HALYARD_ASSIGN_OR_RETURN(x, arch->build_layer(b, l, x));
  }
  // Only the rows that need logits go through the (large) output projection.
  HALYARD_ASSIGN_OR_RETURN(TensorId picked, g.add_op(OpKind::kEmbed, {x, lg.out_rows}, {}, "output_rows"));
  HALYARD_ASSIGN_OR_RETURN(TensorId normed, b.rms_norm(picked, "output_norm.weight", "output_norm"));
  TensorId out_w = embd;
  if (!c.tied_output) {
    HALYARD_ASSIGN_OR_RETURN(out_w, b.weight("output.weight"));
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
