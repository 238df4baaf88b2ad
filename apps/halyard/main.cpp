// The halyard command line. It uses only the public C API (include/halyard.h), except
// `conform`, which tests backends through the HAL itself (conform.h).
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <climits>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "bench.h"
#include "conform.h"
#include "default_model.h"
#include "halyard.h"
#include "quantize.h"

namespace {

using halyard::apps::default_model_path;

int report(halyard_status s, const char* what) {
  std::fprintf(stderr, "halyard: %s failed: %s: %s\n", what, halyard_status_name(s), halyard_last_error());
  return 1;
}

// `halyard devices --options`: every option of every backend, through the C API.
int cmd_options() {
  halyard_option_list* list = nullptr;
  if (halyard_status s = halyard_list_options(&list); s != HALYARD_OK)
    return report(s, "listing backend options");
  std::string backend;
  for (size_t i = 0; i < halyard_option_list_size(list); ++i) {
    if (backend != halyard_option_list_backend(list, i)) {
      backend = halyard_option_list_backend(list, i);
      std::printf("%s%s\n", i ? "\n" : "", backend.c_str());
    }
    const char* current = halyard_option_list_current(list, i);
    std::printf("  %-26s %-6s default %-6s %s=%s\n      values: %s\n      %s\n", halyard_option_list_key(list, i),
                halyard_option_list_type(list, i), halyard_option_list_default(list, i),
                halyard_option_list_env(list, i), current ? current : "(unset)", halyard_option_list_values(list, i),
                halyard_option_list_doc(list, i));
  }
  std::printf("\nSet with -o KEY=VALUE on generate, bench and conform, or the environment variable; -o wins.\n");
  halyard_option_list_free(list);
  return 0;
}

int cmd_devices() {
  halyard_device_list* list = nullptr;
  if (halyard_status s = halyard_list_devices(&list); s != HALYARD_OK)
    return report(s, "listing devices");
  for (size_t i = 0; i < halyard_device_list_size(list); ++i) {
    const char* uri = halyard_device_list_uri(list, i);
    std::printf("%-10s %-12s %s\n", halyard_device_list_backend(list, i), *uri ? uri : "-",
                halyard_device_list_description(list, i));
  }
  const char* chosen = halyard_device_list_auto(list);
  std::printf("auto -> %s\n", chosen ? chosen : "(no available device)");
  halyard_device_list_free(list);
  return 0;
}

struct GenerateArgs {
  std::string model;
  std::string prompt = "Write a haiku about the sea.";
  bool chat = false;
  bool verbose = false;
  std::string device = "auto";
  int n = 128;
  int ctx = 0;
  int threads = 0;
  int kv_dtype = HALYARD_KV_F16;
  bool force_gpt2_split = false;
  bool no_mmap = false;
  float temp = 0.f;
  int top_k = 40;
  float top_p = 0.95f;
  unsigned long long seed = 0;
  float min_p = 0.f;
  float repeat_penalty = 1.f;
  int repeat_last_n = 64;
  float presence_penalty = 0.f;
  float frequency_penalty = 0.f;
  std::vector<std::string> logit_bias;  // "TOKEN=BIAS"
  std::vector<std::string> options;     // backend options, "key=value"
};

// Parses "TOKEN=BIAS" (BIAS a float, or -inf to ban the token); false if malformed. The ranges
// are the library's to check, so that the CLI and the C API give the same errors.
bool parse_logit_bias(const std::string& text, int32_t& token, float& bias) {
  const auto eq = text.find('=');
  if (eq == std::string::npos || eq == 0 || eq + 1 == text.size())
    return false;
  const std::string id = text.substr(0, eq), value = text.substr(eq + 1);
  const auto [end, ec] = std::from_chars(id.data(), id.data() + id.size(), token);
  if (ec != std::errc() || end != id.data() + id.size())
    return false;
  char* value_end = nullptr;
  bias = std::strtof(value.c_str(), &value_end);
  return value_end == value.c_str() + value.size();
}

// A NULL-terminated view of "key=value" strings for halyard_model_options.backend_options; the
// strings must outlive it.
std::vector<const char*> option_pointers(const std::vector<std::string>& options) {
  std::vector<const char*> out;
  for (const auto& o : options)
    out.push_back(o.c_str());
  out.push_back(nullptr);
  return out;
}

// SIGINT asks the generation to stop at the next token; a second one kills as usual.
std::atomic<bool> g_interrupted{false};
extern "C" void on_sigint(int) {
  g_interrupted.store(true);
  std::signal(SIGINT, SIG_DFL);
}

struct Stream {
  const std::string* echo = nullptr;  // the prompt, printed before the first generated text
  bool echoed = false;
  void print_echo() {
    if (echoed)
      return;
    echoed = true;
    if (echo)
      std::fputs(echo->c_str(), stdout);
  }
};

int on_token(int32_t /*token*/, const char* text, size_t len, void* user) {
  auto* stream = static_cast<Stream*>(user);
  stream->print_echo();
  std::fwrite(text, 1, len, stdout);
  std::fflush(stdout);
  return g_interrupted.load() ? 1 : 0;
}

int cmd_generate(const GenerateArgs& a) {
  const std::string path = a.model.empty() ? default_model_path() : a.model;
  if (a.model.empty() && !std::filesystem::exists(path)) {
    std::fprintf(stderr, "halyard: the default model is not at %s; run scripts/fetch-model.sh or pass -m MODEL.gguf\n",
                 path.c_str());
    return 1;
  }
  halyard_model_options mo;
  halyard_model_options_default(&mo);
  mo.device = a.device.c_str();
  mo.context_length = a.ctx;
  mo.threads = a.threads;
  mo.kv_dtype = a.kv_dtype;
  mo.force_gpt2_split = a.force_gpt2_split ? 1 : 0;
  mo.load_flags = a.no_mmap ? HALYARD_LOAD_NO_MMAP : 0;
  const std::vector<const char*> options = option_pointers(a.options);
  mo.backend_options = options.data();
  halyard_model* model = nullptr;
  const auto load_start = std::chrono::steady_clock::now();
  if (halyard_status s = halyard_model_load(path.c_str(), &mo, &model); s != HALYARD_OK)
    return report(s, "loading the model");
  const std::chrono::duration<double, std::milli> load_ms = std::chrono::steady_clock::now() - load_start;
  if (a.verbose) {
    std::fprintf(stderr,
                 "halyard: %s on %s (%s); loaded in %.1f ms, %.1f of %.1f MiB of weights used in place from the file\n",
                 halyard_model_name(model), halyard_model_device(model), halyard_model_device_details(model),
                 load_ms.count(), static_cast<double>(halyard_model_mapped_weight_bytes(model)) / (1 << 20),
                 static_cast<double>(halyard_model_weight_bytes(model)) / (1 << 20));
  } else {
    std::fprintf(stderr, "halyard: %s on %s\n", halyard_model_name(model), halyard_model_device(model));
  }

  std::string prompt = a.prompt;
  if (a.chat) {
    std::fprintf(stderr, "halyard: chat template: %s\n", halyard_model_chat_template(model));
    const halyard_chat_message msg{"user", a.prompt.c_str()};
    size_t need = 0;
    (void)halyard_apply_chat_template(model, &msg, 1, nullptr, 0, &need);
    prompt.assign(need, '\0');
    if (halyard_status s = halyard_apply_chat_template(model, &msg, 1, prompt.data(), prompt.size(), &need);
        s != HALYARD_OK) {
      halyard_model_free(model);
      return report(s, "applying the chat template");
    }
  }
  halyard_generate_options go;
  halyard_generate_options_default(&go);
  go.max_tokens = a.n;
  go.temperature = a.temp;
  go.top_k = a.top_k;
  go.top_p = a.top_p;
  go.seed = a.seed;
  go.min_p = a.min_p;
  go.repeat_penalty = a.repeat_penalty;
  go.repeat_last_n = a.repeat_last_n;
  go.presence_penalty = a.presence_penalty;
  go.frequency_penalty = a.frequency_penalty;
  std::vector<int32_t> bias_tokens(a.logit_bias.size());
  std::vector<float> bias_values(a.logit_bias.size());
  for (std::size_t i = 0; i < a.logit_bias.size(); ++i)
    (void)parse_logit_bias(a.logit_bias[i], bias_tokens[i], bias_values[i]);  // checked when parsed
  go.logit_bias_tokens = bias_tokens.data();
  go.logit_bias_values = bias_values.data();
  go.n_logit_bias = bias_tokens.size();
  halyard_timings t{};
  t.struct_size = sizeof t;
  // The prompt is echoed only once generation has started, so a refused prompt prints nothing.
  Stream stream;
  if (!a.chat)
    stream.echo = &a.prompt;
  std::signal(SIGINT, on_sigint);
  const halyard_status s = halyard_generate(model, prompt.c_str(), &go, on_token, &stream, &t);
  std::signal(SIGINT, SIG_DFL);
  halyard_model_free(model);
  if (s != HALYARD_OK && s != HALYARD_ERROR_CANCELLED)
    return report(s, "generating");
  stream.print_echo();
  std::printf("\n");
  std::fflush(stdout);
  const bool interrupted = s == HALYARD_ERROR_CANCELLED;
  std::string decode = "n/a (fewer than 2 tokens)";
  if (t.generated_tokens > 1) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.2f tok/s", t.decode_tokens_per_s);
    decode = buf;
  }
  std::fprintf(stderr,
               "\nprompt %d tokens, generated %d | stopped: %s | TTFT %.1f ms | prefill %.2f tok/s | decode %s\n",
               t.prompt_tokens, t.generated_tokens,
               interrupted ? "cancelled (interrupted)" : halyard_finish_reason_name(t.finish_reason),
               t.time_to_first_token_ms, t.prefill_tokens_per_s, decode.c_str());
  return interrupted ? 130 : 0;
}

}  // namespace

// `halyard serve ...` is the halyard-server executable beside this one (the server links the
// engine's C++ scheduler directly; the CLI keeps to the C API, and one process never holds two
// copies of the engine). The arguments pass through unchanged.
int exec_server(int argc, char** argv) {
  std::error_code ec;
  const std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", ec);
  const std::filesystem::path server = (ec ? std::filesystem::path(".") : self.parent_path()) / "halyard-server";
  std::vector<char*> args;
  std::string name = "halyard-server";
  args.push_back(name.data());
  for (int i = 2; i < argc; ++i)
    args.push_back(argv[i]);
  args.push_back(nullptr);
  execv(server.c_str(), args.data());
  std::fprintf(stderr, "halyard: serve needs %s, which cannot be run: %s (build the halyard-server target)\n",
               server.c_str(), std::strerror(errno));
  return 1;
}

int main(int argc, char** argv) {
  if (argc >= 2 && std::string_view(argv[1]) == "serve")
    return exec_server(argc, argv);
  CLI::App app{"Halyard: portable LLM inference (CUDA, HIP, Vulkan, CPU) from GGUF files"};
  app.require_subcommand(0, 1);
  app.set_version_flag("--version", std::string("halyard ") + halyard_version());
  app.option_defaults()->always_capture_default();
  // Options of the top level (-v) are accepted after the subcommand too.
  app.fallthrough();
  int verbosity = 0;
  app.add_flag("-v,--verbose", verbosity, "More logging (-v info and the device's kernels, -vv debug)");
  app.footer(
      "Environment:\n"
      "  HALYARD_DEVICE       device when -d is not given (generate, bench)\n"
      "  HALYARD_THREADS      CPU threads when -t is not given\n"
      "  HALYARD_MODEL_DIR    where the default model is (default ${XDG_CACHE_HOME:-~/.cache}/halyard/models)\n"
      "  HALYARD_PLUGIN_PATH  extra directories searched for backend plugins (colon-separated)\n"
      "  HALYARD_CONFORMANCE_SEED  seed of conform's random inputs when --seed is not given\n"
      "Run `halyard <command> --help` for a command's options.");

  // Listed for --help; main() hands `serve` to halyard-server before parsing.
  app.add_subcommand("serve", "OpenAI-compatible HTTP server with continuous batching (`halyard serve --help`)")
      ->allow_extras();
  auto* devices = app.add_subcommand("devices", "List backends and their devices, or why they are unavailable");
  bool list_options = false;
  devices->add_flag("--options", list_options,
                    "List every backend option (type, default, environment variable, current value)");
  const char* force_gpt2_help =
      "Split text as GPT-2 does when the model's tokenizer.ggml.pre is one Halyard does not know (otherwise the "
      "load fails: another split gives other tokens than the model was trained on)";
  const std::string option_help =
      "Backend option KEY=VALUE, e.g. cpu.kernels=avx2 (repeatable; `halyard devices --options` lists them)";

  GenerateArgs g;
  auto* gen = app.add_subcommand("generate", "Generate text from a prompt");
  gen->add_option("-m,--model", g.model, "GGUF model file (default: SmolLM2-135M-Instruct from the model cache)");
  gen->add_option("-p,--prompt", g.prompt, "Prompt text");
  gen->add_flag("--chat", g.chat, "Wrap the prompt as a user turn with the model's chat template");
  gen->add_option("-d,--device", g.device, "Device URI: auto, ref, cpu, vulkan:N, cuda:N, hip:N")
      ->envname("HALYARD_DEVICE");
  const auto int_range = CLI::Range(0, INT_MAX);
  gen->add_option("-n,--n-predict", g.n, "Tokens to generate")->check(int_range);
  gen->add_option("-c,--ctx", g.ctx, "Context length (0: min(model's, 4096))")->check(int_range);
  gen->add_option("-t,--threads", g.threads, "CPU threads (0: physical cores)")
      ->check(CLI::Range(0, 1024))
      ->envname("HALYARD_THREADS");
  const std::map<std::string, int> kv_dtypes{{"f16", HALYARD_KV_F16}, {"f32", HALYARD_KV_F32}};
  const char* kv_help = "KV cache element type: f16 (default, half the memory) or f32 (exact)";
  gen->add_option("--kv-dtype", g.kv_dtype, kv_help)->transform(CLI::CheckedTransformer(kv_dtypes, CLI::ignore_case));
  gen->add_flag("--force-gpt2-split", g.force_gpt2_split, force_gpt2_help);
  const char* no_mmap_help =
      "Copy the weights into device memory instead of using them in place from the mapped file (cpu, ref)";
  gen->add_flag("--no-mmap", g.no_mmap, no_mmap_help);
  gen->add_option("--temp", g.temp, "Temperature >= 0; 0 is greedy");
  gen->add_option("--top-k", g.top_k, "Top-k >= 0 (0 disables)");
  gen->add_option("--top-p", g.top_p, "Top-p in (0, 1] (1 disables)");
  gen->add_option("--seed", g.seed, "Random seed");
  gen->add_option("--min-p", g.min_p,
                  "Min-p in [0, 1]: keep tokens at least this fraction as likely as the best (0 disables)");
  gen->add_option("--repeat-penalty", g.repeat_penalty,
                  "Repetition penalty > 0 on the last --repeat-last-n tokens, prompt included (1 disables)");
  gen->add_option("--repeat-last-n", g.repeat_last_n,
                  "Tokens the penalties look back over (0: none; -1: the whole sequence)");
  gen->add_option("--presence-penalty", g.presence_penalty,
                  "Subtracted from the logit of each token in that window (0 disables)");
  gen->add_option("--frequency-penalty", g.frequency_penalty,
                  "Subtracted from a token's logit once per occurrence in that window (0 disables)");
  gen->add_option("--logit-bias", g.logit_bias, "TOKEN=BIAS added to a token's logit; BIAS -inf bans it (repeatable)")
      ->check(CLI::Validator(
          [](std::string& text) {
            int32_t token = 0;
            float bias = 0.f;
            return parse_logit_bias(text, token, bias) ? std::string()
                                                       : "expected TOKEN=BIAS (e.g. 7042=-inf), not '" + text + "'";
          },
          "TOKEN=BIAS"));
  gen->add_option("-o,--option", g.options, option_help);

  BenchArgs b;
  auto* bench =
      app.add_subcommand("bench", "Prompt-processing and token-generation speed per device (median of repeats)");
  bench->add_option("-m,--model", b.model, "GGUF model file (default: the default model)");
  bench->add_option("-d,--device", b.devices, "Device URIs to measure (repeatable)")->envname("HALYARD_DEVICE");
  bench->add_option("-p,--n-prompt", b.prompt_tokens, "Prompt tokens (pp test)")->check(CLI::Range(1, INT_MAX));
  bench->add_option("-n,--n-gen", b.gen_tokens, "Generated tokens (tg test)")->check(CLI::Range(1, INT_MAX));
  bench->add_option("-r,--repetitions", b.repeats, "Repeats; the median is reported")->check(CLI::Range(1, INT_MAX));
  bench->add_option("-t,--threads", b.threads, "CPU threads (0: physical cores)")
      ->check(CLI::Range(0, 1024))
      ->envname("HALYARD_THREADS");
  bench->add_option("--kv-dtype", b.kv_dtype, kv_help)->transform(CLI::CheckedTransformer(kv_dtypes, CLI::ignore_case));
  bench->add_flag("--force-gpt2-split", b.force_gpt2_split, force_gpt2_help);
  bench->add_flag("--no-mmap", b.no_mmap, no_mmap_help);
  bench->add_option("--json", b.json_path, "Also write the results as JSON");
  bench
      ->add_option("--batch", b.batch,
                   "Measure aggregate decode of N concurrent sequences in one context (0: the pp/tg tests)")
      ->check(CLI::Range(0, 4096));
  bench->add_flag("--prefix-cache", b.prefix_cache,
                  "Time to first token of a -p token prompt, cold and again from the prefix cache");
  bench->add_flag("--mixed", b.mixed,
                  "With --batch N: sequence i gets a prompt of ceil(p*(i+1)/N) tokens (mixed lengths up to -p)");
  bench->add_option("--kv-blocks", b.kv_blocks, "With --batch: KV blocks of the context (0: a full context each)")
      ->check(CLI::Range(0, INT_MAX));
  bench->add_option("-c,--ctx", b.context_length, "With --batch: context length (0: longest prompt + n + 8)")
      ->check(CLI::Range(0, INT_MAX));
  bench->add_option("-o,--option", b.options, option_help);

  ConformArgs c;
  auto* conform = app.add_subcommand(
      "conform", "Run the op conformance suite against the reference; print a device x op x dtype matrix");
  conform->add_option("-d,--device", c.devices, "Device URIs (repeatable; default: every available device)");
  conform->add_option("--op", c.op, "Only this op (e.g. MATMUL)");
  conform->add_option("--json", c.json_path, "Also write the results as JSON");
  conform->add_option("-t,--threads", c.threads, "CPU threads (0: physical cores)")
      ->check(CLI::Range(0, 1024))
      ->envname("HALYARD_THREADS");
  conform->add_option("--seed", c.seed, "Seed of the random inputs")->envname("HALYARD_CONFORMANCE_SEED");
  conform->add_option("-o,--option", c.options, option_help);

  QuantizeArgs q;
  auto* quantize = app.add_subcommand(
      "quantize", "Write a quantized copy of a GGUF model (llama.cpp's mix names; Halyard and llama.cpp load it)");
  quantize->add_option("input", q.input, "Input GGUF (F32, F16, BF16 or any format Halyard reads)")
      ->required()
      ->check(CLI::ExistingFile);
  quantize->add_option("output", q.output, "Output GGUF (written as OUTPUT.tmp, renamed when complete)")->required();
  quantize
      ->add_option("type", q.type,
                   "F32 F16 BF16 Q8_0 Q4_0 Q4_1 Q5_0 Q5_1 Q2_K Q3_K Q3_K_S Q3_K_M Q3_K_L Q4_K Q4_K_S Q4_K_M "
                   "Q5_K Q5_K_S Q5_K_M Q6_K IQ4_NL IQ4_XS (case-insensitive)")
      ->required();
  quantize->add_flag("--pure", q.pure, "Every matrix in TYPE's own format (no mix); 1-D tensors stay F32");
  quantize->add_option("-t,--threads", q.threads, "Threads (0: one per hardware thread); the output is the same")
      ->check(CLI::Range(0, 1024));

  CLI11_PARSE(app, argc, argv);
  halyard_set_log_level(1 + verbosity);
  g.verbose = verbosity > 0;
  if (devices->parsed())
    return list_options ? cmd_options() : cmd_devices();
  if (gen->parsed())
    return cmd_generate(g);
  if (conform->parsed())
    return run_conform(c);
  if (quantize->parsed())
    return run_quantize(q);
  if (bench->parsed()) {
    if (b.model.empty())
      b.model = default_model_path();
    return run_bench(b);
  }
  std::fputs(app.help().c_str(), stdout);
  return 0;
}
