#include "lexer.h"

#include <cctype>
#include <cstdint>

#include "error.h"

namespace halyard::runtime::jinja {
namespace {

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

void append_utf8(std::string& out, std::uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

class Lexer {
 public:
  explicit Lexer(std::string source) : src_(std::move(source)) {}

  std::vector<Token> run() {
    bool strip_left = false;  // the previous tag ended with -
    while (pos_ < src_.size()) {
      std::size_t start = find_tag(pos_);
      std::string text = src_.substr(pos_, start - pos_);
      const bool line_starting = pos_ == 0 || src_[pos_ - 1] == '\n';
      if (strip_left) {
        std::size_t k = 0;
        while (k < text.size() && is_space(text[k]))
          ++k;
        text.erase(0, k);
      }
      if (start == src_.size()) {
        emit_text(text, line_);
        break;
      }
      const char kind = src_[start + 1];  // '{', '%' or '#'
      const char marker = start + 2 < src_.size() ? src_[start + 2] : '\0';
      if (marker == '-') {
        std::size_t e = text.size();
        while (e > 0 && is_space(text[e - 1]))
          --e;
        text.erase(e);
      } else if (marker != '+' && (kind == '%' || kind == '#')) {
        // lstrip_blocks: only spaces and tabs between the line's start and the tag.
        const std::size_t nl = text.rfind('\n');
        const std::size_t from = nl == std::string::npos ? 0 : nl + 1;
        if (nl != std::string::npos || line_starting) {
          bool blank = true;
          for (std::size_t k = from; k < text.size(); ++k)
            if (text[k] != ' ' && text[k] != '\t')
              blank = false;
          if (blank)
            text.erase(from);
        }
      }
      const int text_line = line_;
      count_lines(pos_, start);
      emit_text(text, text_line);
      pos_ = start + 2 + ((marker == '-' || marker == '+') ? 1 : 0);
      if (kind == '#') {
        strip_left = comment();
      } else {
        strip_left = tag(kind == '%');
      }
    }
    out_.push_back({Token::Type::kEnd, "", line_});
    return std::move(out_);
  }

 private:
  std::size_t find_tag(std::size_t from) const {
    for (std::size_t i = from; i + 1 < src_.size(); ++i)
      if (src_[i] == '{' && (src_[i + 1] == '{' || src_[i + 1] == '%' || src_[i + 1] == '#'))
        return i;
    return src_.size();
  }

  void count_lines(std::size_t from, std::size_t to) {
    for (std::size_t i = from; i < to && i < src_.size(); ++i)
      if (src_[i] == '\n')
        ++line_;
  }

  void emit_text(const std::string& text, int line) {
    if (!text.empty())
      out_.push_back({Token::Type::kText, text, line});
  }

  // After a block or comment end: trim_blocks drops one newline.
  void trim_newline() {
    if (pos_ < src_.size() && src_[pos_] == '\n') {
      ++pos_;
      ++line_;
    }
  }

  bool comment() {
    const int line = line_;
    const std::size_t end = src_.find("#}", pos_);
    if (end == std::string::npos)
      throw JinjaError("unterminated comment (no #})", line);
    const bool strip = end > pos_ && src_[end - 1] == '-';
    count_lines(pos_, end);
    pos_ = end + 2;
    if (!strip)
      trim_newline();
    return strip;
  }

  // Lexes the tokens of a {{ }} or {% %} tag; returns whether it ended with -.
  bool tag(bool block) {
    const int open_line = line_;
    out_.push_back({block ? Token::Type::kBlockBegin : Token::Type::kPrintBegin, "", line_});
    const char close = block ? '%' : '}';
    while (true) {
      while (pos_ < src_.size() && is_space(src_[pos_])) {
        if (src_[pos_] == '\n')
          ++line_;
        ++pos_;
      }
      if (pos_ >= src_.size())
        throw JinjaError(std::string("unterminated ") + (block ? "{% tag" : "{{ expression"), open_line);
      const char c = src_[pos_];
      auto at = [&](std::string_view s) { return src_.compare(pos_, s.size(), s) == 0; };
      const std::string end2 = std::string(1, close) + "}";
      if (at("-" + end2) || at("+" + end2) || at(end2)) {
        const bool strip = c == '-';
        const bool keep = c == '+';
        pos_ += (strip || keep) ? 3 : 2;
        out_.push_back({block ? Token::Type::kBlockEnd : Token::Type::kPrintEnd, "", line_});
        if (block && !strip && !keep)
          trim_newline();
        if (block && is_raw_start())
          raw_block();
        return strip;
      }
      if (c == '\'' || c == '"') {
        string_literal(c);
      } else if (std::isdigit(static_cast<unsigned char>(c))) {
        number();
      } else if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
        std::size_t e = pos_;
        while (e < src_.size() && (std::isalnum(static_cast<unsigned char>(src_[e])) || src_[e] == '_'))
          ++e;
        out_.push_back({Token::Type::kName, src_.substr(pos_, e - pos_), line_});
        pos_ = e;
      } else {
        static const char* const kOps[] = {"//", "**", "==", "!=", "<=", ">=", "+", "-", "*", "/", "%", "~", "<",
                                           ">",  "=",  "(",  ")",  "[",  "]",  "{", "}", ",", ".", ":", "|"};
        bool found = false;
        for (const char* op : kOps) {
          if (at(op)) {
            out_.push_back({Token::Type::kOp, op, line_});
            pos_ += std::string_view(op).size();
            found = true;
            break;
          }
        }
        if (!found)
          throw JinjaError(std::string("unexpected character '") + c + "' in a tag", line_);
      }
    }
  }

  // {% raw %} ... {% endraw %}: the text between is output as written.
  bool is_raw_start() const {
    const std::size_t n = out_.size();
    return n >= 3 && out_[n - 3].type == Token::Type::kBlockBegin && out_[n - 2].type == Token::Type::kName &&
           out_[n - 2].text == "raw" && out_[n - 1].type == Token::Type::kBlockEnd;
  }

  void raw_block() {
    const int line = line_;
    out_.resize(out_.size() - 3);
    std::size_t search = pos_;
    while (true) {
      const std::size_t open = src_.find("{%", search);
      if (open == std::string::npos)
        throw JinjaError("unterminated {% raw %} block", line);
      std::size_t k = open + 2;
      if (k < src_.size() && (src_[k] == '-' || src_[k] == '+'))
        ++k;
      while (k < src_.size() && is_space(src_[k]))
        ++k;
      if (src_.compare(k, 6, "endraw") != 0) {
        search = open + 2;
        continue;
      }
      std::string text = src_.substr(pos_, open - pos_);
      if (src_[open + 2] == '-') {
        while (!text.empty() && is_space(text.back()))
          text.pop_back();
      }
      emit_text(text, line);
      count_lines(pos_, open);
      k += 6;
      while (k < src_.size() && is_space(src_[k]))
        ++k;
      const bool strip = k < src_.size() && src_[k] == '-';
      if (strip || (k < src_.size() && src_[k] == '+'))
        ++k;
      if (src_.compare(k, 2, "%}") != 0)
        throw JinjaError("malformed {% endraw %}", line_);
      pos_ = k + 2;
      if (strip) {
        while (pos_ < src_.size() && is_space(src_[pos_]))
          ++pos_;
      } else {
        trim_newline();
      }
      return;
    }
  }

  void string_literal(char quote) {
    const int line = line_;
    std::string value;
    std::size_t i = pos_ + 1;
    while (true) {
      if (i >= src_.size())
        throw JinjaError("unterminated string literal", line);
      const char c = src_[i];
      if (c == quote)
        break;
      if (c == '\n')
        ++line_;
      if (c != '\\') {
        value += c;
        ++i;
        continue;
      }
      if (i + 1 >= src_.size())
        throw JinjaError("unterminated string literal", line);
      const char e = src_[i + 1];
      i += 2;
      switch (e) {
        case 'n':
          value += '\n';
          break;
        case 't':
          value += '\t';
          break;
        case 'r':
          value += '\r';
          break;
        case '0':
          value += '\0';
          break;
        case 'b':
          value += '\b';
          break;
        case 'f':
          value += '\f';
          break;
        case 'v':
          value += '\v';
          break;
        case 'a':
          value += '\a';
          break;
        case '\\':
        case '\'':
        case '"':
          value += e;
          break;
        case '\n':
          ++line_;
          break;
        case 'x':
        case 'u':
        case 'U': {
          const std::size_t digits = e == 'x' ? 2 : e == 'u' ? 4 : 8;
          if (i + digits > src_.size())
            throw JinjaError("truncated \\" + std::string(1, e) + " escape", line_);
          std::uint32_t cp = 0;
          for (std::size_t k = 0; k < digits; ++k) {
            const char h = src_[i + k];
            if (!std::isxdigit(static_cast<unsigned char>(h)))
              throw JinjaError("bad \\" + std::string(1, e) + " escape", line_);
            cp = cp * 16 + static_cast<std::uint32_t>(std::isdigit(static_cast<unsigned char>(h))
                                                          ? h - '0'
                                                          : std::tolower(static_cast<unsigned char>(h)) - 'a' + 10);
          }
          if (cp > 0x10FFFF)
            throw JinjaError("escape outside Unicode", line_);
          i += digits;
          append_utf8(value, cp);
          break;
        }
        default:
          // Python keeps an unknown escape as written.
          value += '\\';
          value += e;
      }
    }
    out_.push_back({Token::Type::kString, std::move(value), line});
    pos_ = i + 1;
  }

  void number() {
    std::size_t e = pos_;
    auto digits = [&] {
      while (e < src_.size() && (std::isdigit(static_cast<unsigned char>(src_[e])) || src_[e] == '_'))
        ++e;
    };
    digits();
    bool is_float = false;
    if (e + 1 < src_.size() && src_[e] == '.' && std::isdigit(static_cast<unsigned char>(src_[e + 1]))) {
      is_float = true;
      ++e;
      digits();
    }
    if (e < src_.size() && (src_[e] == 'e' || src_[e] == 'E')) {
      std::size_t k = e + 1;
      if (k < src_.size() && (src_[k] == '+' || src_[k] == '-'))
        ++k;
      if (k < src_.size() && std::isdigit(static_cast<unsigned char>(src_[k]))) {
        is_float = true;
        e = k;
        digits();
      }
    }
    std::string text;
    for (std::size_t k = pos_; k < e; ++k)
      if (src_[k] != '_')
        text += src_[k];
    out_.push_back({is_float ? Token::Type::kFloat : Token::Type::kInt, text, line_});
    pos_ = e;
  }

  std::string src_;
  std::size_t pos_ = 0;
  int line_ = 1;
  std::vector<Token> out_;
};

std::string normalise_newlines(std::string_view source) {
  std::string s;
  s.reserve(source.size());
  for (std::size_t i = 0; i < source.size(); ++i) {
    if (source[i] == '\r') {
      s += '\n';
      if (i + 1 < source.size() && source[i + 1] == '\n')
        ++i;
    } else {
      s += source[i];
    }
  }
  if (!s.empty() && s.back() == '\n')
    s.pop_back();  // jinja2's keep_trailing_newline=False
  return s;
}

}  // namespace

std::vector<Token> tokenize(std::string_view source) {
  return Lexer(normalise_newlines(source)).run();
}

}  // namespace halyard::runtime::jinja
