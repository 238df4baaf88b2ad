// Template::parse and Template::render: the module's boundary, where JinjaError becomes Status.
#include <nlohmann/json.hpp>

#include "error.h"
#include "halyard/runtime/jinja.h"
#include "interpreter.h"
#include "parser.h"

namespace halyard::runtime::jinja {
namespace {

std::string located(const JinjaError& e) {
  std::string m = e.what();
  if (e.line() > 0)
    m += " at line " + std::to_string(e.line());
  return m;
}

}  // namespace

Result<Template> Template::parse(std::string_view source, Limits limits) {
  try {
    auto program = std::make_shared<Program>(parse_tokens(tokenize(source), limits.max_nesting));
    Template t;
    t.program_ = std::move(program);
    t.limits_ = limits;
    return t;
  } catch (const JinjaLimitError& e) {
    return resource_exhausted("chat template: " + located(e));
  } catch (const JinjaError& e) {
    return invalid_argument("chat template: " + located(e));
  } catch (const std::bad_alloc&) {
    return resource_exhausted("chat template: out of memory while parsing");
  } catch (const std::exception& e) {
    return internal_error(std::string("chat template: ") + e.what());
  }
}

Result<std::string> Template::render(const nlohmann::ordered_json& context,
                                     std::optional<std::int64_t> now_unix_seconds) const {
  if (!program_)
    return failed_precondition("chat template: render on a template that was not parsed");
  if (!context.is_object())
    return invalid_argument("chat template: the context must be a JSON object");
  try {
    Interpreter in(limits_, now_unix_seconds);
    for (const auto& [k, v] : context.items())
      in.set_global(k, Value::from_json(v));
    return in.render(*program_);
  } catch (const JinjaLimitError& e) {
    return resource_exhausted("chat template: " + located(e));
  } catch (const JinjaRaisedError& e) {
    return invalid_argument(located(e));
  } catch (const JinjaError& e) {
    return invalid_argument("chat template: " + located(e));
  } catch (const std::bad_alloc&) {
    return resource_exhausted("chat template: out of memory while rendering");
  } catch (const std::exception& e) {
    // A library call's own error (none is expected): still a Status, never an escape.
    return internal_error(std::string("chat template: ") + e.what());
  }
}

}  // namespace halyard::runtime::jinja
