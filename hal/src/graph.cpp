#include "halyard/hal/graph.h"

namespace halyard {

TensorId Graph::add_tensor(std::string name, const TensorDesc& desc, TensorRole role) {
  tensors_.push_back(GraphTensor{std::move(name), desc, role});
  return static_cast<TensorId>(tensors_.size() - 1);
}

Result<TensorId> Graph::add_op(OpKind op, std::vector<TensorId> inputs, const OpParams& params, std::string name) {
  std::vector<TensorDesc> descs;
  descs.reserve(inputs.size());
  for (TensorId id : inputs) {
    if (id < 0 || static_cast<std::size_t>(id) >= tensors_.size()) {
      return invalid_argument(std::string(op_name(op)) + ": input tensor id " + std::to_string(id) + " does not exist");
    }
    descs.push_back(tensors_[static_cast<std::size_t>(id)].desc);
  }
  auto out = infer_output(op, descs, params);
  if (!out.is_ok()) {
    return Status(out.status().code(), out.status().message() + (name.empty() ? "" : " (building " + name + ")"));
  }
  const TensorId id =
      add_tensor(name.empty() ? std::string(op_name(op)) : std::move(name), out.value(), TensorRole::kIntermediate);
  nodes_.push_back(GraphNode{op, std::move(inputs), id, params});
  return id;
}

Status Graph::validate() const {
  std::vector<bool> defined(tensors_.size(), false);
  for (std::size_t i = 0; i < tensors_.size(); ++i) {
    const auto role = tensors_[i].role;
    defined[i] = role == TensorRole::kWeight || role == TensorRole::kInput || role == TensorRole::kState;
  }
  for (const auto& node : nodes_) {
    std::vector<TensorDesc> descs;
    for (TensorId id : node.inputs) {
      if (id < 0 || static_cast<std::size_t>(id) >= tensors_.size() || !defined[static_cast<std::size_t>(id)]) {
        return invalid_argument(std::string(op_name(node.op)) + ": input " + std::to_string(id) +
                                " is used before it is defined");
      }
      descs.push_back(tensors_[static_cast<std::size_t>(id)].desc);
    }
    HALYARD_ASSIGN_OR_RETURN(TensorDesc out, infer_output(node.op, descs, node.params));
    if (node.output < 0 || static_cast<std::size_t>(node.output) >= tensors_.size() ||
        tensors_[static_cast<std::size_t>(node.output)].desc != out) {
      return invalid_argument(std::string(op_name(node.op)) + ": output descriptor does not match its inputs");
    }
    defined[static_cast<std::size_t>(node.output)] = true;
  }
  return Status::ok();
}

}  // namespace halyard
