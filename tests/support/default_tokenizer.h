// A test fixture with the default model's tokenizer, read once per suite from its GGUF (no
// device, no weights). A test needs the model file: without it, it fails with the reason
// (HALYARD_REQUIRE_MODEL), as every test of the real model does.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "halyard/runtime/gguf.h"
#include "halyard/runtime/tokenizer.h"
#include "test_paths.h"

namespace halyard::testing {

class DefaultTokenizerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (tokenizer_)
      return;
    const std::string path = default_model_path();
    if (!std::filesystem::exists(path))
      return;
    auto f = runtime::GgufFile::open(path);
    ASSERT_TRUE(f.is_ok()) << f.status().to_string();
    file_ = std::move(f).value().release();
    auto t = runtime::Tokenizer::from_gguf(*file_);
    ASSERT_TRUE(t.is_ok()) << t.status().to_string();
    tokenizer_ = std::move(t).value().release();
  }
  void SetUp() override { HALYARD_REQUIRE_MODEL(default_model_path()); }

  // Kept for the process's life: several suites share them.
  static inline runtime::GgufFile* file_ = nullptr;
  static inline runtime::Tokenizer* tokenizer_ = nullptr;
};

}  // namespace halyard::testing
