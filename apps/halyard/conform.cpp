#include "conform.h"

#include <cstdio>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "halyard/conformance/op_cases.h"
#include "halyard/hal/backend_options.h"
#include "halyard/hal/registry.h"

namespace {

using namespace halyard;

struct Cell {
  int passed = 0, failed = 0, unsupported = 0;
  double worst_nmse = 0;
  std::string first_error;
};

// "MATMUL/q4_1/k96_m33_n1" -> "MATMUL/q4_1"
std::string row_key(const std::string& name) {
  const auto second = name.find('/', name.find('/') + 1);
  return name.substr(0, second);
}

}  // namespace

int run_conform(const ConformArgs& a) {
  auto registry = BackendRegistry::load(RegistryOptions::from_environment());
  if (!registry.is_ok()) {
    std::fprintf(stderr, "halyard conform: %s\n", registry.status().to_string().c_str());
    return 1;
  }
  // The same options as generate and bench: -o flags here, the HALYARD_* variables added by the
  // registry when it opens each device.
  DeviceOptions options;
  options.threads = a.threads;
  for (const auto& text : a.options) {
    auto setting = parse_option_setting(text);
    if (!setting.is_ok()) {
      std::fprintf(stderr, "halyard conform: %s\n", setting.status().message().c_str());
      return 1;
    }
    options.backend_options.push_back(std::move(setting).value());
  }
  std::vector<std::string> uris = a.devices;
  nlohmann::json json = {{"seed", a.seed}, {"devices", nlohmann::json::array()}, {"results", nlohmann::json::array()}};
  if (uris.empty()) {
    for (Backend* b : registry.value()->backends()) {
      if (!b->availability().is_ok()) {
        std::printf("%-8s unavailable: %s\n", std::string(b->name()).c_str(), b->availability().message().c_str());
        json["devices"].push_back(
            {{"backend", b->name()}, {"available", false}, {"reason", b->availability().message()}});
        continue;
      }
      for (const auto& d : b->devices())
        uris.push_back(d.uri);
    }
  }
  auto cases = conformance::all_op_cases();
  if (!a.op.empty()) {
    std::erase_if(cases, [&](const conformance::OpCase& c) { return std::string(op_name(c.op)) != a.op; });
    if (cases.empty()) {
      std::fprintf(stderr, "halyard conform: no op named '%s'\n", a.op.c_str());
      return 1;
    }
  }
  std::map<std::string, std::map<std::string, Cell>> matrix;  // row -> device -> cell
  std::vector<std::string> columns;
  bool any_failure = false;
  for (const auto& uri : uris) {
    auto device = registry.value()->open_device(uri, options);
    if (!device.is_ok() && device.status().code() == StatusCode::kInvalidArgument) {
      // A bad option is the caller's mistake, not a device that is missing here.
      std::fprintf(stderr, "halyard conform: %s: %s\n", uri.c_str(), device.status().message().c_str());
      return 1;
    }
    if (!device.is_ok()) {
      std::printf("%-8s unavailable: %s\n", uri.c_str(), device.status().message().c_str());
      json["devices"].push_back({{"device", uri}, {"available", false}, {"reason", device.status().message()}});
      continue;
    }
    json["devices"].push_back({{"device", uri},
                               {"available", true},
                               {"name", device.value()->info().name},
                               {"details", device.value()->info().details}});
    columns.push_back(uri);
    for (std::size_t i = 0; i < cases.size(); ++i) {
      const auto& c = cases[i];
      const int width = 30;
      const int done = static_cast<int>((i + 1) * width / cases.size());
      std::fprintf(stderr, "\r%-8s [%s%s] %zu/%zu ", uri.c_str(),
                   std::string(static_cast<std::size_t>(done), '#').c_str(),
                   std::string(static_cast<std::size_t>(width - done), '.').c_str(), i + 1, cases.size());
      const auto r = conformance::run_op_case(*device.value(), c, a.seed);
      Cell& cell = matrix[row_key(c.name)][uri];
      const char* status = r.unsupported ? "unsupported" : (r.passed ? "pass" : "fail");
      if (r.unsupported) {
        ++cell.unsupported;
      } else if (r.passed) {
        ++cell.passed;
      } else {
        ++cell.failed;
        any_failure = true;
        if (cell.first_error.empty())
          cell.first_error = c.name + ": " + r.message;
      }
      cell.worst_nmse = std::max(cell.worst_nmse, r.nmse);
      json["results"].push_back({{"device", uri},
                                 {"case", c.name},
                                 {"op", op_name(c.op)},
                                 {"status", status},
                                 {"nmse", r.nmse},
                                 {"tolerance", c.tolerance},
                                 {"message", r.message}});
    }
    std::fprintf(stderr, "\n");
  }
  std::printf("%-24s", "op/dtype");
  for (const auto& col : columns)
    std::printf(" | %-22s", col.c_str());
  std::printf("\n");
  for (const auto& [row, cells] : matrix) {
    std::printf("%-24s", row.c_str());
    for (const auto& col : columns) {
      const auto it = cells.find(col);
      char text[64] = "-";
      if (it != cells.end()) {
        const Cell& cell = it->second;
        if (cell.failed) {
          std::snprintf(text, sizeof text, "FAIL %d/%d", cell.failed, cell.failed + cell.passed);
        } else if (cell.passed) {
          std::snprintf(text, sizeof text, "pass %d (nmse<=%.1e)", cell.passed, cell.worst_nmse);
        } else {
          std::snprintf(text, sizeof text, "unsupported");
        }
      }
      std::printf(" | %-22s", text);
    }
    std::printf("\n");
  }
  for (const auto& [row, cells] : matrix) {
    for (const auto& [col, cell] : cells) {
      if (!cell.first_error.empty())
        std::printf("%s on %s: %s\n", row.c_str(), col.c_str(), cell.first_error.c_str());
    }
  }
  if (!a.json_path.empty()) {
    std::ofstream out(a.json_path);
    out << json.dump(2) << "\n";
    if (!out) {
      std::fprintf(stderr, "halyard conform: cannot write %s\n", a.json_path.c_str());
      return 1;
    }
  }
  if (columns.empty()) {
    std::fprintf(stderr, "halyard conform: no available device to test\n");
    return 1;
  }
  return any_failure ? 1 : 0;
}
