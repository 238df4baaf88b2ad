#include "halyard/hal/registry.h"

#include <dlfcn.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <cstdlib>
#include <filesystem>

#include "halyard/hal/plugin_abi.h"

namespace halyard {
namespace fs = std::filesystem;

std::string_view device_type_name(DeviceType type) {
  switch (type) {
    case DeviceType::kDiscreteGpu:
      return "discrete GPU";
    case DeviceType::kIntegratedGpu:
      return "integrated GPU";
    case DeviceType::kCpu:
      return "CPU";
    case DeviceType::kReference:
      return "reference";
    case DeviceType::kSoftwareGpu:
      return "software GPU";
  }
  return "unknown";
}

struct BackendRegistry::LoadedPlugin {
  std::string path;
  void* handle = nullptr;
  const HalyardBackendPlugin* table = nullptr;
  Backend* backend = nullptr;

  ~LoadedPlugin() {
    if (backend && table)
      table->destroy_backend(backend);
    // The library stays mapped: objects it created (vtables, static strings) may still be
    // referenced by late destructors, and unloading buys nothing in a short-lived process.
  }
};

namespace {

// The directory of the library this code is in (libhalyard-hal.so), found from the address of
// one of its functions: the build tree's bin/ or an install's lib/, wherever that tree has been
// copied to. libhalyard.so sits in the same directory, so a program linked against either finds
// the plugins beside it (build tree) or in its halyard/ subdirectory (install).
std::string own_library_dir() {
  Dl_info info{};
  if (::dladdr(reinterpret_cast<const void*>(&own_library_dir), &info) == 0 || !info.dli_fname || !*info.dli_fname)
    return {};
  std::error_code ec;
  const fs::path lib = fs::absolute(info.dli_fname, ec);
  return ec ? std::string() : lib.parent_path().string();
}

std::string executable_dir() {
  std::array<char, 4096> exe{};
  const ssize_t n = ::readlink("/proc/self/exe", exe.data(), exe.size() - 1);
  if (n <= 0)
    return {};
  return fs::path(std::string(exe.data(), static_cast<std::size_t>(n))).parent_path().string();
}

}  // namespace

RegistryOptions RegistryOptions::from_environment() {
  RegistryOptions options;
  // A directory listed twice (the build tree's library and executable directory are one) is
  // searched once.
  auto add = [&options](std::string dir) {
    if (dir.empty() ||
        std::find(options.search_paths.begin(), options.search_paths.end(), dir) != options.search_paths.end())
      return;
    options.search_paths.push_back(std::move(dir));
  };
  if (const char* env = std::getenv("HALYARD_PLUGIN_PATH"); env && *env) {
    std::string_view rest(env);
    while (!rest.empty()) {
      const auto colon = rest.find(':');
      add(std::string(rest.substr(0, colon)));
      if (colon == std::string_view::npos)
        break;
      rest.remove_prefix(colon + 1);
    }
  }
  // No directory fixed at configure time: an installed tree stays usable wherever it is moved.
  if (const std::string lib = own_library_dir(); !lib.empty()) {
    add(lib);
    add((fs::path(lib) / "halyard").string());
  }
  add(executable_dir());
  return options;
}

Result<DeviceUri> DeviceUri::parse(const std::string& uri) {
  DeviceUri out;
  const auto colon = uri.find(':');
  out.backend = uri.substr(0, colon);
  if (out.backend.empty())
    return invalid_argument("empty device URI; use cpu, ref, vulkan:N, cuda:N, hip:N or auto");
  for (char c : out.backend) {
    if (!(std::islower(static_cast<unsigned char>(c)) || std::isdigit(static_cast<unsigned char>(c)))) {
      return invalid_argument("malformed device URI '" + uri + "'; use cpu, ref, vulkan:N, cuda:N, hip:N or auto");
    }
  }
  if (colon != std::string::npos) {
    const std::string idx = uri.substr(colon + 1);
    const auto [ptr, ec] = std::from_chars(idx.data(), idx.data() + idx.size(), out.index);
    if (idx.empty() || ec != std::errc() || ptr != idx.data() + idx.size() || out.index < 0) {
      return invalid_argument("malformed device index in '" + uri + "'");
    }
  }
  return out;
}

BackendRegistry::BackendRegistry() = default;
BackendRegistry::~BackendRegistry() = default;

Status BackendRegistry::load_plugin(const std::string& path) {
  auto fail = [&](const std::string& reason) {
    problems_.push_back({path, reason});
    return unavailable("plugin " + path + ": " + reason);
  };
  void* handle = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!handle) {
    const char* err = ::dlerror();
    return fail(std::string("cannot load: ") + (err ? err : "unknown dlopen error"));
  }
  auto entry = reinterpret_cast<HalyardBackendEntryFn>(::dlsym(handle, HALYARD_BACKEND_ENTRY_SYMBOL));
  if (!entry)
    return fail("no " HALYARD_BACKEND_ENTRY_SYMBOL " symbol: not a Halyard backend plugin");
  const HalyardBackendPlugin* table = entry();
  if (!table)
    return fail("entry point returned no table");
  if (table->abi_version != HALYARD_BACKEND_ABI_VERSION) {
    return fail("ABI version " + std::to_string(table->abi_version) + ", this build expects " +
                std::to_string(HALYARD_BACKEND_ABI_VERSION) + "; rebuild the plugin with this Halyard");
  }
  if (table->struct_size < sizeof(HalyardBackendPlugin) || !table->name || !table->create_backend ||
      !table->destroy_backend) {
    return fail("incomplete plugin table");
  }
  if (find(table->name))
    return Status::ok();  // an earlier search path already provided it
  std::array<char, 512> error{};
  void* created = table->create_backend(error.data(), static_cast<std::uint32_t>(error.size()));
  if (!created)
    return fail(std::string("backend creation failed: ") + error.data());
  auto plugin = std::make_unique<LoadedPlugin>();
  plugin->path = path;
  plugin->handle = handle;
  plugin->table = table;
  plugin->backend = static_cast<Backend*>(created);
  backend_views_.push_back(plugin->backend);
  plugins_.push_back(std::move(plugin));
  return Status::ok();
}

Result<std::unique_ptr<BackendRegistry>> BackendRegistry::load(const RegistryOptions& options) {
  auto registry = std::make_unique<BackendRegistry>();
  std::string searched;
  bool any_dir = false;
  for (const auto& dir : options.search_paths) {
    searched += (searched.empty() ? "" : ", ") + dir;
    std::error_code ec;
    if (!fs::is_directory(dir, ec))
      continue;
    any_dir = true;
    std::vector<std::string> files;
    for (const auto& entry : fs::directory_iterator(dir, ec)) {
      const std::string name = entry.path().filename().string();
      if (name.starts_with("libhalyard-backend-") && name.ends_with(".so"))
        files.push_back(entry.path().string());
    }
    std::sort(files.begin(), files.end());
    for (const auto& file : files)
      (void)registry->load_plugin(file);  // failures land in problems()
  }
  if (!any_dir)
    return not_found("no plugin directory exists (searched: " + searched + "); set HALYARD_PLUGIN_PATH");
  if (registry->backends().empty()) {
    std::string why;
    for (const auto& p : registry->problems())
      why += "; " + p.path + ": " + p.reason;
    return not_found("no usable backend plugin (libhalyard-backend-*.so) in: " + searched + why);
  }
  return registry;
}

Backend* BackendRegistry::find(std::string_view name) const {
  for (Backend* b : backend_views_) {
    if (b->name() == name)
      return b;
  }
  return nullptr;
}

Result<std::string> BackendRegistry::resolve(const std::string& uri) const {
  HALYARD_ASSIGN_OR_RETURN(DeviceUri parsed, DeviceUri::parse(uri));
  if (parsed.backend != "auto")
    return uri;
  auto rank = [](DeviceType t) {
    switch (t) {
      case DeviceType::kDiscreteGpu:
        return 0;
      case DeviceType::kIntegratedGpu:
        return 1;
      case DeviceType::kCpu:
        return 2;
      case DeviceType::kSoftwareGpu:
        return 3;
      case DeviceType::kReference:
        return 4;
    }
    return 5;
  };
  const DeviceInfo* best = nullptr;
  std::vector<DeviceInfo> all;
  for (Backend* b : backend_views_) {
    if (!b->availability().is_ok())
      continue;
    for (auto& d : b->devices())
      all.push_back(std::move(d));
  }
  for (const auto& d : all) {
    if (!best || rank(d.type) < rank(best->type))
      best = &d;
  }
  if (!best)
    return unavailable("auto: no available device; run `halyard devices` to see why");
  return best->uri;
}

Result<std::unique_ptr<Device>> BackendRegistry::open_device(const std::string& uri, const DeviceOptions& options) {
  HALYARD_ASSIGN_OR_RETURN(std::string concrete, resolve(uri));
  HALYARD_ASSIGN_OR_RETURN(DeviceUri parsed, DeviceUri::parse(concrete));
  Backend* backend = find(parsed.backend);
  if (!backend) {
    std::string known;
    for (Backend* b : backend_views_)
      known += (known.empty() ? "" : ", ") + std::string(b->name());
    return not_found("unknown device '" + uri + "': no backend named '" + parsed.backend + "' (loaded: " + known + ")");
  }
  // A setting for a backend that is not loaded is a typo or a missing plugin: say so rather than
  // ignore it. Settings for other loaded backends are ignored by this one.
  for (const auto& setting : options.backend_options) {
    if (!find(option_backend(setting.key))) {
      std::string known;
      for (Backend* b : backend_views_)
        known += (known.empty() ? "" : ", ") + std::string(b->name());
      return invalid_argument("backend option '" + setting.key + "': no backend named '" +
                              std::string(option_backend(setting.key)) + "' (loaded: " + known +
                              "); `halyard devices --options` lists the options");
    }
  }
  if (Status s = backend->availability(); !s.is_ok()) {
    return unavailable("device '" + uri + "': backend " + parsed.backend + " is unavailable: " + s.message());
  }
  const auto devices = backend->devices();
  if (parsed.index >= static_cast<int>(devices.size())) {
    return not_found("device '" + uri + "' does not exist: backend " + parsed.backend + " has " +
                     std::to_string(devices.size()) + " device(s)");
  }
  // Explicit settings over the options' HALYARD_* variables over the defaults: the one place
  // every caller (CLI, C API, conformance drivers) gets the environment from.
  DeviceOptions effective = options;
  effective.backend_options = with_environment(backend->options(), options.backend_options);
  // Checked against the table here too, so a backend with no options (ref) refuses a setting
  // meant for it rather than ignoring it; the backend reads (and checks) them again itself.
  HALYARD_RETURN_IF_ERROR(
      BackendOptionValues::resolve(backend->name(), backend->options(), effective.backend_options).status());
  return backend->open_device(parsed.index, effective);
}

}  // namespace halyard
