// What the two conformance drivers share: their command line, and the one test a run has when its
// device is not available (skipped, with the reason, so the run is counted as skipped and never
// as passed).
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "halyard/hal/backend_options.h"

namespace halyard::conformance {

// --device URI [-o KEY=VALUE]... [--cpu-kernels SET] [--cpu-prefill PATH]
// --cpu-kernels X and --cpu-prefill X are shorthands for -o cpu.kernels=X and -o cpu.prefill=X.
// The HALYARD_* variables of the options are added by the registry when it opens the device, as
// for every other command.
struct DriverArgs {
  std::string uri;
  std::vector<OptionSetting> options;
  std::string error;  // a malformed -o; the driver reports it and fails
  std::string describe() const {
    std::string out;
    for (const auto& o : options)
      out += " " + o.key + "=" + o.value;
    return out;
  }
};

inline DriverArgs parse_driver_args(int argc, char** argv, std::string default_uri) {
  DriverArgs a{std::move(default_uri), {}, {}};
  for (int i = 1; i + 1 < argc; ++i) {
    const std::string flag = argv[i];
    const std::string value = argv[i + 1];
    if (flag == "--device") {
      a.uri = value;
    } else if (flag == "--cpu-kernels") {
      a.options.push_back({"cpu.kernels", value});
    } else if (flag == "--cpu-prefill") {
      a.options.push_back({"cpu.prefill", value});
    } else if (flag == "-o" || flag == "--option") {
      auto s = parse_option_setting(value);
      if (s.is_ok())
        a.options.push_back(std::move(s).value());
      else
        a.error = s.status().message();
    } else {
      continue;
    }
    ++i;
  }
  return a;
}

class UnavailableTest : public ::testing::Test {
 public:
  explicit UnavailableTest(std::string reason) : reason_(std::move(reason)) {}
  // The marker is what ctest's SKIP_REGULAR_EXPRESSION matches (tests/CMakeLists.txt): only a
  // whole run on a device that is not there is reported as skipped. A case skipped inside a run
  // (an unsupported op/dtype) prints gtest's usual "[  SKIPPED ]" and cannot mask a failure.
  void TestBody() override { GTEST_SKIP() << kUnavailableMarker << reason_; }
  static constexpr const char* kUnavailableMarker = "HALYARD_DEVICE_UNAVAILABLE: ";

 private:
  std::string reason_;
};

inline void register_unavailable(const std::string& uri, const std::string& reason) {
  ::testing::RegisterTest(uri.c_str(), "unavailable", nullptr, nullptr, __FILE__, __LINE__,
                          [reason]() -> ::testing::Test* { return new UnavailableTest(reason); });
}

}  // namespace halyard::conformance
