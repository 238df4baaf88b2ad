// The error every stage of the Jinja interpreter raises. It is thrown inside the interpreter
// only (evaluation is deeply recursive and one failure ends the whole render) and turned into a
// Status at Template::parse and Template::render; it never leaves this module.
#pragma once

#include <stdexcept>
#include <string>

namespace halyard::runtime::jinja {

class JinjaError : public std::runtime_error {
 public:
  JinjaError(std::string message, int line) : std::runtime_error(std::move(message)), line_(line) {}
  int line() const { return line_; }  // 0: not known

 private:
  int line_;
};

// A bound (Limits) was reached: reported as resource exhausted, not as a template mistake.
class JinjaLimitError : public JinjaError {
 public:
  using JinjaError::JinjaError;
};

// raise_exception(msg) called by the template itself.
class JinjaRaisedError : public JinjaError {
 public:
  using JinjaError::JinjaError;
};

}  // namespace halyard::runtime::jinja
