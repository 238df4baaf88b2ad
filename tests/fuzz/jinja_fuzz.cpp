// libFuzzer target: the Jinja interpreter on arbitrary templates and contexts. An input is a
// template, optionally followed by a NUL byte and a JSON context (messages, tools, ...); without
// one, or when it is not a JSON object, a fixed two-turn conversation is the context. Any input
// must parse or fail with a Status, and render or fail with a Status, within the bounds: no
// crash, no sanitizer report, no hang (the limits are small so one input stays fast).
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string_view>

#include "halyard/runtime/jinja.h"

namespace {

using json = nlohmann::ordered_json;

const json& default_context() {
  static const json c = {
      {"messages", {{{"role", "system"}, {"content", "Be brief."}}, {{"role", "user"}, {"content", "Hi \xc3\xa9"}}}},
      {"add_generation_prompt", true},
      {"bos_token", "<s>"},
      {"eos_token", "</s>"},
      {"tools", {{{"type", "function"}, {"function", {{"name", "f"}, {"parameters", json::object()}}}}}}};
  return c;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const std::size_t nul = input.find('\0');
  const std::string_view source = input.substr(0, nul);
  json context = default_context();
  if (nul != std::string_view::npos) {
    json parsed = json::parse(input.substr(nul + 1), nullptr, /*allow_exceptions=*/false);
    if (parsed.is_object())
      context = std::move(parsed);
  }
  halyard::runtime::jinja::Limits limits;
  limits.max_output_bytes = 1 << 16;
  limits.max_loop_iterations = 20000;
  limits.max_call_depth = 32;
  auto t = halyard::runtime::jinja::Template::parse(source, limits);
  if (!t.is_ok())
    return 0;
  auto r = t->render(context, 0);
  if (r.is_ok() && r.value().size() > limits.max_output_bytes)
    __builtin_trap();  // the output bound did not hold
  return 0;
}
