// The Vulkan entry points Halyard uses, loaded at run time from libvulkan.so.1 with dlopen, so a
// machine without the loader still loads this plugin and reports the backend unavailable.
#pragma once

#define VK_NO_PROTOTYPES
#include <vulkan/vulkan.h>

#include <memory>
#include <string>

#include "halyard/hal/status.h"

namespace halyard::vulkan {

#define HALYARD_VK_GLOBAL_FNS(X) \
  X(vkCreateInstance)            \
  X(vkEnumerateInstanceLayerProperties)

#define HALYARD_VK_INSTANCE_FNS(X)            \
  X(vkDestroyInstance)                        \
  X(vkEnumeratePhysicalDevices)               \
  X(vkGetPhysicalDeviceProperties)            \
  X(vkGetPhysicalDeviceProperties2)           \
  X(vkGetPhysicalDeviceFeatures)              \
  X(vkGetPhysicalDeviceFeatures2)             \
  X(vkGetPhysicalDeviceMemoryProperties)      \
  X(vkGetPhysicalDeviceQueueFamilyProperties) \
  X(vkEnumerateDeviceExtensionProperties)     \
  X(vkCreateDevice)                           \
  X(vkDestroyDevice)                          \
  X(vkGetDeviceQueue)                         \
  X(vkCreateBuffer)                           \
  X(vkDestroyBuffer)                          \
  X(vkGetBufferMemoryRequirements)            \
  X(vkAllocateMemory)                         \
  X(vkFreeMemory)                             \
  X(vkBindBufferMemory)                       \
  X(vkMapMemory)                              \
  X(vkUnmapMemory)                            \
  X(vkCreateShaderModule)                     \
  X(vkDestroyShaderModule)                    \
  X(vkCreateDescriptorSetLayout)              \
  X(vkDestroyDescriptorSetLayout)             \
  X(vkCreatePipelineLayout)                   \
  X(vkDestroyPipelineLayout)                  \
  X(vkCreateComputePipelines)                 \
  X(vkDestroyPipeline)                        \
  X(vkCreateDescriptorPool)                   \
  X(vkDestroyDescriptorPool)                  \
  X(vkResetDescriptorPool)                    \
  X(vkAllocateDescriptorSets)                 \
  X(vkUpdateDescriptorSets)                   \
  X(vkCreateCommandPool)                      \
  X(vkDestroyCommandPool)                     \
  X(vkAllocateCommandBuffers)                 \
  X(vkFreeCommandBuffers)                     \
  X(vkResetCommandBuffer)                     \
  X(vkBeginCommandBuffer)                     \
  X(vkEndCommandBuffer)                       \
  X(vkCmdBindPipeline)                        \
  X(vkCmdBindDescriptorSets)                  \
  X(vkCmdPushConstants)                       \
  X(vkCmdDispatch)                            \
  X(vkCmdPipelineBarrier)                     \
  X(vkCmdCopyBuffer)                          \
  X(vkCreateFence)                            \
  X(vkDestroyFence)                           \
  X(vkWaitForFences)                          \
  X(vkResetFences)                            \
  X(vkQueueSubmit)                            \
  X(vkQueueWaitIdle)                          \
  X(vkDeviceWaitIdle)

#define HALYARD_VK_DEBUG_FNS(X)     \
  X(vkCreateDebugUtilsMessengerEXT) \
  X(vkDestroyDebugUtilsMessengerEXT)

// One table per VkInstance. Device-level functions come through vkGetInstanceProcAddr too
// (the loader's trampolines): one table serves every device of the instance.
struct VulkanApi {
  PFN_vkGetInstanceProcAddr vkGetInstanceProcAddr = nullptr;
#define HALYARD_VK_DECLARE(name) PFN_##name name = nullptr;
  HALYARD_VK_GLOBAL_FNS(HALYARD_VK_DECLARE)
  HALYARD_VK_INSTANCE_FNS(HALYARD_VK_DECLARE)
  HALYARD_VK_DEBUG_FNS(HALYARD_VK_DECLARE)
#undef HALYARD_VK_DECLARE
};

// The loader library, opened once; closed when the last user goes.
class VulkanLibrary {
 public:
  static Result<std::shared_ptr<VulkanLibrary>> open();
  ~VulkanLibrary();
  PFN_vkGetInstanceProcAddr get_instance_proc_addr() const { return gipa_; }

 private:
  void* handle_ = nullptr;
  PFN_vkGetInstanceProcAddr gipa_ = nullptr;
};

// Fills the global functions (no instance yet).
Status load_global(const VulkanLibrary& lib, VulkanApi& api);
// Fills everything else for `instance`; debug functions only when `debug_utils`.
Status load_instance(VkInstance instance, bool debug_utils, VulkanApi& api);

// "VK_ERROR_OUT_OF_DEVICE_MEMORY" and the like.
std::string vk_result_name(VkResult r);

}  // namespace halyard::vulkan
