#include "halyard/runtime/quant_mix.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>

namespace halyard::runtime {
namespace {

struct MixEntry {
  std::string_view name;
  DType base;
  std::uint32_t file_type;  // llama_ftype (llama.h): LLAMA_FTYPE_MOSTLY_*
  bool always_pure;         // no llama.cpp mix by this name: every matrix in `base`
};

// llama_ftype numbers as llama.cpp defines them (llama-quantize --help lists them too).
constexpr std::array<MixEntry, 22> kMixes{{
    {"F32", DType::kF32, 0, false},        {"F16", DType::kF16, 1, false},      {"BF16", DType::kBF16, 32, false},
    {"Q8_0", DType::kQ8_0, 7, false},      {"Q4_0", DType::kQ4_0, 2, false},    {"Q4_1", DType::kQ4_1, 3, false},
    {"Q5_0", DType::kQ5_0, 8, false},      {"Q5_1", DType::kQ5_1, 9, false},    {"Q2_K", DType::kQ2_K, 10, false},
    {"Q3_K", DType::kQ3_K, 11, true},      {"Q3_K_S", DType::kQ3_K, 11, false}, {"Q3_K_M", DType::kQ3_K, 12, false},
    {"Q3_K_L", DType::kQ3_K, 13, false},   {"Q4_K", DType::kQ4_K, 14, true},    {"Q4_K_S", DType::kQ4_K, 14, false},
    {"Q4_K_M", DType::kQ4_K, 15, false},   {"Q5_K", DType::kQ5_K, 16, true},    {"Q5_K_S", DType::kQ5_K, 16, false},
    {"Q5_K_M", DType::kQ5_K, 17, false},   {"Q6_K", DType::kQ6_K, 18, false},   {"IQ4_NL", DType::kIQ4_NL, 25, false},
    {"IQ4_XS", DType::kIQ4_XS, 30, false},
}};

bool is_k_quant(DType d) {
  return d == DType::kQ2_K || d == DType::kQ3_K || d == DType::kQ4_K || d == DType::kQ5_K || d == DType::kQ6_K;
}

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

}  // namespace

std::string quant_mix_names() {
  std::string out;
  for (const auto& m : kMixes) {
    if (!out.empty())
      out += ", ";
    out += m.name;
  }
  return out;
}

Result<QuantMix> parse_quant_mix(std::string_view type, bool pure) {
  std::string upper(type);
  std::transform(upper.begin(), upper.end(), upper.begin(), [](unsigned char c) { return std::toupper(c); });
  auto make = [&](const MixEntry& m) {
    return QuantMix{std::string(m.name), m.base, m.file_type, pure || m.always_pure};
  };
  for (const auto& m : kMixes) {
    if (upper == m.name)
      return make(m);
  }
  return invalid_argument("unknown quantization type '" + std::string(type) + "'; known: " + quant_mix_names());
}

TensorRole tensor_role(std::string_view name) {
  if (name == "token_embd.weight")
    return TensorRole::kTokenEmbedding;
  if (name == "output.weight")
    return TensorRole::kOutput;
  if (!tensor_layer(name))
    return TensorRole::kOther;
  static constexpr std::pair<std::string_view, TensorRole> kSuffixes[] = {
      {".attn_q.weight", TensorRole::kAttnQ},     {".attn_k.weight", TensorRole::kAttnK},
      {".attn_v.weight", TensorRole::kAttnV},     {".attn_output.weight", TensorRole::kAttnOutput},
      {".ffn_gate.weight", TensorRole::kFfnGate}, {".ffn_up.weight", TensorRole::kFfnUp},
      {".ffn_down.weight", TensorRole::kFfnDown},
  };
  for (const auto& [suffix, role] : kSuffixes) {
    if (ends_with(name, suffix))
      return role;
  }
  return TensorRole::kOther;
}

std::optional<int> tensor_layer(std::string_view name) {
  constexpr std::string_view kPrefix = "blk.";
  if (name.substr(0, kPrefix.size()) != kPrefix)
    return std::nullopt;
  const char* begin = name.data() + kPrefix.size();
  const char* end = name.data() + name.size();
  int layer = 0;
  const auto [p, ec] = std::from_chars(begin, end, layer);
  if (ec != std::errc{} || p == begin || p == end || *p != '.' || layer < 0)
    return std::nullopt;
  return layer;
}

bool is_sensitive_layer(int layer, int n_layers) {
  if (n_layers <= 0 || layer < 0 || layer >= n_layers)
    return false;
  const int edge = (n_layers + 7) / 8;  // an eighth, at least one layer
  if (layer < edge || layer >= n_layers - edge)
    return true;
  return (layer - edge) % 2 == 0;
}

DType wanted_dtype(const QuantMix& mix, std::string_view name, const TensorDesc& desc, int n_layers,
                   bool tied_embedding) {
  // 1-D tensors: norms and biases are tiny and sensitive; every runtime expects them in F32.
  if (desc.rows() == 1)
    return DType::kF32;
  if (mix.pure)
    return mix.base;
  const TensorRole role = tensor_role(name);
  const bool is_output = role == TensorRole::kOutput || (role == TensorRole::kTokenEmbedding && tied_embedding);
  const DType base = mix.base;
  if (is_output) {
    if (!dtype_info(base).quantized || base == DType::kQ8_0 || base == DType::kQ6_K)
      return base;
    return DType::kQ6_K;
  }
  if (!is_k_quant(base))
    return base;
  const std::optional<int> layer = tensor_layer(name);
  const bool v_or_down = role == TensorRole::kAttnV || role == TensorRole::kFfnDown;
  if (mix.name == "Q2_K")
    return v_or_down ? DType::kQ4_K : DType::kQ2_K;
  if (mix.name == "Q3_K_M" || mix.name == "Q3_K_L") {
    if (v_or_down || role == TensorRole::kAttnOutput)
      return mix.name == "Q3_K_M" ? DType::kQ4_K : DType::kQ5_K;
    return DType::kQ3_K;
  }
  if (mix.name == "Q4_K_M" || mix.name == "Q5_K_M") {
    if (v_or_down && layer && is_sensitive_layer(*layer, n_layers))
      return DType::kQ6_K;
    return base;
  }
  return base;  // the _S mixes and Q6_K: one format
}

DType fallback_dtype(DType wanted, std::int64_t ne0) {
  const auto& info = dtype_info(wanted);
  if (ne0 % info.block_elements == 0)
    return wanted;
  DType next = DType::kF16;
  switch (wanted) {
    case DType::kQ2_K:
    case DType::kQ3_K:
      next = DType::kQ4_0;
      break;
    case DType::kQ4_K:
      next = DType::kQ5_0;
      break;
    case DType::kQ5_K:
      next = DType::kQ5_1;
      break;
    case DType::kQ6_K:
      next = DType::kQ8_0;
      break;
    case DType::kIQ4_XS:
      next = DType::kIQ4_NL;  // the same codes and levels in blocks of 32, as llama.cpp falls back
      break;
    default:
      next = DType::kF16;  // a 32-block format whose block does not fit the rows
      break;
  }
  return fallback_dtype(next, ne0);
}

std::vector<TensorQuantPlan> plan_quantization(const QuantMix& mix, const std::vector<std::string>& names,
                                               const std::vector<TensorDesc>& descs, int n_layers) {
  const bool tied = std::find(names.begin(), names.end(), "output.weight") == names.end();
  std::vector<TensorQuantPlan> plan;
  plan.reserve(names.size());
  for (std::size_t i = 0; i < names.size(); ++i) {
    TensorQuantPlan p;
    p.name = names[i];
    p.source = descs[i];
    p.wanted = wanted_dtype(mix, names[i], descs[i], n_layers, tied);
    p.chosen = fallback_dtype(p.wanted, descs[i].ne[0]);
    plan.push_back(std::move(p));
  }
  return plan;
}

}  // namespace halyard::runtime
