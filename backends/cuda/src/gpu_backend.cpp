// The cuda and hip backends: one source, compiled by nvcc into libhalyard-backend-cuda.so and by
// hipcc into libhalyard-backend-hip.so (kernels/cuda/gpu.h maps the API names). Everything lives
// in halyard::cuda or halyard::hip, so both plugins load into one process.
//
// Each Queue owns a non-blocking stream; buffer copies go through the device's own transfer
// stream and are complete when upload/download return. An executable lowers nothing ahead of
// time: at its first run (and whenever its bindings change) it captures the launches of every node
// into a CUDA/HIP graph on the queue's stream, then replays that graph each run; per-step values
// come from the bound input buffers. The option <backend>.graphs=0 (HALYARD_GPU_GRAPHS=0) launches
// the kernels directly instead. Options are read once, when a device is opened; the vendor
// runtime starts on the backend's first availability()/devices()/open_device() call.
#include <algorithm>
#include <cstdio>
#include <exception>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "gpu.h"
#include "gpu_options.h"
#include "halyard/hal/device.h"
#include "halyard/hal/host.h"
#include "halyard/hal/plugin_entry.h"
#include "op_math.h"
#include "ops.h"

namespace halyard::HALYARD_GPU_NS {
namespace {

constexpr const char* kBackend =
#if defined(HALYARD_HIP)
    "hip";
#else
    "cuda";
#endif

Status check(gpuError_t e, const std::string& what) {
  if (e == gpuSuccess)
    return Status::ok();
  return internal_error(what + ": " + gpuGetErrorString(e));
}

// The weight dtypes kernels/cuda decodes (EMBED, MATMUL, COPY to f32): every one but I32
// (kernels/cuda/weight_decode.h).
bool has_weight_kernels(DType dtype) {
  return dtype != DType::kI32;
}

// The dtypes COPY can encode f32 into on the GPU: the plain types and the 32-weight formats
// whose reference quantizer ops.cu implements. Q5_0, Q5_1 and the K-quants are not among them.
bool has_encoder(DType dtype) {
  switch (dtype) {
    case DType::kF32:
    case DType::kF16:
    case DType::kBF16:
    case DType::kQ8_0:
    case DType::kQ4_0:
    case DType::kQ4_1:
      return true;
    default:
      return false;
  }
}

// COPY from -> to: a same-type copy of any dtype, a weight dtype to f32, f32 to a dtype with an
// encoder.
bool can_copy(DType from, DType to) {
  if (from == to)
    return true;
  if (to == DType::kF32)
    return has_weight_kernels(from);
  return from == DType::kF32 && has_encoder(to);
}

// The device's copy stream; copies are serialized and synchronous for the caller.
struct Transfer {
  int device = 0;
  gpuStream_t stream = nullptr;
  std::mutex mu;
  Status copy(void* dst, const void* src, std::size_t size, gpuMemcpyKind kind) {
    std::lock_guard lock(mu);
    HALYARD_RETURN_IF_ERROR(check(gpuSetDevice(device), "set device"));
    if (gpuError_t e = gpuMemcpyAsync(dst, src, size, kind, stream); e != gpuSuccess) {
      (void)gpuGetLastError();
      return check(e, "copy");
    }
    if (gpuError_t e = gpuStreamSynchronize(stream); e != gpuSuccess) {
      (void)gpuGetLastError();
      return check(e, "copy");
    }
    return Status::ok();
  }
};

class GpuBuffer final : public Buffer {
 public:
  GpuBuffer(Transfer* transfer, void* ptr, std::size_t size) : transfer_(transfer), ptr_(ptr), size_(size) {}
  ~GpuBuffer() override {
    (void)gpuSetDevice(transfer_->device);
    (void)gpuFree(ptr_);
  }
  std::size_t size() const override { return size_; }
  Status upload(std::size_t offset, const void* src, std::size_t size) override {
    if (offset > size_ || size > size_ - offset)
      return out_of_range("upload outside a buffer of " + std::to_string(size_) + " bytes");
    return transfer_->copy(static_cast<char*>(ptr_) + offset, src, size, gpuMemcpyHostToDevice);
  }
  Status download(std::size_t offset, void* dst, std::size_t size) const override {
    if (offset > size_ || size > size_ - offset)
      return out_of_range("download outside a buffer of " + std::to_string(size_) + " bytes");
    return transfer_->copy(dst, static_cast<const char*>(ptr_) + offset, size, gpuMemcpyDeviceToHost);
  }
  void* data() const { return ptr_; }
  int device() const { return transfer_->device; }

 private:
  Transfer* transfer_;
  void* ptr_;
  std::size_t size_;
};

class GpuEvent final : public Event {
 public:
  explicit GpuEvent(gpuEvent_t e) : event_(e) {}
  ~GpuEvent() override { (void)gpuEventDestroy(event_); }
  Status wait() override { return check(gpuEventSynchronize(event_), "kernel execution"); }

 private:
  gpuEvent_t event_;
};

class GpuQueue final : public Queue {
 public:
  GpuQueue(int device, gpuStream_t s) : device_(device), stream_(s) {}
  ~GpuQueue() override {
    (void)gpuSetDevice(device_);
    (void)gpuStreamSynchronize(stream_);
    (void)gpuStreamDestroy(stream_);
  }
  Status finish() override { return check(gpuStreamSynchronize(stream_), "stream"); }
  gpuStream_t stream() const { return stream_; }
  int device() const { return device_; }

 private:
  int device_;
  gpuStream_t stream_;
};

// The backend options a device reads when it is opened (kOptions below) and hands to its
// executables: run() reads these members, never the environment.
struct GpuSettings {
  bool graphs = true;  // capture and replay CUDA/HIP graphs
  bool fusion = true;  // fuse a residual ADD with the RMS_NORM after it
};

class GpuExecutable final : public Executable {
 public:
  GpuExecutable(Transfer* transfer, const Graph& graph, GpuSettings settings)
      : transfer_(transfer), device_(transfer->device), graph_(graph), settings_(settings) {}
  ~GpuExecutable() override { drop_graph(); }

  Status build() {
    HALYARD_RETURN_IF_ERROR(graph_.validate());
    for (const auto& node : graph_.nodes())
      HALYARD_RETURN_IF_ERROR(check_supported(node));
    plan_ = plan_intermediates(graph_);
    for (std::size_t bytes : plan_.slot_bytes) {
      void* p = nullptr;
      if (gpuMalloc(&p, std::max<std::size_t>(bytes, 16)) != gpuSuccess) {
        (void)gpuGetLastError();
        return resource_exhausted("cannot allocate " + std::to_string(bytes >> 20) + " MiB for intermediates on " +
                                  kBackend + ":" + std::to_string(device_));
      }
      slots_.emplace_back(new GpuBuffer(transfer_, p, bytes));
    }
    return Status::ok();
  }

  Result<std::unique_ptr<Event>> run(Queue& queue, std::span<const Binding> bindings) override {
    auto* gq = dynamic_cast<GpuQueue*>(&queue);
    if (!gq || gq->device() != device_)
      return invalid_argument("run on a queue of another device");
    const auto& tensors = graph_.tensors();
    std::vector<void*>& ptrs = ptrs_;  // kept across runs: a step allocates nothing
    ptrs.assign(tensors.size(), nullptr);
    for (std::size_t i = 0; i < tensors.size(); ++i) {
      if (plan_.slot_of[i] >= 0)
        ptrs[i] = slots_[static_cast<std::size_t>(plan_.slot_of[i])]->data();
    }
    for (const Binding& b : bindings) {
      if (b.tensor < 0 || static_cast<std::size_t>(b.tensor) >= tensors.size() || !b.buffer)
        return invalid_argument("binding names no tensor of this graph");
      const auto* gb = dynamic_cast<const GpuBuffer*>(b.buffer);
      const auto& t = tensors[static_cast<std::size_t>(b.tensor)];
      if (!gb || gb->device() != device_)
        return invalid_argument("tensor '" + t.name + "' is bound to a buffer of another device");
      if (b.offset > b.buffer->size() || t.desc.bytes() > b.buffer->size() - b.offset)
        return invalid_argument("buffer bound to '" + t.name + "' is too small for " + t.desc.to_string());
      // f32 and i32 tensors are read as such: a misaligned address would fault the whole context.
      if ((t.desc.dtype == DType::kF32 || t.desc.dtype == DType::kI32) && b.offset % 4 != 0)
        return invalid_argument("tensor '" + t.name + "' is bound at an offset that is not a multiple of 4");
      ptrs[static_cast<std::size_t>(b.tensor)] = static_cast<char*>(gb->data()) + b.offset;
    }
    for (std::size_t i = 0; i < tensors.size(); ++i) {
      if (!ptrs[i])
        return invalid_argument("tensor '" + tensors[i].name + "' is not bound");
    }
    HALYARD_RETURN_IF_ERROR(check(gpuSetDevice(device_), "set device"));
    const gpuStream_t stream = gq->stream();
    if (!settings_.graphs) {
      HALYARD_RETURN_IF_ERROR(enqueue(ptrs, stream));
    } else {
      if (!exec_ || ptrs != recorded_) {
        drop_graph();
        (void)gpuGetLastError();  // an earlier, unrelated error must not end the capture
        HALYARD_RETURN_IF_ERROR(
            check(gpuStreamBeginCapture(stream, gpuStreamCaptureModeThreadLocal), "begin graph capture"));
        const Status launched = enqueue(ptrs, stream);
        const gpuError_t ended = gpuStreamEndCapture(stream, &graph_handle_);
        if (!launched.is_ok() || ended != gpuSuccess) {
          (void)gpuGetLastError();
          drop_graph();
          HALYARD_RETURN_IF_ERROR(launched);
          return check(ended, "end graph capture");
        }
        HALYARD_RETURN_IF_ERROR(check(gpuGraphInstantiate(&exec_, graph_handle_), "instantiate graph"));
        recorded_ = ptrs;
      }
      HALYARD_RETURN_IF_ERROR(check(gpuGraphLaunch(exec_, stream), "launch graph"));
      last_stream_ = stream;
    }
    gpuEvent_t done;
    HALYARD_RETURN_IF_ERROR(check(gpuEventCreateWithFlags(&done, gpuEventDisableTiming), "create event"));
    if (Status s = check(gpuEventRecord(done, stream), "record event"); !s.is_ok()) {
      (void)gpuEventDestroy(done);
      return s;
    }
    return std::unique_ptr<Event>(new GpuEvent(done));
  }

 private:
  const TensorDesc& desc(TensorId id) const { return graph_.tensor(id).desc; }

  Status check_supported(const GraphNode& node) const {
    const std::string where = std::string(op_name(node.op)) + " on " + kBackend;
    switch (node.op) {
      case OpKind::kRope: {
        const int dims = node.params.rope_dims ? node.params.rope_dims : node.params.head_dim;
        if (node.params.head_dim % 2 != 0 || dims % 2 != 0 || dims > node.params.head_dim)
          return unimplemented(where + " needs an even head_dim and rope_dims <= head_dim");
        return Status::ok();
      }
      case OpKind::kAttention:
        if (node.params.head_dim > 256)
          return unimplemented(where + " supports head_dim up to 256");
        return Status::ok();
      case OpKind::kCopy: {
        const DType from = desc(node.inputs[0]).dtype, to = desc(node.output).dtype;
        if (can_copy(from, to))
          return Status::ok();
        if (from == DType::kF32 && has_weight_kernels(to))
          return unimplemented(where + ": no GPU quantizer for " + std::string(dtype_name(to)) +
                               " (COPY encodes f32 into f16, bf16, q8_0, q4_0 and q4_1)");
        return unimplemented(where + ": only same-type copies and conversions from or to f32");
      }
      default:
        return Status::ok();
    }
  }

  Status enqueue(const std::vector<void*>& ptrs, gpuStream_t stream) {
    (void)gpuGetLastError();  // report only this launch's errors
    auto f = [&](TensorId id) { return static_cast<float*>(ptrs[static_cast<std::size_t>(id)]); };
    auto i32 = [&](TensorId id) { return static_cast<std::int32_t*>(ptrs[static_cast<std::size_t>(id)]); };
    const auto& nodes = graph_.nodes();
    for (std::size_t ni = 0; ni < nodes.size(); ++ni) {
      const GraphNode& node = nodes[ni];
      const auto& in = node.inputs;
      const TensorId out = node.output;
      gpuError_t e = gpuSuccess;
      if (graph_.tensor(out).desc.elements() == 0)
        continue;                                      // nothing to compute (a launch with no blocks is an error)
      if (const GraphNode* norm = fusable_norm(ni)) {  // residual ADD + RMS_NORM in one kernel
        // A norm group makes each group a row of its own: the ADD is elementwise (not broadcast),
        // so the pair reads as [group, tokens * d / group] just as well.
        const TensorDesc& a = desc(in[0]);
        const op_math::NormRuns runs = op_math::norm_runs(a.ne[0], a.rows(), norm->params.norm_group);
        e = launch_add_rms_norm(f(in[0]), f(in[1]), f(out), f(norm->inputs[1]), f(norm->output), runs.length,
                                runs.count, norm->params.eps, stream);
        if (e != gpuSuccess)
          return check(e, "ADD + RMS_NORM '" + graph_.tensor(norm->output).name + "'");
        ++ni;
        continue;
      }
      switch (node.op) {
        case OpKind::kEmbed: {
          const TensorDesc& t = desc(in[0]);
          e = launch_embed(t.dtype, ptrs[static_cast<std::size_t>(in[0])], t.row_size(), t.ne[1], i32(in[1]), f(out),
                           t.ne[0], desc(in[1]).ne[0], node.params.scale, stream);
          break;
        }
        case OpKind::kMatmul: {
          const TensorDesc& w = desc(in[0]);
          e = launch_matmul(w.dtype, ptrs[static_cast<std::size_t>(in[0])], w.row_size(), f(in[1]), f(out), w.ne[0],
                            w.ne[1], desc(in[1]).ne[1], stream);
          break;
        }
        case OpKind::kRmsNorm: {
          const op_math::NormRuns runs =
              op_math::norm_runs(desc(in[0]).ne[0], desc(in[0]).rows(), node.params.norm_group);
          e = launch_rms_norm(f(in[0]), f(in[1]), f(out), runs.length, runs.count, node.params.eps, stream);
          break;
        }
        case OpKind::kSoftmax:
          e = launch_softmax(f(in[0]), f(out), desc(in[0]).ne[0], desc(in[0]).rows(), stream);
          break;
        case OpKind::kArgmax:
          e = launch_argmax(f(in[0]), i32(out), desc(in[0]).ne[0], desc(in[0]).rows(), stream);
          break;
        case OpKind::kAdd:
        case OpKind::kMul:
        case OpKind::kSwiglu:
        case OpKind::kGeglu: {
          const TensorDesc& a = desc(in[0]);
          const bool broadcast = desc(in[1]).rows() == 1 && a.rows() != 1;
          const int code = node.op == OpKind::kAdd      ? 0
                           : node.op == OpKind::kMul    ? 1
                           : node.op == OpKind::kSwiglu ? 2
                                                        : 3;
          e = launch_binary(code, f(in[0]), f(in[1]), f(out), a.ne[0], a.rows(), broadcast, stream);
          break;
        }
        case OpKind::kRope:
          e = launch_rope(f(in[0]), i32(in[1]), in.size() == 3 ? f(in[2]) : nullptr, f(out), desc(in[0]).ne[0],
                          desc(in[0]).ne[1], node.params, stream);
          break;
        case OpKind::kAttention: {
          const TensorDesc& cache = desc(in[3]);
          const TensorDesc& table = desc(in[7]);
          const PagedKv kv{static_cast<int>(cache.ne[1]), static_cast<int>(cache.ne[2]), static_cast<int>(table.ne[0]),
                           static_cast<int>(table.ne[1])};
          e = launch_attention(f(in[0]), f(in[1]), f(in[2]), f(in[3]), f(in[4]), cache.dtype == DType::kF16, i32(in[5]),
                               i32(in[6]), i32(in[7]), f(out), desc(in[0]).ne[1], kv, node.params, stream);
          break;
        }
        case OpKind::kCopy: {
          const TensorDesc& x = desc(in[0]);
          const DType to = desc(out).dtype;
          if (x.dtype == to) {
            e = gpuMemcpyAsync(ptrs[static_cast<std::size_t>(out)], ptrs[static_cast<std::size_t>(in[0])], x.bytes(),
                               gpuMemcpyDeviceToDevice, stream);
          } else {
            e = launch_convert(x.dtype, to, ptrs[static_cast<std::size_t>(in[0])], ptrs[static_cast<std::size_t>(out)],
                               x.ne[0], x.rows(), stream);
          }
          break;
        }
      }
      if (e != gpuSuccess)
        return check(e, std::string(op_name(node.op)) + " '" + graph_.tensor(out).name + "'");
    }
    return Status::ok();
  }

  // The RMS_NORM right after node `i` when node i is a plain (not broadcast) ADD and the norm
  // reads its result: the pair a Llama layer has twice (a norm group fuses too: the enqueue
  // splits both into per-group rows). <backend>.fusion=0 turns fusion off.
  const GraphNode* fusable_norm(std::size_t i) const {
    const auto& nodes = graph_.nodes();
    if (!settings_.fusion || i + 1 >= nodes.size() || nodes[i].op != OpKind::kAdd ||
        nodes[i + 1].op != OpKind::kRmsNorm)
      return nullptr;
    const GraphNode& add = nodes[i];
    const GraphNode& norm = nodes[i + 1];
    if (norm.inputs[0] != add.output || desc(add.inputs[1]).rows() != desc(add.inputs[0]).rows())
      return nullptr;
    return &norm;
  }

  void drop_graph() {
    if (exec_ && last_stream_)
      (void)gpuStreamSynchronize(last_stream_);  // the graph may still be running
    if (exec_)
      (void)gpuGraphExecDestroy(exec_);
    if (graph_handle_)
      (void)gpuGraphDestroy(graph_handle_);
    exec_ = nullptr;
    graph_handle_ = nullptr;
  }

  Transfer* transfer_;
  int device_;
  gpuStream_t last_stream_ = nullptr;
  Graph graph_;
  GpuSettings settings_;
  IntermediatePlan plan_;
  std::vector<std::unique_ptr<GpuBuffer>> slots_;
  gpuGraph_t graph_handle_ = nullptr;
  gpuGraphExec_t exec_ = nullptr;
  std::vector<void*> recorded_;  // the bindings the captured graph holds
  std::vector<void*> ptrs_;
};

DeviceInfo describe(int index, const gpuDeviceProp& p) {
  DeviceInfo info;
  info.uri = std::string(kBackend) + ":" + std::to_string(index);
  info.name = p.name;
#if defined(HALYARD_HIP)
  info.vendor = "AMD";
  const std::string arch = std::string("arch ") + p.gcnArchName;
#else
  info.vendor = "NVIDIA";
  const std::string arch = "compute capability " + std::to_string(p.major) + "." + std::to_string(p.minor);
#endif
  info.type = p.integrated ? DeviceType::kIntegratedGpu : DeviceType::kDiscreteGpu;
  info.memory_bytes = p.totalGlobalMem;
  info.details = std::string(HALYARD_GPU_API_NAME) + "; " + arch + "; " + std::to_string(p.multiProcessorCount) +
                 " multiprocessors; warp " + std::to_string(p.warpSize) + "; shared " +
                 std::to_string(p.sharedMemPerBlock / 1024) + " KiB per block; " +
                 std::to_string(p.totalGlobalMem >> 20) + " MiB";
  return info;
}

class GpuDevice final : public Device {
 public:
  static Result<std::unique_ptr<Device>> open(int ordinal, const DeviceInfo& info, GpuSettings settings) {
    auto dev = std::unique_ptr<GpuDevice>(new GpuDevice(ordinal, info, settings));
    HALYARD_RETURN_IF_ERROR(check(gpuSetDevice(ordinal), "set device " + info.uri));
    HALYARD_RETURN_IF_ERROR(
        check(gpuStreamCreateWithFlags(&dev->transfer_.stream, gpuStreamNonBlocking), "create stream"));
    return std::unique_ptr<Device>(std::move(dev));
  }
  ~GpuDevice() override {
    if (transfer_.stream) {
      (void)gpuSetDevice(transfer_.device);
      (void)gpuStreamSynchronize(transfer_.stream);
      (void)gpuStreamDestroy(transfer_.stream);
    }
  }
  const DeviceInfo& info() const override { return info_; }
  bool supports(OpKind op, std::span<const DType> dtypes) const override {
    if (op == OpKind::kEmbed || op == OpKind::kMatmul)
      return !dtypes.empty() && has_weight_kernels(dtypes[0]);
    if (op == OpKind::kCopy)  // COPY: the input dtype, then the output dtype (without it: a same-type copy)
      return dtypes.size() < 2 || can_copy(dtypes[0], dtypes[1]);
    if (op == OpKind::kAttention)  // f32 or f16 caches (infer_output checks the rest)
      return dtypes.size() < 4 || dtypes[3] == DType::kF32 || dtypes[3] == DType::kF16;
    return true;
  }
  Result<std::unique_ptr<Buffer>> allocate(std::size_t bytes) override {
    HALYARD_RETURN_IF_ERROR(check(gpuSetDevice(transfer_.device), "set device"));
    void* p = nullptr;
    if (gpuMalloc(&p, std::max<std::size_t>(bytes, 16)) != gpuSuccess) {
      (void)gpuGetLastError();  // clear the sticky error
      std::size_t free_bytes = 0, total = 0;
      (void)gpuMemGetInfo(&free_bytes, &total);
      return resource_exhausted("cannot allocate " + std::to_string(bytes >> 20) + " MiB on " + info_.uri + " (" +
                                std::to_string(free_bytes >> 20) + " MiB free)");
    }
    return std::unique_ptr<Buffer>(new GpuBuffer(&transfer_, p, bytes));
  }
  Result<std::unique_ptr<Queue>> create_queue() override {
    HALYARD_RETURN_IF_ERROR(check(gpuSetDevice(transfer_.device), "set device"));
    gpuStream_t s = nullptr;
    HALYARD_RETURN_IF_ERROR(check(gpuStreamCreateWithFlags(&s, gpuStreamNonBlocking), "create stream"));
    return std::unique_ptr<Queue>(new GpuQueue(transfer_.device, s));
  }
  Result<std::unique_ptr<Executable>> compile(const Graph& graph) override {
    HALYARD_RETURN_IF_ERROR(check(gpuSetDevice(transfer_.device), "set device"));
    auto exe = std::make_unique<GpuExecutable>(&transfer_, graph, settings_);
    HALYARD_RETURN_IF_ERROR(exe->build());
    return std::unique_ptr<Executable>(std::move(exe));
  }

 private:
  GpuDevice(int ordinal, DeviceInfo info, GpuSettings settings) : info_(std::move(info)), settings_(settings) {
    transfer_.device = ordinal;
    info_.details += std::string("; this device: graphs ") + (settings.graphs ? "on" : "off") + ", fusion " +
                     (settings.fusion ? "on" : "off");
  }
  DeviceInfo info_;
  GpuSettings settings_;
  Transfer transfer_;  // the runtime's device ordinal and the copy stream
};

#if defined(HALYARD_HIP)
constexpr auto& kOptions = gpu_options::kHip;
#else
constexpr auto& kOptions = gpu_options::kCuda;
#endif

class GpuBackend final : public Backend {
 public:
  std::string_view name() const override { return kBackend; }
  Status availability() const override {
    start();
    return availability_;
  }
  std::vector<DeviceInfo> devices() const override {
    start();
    return devices_;
  }
  std::span<const BackendOption> options() const override { return kOptions; }
  Result<std::unique_ptr<Device>> open_device(int index, const DeviceOptions& options) override {
    HALYARD_ASSIGN_OR_RETURN(auto values, BackendOptionValues::resolve(name(), kOptions, options.backend_options));
    GpuSettings settings;
    settings.graphs = values.flag(kOptions[0].key);
    settings.fusion = values.flag(kOptions[1].key);
    start();
    HALYARD_RETURN_IF_ERROR(availability_);
    if (index < 0 || static_cast<std::size_t>(index) >= devices_.size())
      return not_found(std::string("no device ") + kBackend + ":" + std::to_string(index));
    return GpuDevice::open(ordinals_[static_cast<std::size_t>(index)], devices_[static_cast<std::size_t>(index)],
                           settings);
  }

 private:
  // The runtime starts (and finds its devices) once, on first use: loading the plugin costs nothing.
  void start() const {
    // (void): nvcc warns on a discarded Status& from the assignment.
    std::call_once(started_, [this] { (void)(availability_ = probe(devices_, ordinals_)); });
  }

  // Asks the runtime for devices; without a driver or a device, says why.
  // devices[k] is runtime device ordinals[k]: one whose properties cannot be read is left out.
  static Status probe(std::vector<DeviceInfo>& devices, std::vector<int>& ordinals) {
    int count = 0;  // left untouched when there is no driver
    const gpuError_t e = gpuGetDeviceCount(&count);
    if (e != gpuSuccess) {
      (void)gpuGetLastError();
#if defined(HALYARD_HIP)
      const char* hint = " (no AMD GPU or ROCm driver)";
#else
      const char* hint = " (no NVIDIA GPU or driver)";
#endif
      return unavailable(std::string(HALYARD_GPU_API_NAME) + " runtime: " + gpuGetErrorString(e) + hint);
    }
    if (count == 0)
      return unavailable(std::string("no ") + HALYARD_GPU_API_NAME + " device");
    for (int i = 0; i < count; ++i) {
      gpuDeviceProp p;
      if (gpuGetDeviceProperties(&p, i) != gpuSuccess) {
        (void)gpuGetLastError();
        continue;
      }
      devices.push_back(describe(static_cast<int>(devices.size()), p));
      ordinals.push_back(i);
    }
    return Status::ok();
  }

  mutable std::once_flag started_;
  mutable std::vector<DeviceInfo> devices_;
  mutable std::vector<int> ordinals_;
  mutable Status availability_;
};

}  // namespace
}  // namespace halyard::HALYARD_GPU_NS

HALYARD_BACKEND_PLUGIN(halyard::HALYARD_GPU_NS::kBackend, halyard::HALYARD_GPU_NS::GpuBackend)
