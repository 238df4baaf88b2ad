#include "halyard/runtime/model.h"

#include <spdlog/spdlog.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>

#include "arch/architecture.h"
#include "fnv1a.h"

namespace halyard::runtime {
namespace {

// One message for every dtype the file uses that Halyard cannot run, with how many tensors use
// it, so a user learns at once what the file needs rather than one tensor at a time.
Status check_tensor_dtypes(const GgufFile& f) {
  std::map<std::uint32_t, int> unsupported;  // type id -> tensors
  for (const auto& t : f.tensors()) {
    if (!t.supported)
      ++unsupported[t.type_id];
  }
  if (unsupported.empty())
    return Status::ok();
  // A corrupt file may carry thousands of bogus ids: the message names the first dozen.
  constexpr std::size_t kMaxNamed = 12;
  std::string list;
  std::size_t named = 0;
  for (const auto& [id, n] : unsupported) {
    if (named++ == kMaxNamed) {
      list += ", and " + std::to_string(unsupported.size() - kMaxNamed) + " more";
      break;
    }
    list += (list.empty() ? "" : ", ") + gguf_dtype_label(id) + " x " + std::to_string(n) +
            (n == 1 ? " tensor" : " tensors");
  }
  return unimplemented("unsupported tensor dtypes: " + list +
                       "; supported: f32, f16, bf16, q8_0, q4_0, q4_1, q5_0, q5_1, "
                       "q2_k, q3_k, q4_k, q5_k, q6_k, iq4_nl, iq4_xs");
}

// Every weight's use (EMBED, MATMUL; with a tied output the embedding is both) checked against
// the device before anything is uploaded, so a file the device cannot run is refused with one
// message naming each op and dtype it lacks, with tensor counts, instead of at the first tensor
// or, for the tied output projection, at the first step.
Status check_weight_support(const GgufFile& f, const ModelConfig& c, const std::vector<TensorSpec>& expected,
                            const Device& dev, const std::string& uri) {
  struct Missing {
    int tensors = 0;
    std::string example;
  };
  std::map<std::pair<OpKind, DType>, Missing> missing;
  auto check = [&](const std::string& name, OpKind op, DType dtype) {
    const std::array<DType, 2> dtypes{dtype, op == OpKind::kEmbed ? DType::kI32 : DType::kF32};
    if (dev.supports(op, dtypes))
      return;
    Missing& m = missing[{op, dtype}];
    if (m.tensors++ == 0)
      m.example = name;
  };
  for (const auto& [name, shape, kind] : expected) {
    const GgufTensor* t = f.find_tensor(name);
    if (!t || kind == TensorSpec::Kind::kVector)
      continue;  // a missing tensor and a vector's dtype are reported by the loader's own checks
    if (name == "token_embd.weight") {
      check(name, OpKind::kEmbed, t->desc.dtype);
      if (c.tied_output)
        check(name, OpKind::kMatmul, t->desc.dtype);  // the output projection
    } else {
      check(name, OpKind::kMatmul, t->desc.dtype);
    }
  }
  if (missing.empty())
    return Status::ok();
  std::string list;
  for (const auto& [key, m] : missing) {
    list += (list.empty() ? "" : "; ") + std::string(op_name(key.first)) + " on " +
            std::string(dtype_name(key.second)) + " weights (" + std::to_string(m.tensors) +
            (m.tensors == 1 ? " tensor, '" : " tensors, e.g. '") + m.example + "')";
  }
  return unimplemented("device " + uri + " does not support " + list +
                       "; the ref backend (-d ref) runs every format Halyard reads, slowly");
}

// Reads the weights used in place into memory and maps them now (MADV_POPULATE_READ; where the
// kernel lacks it, MADV_WILLNEED starts the read-ahead), so that the page faults are paid at load
// rather than in the first step. Measured on the 1B-shape Q8_0 file in the page cache, 2 threads
// (bench/results/2026-12-01-zero-copy-load.md): lazy faults made the first token 1.2-1.3 s slower,
// populating costs ~0.3-0.5 s of load. A hint: failures change nothing.
void prefault_weights(const GgufFile& f) {
  const std::uint8_t* lo = nullptr;
  const std::uint8_t* hi = nullptr;
  for (const auto& t : f.tensors()) {
    if (!t.data || !t.supported)
      continue;
    const auto* p = static_cast<const std::uint8_t*>(t.data);
    lo = lo && lo < p ? lo : p;
    hi = std::max(hi, p + t.desc.bytes());
  }
  const long page = ::sysconf(_SC_PAGESIZE);
  if (!lo || page <= 0)
    return;
  const auto start =
      reinterpret_cast<std::uintptr_t>(lo) / static_cast<std::uintptr_t>(page) * static_cast<std::uintptr_t>(page);
  void* p = reinterpret_cast<void*>(start);
  const std::size_t len = static_cast<std::size_t>(reinterpret_cast<std::uintptr_t>(hi) - start);
  if (::madvise(p, len, MADV_POPULATE_READ) != 0)
    (void)::madvise(p, len, MADV_WILLNEED);
}

}  // namespace

Result<ModelConfig> ModelConfig::from_gguf(const GgufFile& f) {
  ModelConfig c;
  c.architecture = std::string(f.get_string("general.architecture").value_or(""));
  const Architecture* arch = find_architecture(c.architecture);
  if (!arch) {
    return unimplemented("architecture '" + c.architecture + "' is not supported (supported: " + architecture_names() +
                         ")");
  }
  // After the architecture: a mamba file with K-quants is refused for its architecture first.
  HALYARD_RETURN_IF_ERROR(check_tensor_dtypes(f));
  const GgufTensor* embd = f.find_tensor("token_embd.weight");
  if (!embd)
    return data_loss("model has no token_embd.weight");
  c.vocab_size = static_cast<int>(embd->desc.ne[1]);
  c.tied_output = f.find_tensor("output.weight") == nullptr;
  HALYARD_RETURN_IF_ERROR(arch->configure(f, c));
  return c;
}

Result<std::unique_ptr<Model>> Model::load(const std::string& path, const ModelOptions& options,
                                           BackendRegistry& registry) {
  auto model = std::unique_ptr<Model>(new Model());
  HALYARD_ASSIGN_OR_RETURN(model->file_, GgufFile::open(path));
  const GgufFile& f = *model->file_;
  HALYARD_ASSIGN_OR_RETURN(model->config_, ModelConfig::from_gguf(f));
  HALYARD_ASSIGN_OR_RETURN(model->tokenizer_, Tokenizer::from_gguf(f, options.tokenizer));
  const ModelConfig& c = model->config_;
  if (static_cast<int>(model->tokenizer_->vocab_size()) != c.vocab_size) {
    return data_loss("tokenizer has " + std::to_string(model->tokenizer_->vocab_size()) +
                     " tokens but token_embd.weight has " + std::to_string(c.vocab_size) + " rows");
  }
  // The model's own template, rendered by the Jinja interpreter. Without one (or with one the
  // interpreter cannot parse) the builtin format the vocabulary's markers name stands in: the
  // llama architecture covers both Llama-3 (<|start_header_id|>) and ChatML models (SmolLM2,
  // Qwen: <|im_start|>).
  const Tokenizer& tok = *model->tokenizer_;
  auto token_text = [&](TokenId id) {
    return id >= 0 && static_cast<std::size_t>(id) < tok.vocab_size() ? tok.token_text(id) : std::string();
  };
  const std::string_view jinja = f.get_string("tokenizer.chat_template").value_or("");
  const Architecture* arch_of_file = find_architecture(c.architecture);
  if (!arch_of_file)
    return internal_error("architecture '" + c.architecture + "' vanished from the registry");
  const ChatFormat builtin_format = arch_of_file->default_chat_format(tok);
  auto builtin = [&] { return ChatTemplate::make(builtin_format); };
  if (jinja.empty()) {
    model->chat_template_ = builtin();
    if (builtin_format == ChatFormat::kChatML && !tok.find("<|im_start|>"))
      model->chat_template_warning_ =
          "the model file has no chat template and its vocabulary has neither ChatML nor Llama-3 markers, so "
          "builtin ChatML is a guess";
  } else if (auto tmpl = ChatTemplate::from_jinja(jinja, token_text(tok.bos()), token_text(tok.eos())); tmpl.is_ok()) {
    model->chat_template_ = std::move(tmpl.value());
  } else {
    // Say why, with the template's start (which usually identifies it), instead of silently
    // wrapping prompts in a format the model may not know.
    model->chat_template_ = builtin();
    constexpr std::size_t kShown = 60;
    std::string start(jinja.substr(0, kShown));
    std::replace(start.begin(), start.end(), '\n', ' ');
    model->chat_template_warning_ = "the model's chat template cannot be rendered (" + tmpl.status().message() +
                                    "), so " + model->chat_template_.description() +
                                    " is used instead; the template begins: \"" + start +
                                    (jinja.size() > kShown ? "...\"" : "\"");
  }
  model->name_ = std::string(f.get_string("general.name").value_or(path));

  if (options.context_length < 0 || options.max_sequences < 1 || options.max_sequences > 256) {
    return invalid_argument("context length must be >= 0 and sequences in [1, 256]");
  }
  model->context_length_ = options.context_length > 0 ? options.context_length : std::min(c.context_train, 4096);
  model->max_sequences_ = options.max_sequences;
  if (options.kv_dtype != DType::kF16 && options.kv_dtype != DType::kF32) {
    return invalid_argument("the KV cache dtype must be f16 or f32, got " + std::string(dtype_name(options.kv_dtype)));
  }
  model->kv_dtype_ = options.kv_dtype;

  HALYARD_ASSIGN_OR_RETURN(model->device_uri_, registry.resolve(options.device));
  DeviceOptions device_options;
  device_options.threads = options.threads;
  device_options.backend_options = options.backend_options;
  HALYARD_ASSIGN_OR_RETURN(model->device_, registry.open_device(model->device_uri_, device_options));
  Device& dev = *model->device_;
  {
    const DType kv = model->kv_dtype_;
    const DType attention_inputs[] = {DType::kF32, DType::kF32, DType::kF32, kv,
                                      kv,          DType::kI32, DType::kI32, DType::kI32};
    if (!dev.supports(OpKind::kAttention, attention_inputs)) {
      return unimplemented(model->device_uri_ + " has no ATTENTION with " + std::string(dtype_name(kv)) +
                           " KV caches; choose another KV dtype (--kv-dtype f32)");
    }
  }

  // Every tensor the graph needs, with its expected shape (the architecture's list).
  const Architecture* arch = find_architecture(c.architecture);
  if (!arch)
    return internal_error("architecture '" + c.architecture + "' vanished from the registry");
  const std::vector<TensorSpec> expected = arch->tensors(c);
  // The fingerprint samples each tensor's first and last 4 KiB rather than hashing all of it:
  // hashing every byte would read the whole file once more at load (a second at FNV's ~1 GB/s
  // for a 1 GB model), and its job is to tell models apart, not to detect corruption. Another
  // model differs in its config, its tensor table, or its data from the first block on (a
  // fine-tune or a requantization changes every tensor's bytes).
  HALYARD_RETURN_IF_ERROR(check_weight_support(f, c, expected, dev, model->device_uri_));
  bool wrap_weights = options.map_weights;
  Fnv1a64 fp;
  fp.text("halyard model fingerprint 1");
  fp.text(c.architecture);
  for (const int v :
       {c.n_layers, c.d_model, c.d_ff, c.n_heads, c.n_kv_heads, c.head_dim, c.vocab_size, c.context_train, c.rope_dims})
    fp.value(static_cast<std::int64_t>(v));
  fp.value(c.rope_base);
  fp.value(c.rms_eps);
  fp.value(static_cast<std::int32_t>(c.rope_layout));
  fp.value(static_cast<std::uint8_t>(c.tied_output));
  // The fields later architectures added, only where they differ from Llama's defaults, so a
  // llama file's fingerprint (and the sequence states saved against it) stays what it was.
  if (c.embed_scale != 1.f || c.attention_scale != 0.f || c.sliding_window != 0) {
    fp.value(c.embed_scale);
    fp.value(c.attention_scale);
    fp.value(static_cast<std::int64_t>(c.sliding_window));
    fp.value(c.rope_base_local);
    for (const bool local : c.local_layers)
      fp.value(static_cast<std::uint8_t>(local));
  }
  for (const auto& [name, shape, kind] : expected) {
    const GgufTensor* t = f.find_tensor(name);
    if (!t)
      return data_loss("model is missing tensor '" + name + "'");
    if (t->desc.ne[0] != shape[0] || t->desc.ne[1] != shape[1] || t->desc.ne[2] != 1 || t->desc.ne[3] != 1) {
      return data_loss("tensor '" + name + "' is " + t->desc.to_string() + ", expected [" + std::to_string(shape[0]) +
                       ", " + std::to_string(shape[1]) + "]");
    }
    if (kind == TensorSpec::Kind::kVector && t->desc.dtype != DType::kF32)
      return unimplemented("tensor '" + name + "' must be f32, got " + std::string(dtype_name(t->desc.dtype)));
    fp.text(name);
    fp.value(t->type_id);  // GGUF's id: stable, unlike Halyard's enum
    for (const std::int64_t ne : t->desc.ne)
      fp.value(ne);
    constexpr std::size_t kSample = 4096;
    const std::size_t bytes = t->desc.bytes();
    const auto* data = static_cast<const std::byte*>(t->data);
    fp.bytes(data, std::min(bytes, kSample));
    if (bytes > kSample)
      fp.bytes(data + bytes - std::min(bytes - kSample, kSample), std::min(bytes - kSample, kSample));
    Weight w;
    w.desc = t->desc;
    if (wrap_weights) {
      auto wrapped = dev.wrap_host(t->data, bytes);
      if (wrapped.is_ok()) {
        w.buffer = std::move(wrapped).value();
        model->mapped_weight_bytes_ += bytes;
      } else if (wrapped.status().code() == StatusCode::kUnimplemented) {
        wrap_weights = false;  // the device cannot read host memory in place: copy every tensor
      } else if (wrapped.status().code() != StatusCode::kFailedPrecondition) {
        return wrapped.status();
      }
      // failed_precondition: this tensor's data is not aligned as the device needs; copied below.
    }
    if (!w.buffer) {
      HALYARD_ASSIGN_OR_RETURN(w.buffer, dev.allocate(bytes));
      HALYARD_RETURN_IF_ERROR(w.buffer->upload(0, t->data, bytes));
    }
    model->weight_bytes_ += t->desc.bytes();
    model->parameter_count_ += static_cast<std::uint64_t>(t->desc.elements());
    model->weights_.emplace(name, std::move(w));
  }
  model->fingerprint_ = fp.digest();
  if (model->mapped_weight_bytes_ > 0)
    prefault_weights(f);
  spdlog::info("loaded {} ({} layers, {:.1f} MiB of weights, {:.1f} MiB used in place from the file) on {}",
               model->name_, c.n_layers, static_cast<double>(model->weight_bytes_) / (1 << 20),
               static_cast<double>(model->mapped_weight_bytes_) / (1 << 20), model->device_uri_);
  return model;
}

const Weight* Model::weight(const std::string& name) const {
  auto it = weights_.find(name);
  return it == weights_.end() ? nullptr : &it->second;
}

}  // namespace halyard::runtime
