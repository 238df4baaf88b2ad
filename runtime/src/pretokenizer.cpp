#include "pretokenizer.h"

#include <unicode/regex.h>
#include <unicode/unistr.h>

#include <algorithm>

namespace halyard::runtime {
namespace {

// The expressions as the models' tokenizer.json files give them, with two changes that make ICU
// split as those tokenizers (and llama.cpp) do:
//  - whitespace is Unicode's White_Space property: ICU's \s leaves out U+000B and U+0085;
//  - the contractions of Llama 3 and Qwen2, "(?i:'s|'t|...)" there, match ASCII letters of
//    either case only: ICU's case-insensitive match would also take "'\u017F" (long s).
#define HALYARD_WS "\\p{White_Space}"
#define HALYARD_NOT_WS "\\P{White_Space}"
#define HALYARD_CONTRACTIONS "'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD]"

// GPT-2's: contractions, letters, numbers and other runs each with an optional leading space,
// whitespace not followed by a non-space.
constexpr const char* kGpt2 = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^" HALYARD_WS "\\p{L}\\p{N}]+|" HALYARD_WS
                              "+(?!" HALYARD_NOT_WS ")";

// Llama 3's and Qwen2's differ only in how many digits make one piece: Llama 3 groups up to
// three, Qwen2 splits every digit. Letters take one leading non-letter, non-digit character
// (not a newline); punctuation runs take the newlines after them; newlines with the whitespace
// before them are a piece.
#define HALYARD_LLAMA3_LIKE(DIGITS)                                                      \
  "(?:" HALYARD_CONTRACTIONS ")|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|" DIGITS " ?[^" HALYARD_WS \
  "\\p{L}\\p{N}]+[\\r\\n]*|" HALYARD_WS "*[\\r\\n]+|" HALYARD_WS "+(?!" HALYARD_NOT_WS ")|" HALYARD_WS "+"
constexpr const char* kLlama3 = HALYARD_LLAMA3_LIKE("\\p{N}{1,3}|");
constexpr const char* kQwen2 = HALYARD_LLAMA3_LIKE("\\p{N}|");
#undef HALYARD_LLAMA3_LIKE
#undef HALYARD_CONTRACTIONS
#undef HALYARD_NOT_WS
#undef HALYARD_WS

struct NamedSplit {
  std::vector<std::string_view> names;  // tokenizer.ggml.pre values
  std::vector<const char*> expressions;
  bool ignore_merges = false;
  bool default_add_bos = false;
};

// The tokenizer.ggml.pre names Halyard splits by, each with llama.cpp's meaning.
const std::vector<NamedSplit>& named_splits() {
  static const std::vector<NamedSplit> table = {
      {{"gpt2", "gpt-2", "mpt", "olmo"}, {kGpt2}},
      // What llama.cpp uses for a file without the key: runs of punctuation and a few symbols
      // first, then GPT-2's split, then runs of digits cut into threes.
      {{"default"}, {"[\\p{P}\\$\\+<=>\\^~\\|]+", kGpt2, "\\p{N}+", "[0-9][0-9][0-9]"}},
      // Falcon's: the same with the backtick among the symbols and no separate digit runs.
      {{"falcon"}, {"[\\p{P}\\$\\+<=>\\^~\\|`]+", kGpt2, "[0-9][0-9][0-9]"}},
      // Every digit is its own piece before the GPT-2 split.
      {{"smollm", "starcoder", "refact", "command-r", "codeshell"}, {"\\p{N}", kGpt2}},
      {{"llama3", "llama-v3", "llama-bpe"}, {kLlama3}, true, true},
      {{"dbrx", "smaug-bpe"}, {kLlama3}},
      // DeepSeek-R1-Distill-Qwen files keep Qwen2's tokenizer under their own name.
      {{"qwen2", "deepseek-r1-qwen"}, {kQwen2}},
  };
  return table;
}

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

std::string PreTokenizer::known_names() {
  std::string out;
  for (const auto& split : named_splits()) {
    for (std::string_view name : split.names) {
      if (!out.empty())
        out += ", ";
      out += name;
    }
  }
  return out;
}

Result<std::unique_ptr<PreTokenizer>> PreTokenizer::for_name(std::string_view pre, bool force_gpt2_split,
                                                             bool* forced) {
  *forced = false;
  for (const auto& split : named_splits()) {
    if (std::find(split.names.begin(), split.names.end(), pre) == split.names.end())
      continue;
    HALYARD_ASSIGN_OR_RETURN(auto p, from_expressions({split.expressions.begin(), split.expressions.end()}));
    p->ignore_merges_ = split.ignore_merges;
    p->default_add_bos_ = split.default_add_bos;
    return p;
  }
  // Another split would give other tokens than the model was trained on: quietly wrong output.
  if (!force_gpt2_split) {
    return unimplemented("unknown pre-tokenizer '" + std::string(pre) + "' (tokenizer.ggml.pre); known: " +
                         known_names() + "; --force-gpt2-split to use GPT-2's split");
  }
  *forced = true;
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
