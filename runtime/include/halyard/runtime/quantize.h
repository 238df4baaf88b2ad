// Quantizes a GGUF model into another GGUF file (what `halyard quantize` and halyard_quantize
// run). Every tensor's format comes from the mix rules (quant_mix.h); rows are converted with
// halyard::quantize_row, spread over threads by whole rows, so the bytes written do not depend
// on the thread count. Metadata is copied, general.file_type set to the mix's llama_ftype and
// general.quantization_version to 2 (the block layouts of ggml's current formats). The output
// goes through GgufStreamWriter: a failure leaves no file behind.
// Thread safety: quantize_gguf may run on several threads for different files.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "halyard/hal/status.h"
#include "halyard/runtime/quant_mix.h"

namespace halyard::runtime {

struct QuantizeOptions {
  std::string type = "Q4_K_M";  // a name parse_quant_mix accepts
  bool pure = false;            // every matrix in TYPE's own format (no mix)
  int threads = 0;              // 0: one per hardware thread
  // Receives the plan, warnings and summary, one line at a time (no trailing newline).
  std::function<void(std::string_view line)> on_message;
};

struct QuantizeReport {
  QuantMix mix;
  std::vector<TensorQuantPlan> plan;
  int requantized = 0;  // input tensors that were already block-quantized (dequantized first)
  std::uint64_t input_bytes = 0;
  std::uint64_t output_bytes = 0;
};

// The GGUF quantization version written as general.quantization_version.
inline constexpr std::uint32_t kGgufQuantizationVersion = 2;

Result<QuantizeReport> quantize_gguf(const std::string& input_path, const std::string& output_path,
                                     const QuantizeOptions& options);

}  // namespace halyard::runtime
