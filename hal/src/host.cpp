#include "halyard/hal/host.h"

#if defined(__linux__)
#include <sys/mman.h>
#endif

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace halyard {

Result<std::unique_ptr<Buffer>> HostBuffer::create(std::size_t bytes, const void* owner) {
  const std::size_t rounded = (bytes + kAlignment - 1) / kAlignment * kAlignment;
  // Buffers of a huge page or more start on a huge-page boundary, so that upload() can ask for
  // transparent huge pages over their whole huge pages.
  const bool huge = rounded >= kHugePage;
  void* p = nullptr;
  if (posix_memalign(&p, huge ? kHugePage : kAlignment, rounded ? rounded : kAlignment) != 0 || !p)
    return resource_exhausted("cannot allocate " + std::to_string(bytes) + " bytes of host memory");
  return std::unique_ptr<Buffer>(new HostBuffer(static_cast<std::uint8_t*>(p), bytes, owner, /*owns=*/true));
}

Result<std::unique_ptr<Buffer>> HostBuffer::wrap(const void* data, std::size_t bytes, const void* owner) {
  if (!data)
    return invalid_argument("cannot wrap a null pointer as a buffer");
  if (reinterpret_cast<std::uintptr_t>(data) % kWrapAlignment != 0) {
    return failed_precondition("memory at " + std::to_string(reinterpret_cast<std::uintptr_t>(data) % kWrapAlignment) +
                               " bytes past a " + std::to_string(kWrapAlignment) +
                               "-byte boundary cannot be used in place: copy it into an allocated buffer");
  }
  // Never written through (upload() and executables refuse read-only buffers), so the cast does
  // not make the memory writable.
  auto* p = const_cast<std::uint8_t*>(static_cast<const std::uint8_t*>(data));
  return std::unique_ptr<Buffer>(new HostBuffer(p, bytes, owner, /*owns=*/false));
}

HostBuffer::~HostBuffer() {
  if (owns_)
    std::free(data_);
}

Status HostBuffer::upload(std::size_t offset, const void* src, std::size_t size) {
  if (!owns_) {
    return failed_precondition(
        "upload into a read-only buffer (host memory used in place, such as weights mapped from a model file)");
  }
  if (offset > size_ || size > size_ - offset)
    return out_of_range("upload past the end of a buffer");
#if defined(__linux__)
  // A buffer written whole (weights) asks for transparent huge pages over its whole huge pages
  // before the copy first touches it; the tail keeps small pages. Decode streams every weight once
  // per token, and with 4 KiB pages each 4 KiB costs a TLB miss: a 2-thread read of 1 GiB measured
  // 34.7 GB/s on huge pages against 33.3 on small ones here (medians of 15 alternating runs).
  // Buffers filled piece by piece (KV caches, intermediates) keep small pages: their first
  // prefill touches a few rows of each, and a 2 MiB page per touch made the first prompt after
  // other processes freed memory 5x slower. A hint only: where the kernel says no, nothing changes.
  if (offset == 0 && size == size_ && size_ >= kHugePage)
    madvise(data_, size_ / kHugePage * kHugePage, MADV_HUGEPAGE);
#endif
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
  HostExecutable(const Graph& graph, HostNodeFn fn, HostGrouping grouping, const void* owner)
      : graph_(graph), fn_(std::move(fn)), grouping_(std::move(grouping)), owner_(owner) {}

  // Asks the backend for its groups once. The intermediate plan assumes nodes run one after
  // another, so a group is refused (not trusted) where running its nodes together could differ:
  // a member reading another's output, or an intermediate a member reads or writes whose slot
  // the plan frees before the group's last node (a later member's output could share it).
  Status plan_groups() {
    const auto& nodes = graph_.nodes();
    const auto& tensors = graph_.tensors();
    group_len_.assign(nodes.size(), 1);
    if (!grouping_.group_size || !grouping_.run_group)
      return Status::ok();
    std::vector<std::size_t> last_use(tensors.size(), 0);
    for (std::size_t n = 0; n < nodes.size(); ++n) {
      for (TensorId id : nodes[n].inputs)
        last_use[static_cast<std::size_t>(id)] = n;
    }
    auto freed_early = [&](TensorId id, std::size_t last) {
      const auto t = static_cast<std::size_t>(id);
      return tensors[t].role == TensorRole::kIntermediate && last_use[t] < last;
    };
    for (std::size_t i = 0; i < nodes.size();) {
      const std::size_t len = std::max<std::size_t>(1, grouping_.group_size(graph_, i));
      if (len > nodes.size() - i)
        return internal_error("host executable: a node group runs past the end of the graph");
      const std::size_t last = i + len - 1;
      for (std::size_t a = i; a < last; ++a) {
        for (std::size_t b = a + 1; b <= last; ++b) {
          const auto& in = nodes[b].inputs;
          if (std::find(in.begin(), in.end(), nodes[a].output) != in.end())
            return internal_error("host executable: a grouped node reads the output of another in its group");
        }
        bool early = freed_early(nodes[a].output, last + 1);
        for (TensorId id : nodes[a].inputs)
          early = early || freed_early(id, last);
        if (early)
          return internal_error("host executable: a grouped node's tensor is freed before its group ends");
      }
      group_len_[i] = len;
      i += len;
    }
    return Status::ok();
  }

  // One host buffer per slot of the liveness plan (plan_intermediates).
  Status allocate() {
    const IntermediatePlan plan = plan_intermediates(graph_);
    for (std::size_t bytes : plan.slot_bytes) {
      HALYARD_ASSIGN_OR_RETURN(auto buffer, HostBuffer::create(bytes, owner_));
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
      // A GPU's buffer is no host pointer, and another host backend's is not ours to trust.
      auto* hb = dynamic_cast<HostBuffer*>(b.buffer);
      if (!hb || hb->owner() != owner_)
        return invalid_argument("tensor '" + t.name + "' is bound to a buffer of another device");
      if (hb->read_only() && t.role != TensorRole::kWeight && t.role != TensorRole::kInput) {
        return invalid_argument(
            "tensor '" + t.name +
            "' is written by the graph but bound to a read-only buffer (host memory used in place)");
      }
      if (b.offset > b.buffer->size() || t.desc.bytes() > b.buffer->size() - b.offset) {
        return invalid_argument("buffer bound to '" + t.name + "' is too small for " + t.desc.to_string());
      }
      ptrs[static_cast<std::size_t>(b.tensor)] = hb->data() + b.offset;
    }
    for (std::size_t i = 0; i < tensors.size(); ++i) {
      if (!ptrs[i])
        return invalid_argument("tensor '" + tensors[i].name + "' is not bound");
    }
    const auto& nodes = graph_.nodes();
    auto resolve = [&](TensorId id) {
      return HostTensor{tensors[static_cast<std::size_t>(id)].desc, ptrs[static_cast<std::size_t>(id)]};
    };
    std::vector<HostTensor>& in = inputs_;
    for (std::size_t i = 0; i < nodes.size(); i += group_len_[i]) {
      const auto out_index = static_cast<std::size_t>(nodes[i].output);
      Status s;
      in.clear();
      if (group_len_[i] == 1) {
        for (TensorId id : nodes[i].inputs)
          in.push_back(resolve(id));
        s = fn_(nodes[i], in, resolve(nodes[i].output));
      } else {
        std::size_t n_inputs = 0;
        for (std::size_t j = i; j < i + group_len_[i]; ++j)
          n_inputs += nodes[j].inputs.size();
        in.reserve(n_inputs);  // the spans below point into it: no reallocation after this
        calls_.clear();
        for (std::size_t j = i; j < i + group_len_[i]; ++j) {
          const std::size_t first = in.size();
          for (TensorId id : nodes[j].inputs)
            in.push_back(resolve(id));
          calls_.push_back({&nodes[j], std::span<const HostTensor>(in).subspan(first), resolve(nodes[j].output)});
        }
        s = grouping_.run_group(calls_);
      }
      if (!s.is_ok())
        return Status(s.code(), s.message() + " (node '" + tensors[out_index].name + "')");
    }
    return std::unique_ptr<Event>(new ReadyEvent(Status::ok()));
  }

 private:
  Graph graph_;
  HostNodeFn fn_;
  HostGrouping grouping_;
  const void* owner_;
  std::vector<std::size_t> group_len_;  // per node: the length of the group it starts, else 1
  std::vector<void*> ptrs_;
  std::vector<HostTensor> inputs_;
  std::vector<HostNodeCall> calls_;
  std::vector<std::unique_ptr<Buffer>> owned_;  // the distinct intermediate buffers
  std::vector<Buffer*> buffer_of_;              // per tensor: its intermediate buffer, or null
};

}  // namespace

Result<std::unique_ptr<Executable>> create_host_executable(const Graph& graph, HostNodeFn run_node,
                                                           HostGrouping grouping, const void* owner) {
  HALYARD_RETURN_IF_ERROR(graph.validate());
  auto exe = std::make_unique<HostExecutable>(graph, std::move(run_node), std::move(grouping), owner);
  HALYARD_RETURN_IF_ERROR(exe->plan_groups());
  HALYARD_RETURN_IF_ERROR(exe->allocate());
  return std::unique_ptr<Executable>(std::move(exe));
}

}  // namespace halyard
