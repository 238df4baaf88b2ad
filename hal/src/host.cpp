#include "halyard/hal/host.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace halyard {

Result<std::unique_ptr<Buffer>> HostBuffer::create(std::size_t bytes) {
  const std::size_t rounded = (bytes + kAlignment - 1) / kAlignment * kAlignment;
  void* p = std::aligned_alloc(kAlignment, rounded ? rounded : kAlignment);
  if (!p)
    return resource_exhausted("cannot allocate " + std::to_string(bytes) + " bytes of host memory");
  return std::unique_ptr<Buffer>(new HostBuffer(static_cast<std::uint8_t*>(p), bytes));
}

HostBuffer::~HostBuffer() {
  std::free(data_);
}

Status HostBuffer::upload(std::size_t offset, const void* src, std::size_t size) {
  if (offset > size_ || size > size_ - offset)
    return out_of_range("upload past the end of a buffer");
  std::memcpy(data_ + offset, src, size);
  return Status::ok();
}

Status HostBuffer::download(std::size_t offset, void* dst, std::size_t size) const {
  if (offset > size_ || size > size_ - offset)
    return out_of_range("download past the end of a buffer");
  std::memcpy(dst, data_ + offset, size);
  return Status::ok();
}

IntermediatePlan plan_intermediates(const Graph& graph) {
  const auto& tensors = graph.tensors();
  const auto& nodes = graph.nodes();
  std::vector<std::size_t> last_use(tensors.size(), 0);
  for (std::size_t n = 0; n < nodes.size(); ++n) {
    for (TensorId id : nodes[n].inputs)
      last_use[static_cast<std::size_t>(id)] = n;
  }
  IntermediatePlan plan;
  plan.slot_of.assign(tensors.size(), -1);
  std::vector<int> free_slots;
  for (std::size_t n = 0; n < nodes.size(); ++n) {
    const auto out = static_cast<std::size_t>(nodes[n].output);
    if (tensors[out].role == TensorRole::kIntermediate) {
      const std::size_t bytes = tensors[out].desc.bytes();
      auto best = free_slots.end();
      for (auto it = free_slots.begin(); it != free_slots.end(); ++it) {
        const std::size_t have = plan.slot_bytes[static_cast<std::size_t>(*it)];
        if (have >= bytes && (best == free_slots.end() || have < plan.slot_bytes[static_cast<std::size_t>(*best)]))
          best = it;
      }
      if (best != free_slots.end()) {
        plan.slot_of[out] = *best;
        free_slots.erase(best);
      } else {
        plan.slot_of[out] = static_cast<int>(plan.slot_bytes.size());
        plan.slot_bytes.push_back(bytes);
      }
      // An output nobody reads is released right away (after this node).
      if (last_use[out] < n)
        last_use[out] = n;
    }
    std::vector<std::size_t> released;
    for (TensorId id : nodes[n].inputs)
      released.push_back(static_cast<std::size_t>(id));
    released.push_back(out);
    for (std::size_t id : released) {
      const int slot = plan.slot_of[id];
      if (tensors[id].role == TensorRole::kIntermediate && slot >= 0 && last_use[id] == n &&
          std::find(free_slots.begin(), free_slots.end(), slot) == free_slots.end()) {
        free_slots.push_back(slot);
      }
    }
  }
  return plan;
}

namespace {

class HostExecutable final : public Executable {
 public:
  HostExecutable(const Graph& graph, HostNodeFn fn) : graph_(graph), fn_(std::move(fn)) {}

  // One host buffer per slot of the liveness plan (plan_intermediates).
  Status allocate() {
    const IntermediatePlan plan = plan_intermediates(graph_);
    for (std::size_t bytes : plan.slot_bytes) {
      HALYARD_ASSIGN_OR_RETURN(auto buffer, HostBuffer::create(bytes));
      owned_.push_back(std::move(buffer));
    }
    buffer_of_.assign(graph_.tensors().size(), nullptr);
    for (std::size_t i = 0; i < plan.slot_of.size(); ++i) {
      if (plan.slot_of[i] >= 0)
        buffer_of_[i] = owned_[static_cast<std::size_t>(plan.slot_of[i])].get();
    }
    return Status::ok();
  }

  Result<std::unique_ptr<Event>> run(Queue& /*queue*/, std::span<const Binding> bindings) override {
    const auto& tensors = graph_.tensors();
    // Scratch kept across runs (an executable runs on one thread at a time): no allocation per step.
    std::vector<void*>& ptrs = ptrs_;
    ptrs.assign(tensors.size(), nullptr);
    for (std::size_t i = 0; i < tensors.size(); ++i) {
      if (buffer_of_[i])
        ptrs[i] = static_cast<HostBuffer*>(buffer_of_[i])->data();
    }
    for (const Binding& b : bindings) {
      if (b.tensor < 0 || static_cast<std::size_t>(b.tensor) >= tensors.size() || !b.buffer) {
        return invalid_argument("binding names no tensor of this graph");
      }
      const auto& t = tensors[static_cast<std::size_t>(b.tensor)];
      if (b.offset > b.buffer->size() || t.desc.bytes() > b.buffer->size() - b.offset) {
        return invalid_argument("buffer bound to '" + t.name + "' is too small for " + t.desc.to_string());
      }
      ptrs[static_cast<std::size_t>(b.tensor)] = static_cast<HostBuffer*>(b.buffer)->data() + b.offset;
    }
    for (std::size_t i = 0; i < tensors.size(); ++i) {
      if (!ptrs[i])
        return invalid_argument("tensor '" + tensors[i].name + "' is not bound");
    }
    std::vector<HostTensor>& in = inputs_;
    for (const auto& node : graph_.nodes()) {
      in.clear();
      for (TensorId id : node.inputs)
        in.push_back({tensors[static_cast<std::size_t>(id)].desc, ptrs[static_cast<std::size_t>(id)]});
      const auto out_index = static_cast<std::size_t>(node.output);
      const HostTensor out{tensors[out_index].desc, ptrs[out_index]};
      if (Status s = fn_(node, in, out); !s.is_ok()) {
        return Status(s.code(), s.message() + " (node '" + tensors[out_index].name + "')");
      }
    }
    return std::unique_ptr<Event>(new ReadyEvent(Status::ok()));
  }

 private:
  Graph graph_;
  HostNodeFn fn_;
  std::vector<void*> ptrs_;
  std::vector<HostTensor> inputs_;
  std::vector<std::unique_ptr<Buffer>> owned_;  // the distinct intermediate buffers
  std::vector<Buffer*> buffer_of_;              // per tensor: its intermediate buffer, or null
};

}  // namespace

Result<std::unique_ptr<Executable>> create_host_executable(const Graph& graph, HostNodeFn run_node) {
  HALYARD_RETURN_IF_ERROR(graph.validate());
  auto exe = std::make_unique<HostExecutable>(graph, std::move(run_node));
  HALYARD_RETURN_IF_ERROR(exe->allocate());
  return std::unique_ptr<Executable>(std::move(exe));
}

}  // namespace halyard
