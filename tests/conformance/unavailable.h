// Registers the one test a conformance run has when its device is not available: skipped, with
// the reason, so the run is counted as skipped and never as passed.
#pragma once

#include <gtest/gtest.h>

#include <string>

namespace halyard::conformance {

class UnavailableTest : public ::testing::Test {
 public:
  explicit UnavailableTest(std::string reason) : reason_(std::move(reason)) {}
  void TestBody() override { GTEST_SKIP() << reason_; }

 private:
  std::string reason_;
};

inline void register_unavailable(const std::string& uri, const std::string& reason) {
  ::testing::RegisterTest(uri.c_str(), "unavailable", nullptr, nullptr, __FILE__, __LINE__,
                          [reason]() -> ::testing::Test* { return new UnavailableTest(reason); });
}

}  // namespace halyard::conformance
