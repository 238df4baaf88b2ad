// The halyard command line. It uses only the public C API (include/halyard.h), except
// `conform`, which tests backends through the HAL itself (conform.h).
#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "bench.h"
#include "conform.h"
#include "halyard.h"

namespace {

constexpr const char* kDefaultModelFile = "SmolLM2-135M-Instruct.Q4_1.gguf";

std::string default_model_path() {
  std::string cache;
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x) {
    cache = x;
  } else if (const char* h = std::getenv("HOME"); h && *h) {
    cache = std::string(h) + "/.cache";
  } else {
    cache = ".cache";
  }
  return cache + "/halyard/models/" + kDefaultModelFile;
}

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
  std::string device = "auto";
  int n = 128;
  int ctx = 0;
  int threads = 0;
  float temp = 0.f;
  int top_k = 40;
  float top_p = 0.95f;
  unsigned long long seed = 0;
  std::vector<std::string> options;  // backend options, "key=value"
};

// A NULL-terminated view of "key=value" strings for halyard_model_options.backend_options; the
// strings must outlive it.
std::vector<const char*> option_pointers(const std::vector<std::string>& options) {
  std::vector<const char*> out;
  for (const auto& o : options)
    out.push_back(o.c_str());
  out.push_back(nullptr);
  return out;
}

int on_token(int32_t /*token*/, const char* text, size_t len, void* /*user*/) {
  std::fwrite(text, 1, len, stdout);
  std::fflush(stdout);
  return 0;
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
  const std::vector<const char*> options = option_pointers(a.options);
  mo.backend_options = options.data();
  halyard_model* model = nullptr;
  if (halyard_status s = halyard_model_load(path.c_str(), &mo, &model); s != HALYARD_OK)
    return report(s, "loading the model");
  std::fprintf(stderr, "halyard: %s on %s\n", halyard_model_name(model), halyard_model_device(model));

  std::string prompt = a.prompt;
  if (a.chat) {
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
  halyard_timings t{};
  t.struct_size = sizeof t;
  if (!a.chat)
    std::fputs(a.prompt.c_str(), stdout);
  const halyard_status s = halyard_generate(model, prompt.c_str(), &go, on_token, nullptr, &t);
  std::printf("\n");
  halyard_model_free(model);
  if (s != HALYARD_OK)
    return report(s, "generating");
  std::fprintf(stderr, "\nprompt %d tokens, generated %d | TTFT %.1f ms | prefill %.2f tok/s | decode %.2f tok/s\n",
               t.prompt_tokens, t.generated_tokens, t.time_to_first_token_ms, t.prefill_tokens_per_s,
               t.decode_tokens_per_s);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Halyard: portable LLM inference (CUDA, HIP, Vulkan, CPU) from GGUF files"};
  app.require_subcommand(1);
  int verbosity = 0;
  app.add_flag("-v,--verbose", verbosity, "More logging (-v info, -vv debug)");

  auto* devices = app.add_subcommand("devices", "List backends and their devices, or why they are unavailable");
  bool list_options = false;
  devices->add_flag("--options", list_options,
                    "List every backend option (type, default, environment variable, current value)");
  const std::string option_help =
      "Backend option KEY=VALUE, e.g. cpu.kernels=avx2 (repeatable; `halyard devices --options` lists them)";

  GenerateArgs g;
  auto* gen = app.add_subcommand("generate", "Generate text from a prompt");
  gen->add_option("-m,--model", g.model, "GGUF model file (default: SmolLM2-135M-Instruct from the model cache)");
  gen->add_option("-p,--prompt", g.prompt, "Prompt text");
  gen->add_flag("--chat", g.chat, "Wrap the prompt as a user turn with the model's chat template");
  gen->add_option("-d,--device", g.device, "Device URI: auto, ref, cpu, vulkan:N, cuda:N, hip:N");
  gen->add_option("-n,--n-predict", g.n, "Tokens to generate")->check(CLI::NonNegativeNumber);
  gen->add_option("-c,--ctx", g.ctx, "Context length (default: min(model's, 4096))")->check(CLI::NonNegativeNumber);
  gen->add_option("-t,--threads", g.threads, "CPU threads (default: physical cores)")->check(CLI::NonNegativeNumber);
  gen->add_option("--temp", g.temp, "Temperature; 0 is greedy");
  gen->add_option("--top-k", g.top_k, "Top-k (0 disables)");
  gen->add_option("--top-p", g.top_p, "Top-p (1 disables)");
  gen->add_option("--seed", g.seed, "Random seed");
  gen->add_option("-o,--option", g.options, option_help);

  BenchArgs b;
  auto* bench =
      app.add_subcommand("bench", "Prompt-processing and token-generation speed per device (median of repeats)");
  bench->add_option("-m,--model", b.model, "GGUF model file (default: the default model)");
  bench->add_option("-d,--device", b.devices, "Device URIs to measure (repeatable)");
  bench->add_option("-p,--n-prompt", b.prompt_tokens, "Prompt tokens (pp test)");
  bench->add_option("-n,--n-gen", b.gen_tokens, "Generated tokens (tg test)");
  bench->add_option("-r,--repetitions", b.repeats, "Repeats; the median is reported");
  bench->add_option("-t,--threads", b.threads, "CPU threads (default: physical cores)");
  bench->add_option("--json", b.json_path, "Also write the results as JSON");
  bench->add_option("-o,--option", b.options, option_help);

  ConformArgs c;
  auto* conform = app.add_subcommand(
      "conform", "Run the op conformance suite against the reference; print a device x op x dtype matrix");
  conform->add_option("-d,--device", c.devices, "Device URIs (repeatable; default: every available device)");
  conform->add_option("--op", c.op, "Only this op (e.g. MATMUL)");
  conform->add_option("--json", c.json_path, "Also write the results as JSON");
  conform->add_option("-t,--threads", c.threads, "CPU threads");
  conform->add_option("--seed", c.seed, "Seed of the random inputs");
  conform->add_option("-o,--option", c.options, option_help);

  CLI11_PARSE(app, argc, argv);
  halyard_set_log_level(1 + verbosity);
  if (devices->parsed())
    return list_options ? cmd_options() : cmd_devices();
  if (gen->parsed())
    return cmd_generate(g);
  if (conform->parsed())
    return run_conform(c);
  if (bench->parsed()) {
    if (b.model.empty())
      b.model = default_model_path();
    return run_bench(b);
  }
  return 1;
}
