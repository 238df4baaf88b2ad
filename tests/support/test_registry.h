// The registry of the plugins built beside the tests, for tests that drive backends directly.
#pragma once

#include <gtest/gtest.h>

#include <memory>

#include "halyard/hal/registry.h"
#include "test_paths.h"

namespace halyard::testing {

inline std::unique_ptr<BackendRegistry> load_registry() {
  RegistryOptions o;
  o.search_paths = {plugin_dir()};
  auto reg = BackendRegistry::load(o);
  EXPECT_TRUE(reg.is_ok()) << reg.status().to_string();
  return reg.is_ok() ? std::move(reg).value() : nullptr;
}

}  // namespace halyard::testing
