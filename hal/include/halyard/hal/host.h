// Building blocks for backends whose memory is host memory (ref, cpu): an aligned host Buffer,
// a completed Event, a synchronous Queue, and an Executable that resolves bindings to host
// pointers and hands each node to the backend's kernel function.
// Thread safety: as for the interfaces they implement (device.h).
#pragma once

#include <functional>
#include <memory>
#include <span>
#include <vector>

#include "halyard/hal/device.h"

namespace halyard {

// Where a graph's intermediates live: intermediates share a slot once the last reader of the
// previous occupant has run; a tensor takes the smallest free slot that fits, or a new one. A
// node's output never shares with its own inputs (inputs are released only after the output is
// placed). A 512-token prefill of a 1B model needs a few slots instead of one per node. Used by
// every backend that allocates intermediates (host memory here, device memory on GPUs).
struct IntermediatePlan {
  std::vector<int> slot_of;             // per tensor: its slot, or -1 when it is not an intermediate
  std::vector<std::size_t> slot_bytes;  // per slot: the largest tensor placed in it
};
IntermediatePlan plan_intermediates(const Graph& graph);

// A tensor in host memory: the descriptor and where its bytes are.
struct HostTensor {
  TensorDesc desc;
  void* data = nullptr;
};

class HostBuffer final : public Buffer {
 public:
  static constexpr std::size_t kAlignment = 64;
  static constexpr std::size_t kHugePage = std::size_t{2} << 20;
  // What wrap() asks of memory it wraps. The host kernels load weights with unaligned vector
  // loads (no aligned load of a weight anywhere in kernels/cpu), so they need only each element
  // type's natural alignment, at most 4 bytes (f32); 32 is GGUF's default general.alignment, so
  // every tensor of a file written with the default qualifies and one with a smaller alignment
  // is copied instead of read at addresses no kernel was tested on.
  static constexpr std::size_t kWrapAlignment = 32;
  // `owner` tags the buffer with the backend that allocated it (any address unique to that
  // backend; null for none): an executable of another host backend refuses it.
  static Result<std::unique_ptr<Buffer>> create(std::size_t bytes, const void* owner = nullptr);
  // A read-only buffer over `bytes` of memory at `data` that the caller owns and keeps valid and
  // unchanged while the buffer lives (Device::wrap_host). failed_precondition when `data` is not
  // aligned to kWrapAlignment.
  static Result<std::unique_ptr<Buffer>> wrap(const void* data, std::size_t bytes, const void* owner = nullptr);
  ~HostBuffer() override;
  std::size_t size() const override { return size_; }
  // Fails with failed_precondition on a wrapped (read-only) buffer.
  Status upload(std::size_t offset, const void* src, std::size_t size) override;
  Status download(std::size_t offset, void* dst, std::size_t size) const override;
  // Writable only when !read_only(): a wrapped buffer's memory may be a PROT_READ mapping.
  std::uint8_t* data() { return data_; }
  const void* owner() const { return owner_; }
  bool read_only() const { return !owns_; }

 private:
  HostBuffer(std::uint8_t* p, std::size_t size, const void* owner, bool owns)
      : data_(p), size_(size), owner_(owner), owns_(owns) {}
  std::uint8_t* data_;
  std::size_t size_;
  const void* owner_;
  bool owns_;  // allocated here (freed, writable) or wrapped (neither)
};

class ReadyEvent final : public Event {
 public:
  explicit ReadyEvent(Status status) : status_(std::move(status)) {}
  Status wait() override { return status_; }

 private:
  Status status_;
};

class SyncQueue final : public Queue {
 public:
  Status finish() override { return Status::ok(); }
};

// Runs one node: inputs and output already resolved to host memory.
using HostNodeFn =
    std::function<Status(const GraphNode& node, std::span<const HostTensor> inputs, const HostTensor& output)>;

// One node with its tensors resolved to host memory, for backends that run nodes together.
struct HostNodeCall {
  const GraphNode* node = nullptr;
  std::span<const HostTensor> inputs;
  HostTensor output;
};

// Optional: runs of consecutive nodes that the backend executes as one (e.g. matrix products
// that read the same activations, in one parallel region). `group_size(graph, i)` is the length
// of the run that starts at node i (1 or 0: node i alone, through run_node); it is asked once,
// at compile time, and runs must not overlap. `run_group` then gets the run's nodes in order.
// A backend must only group nodes none of which reads another's output.
struct HostGrouping {
  std::function<std::size_t(const Graph& graph, std::size_t first)> group_size;
  std::function<Status(std::span<const HostNodeCall> nodes)> run_group;
};

// Validates the graph, allocates its intermediates once, and on run() binds every
// non-intermediate tensor and calls `run_node` for each node in order (or `grouping.run_group`
// for each group), synchronously. A bound buffer must be a HostBuffer with the same `owner` as
// the executable's (see HostBuffer::create); any other (another backend's, a GPU's) is refused
// with invalid_argument, never read as host memory. A read-only (wrapped) buffer is refused for
// a tensor the graph writes (state, output): it may be a read-only mapping of a file.
Result<std::unique_ptr<Executable>> create_host_executable(const Graph& graph, HostNodeFn run_node,
                                                           HostGrouping grouping = {}, const void* owner = nullptr);

}  // namespace halyard
