// Builds a Program from tokens with jinja2's grammar and operator precedence. Filters and tests
// are checked against those the interpreter has at parse time, as jinja2 does when it compiles.
#pragma once

#include <vector>

#include "ast.h"
#include "lexer.h"

namespace halyard::runtime::jinja {

// Throws JinjaError naming the construct and its line for anything outside the subset.
Program parse_tokens(const std::vector<Token>& tokens, int max_nesting);

// Implemented with the filters and tests (builtins.cpp).
bool is_known_filter(const std::string& name);
bool is_known_test(const std::string& name);

}  // namespace halyard::runtime::jinja
