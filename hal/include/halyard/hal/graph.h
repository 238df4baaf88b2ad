// The graph IR: tensors and a topologically ordered list of op nodes. Built by the runtime's
// model builder, compiled once by a Device into an Executable and replayed with new bindings.
// Per-step values (token ids, positions, sequence slots) are inputs, so a graph stays fixed.
// Thread safety: a Graph is a value; build it on one thread, then read it from any.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "halyard/hal/ops.h"
#include "halyard/hal/status.h"
#include "halyard/hal/tensor.h"

namespace halyard {

using TensorId = std::int32_t;

enum class TensorRole : std::uint8_t {
  kWeight,        // read-only, bound by the caller (uploaded once)
  kInput,         // small per-step values, bound by the caller
  kState,         // persistent read-write memory bound by the caller (the KV cache)
  kIntermediate,  // owned by the executable
  kOutput,        // written by the graph, bound by the caller
};

struct GraphTensor {
  std::string name;
  TensorDesc desc;
  TensorRole role = TensorRole::kIntermediate;
};

struct GraphNode {
  OpKind op;
  std::vector<TensorId> inputs;
  TensorId output;
  OpParams params;
};

class Graph {
 public:
  TensorId add_tensor(std::string name, const TensorDesc& desc, TensorRole role);
  // Appends a node whose output is a new intermediate tensor shaped by infer_output.
  Result<TensorId> add_op(OpKind op, std::vector<TensorId> inputs, const OpParams& params = {}, std::string name = {});
  // Turns an intermediate into a graph output (the caller binds a buffer for it).
  void mark_output(TensorId id) { tensors_[static_cast<std::size_t>(id)].role = TensorRole::kOutput; }

  const std::vector<GraphTensor>& tensors() const { return tensors_; }
  const std::vector<GraphNode>& nodes() const { return nodes_; }
  const GraphTensor& tensor(TensorId id) const { return tensors_.at(static_cast<std::size_t>(id)); }
  // Every node input exists and is defined before use; every shape checks out.
  Status validate() const;

 private:
  std::vector<GraphTensor> tensors_;
  std::vector<GraphNode> nodes_;
};

}  // namespace halyard
