// The objects every backend implements. A Backend enumerates Devices; a Device allocates
// Buffers, creates Queues and compiles Graphs into Executables; an Executable runs on a Queue
// with caller-provided bindings and signals an Event.
//
// Ownership: objects are returned as unique_ptr and owned by the caller. A Buffer, Queue or
// Executable must not outlive the Device that made it, and a Device must not outlive its
// Backend. Thread safety: a Device may be used from several threads; a Queue, a Buffer being
// written and an Executable being run belong to one thread at a time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "halyard/hal/backend_options.h"
#include "halyard/hal/graph.h"
#include "halyard/hal/ops.h"
#include "halyard/hal/status.h"

namespace halyard {

// kSoftwareGpu: a GPU API implemented on the CPU (Mesa lavapipe): correct but slower than `cpu`,
// so `auto` ranks it below the cpu backend.
enum class DeviceType : std::uint8_t { kDiscreteGpu, kIntegratedGpu, kCpu, kReference, kSoftwareGpu };
std::string_view device_type_name(DeviceType type);

struct DeviceInfo {
  std::string uri;   // "ref", "cpu", "vulkan:0", ...
  std::string name;  // human-readable model name
  std::string vendor;
  DeviceType type = DeviceType::kCpu;
  std::uint64_t memory_bytes = 0;  // usable device memory, 0 if unknown
  std::string details;             // backend-specific capabilities, one line
};

class Buffer {
 public:
  virtual ~Buffer() = default;
  virtual std::size_t size() const = 0;
  // Synchronous host <-> device copies; offset + size must lie inside the buffer.
  virtual Status upload(std::size_t offset, const void* src, std::size_t size) = 0;
  virtual Status download(std::size_t offset, void* dst, std::size_t size) const = 0;
};

class Event {
 public:
  virtual ~Event() = default;
  // Blocks until the work this event marks has finished; returns its status.
  virtual Status wait() = 0;
};

class Queue {
 public:
  virtual ~Queue() = default;
  // Blocks until all work submitted so far has finished.
  virtual Status finish() = 0;
};

// Binds a graph tensor (weight, input, state or output) to device memory.
struct Binding {
  TensorId tensor;
  Buffer* buffer;
  std::size_t offset = 0;
};

class Executable {
 public:
  virtual ~Executable() = default;
  // Enqueues one run of the compiled graph. Every non-intermediate tensor must be bound.
  // The returned event completes when the outputs are written.
  virtual Result<std::unique_ptr<Event>> run(Queue& queue, std::span<const Binding> bindings) = 0;
};

class Device {
 public:
  virtual ~Device() = default;
  virtual const DeviceInfo& info() const = 0;
  // True when the device implements `op` for these input dtypes. For COPY, whose output dtype
  // is a parameter, callers pass the input's dtype and then OpParams::out_dtype.
  virtual bool supports(OpKind op, std::span<const DType> input_dtypes) const = 0;
  virtual Result<std::unique_ptr<Buffer>> allocate(std::size_t bytes) = 0;
  // Makes `bytes` of host memory at `data` a read-only Buffer without copying it, so that a
  // host device runs weights straight from a memory-mapped model file instead of holding a
  // second copy of them. The buffer does not own the memory: the caller keeps it valid and
  // unchanged until the buffer is destroyed. Writes are refused: upload() fails, and an
  // executable refuses the buffer for a tensor the graph writes (state, output).
  // unimplemented where the device cannot read host memory in place (GPUs: allocate() and
  // upload() instead); failed_precondition where `data` is not aligned as the device's kernels
  // need (copy that tensor instead).
  virtual Result<std::unique_ptr<Buffer>> wrap_host(const void* /*data*/, std::size_t /*bytes*/) {
    return unimplemented("device " + info().uri + " cannot use host memory in place");
  }
  virtual Result<std::unique_ptr<Queue>> create_queue() = 0;
  virtual Result<std::unique_ptr<Executable>> compile(const Graph& graph) = 0;
};

// Settings a caller may give when opening a device; every field has a working default.
struct DeviceOptions {
  int threads = 0;  // CPU worker threads; 0: the backend's default (the physical cores)
  // Backend options ("cpu.kernels" = "avx2", "vulkan.validation" = "sync", ...; see
  // backend_options.h). BackendRegistry::open_device adds the HALYARD_* environment variables
  // of the options not given here; the backend checks them against its options() table.
  std::vector<OptionSetting> backend_options;
};

// A backend is one vendor API. It is available or reports why not. Creating one is cheap: a
// backend starts its vendor runtime (loader, driver) only on the first availability(),
// devices() or open_device() call, so a process that opens `cpu` never starts Vulkan, CUDA or
// HIP. Those calls may come from several threads.
class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string_view name() const = 0;
  // ok, or unavailable with the reason (no driver, no device, ...).
  virtual Status availability() const = 0;
  virtual std::vector<DeviceInfo> devices() const = 0;
  // Fails with invalid_argument on a backend option this backend does not have or a bad value.
  virtual Result<std::unique_ptr<Device>> open_device(int index, const DeviceOptions& options) = 0;
  // The options this backend takes (static data of the plugin). Listing them starts nothing:
  // it works when the backend is unavailable.
  virtual std::span<const BackendOption> options() const { return {}; }
};

}  // namespace halyard
