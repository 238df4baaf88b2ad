// The `ref` backend: the reference ops packaged as a plugin and loaded through the registry
// like any other backend. Host memory buffers, a synchronous queue, and an executable that
// interprets the graph node by node.
#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "halyard/hal/device.h"
#include "halyard/hal/plugin_abi.h"
#include "halyard/reference/ops.h"

namespace halyard::reference {
namespace {

constexpr std::size_t kAlignment = 64;

class HostBuffer final : public Buffer {
 public:
  static Result<std::unique_ptr<Buffer>> create(std::size_t bytes) {
    const std::size_t rounded = (bytes + kAlignment - 1) / kAlignment * kAlignment;
    void* p = std::aligned_alloc(kAlignment, rounded ? rounded : kAlignment);
    if (!p) return resource_exhausted("ref: cannot allocate " + std::to_string(bytes) + " bytes of host memory");
    return std::unique_ptr<Buffer>(new HostBuffer(p, bytes));
  }
  ~HostBuffer() override { std::free(data_); }
  std::size_t size() const override { return size_; }
  Status upload(std::size_t offset, const void* src, std::size_t size) override {
    if (offset > size_ || size > size_ - offset) return out_of_range("ref: upload past the end of a buffer");
    std::memcpy(static_cast<std::uint8_t*>(data_) + offset, src, size);
    return Status::ok();
  }
  Status download(std::size_t offset, void* dst, std::size_t size) const override {
    if (offset > size_ || size > size_ - offset) return out_of_range("ref: download past the end of a buffer");
    std::memcpy(dst, static_cast<const std::uint8_t*>(data_) + offset, size);
    return Status::ok();
  }
  std::uint8_t* data() { return static_cast<std::uint8_t*>(data_); }

 private:
  HostBuffer(void* p, std::size_t size) : data_(p), size_(size) {}
  void* data_;
  std::size_t size_;
};

class DoneEvent final : public Event {
 public:
  explicit DoneEvent(Status status) : status_(std::move(status)) {}
  Status wait() override { return status_; }

 private:
  Status status_;
};

class SyncQueue final : public Queue {
 public:
  Status finish() override { return Status::ok(); }
};

class GraphInterpreter final : public Executable {
 public:
  static Result<std::unique_ptr<Executable>> create(const Graph& graph) {
    HALYARD_RETURN_IF_ERROR(graph.validate());
    auto exe = std::unique_ptr<GraphInterpreter>(new GraphInterpreter(graph));
    for (std::size_t i = 0; i < graph.tensors().size(); ++i) {
      if (graph.tensors()[i].role == TensorRole::kIntermediate) {
        HALYARD_ASSIGN_OR_RETURN(exe->intermediates_[i], HostBuffer::create(graph.tensors()[i].desc.bytes()));
      }
    }
    return std::unique_ptr<Executable>(std::move(exe));
  }

  Result<std::unique_ptr<Event>> run(Queue& /*queue*/, std::span<const Binding> bindings) override {
    const auto& tensors = graph_.tensors();
    std::vector<void*> ptrs(tensors.size(), nullptr);
    for (std::size_t i = 0; i < tensors.size(); ++i) {
      if (intermediates_[i]) ptrs[i] = static_cast<HostBuffer*>(intermediates_[i].get())->data();
    }
    for (const Binding& b : bindings) {
      if (b.tensor < 0 || static_cast<std::size_t>(b.tensor) >= tensors.size() || !b.buffer) {
        return invalid_argument("ref: binding names no tensor of this graph");
      }
      const auto& t = tensors[static_cast<std::size_t>(b.tensor)];
      if (b.offset > b.buffer->size() || t.desc.bytes() > b.buffer->size() - b.offset) {
        return invalid_argument("ref: buffer bound to '" + t.name + "' is too small for " + t.desc.to_string());
      }
      ptrs[static_cast<std::size_t>(b.tensor)] = static_cast<HostBuffer*>(b.buffer)->data() + b.offset;
    }
    for (std::size_t i = 0; i < tensors.size(); ++i) {
      if (!ptrs[i]) return invalid_argument("ref: tensor '" + tensors[i].name + "' is not bound");
    }
    for (const auto& node : graph_.nodes()) {
      std::vector<HostTensor> in;
      in.reserve(node.inputs.size());
      for (TensorId id : node.inputs) in.push_back({tensors[static_cast<std::size_t>(id)].desc, ptrs[static_cast<std::size_t>(id)]});
      const HostTensor out{tensors[static_cast<std::size_t>(node.output)].desc, ptrs[static_cast<std::size_t>(node.output)]};
      if (Status s = run_op(node.op, in, out, node.params); !s.is_ok()) {
        return Status(s.code(), s.message() + " (node '" + tensors[static_cast<std::size_t>(node.output)].name + "')");
      }
    }
    return std::unique_ptr<Event>(new DoneEvent(Status::ok()));
  }

 private:
  explicit GraphInterpreter(const Graph& graph) : graph_(graph), intermediates_(graph.tensors().size()) {}
  Graph graph_;
  std::vector<std::unique_ptr<Buffer>> intermediates_;
};

DeviceInfo reference_device_info() {
  DeviceInfo info;
  info.uri = "ref";
  info.name = "Halyard scalar reference";
  info.vendor = "Halyard";
  info.type = DeviceType::kReference;
  info.details = "scalar, single-threaded, f64 accumulation: the conformance oracle";
  return info;
}

class ReferenceDevice final : public Device {
 public:
  const DeviceInfo& info() const override { return info_; }
  bool supports(OpKind /*op*/, std::span<const DType> /*dtypes*/) const override { return true; }
  Result<std::unique_ptr<Buffer>> allocate(std::size_t bytes) override { return HostBuffer::create(bytes); }
  Result<std::unique_ptr<Queue>> create_queue() override { return std::unique_ptr<Queue>(new SyncQueue()); }
  Result<std::unique_ptr<Executable>> compile(const Graph& graph) override { return GraphInterpreter::create(graph); }

 private:
  DeviceInfo info_ = reference_device_info();
};

class ReferenceBackend final : public Backend {
 public:
  std::string_view name() const override { return "ref"; }
  Status availability() const override { return Status::ok(); }
  std::vector<DeviceInfo> devices() const override { return {reference_device_info()}; }
  Result<std::unique_ptr<Device>> open_device(int index) override {
    if (index != 0) return not_found("ref has a single device, ref:0");
    return std::unique_ptr<Device>(new ReferenceDevice());
  }
};

void* create_backend(char* error, std::uint32_t error_size) {
  try {
    return static_cast<Backend*>(new ReferenceBackend());
  } catch (const std::exception& e) {
    std::snprintf(error, error_size, "%s", e.what());
    return nullptr;
  }
}

void destroy_backend(void* backend) { delete static_cast<Backend*>(backend); }

const HalyardBackendPlugin kPlugin{sizeof(HalyardBackendPlugin), HALYARD_BACKEND_ABI_VERSION, "ref",
                                   &create_backend, &destroy_backend};

}  // namespace
}  // namespace halyard::reference

extern "C" __attribute__((visibility("default"))) const HalyardBackendPlugin* halyard_backend_plugin_v1() {
  return &halyard::reference::kPlugin;
}
