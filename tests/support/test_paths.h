// Where tests find their data and the real model.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <string>

namespace halyard::testing {

inline std::string data_dir() {
  return HALYARD_TEST_DATA_DIR;
}

// The default model: HALYARD_TEST_MODEL, else the model cache scripts/fetch-model.sh fills.
inline std::string default_model_path() {
  if (const char* p = std::getenv("HALYARD_TEST_MODEL"); p && *p)
    return p;
  std::string cache;
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x) {
    cache = x;
  } else {
    cache = std::string(std::getenv("HOME") ? std::getenv("HOME") : ".") + "/.cache";
  }
  return cache + "/halyard/models/SmolLM2-135M-Instruct.Q4_1.gguf";
}

// Directory holding the built plugins (the test binaries live beside them).
inline std::string plugin_dir() {
  return HALYARD_PLUGIN_DIR;
}

}  // namespace halyard::testing

// The real model is part of the test fixture (scripts/test.sh fetches it); its absence is a
// failure with instructions, not a skip.
#define HALYARD_REQUIRE_MODEL(path)                                                                          \
  do {                                                                                                       \
    if (!std::filesystem::exists(path)) {                                                                    \
      FAIL() << "model not found at " << (path) << ": run scripts/fetch-model.sh or set HALYARD_TEST_MODEL"; \
    }                                                                                                        \
  } while (0)
