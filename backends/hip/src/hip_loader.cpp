// libhalyard-backend-hip.so: a thin loader, plain C++ with no HIP dependency, in front of the
// real hip backend (libhalyard-hip-impl.so beside it, built by hipcc from the cuda backend's
// sources). The implementation cannot be the plugin itself: its kernels register with the HIP
// runtime in static initialisers, so it links libamdhip64 at load time and a machine without
// ROCm could not even load it. The loader opens the HIP runtime, then the implementation, only
// when the backend is first used, and otherwise reports `hip - unavailable: <reason>`.
//
// Thread safety: the first availability()/devices()/open_device() starts the implementation
// once (std::call_once); afterwards calls are forwarded to it.
#include <dlfcn.h>

#include <array>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>

#include "gpu_options.h"
#include "halyard/hal/plugin_entry.h"

namespace halyard::hip {
namespace {

constexpr const char* kRuntime = "libamdhip64.so.5";  // Debian 12's HIP 5.2 (libamdhip64-5)
constexpr const char* kImplementation = "libhalyard-hip-impl.so";

// The directory of this loader, where the implementation is installed beside it.
std::string own_directory() {
  Dl_info info{};
  if (::dladdr(reinterpret_cast<const void*>(&own_directory), &info) == 0 || !info.dli_fname)
    return ".";
  return std::filesystem::path(info.dli_fname).parent_path().string();
}

std::string last_dl_error() {
  const char* e = ::dlerror();
  return e ? e : "unknown dlopen error";
}

class HipLoaderBackend final : public Backend {
 public:
  ~HipLoaderBackend() override {
    if (impl_ && table_)
      table_->destroy_backend(impl_);
    // Both libraries stay mapped, as the registry leaves plugins: late destructors may use them.
  }
  std::string_view name() const override { return "hip"; }
  Status availability() const override {
    start();
    return impl_ ? impl_->availability() : reason_;
  }
  std::vector<DeviceInfo> devices() const override {
    start();
    return impl_ ? impl_->devices() : std::vector<DeviceInfo>{};
  }
  std::span<const BackendOption> options() const override { return gpu_options::kHip; }
  Result<std::unique_ptr<Device>> open_device(int index, const DeviceOptions& options) override {
    // Checked here as well, so a bad option is reported as such even where HIP is missing.
    HALYARD_RETURN_IF_ERROR(BackendOptionValues::resolve(name(), gpu_options::kHip, options.backend_options).status());
    start();
    if (!impl_)
      return reason_;
    return impl_->open_device(index, options);
  }

 private:
  void start() const {
    std::call_once(started_, [this] { reason_ = load(); });
  }

  Status load() const {
    // RTLD_GLOBAL is not needed: the implementation names libamdhip64 itself; opening it here
    // first only tells a missing runtime apart from a broken installation.
    if (!::dlopen(kRuntime, RTLD_NOW | RTLD_LOCAL)) {
      return unavailable(std::string(kRuntime) + " not found (" + last_dl_error() +
                         "); install ROCm/HIP (Debian: apt-get install libamdhip64-5) and an AMD GPU driver");
    }
    const std::string path = own_directory() + "/" + kImplementation;
    void* handle = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!handle) {
      return unavailable("cannot load the hip backend's implementation " + path + ": " + last_dl_error() +
                         " (reinstall Halyard: it belongs beside libhalyard-backend-hip.so)");
    }
    auto entry = reinterpret_cast<HalyardBackendEntryFn>(::dlsym(handle, HALYARD_BACKEND_ENTRY_SYMBOL));
    const HalyardBackendPlugin* table = entry ? entry() : nullptr;
    if (!table || table->abi_version != HALYARD_BACKEND_ABI_VERSION ||
        table->struct_size < sizeof(HalyardBackendPlugin) || !table->create_backend || !table->destroy_backend) {
      return unavailable(path + " is not a hip backend of this Halyard build (ABI " +
                         std::to_string(HALYARD_BACKEND_ABI_VERSION) + "); reinstall Halyard");
    }
    std::array<char, 512> error{};
    void* created = table->create_backend(error.data(), static_cast<std::uint32_t>(error.size()));
    if (!created)
      return unavailable(std::string("the hip backend's implementation failed to start: ") + error.data());
    table_ = table;
    impl_ = static_cast<Backend*>(created);
    return Status::ok();
  }

  mutable std::once_flag started_;
  mutable Status reason_;
  mutable const HalyardBackendPlugin* table_ = nullptr;
  mutable Backend* impl_ = nullptr;
};

}  // namespace
}  // namespace halyard::hip

HALYARD_BACKEND_PLUGIN("hip", halyard::hip::HipLoaderBackend)
