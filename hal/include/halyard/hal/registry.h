// Finds backend plugins (libhalyard-backend-<name>.so) with dlopen, checks their ABI, and opens
// devices by URI: "ref", "cpu", "vulkan:N", "cuda:N", "hip:N" or "auto".
// Thread safety: load once, then read-only use from any thread.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "halyard/hal/device.h"
#include "halyard/hal/status.h"

namespace halyard {

struct RegistryOptions {
  // Directories searched in order; the first plugin of a given name wins.
  std::vector<std::string> search_paths;
  // Default: HALYARD_PLUGIN_PATH (colon-separated), the directory of libhalyard-hal.so (where
  // libhalyard.so is too) and its halyard/ subdirectory (an install's plugins), then the
  // executable's directory; each directory once. The one place the registry reads the
  // environment.
  static RegistryOptions from_environment();
};

struct DeviceUri {
  std::string backend;  // "cpu", "ref", "vulkan", ... or "auto"
  int index = 0;
  static Result<DeviceUri> parse(const std::string& uri);
};

// A plugin that was found but could not be used, and why.
struct PluginProblem {
  std::string path;
  std::string reason;
};

class BackendRegistry {
 public:
  BackendRegistry();
  ~BackendRegistry();
  BackendRegistry(const BackendRegistry&) = delete;
  BackendRegistry& operator=(const BackendRegistry&) = delete;

  // Scans the search paths. Fails only if no directory exists or none holds a usable plugin;
  // individual bad plugins are recorded in problems().
  static Result<std::unique_ptr<BackendRegistry>> load(const RegistryOptions& options);
  // Loads one plugin file (used by load and by tests).
  Status load_plugin(const std::string& path);

  const std::vector<Backend*>& backends() const { return backend_views_; }
  Backend* find(std::string_view name) const;
  const std::vector<PluginProblem>& problems() const { return problems_; }

  // Resolves "auto" to a concrete URI: discrete GPU > integrated GPU > CPU > reference.
  Result<std::string> resolve(const std::string& uri) const;
  // Only the backend of `uri` is started (all of them for "auto"). Backend options of
  // `options` must name loaded backends; the chosen backend's options that are not given are
  // taken from their HALYARD_* environment variables (backend_options.h).
  Result<std::unique_ptr<Device>> open_device(const std::string& uri, const DeviceOptions& options = {});

 private:
  struct LoadedPlugin;
  std::vector<std::unique_ptr<LoadedPlugin>> plugins_;
  std::vector<Backend*> backend_views_;
  std::vector<PluginProblem> problems_;
};

}  // namespace halyard
