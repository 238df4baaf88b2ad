// libFuzzer target: the default model's tokenizer on arbitrary text. Encoding must not crash,
// every id must be in the vocabulary, and text the vocabulary can represent must come back
// unchanged from decode. (SmolLM2's vocabulary has no token for 21 bytes: the C0 controls 0x04,
// 0x06, 0x13, 0x14, 0x16, 0x1d and lead bytes of rare planes; those are dropped, as llama.cpp
// drops them, with a warning.)
//   HALYARD_TEST_MODEL=... build/fuzz/bin/tokenizer_fuzz -max_total_time=60
#include <unicode/utf8.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "halyard/runtime/gguf.h"
#include "halyard/runtime/tokenizer.h"

namespace {

using namespace halyard::runtime;

const Tokenizer& tokenizer() {
  static std::unique_ptr<GgufFile> file;
  static std::unique_ptr<Tokenizer> tok;
  if (!tok) {
    const char* path = std::getenv("HALYARD_TEST_MODEL");
    const std::string p =
        path ? path : std::string(std::getenv("HOME")) + "/.cache/halyard/models/SmolLM2-135M-Instruct.Q4_1.gguf";
    auto f = GgufFile::open(p);
    if (!f.is_ok()) {
      std::fprintf(stderr, "%s\n", f.status().to_string().c_str());
      std::abort();
    }
    file = std::move(f).value();
    tok = std::move(Tokenizer::from_gguf(*file)).value();
  }
  return *tok;
}

// Valid UTF-8 without C0 controls (other than tab, newline, carriage return) and below the
// planes whose lead bytes (0xf1, 0xf2) the vocabulary lacks.
bool representable(const std::uint8_t* s, std::size_t n) {
  std::int32_t i = 0;
  while (static_cast<std::size_t>(i) < n) {
    UChar32 c;
    U8_NEXT(s, i, static_cast<std::int32_t>(n), c);
    if (c < 0 || c >= 0x40000 || (c < 0x20 && c != '\t' && c != '\n' && c != '\r'))
      return false;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const Tokenizer& tok = tokenizer();
  const std::string text(reinterpret_cast<const char*>(data), size);
  for (bool special : {false, true}) {
    const auto ids = tok.encode(text, false, special);
    for (TokenId id : ids) {
      if (id < 0 || static_cast<std::size_t>(id) >= tok.vocab_size())
        std::abort();
    }
    if (representable(data, size) && tok.decode(ids) != text)
      std::abort();
  }
  return 0;
}
