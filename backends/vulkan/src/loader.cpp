#include "loader.h"

#include <dlfcn.h>

namespace halyard::vulkan {

Result<std::shared_ptr<VulkanLibrary>> VulkanLibrary::open() {
  void* handle = nullptr;
  std::string errors;
  for (const char* name : {"libvulkan.so.1", "libvulkan.so"}) {
    handle = ::dlopen(name, RTLD_NOW | RTLD_LOCAL);
    if (handle)
      break;
    errors += std::string(errors.empty() ? "" : "; ") + ::dlerror();
  }
  if (!handle) {
    return unavailable("the Vulkan loader is not installed (" + errors +
                       "); install libvulkan1 and a driver (mesa-vulkan-drivers for the CPU)");
  }
  auto lib = std::shared_ptr<VulkanLibrary>(new VulkanLibrary());
  lib->handle_ = handle;
  lib->gipa_ = reinterpret_cast<PFN_vkGetInstanceProcAddr>(::dlsym(handle, "vkGetInstanceProcAddr"));
  if (!lib->gipa_)
    return unavailable("the Vulkan loader has no vkGetInstanceProcAddr");
  return lib;
}

VulkanLibrary::~VulkanLibrary() {
  if (handle_)
    ::dlclose(handle_);
}

Status load_global(const VulkanLibrary& lib, VulkanApi& api) {
  api.vkGetInstanceProcAddr = lib.get_instance_proc_addr();
#define HALYARD_VK_LOAD(name)                                                                \
  api.name = reinterpret_cast<PFN_##name>(api.vkGetInstanceProcAddr(VK_NULL_HANDLE, #name)); \
  if (!api.name)                                                                             \
    return unavailable("the Vulkan loader lacks " #name);
  HALYARD_VK_GLOBAL_FNS(HALYARD_VK_LOAD)
#undef HALYARD_VK_LOAD
  return Status::ok();
}

Status load_instance(VkInstance instance, bool debug_utils, VulkanApi& api) {
#define HALYARD_VK_LOAD(name)                                                          \
  api.name = reinterpret_cast<PFN_##name>(api.vkGetInstanceProcAddr(instance, #name)); \
  if (!api.name)                                                                       \
    return unavailable("the Vulkan instance lacks " #name " (Vulkan 1.1 is required)");
  HALYARD_VK_INSTANCE_FNS(HALYARD_VK_LOAD)
  if (debug_utils) {
    HALYARD_VK_DEBUG_FNS(HALYARD_VK_LOAD)
  }
#undef HALYARD_VK_LOAD
  return Status::ok();
}

std::string vk_result_name(VkResult r) {
  switch (r) {
#define HALYARD_VK_CASE(x) \
  case x:                  \
    return #x;
    HALYARD_VK_CASE(VK_SUCCESS)
    HALYARD_VK_CASE(VK_NOT_READY)
    HALYARD_VK_CASE(VK_TIMEOUT)
    HALYARD_VK_CASE(VK_INCOMPLETE)
    HALYARD_VK_CASE(VK_ERROR_OUT_OF_HOST_MEMORY)
    HALYARD_VK_CASE(VK_ERROR_OUT_OF_DEVICE_MEMORY)
    HALYARD_VK_CASE(VK_ERROR_INITIALIZATION_FAILED)
    HALYARD_VK_CASE(VK_ERROR_DEVICE_LOST)
    HALYARD_VK_CASE(VK_ERROR_MEMORY_MAP_FAILED)
    HALYARD_VK_CASE(VK_ERROR_LAYER_NOT_PRESENT)
    HALYARD_VK_CASE(VK_ERROR_EXTENSION_NOT_PRESENT)
    HALYARD_VK_CASE(VK_ERROR_FEATURE_NOT_PRESENT)
    HALYARD_VK_CASE(VK_ERROR_INCOMPATIBLE_DRIVER)
    HALYARD_VK_CASE(VK_ERROR_TOO_MANY_OBJECTS)
    HALYARD_VK_CASE(VK_ERROR_FORMAT_NOT_SUPPORTED)
    HALYARD_VK_CASE(VK_ERROR_FRAGMENTED_POOL)
    HALYARD_VK_CASE(VK_ERROR_OUT_OF_POOL_MEMORY)
#undef HALYARD_VK_CASE
    default:
      return "VkResult " + std::to_string(static_cast<int>(r));
  }
}

}  // namespace halyard::vulkan
