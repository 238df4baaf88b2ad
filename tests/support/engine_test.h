// What the engine's model tests (Context, Scheduler) share: the devices they run on (ref and cpu
// by default; HALYARD_CONTEXT_TEST_DEVICES, comma-separated URIs, replaces them for the GPU
// entries of tests/CMakeLists.txt) and a fixture holding the default model on each, loaded once
// per device with a 64-position context. Header-only, for tests.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "halyard/runtime/model.h"
#include "test_paths.h"

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

// Parameterised by device URI; model_ is the default model on it.
class EngineModelTest : public ::testing::TestWithParam<std::string> {
 protected:
  static constexpr int kContextLength = 64;
  static void SetUpTestSuite() {
    if (registry_)
      return;  // shared by every suite deriving from this
    RegistryOptions ro;
    ro.search_paths = {plugin_dir()};
    auto reg = BackendRegistry::load(ro);
    ASSERT_TRUE(reg.is_ok()) << reg.status().to_string();
    registry_ = std::move(reg).value().release();
  }
  void SetUp() override {
    HALYARD_REQUIRE_MODEL(default_model_path());
    model_ = model_for(GetParam());
    ASSERT_NE(model_, nullptr);
  }
  // The model on a device (loaded once, as the parameter's is).
  runtime::Model* model_for(const std::string& device) {
    auto& slot = models_[device];
    if (!slot) {
      runtime::ModelOptions mo;
      mo.device = device;
      mo.context_length = kContextLength;
      auto model = runtime::Model::load(default_model_path(), mo, *registry_);
      EXPECT_TRUE(model.is_ok()) << model.status().to_string();
      if (!model.is_ok())
        return nullptr;
      slot = std::move(model).value();
    }
    return slot.get();
  }

  static inline BackendRegistry* registry_ = nullptr;
  static inline std::map<std::string, std::unique_ptr<runtime::Model>> models_;
  runtime::Model* model_ = nullptr;
};

}  // namespace halyard::testing
