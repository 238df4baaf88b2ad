// Graphs on Vulkan: each node is lowered once, at compile time, to dispatches of embedded
// compute shaders (or buffer copies) with their push constants. The first run records them into
// one command buffer with a descriptor set per dispatch; later runs with the same bindings replay
// it as it is (per-step values live in the bound input buffers), so a decode step costs one
// vkQueueSubmit. New bindings re-record.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>

#include "halyard/hal/host.h"
#include "vulkan_device.h"

namespace halyard::vulkan {
namespace {

std::uint32_t ceil_div(std::uint64_t a, std::uint64_t b) {
  return static_cast<std::uint32_t>((a + b - 1) / b);
}
std::uint32_t u32(std::int64_t v) {
  return static_cast<std::uint32_t>(v);
}
std::uint32_t float_word(float f) {
  std::uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

// One storage-buffer binding of a dispatch: a graph tensor (or an executable-owned constant),
// from `extra` bytes into it, `bytes` long. The shader receives its offset inside the bound range
// in push-constant word `index` (in 4-byte words, or bytes when `byte_offset`).
struct Arg {
  TensorId tensor = -1;
  int constant = -1;
  std::size_t extra = 0;
  std::size_t bytes = 0;
  bool byte_offset = false;
  bool offset_in_pc = true;
};

struct Step {
  bool is_copy = false;
  VkPipeline pipeline = VK_NULL_HANDLE;
  std::vector<Arg> args;  // dispatch: binding i = args[i]; copy: {src, dst}
  std::array<std::uint32_t, VulkanDevice::kPushConstantBytes / 4> pc{};
  std::array<std::uint32_t, 3> groups{1, 1, 1};
  std::string node;  // for error messages
};

// Where a tensor lives at run time.
struct Location {
  const VulkanBuffer* buffer = nullptr;
  std::size_t offset = 0;
};

struct FenceState {
  const VulkanApi* api = nullptr;
  VkDevice device = VK_NULL_HANDLE;
  VkFence fence = VK_NULL_HANDLE;
  bool in_flight = false;
  Status wait() {
    if (!in_flight)
      return Status::ok();
    if (VkResult r = api->vkWaitForFences(device, 1, &fence, VK_TRUE, UINT64_MAX); r != VK_SUCCESS)
      return internal_error("vkWaitForFences: " + vk_result_name(r));
    in_flight = false;
    return Status::ok();
  }
};

class VulkanEvent final : public Event {
 public:
  VulkanEvent(std::shared_ptr<FenceState> fence, const VulkanDevice& device)
      : fence_(std::move(fence)), device_(device) {}
  Status wait() override {
    HALYARD_RETURN_IF_ERROR(fence_->wait());
    return device_.validation_status();
  }

 private:
  std::shared_ptr<FenceState> fence_;
  const VulkanDevice& device_;
};

class VulkanExecutable final : public Executable {
 public:
  VulkanExecutable(VulkanDevice& device, const Graph& graph) : dev_(device), graph_(graph) {}
  ~VulkanExecutable() override;
  Status build();
  Result<std::unique_ptr<Event>> run(Queue& queue, std::span<const Binding> bindings) override;

 private:
  const TensorDesc& desc(TensorId id) const { return graph_.tensor(id).desc; }
  Arg tensor_arg(TensorId id) const {
    Arg a;
    a.tensor = id;
    a.bytes = (desc(id).bytes() + 3) / 4 * 4;
    return a;
  }
  // `wg` is the workgroup size; `constants` the shader's further specialization constants.
  Status add_dispatch(const GraphNode& node, const std::string& shader, std::uint32_t wg, std::vector<Arg> args,
                      std::initializer_list<std::uint32_t> params, std::array<std::uint32_t, 3> groups,
                      std::vector<std::uint32_t> constants = {});
  Status lower(const GraphNode& node);
  Status lower_weight_rows(const GraphNode& node);
  Status record(const std::vector<Location>& where);

  VulkanDevice& dev_;
  Graph graph_;
  std::vector<Step> steps_;
  IntermediatePlan plan_;
  std::vector<std::unique_ptr<Buffer>> slots_;      // intermediates
  std::vector<std::unique_ptr<Buffer>> constants_;  // RoPE frequencies
  VkDescriptorPool pool_ = VK_NULL_HANDLE;
  VkCommandPool cmd_pool_ = VK_NULL_HANDLE;
  VkCommandBuffer cb_ = VK_NULL_HANDLE;
  std::shared_ptr<FenceState> fence_ = std::make_shared<FenceState>();
  std::vector<Location> recorded_where_;  // the bindings cb_ holds; empty until recorded
  std::vector<Location> where_;           // run()'s scratch, kept so a step allocates nothing
};

VulkanExecutable::~VulkanExecutable() {
  const VulkanApi& vk = dev_.api();
  (void)fence_->wait();
  if (fence_->fence)
    vk.vkDestroyFence(dev_.handle(), fence_->fence, nullptr);
  if (cmd_pool_)
    vk.vkDestroyCommandPool(dev_.handle(), cmd_pool_, nullptr);
  if (pool_)
    vk.vkDestroyDescriptorPool(dev_.handle(), pool_, nullptr);
}

Status VulkanExecutable::add_dispatch(const GraphNode& node, const std::string& shader, std::uint32_t wg,
                                      std::vector<Arg> args, std::initializer_list<std::uint32_t> params,
                                      std::array<std::uint32_t, 3> groups, std::vector<std::uint32_t> constants) {
  Step step;
  constants.insert(constants.begin(), wg);
  HALYARD_ASSIGN_OR_RETURN(step.pipeline, dev_.pipeline(shader, std::move(constants)));
  step.node = graph_.tensor(node.output).name;
  std::size_t word = 0;
  for (const Arg& a : args)
    word += a.offset_in_pc ? 1 : 0;
  for (std::uint32_t p : params)
    step.pc[word++] = p;
  const auto& max_groups = dev_.physical().props.limits.maxComputeWorkGroupCount;
  for (int i = 0; i < 3; ++i) {
    if (groups[static_cast<std::size_t>(i)] > max_groups[i]) {
      return resource_exhausted(std::string(op_name(node.op)) + " '" + step.node + "' needs " +
                                std::to_string(groups[static_cast<std::size_t>(i)]) + " workgroups in dimension " +
                                std::to_string(i) + "; the device allows " + std::to_string(max_groups[i]));
    }
  }
  step.args = std::move(args);
  step.groups = groups;
  steps_.push_back(std::move(step));
  return Status::ok();
}

// EMBED and MATMUL read a weight that may be larger than one binding may cover (lavapipe:
// 128 MiB; a 1B model's embedding is 280 MB): split its rows into ranges that fit, one dispatch
// each.
Status VulkanExecutable::lower_weight_rows(const GraphNode& node) {
  const TensorDesc& w = desc(node.inputs[0]);
  const std::string dt(dtype_name(w.dtype));
  const std::size_t row_bytes = w.row_size();
  const std::int64_t rows = w.ne[1];
  const std::size_t usable = dev_.weight_chunk_limit() - dev_.binding_alignment();
  if (row_bytes > usable) {
    return resource_exhausted(std::string(op_name(node.op)) + ": a weight row of " + std::to_string(row_bytes) +
                              " bytes exceeds the device's binding range");
  }
  const std::int64_t per_chunk = static_cast<std::int64_t>(usable / row_bytes);
  const TensorId out = node.output;
  for (std::int64_t r0 = 0; r0 < rows; r0 += per_chunk) {
    const std::int64_t r1 = std::min(rows, r0 + per_chunk);
    Arg wa;
    wa.tensor = node.inputs[0];
    wa.extra = static_cast<std::size_t>(r0) * row_bytes;
    wa.bytes = static_cast<std::size_t>(r1 - r0) * row_bytes;
    wa.byte_offset = true;
    if (node.op == OpKind::kEmbed) {
      const std::int64_t d = w.ne[0], n = desc(node.inputs[1]).ne[0];
      HALYARD_RETURN_IF_ERROR(
          add_dispatch(node, "embed_" + dt, 64, {wa, tensor_arg(node.inputs[1]), tensor_arg(out)},
                       {u32(d), u32(n), u32(row_bytes), u32(r0), u32(r1), u32(rows), float_word(node.params.scale)},
                       {ceil_div(d, 64), u32(n), 1}));
    } else {
      const TensorDesc& x = desc(node.inputs[1]);
      const std::int64_t k = w.ne[0], n = x.ne[1], m = r1 - r0;
      const std::initializer_list<std::uint32_t> params = {u32(k), u32(m), u32(n), u32(r0), u32(rows), u32(row_bytes)};
      std::vector<Arg> args = {wa, tensor_arg(node.inputs[1]), tensor_arg(out)};
      if (n >= 32) {  // shorter prompts: the mat-vec kernel, 4 tokens per workgroup, wastes no tile
        HALYARD_RETURN_IF_ERROR(add_dispatch(node, "matmul_tiled_" + dt + (dev_.use_fp16() ? "_fp16" : ""), 256, args,
                                             params, {ceil_div(m, 64), ceil_div(n, 64), 1}));
      } else {
        const std::string variant = dev_.use_subgroups() ? "_sg" : "_nosg";
        const std::uint32_t row_groups = ceil_div(m, 4);  // 4 rows per workgroup (NR in the shader)
        HALYARD_RETURN_IF_ERROR(
            add_dispatch(node, "matmul_vec_" + dt + variant, 64, args, params,
                         {std::min<std::uint32_t>(row_groups, 32768), ceil_div(row_groups, 32768), ceil_div(n, 4)}));
      }
    }
  }
  return Status::ok();
}

Status VulkanExecutable::lower(const GraphNode& node) {
  const auto& in = node.inputs;
  const TensorId out = node.output;
  const OpParams& p = node.params;
  const std::string sg = dev_.use_subgroups() ? "_sg" : "_nosg";
  switch (node.op) {
    case OpKind::kEmbed:
    case OpKind::kMatmul:
      return lower_weight_rows(node);
    case OpKind::kRmsNorm: {
      // A norm group (per-head Q/K norm) is a row of its own: the shader sees [g, rows * d / g].
      const TensorDesc& x = desc(in[0]);
      const std::int64_t d = p.norm_group > 0 ? p.norm_group : x.ne[0];
      const std::int64_t rows = x.rows() * (x.ne[0] / d);
      const auto gx = static_cast<std::uint32_t>(std::clamp<std::int64_t>(rows, 1, 65535));  // 0 rows: no groups
      return add_dispatch(node, "rms_norm" + sg, 128, {tensor_arg(in[0]), tensor_arg(in[1]), tensor_arg(out)},
                          {u32(d), float_word(p.eps), u32(rows)}, {gx, ceil_div(rows, gx), 1});
    }
    case OpKind::kSoftmax: {
      const TensorDesc& x = desc(in[0]);
      return add_dispatch(node, "softmax" + sg, 128, {tensor_arg(in[0]), tensor_arg(out)}, {u32(x.ne[0])},
                          {u32(x.rows()), 1, 1});
    }
    case OpKind::kArgmax: {
      const TensorDesc& x = desc(in[0]);
      return add_dispatch(node, "argmax", 128, {tensor_arg(in[0]), tensor_arg(out)}, {u32(x.ne[0])},
                          {u32(x.rows()), 1, 1});
    }
    case OpKind::kAdd:
    case OpKind::kMul:
    case OpKind::kSwiglu:
    case OpKind::kGeglu: {
      const TensorDesc& a = desc(in[0]);
      const TensorDesc& b = desc(in[1]);
      const std::uint32_t code = node.op == OpKind::kAdd      ? 0
                                 : node.op == OpKind::kMul    ? 1
                                 : node.op == OpKind::kSwiglu ? 2
                                                              : 3;
      const bool broadcast = b.rows() == 1 && a.rows() != 1;
      return add_dispatch(node, "binary", 64, {tensor_arg(in[0]), tensor_arg(in[1]), tensor_arg(out)},
                          {u32(a.ne[0]), u32(a.rows()), code, broadcast ? 1u : 0u},
                          {ceil_div(a.ne[0], 64), u32(a.rows()), 1});
    }
    case OpKind::kRope: {
      const TensorDesc& x = desc(in[0]);
      const int hd = p.head_dim, dims = p.rope_dims ? p.rope_dims : p.head_dim;
      if (hd % 2 != 0 || dims % 2 != 0 || dims > hd)
        return unimplemented("ROPE on vulkan needs an even head_dim and rope_dims <= head_dim");
      // The frequencies, once per node, in double where the device has float64.
      const bool f64 = dev_.rope_f64();
      std::vector<std::uint8_t> bytes(static_cast<std::size_t>(dims / 2) * (f64 ? 8 : 4));
      for (int i = 0; i < dims / 2; ++i) {
        const double f = std::pow(static_cast<double>(p.rope_base), -2.0 * i / dims);
        if (f64) {
          std::memcpy(bytes.data() + 8 * i, &f, 8);
        } else {
          const float ff = static_cast<float>(f);
          std::memcpy(bytes.data() + 4 * i, &ff, 4);
        }
      }
      HALYARD_ASSIGN_OR_RETURN(auto freq, dev_.allocate(bytes.size()));
      HALYARD_RETURN_IF_ERROR(freq->upload(0, bytes.data(), bytes.size()));
      Arg fa;
      fa.constant = static_cast<int>(constants_.size());
      fa.bytes = bytes.size();
      fa.offset_in_pc = false;
      constants_.push_back(std::move(freq));
      const std::int64_t heads = x.ne[0] / hd;
      // Frequency factors are a graph input (binding 4, its offset in push-constant word 3); with
      // none, word 3 is a 0 pushed in its place and the shader never reads binding 4.
      const bool factors = in.size() == 3;
      std::vector<Arg> args = {tensor_arg(in[0]), tensor_arg(in[1]), tensor_arg(out), fa};
      if (factors)
        args.push_back(tensor_arg(in[2]));
      const std::uint32_t neox = p.rope_layout == RopeLayout::kNeox ? 1u : 0u;
      const auto groups = std::array<std::uint32_t, 3>{ceil_div(heads * (hd / 2), 64), u32(x.ne[1]), 1};
      const std::string shader = f64 ? "rope_f64" : "rope_f32";
      if (factors)
        return add_dispatch(node, shader, 64, std::move(args),
                            {u32(x.ne[0]), u32(hd), u32(dims), neox, u32(x.ne[1]), 1u}, groups);
      return add_dispatch(node, shader, 64, std::move(args),
                          {0u, u32(x.ne[0]), u32(hd), u32(dims), neox, u32(x.ne[1]), 0u}, groups);
    }
    case OpKind::kAttention: {
      const TensorDesc& q = desc(in[0]);
      const TensorDesc& cache = desc(in[3]);
      const std::int64_t n = q.ne[1], hd = p.head_dim, kvdim = hd * p.n_kv_heads;
      if (hd > 256)
        return unimplemented("ATTENTION on vulkan supports head_dim up to 256");
      // f16 caches are uint words of two elements: an even head size keeps every row (and every
      // kv_store invocation's pair) on whole words.
      const bool f16 = cache.dtype == DType::kF16;
      if (f16 && hd % 2 != 0)
        return unimplemented("ATTENTION on vulkan with f16 caches needs an even head_dim");
      const TensorDesc& table = desc(in[7]);
      // The paged cache's geometry: block size and pool size from the caches, max blocks per
      // sequence and sequence slots from the block table.
      const std::uint32_t block_size = u32(cache.ne[1]), n_blocks = u32(cache.ne[2]);
      const std::uint32_t max_blocks = u32(table.ne[0]), slots = u32(table.ne[1]);
      HALYARD_RETURN_IF_ERROR(add_dispatch(node, f16 ? "kv_store_f16" : "kv_store", 64,
                                           {tensor_arg(in[1]), tensor_arg(in[2]), tensor_arg(in[3]), tensor_arg(in[4]),
                                            tensor_arg(in[5]), tensor_arg(in[6]), tensor_arg(in[7])},
                                           {u32(kvdim), block_size, n_blocks, max_blocks, slots, u32(n)},
                                           {ceil_div(f16 ? kvdim / 2 : kvdim, 64), u32(n), 1}));
      const float scale = p.attention_scale != 0.f ? p.attention_scale : 1.f / std::sqrt(static_cast<float>(hd));
      return add_dispatch(node, (f16 ? "attention_f16" : "attention") + sg, 128,
                          {tensor_arg(in[0]), tensor_arg(in[3]), tensor_arg(in[4]), tensor_arg(in[5]),
                           tensor_arg(in[6]), tensor_arg(in[7]), tensor_arg(out)},
                          {u32(hd), u32(p.n_heads), u32(p.n_kv_heads), block_size, n_blocks, max_blocks, slots,
                           float_word(scale), u32(p.sliding_window)},
                          {u32(p.n_heads), u32(n), 1}, {u32(hd)});  // the shared query buffer is head_dim long
    }
    case OpKind::kCopy: {
      const TensorDesc& x = desc(in[0]);
      const TensorDesc& o = desc(out);
      if (!VulkanDevice::supports_copy(x.dtype, o.dtype)) {
        return unimplemented("COPY from " + std::string(dtype_name(x.dtype)) + " to " +
                             std::string(dtype_name(o.dtype)) +
                             " on vulkan: only same-type copies, any weight format to f32, and f32 to f16, bf16, "
                             "q8_0, q4_0 or q4_1");
      }
      if (x.dtype == o.dtype) {
        Step step;
        step.is_copy = true;
        step.node = graph_.tensor(out).name;
        Arg src = tensor_arg(in[0]), dst = tensor_arg(out);
        src.bytes = dst.bytes = x.bytes();
        step.args = {src, dst};
        steps_.push_back(std::move(step));
        return Status::ok();
      }
      if (o.dtype == DType::kF32 && x.dtype != DType::kI32) {
        Arg src = tensor_arg(in[0]);
        src.byte_offset = true;
        return add_dispatch(node, "copy_to_f32_" + std::string(dtype_name(x.dtype)), 64, {src, tensor_arg(out)},
                            {u32(x.ne[0]), u32(x.rows()), u32(x.row_size())},
                            {ceil_div(x.ne[0], 64), u32(x.rows()), 1});
      }
      if (x.dtype == DType::kF32 && o.dtype != DType::kI32) {
        return add_dispatch(node, "copy_from_f32_" + std::string(dtype_name(o.dtype)), 64,
                            {tensor_arg(in[0]), tensor_arg(out)}, {u32(o.bytes())}, {ceil_div(o.bytes(), 256), 1, 1});
      }
      return unimplemented("COPY from " + std::string(dtype_name(x.dtype)) + " to " + std::string(dtype_name(o.dtype)) +
                           " on vulkan (only same-type copies and conversions from or to f32)");
    }
  }
  return unimplemented("unknown op");
}

Status VulkanExecutable::build() {
  HALYARD_RETURN_IF_ERROR(graph_.validate());
  plan_ = plan_intermediates(graph_);
  for (std::size_t bytes : plan_.slot_bytes) {
    HALYARD_ASSIGN_OR_RETURN(auto b, dev_.allocate_internal(bytes));
    slots_.push_back(std::move(b));
  }
  for (const auto& node : graph_.nodes()) {
    if (Status s = lower(node); !s.is_ok())
      return Status(s.code(), s.message() + " (node '" + graph_.tensor(node.output).name + "')");
  }
  std::uint32_t dispatches = 0;
  for (const auto& s : steps_)
    dispatches += s.is_copy ? 0 : 1;
  const VulkanApi& vk = dev_.api();
  VkDescriptorPoolSize size{VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, std::max(1u, dispatches) * VulkanDevice::kMaxBindings};
  VkDescriptorPoolCreateInfo dpci{VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO};
  dpci.maxSets = std::max(1u, dispatches);
  dpci.poolSizeCount = 1;
  dpci.pPoolSizes = &size;
  if (VkResult r = vk.vkCreateDescriptorPool(dev_.handle(), &dpci, nullptr, &pool_); r != VK_SUCCESS)
    return resource_exhausted("vkCreateDescriptorPool: " + vk_result_name(r));
  VkCommandPoolCreateInfo cpci{VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO};
  cpci.flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT;
  cpci.queueFamilyIndex = dev_.physical().queue_family;
  if (VkResult r = vk.vkCreateCommandPool(dev_.handle(), &cpci, nullptr, &cmd_pool_); r != VK_SUCCESS)
    return internal_error("vkCreateCommandPool: " + vk_result_name(r));
  VkCommandBufferAllocateInfo cai{VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO};
  cai.commandPool = cmd_pool_;
  cai.level = VK_COMMAND_BUFFER_LEVEL_PRIMARY;
  cai.commandBufferCount = 1;
  if (VkResult r = vk.vkAllocateCommandBuffers(dev_.handle(), &cai, &cb_); r != VK_SUCCESS)
    return internal_error("vkAllocateCommandBuffers: " + vk_result_name(r));
  fence_->api = &vk;
  fence_->device = dev_.handle();
  VkFenceCreateInfo fci{VK_STRUCTURE_TYPE_FENCE_CREATE_INFO};
  if (VkResult r = vk.vkCreateFence(dev_.handle(), &fci, nullptr, &fence_->fence); r != VK_SUCCESS)
    return internal_error("vkCreateFence: " + vk_result_name(r));
  return Status::ok();
}

Status VulkanExecutable::record(const std::vector<Location>& where) {
  const VulkanApi& vk = dev_.api();
  const std::size_t align = dev_.binding_alignment();
  const std::size_t max_range = dev_.max_binding_range();
  vk.vkResetDescriptorPool(dev_.handle(), pool_, 0);
  vk.vkResetCommandBuffer(cb_, 0);
  VkCommandBufferBeginInfo bi{VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO};
  vk.vkBeginCommandBuffer(cb_, &bi);
  full_barrier(vk, cb_);  // after the previous run's writes (KV cache, reused intermediates)

  struct Resolved {
    VkBuffer buffer;
    std::size_t desc_offset, range, rel;
  };
  auto resolve = [&](const Step& step, const Arg& a, bool exact) -> Result<Resolved> {
    const VulkanBuffer* buf = nullptr;
    std::size_t base = 0;
    if (a.constant >= 0) {
      buf = static_cast<const VulkanBuffer*>(constants_[static_cast<std::size_t>(a.constant)].get());
    } else {
      buf = where[static_cast<std::size_t>(a.tensor)].buffer;
      base = where[static_cast<std::size_t>(a.tensor)].offset;
    }
    const std::size_t abs = base + a.extra;
    if (exact)
      return Resolved{buf->handle(), abs, a.bytes, 0};
    Resolved r{buf->handle(), abs - abs % align, 0, 0};
    r.rel = abs - r.desc_offset;
    r.range = std::min(buf->allocated() - r.desc_offset, max_range);
    if (r.rel + a.bytes > r.range) {
      return resource_exhausted("'" + step.node + "' binds " + std::to_string(a.bytes) +
                                " bytes, more than one Vulkan binding may cover (" + std::to_string(max_range) +
                                " bytes on this device); use a smaller context or batch");
    }
    if (!a.byte_offset && r.rel % 4 != 0)
      return invalid_argument("'" + step.node + "': a tensor bound at an offset that is not a multiple of 4");
    return r;
  };

  std::vector<VkDescriptorSet> sets;
  std::vector<VkDescriptorSetLayout> layouts;
  for (const auto& s : steps_) {
    if (!s.is_copy)
      layouts.push_back(dev_.set_layout());
  }
  if (!layouts.empty()) {
    sets.resize(layouts.size());
    VkDescriptorSetAllocateInfo dai{VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO};
    dai.descriptorPool = pool_;
    dai.descriptorSetCount = static_cast<std::uint32_t>(layouts.size());
    dai.pSetLayouts = layouts.data();
    if (VkResult r = vk.vkAllocateDescriptorSets(dev_.handle(), &dai, sets.data()); r != VK_SUCCESS)
      return internal_error("vkAllocateDescriptorSets: " + vk_result_name(r));
  }
  std::size_t set_index = 0;
  for (const Step& step : steps_) {
    if (step.is_copy) {
      HALYARD_ASSIGN_OR_RETURN(Resolved src, resolve(step, step.args[0], true));
      HALYARD_ASSIGN_OR_RETURN(Resolved dst, resolve(step, step.args[1], true));
      VkBufferCopy region{src.desc_offset, dst.desc_offset, step.args[0].bytes};
      if (region.size > 0)
        vk.vkCmdCopyBuffer(cb_, src.buffer, dst.buffer, 1, &region);
      full_barrier(vk, cb_);
      continue;
    }
    std::array<VkDescriptorBufferInfo, VulkanDevice::kMaxBindings> infos{};
    auto pc = step.pc;
    std::size_t word = 0;
    for (std::size_t i = 0; i < VulkanDevice::kMaxBindings; ++i) {
      if (i < step.args.size()) {
        const Arg& a = step.args[i];
        HALYARD_ASSIGN_OR_RETURN(Resolved r, resolve(step, a, false));
        infos[i] = {r.buffer, r.desc_offset, r.range};
        if (a.offset_in_pc)
          pc[word++] = static_cast<std::uint32_t>(a.byte_offset ? r.rel : r.rel / 4);
      } else {
        infos[i] = {dev_.dummy_buffer(), 0, VK_WHOLE_SIZE};
      }
    }
    std::array<VkWriteDescriptorSet, VulkanDevice::kMaxBindings> writes{};
    for (std::uint32_t i = 0; i < VulkanDevice::kMaxBindings; ++i) {
      writes[i].sType = VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET;
      writes[i].dstSet = sets[set_index];
      writes[i].dstBinding = i;
      writes[i].descriptorCount = 1;
      writes[i].descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER;
      writes[i].pBufferInfo = &infos[i];
    }
    vk.vkUpdateDescriptorSets(dev_.handle(), VulkanDevice::kMaxBindings, writes.data(), 0, nullptr);
    vk.vkCmdBindPipeline(cb_, VK_PIPELINE_BIND_POINT_COMPUTE, step.pipeline);
    vk.vkCmdBindDescriptorSets(cb_, VK_PIPELINE_BIND_POINT_COMPUTE, dev_.pipeline_layout(), 0, 1, &sets[set_index], 0,
                               nullptr);
    vk.vkCmdPushConstants(cb_, dev_.pipeline_layout(), VK_SHADER_STAGE_COMPUTE_BIT, 0, VulkanDevice::kPushConstantBytes,
                          pc.data());
    vk.vkCmdDispatch(cb_, step.groups[0], step.groups[1], step.groups[2]);
    full_barrier(vk, cb_);
    ++set_index;
  }
  full_barrier(vk, cb_, /*to_host=*/true);
  if (VkResult r = vk.vkEndCommandBuffer(cb_); r != VK_SUCCESS)
    return internal_error("vkEndCommandBuffer: " + vk_result_name(r));
  return Status::ok();
}

Result<std::unique_ptr<Event>> VulkanExecutable::run(Queue& /*queue*/, std::span<const Binding> bindings) {
  HALYARD_RETURN_IF_ERROR(dev_.validation_status());
  const auto& tensors = graph_.tensors();
  std::vector<Location>& where = where_;
  where.assign(tensors.size(), Location{});
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    if (plan_.slot_of[i] >= 0)
      where[i] = {static_cast<const VulkanBuffer*>(slots_[static_cast<std::size_t>(plan_.slot_of[i])].get()), 0};
  }
  for (const Binding& b : bindings) {
    if (b.tensor < 0 || static_cast<std::size_t>(b.tensor) >= tensors.size() || !b.buffer)
      return invalid_argument("binding names no tensor of this graph");
    const auto* vb = dynamic_cast<const VulkanBuffer*>(b.buffer);
    if (!vb || vb->device() != &dev_)
      return invalid_argument("tensor '" + tensors[static_cast<std::size_t>(b.tensor)].name +
                              "' is bound to a buffer of another device");
    const auto& t = tensors[static_cast<std::size_t>(b.tensor)];
    if (b.offset > b.buffer->size() || t.desc.bytes() > b.buffer->size() - b.offset)
      return invalid_argument("buffer bound to '" + t.name + "' is too small for " + t.desc.to_string());
    where[static_cast<std::size_t>(b.tensor)] = {vb, b.offset};
  }
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    if (!where[i].buffer)
      return invalid_argument("tensor '" + tensors[i].name + "' is not bound");
  }
  // The previous run must be done before its command buffer is submitted (or re-recorded) again.
  HALYARD_RETURN_IF_ERROR(fence_->wait());
  const bool same =
      std::equal(where.begin(), where.end(), recorded_where_.begin(), recorded_where_.end(),
                 [](const Location& a, const Location& b) { return a.buffer == b.buffer && a.offset == b.offset; });
  if (!same) {
    recorded_where_.clear();  // a failed recording leaves nothing to replay
    HALYARD_RETURN_IF_ERROR(record(where));
    recorded_where_ = where;
  }
  const VulkanApi& vk = dev_.api();
  vk.vkResetFences(dev_.handle(), 1, &fence_->fence);
  HALYARD_RETURN_IF_ERROR(dev_.submit(cb_, fence_->fence));
  fence_->in_flight = true;
  return std::unique_ptr<Event>(new VulkanEvent(fence_, dev_));
}

}  // namespace

Result<std::unique_ptr<Executable>> create_vulkan_executable(VulkanDevice& device, const Graph& graph) {
  auto exe = std::make_unique<VulkanExecutable>(device, graph);
  HALYARD_RETURN_IF_ERROR(exe->build());
  return std::unique_ptr<Executable>(std::move(exe));
}

}  // namespace halyard::vulkan
