// The `cpu` backend: host memory, a thread pool owned by the device, SIMD kernels chosen at run
// time (AVX-512 VNNI, AVX2, portable), quantized matrix products without dequantized copies.
#include <unistd.h>

#include <cstdio>
#include <exception>
#include <fstream>
#include <memory>
#include <string>

#include "blas_matmul.h"
#include "cpu_ops.h"
#include "halyard/hal/plugin_entry.h"

namespace halyard::cpu {
namespace {

std::string cpu_model_name() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) == 0) {
      const auto colon = line.find(':');
      if (colon != std::string::npos && colon + 2 <= line.size())
        return line.substr(colon + 2);
    }
  }
  return "CPU";
}

DeviceInfo cpu_device_info(int threads, const KernelTable& kernels) {
  DeviceInfo info;
  info.uri = "cpu";
  info.name = cpu_model_name();
  info.vendor = "host";
  info.type = DeviceType::kCpu;
  const long pages = ::sysconf(_SC_PHYS_PAGES), page = ::sysconf(_SC_PAGE_SIZE);
  if (pages > 0 && page > 0)
    info.memory_bytes = static_cast<std::uint64_t>(pages) * static_cast<std::uint64_t>(page);
  info.details = std::to_string(threads) + " threads, " + kernels.name + " kernels";
  return info;
}

// Tags this backend's host buffers, so that its executables refuse another device's (ref's).
constexpr char kBufferOwner = 0;

class CpuDevice final : public Device {
 public:
  CpuDevice(int threads, const KernelTable& kernels, PrefillPath prefill)
      : pool_(threads), kernels_(kernels), prefill_(prefill), info_(cpu_device_info(threads, kernels)) {
    if (prefill_ == PrefillPath::kBlas)
      blas_set_threads(threads);
    info_.details += prefill_ == PrefillPath::kGemm       ? ", AVX-512 GEMM for prefill"
                     : prefill_ == PrefillPath::kGemmBf16 ? ", AVX-512 bf16 GEMM for prefill"
                     : prefill_ == PrefillPath::kBlas     ? ", OpenBLAS for prefill"
                                                          : ", integer tiles for prefill";
  }
  const DeviceInfo& info() const override { return info_; }
  // Every op of the catalogue on every dtype infer_output accepts, except MATMUL on the block
  // formats that have no dot-product kernels here yet (Q5_0, Q5_1, the K-quants). EMBED and COPY
  // convert rows through hal's dequantize_row / quantize_row, which know every format.
  bool supports(OpKind op, std::span<const DType> dtypes) const override {
    return op != OpKind::kMatmul || dtypes.empty() || has_matmul_kernels(dtypes[0]);
  }
  Result<std::unique_ptr<Buffer>> allocate(std::size_t bytes) override {
    return HostBuffer::create(bytes, &kBufferOwner);
  }
  // Host memory is this device's memory: weights are read where they lie (a mapped file).
  Result<std::unique_ptr<Buffer>> wrap_host(const void* data, std::size_t bytes) override {
    return HostBuffer::wrap(data, bytes, &kBufferOwner);
  }
  Result<std::unique_ptr<Queue>> create_queue() override { return std::unique_ptr<Queue>(new SyncQueue()); }
  Result<std::unique_ptr<Executable>> compile(const Graph& graph) override {
    auto scratch = std::make_shared<Scratch>();
    HostGrouping grouping{cpu_group_size, [this, scratch](std::span<const HostNodeCall> calls) {
                            CpuContext ctx{pool_, kernels_, *scratch, prefill_};
                            return run_cpu_group(ctx, calls);
                          }};
    return create_host_executable(
        graph,
        [this, scratch](const GraphNode& node, std::span<const HostTensor> in, const HostTensor& out) {
          CpuContext ctx{pool_, kernels_, *scratch, prefill_};
          return run_cpu_op(ctx, node, in, out);
        },
        std::move(grouping), &kBufferOwner);
  }

 private:
  ThreadPool pool_;
  const KernelTable& kernels_;
  PrefillPath prefill_;
  DeviceInfo info_;
};

constexpr std::string_view kKernelSets[] = {"auto", "generic", "avx2", "avx512vnni", "neon-dotprod"};
constexpr std::string_view kPrefillPaths[] = {"auto", "gemm", "bf16", "blas", "tiles"};
constexpr BackendOption kOptions[] = {
    {"cpu.kernels", OptionType::kEnum, "auto", "HALYARD_CPU_KERNELS",
     "SIMD kernel set; auto: the best this CPU runs (a set it cannot run makes the device unavailable)", kKernelSets},
    {"cpu.prefill", OptionType::kEnum, "auto", "HALYARD_CPU_PREFILL",
     "prompt matmuls: own f32 or bf16 AVX-512 GEMM, OpenBLAS or integer tiles; auto: the fastest here", kPrefillPaths},
};

class CpuBackend final : public Backend {
 public:
  std::string_view name() const override { return "cpu"; }
  Status availability() const override { return Status::ok(); }
  std::vector<DeviceInfo> devices() const override {
    return {cpu_device_info(physical_cores(), select_kernels(nullptr))};
  }
  std::span<const BackendOption> options() const override { return kOptions; }
  Result<std::unique_ptr<Device>> open_device(int index, const DeviceOptions& options) override {
    if (index != 0)
      return not_found("cpu has a single device, cpu:0");
    HALYARD_ASSIGN_OR_RETURN(auto values, BackendOptionValues::resolve(name(), kOptions, options.backend_options));
    const std::string forced = values.text("cpu.kernels") == "auto" ? "" : values.text("cpu.kernels");
    const KernelTable& kernels = select_kernels(forced.c_str());
    if (!forced.empty() && forced != kernels.name) {
      return unavailable("cpu kernels '" + forced +
                         "' are not available on this CPU (use generic, avx2 or avx512vnni)");
    }
    if (options.threads < 0 || options.threads > 1024)
      return invalid_argument("threads must be in [0, 1024]");
    const int threads = options.threads > 0 ? options.threads : physical_cores();
    // Fastest first, as measured on SmolLM2 and the 1B shape, pp512 (README): own bf16 GEMM where
    // the CPU has AVX512_BF16, own f32 GEMM, OpenBLAS, integer tiles.
    PrefillPath prefill = kernels.gemm_f32_block && cpu_has_avx512_bf16() ? PrefillPath::kGemmBf16
                          : kernels.gemm_f32_block                        ? PrefillPath::kGemm
                          : blas_available()                              ? PrefillPath::kBlas
                                                                          : PrefillPath::kTiles;
    const std::string& want = values.text("cpu.prefill");
    if (want == "gemm" && kernels.gemm_f32_block) {
      prefill = PrefillPath::kGemm;
    } else if (want == "bf16" && kernels.gemm_f32_block && cpu_has_avx512_bf16()) {
      prefill = PrefillPath::kGemmBf16;
    } else if (want == "blas" && blas_available()) {
      prefill = PrefillPath::kBlas;
    } else if (want == "tiles") {
      prefill = PrefillPath::kTiles;
    } else if (want != "auto") {
      return unavailable(
          "cpu prefill path '" + want +
          "' is not available here (gemm needs AVX-512 kernels, bf16 also AVX512_BF16, blas needs OpenBLAS; tiles "
          "always works)");
    }
    return std::unique_ptr<Device>(new CpuDevice(threads, kernels, prefill));
  }
};

}  // namespace
}  // namespace halyard::cpu

HALYARD_BACKEND_PLUGIN("cpu", halyard::cpu::CpuBackend)
