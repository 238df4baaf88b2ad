// `halyard quantize IN.gguf OUT.gguf TYPE`: writes a quantized copy of a GGUF model through the
// C API (halyard_quantize), printing the plan, warnings and a per-format summary.
#pragma once

#include <string>

struct QuantizeArgs {
  std::string input;
  std::string output;
  std::string type;
  bool pure = false;
  int threads = 0;
};

int run_quantize(const QuantizeArgs& args);
