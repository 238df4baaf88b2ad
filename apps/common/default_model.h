// Where the default model is, for the CLI and the server alike: HALYARD_MODEL_DIR, else
// ${XDG_CACHE_HOME:-~/.cache}/halyard/models, where scripts/fetch-model.sh stores it.
#pragma once

#include <cstdlib>
#include <string>

namespace halyard::apps {

inline constexpr const char* kDefaultModelFile = "SmolLM2-135M-Instruct.Q4_1.gguf";

inline std::string default_model_path() {
  if (const char* dir = std::getenv("HALYARD_MODEL_DIR"); dir && *dir)
    return std::string(dir) + "/" + kDefaultModelFile;
  std::string cache;
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x)
    cache = x;
  else if (const char* h = std::getenv("HOME"); h && *h)
    cache = std::string(h) + "/.cache";
  else
    cache = ".cache";
  return cache + "/halyard/models/" + kDefaultModelFile;
}

}  // namespace halyard::apps
