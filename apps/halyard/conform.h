// `halyard conform`: the op-level conformance suite on chosen devices, as a backend x op x dtype
// matrix (terminal table and JSON). Unlike the other commands it works below the C API: it
// drives backends through the HAL registry, which is what it tests.
#pragma once

#include <string>
#include <vector>

struct ConformArgs {
  std::vector<std::string> devices;  // empty: every available device
  std::string op;                    // empty: every op
  std::string json_path;
  int threads = 0;
  unsigned long long seed = 20261128;
  std::vector<std::string> options;  // backend options, "key=value"
};

int run_conform(const ConformArgs& args);
