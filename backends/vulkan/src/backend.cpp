// The `vulkan` backend: instance and device management, buffers, the queue and the plugin entry.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <mutex>

#include "halyard/hal/plugin_entry.h"
#include "shaders.h"
#include "vulkan_device.h"

namespace halyard::vulkan {
namespace {

std::string mib(std::uint64_t bytes) {
  char buf[32];
  if (bytes >= (1ull << 30))
    std::snprintf(buf, sizeof buf, "%.1f GiB", static_cast<double>(bytes) / (1ull << 30));
  else
    std::snprintf(buf, sizeof buf, "%llu MiB", static_cast<unsigned long long>(bytes >> 20));
  return buf;
}

VKAPI_ATTR VkBool32 VKAPI_CALL on_validation_message(VkDebugUtilsMessageSeverityFlagBitsEXT severity,
                                                     VkDebugUtilsMessageTypeFlagsEXT /*types*/,
                                                     const VkDebugUtilsMessengerCallbackDataEXT* data, void* user) {
  const char* level = severity >= VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT ? "error" : "warning";
  std::string message = std::string(level) + ": " + (data && data->pMessage ? data->pMessage : "(no text)");
  std::fprintf(stderr, "[vulkan validation] %s\n", message.c_str());
  static_cast<ValidationLog*>(user)->add(std::move(message));
  return VK_FALSE;
}

}  // namespace

void ValidationLog::add(std::string message) {
  std::lock_guard lock(mu_);
  messages_.push_back(std::move(message));
}

Status ValidationLog::status() const {
  std::lock_guard lock(mu_);
  if (messages_.empty())
    return Status::ok();
  return internal_error("Vulkan validation reported " + std::to_string(messages_.size()) +
                        " message(s); the first: " + messages_.front());
}

Result<std::shared_ptr<VulkanInstance>> VulkanInstance::create(bool validation, bool sync) {
  auto inst = std::shared_ptr<VulkanInstance>(new VulkanInstance());
  HALYARD_ASSIGN_OR_RETURN(inst->lib_, VulkanLibrary::open());
  HALYARD_RETURN_IF_ERROR(load_global(*inst->lib_, inst->api_));
  const VulkanApi& api = inst->api_;

  inst->validation_ = validation;
  const char* layer = "VK_LAYER_KHRONOS_validation";
  if (inst->validation_) {
    std::uint32_t count = 0;
    api.vkEnumerateInstanceLayerProperties(&count, nullptr);
    std::vector<VkLayerProperties> layers(count);
    api.vkEnumerateInstanceLayerProperties(&count, layers.data());
    const bool found = std::any_of(layers.begin(), layers.end(),
                                   [&](const VkLayerProperties& l) { return std::strcmp(l.layerName, layer) == 0; });
    if (!found) {
      return unavailable(
          "vulkan.validation (HALYARD_VULKAN_VALIDATION) is set but VK_LAYER_KHRONOS_validation is not installed "
          "(Debian: vulkan-validationlayers)");
    }
  }

  VkApplicationInfo app{VK_STRUCTURE_TYPE_APPLICATION_INFO};
  app.pApplicationName = "halyard";
  app.pEngineName = "halyard";
  app.apiVersion = VK_API_VERSION_1_1;
  VkInstanceCreateInfo ci{VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO};
  ci.pApplicationInfo = &app;
  const char* debug_ext = VK_EXT_DEBUG_UTILS_EXTENSION_NAME;
  VkDebugUtilsMessengerCreateInfoEXT messenger{VK_STRUCTURE_TYPE_DEBUG_UTILS_MESSENGER_CREATE_INFO_EXT};
  messenger.messageSeverity =
      VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT | VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT;
  messenger.messageType = VK_DEBUG_UTILS_MESSAGE_TYPE_GENERAL_BIT_EXT | VK_DEBUG_UTILS_MESSAGE_TYPE_VALIDATION_BIT_EXT |
                          VK_DEBUG_UTILS_MESSAGE_TYPE_PERFORMANCE_BIT_EXT;
  messenger.pfnUserCallback = &on_validation_message;
  messenger.pUserData = &inst->log_;
  VkValidationFeatureEnableEXT sync_feature = VK_VALIDATION_FEATURE_ENABLE_SYNCHRONIZATION_VALIDATION_EXT;
  VkValidationFeaturesEXT features{VK_STRUCTURE_TYPE_VALIDATION_FEATURES_EXT};
  features.enabledValidationFeatureCount = 1;
  features.pEnabledValidationFeatures = &sync_feature;
  if (inst->validation_) {
    ci.enabledLayerCount = 1;
    ci.ppEnabledLayerNames = &layer;
    ci.enabledExtensionCount = 1;
    ci.ppEnabledExtensionNames = &debug_ext;
    ci.pNext = &messenger;  // also reports problems of vkCreateInstance itself
    if (sync)
      messenger.pNext = &features;
  }
  if (VkResult r = api.vkCreateInstance(&ci, nullptr, &inst->instance_); r != VK_SUCCESS) {
    return unavailable("vkCreateInstance failed: " + vk_result_name(r) +
                       (r == VK_ERROR_INCOMPATIBLE_DRIVER ? " (no Vulkan driver installed)" : ""));
  }
  HALYARD_RETURN_IF_ERROR(load_instance(inst->instance_, inst->validation_, inst->api_));
  if (inst->validation_) {
    messenger.pNext = nullptr;
    if (VkResult r = api.vkCreateDebugUtilsMessengerEXT(inst->instance_, &messenger, nullptr, &inst->messenger_);
        r != VK_SUCCESS) {
      return internal_error("vkCreateDebugUtilsMessengerEXT failed: " + vk_result_name(r));
    }
  }
  return inst;
}

VulkanInstance::~VulkanInstance() {
  if (messenger_)
    api_.vkDestroyDebugUtilsMessengerEXT(instance_, messenger_, nullptr);
  if (instance_)
    api_.vkDestroyInstance(instance_, nullptr);
}

std::vector<PhysicalDevice> enumerate_devices(const VulkanInstance& instance) {
  const VulkanApi& api = instance.api();
  std::uint32_t count = 0;
  api.vkEnumeratePhysicalDevices(instance.handle(), &count, nullptr);
  std::vector<VkPhysicalDevice> handles(count);
  api.vkEnumeratePhysicalDevices(instance.handle(), &count, handles.data());
  std::vector<PhysicalDevice> out;
  for (std::uint32_t i = 0; i < count; ++i) {
    PhysicalDevice d;
    d.handle = handles[i];
    VkPhysicalDeviceSubgroupProperties subgroup{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_PROPERTIES};
    VkPhysicalDeviceMaintenance3Properties maint3{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MAINTENANCE_3_PROPERTIES};
    subgroup.pNext = &maint3;
    VkPhysicalDeviceProperties2 props2{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2};
    props2.pNext = &subgroup;
    api.vkGetPhysicalDeviceProperties2(d.handle, &props2);
    d.props = props2.properties;
    d.subgroup_size = subgroup.subgroupSize;
    d.subgroup_arithmetic = (subgroup.supportedStages & VK_SHADER_STAGE_COMPUTE_BIT) &&
                            (subgroup.supportedOperations & VK_SUBGROUP_FEATURE_ARITHMETIC_BIT) &&
                            (subgroup.supportedOperations & VK_SUBGROUP_FEATURE_BASIC_BIT);
    d.max_allocation = maint3.maxMemoryAllocationSize;
    api.vkGetPhysicalDeviceMemoryProperties(d.handle, &d.memory);

    // Optional capabilities, reported by `halyard devices`.
    std::uint32_t n_ext = 0;
    api.vkEnumerateDeviceExtensionProperties(d.handle, nullptr, &n_ext, nullptr);
    std::vector<VkExtensionProperties> exts(n_ext);
    api.vkEnumerateDeviceExtensionProperties(d.handle, nullptr, &n_ext, exts.data());
    auto has_ext = [&](const char* name) {
      return std::any_of(exts.begin(), exts.end(),
                         [&](const VkExtensionProperties& e) { return std::strcmp(e.extensionName, name) == 0; });
    };
    VkPhysicalDeviceFeatures2 features2{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2};
    VkPhysicalDeviceShaderFloat16Int8Features f16i8{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_FLOAT16_INT8_FEATURES};
    const bool has_f16i8 = has_ext("VK_KHR_shader_float16_int8") || d.props.apiVersion >= VK_API_VERSION_1_2;
    if (has_f16i8)
      features2.pNext = &f16i8;
    api.vkGetPhysicalDeviceFeatures2(d.handle, &features2);
    d.float64 = features2.features.shaderFloat64 == VK_TRUE;
    d.float16 = has_ext("VK_KHR_shader_float16_int8") && f16i8.shaderFloat16 == VK_TRUE;

    std::uint32_t n_families = 0;
    api.vkGetPhysicalDeviceQueueFamilyProperties(d.handle, &n_families, nullptr);
    std::vector<VkQueueFamilyProperties> families(n_families);
    api.vkGetPhysicalDeviceQueueFamilyProperties(d.handle, &n_families, families.data());
    for (std::uint32_t f = 0; f < n_families; ++f) {
      if (families[f].queueFlags & VK_QUEUE_COMPUTE_BIT) {
        d.queue_family = f;
        d.has_compute_queue = true;
        break;
      }
    }

    DeviceInfo& info = d.info;
    info.uri = "vulkan:" + std::to_string(i);
    info.name = d.props.deviceName;
    switch (d.props.vendorID) {
      case 0x10de:
        info.vendor = "NVIDIA";
        break;
      case 0x1002:
        info.vendor = "AMD";
        break;
      case 0x8086:
        info.vendor = "Intel";
        break;
      case 0x13b5:
        info.vendor = "ARM";
        break;
      case 0x5143:
        info.vendor = "Qualcomm";
        break;
      case 0x106b:
        info.vendor = "Apple";
        break;
      case 0x10005:
        info.vendor = "Mesa";
        break;
      default: {
        char buf[16];
        std::snprintf(buf, sizeof buf, "0x%04x", d.props.vendorID);
        info.vendor = buf;
      }
    }
    switch (d.props.deviceType) {
      case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU:
        info.type = DeviceType::kDiscreteGpu;
        break;
      case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU:
      case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU:
        info.type = DeviceType::kIntegratedGpu;
        break;
      default:
        info.type = DeviceType::kSoftwareGpu;
        break;  // CPU implementations (lavapipe) and others
    }
    std::uint64_t device_local = 0;
    std::string heaps;
    for (std::uint32_t h = 0; h < d.memory.memoryHeapCount; ++h) {
      const auto& heap = d.memory.memoryHeaps[h];
      const bool local = heap.flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT;
      if (local)
        device_local = std::max<std::uint64_t>(device_local, heap.size);
      heaps += (heaps.empty() ? "" : " + ") + mib(heap.size) + (local ? " device-local" : " host");
    }
    info.memory_bytes = device_local;
    auto yn = [](bool b) { return b ? "yes" : "no"; };
    const auto& lim = d.props.limits;
    info.details = "Vulkan " + std::to_string(VK_API_VERSION_MAJOR(d.props.apiVersion)) + "." +
                   std::to_string(VK_API_VERSION_MINOR(d.props.apiVersion)) + "; heaps " + heaps + "; subgroup " +
                   std::to_string(d.subgroup_size) + (d.subgroup_arithmetic ? " (arithmetic)" : " (no arithmetic)") +
                   "; shared " + std::to_string(lim.maxComputeSharedMemorySize / 1024) + " KiB; fp16 " +
                   yn(f16i8.shaderFloat16) + ", int8 " + yn(f16i8.shaderInt8) + ", bf16 " +
                   yn(has_ext("VK_KHR_shader_bfloat16")) + ", fp64 " + yn(d.float64) + ", cooperative matrix " +
                   yn(has_ext("VK_KHR_cooperative_matrix") || has_ext("VK_NV_cooperative_matrix")) + "; max binding " +
                   mib(lim.maxStorageBufferRange) + ", max allocation " + mib(d.max_allocation);
    out.push_back(std::move(d));
  }
  return out;
}

// ---- buffers ---------------------------------------------------------------------------------

VulkanBuffer::~VulkanBuffer() {
  const VulkanApi& api = device_->api();
  if (mapped_)
    api.vkUnmapMemory(device_->handle(), memory_);
  if (buffer_)
    api.vkDestroyBuffer(device_->handle(), buffer_, nullptr);
  if (memory_)
    api.vkFreeMemory(device_->handle(), memory_, nullptr);
}

Status VulkanBuffer::upload(std::size_t offset, const void* src, std::size_t size) {
  if (offset > size_ || size > size_ - offset)
    return out_of_range("upload of " + std::to_string(size) + " bytes at " + std::to_string(offset) +
                        " outside a buffer of " + std::to_string(size_));
  HALYARD_RETURN_IF_ERROR(device_->validation_status());
  if (mapped_) {
    std::memcpy(static_cast<std::uint8_t*>(mapped_) + offset, src, size);
    return Status::ok();
  }
  return const_cast<VulkanDevice*>(device_)->staged_upload(*this, offset, src, size);
}

Status VulkanBuffer::download(std::size_t offset, void* dst, std::size_t size) const {
  if (offset > size_ || size > size_ - offset)
    return out_of_range("download of " + std::to_string(size) + " bytes at " + std::to_string(offset) +
                        " outside a buffer of " + std::to_string(size_));
  HALYARD_RETURN_IF_ERROR(device_->validation_status());
  if (mapped_) {
    std::memcpy(dst, static_cast<const std::uint8_t*>(mapped_) + offset, size);
    return Status::ok();
  }
  return const_cast<VulkanDevice*>(device_)->staged_download(*this, offset, dst, size);
}

// ---- device ----------------------------------------------------------------------------------

Result<std::unique_ptr<VulkanDevice>> VulkanDevice::create(std::shared_ptr<VulkanInstance> instance,
                                                           const PhysicalDevice& physical,
                                                           const VulkanDeviceOptions& options) {
  if (!physical.has_compute_queue)
    return unavailable(physical.info.uri + " has no compute queue");
  auto dev = std::unique_ptr<VulkanDevice>(new VulkanDevice(std::move(instance), physical, options));
  HALYARD_RETURN_IF_ERROR(dev->init());
  return dev;
}

Status VulkanDevice::init() {
  const VulkanApi& vk = api();
  const float priority = 1.f;
  VkDeviceQueueCreateInfo qci{VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO};
  qci.queueFamilyIndex = physical_.queue_family;
  qci.queueCount = 1;
  qci.pQueuePriorities = &priority;
  VkPhysicalDeviceFeatures features{};
  features.shaderFloat64 = physical_.float64 ? VK_TRUE : VK_FALSE;
  VkDeviceCreateInfo dci{VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO};
  dci.queueCreateInfoCount = 1;
  dci.pQueueCreateInfos = &qci;
  dci.pEnabledFeatures = &features;
  use_fp16_ = physical_.float16 && !options_.no_fp16;
  VkPhysicalDeviceShaderFloat16Int8Features f16{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_FLOAT16_INT8_FEATURES};
  const char* f16_ext = "VK_KHR_shader_float16_int8";
  if (use_fp16_) {
    f16.shaderFloat16 = VK_TRUE;
    dci.pNext = &f16;
    dci.enabledExtensionCount = 1;
    dci.ppEnabledExtensionNames = &f16_ext;
  }
  if (VkResult r = vk.vkCreateDevice(physical_.handle, &dci, nullptr, &device_); r != VK_SUCCESS)
    return unavailable("vkCreateDevice failed for " + physical_.info.uri + ": " + vk_result_name(r));
  vk.vkGetDeviceQueue(device_, physical_.queue_family, 0, &queue_);

  const auto& lim = physical_.props.limits;
  max_range_ = lim.maxStorageBufferRange;
  alignment_ = std::max<std::size_t>(4, lim.minStorageBufferOffsetAlignment);
  weight_chunk_ = max_range_;
  if (const std::size_t chunk = options_.weight_chunk; chunk != 0) {
    if (chunk < 4 * alignment_) {
      return invalid_argument("vulkan.weight_chunk_bytes (HALYARD_VULKAN_WEIGHT_CHUNK_BYTES) must be 0 or at least " +
                              std::to_string(4 * alignment_) + " on " + physical_.info.uri);
    }
    weight_chunk_ = std::min<std::size_t>(weight_chunk_, chunk);
  }
  use_subgroups_ = physical_.subgroup_arithmetic && !options_.no_subgroups;
  force_staging_ = options_.force_staging;
  info_ = physical_.info;
  info_.details += std::string("; this device: ") + (use_subgroups_ ? "subgroup" : "shared-memory") + " reductions, " +
                   (use_fp16_ ? "fp16" : "f32") + " prefill tiles, weight ranges up to " +
                   std::to_string(weight_chunk_) + " bytes" + (force_staging_ ? ", staging copies" : "") +
                   (instance_->validation() ? ", validation on" : "");

  std::vector<VkDescriptorSetLayoutBinding> bindings(kMaxBindings);
  for (std::uint32_t i = 0; i < kMaxBindings; ++i) {
    bindings[i].binding = i;
    bindings[i].descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER;
    bindings[i].descriptorCount = 1;
    bindings[i].stageFlags = VK_SHADER_STAGE_COMPUTE_BIT;
  }
  VkDescriptorSetLayoutCreateInfo dsl{VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO};
  dsl.bindingCount = kMaxBindings;
  dsl.pBindings = bindings.data();
  if (VkResult r = vk.vkCreateDescriptorSetLayout(device_, &dsl, nullptr, &set_layout_); r != VK_SUCCESS)
    return internal_error("vkCreateDescriptorSetLayout: " + vk_result_name(r));
  VkPushConstantRange pcr{VK_SHADER_STAGE_COMPUTE_BIT, 0, kPushConstantBytes};
  VkPipelineLayoutCreateInfo plci{VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO};
  plci.setLayoutCount = 1;
  plci.pSetLayouts = &set_layout_;
  plci.pushConstantRangeCount = 1;
  plci.pPushConstantRanges = &pcr;
  if (VkResult r = vk.vkCreatePipelineLayout(device_, &plci, nullptr, &pipeline_layout_); r != VK_SUCCESS)
    return internal_error("vkCreatePipelineLayout: " + vk_result_name(r));

  VkCommandPoolCreateInfo pci{VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO};
  pci.flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT;
  pci.queueFamilyIndex = physical_.queue_family;
  if (VkResult r = vk.vkCreateCommandPool(device_, &pci, nullptr, &transfer_pool_); r != VK_SUCCESS)
    return internal_error("vkCreateCommandPool: " + vk_result_name(r));
  VkCommandBufferAllocateInfo cai{VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO};
  cai.commandPool = transfer_pool_;
  cai.level = VK_COMMAND_BUFFER_LEVEL_PRIMARY;
  cai.commandBufferCount = 1;
  if (VkResult r = vk.vkAllocateCommandBuffers(device_, &cai, &transfer_cb_); r != VK_SUCCESS)
    return internal_error("vkAllocateCommandBuffers: " + vk_result_name(r));
  VkFenceCreateInfo fci{VK_STRUCTURE_TYPE_FENCE_CREATE_INFO};
  if (VkResult r = vk.vkCreateFence(device_, &fci, nullptr, &transfer_fence_); r != VK_SUCCESS)
    return internal_error("vkCreateFence: " + vk_result_name(r));
  HALYARD_ASSIGN_OR_RETURN(dummy_, create_buffer(16, false));
  return Status::ok();
}

VulkanDevice::~VulkanDevice() {
  const VulkanApi& vk = api();
  if (device_)
    vk.vkDeviceWaitIdle(device_);
  staging_.reset();
  dummy_.reset();
  for (auto& [name, p] : pipelines_)
    vk.vkDestroyPipeline(device_, p, nullptr);
  if (transfer_fence_)
    vk.vkDestroyFence(device_, transfer_fence_, nullptr);
  if (transfer_pool_)
    vk.vkDestroyCommandPool(device_, transfer_pool_, nullptr);
  if (pipeline_layout_)
    vk.vkDestroyPipelineLayout(device_, pipeline_layout_, nullptr);
  if (set_layout_)
    vk.vkDestroyDescriptorSetLayout(device_, set_layout_, nullptr);
  if (device_)
    vk.vkDestroyDevice(device_, nullptr);
}

bool VulkanDevice::has_weight_shaders(DType dtype) {
  switch (dtype) {
    case DType::kF32:
    case DType::kF16:
    case DType::kBF16:
    case DType::kQ8_0:
    case DType::kQ4_0:
    case DType::kQ4_1:
    case DType::kQ5_0:
    case DType::kQ5_1:
    case DType::kQ2_K:
    case DType::kQ3_K:
    case DType::kQ4_K:
    case DType::kQ5_K:
    case DType::kQ6_K:
    case DType::kIQ4_NL:
    case DType::kIQ4_XS:
      return true;
    default:
      return false;
  }
}

bool VulkanDevice::has_encoder_shader(DType dtype) {
  switch (dtype) {
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

bool VulkanDevice::supports_copy(DType from, DType to) {
  if (from == to)  // a plain buffer copy
    return from == DType::kI32 || has_weight_shaders(from);
  if (to == DType::kF32)
    return has_weight_shaders(from);
  return from == DType::kF32 && has_encoder_shader(to);
}

bool VulkanDevice::supports(OpKind op, std::span<const DType> dtypes) const {
  switch (op) {
    case OpKind::kEmbed:
    case OpKind::kMatmul:
      return !dtypes.empty() && has_weight_shaders(dtypes[0]);
    case OpKind::kCopy:  // COPY: the input dtype, then the output dtype
      if (dtypes.size() == 1)
        return dtypes[0] == DType::kI32 || has_weight_shaders(dtypes[0]);
      return dtypes.size() == 2 && supports_copy(dtypes[0], dtypes[1]);
    case OpKind::kAttention:  // f32 or f16 caches (infer_output checks the rest)
      return dtypes.size() < 4 || dtypes[3] == DType::kF32 || dtypes[3] == DType::kF16;
    default:
      return true;
  }
}

Result<std::unique_ptr<VulkanBuffer>> VulkanDevice::create_buffer(std::size_t bytes, bool host_access) {
  const VulkanApi& vk = api();
  auto buf = std::unique_ptr<VulkanBuffer>(new VulkanBuffer(this, bytes));
  buf->allocated_ = std::max<std::size_t>(16, (bytes + 15) / 16 * 16);
  if (buf->allocated_ > physical_.max_allocation) {
    return resource_exhausted("a buffer of " + mib(bytes) + " exceeds " + physical_.info.uri +
                              "'s maxMemoryAllocationSize of " + mib(physical_.max_allocation));
  }
  VkBufferCreateInfo bci{VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO};
  bci.size = buf->allocated_;
  bci.usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT | VK_BUFFER_USAGE_TRANSFER_SRC_BIT | VK_BUFFER_USAGE_TRANSFER_DST_BIT;
  bci.sharingMode = VK_SHARING_MODE_EXCLUSIVE;
  if (VkResult r = vk.vkCreateBuffer(device_, &bci, nullptr, &buf->buffer_); r != VK_SUCCESS)
    return resource_exhausted("vkCreateBuffer(" + mib(bytes) + "): " + vk_result_name(r));
  VkMemoryRequirements req;
  vk.vkGetBufferMemoryRequirements(device_, buf->buffer_, &req);

  // Host-accessed buffers (staging, small per-step inputs and outputs) take host-visible,
  // coherent memory, device-local when there is such; the rest takes device-local memory,
  // mapped only where that memory is host-visible anyway (integrated GPUs, lavapipe).
  constexpr VkMemoryPropertyFlags kLocal = VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT;
  constexpr VkMemoryPropertyFlags kHost = VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT;
  std::vector<VkMemoryPropertyFlags> wanted;
  if (host_access)
    wanted = {kLocal | kHost, kHost};
  else
    wanted = {kLocal, 0};
  int type = -1;
  for (VkMemoryPropertyFlags flags : wanted) {
    for (std::uint32_t t = 0; t < physical_.memory.memoryTypeCount && type < 0; ++t) {
      const auto& mt = physical_.memory.memoryTypes[t];
      const auto heap_size = physical_.memory.memoryHeaps[mt.heapIndex].size;
      if ((req.memoryTypeBits & (1u << t)) && (mt.propertyFlags & flags) == flags && req.size <= heap_size)
        type = static_cast<int>(t);
    }
    if (type >= 0)
      break;
  }
  if (type < 0)
    return resource_exhausted("no memory type of " + physical_.info.uri + " can hold a buffer of " + mib(bytes));
  VkMemoryAllocateInfo mai{VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO};
  mai.allocationSize = req.size;
  mai.memoryTypeIndex = static_cast<std::uint32_t>(type);
  if (VkResult r = vk.vkAllocateMemory(device_, &mai, nullptr, &buf->memory_); r != VK_SUCCESS) {
    return resource_exhausted("cannot allocate " + mib(bytes) + " of device memory on " + physical_.info.uri + ": " +
                              vk_result_name(r));
  }
  if (VkResult r = vk.vkBindBufferMemory(device_, buf->buffer_, buf->memory_, 0); r != VK_SUCCESS)
    return internal_error("vkBindBufferMemory: " + vk_result_name(r));
  const auto flags = physical_.memory.memoryTypes[type].propertyFlags;
  if ((flags & kHost) == kHost && (host_access || !force_staging_)) {
    if (VkResult r = vk.vkMapMemory(device_, buf->memory_, 0, VK_WHOLE_SIZE, 0, &buf->mapped_); r != VK_SUCCESS)
      return internal_error("vkMapMemory: " + vk_result_name(r));
  }
  return buf;
}

Result<std::unique_ptr<Buffer>> VulkanDevice::allocate(std::size_t bytes) {
  HALYARD_RETURN_IF_ERROR(validation_status());
  constexpr std::size_t kSmall = 1 << 20;  // per-step inputs and logits: written or read every step
  HALYARD_ASSIGN_OR_RETURN(auto buf, create_buffer(bytes, bytes <= kSmall && !force_staging_));
  return std::unique_ptr<Buffer>(std::move(buf));
}

Result<std::unique_ptr<Buffer>> VulkanDevice::allocate_internal(std::size_t bytes) {
  HALYARD_ASSIGN_OR_RETURN(auto buf, create_buffer(bytes, false));
  return std::unique_ptr<Buffer>(std::move(buf));
}

void full_barrier(const VulkanApi& api, VkCommandBuffer cb, bool to_host) {
  VkMemoryBarrier mb{VK_STRUCTURE_TYPE_MEMORY_BARRIER};
  mb.srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT;
  mb.dstAccessMask = to_host ? VK_ACCESS_HOST_READ_BIT
                             : VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_READ_BIT |
                                   VK_ACCESS_TRANSFER_WRITE_BIT;
  const VkPipelineStageFlags stages = VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT;
  api.vkCmdPipelineBarrier(cb, stages, to_host ? VkPipelineStageFlags{VK_PIPELINE_STAGE_HOST_BIT} : stages, 0, 1, &mb,
                           0, nullptr, 0, nullptr);
}

Status VulkanDevice::submit(VkCommandBuffer cb, VkFence fence) {
  VkSubmitInfo si{VK_STRUCTURE_TYPE_SUBMIT_INFO};
  si.commandBufferCount = 1;
  si.pCommandBuffers = &cb;
  std::lock_guard lock(submit_mu_);
  if (VkResult r = api().vkQueueSubmit(queue_, 1, &si, fence); r != VK_SUCCESS)
    return internal_error("vkQueueSubmit: " + vk_result_name(r));
  return Status::ok();
}

Status VulkanDevice::wait_idle() {
  {
    std::lock_guard lock(submit_mu_);
    if (VkResult r = api().vkQueueWaitIdle(queue_); r != VK_SUCCESS)
      return internal_error("vkQueueWaitIdle: " + vk_result_name(r));
  }
  return validation_status();
}

Status VulkanDevice::staged_copy(const VulkanBuffer& buffer, std::size_t offset, void* host, std::size_t size,
                                 bool to_device) {
  const VulkanApi& vk = api();
  std::lock_guard lock(transfer_mu_);
  constexpr std::size_t kStaging = 16 << 20;
  if (!staging_) {
    HALYARD_ASSIGN_OR_RETURN(staging_, create_buffer(kStaging, true));
    if (!staging_->mapped_)
      return internal_error("the staging buffer is not host-visible");
  }
  for (std::size_t done = 0; done < size;) {
    const std::size_t n = std::min(kStaging, size - done);
    auto* h = static_cast<std::uint8_t*>(host) + done;
    if (to_device)
      std::memcpy(staging_->mapped_, h, n);
    VkCommandBufferBeginInfo bi{VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO};
    bi.flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT;
    vk.vkBeginCommandBuffer(transfer_cb_, &bi);
    full_barrier(vk, transfer_cb_);  // after earlier work on this buffer
    VkBufferCopy region{};
    region.size = n;
    if (to_device) {
      region.dstOffset = offset + done;
      vk.vkCmdCopyBuffer(transfer_cb_, staging_->buffer_, buffer.handle(), 1, &region);
    } else {
      region.srcOffset = offset + done;
      vk.vkCmdCopyBuffer(transfer_cb_, buffer.handle(), staging_->buffer_, 1, &region);
    }
    full_barrier(vk, transfer_cb_, /*to_host=*/!to_device);  // before later work, or the host's read
    vk.vkEndCommandBuffer(transfer_cb_);
    vk.vkResetFences(device_, 1, &transfer_fence_);
    HALYARD_RETURN_IF_ERROR(submit(transfer_cb_, transfer_fence_));
    if (VkResult r = vk.vkWaitForFences(device_, 1, &transfer_fence_, VK_TRUE, UINT64_MAX); r != VK_SUCCESS)
      return internal_error("vkWaitForFences (transfer): " + vk_result_name(r));
    if (!to_device)
      std::memcpy(h, staging_->mapped_, n);
    done += n;
  }
  return validation_status();
}

Status VulkanDevice::staged_upload(const VulkanBuffer& dst, std::size_t offset, const void* src, std::size_t size) {
  return staged_copy(dst, offset, const_cast<void*>(src), size, true);
}

Status VulkanDevice::staged_download(const VulkanBuffer& src, std::size_t offset, void* dst, std::size_t size) {
  return staged_copy(src, offset, dst, size, false);
}

Result<VkPipeline> VulkanDevice::pipeline(const std::string& shader, std::vector<std::uint32_t> constants) {
  std::string key = shader;
  for (std::uint32_t c : constants)
    key += "@" + std::to_string(c);
  std::lock_guard lock(pipeline_mu_);
  if (auto it = pipelines_.find(key); it != pipelines_.end())
    return it->second;
  const ShaderBinary* bin = find_shader(shader);
  if (!bin)
    return internal_error("no embedded shader named " + shader);
  const VulkanApi& vk = api();
  VkShaderModuleCreateInfo smci{VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO};
  smci.codeSize = bin->word_count * 4;
  smci.pCode = bin->words;
  VkShaderModule module;
  if (VkResult r = vk.vkCreateShaderModule(device_, &smci, nullptr, &module); r != VK_SUCCESS)
    return internal_error("vkCreateShaderModule(" + shader + "): " + vk_result_name(r));
  std::vector<VkSpecializationMapEntry> entries;
  for (std::uint32_t i = 0; i < constants.size(); ++i)
    entries.push_back({i, i * static_cast<std::uint32_t>(sizeof(std::uint32_t)), sizeof(std::uint32_t)});
  VkSpecializationInfo spec{static_cast<std::uint32_t>(entries.size()), entries.data(),
                            constants.size() * sizeof(std::uint32_t), constants.data()};
  VkComputePipelineCreateInfo cpci{VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO};
  cpci.stage.sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO;
  cpci.stage.stage = VK_SHADER_STAGE_COMPUTE_BIT;
  cpci.stage.module = module;
  cpci.stage.pName = "main";
  cpci.stage.pSpecializationInfo = &spec;
  cpci.layout = pipeline_layout_;
  VkPipeline p;
  const VkResult r = vk.vkCreateComputePipelines(device_, VK_NULL_HANDLE, 1, &cpci, nullptr, &p);
  vk.vkDestroyShaderModule(device_, module, nullptr);
  if (r != VK_SUCCESS)
    return internal_error("vkCreateComputePipelines(" + shader + "): " + vk_result_name(r));
  pipelines_.emplace(key, p);
  return p;
}

// ---- queue, backend, plugin ------------------------------------------------------------------

namespace {

class VulkanQueue final : public Queue {
 public:
  explicit VulkanQueue(VulkanDevice& device) : device_(device) {}
  Status finish() override { return device_.wait_idle(); }

 private:
  VulkanDevice& device_;
};

constexpr std::string_view kValidationModes[] = {"0", "1", "sync"};
constexpr BackendOption kOptions[] = {
    {"vulkan.validation", OptionType::kEnum, "0", "HALYARD_VULKAN_VALIDATION",
     "run under VK_LAYER_KHRONOS_validation (1), also with synchronization validation (sync); any message fails "
     "the run",
     kValidationModes},
    {"vulkan.no_subgroups", OptionType::kBool, "0", "HALYARD_VULKAN_NO_SUBGROUPS",
     "reduce through shared memory even where the device has subgroup arithmetic"},
    {"vulkan.no_fp16", OptionType::kBool, "0", "HALYARD_VULKAN_NO_FP16",
     "f32 prefill tiles even where the device has shaderFloat16"},
    {"vulkan.weight_chunk_bytes",
     OptionType::kInt,
     "0",
     "HALYARD_VULKAN_WEIGHT_CHUNK_BYTES",
     "bind weights in row ranges of at most this many bytes; 0: the device's maxStorageBufferRange",
     {},
     0,
     std::int64_t{1} << 40},
    {"vulkan.force_staging", OptionType::kBool, "0", "HALYARD_VULKAN_FORCE_STAGING",
     "copy through a staging buffer even where device memory is host-visible (as on discrete GPUs)"},
};

class VulkanBackend final : public Backend {
 public:
  std::string_view name() const override { return "vulkan"; }
  Status availability() const override {
    start();
    return availability_;
  }
  std::vector<DeviceInfo> devices() const override {
    start();
    std::vector<DeviceInfo> out;
    for (const auto& d : devices_)
      out.push_back(d.info);
    return out;
  }
  std::span<const BackendOption> options() const override { return kOptions; }
  Result<std::unique_ptr<Device>> open_device(int index, const DeviceOptions& options) override {
    HALYARD_ASSIGN_OR_RETURN(auto values, BackendOptionValues::resolve(name(), kOptions, options.backend_options));
    start();
    HALYARD_RETURN_IF_ERROR(availability_);
    if (index < 0 || static_cast<std::size_t>(index) >= devices_.size()) {
      return not_found("no device vulkan:" + std::to_string(index) + "; there are " + std::to_string(devices_.size()));
    }
    VulkanDeviceOptions device_options;
    device_options.no_fp16 = values.flag("vulkan.no_fp16");
    device_options.no_subgroups = values.flag("vulkan.no_subgroups");
    device_options.weight_chunk = static_cast<std::size_t>(values.integer("vulkan.weight_chunk_bytes"));
    device_options.force_staging = values.flag("vulkan.force_staging");
    std::shared_ptr<VulkanInstance> instance = instance_;
    PhysicalDevice physical = devices_[static_cast<std::size_t>(index)];
    if (const std::string& validation = values.text("vulkan.validation"); validation != "0") {
      // The layer is enabled per instance: a validated device gets an instance of its own, so
      // enumeration (and devices opened without validation) never load the layer.
      HALYARD_ASSIGN_OR_RETURN(instance, VulkanInstance::create(true, validation == "sync"));
      auto validated = enumerate_devices(*instance);
      if (static_cast<std::size_t>(index) >= validated.size() ||
          validated[static_cast<std::size_t>(index)].info.name != physical.info.name) {
        return internal_error("vulkan:" + std::to_string(index) +
                              " is not the same device in the validating instance; the device list changed");
      }
      physical = validated[static_cast<std::size_t>(index)];
    }
    HALYARD_ASSIGN_OR_RETURN(auto dev, VulkanDevice::create(std::move(instance), physical, device_options));
    return std::unique_ptr<Device>(std::move(dev));
  }

 private:
  // Opens the loader and lists the devices once, on first use: loading the plugin costs nothing.
  void start() const {
    std::call_once(started_, [this] {
      auto inst = VulkanInstance::create(false, false);
      if (!inst.is_ok()) {
        availability_ = inst.status();
        return;
      }
      instance_ = std::move(inst).value();
      devices_ = enumerate_devices(*instance_);
      if (devices_.empty())
        availability_ = unavailable("the Vulkan loader found no device (install a driver, e.g. mesa-vulkan-drivers)");
    });
  }

  mutable std::once_flag started_;
  mutable Status availability_ = Status::ok();
  mutable std::shared_ptr<VulkanInstance> instance_;
  mutable std::vector<PhysicalDevice> devices_;
};

}  // namespace

Result<std::unique_ptr<Queue>> VulkanDevice::create_queue() {
  return std::unique_ptr<Queue>(new VulkanQueue(*this));
}

Result<std::unique_ptr<Executable>> VulkanDevice::compile(const Graph& graph) {
  HALYARD_RETURN_IF_ERROR(validation_status());
  return create_vulkan_executable(*this, graph);
}

}  // namespace halyard::vulkan

HALYARD_BACKEND_PLUGIN("vulkan", halyard::vulkan::VulkanBackend)
