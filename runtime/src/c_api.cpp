// The public C API over the C++ runtime. Every entry point catches exceptions and turns
// Status codes into halyard_status, with the message kept per thread.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "halyard.h"
// The header's *_default macros pass the caller's sizeof to *_init; here the names are the
// exported functions that binaries built before those macros call (defined below).
#undef halyard_model_options_default
#undef halyard_generate_options_default
#undef halyard_context_options_default
#include "halyard/hal/backend_options.h"
#include "halyard/hal/registry.h"
#include "halyard/runtime/chat_messages.h"
#include "halyard/runtime/context.h"
#include "halyard/runtime/generator.h"
#include "halyard/runtime/model.h"
#include "halyard/runtime/quantize.h"
#include "halyard/runtime/sampler.h"
#include "halyard/runtime/session.h"
#include "logging.h"

using halyard::Status;
using halyard::StatusCode;
namespace rt = halyard::runtime;

struct halyard_device_list {
  struct Entry {
    std::string backend, uri, description;
    bool available;
  };
  std::vector<Entry> entries;
  std::string auto_uri;
};

struct halyard_option_list {
  struct Entry {
    std::string backend, key, type, values, default_value, env, doc;
    std::optional<std::string> current;
  };
  std::vector<Entry> entries;
};

struct halyard_model {
  std::unique_ptr<rt::Model> model;
  std::mutex generate_mutex;
  // The sequence halyard_generate runs, kept across calls (under generate_mutex) so that its KV
  // cache is allocated and its graphs are compiled once, not inside every call's TTFT. Declared
  // after model: destroyed first.
  std::unique_ptr<rt::Session> generate_session;
  std::once_flag chat_template_warned;
};

struct halyard_session {
  std::unique_ptr<rt::Session> session;
};

struct halyard_context {
  std::unique_ptr<rt::Context> context;
  std::vector<rt::BatchToken> batch;  // reused by every step
};

struct halyard_sampler {
  rt::SamplerOptions options;  // kept for halyard_sampler_reset
  rt::Sampler sampler;
  std::size_t vocab_size;
};

namespace {

thread_local std::string g_last_error;

halyard_status to_c(const Status& s) {
  if (s.is_ok())
    return HALYARD_OK;
  g_last_error = s.message();
  switch (s.code()) {
    case StatusCode::kOk:
      return HALYARD_OK;
    case StatusCode::kInvalidArgument:
      return HALYARD_ERROR_INVALID_ARGUMENT;
    case StatusCode::kNotFound:
      return HALYARD_ERROR_NOT_FOUND;
    case StatusCode::kUnavailable:
      return HALYARD_ERROR_UNAVAILABLE;
    case StatusCode::kUnimplemented:
      return HALYARD_ERROR_UNIMPLEMENTED;
    case StatusCode::kOutOfRange:
      return HALYARD_ERROR_OUT_OF_RANGE;
    case StatusCode::kResourceExhausted:
      return HALYARD_ERROR_OUT_OF_MEMORY;
    case StatusCode::kDataLoss:
      return HALYARD_ERROR_CORRUPT_FILE;
    case StatusCode::kCancelled:
      return HALYARD_ERROR_CANCELLED;
    case StatusCode::kCacheFull:
      return HALYARD_ERROR_KV_CACHE_FULL;
    case StatusCode::kFailedPrecondition:
    case StatusCode::kInternal:
      return HALYARD_ERROR_INTERNAL;
  }
  return HALYARD_ERROR_INTERNAL;
}

halyard_status fail(halyard_status code, std::string message) {
  g_last_error = std::move(message);
  return code;
}

// The process-wide plugin registry, loaded on first use.
halyard::Result<halyard::BackendRegistry*> registry() {
  static std::once_flag once;
  static std::unique_ptr<halyard::BackendRegistry> instance;
  static Status load_status;
  std::call_once(once, [] {
    auto r = halyard::BackendRegistry::load(halyard::RegistryOptions::from_environment());
    if (r.is_ok()) {
      instance = std::move(r).value();
    } else {
      load_status = r.status();
    }
  });
  if (!instance)
    return load_status;
  return instance.get();
}

template <typename Fn>
halyard_status guarded(Fn&& fn) {
  rt::init_logging();
  try {
    return fn();
  } catch (const std::bad_alloc&) {
    return fail(HALYARD_ERROR_OUT_OF_MEMORY, "out of host memory");
  } catch (const std::exception& e) {
    return fail(HALYARD_ERROR_INTERNAL, e.what());
  } catch (...) {
    return fail(HALYARD_ERROR_INTERNAL, "unknown internal error");
  }
}

int32_t finish_reason(rt::StopReason stop) {
  switch (stop) {
    case rt::StopReason::kMaxTokens:
      return HALYARD_FINISH_MAX_TOKENS;
    case rt::StopReason::kEndOfGeneration:
      return HALYARD_FINISH_END_OF_SEQUENCE;
    case rt::StopReason::kContextFull:
      return HALYARD_FINISH_CONTEXT_FULL;
    case rt::StopReason::kCancelled:
      return HALYARD_FINISH_CANCELLED;
  }
  return HALYARD_FINISH_NONE;
}

halyard_status copy_out(const std::string& s, char* text, std::size_t capacity, std::size_t* n_out) {
  if (n_out)
    *n_out = s.size();
  if (s.size() > capacity)
    return fail(HALYARD_ERROR_BUFFER_TOO_SMALL, "output needs " + std::to_string(s.size()) + " bytes");
  if (text && !s.empty())
    std::memcpy(text, s.data(), s.size());
  return HALYARD_OK;
}

const halyard_option_list::Entry* option_entry(const halyard_option_list* l, size_t i) {
  return l && i < l->entries.size() ? &l->entries[i] : nullptr;
}

constexpr std::size_t round_up(std::size_t n, std::size_t align) {
  return (n + align - 1) / align * align;
}

// The sizes of the options structs in the halyard.h of commit 230fb20, the last header whose
// halyard_X_options_default() were functions: binaries built against it pass structs of these
// sizes to the exported halyard_X_options_default symbols, which therefore write no more than
// this, whatever fields later headers append. Frozen: never change these. Written as the
// layout gives them on any ABI; on the LP64 ABIs the library is built for: 40, 88 and 24.
constexpr std::size_t kFrozenModelOptionsSize =
    round_up(offsetof(halyard_model_options, kv_dtype) + sizeof(int32_t), alignof(halyard_model_options));
constexpr std::size_t kFrozenGenerateOptionsSize =
    round_up(offsetof(halyard_generate_options, frequency_penalty) + sizeof(float), alignof(halyard_generate_options));
constexpr std::size_t kFrozenContextOptionsSize =
    round_up(offsetof(halyard_context_options, max_batch_tokens) + sizeof(int32_t), alignof(halyard_context_options));
static_assert(kFrozenModelOptionsSize <= sizeof(halyard_model_options));
static_assert(kFrozenGenerateOptionsSize <= sizeof(halyard_generate_options));
static_assert(kFrozenContextOptionsSize <= sizeof(halyard_context_options));
static_assert(sizeof(void*) != 8 || (kFrozenModelOptionsSize == 40 && kFrozenGenerateOptionsSize == 88 &&
                                     kFrozenContextOptionsSize == 24),
              "the frozen sizes are those of the 230fb20 header on LP64");
// The fields appended to halyard_context_options begin exactly where the 230fb20 struct ended
// (its trailing padding included), so an older struct_size covers none of them.
static_assert(offsetof(halyard_context_options, kv_bytes) == kFrozenContextOptionsSize);
static_assert(offsetof(halyard_model_options, load_flags) == kFrozenModelOptionsSize);
static_assert(offsetof(halyard_model_options, force_gpt2_split) > offsetof(halyard_model_options, load_flags));

void fill_defaults(halyard_model_options& o) {
  o.device = nullptr;
  o.context_length = 0;
  o.threads = 0;
  o.backend_options = nullptr;
  o.kv_dtype = HALYARD_KV_F16;
  o.load_flags = 0;
  o.force_gpt2_split = 0;
}

void fill_defaults(halyard_generate_options& o) {
  o.max_tokens = 128;
  o.temperature = 0.f;
  o.top_k = 40;
  o.top_p = 0.95f;
  o.seed = 0;
  o.parse_special = 1;
  o.logit_bias_tokens = nullptr;
  o.logit_bias_values = nullptr;
  o.n_logit_bias = 0;
  o.min_p = 0.f;
  o.repeat_penalty = 1.f;
  o.repeat_last_n = 64;
  o.presence_penalty = 0.f;
  o.frequency_penalty = 0.f;
}

void fill_defaults(halyard_chat_template_options& o) {
  o.messages_json = nullptr;
  o.tools_json = nullptr;
  o.add_generation_prompt = 1;
}

void fill_defaults(halyard_context_options& o) {
  o.max_sequences = 1;
  o.kv_blocks = 0;
  o.max_batch_tokens = 512;
  o.kv_bytes = 0;
  o.kv_dtype = 0;
  o.prefix_cache = 1;
}

void fill_defaults(halyard_quantize_options& o) {
  o.pure = 0;
  o.threads = 0;
  o.on_message = nullptr;
  o.user_data = nullptr;
}

// What every halyard_X_options_init does: the defaults (padding zeroed) of the first
// min(size, sizeof(T)) bytes of *o, struct_size set to that.
template <typename T>
void init_options(T* o, std::size_t size) {
  if (!o || size < sizeof(std::size_t))
    return;
  T defaults;
  std::memset(&defaults, 0, sizeof defaults);
  fill_defaults(defaults);
  defaults.struct_size = std::min(size, sizeof defaults);
  std::memcpy(o, &defaults, defaults.struct_size);
}

// What every entry point taking a halyard_X_options does with the caller's struct: the bytes
// its struct_size covers replace the defaults already in `o`; a struct_size that does not
// reach `min_size` (the fields of the first published struct, or at least struct_size itself)
// is an error naming the struct. A null `caller` leaves the defaults.
template <typename T>
halyard_status copy_caller_options(T& o, const T* caller, std::size_t min_size, const char* name) {
  if (!caller)
    return HALYARD_OK;
  if (caller->struct_size < std::max(min_size, sizeof(std::size_t)))
    return fail(HALYARD_ERROR_INVALID_ARGUMENT, std::string(name) + ".struct_size is too small");
  std::memcpy(&o, caller, std::min(caller->struct_size, sizeof o));
  return HALYARD_OK;
}

}  // namespace

extern "C" {

const char* halyard_last_error(void) {
  return g_last_error.c_str();
}

const char* halyard_status_name(halyard_status status) {
  switch (status) {
    case HALYARD_OK:
      return "ok";
    case HALYARD_ERROR_INVALID_ARGUMENT:
      return "invalid argument";
    case HALYARD_ERROR_NOT_FOUND:
      return "not found";
    case HALYARD_ERROR_UNAVAILABLE:
      return "unavailable";
    case HALYARD_ERROR_UNIMPLEMENTED:
      return "unimplemented";
    case HALYARD_ERROR_OUT_OF_RANGE:
      return "out of range";
    case HALYARD_ERROR_OUT_OF_MEMORY:
      return "out of memory";
    case HALYARD_ERROR_CORRUPT_FILE:
      return "corrupt file";
    case HALYARD_ERROR_CANCELLED:
      return "cancelled";
    case HALYARD_ERROR_KV_CACHE_FULL:
      return "KV cache full";
    case HALYARD_ERROR_INTERNAL:
      return "internal error";
    case HALYARD_ERROR_BUFFER_TOO_SMALL:
      return "buffer too small";
  }
  return "unknown status";
}

const char* halyard_version(void) {
  return HALYARD_VERSION_STRING;
}

void halyard_set_log_level(int level) {
  rt::set_log_level(level);
}

void halyard_set_log_callback(halyard_log_callback callback, void* user_data) {
  rt::set_log_callback(callback, user_data);
}

const char* halyard_finish_reason_name(int32_t reason) {
  switch (reason) {
    case HALYARD_FINISH_MAX_TOKENS:
      return "max tokens";
    case HALYARD_FINISH_END_OF_SEQUENCE:
      return "end of sequence";
    case HALYARD_FINISH_CONTEXT_FULL:
      return "context full";
    case HALYARD_FINISH_CANCELLED:
      return "cancelled";
    default:
      return "none";
  }
}

halyard_status halyard_list_devices(halyard_device_list** out) {
  if (!out)
    return fail(HALYARD_ERROR_INVALID_ARGUMENT, "out is NULL");
  return guarded([&] {
    auto reg = registry();
    if (!reg.is_ok())
      return to_c(reg.status());
    auto list = std::make_unique<halyard_device_list>();
    for (halyard::Backend* b : reg.value()->backends()) {
      const Status avail = b->availability();
      if (!avail.is_ok()) {
        list->entries.push_back({std::string(b->name()), "", "unavailable: " + avail.message(), false});
        continue;
      }
      for (const auto& d : b->devices()) {
        std::string desc = d.name + " (" + std::string(halyard::device_type_name(d.type)) + ", " + d.vendor;
        if (d.memory_bytes)
          desc += ", " + std::to_string(d.memory_bytes >> 20) + " MiB";
        desc += ")";
        if (!d.details.empty())
          desc += ": " + d.details;
        list->entries.push_back({std::string(b->name()), d.uri, desc, true});
      }
    }
    for (const auto& p : reg.value()->problems()) {
      list->entries.push_back({p.path, "", "unavailable: " + p.reason, false});
    }
    if (auto a = reg.value()->resolve("auto"); a.is_ok())
      list->auto_uri = a.value();
    *out = list.release();
    return HALYARD_OK;
  });
}

size_t halyard_device_list_size(const halyard_device_list* l) {
  return l ? l->entries.size() : 0;
}
const char* halyard_device_list_backend(const halyard_device_list* l, size_t i) {
  return l && i < l->entries.size() ? l->entries[i].backend.c_str() : "";
}
const char* halyard_device_list_uri(const halyard_device_list* l, size_t i) {
  return l && i < l->entries.size() ? l->entries[i].uri.c_str() : "";
}
const char* halyard_device_list_description(const halyard_device_list* l, size_t i) {
  return l && i < l->entries.size() ? l->entries[i].description.c_str() : "";
}
int halyard_device_list_available(const halyard_device_list* l, size_t i) {
  return l && i < l->entries.size() && l->entries[i].available ? 1 : 0;
}
const char* halyard_device_list_auto(const halyard_device_list* l) {
  return l && !l->auto_uri.empty() ? l->auto_uri.c_str() : nullptr;
}
void halyard_device_list_free(halyard_device_list* l) {
  delete l;
}

halyard_status halyard_list_options(halyard_option_list** out) {
  if (!out)
    return fail(HALYARD_ERROR_INVALID_ARGUMENT, "out is NULL");
  return guarded([&] {
    auto reg = registry();
    if (!reg.is_ok())
      return to_c(reg.status());
    auto list = std::make_unique<halyard_option_list>();
    for (const halyard::Backend* b : reg.value()->backends()) {
      for (const halyard::BackendOption& o : b->options()) {
        halyard_option_list::Entry e;
        e.backend = std::string(b->name());
        e.key = std::string(o.key);
        e.type = std::string(halyard::option_type_name(o.type));
        if (o.type == halyard::OptionType::kEnum) {
          for (std::string_view v : o.values)
            e.values += (e.values.empty() ? "" : ", ") + std::string(v);
        } else if (o.type == halyard::OptionType::kInt) {
          e.values = "[" + std::to_string(o.min) + ", " + std::to_string(o.max) + "]";
        } else if (o.type == halyard::OptionType::kBool) {
          e.values = "0, 1";
        }
        e.default_value = std::string(o.default_value);
        e.env = std::string(o.env);
        e.doc = std::string(o.doc);
        e.current = halyard::option_environment_value(o);
        list->entries.push_back(std::move(e));
      }
    }
    *out = list.release();
    return HALYARD_OK;
  });
}

size_t halyard_option_list_size(const halyard_option_list* l) {
  return l ? l->entries.size() : 0;
}

const char* halyard_option_list_backend(const halyard_option_list* l, size_t i) {
  const auto* e = option_entry(l, i);
  return e ? e->backend.c_str() : "";
}
const char* halyard_option_list_key(const halyard_option_list* l, size_t i) {
  const auto* e = option_entry(l, i);
  return e ? e->key.c_str() : "";
}
const char* halyard_option_list_type(const halyard_option_list* l, size_t i) {
  const auto* e = option_entry(l, i);
  return e ? e->type.c_str() : "";
}
const char* halyard_option_list_values(const halyard_option_list* l, size_t i) {
  const auto* e = option_entry(l, i);
  return e ? e->values.c_str() : "";
}
const char* halyard_option_list_default(const halyard_option_list* l, size_t i) {
  const auto* e = option_entry(l, i);
  return e ? e->default_value.c_str() : "";
}
const char* halyard_option_list_env(const halyard_option_list* l, size_t i) {
  const auto* e = option_entry(l, i);
  return e ? e->env.c_str() : "";
}
const char* halyard_option_list_current(const halyard_option_list* l, size_t i) {
  const auto* e = option_entry(l, i);
  return e && e->current ? e->current->c_str() : nullptr;
}
const char* halyard_option_list_doc(const halyard_option_list* l, size_t i) {
  const auto* e = option_entry(l, i);
  return e ? e->doc.c_str() : "";
}
void halyard_option_list_free(halyard_option_list* l) {
  delete l;
}

void halyard_quantize_options_init(halyard_quantize_options* o, size_t size) {
  init_options(o, size);
}

halyard_status halyard_quantize(const char* input_path, const char* output_path, const char* type,
                                const halyard_quantize_options* options) {
  if (!input_path || !output_path || !type)
    return fail(HALYARD_ERROR_INVALID_ARGUMENT, "input_path, output_path and type must not be NULL");
  halyard_quantize_options o;
  halyard_quantize_options_init(&o, sizeof o);
  // Fields past the caller's struct_size keep the defaults written above.
  if (const halyard_status s = copy_caller_options(o, options, 0, "halyard_quantize_options"); s != HALYARD_OK)
    return s;
  if (o.threads < 0)
    return fail(HALYARD_ERROR_INVALID_ARGUMENT, "threads must be >= 0 (0: one per hardware thread)");
  return guarded([&] {
    rt::QuantizeOptions qo;
    qo.type = type;
    qo.pure = o.pure != 0;
    qo.threads = o.threads;
    if (o.on_message) {
      qo.on_message = [&o](std::string_view line) {
        const std::string s(line);
        o.on_message(s.c_str(), o.user_data);
      };
    }
    auto r = rt::quantize_gguf(input_path, output_path, qo);
    return to_c(r.status());
  });
}

void halyard_model_options_init(halyard_model_options* o, size_t size) {
  init_options(o, size);
}

void halyard_model_options_default(halyard_model_options* o) {
  init_options(o, kFrozenModelOptionsSize);
}

halyard_status halyard_model_load(const char* path, const halyard_model_options* options, halyard_model** out) {
  if (!path || !out)
    return fail(HALYARD_ERROR_INVALID_ARGUMENT, "path and out must not be NULL");
  *out = nullptr;
  halyard_model_options o;
  halyard_model_options_init(&o, sizeof o);
  if (const halyard_status s = copy_caller_options(
          o, options, offsetof(halyard_model_options, context_length) + sizeof(int32_t), "halyard_model_options");
      s != HALYARD_OK)
    return s;
  return guarded([&] {
    auto reg = registry();
    if (!reg.is_ok())
      return to_c(reg.status());
    rt::ModelOptions mo;
    const char* env_device = std::getenv("HALYARD_DEVICE");
    mo.device = o.device && *o.device ? o.device : (env_device && *env_device ? env_device : "auto");
    if (o.context_length < 0)
      return fail(HALYARD_ERROR_INVALID_ARGUMENT, "context_length must be >= 0 (0: the model's, at most 4096)");
    mo.context_length = o.context_length;
    mo.threads = o.threads;
    if (const char* env = std::getenv("HALYARD_THREADS"); mo.threads == 0 && env && *env) {
      const char* end = env + std::strlen(env);
      const auto [ptr, ec] = std::from_chars(env, end, mo.threads);
      if (ec != std::errc() || ptr != end || mo.threads < 0)
        return fail(HALYARD_ERROR_INVALID_ARGUMENT, std::string("HALYARD_THREADS='") + env + "' is not a number >= 0");
    }
    if (mo.threads < 0)
      return fail(HALYARD_ERROR_INVALID_ARGUMENT, "threads must be >= 0 (0: the physical cores)");
    if (const unsigned hw = std::thread::hardware_concurrency(); hw > 0 && mo.threads > static_cast<int>(hw)) {
      spdlog::warn("{} threads exceed the {} hardware threads of this machine: expect a much slower run", mo.threads,
                   hw);
    }
    // The options' environment variables are added by the registry when it opens the device,
    // for every caller alike (backend_options.h).
    if (o.struct_size >= offsetof(halyard_model_options, backend_options) + sizeof(o.backend_options) &&
        o.backend_options) {
      for (const char* const* p = o.backend_options; *p; ++p) {
        auto setting = halyard::parse_option_setting(*p);
        if (!setting.is_ok())
          return to_c(setting.status());
        mo.backend_options.push_back(std::move(setting).value());
      }
    }
    if (o.struct_size >= offsetof(halyard_model_options, kv_dtype) + sizeof(o.kv_dtype)) {
      if (o.kv_dtype != HALYARD_KV_F16 && o.kv_dtype != HALYARD_KV_F32) {
        return fail(HALYARD_ERROR_INVALID_ARGUMENT,
                    "kv_dtype must be HALYARD_KV_F16 (0) or HALYARD_KV_F32 (1), got " + std::to_string(o.kv_dtype));
      }
      mo.kv_dtype = o.kv_dtype == HALYARD_KV_F32 ? halyard::DType::kF32 : halyard::DType::kF16;
    }
    if (o.struct_size >= offsetof(halyard_model_options, load_flags) + sizeof(o.load_flags)) {
      if (o.load_flags & ~HALYARD_LOAD_NO_MMAP) {
        return fail(HALYARD_ERROR_INVALID_ARGUMENT, "load_flags has unknown bits " +
                                                        std::to_string(o.load_flags & ~HALYARD_LOAD_NO_MMAP) +
                                                        " (known: HALYARD_LOAD_NO_MMAP = 1)");
      }
      mo.map_weights = (o.load_flags & HALYARD_LOAD_NO_MMAP) == 0;
    }
    if (o.struct_size >= offsetof(halyard_model_options, force_gpt2_split) + sizeof(o.force_gpt2_split))
      mo.tokenizer.force_gpt2_split = o.force_gpt2_split != 0;
    auto model = rt::Model::load(path, mo, *reg.value());
    if (!model.is_ok())
      return to_c(model.status());
    auto handle = std::make_unique<halyard_model>();
    handle->model = std::move(model).value();
    *out = handle.release();
    return HALYARD_OK;
  });
}

void halyard_model_free(halyard_model* model) {
  delete model;
}
const char* halyard_model_name(const halyard_model* m) {
  return m ? m->model->name().c_str() : "";
}
const char* halyard_model_chat_template(const halyard_model* m) {
  return m ? m->model->chat_template().description().c_str() : "";
}
const char* halyard_model_device(const halyard_model* m) {
  return m ? m->model->device_uri().c_str() : "";
}
const char* halyard_model_device_details(const halyard_model* m) {
  return m ? m->model->device_info().details.c_str() : "";
}
int32_t halyard_model_context_length(const halyard_model* m) {
  return m ? m->model->context_length() : 0;
}
int32_t halyard_model_vocab_size(const halyard_model* m) {
  return m ? m->model->config().vocab_size : 0;
}
uint64_t halyard_model_weight_bytes(const halyard_model* m) {
  return m ? m->model->weight_bytes() : 0;
}
uint64_t halyard_model_mapped_weight_bytes(const halyard_model* m) {
  return m ? m->model->mapped_weight_bytes() : 0;
}
uint64_t halyard_model_fingerprint(const halyard_model* m) {
  return m ? m->model->fingerprint() : 0;
}
uint64_t halyard_model_parameter_count(const halyard_model* m) {
  return m ? m->model->parameter_count() : 0;
}
uint64_t halyard_model_kv_bytes_per_token(const halyard_model* m) {
  if (!m)
    return 0;
  const auto& c = m->model->config();
  const uint64_t element_bytes = m->model->kv_dtype() == halyard::DType::kF16 ? 2 : 4;
  return 2ull * static_cast<uint64_t>(c.n_layers) * static_cast<uint64_t>(c.head_dim) *
         static_cast<uint64_t>(c.n_kv_heads) * element_bytes;
}

halyard_status halyard_session_create(halyard_model* model, halyard_session** out) {
  if (!model || !out)
    return fail(HALYARD_ERROR_INVALID_ARGUMENT, "model and out must not be NULL");
  *out = nullptr;
  return guarded([&] {
    auto s = rt::Session::create(*model->model);
    if (!s.is_ok())
      return to_c(s.status());
    *out = new halyard_session{std::move(s).value()};
    return HALYARD_OK;
  });
}

void halyard_session_free(halyard_session* session) {
  delete session;
}

halyard_status halyard_session_eval(halyard_session* session, const int32_t* tokens, size_t n_tokens, float* logits) {
  if (!session || !tokens || n_tokens == 0)
    return fail(HALYARD_ERROR_INVALID_ARGUMENT, "session and tokens must not be NULL or empty");
  return guarded([&] {
    auto r = session->session->eval(std::span<const int32_t>(tokens, n_tokens));
    if (!r.is_ok())
      return to_c(r.status());
    if (logits)
      std::memcpy(logits, r.value().data(), r.value().size() * sizeof(float));
    return HALYARD_OK;
  });
}

int32_t halyard_session_position(const halyard_session* session) {
  return session ? session->session->n_past() : 0;
}
void halyard_session_reset(halyard_session* session) {
  if (session)
    session->session->reset();
}

halyard_status halyard_tokenize(const halyard_model* model, const char* text, size_t text_len, int add_special,
                                int parse_special, int32_t* tokens, size_t capacity, size_t* n_out) {
  if (!model || (!text && text_len))
    return fail(HALYARD_ERROR_INVALID_ARGUMENT, "model and text must not be NULL");
  return guarded([&] {
    const auto ids = model->model->tokenizer().encode(std::string_view(text ? text : "", text_len), add_special != 0,
                                                      parse_special != 0);
    if (n_out)
      *n_out = ids.size();
    if (ids.size() > capacity)
      return fail(HALYARD_ERROR_BUFFER_TOO_SMALL, "token buffer too small");
    if (tokens && !ids.empty())
      std::memcpy(tokens, ids.data(), ids.size() * sizeof(int32_t));
    return HALYARD_OK;
  });
}

halyard_status halyard_detokenize(const halyard_model* model, const int32_t* tokens, size_t n_tokens, char* text,
                                  size_t capacity, size_t* n_out) {
  if (!model || (!tokens && n_tokens))
    return fail(HALYARD_ERROR_INVALID_ARGUMENT, "model and tokens must not be NULL");
  return guarded([&] {
    const auto& tok = model->model->tokenizer();
    for (size_t i = 0; i < n_tokens; ++i) {
      if (tokens[i] < 0 || static_cast<size_t>(tokens[i]) >= tok.vocab_size()) {
        return fail(HALYARD_ERROR_INVALID_ARGUMENT,
                    "token id " + std::to_string(tokens[i]) + " is outside the vocabulary");
      }
    }
    return copy_out(tok.decode(std::vector<rt::TokenId>(tokens, tokens + n_tokens)), text, capacity, n_out);
  });
}

int halyard_token_is_end_of_generation(const halyard_model* model, int32_t token) {
  return model && model->model->tokenizer().is_end_of_generation(token) ? 1 : 0;
}

halyard_status halyard_apply_chat_template(const halyard_model* model, const halyard_chat_message* messages,
                                           size_t n_messages, char* text, size_t capacity, size_t* n_out) {
  return halyard_apply_chat_template_ex(model, messages, n_messages, nullptr, text, capacity, n_out);
}

void halyard_chat_template_options_init(halyard_chat_template_options* o, size_t size) {
  init_options(o, size);
}

halyard_status halyard_apply_chat_template_ex(const halyard_model* model, const halyard_chat_message* messages,
                                              size_t n_messages, const halyard_chat_template_options* options,
                                              char* text, size_t capacity, size_t* n_out) {
  halyard_chat_template_options o;
  halyard_chat_template_options_init(&o, sizeof o);
  if (const halyard_status s = copy_caller_options(o, options, sizeof(size_t), "halyard_chat_template_options"))
    return s;
  if (!model || (!messages && n_messages && !o.messages_json))
    return fail(HALYARD_ERROR_INVALID_ARGUMENT, "model and messages must not be NULL");
  return guarded([&] {
    std::vector<rt::ChatMessage> msgs;
    if (o.messages_json) {
      const auto parsed = nlohmann::ordered_json::parse(o.messages_json, nullptr, /*allow_exceptions=*/false);
      if (parsed.is_discarded())
        return fail(HALYARD_ERROR_INVALID_ARGUMENT, "messages_json is not valid JSON");
      if (auto e = rt::read_chat_messages(parsed, SIZE_MAX, msgs))
        return fail(HALYARD_ERROR_INVALID_ARGUMENT, e->param + ": " + e->message);
    } else {
      for (size_t i = 0; i < n_messages; ++i) {
        if (!messages[i].role || !messages[i].content)
          return fail(HALYARD_ERROR_INVALID_ARGUMENT, "message role/content is NULL");
        rt::ChatMessage m;
        m.role = messages[i].role;
        m.content = messages[i].content;
        msgs.push_back(std::move(m));
      }
    }
    std::string tools;
    if (o.tools_json && *o.tools_json) {
      const auto parsed = nlohmann::ordered_json::parse(o.tools_json, nullptr, /*allow_exceptions=*/false);
      if (parsed.is_discarded())
        return fail(HALYARD_ERROR_INVALID_ARGUMENT, "tools_json is not valid JSON");
      if (auto e = rt::read_chat_tools(parsed, tools))
        return fail(HALYARD_ERROR_INVALID_ARGUMENT, e->param + ": " + e->message);
    }
    if (const std::string& w = model->model->chat_template_warning(); !w.empty())
      std::call_once(const_cast<halyard_model*>(model)->chat_template_warned, [&] { spdlog::warn("{}", w); });
    auto prompt = model->model->chat_template().apply(msgs, o.add_generation_prompt != 0, tools);
    if (!prompt.is_ok())
      return fail(HALYARD_ERROR_INVALID_ARGUMENT, prompt.status().message());
    return copy_out(prompt.value(), text, capacity, n_out);
  });
}

const char* halyard_model_tool_call_format(const halyard_model* model) {
  return model ? rt::tool_call_format_name(model->model->chat_template().tool_call_format()) : "none";
}

halyard_status halyard_parse_tool_calls(const halyard_model* model, const char* text, size_t text_len,
                                        const char* format, char* json, size_t capacity, size_t* n_out) {
  if (!model || (!text && text_len))
    return fail(HALYARD_ERROR_INVALID_ARGUMENT, "model and text must not be NULL");
  return guarded([&] {
    rt::ToolCallFormat f = model->model->chat_template().tool_call_format();
    if (format) {
      const auto named = rt::tool_call_format_from_name(format);
      if (!named)
        return fail(HALYARD_ERROR_INVALID_ARGUMENT,
                    std::string("unknown tool call format '") + format + "'; use hermes, llama3_json, mistral or none");
      f = *named;
    }
    const rt::ParsedToolCalls parsed = rt::parse_tool_calls(f, std::string_view(text ? text : "", text_len));
    nlohmann::ordered_json out = nlohmann::ordered_json::object();
    out["content"] = parsed.content ? nlohmann::ordered_json(*parsed.content) : nlohmann::ordered_json(nullptr);
    out["tool_calls"] = nlohmann::ordered_json::array();
    for (const rt::ToolCall& c : parsed.calls)
      out["tool_calls"].push_back(
          {{"id", c.id}, {"type", "function"}, {"function", {{"name", c.name}, {"arguments", c.arguments}}}});
    return copy_out(out.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace), json, capacity, n_out);
  });
}

void halyard_generate_options_init(halyard_generate_options* o, size_t size) {
  init_options(o, size);
}

void halyard_generate_options_default(halyard_generate_options* o) {
  init_options(o, kFrozenGenerateOptionsSize);
}

// The fields appended for sampling (issue 13) start with a pointer so that they begin exactly
// where the older struct ended (its size was rounded up to its uint64_t's alignment): an older caller's
// struct_size then covers none of them, not even its trailing padding. Checked here for the
// 64-bit ABIs the library is built for.
static_assert(sizeof(void*) != 8 || offsetof(halyard_generate_options, logit_bias_tokens) == 40,
              "the first field added to halyard_generate_options must start where the old struct ended");

namespace {
// The sampling fields of generate options as the runtime's SamplerOptions, validated against
// the model's vocabulary (halyard_generate and halyard_sampler_create).
halyard_status sampler_options(const halyard_model* model, const halyard_generate_options& o,
                               rt::SamplerOptions& sampler) {
  sampler.temperature = o.temperature;
  sampler.top_k = o.top_k;
  sampler.top_p = o.top_p;
  sampler.seed = o.seed;
  sampler.min_p = o.min_p;
  sampler.repeat_penalty = o.repeat_penalty;
  sampler.repeat_last_n = o.repeat_last_n;
  sampler.presence_penalty = o.presence_penalty;
  sampler.frequency_penalty = o.frequency_penalty;
  if (o.n_logit_bias > 0 && (!o.logit_bias_tokens || !o.logit_bias_values)) {
    return fail(HALYARD_ERROR_INVALID_ARGUMENT, "n_logit_bias is " + std::to_string(o.n_logit_bias) +
                                                    " but logit_bias_tokens or logit_bias_values is NULL");
  }
  // Copying the bias allocates: inside guarded, so running out of memory is an error, not a throw.
  return guarded([&] {
    for (std::size_t i = 0; i < o.n_logit_bias; ++i)
      sampler.logit_bias.emplace_back(o.logit_bias_tokens[i], o.logit_bias_values[i]);
    return to_c(rt::validate(sampler, static_cast<std::size_t>(model->model->config().vocab_size)));
  });
}

}  // namespace

halyard_status halyard_generate(halyard_model* model, const char* prompt, const halyard_generate_options* options,
                                halyard_token_callback callback, void* user_data, halyard_timings* timings) {
  if (!model || !prompt)
    return fail(HALYARD_ERROR_INVALID_ARGUMENT, "model and prompt must not be NULL");
  halyard_generate_options o;
  halyard_generate_options_init(&o, sizeof o);
  if (const halyard_status s = copy_caller_options(o, options, 0, "halyard_generate_options"); s != HALYARD_OK)
    return s;
  if (o.max_tokens < 0)
    return fail(HALYARD_ERROR_INVALID_ARGUMENT, "max_tokens must be >= 0, not " + std::to_string(o.max_tokens));
  rt::SamplerOptions sampler;
  if (const halyard_status s = sampler_options(model, o, sampler); s != HALYARD_OK)
    return s;
  return guarded([&] {
    std::lock_guard lock(model->generate_mutex);
    // Tokenize at most one token past the context: a longer prompt cannot run, and a huge one
    // is refused after a context's worth of work rather than after tokenizing all of it.
    const int ctx = model->model->context_length();
    const auto ids = model->model->tokenizer().encode(prompt, true, o.parse_special != 0, static_cast<size_t>(ctx));
    if (ids.size() > static_cast<size_t>(ctx)) {
      return to_c(halyard::out_of_range("the prompt has more than " + std::to_string(ctx) +
                                        " tokens but the context holds " + std::to_string(ctx) +
                                        "; shorten it or raise --ctx"));
    }
    if (!model->generate_session) {
      auto session = rt::Session::create(*model->model);
      if (!session.is_ok())
        return to_c(session.status());
      model->generate_session = std::move(session).value();
    }
    rt::Session& session = *model->generate_session;
    session.reset();  // a fresh sequence: its cache rows are overwritten before they are read
    rt::GenerateOptions go;
    go.max_tokens = o.max_tokens;
    go.sampler = sampler;
    auto result = rt::generate(session, ids, go, [&](rt::TokenId id, std::string_view text) {
      return callback ? callback(id, text.data(), text.size(), user_data) == 0 : true;
    });
    if (!result.is_ok())
      return to_c(result.status());
    if (timings && timings->struct_size >= sizeof(size_t)) {
      halyard_timings t{};
      t.struct_size = timings->struct_size;
      t.prompt_tokens = result->timings.prompt_tokens;
      t.generated_tokens = result->timings.generated_tokens;
      t.time_to_first_token_ms = result->timings.time_to_first_token_ms;
      t.prefill_tokens_per_s = result->timings.prefill_tokens_per_s();
      t.decode_tokens_per_s = result->timings.decode_tokens_per_s();
      t.prompt_cached_tokens = result->timings.cached_prompt_tokens;
      t.finish_reason = finish_reason(result->stop);
      std::memcpy(timings, &t, std::min(timings->struct_size, sizeof t));
    }
    if (result->stop == rt::StopReason::kCancelled)
      return fail(HALYARD_ERROR_CANCELLED, "generation cancelled by the callback");
    return HALYARD_OK;
  });
}

void halyard_context_options_init(halyard_context_options* o, size_t size) {
  init_options(o, size);
}

void halyard_context_options_default(halyard_context_options* o) {
  init_options(o, kFrozenContextOptionsSize);
}

halyard_status halyard_context_create(halyard_model* model, const halyard_context_options* options,
                                      halyard_context** out) {
  if (!model || !out)
    return fail(HALYARD_ERROR_INVALID_ARGUMENT, "model and out must not be NULL");
  *out = nullptr;
  halyard_context_options o;
  halyard_context_options_init(&o, sizeof o);
  if (const halyard_status s = copy_caller_options(
          o, options, offsetof(halyard_context_options, max_sequences) + sizeof(int32_t), "halyard_context_options");
      s != HALYARD_OK)
    return s;
  if (options) {
    // A field the caller's struct_size does not wholly cover keeps its default.
    halyard_context_options defaults;
    halyard_context_options_init(&defaults, sizeof defaults);
    if (o.struct_size < offsetof(halyard_context_options, kv_bytes) + sizeof o.kv_bytes)
      o.kv_bytes = defaults.kv_bytes;
    if (o.struct_size < offsetof(halyard_context_options, kv_dtype) + sizeof o.kv_dtype)
      o.kv_dtype = defaults.kv_dtype;
    if (o.struct_size < offsetof(halyard_context_options, prefix_cache) + sizeof o.prefix_cache)
      o.prefix_cache = defaults.prefix_cache;
  }
  if (o.max_sequences < 1)
    return fail(HALYARD_ERROR_INVALID_ARGUMENT, "max_sequences must be >= 1");
  if (o.kv_blocks < 0)
    return fail(HALYARD_ERROR_INVALID_ARGUMENT, "kv_blocks must be >= 0 (0: one full context per sequence)");
  if (o.max_batch_tokens < 1)
    return fail(HALYARD_ERROR_INVALID_ARGUMENT, "max_batch_tokens must be >= 1");
  if (o.kv_bytes < 0)
    return fail(HALYARD_ERROR_INVALID_ARGUMENT, "kv_bytes must be >= 0 (0: unused), got " + std::to_string(o.kv_bytes));
  if (o.kv_bytes > 0 && o.kv_blocks > 0) {
    return fail(HALYARD_ERROR_INVALID_ARGUMENT, "give the KV capacity as kv_blocks or as kv_bytes, not both (got " +
                                                    std::to_string(o.kv_blocks) + " blocks and " +
                                                    std::to_string(o.kv_bytes) + " bytes)");
  }
  if (o.kv_dtype != 0 && o.kv_dtype != HALYARD_KV_F32) {
    return fail(HALYARD_ERROR_INVALID_ARGUMENT,
                "kv_dtype must be 0 (the model's KV dtype) or HALYARD_KV_F32 (1), got " + std::to_string(o.kv_dtype));
  }
  return guarded([&] {
    rt::ContextOptions co;
    co.max_sequences = o.max_sequences;
    co.n_blocks = o.kv_blocks;
    co.max_batch_tokens = o.max_batch_tokens;
    co.prefix_cache = o.prefix_cache != 0;
    if (o.kv_dtype == HALYARD_KV_F32)
      co.kv_dtype = halyard::DType::kF32;
    if (o.kv_bytes > 0) {
      const halyard::DType dtype = co.kv_dtype.value_or(model->model->kv_dtype());
      const uint64_t per_block = rt::Context::kv_bytes_per_block(*model->model, dtype);
      const uint64_t blocks = static_cast<uint64_t>(o.kv_bytes) / per_block;
      if (blocks < 1) {
        return fail(HALYARD_ERROR_INVALID_ARGUMENT, "kv_bytes " + std::to_string(o.kv_bytes) +
                                                        " holds less than one KV block, which takes " +
                                                        std::to_string(per_block) + " bytes");
      }
      // 2^30 blocks are terabytes, more than any device holds: a larger budget is clamped to
      // that (keeping the count, and a GPU context's padding blocks added to it, in an int) and
      // then fails to allocate as out of memory.
      co.n_blocks = static_cast<int>(std::min<uint64_t>(blocks, uint64_t{1} << 30));
    }
    auto c = rt::Context::create(*model->model, co);
    if (!c.is_ok())
      return to_c(c.status());
    *out = new halyard_context{std::move(c).value(), {}};
    return HALYARD_OK;
  });
}

void halyard_context_free(halyard_context* context) {
  delete context;
}

halyard_status halyard_context_step(halyard_context* context, const halyard_batch* batch) {
  if (!context || !batch)
    return fail(HALYARD_ERROR_INVALID_ARGUMENT, "context and batch must not be NULL");
  if (batch->struct_size < offsetof(halyard_batch, logits) + sizeof(batch->logits))
    return fail(HALYARD_ERROR_INVALID_ARGUMENT, "halyard_batch.struct_size is too small");
  if (batch->n_tokens == 0 || !batch->tokens || !batch->positions || !batch->seq_ids)
    return fail(HALYARD_ERROR_INVALID_ARGUMENT, "a batch needs n_tokens > 0 and tokens, positions and seq_ids");
  const std::int32_t out_kind = batch->struct_size >= offsetof(halyard_batch, output) + sizeof(batch->output)
                                    ? batch->output
                                    : HALYARD_OUTPUT_LOGITS;
  if (out_kind != HALYARD_OUTPUT_LOGITS && out_kind != HALYARD_OUTPUT_ARGMAX) {
    return fail(HALYARD_ERROR_INVALID_ARGUMENT,
                "halyard_batch.output must be HALYARD_OUTPUT_LOGITS (0) or "
                "HALYARD_OUTPUT_ARGMAX (1), not " +
                    std::to_string(out_kind));
  }
  const rt::StepOutput output = out_kind == HALYARD_OUTPUT_ARGMAX ? rt::StepOutput::kArgmax : rt::StepOutput::kLogits;
  return guarded([&] {
    auto& b = context->batch;
    b.resize(batch->n_tokens);
    for (size_t i = 0; i < batch->n_tokens; ++i) {
      const bool want = batch->logits ? batch->logits[i] != 0 : i + 1 == batch->n_tokens;
      b[i] = rt::BatchToken{batch->tokens[i], batch->seq_ids[i], batch->positions[i], want};
    }
    return to_c(context->context->step(b, output));
  });
}

int halyard_context_step_ran(const halyard_context* context, size_t i) {
  if (!context || i > static_cast<size_t>(INT32_MAX))
    return 0;
  return context->context->ran(static_cast<int>(i)) ? 1 : 0;
}

// No guarded(): it must not touch the logging setup or anything else another thread may be
// using; Context::cancel only sets an atomic flag and cannot throw.
halyard_status halyard_seq_cancel(halyard_context* context, int32_t seq) {
  if (!context)
    return fail(HALYARD_ERROR_INVALID_ARGUMENT, "context must not be NULL");
  return to_c(context->context->cancel(seq));
}

halyard_status halyard_seq_state_size(const halyard_context* context, int32_t seq, size_t* out) {
  if (!context || !out)
    return fail(HALYARD_ERROR_INVALID_ARGUMENT, "context and out must not be NULL");
  *out = 0;
  return guarded([&] {
    auto size = context->context->state_size(seq);
    if (!size.is_ok())
      return to_c(size.status());
    *out = size.value();
    return HALYARD_OK;
  });
}

halyard_status halyard_seq_state_save(const halyard_context* context, int32_t seq, void* buf, size_t capacity,
                                      size_t* n_out) {
  if (!context || !n_out)
    return fail(HALYARD_ERROR_INVALID_ARGUMENT, "context and n_out must not be NULL");
  if (!buf && capacity > 0)
    return fail(HALYARD_ERROR_INVALID_ARGUMENT, "buf is NULL and capacity is not 0");
  *n_out = 0;
  return guarded([&] {
    auto size = context->context->state_size(seq);
    if (!size.is_ok())
      return to_c(size.status());
    *n_out = size.value();
    if (size.value() > capacity) {
      return fail(HALYARD_ERROR_BUFFER_TOO_SMALL, "the state of sequence " + std::to_string(seq) + " takes " +
                                                      std::to_string(size.value()) + " bytes; capacity is " +
                                                      std::to_string(capacity));
    }
    auto written = context->context->save_state(seq, std::span(static_cast<std::byte*>(buf), capacity));
    return to_c(written.status());
  });
}

halyard_status halyard_seq_state_load(halyard_context* context, int32_t seq, const void* buf, size_t n) {
  if (!context)
    return fail(HALYARD_ERROR_INVALID_ARGUMENT, "context must not be NULL");
  if (!buf && n > 0)
    return fail(HALYARD_ERROR_INVALID_ARGUMENT, "buf is NULL and n is not 0");
  return guarded(
      [&] { return to_c(context->context->load_state(seq, std::span(static_cast<const std::byte*>(buf), n))); });
}

const float* halyard_context_logits(const halyard_context* context, size_t i) {
  if (!context || i > static_cast<size_t>(INT32_MAX))
    return nullptr;
  const auto l = context->context->logits(static_cast<int>(i));
  return l.empty() ? nullptr : l.data();
}

int32_t halyard_context_argmax(const halyard_context* context, size_t i) {
  if (!context || i > static_cast<size_t>(INT32_MAX))
    return -1;
  return context->context->argmax(static_cast<int>(i));
}

halyard_status halyard_sampler_create(const halyard_model* model, const halyard_generate_options* options,
                                      halyard_sampler** out) {
  if (!out)
    return fail(HALYARD_ERROR_INVALID_ARGUMENT, "out must not be NULL");
  *out = nullptr;
  if (!model)
    return fail(HALYARD_ERROR_INVALID_ARGUMENT, "model must not be NULL");
  halyard_generate_options o;
  halyard_generate_options_init(&o, sizeof o);
  if (const halyard_status s = copy_caller_options(o, options, 0, "halyard_generate_options"); s != HALYARD_OK)
    return s;
  rt::SamplerOptions so;
  if (const halyard_status s = sampler_options(model, o, so); s != HALYARD_OK)
    return s;
  return guarded([&] {
    *out = new halyard_sampler{so, rt::Sampler(so), static_cast<std::size_t>(model->model->config().vocab_size)};
    return HALYARD_OK;
  });
}

void halyard_sampler_free(halyard_sampler* sampler) {
  delete sampler;
}

halyard_status halyard_sampler_accept(halyard_sampler* sampler, const int32_t* tokens, size_t n_tokens) {
  if (!sampler || (!tokens && n_tokens > 0))
    return fail(HALYARD_ERROR_INVALID_ARGUMENT, "sampler must not be NULL, nor tokens when n_tokens > 0");
  for (size_t i = 0; i < n_tokens; ++i) {
    if (tokens[i] < 0 || static_cast<std::size_t>(tokens[i]) >= sampler->vocab_size) {
      return fail(HALYARD_ERROR_INVALID_ARGUMENT, "token " + std::to_string(tokens[i]) + " (index " +
                                                      std::to_string(i) + ") is outside the vocabulary of " +
                                                      std::to_string(sampler->vocab_size));
    }
  }
  return guarded([&] {
    for (size_t i = 0; i < n_tokens; ++i)
      sampler->sampler.accept(tokens[i]);
    return HALYARD_OK;
  });
}

halyard_status halyard_sampler_sample(halyard_sampler* sampler, const float* logits, size_t n_vocab, int32_t* token) {
  if (!sampler || !logits || !token)
    return fail(HALYARD_ERROR_INVALID_ARGUMENT, "sampler, logits and token must not be NULL");
  if (n_vocab != sampler->vocab_size) {
    return fail(HALYARD_ERROR_INVALID_ARGUMENT, "n_vocab is " + std::to_string(n_vocab) +
                                                    " but the model's vocabulary has " +
                                                    std::to_string(sampler->vocab_size) + " tokens");
  }
  return guarded([&] {
    *token = sampler->sampler.sample(std::span<const float>(logits, n_vocab));
    return HALYARD_OK;
  });
}

int halyard_sampler_needs_logits(const halyard_sampler* sampler) {
  return sampler && sampler->sampler.needs_logits() ? 1 : 0;
}

void halyard_sampler_reset(halyard_sampler* sampler) {
  if (sampler)
    sampler->sampler = rt::Sampler(sampler->options);
}

halyard_status halyard_seq_remove(halyard_context* context, int32_t seq, int32_t p0, int32_t p1) {
  if (!context)
    return fail(HALYARD_ERROR_INVALID_ARGUMENT, "context must not be NULL");
  return guarded([&] { return to_c(context->context->remove(seq, p0, p1)); });
}
halyard_status halyard_seq_copy(halyard_context* context, int32_t src, int32_t dst) {
  if (!context)
    return fail(HALYARD_ERROR_INVALID_ARGUMENT, "context must not be NULL");
  return guarded([&] { return to_c(context->context->copy(src, dst)); });
}
halyard_status halyard_seq_keep(halyard_context* context, int32_t seq) {
  if (!context)
    return fail(HALYARD_ERROR_INVALID_ARGUMENT, "context must not be NULL");
  return guarded([&] { return to_c(context->context->keep(seq)); });
}
int32_t halyard_seq_pos_max(const halyard_context* context, int32_t seq) {
  if (!context || seq < 0 || seq >= context->context->options().max_sequences)
    return -1;
  return context->context->kv().pos_max(seq).value();
}
int32_t halyard_seq_pos_min(const halyard_context* context, int32_t seq) {
  if (!context || seq < 0 || seq >= context->context->options().max_sequences)
    return -1;
  return context->context->kv().pos_min(seq).value();
}
int32_t halyard_context_kv_blocks_total(const halyard_context* context) {
  return context ? context->context->blocks_total() : 0;
}
int32_t halyard_context_kv_blocks_used(const halyard_context* context) {
  return context ? context->context->blocks_used() : 0;
}
int32_t halyard_context_block_size(const halyard_context* context) {
  return context ? context->context->kv().block_size() : 0;
}
int32_t halyard_context_max_sequences(const halyard_context* context) {
  return context ? context->context->options().max_sequences : 0;
}

halyard_status halyard_seq_attach_prefix(halyard_context* context, int32_t seq, const int32_t* tokens, size_t n_tokens,
                                         int32_t* n_cached) {
  if (!context || !n_cached || (!tokens && n_tokens > 0))
    return fail(HALYARD_ERROR_INVALID_ARGUMENT, "context, tokens and n_cached must not be NULL");
  *n_cached = 0;
  return guarded([&] {
    auto r = context->context->attach_prefix(seq, std::span<const int32_t>(tokens, n_tokens));
    if (!r.is_ok())
      return to_c(r.status());
    *n_cached = r.value();
    return HALYARD_OK;
  });
}
int64_t halyard_context_prefix_hits(const halyard_context* context) {
  return context ? context->context->prefix_hits() : 0;
}
int64_t halyard_context_prefix_misses(const halyard_context* context) {
  return context ? context->context->prefix_misses() : 0;
}
int32_t halyard_context_kv_blocks_cached(const halyard_context* context) {
  return context ? context->context->kv().blocks_cached() : 0;
}
uint64_t halyard_context_kv_bytes_per_block(const halyard_context* context) {
  return context ? context->context->kv_bytes_per_block() : 0;
}

}  // extern "C"
