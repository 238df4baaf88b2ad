// The `ref` backend: the reference ops packaged as a plugin and loaded through the registry
// like any other backend. Host memory, a synchronous queue, node-by-node interpretation.
#include <cstdio>
#include <exception>
#include <memory>
#include <string>
#include <vector>

#include "halyard/hal/host.h"
#include "halyard/hal/plugin_entry.h"
#include "halyard/reference/ops.h"

namespace halyard::reference {
namespace {

DeviceInfo reference_device_info() {
  DeviceInfo info;
  info.uri = "ref";
  info.name = "Halyard scalar reference";
  info.vendor = "Halyard";
  info.type = DeviceType::kReference;
  info.details = "scalar, single-threaded, f64 accumulation: the conformance oracle";
  return info;
}

// Tags this backend's host buffers, so that its executables refuse another device's (cpu's).
constexpr char kBufferOwner = 0;

class ReferenceDevice final : public Device {
 public:
  const DeviceInfo& info() const override { return info_; }
  bool supports(OpKind /*op*/, std::span<const DType> /*dtypes*/) const override { return true; }
  Result<std::unique_ptr<Buffer>> allocate(std::size_t bytes) override {
    return HostBuffer::create(bytes, &kBufferOwner);
  }
  // Host memory is this device's memory: weights are read where they lie (a mapped file).
  Result<std::unique_ptr<Buffer>> wrap_host(const void* data, std::size_t bytes) override {
    return HostBuffer::wrap(data, bytes, &kBufferOwner);
  }
  Result<std::unique_ptr<Queue>> create_queue() override { return std::unique_ptr<Queue>(new SyncQueue()); }
  Result<std::unique_ptr<Executable>> compile(const Graph& graph) override {
    return create_host_executable(
        graph,
        [](const GraphNode& node, std::span<const HostTensor> in, const HostTensor& out) {
          return run_op(node.op, in, out, node.params);
        },
        {}, &kBufferOwner);
  }

 private:
  DeviceInfo info_ = reference_device_info();
};

class ReferenceBackend final : public Backend {
 public:
  std::string_view name() const override { return "ref"; }
  Status availability() const override { return Status::ok(); }
  std::vector<DeviceInfo> devices() const override { return {reference_device_info()}; }
  Result<std::unique_ptr<Device>> open_device(int index, const DeviceOptions& /*options*/) override {
    if (index != 0)
      return not_found("ref has a single device, ref:0");
    return std::unique_ptr<Device>(new ReferenceDevice());
  }
};

}  // namespace
}  // namespace halyard::reference

HALYARD_BACKEND_PLUGIN("ref", halyard::reference::ReferenceBackend)
