// `halyard bench`: prompt processing and token generation speed per device, in the spirit of
// llama-bench (same test names, pp<N> and tg<N>), plus time to first token and the effective
// memory bandwidth of decode. Uses only the public C API.
#pragma once

#include <string>
#include <vector>

struct BenchArgs {
  std::string model;
  std::vector<std::string> devices{"auto"};
  int prompt_tokens = 512;
  int gen_tokens = 128;
  int repeats = 5;
  int threads = 0;
  int kv_dtype = 0;               // halyard_model_options.kv_dtype (HALYARD_KV_F16 or HALYARD_KV_F32)
  bool force_gpt2_split = false;  // halyard_model_options.force_gpt2_split
  bool no_mmap = false;           // HALYARD_LOAD_NO_MMAP: copy the weights instead of using the mapped file
  std::string json_path;
  std::vector<std::string> options;  // backend options, "key=value"
  // > 0: measure aggregate decode of this many concurrent sequences in one context instead
  // (each prefilled with its own -p prompt, then -n steps of one token per sequence).
  int batch = 0;
  // Measure time to first token of a -p prompt cold and with its blocks in the prefix cache.
  bool prefix_cache = false;
  // With --batch: sequence q of N gets a prompt of ceil(p * (q+1) / N) tokens instead of p.
  bool mixed = false;
  // With --batch: the context's KV blocks (halyard_context_options.kv_blocks; 0: every sequence
  // can fill the context) and the model's context length (0: the longest prompt + n + 8).
  int kv_blocks = 0;
  int context_length = 0;
};

int run_bench(const BenchArgs& args);
