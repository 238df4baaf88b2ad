// Runs the op-level conformance suite on one device:
//   conformance_tests --device URI [-o KEY=VALUE]... [--cpu-kernels generic|avx2|avx512vnni]
//                     [--cpu-prefill gemm|bf16|blas|tiles]
// Every case becomes one GoogleTest test "<uri>/<op>/<dtype>/<shape>". A device that is not
// available registers a single test that is skipped with the reason.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "halyard/conformance/op_cases.h"
#include "halyard/hal/registry.h"
#include "unavailable.h"

namespace {

using namespace halyard;

std::uint64_t g_seed = 0;

class CaseTest : public ::testing::Test {
 public:
  CaseTest(Device* device, conformance::OpCase c) : device_(device), case_(std::move(c)) {}
  void TestBody() override {
    const auto r = conformance::run_op_case(*device_, case_, g_seed);
    if (r.unsupported)
      GTEST_SKIP() << "unsupported: " << r.message;
    EXPECT_TRUE(r.passed) << case_.name << " (seed " << g_seed << "): " << r.message;
    // Scientific notation: the margin under a tolerance such as 1e-7 must show (std::to_string
    // would print 0.000000).
    char nmse[32];
    std::snprintf(nmse, sizeof nmse, "%.3e", r.nmse);
    RecordProperty("nmse", nmse);
  }

 private:
  Device* device_;
  conformance::OpCase case_;
};

}  // namespace

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  const conformance::DriverArgs args = conformance::parse_driver_args(argc, argv, "ref");
  const std::string& uri = args.uri;
  if (!args.error.empty()) {
    std::fprintf(stderr, "conformance_tests: %s\n", args.error.c_str());
    return 2;
  }
  DeviceOptions device_options;
  device_options.backend_options = args.options;
  g_seed = 20261128;
  if (const char* s = std::getenv("HALYARD_CONFORMANCE_SEED"))
    g_seed = std::strtoull(s, nullptr, 10);
  std::printf("conformance on %s%s%s, seed %llu (set HALYARD_CONFORMANCE_SEED to change)\n", uri.c_str(),
              args.options.empty() ? "" : " with", args.describe().c_str(), static_cast<unsigned long long>(g_seed));

  RegistryOptions options;
  options.search_paths = {HALYARD_PLUGIN_DIR};
  auto registry = BackendRegistry::load(options);
  std::unique_ptr<Device> device;
  std::string why;
  if (!registry.is_ok()) {
    why = registry.status().to_string();
  } else {
    auto d = registry.value()->open_device(uri, device_options);
    if (d.is_ok()) {
      device = std::move(d).value();
    } else if (d.status().code() == StatusCode::kInvalidArgument) {
      // A bad option or URI is the caller's mistake: fail, never count it as a skipped device.
      std::fprintf(stderr, "conformance_tests: %s\n", d.status().to_string().c_str());
      return 2;
    } else {
      why = d.status().to_string();
    }
  }
  if (!device) {
    conformance::register_unavailable(uri, why);
  } else {
    auto cases = conformance::all_op_cases();
    // Host backends validate every block table entry and must reject a bad one with
    // out_of_range; device kernels give the token NaN instead (ops.h, ATTENTION).
    const DeviceType type = device->info().type;
    if (type == DeviceType::kCpu || type == DeviceType::kReference) {
      for (auto& c : conformance::out_of_range_op_cases())
        cases.push_back(std::move(c));
    }
    for (auto& c : cases) {
      const std::string name = c.name;
      Device* dev = device.get();
      ::testing::RegisterTest(uri.c_str(), name.c_str(), nullptr, nullptr, __FILE__, __LINE__,
                              [dev, c]() -> ::testing::Test* { return new CaseTest(dev, c); });
    }
  }
  return RUN_ALL_TESTS();
}
