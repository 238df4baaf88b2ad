// The compute shaders of kernels/vulkan, compiled to SPIR-V by glslc at build time and embedded
// in the Vulkan backend; one entry per variant (dtype, subgroup or fallback reductions, ...).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace halyard::vulkan {

struct ShaderBinary {
  const char* name;
  const std::uint32_t* words;
  std::size_t word_count;
};

// nullptr when no variant has that name.
const ShaderBinary* find_shader(std::string_view name);

}  // namespace halyard::vulkan
