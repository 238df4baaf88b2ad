// halyard-server (run as `halyard serve`): loads a model onto a device, then serves the OpenAI
// API over it with continuous batching until SIGTERM or SIGINT, which drain it gracefully.
#include <malloc.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <climits>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <thread>

#include "default_model.h"
#include "engine.h"
#include "halyard/hal/backend_options.h"
#include "halyard/hal/registry.h"
#include "halyard/runtime/context.h"
#include "halyard/runtime/model.h"
#include "halyard/runtime/scheduler.h"
#include "http_server.h"
#include "logging.h"
#include "metrics.h"

namespace {

namespace rt = halyard::runtime;
namespace srv = halyard::server;

using halyard::apps::default_model_path;

// Compiled graphs of mixed step lengths kept beside the warmed ones (ContextOptions::max_compiled_graphs).
constexpr int kMixedGraphsKept = 4;

struct Args {
  std::string model;
  std::string device = "auto";
  int threads = 0;
  int context_length = 0;
  std::string kv_dtype = "f16";
  bool force_gpt2_split = false;
  int kv_blocks = 0;
  int max_running = 8;
  int max_waiting = 64;
  int max_batch_tokens = 512;
  int prefill_chunk = 0;
  double shutdown_grace_s = 30;
  double stall_timeout_s = 30;
  int request_timeout_s = 600;
  bool no_warmup = false;
  int debug_warmup_delay_ms = 0;
  std::vector<std::string> options;
  std::string chat_template_file;
  std::string tool_call_parser = "auto";
  int verbosity = 0;
  srv::ServerOptions server;
};

}  // namespace

int main(int argc, char** argv) {
  Args a;
  CLI::App app{"halyard serve: an OpenAI-compatible server with continuous batching"};
  app.name("halyard serve");
  app.add_option("-m,--model", a.model, "GGUF model file (default: the default model from the model cache)");
  app.add_option("-d,--device", a.device, "Device URI: auto, ref, cpu, vulkan:N, cuda:N, hip:N")
      ->envname("HALYARD_DEVICE");
  app.add_option("-t,--threads", a.threads, "CPU threads (0: physical cores)")->check(CLI::Range(0, 1024));
  app.add_option("-c,--ctx", a.context_length, "Context length per sequence (0: min(model's, 4096))")
      ->check(CLI::Range(0, INT_MAX));
  app.add_option("--kv-dtype", a.kv_dtype, "KV cache element type: f16 (default) or f32")
      ->check(CLI::IsMember({"f16", "f32"}, CLI::ignore_case));
  app.add_flag("--force-gpt2-split", a.force_gpt2_split,
               "Split text as GPT-2 does when the model's tokenizer.ggml.pre is one Halyard does not know "
               "(otherwise the load fails)");
  app.add_option("--kv-blocks", a.kv_blocks,
                 "KV cache capacity in blocks of 16 positions (0: every running sequence can fill its context)")
      ->check(CLI::Range(0, INT_MAX));
  app.add_option("--host", a.server.host, "Address to listen on")->capture_default_str();
  app.add_option("--port", a.server.port, "Port to listen on (0: any free port)")
      ->check(CLI::Range(0, 65535))
      ->capture_default_str();
  app.add_option("--api-key", a.server.api_key, "Require 'Authorization: Bearer KEY' on /v1/*")
      ->envname("HALYARD_API_KEY");
  app.add_option("--max-running", a.max_running, "Most sequences decoding at once (the batch)")
      ->check(CLI::Range(1, 4096))
      ->capture_default_str();
  app.add_option("--max-waiting", a.max_waiting, "Most requests queued; beyond it requests get 429 (0: unbounded)")
      ->check(CLI::Range(0, INT_MAX))
      ->capture_default_str();
  app.add_option("--max-batch-tokens", a.max_batch_tokens, "Most tokens per engine step (prefill chunks and decodes)")
      ->check(CLI::Range(1, 65536))
      ->capture_default_str();
  app.add_option("--prefill-chunk", a.prefill_chunk, "Most prompt tokens of one request per step (0: the batch)")
      ->check(CLI::Range(0, 65536));
  app.add_option("--max-body-bytes", a.server.max_body_bytes, "Largest request body (413 beyond)")
      ->capture_default_str();
  app.add_option("--max-prompt-tokens", a.server.max_prompt_tokens, "Longest prompt (0: the context length - 1)")
      ->check(CLI::Range(0, INT_MAX));
  app.add_option("--request-timeout", a.request_timeout_s, "Seconds a request may run before it is cancelled")
      ->check(CLI::Range(1, INT_MAX))
      ->capture_default_str();
  app.add_option("--shutdown-grace", a.shutdown_grace_s,
                 "Seconds SIGTERM lets running requests finish before cancelling them")
      ->check(CLI::Range(0.0, 86400.0))
      ->capture_default_str();
  app.add_option("--stall-timeout", a.stall_timeout_s,
                 "Seconds with work and no engine step after which /health answers 503")
      ->check(CLI::Range(0.001, 86400.0))
      ->capture_default_str();
  app.add_option("--http-threads", a.server.http_threads, "HTTP connection threads (0: 128)")
      ->check(CLI::Range(0, 65536));
  app.add_option("--served-model-name", a.server.served_model_name,
                 "Model id in the API (default: the model file's name without .gguf)");
  app.add_option("--chat-template", a.chat_template_file,
                 "Jinja chat template file rendering chat requests instead of the model's own");
  app.add_option("--tool-call-parser", a.tool_call_parser,
                 "How generated text is read for tool calls: auto (from the chat template's markers), hermes, "
                 "llama3_json, mistral, none")
      ->check(CLI::IsMember({"auto", "hermes", "llama3_json", "mistral", "none"}))
      ->capture_default_str();
  app.add_flag("--no-warmup", a.no_warmup,
               "Skip the warm-up before /ready (prefaulting the KV cache, compiling and running the decode batch "
               "shapes and a prefill chunk once): the first requests pay for it instead");
#ifdef HALYARD_SERVER_FAULT_INJECTION
  app.add_option("--debug-warmup-delay-ms", a.debug_warmup_delay_ms,
                 "Test builds: the warm-up lasts this much longer (for the /ready tests)")
      ->check(CLI::Range(0, 600000));
#endif
  app.add_option("-o,--option", a.options, "Backend option KEY=VALUE (see `halyard devices --options`)");
  app.add_flag("-v,--verbose", a.verbosity, "More logging (-v info, -vv debug)");
  CLI11_PARSE(app, argc, argv);

  // A fixed mmap threshold: glibc's own rises to the largest block freed (up to 32 MiB), after
  // which the buffers of freed graphs and requests come from the arenas and stay resident there;
  // above 256 KiB they are mapped and unmapped instead.
  mallopt(M_MMAP_THRESHOLD, 256 * 1024);
  rt::init_logging();
  rt::set_log_level(2 + a.verbosity);  // info by default: a server says what it does
  a.server.request_timeout = std::chrono::seconds(a.request_timeout_s);

  // SIGTERM and SIGINT go to one thread (sigwait), never to a handler amid the engine.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  std::signal(SIGPIPE, SIG_IGN);

  const std::string path = a.model.empty() ? default_model_path() : a.model;
  // The API's model id: the file's name without .gguf unless --served-model-name says otherwise.
  if (a.server.served_model_name.empty())
    a.server.served_model_name = std::filesystem::path(path).stem().string();
  srv::HttpServer http(a.server);
  if (halyard::Status st = http.bind(); !st.is_ok()) {
    std::fprintf(stderr, "halyard serve: %s\n", st.message().c_str());
    return 1;
  }
  http.start();
  spdlog::info("serve: listening on http://{}:{} (the model is loading)", a.server.host, http.bound_port());

  std::atomic<int> signal_count{0};
  std::atomic<bool> exiting{false};  // main is done: the signal thread's wake-up is not a signal
  std::atomic<srv::Engine*> engine_for_signals{nullptr};
  std::thread signal_thread([&] {
    while (true) {
      int sig = 0;
      if (sigwait(&signals, &sig) != 0)
        continue;
      if (exiting)
        return;
      const int n = ++signal_count;
      if (n == 1) {
        spdlog::warn("serve: signal {}: draining (a second signal cancels at once)", sig);
      } else if (srv::Engine* e = engine_for_signals.load()) {
        spdlog::warn("serve: second signal: cancelling every request");
        e->cancel_all();
      }
      if (n >= 2)
        return;
    }
  });
  auto wake_signal_thread = [&] {
    exiting = true;
    if (signal_count < 2)
      pthread_kill(signal_thread.native_handle(), SIGTERM);  // sigwait returns, sees exiting
    signal_thread.join();
  };

  auto registry = halyard::BackendRegistry::load(halyard::RegistryOptions::from_environment());
  if (!registry.is_ok()) {
    std::fprintf(stderr, "halyard serve: %s\n", registry.status().to_string().c_str());
    http.shutdown(std::chrono::milliseconds(0));
    wake_signal_thread();
    return 1;
  }
  rt::ModelOptions mo;
  mo.device = a.device;
  mo.threads = a.threads;
  mo.context_length = a.context_length;
  mo.max_sequences = a.max_running;
  mo.kv_dtype = a.kv_dtype == "f32" || a.kv_dtype == "F32" ? halyard::DType::kF32 : halyard::DType::kF16;
  mo.tokenizer.force_gpt2_split = a.force_gpt2_split;
  for (const std::string& o : a.options) {
    auto setting = halyard::parse_option_setting(o);
    if (!setting.is_ok()) {
      std::fprintf(stderr, "halyard serve: %s\n", setting.status().to_string().c_str());
      return 1;
    }
    mo.backend_options.push_back(std::move(setting).value());
  }
  auto model = rt::Model::load(path, mo, *registry.value());
  if (!model.is_ok()) {
    std::fprintf(stderr, "halyard serve: cannot load %s: %s\n", path.c_str(), model.status().to_string().c_str());
    http.shutdown(std::chrono::milliseconds(0));
    wake_signal_thread();
    return 1;
  }
  std::optional<rt::ChatTemplate> chat_override;
  if (!a.chat_template_file.empty()) {
    std::ifstream f(a.chat_template_file, std::ios::binary);
    std::ostringstream text;
    text << f.rdbuf();
    const rt::Tokenizer& tok = (*model)->tokenizer();
    auto token_text = [&](rt::TokenId id) {
      return id >= 0 && static_cast<std::size_t>(id) < tok.vocab_size() ? tok.token_text(id) : std::string();
    };
    auto parsed = rt::ChatTemplate::from_jinja(text.str(), token_text(tok.bos()), token_text(tok.eos()));
    if (!f || text.str().empty() || !parsed.is_ok()) {
      std::fprintf(stderr, "halyard serve: --chat-template %s: %s\n", a.chat_template_file.c_str(),
                   !f || text.str().empty() ? "cannot read it, or it is empty" : parsed.status().message().c_str());
      http.shutdown(std::chrono::milliseconds(0));
      wake_signal_thread();
      return 1;
    }
    chat_override = std::move(parsed).value();
  } else if (const std::string& w = (*model)->chat_template_warning(); !w.empty()) {
    spdlog::warn("{}", w);
  }
  rt::ContextOptions co;
  co.max_sequences = a.max_running;
  co.n_blocks = a.kv_blocks;
  co.max_batch_tokens = a.max_batch_tokens;
  // The warmed shapes (decode batches 1..max_running and the prefill chunk) and a few of the
  // mixed lengths: a server meets hundreds of those, and each kept one holds its buffers.
  co.max_compiled_graphs = a.max_running + 1 + kMixedGraphsKept;
  auto context = rt::Context::create(**model, co);
  if (!context.is_ok()) {
    std::fprintf(stderr, "halyard serve: %s\n", context.status().to_string().c_str());
    return 1;
  }
  rt::SchedulerOptions so;
  so.max_batch_tokens = a.max_batch_tokens;
  so.prefill_chunk = a.prefill_chunk;
  so.max_running = a.max_running;
  so.max_waiting = a.max_waiting;
  auto scheduler = rt::Scheduler::create(**context, so);
  if (!scheduler.is_ok()) {
    std::fprintf(stderr, "halyard serve: %s\n", scheduler.status().to_string().c_str());
    return 1;
  }
  // The warm-up, before /ready turns 200 (set_loaded below): no request pays for a first compile
  // or a first touch of the KV cache, and resident memory holds still under load.
  if (!a.no_warmup) {
    spdlog::info("serve: warming up (/ready answers 503 until it is done)");
    auto w = (*scheduler)->warm_up();
    if (!w.is_ok()) {
      std::fprintf(stderr, "halyard serve: warm-up failed: %s\n", w.status().to_string().c_str());
      return 1;
    }
    if (a.debug_warmup_delay_ms > 0)
      std::this_thread::sleep_for(std::chrono::milliseconds(a.debug_warmup_delay_ms));
    spdlog::info(
        "serve: warm-up done in {:.2f} s: {:.1f} MiB of KV cache prefaulted, {} graphs compiled and run "
        "(decode batches of 1-{} sequences, a prefill chunk of {} tokens){}",
        w->seconds, static_cast<double>(w->kv_bytes_prefaulted) / (1 << 20), w->graphs_compiled, w->decode_batches,
        w->prefill_tokens,
        a.debug_warmup_delay_ms > 0 ? fmt::format(", held {} ms longer (test build)", a.debug_warmup_delay_ms)
                                    : std::string());
  } else {
    spdlog::info(
        "serve: no warm-up (--no-warmup): the first requests compile their batch shapes and touch the KV "
        "cache");
  }
  const std::string& served = a.server.served_model_name;
  srv::ServerMetrics metrics(served, rt::kKvBlockSize, (*context)->blocks_total());
  srv::EngineOptions eo;
  eo.stall_timeout = std::chrono::milliseconds(static_cast<long long>(a.stall_timeout_s * 1e3));
#ifdef HALYARD_SERVER_FAULT_INJECTION
  eo.fault_injection = true;
#endif
  srv::Engine engine(std::move(scheduler).value(), metrics, eo);
  engine_for_signals = &engine;
  srv::LoadedModel loaded;
  loaded.model = model->get();
  loaded.engine = &engine;
  loaded.metrics = &metrics;
  loaded.max_waiting = a.max_waiting;
  loaded.max_running = a.max_running;
  loaded.chat_template = chat_override ? &*chat_override : nullptr;
  if (a.tool_call_parser != "auto")
    loaded.tool_call_parser = rt::tool_call_format_from_name(a.tool_call_parser);
  spdlog::info("serve: chat template {}; tool calls read as {}",
               chat_override ? "from " + a.chat_template_file : (*model)->chat_template().description(),
               rt::tool_call_format_name(loaded.tool_call_format()));
  http.set_loaded(loaded);
  spdlog::info("serve: {} on {} ({}), context {} x {} sequences, {} KV blocks; ready on http://{}:{}", served,
               (*model)->device_uri(), (*model)->device_info().name, (*model)->context_length(), a.max_running,
               (*context)->blocks_total(), a.server.host, http.bound_port());

  while (signal_count == 0)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  http.shutdown(std::chrono::milliseconds(static_cast<long long>(a.shutdown_grace_s * 1e3)));
  engine.stop();
  engine_for_signals = nullptr;
  wake_signal_thread();
  spdlog::info("serve: stopped");
  return 0;
}
