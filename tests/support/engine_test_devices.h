// The devices the engine's model tests (Context, Scheduler) run on: ref and cpu by default;
// HALYARD_CONTEXT_TEST_DEVICES (comma-separated URIs) replaces them, for the GPU entries of
// tests/CMakeLists.txt. Header-only, for tests.
#pragma once

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <string>
#include <vector>

namespace halyard::testing {

inline std::vector<std::string> engine_test_devices() {
  if (const char* env = std::getenv("HALYARD_CONTEXT_TEST_DEVICES"); env && *env) {
    std::vector<std::string> out;
    std::string cur;
    for (const char* c = env;; ++c) {
      if (*c == ',' || *c == '\0') {
        if (!cur.empty())
          out.push_back(cur);
        cur.clear();
        if (*c == '\0')
          break;
      } else {
        cur += *c;
      }
    }
    return out;
  }
#ifdef HALYARD_TEST_WITH_CPU
  return {"ref", "cpu"};
#else
  return {"ref"};
#endif
}

// A gtest parameter name for a device URI ("vulkan:0" -> "vulkan_0").
inline std::string device_test_name(std::string uri) {
  std::replace_if(
      uri.begin(), uri.end(), [](char c) { return !std::isalnum(static_cast<unsigned char>(c)); }, '_');
  return uri;
}

}  // namespace halyard::testing
