// libFuzzer target: any byte string given to the GGUF reader (and to the config and tokenizer
// loaders when it parses) must give a value or a Status, never a crash or a sanitizer report.
//   cmake --preset fuzz && cmake --build --preset fuzz && build/fuzz/bin/gguf_fuzz -max_total_time=60
#include <cstddef>
#include <cstdint>
#include <vector>

#include "halyard/runtime/gguf.h"
#include "halyard/runtime/model.h"
#include "halyard/runtime/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace halyard::runtime;
  auto file = GgufFile::from_bytes(std::vector<std::uint8_t>(data, data + size));
  if (!file.is_ok())
    return 0;
  std::size_t bytes = 0;
  for (const auto& t : file.value()->tensors()) {
    if (!t.supported) {  // an unsupported dtype: no data pointer, its size unknown
      if (t.data != nullptr)
        __builtin_trap();
      continue;
    }
    const auto* p = static_cast<const std::uint8_t*>(t.data);
    if (t.desc.bytes() > 0)
      bytes += p[0] + p[t.desc.bytes() - 1];  // every supported tensor's span is readable
  }
  (void)bytes;
  (void)LlamaConfig::from_gguf(*file.value());
  auto tok = Tokenizer::from_gguf(*file.value());
  if (tok.is_ok())
    (void)tok.value()->decode(tok.value()->encode("Hello <|im_start|> 123 ünï", true, true));
  return 0;
}
