// What the two conformance drivers share: their command line, and the one test a run has when its
// device is not available (skipped, with the reason, so the run is counted as skipped and never
// as passed).
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <utility>

namespace halyard::conformance {

// --device URI [--cpu-kernels SET] [--cpu-prefill PATH]
struct DriverArgs {
  std::string uri;
  std::string cpu_kernels;
  std::string cpu_prefill;
};

inline DriverArgs parse_driver_args(int argc, char** argv, std::string default_uri) {
  DriverArgs a{std::move(default_uri), {}, {}};
  for (int i = 1; i + 1 < argc; ++i) {
    const std::string flag = argv[i];
    if (flag == "--device")
      a.uri = argv[i + 1];
    else if (flag == "--cpu-kernels")
      a.cpu_kernels = argv[i + 1];
    else if (flag == "--cpu-prefill")
      a.cpu_prefill = argv[i + 1];
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
