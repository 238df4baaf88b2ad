// A Jinja2-subset interpreter for the chat templates GGUF files carry (tokenizer.chat_template).
// It renders what the templates of real models use (statements, expressions, filters, tests and
// the Python methods they call) the way Python's jinja2 does under the Environment transformers
// builds for chat templates: trim_blocks and lstrip_blocks on, the loopcontrols extension (break,
// continue), the {% generation %} tag, and the globals raise_exception and strftime_now. A
// construct outside the subset is an error that names it and its line, never a guess.
// Every render is bounded (output bytes, loop iterations, call depth), so no template hangs or
// exhausts memory.
// Thread safety: a parsed Template is immutable; render may run on any threads at once.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "halyard/hal/status.h"

namespace halyard::runtime::jinja {

struct Limits {
  std::size_t max_output_bytes = std::size_t{8} << 20;  // the rendering, and any one string built
  std::int64_t max_loop_iterations = 1'000'000;         // all loops of one render together
  int max_call_depth = 64;                              // macro calls nested in each other
  int max_nesting = 200;                                // blocks and expressions nested in the source
};

struct Program;  // the parsed template (parser.h)

class Template {
 public:
  // Parses `source`; an unknown statement, filter or test is an error naming it and its line.
  static Result<Template> parse(std::string_view source, Limits limits = {});

  // Renders with the top-level variables of `context` (a JSON object). `now_unix_seconds` fixes
  // the clock strftime_now reads (tests); unset, it is the local time at the call.
  Result<std::string> render(const nlohmann::ordered_json& context,
                             std::optional<std::int64_t> now_unix_seconds = std::nullopt) const;

 private:
  std::shared_ptr<const Program> program_;
  Limits limits_;
};

}  // namespace halyard::runtime::jinja
