#include "pretokenizer.h"

#include <unicode/regex.h>
#include <unicode/unistr.h>

namespace halyard::runtime {
namespace {

// GPT-2's expression, as tokenizer.json files carry it.
constexpr const char* kGpt2 = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)";
// Llama-3's expression.
constexpr const char* kLlama3 =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

}  // namespace

struct PreTokenizer::Impl {
  std::vector<std::unique_ptr<icu::RegexPattern>> patterns;
};

PreTokenizer::PreTokenizer() : impl_(std::make_unique<Impl>()) {}
PreTokenizer::~PreTokenizer() = default;

Result<std::unique_ptr<PreTokenizer>> PreTokenizer::from_expressions(const std::vector<std::string>& expressions) {
  auto pre = std::unique_ptr<PreTokenizer>(new PreTokenizer());
  for (const auto& e : expressions) {
    UErrorCode status = U_ZERO_ERROR;
    UParseError parse_error;
    std::unique_ptr<icu::RegexPattern> p(
        icu::RegexPattern::compile(icu::UnicodeString::fromUTF8(e), 0, parse_error, status));
    if (U_FAILURE(status) || !p)
      return internal_error("pre-tokenizer expression does not compile: " + e);
    pre->impl_->patterns.push_back(std::move(p));
  }
  return pre;
}

Result<std::unique_ptr<PreTokenizer>> PreTokenizer::for_name(std::string_view pre, bool* known) {
  *known = true;
  if (pre == "smollm" || pre == "starcoder" || pre == "refact" || pre == "command-r" || pre == "codeshell") {
    // Every digit is its own piece before the GPT-2 split.
    return from_expressions({"\\p{N}", kGpt2});
  }
  if (pre == "llama3" || pre == "llama-v3" || pre == "llama-bpe" || pre == "dbrx" || pre == "smaug-bpe") {
    return from_expressions({kLlama3});
  }
  if (pre != "gpt2" && pre != "default" && pre != "mpt" && pre != "olmo")
    *known = false;
  return from_expressions({kGpt2});
}

namespace {

// Splits `piece` by patterns[level] (matches and the text between them) and each part further by
// the following patterns; parts past the last pattern go to `on_piece`. False: stop everything.
// One matcher per level is reused (reset to each new part): making one per part cost more than
// the matching when SmolLM2's digit split cuts a text into a million pieces.
struct Splitter {
  const std::vector<std::unique_ptr<icu::RegexPattern>>& patterns;
  const std::function<bool(std::string_view)>& on_piece;
  std::vector<std::unique_ptr<icu::RegexMatcher>> matchers;
  std::string utf8;

  bool split(std::size_t level, const icu::UnicodeString& piece) {
    if (level == patterns.size()) {
      utf8.clear();
      piece.toUTF8String(utf8);
      return on_piece(utf8);
    }
    auto next = [&](int32_t start, int32_t length) {
      // A read-only alias into `piece`, which outlives the deeper levels' use of it.
      return split(level + 1, icu::UnicodeString(false, piece.getBuffer() + start, length));
    };
    UErrorCode status = U_ZERO_ERROR;
    if (!matchers[level]) {
      matchers[level].reset(patterns[level]->matcher(piece, status));
    } else {
      matchers[level]->reset(piece);
    }
    if (U_FAILURE(status) || !matchers[level]) {
      matchers[level].reset();
      return split(level + 1, piece);
    }
    icu::RegexMatcher& m = *matchers[level];
    int32_t last = 0;
    while (m.find()) {
      const int32_t start = m.start(status);
      const int32_t end = m.end(status);
      if (U_FAILURE(status) || end == start)
        break;
      if (start > last && !next(last, start - last))
        return false;
      if (!next(start, end - start))
        return false;
      last = end;
    }
    if (last < piece.length())
      return next(last, piece.length() - last);
    return true;
  }
};

}  // namespace

void PreTokenizer::split(std::string_view text, const std::function<bool(std::string_view)>& on_piece) const {
  const icu::UnicodeString whole =
      icu::UnicodeString::fromUTF8(icu::StringPiece(text.data(), static_cast<int32_t>(text.size())));
  Splitter splitter{impl_->patterns, on_piece, {}, {}};
  splitter.matchers.resize(impl_->patterns.size());
  splitter.split(0, whole);
}

std::vector<std::string> PreTokenizer::split(std::string_view text) const {
  std::vector<std::string> out;
  split(text, [&](std::string_view piece) {
    out.emplace_back(piece);
    return true;
  });
  return out;
}

}  // namespace halyard::runtime
