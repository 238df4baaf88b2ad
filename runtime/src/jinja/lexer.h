// Splits a template into text and the tokens of its tags, applying jinja2's whitespace rules as
// transformers configures them: trim_blocks (the newline after a block or comment tag is
// dropped), lstrip_blocks (spaces before a block or comment tag on its own line are dropped),
// the - and + markers, newlines normalised to \n and one trailing newline dropped.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace halyard::runtime::jinja {

struct Token {
  enum class Type { kText, kPrintBegin, kPrintEnd, kBlockBegin, kBlockEnd, kName, kString, kInt, kFloat, kOp, kEnd };
  Type type;
  std::string text;  // kText: the literal; kString: the decoded value; kOp/kName/numbers: as written
  int line;
};

// Throws JinjaError for an unterminated tag or string, or a character no expression has.
std::vector<Token> tokenize(std::string_view source);

}  // namespace halyard::runtime::jinja
