// The Vulkan backend's objects: the instance (with the optional validation layer), a device
// with its compute queue, pipelines and transfer path, and its buffers. Executables live in
// executable.cpp.
// Thread safety: as device.h says. Queue submission and the staging path are serialized by
// mutexes of the device; the pipeline cache by its own.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "halyard/hal/device.h"
#include "loader.h"

namespace halyard::vulkan {

// Messages of VK_LAYER_KHRONOS_validation (warnings and errors), collected for the whole process
// run. Any message turns every later status check of the backend into an error, so a
// conformance run fails on the first validation message.
class ValidationLog {
 public:
  void add(std::string message);
  Status status() const;  // ok while no message arrived

 private:
  mutable std::mutex mu_;
  std::vector<std::string> messages_;
};

class VulkanInstance {
 public:
  // validation enables the validation layer; sync adds synchronization validation. A requested
  // layer that is not installed is an error, not a silent skip.
  static Result<std::shared_ptr<VulkanInstance>> create(bool validation, bool sync);
  ~VulkanInstance();
  const VulkanApi& api() const { return api_; }
  VkInstance handle() const { return instance_; }
  bool validation() const { return validation_; }
  Status validation_status() const { return log_.status(); }

 private:
  std::shared_ptr<VulkanLibrary> lib_;
  VulkanApi api_;
  VkInstance instance_ = VK_NULL_HANDLE;
  VkDebugUtilsMessengerEXT messenger_ = VK_NULL_HANDLE;
  bool validation_ = false;
  ValidationLog log_;
};

// What Halyard needs to know of a physical device.
struct PhysicalDevice {
  VkPhysicalDevice handle = VK_NULL_HANDLE;
  DeviceInfo info;
  VkPhysicalDeviceProperties props{};
  VkPhysicalDeviceMemoryProperties memory{};
  std::uint32_t queue_family = 0;
  bool has_compute_queue = false;
  bool subgroup_arithmetic = false;  // in compute shaders
  std::uint32_t subgroup_size = 0;
  bool float64 = false;
  bool float16 = false;  // shaderFloat16 through VK_KHR_shader_float16_int8
  std::uint64_t max_allocation = 0;
};
std::vector<PhysicalDevice> enumerate_devices(const VulkanInstance& instance);

class VulkanDevice;

class VulkanBuffer final : public Buffer {
 public:
  ~VulkanBuffer() override;
  std::size_t size() const override { return size_; }
  Status upload(std::size_t offset, const void* src, std::size_t size) override;
  Status download(std::size_t offset, void* dst, std::size_t size) const override;
  VkBuffer handle() const { return buffer_; }
  // The allocation, at least size() and a multiple of 16 bytes (a shader may rewrite a whole
  // last word of a tensor whose size is not a multiple of 4).
  std::size_t allocated() const { return allocated_; }
  const VulkanDevice* device() const { return device_; }

 private:
  friend class VulkanDevice;
  VulkanBuffer(VulkanDevice* device, std::size_t size) : device_(device), size_(size) {}
  VulkanDevice* device_;
  std::size_t size_;
  std::size_t allocated_ = 0;
  VkBuffer buffer_ = VK_NULL_HANDLE;
  VkDeviceMemory memory_ = VK_NULL_HANDLE;
  void* mapped_ = nullptr;  // host-visible, coherent memory: copies are memcpy
};

// The vulkan.* backend options a device reads once, when it is created (backend.cpp's table).
struct VulkanDeviceOptions {
  bool no_fp16 = false;          // f32 prefill tiles even where the device has shaderFloat16
  bool no_subgroups = false;     // shared-memory reductions even with subgroup arithmetic
  std::size_t weight_chunk = 0;  // weight binding ranges at most this; 0: maxStorageBufferRange
  bool force_staging = false;    // copy through staging even where memory is host-visible
};

class VulkanDevice final : public Device {
 public:
  static Result<std::unique_ptr<VulkanDevice>> create(std::shared_ptr<VulkanInstance> instance,
                                                      const PhysicalDevice& physical,
                                                      const VulkanDeviceOptions& options);
  ~VulkanDevice() override;

  // The physical device's description plus the choices this device made from its options.
  const DeviceInfo& info() const override { return info_; }
  bool supports(OpKind op, std::span<const DType> input_dtypes) const override;
  // The weight dtypes this backend has shaders for (embed_*, matmul_*, copy_to_f32_*): F32, F16,
  // BF16 and every GGUF block format Halyard reads (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K..Q6_K,
  // IQ4_NL, IQ4_XS).
  static bool has_weight_shaders(DType dtype);
  // The dtypes COPY may encode from f32 on the GPU (copy_from_f32_*): F16, BF16, Q8_0, Q4_0,
  // Q4_1. The 5-bit formats and the K-quants have no GPU quantizer.
  static bool has_encoder_shader(DType dtype);
  // COPY from `from` to `to`: the same dtype (a buffer copy), any weight dtype to f32, or f32
  // to an encoder dtype. What supports(COPY) answers and what the executable lowers.
  static bool supports_copy(DType from, DType to);
  Result<std::unique_ptr<Buffer>> allocate(std::size_t bytes) override;
  // Device-local memory for an executable's own tensors, however small.
  Result<std::unique_ptr<Buffer>> allocate_internal(std::size_t bytes);
  Result<std::unique_ptr<Queue>> create_queue() override;
  Result<std::unique_ptr<Executable>> compile(const Graph& graph) override;

  const VulkanApi& api() const { return instance_->api(); }
  VkDevice handle() const { return device_; }
  const PhysicalDevice& physical() const { return physical_; }
  Status validation_status() const { return instance_->validation_status(); }

  // The largest range one storage-buffer descriptor may cover, and the alignment of its offset.
  std::size_t max_binding_range() const { return max_range_; }
  std::size_t binding_alignment() const { return alignment_; }
  // Weight row ranges per dispatch are kept under this (vulkan.weight_chunk_bytes lowers it, to
  // test splitting on small models).
  std::size_t weight_chunk_limit() const { return weight_chunk_; }
  bool use_subgroups() const { return use_subgroups_; }
  bool use_fp16() const { return use_fp16_; }
  bool rope_f64() const { return physical_.float64; }

  // A compute pipeline for an embedded shader and its specialization constants (constant 0 is
  // the workgroup size; the others are the shader's own), created once per device and kept.
  Result<VkPipeline> pipeline(const std::string& shader, std::vector<std::uint32_t> constants);
  VkPipelineLayout pipeline_layout() const { return pipeline_layout_; }
  VkDescriptorSetLayout set_layout() const { return set_layout_; }
  VkBuffer dummy_buffer() const { return dummy_->handle(); }

  // Submits one command buffer on the compute queue, signalling `fence`.
  Status submit(VkCommandBuffer cb, VkFence fence);
  Status wait_idle();
  // Synchronous copies through a staging buffer, for memory the host cannot map.
  Status staged_upload(const VulkanBuffer& dst, std::size_t offset, const void* src, std::size_t size);
  Status staged_download(const VulkanBuffer& src, std::size_t offset, void* dst, std::size_t size);

  static constexpr std::uint32_t kMaxBindings = 8;
  static constexpr std::uint32_t kPushConstantBytes = 128;

 private:
  VulkanDevice(std::shared_ptr<VulkanInstance> instance, const PhysicalDevice& physical,
               const VulkanDeviceOptions& options)
      : instance_(std::move(instance)), physical_(physical), options_(options) {}
  Status init();
  Result<std::unique_ptr<VulkanBuffer>> create_buffer(std::size_t bytes, bool host_access);
  Status staged_copy(const VulkanBuffer& buffer, std::size_t offset, void* host, std::size_t size, bool to_device);

  std::shared_ptr<VulkanInstance> instance_;
  PhysicalDevice physical_;
  VulkanDeviceOptions options_;
  DeviceInfo info_;
  VkDevice device_ = VK_NULL_HANDLE;
  VkQueue queue_ = VK_NULL_HANDLE;
  std::mutex submit_mu_;
  std::size_t max_range_ = 0, alignment_ = 16, weight_chunk_ = 0;
  bool use_subgroups_ = false;
  bool use_fp16_ = false;
  bool force_staging_ = false;

  VkDescriptorSetLayout set_layout_ = VK_NULL_HANDLE;
  VkPipelineLayout pipeline_layout_ = VK_NULL_HANDLE;
  std::mutex pipeline_mu_;
  std::unordered_map<std::string, VkPipeline> pipelines_;

  std::mutex transfer_mu_;
  VkCommandPool transfer_pool_ = VK_NULL_HANDLE;
  VkCommandBuffer transfer_cb_ = VK_NULL_HANDLE;
  VkFence transfer_fence_ = VK_NULL_HANDLE;
  std::unique_ptr<VulkanBuffer> staging_;
  std::unique_ptr<VulkanBuffer> dummy_;
};

// executable.cpp
Result<std::unique_ptr<Executable>> create_vulkan_executable(VulkanDevice& device, const Graph& graph);

// A memory barrier between everything recorded before and after it in `cb` (compute shaders and
// transfers; with `to_host`, host reads after).
void full_barrier(const VulkanApi& api, VkCommandBuffer cb, bool to_host = false);

}  // namespace halyard::vulkan
