#include "http_server.h"

#include <httplib.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include <algorithm>
#include <ctime>

#include "api_response.h"
#include "chat_page.h"
#include "connection.h"
#include "prompt.h"
#include "text_stream.h"

namespace halyard::server {
namespace {

using nlohmann::json;
using runtime::TokenId;

constexpr auto kPoll = std::chrono::milliseconds(50);

long long unix_now() {
  return static_cast<long long>(std::time(nullptr));
}

void send_json(httplib::Response& res, int status, const json& body) {
  res.status = status;
  res.set_content(dump(body), "application/json");
}

void send_error(httplib::Response& res, const ApiError& e) {
  send_json(res, e.status, error_json(e));
}

ApiError server_error(int status, std::string message, std::string type = "server_error",
                      std::optional<std::string> code = std::nullopt) {
  ApiError e;
  e.status = status;
  e.message = std::move(message);
  e.type = std::move(type);
  e.code = std::move(code);
  return e;
}

// httplib listens with a backlog of 5: a burst of clients overflows it and some see their
// connection reset. The listening socket (protected in httplib::Server) gets a real backlog.
class BacklogServer : public httplib::Server {
 public:
  bool raise_backlog(int backlog) {
    const socket_t fd = svr_sock_;
    return fd != INVALID_SOCKET && ::listen(fd, backlog) == 0;
  }
};

}  // namespace

// One generation request while it runs: its choices' streams and text, shared by the handler
// and (when streamed) the content provider that outlives it.
struct HttpServer::Generation {
  struct Choice {
    std::shared_ptr<RequestStream> stream;
    std::unique_ptr<TextStream> text;
    std::string unsent;    // streamed: text not yet written
    std::string all_text;  // everything, for the whole response
    std::vector<TokenLogprobText> logprobs;
    std::size_t logprobs_sent = 0;
    std::optional<std::string> finish;
    bool finish_sent = false;
    bool first_sent = false;
    int completion_tokens = 0;
    // Chat with tools: the output read for calls as it streams; the calls once it has ended.
    std::optional<runtime::ToolCallStream> tool_stream;
    std::vector<runtime::ToolCall> tool_calls;
    bool tools_ended = false;
  };

  const LoadedModel* loaded = nullptr;
  GenerationRequest request;
  ResponseHeader header;
  std::vector<TokenId> prompt;
  std::string echo;  // completions with echo: the prompt's text
  std::vector<Choice> choices;
  runtime::ToolCallFormat tool_format = runtime::ToolCallFormat::kNone;  // kNone: tools off
  std::vector<TokenId> test_output;  // test builds: replaces the sampled tokens (halyard_test_output)
  std::shared_ptr<Notifier> notifier = std::make_shared<Notifier>();
  int socket = -1;
  Clock::time_point deadline;
  std::optional<ApiError> failure;  // the server ended it: timeout, shutdown, engine error
  std::atomic<bool>* draining = nullptr;

  const runtime::Tokenizer& tokenizer() const { return loaded->model->tokenizer(); }

  runtime::Request make_request(int i) const {
    runtime::Request r;
    r.prompt = prompt;
    r.sampler = request.sampler;
    r.sampler.seed = request.sampler.seed + static_cast<std::uint64_t>(i);
    r.max_tokens = request.max_tokens.value_or(1);
    r.logprobs = request.logprobs;
    r.stop_at_end_of_generation = !request.ignore_eos;
    return r;
  }

  // Choice 0 is submitted first; the others once it has prefilled the prompt (its first event),
  // so they find the prompt's full blocks in the prefix cache instead of computing them again.
  std::optional<ApiError> submit_ready() {
    for (std::size_t i = 0; i < choices.size(); ++i) {
      Choice& c = choices[i];
      if (c.stream)
        continue;
      if (i > 0 && !(choices[0].finish || choices[0].completion_tokens > 0))
        return std::nullopt;
      auto s = loaded->engine->submit(make_request(static_cast<int>(i)), notifier);
      if (!s.is_ok()) {
        if (s.status().code() == StatusCode::kResourceExhausted)
          return server_error(429, "the server's queue is full (" + s.status().message() + ")", "rate_limit_error");
        return server_error(400, s.status().message(), "invalid_request_error");
      }
      c.stream = std::move(s).value();
    }
    return std::nullopt;
  }

  void token_logprob(Choice& c, TokenId token, const runtime::TokenLogprobs& lp) {
    TokenLogprobText t;
    t.token = tokenizer().token_to_piece(token, true);
    t.logprob = lp.logprob;
    for (const runtime::TokenLogprob& alt : lp.top)
      t.top.emplace_back(tokenizer().token_to_piece(alt.token, true), alt.logprob);
    t.text_offset = static_cast<int>(echo.size() + c.all_text.size());
    c.logprobs.push_back(std::move(t));
  }

  void append(Choice& c, const std::string& text) {
    c.unsent += c.tool_stream ? c.tool_stream->push(text) : text;
    c.all_text += text;
  }

  // The output has ended: held text is content after all, or the calls it holds end the choice
  // with finish_reason "tool_calls" (as vLLM's server does).
  void end_tools(Choice& c) {
    if (!c.tool_stream || !c.finish || c.tools_ended)
      return;
    c.tools_ended = true;
    runtime::ToolCallStream::End end = c.tool_stream->finish();
    c.unsent += end.content;
    c.tool_calls = std::move(end.calls);
    if (!request.parallel_tool_calls && c.tool_calls.size() > 1)
      c.tool_calls.resize(1);
    if (!c.tool_calls.empty() && *c.finish != "abort")
      c.finish = "tool_calls";
  }

  // Takes every event that arrived and turns it into text, log-probabilities and finishes.
  void pump() {
    std::vector<runtime::RequestEvent> events;
    for (Choice& c : choices) {
      if (!c.stream || c.finish)
        continue;
      events.clear();
      c.stream->take(events);
      for (const runtime::RequestEvent& e : events) {
        for (std::size_t i = 0; i < e.tokens.size() && !c.finish; ++i) {
          TokenId token = e.tokens[i];
          if (!test_output.empty()) {
            const auto k = static_cast<std::size_t>(c.completion_tokens);
            if (k >= test_output.size()) {  // the chosen output is complete: end as at EOS
              append(c, c.text->finish());
              c.finish = "stop";
              loaded->engine->cancel(*c.stream);
              break;
            }
            token = test_output[k];
          }
          ++c.completion_tokens;
          if (i < e.logprobs.size())
            token_logprob(c, token, e.logprobs[i]);
          const TextStream::Piece piece = c.text->push(token);
          append(c, piece.text);
          if (piece.stopped) {
            c.finish = "stop";
            c.stream->stop_matched = true;
            loaded->engine->cancel(*c.stream);
          }
        }
        if (e.finish && !c.finish) {
          append(c, c.text->finish());
          c.finish = finish_reason_text(*e.finish);
          if (*e.finish == runtime::FinishReason::kCancelled && !failure) {
            failure = server_error(503, draining && draining->load()
                                            ? "the request was cancelled: the server is shutting down"
                                            : "the request was cancelled by the engine (see the server log)");
          }
        }
      }
      end_tools(c);
    }
  }

  bool done() const {
    return std::all_of(choices.begin(), choices.end(), [](const Choice& c) { return c.finish.has_value(); });
  }

  void cancel_open() {
    for (Choice& c : choices) {
      if (c.stream && !c.finish)
        loaded->engine->cancel(*c.stream);
    }
  }

  // Client gone or time up: cancels what runs. Returns whether the client is gone.
  bool check_client_and_deadline() {
    if (peer_closed(socket)) {
      cancel_open();
      return true;
    }
    if (!failure && Clock::now() > deadline) {
      failure = server_error(504, "the request ran longer than the server's request timeout", "timeout_error");
      cancel_open();
    }
    return false;
  }

  Usage usage() const {
    Usage u;
    u.prompt_tokens = static_cast<int>(prompt.size());
    for (const Choice& c : choices)
      u.completion_tokens += c.completion_tokens;
    if (!choices.empty() && choices[0].stream)
      u.cached_tokens = choices[0].stream->prompt_cached_tokens.load();
    return u;
  }
};

HttpServer::HttpServer(ServerOptions options) : options_(std::move(options)), http_(std::make_unique<BacklogServer>()) {
  created_ = unix_now();
  routes();
}

HttpServer::~HttpServer() {
  if (listener_.joinable()) {
    http_->stop();
    listener_.join();
  }
}

Status HttpServer::bind() {
  int threads = options_.http_threads;
  if (threads <= 0)
    threads = 128;
  http_->new_task_queue = [threads] { return new httplib::ThreadPool(static_cast<size_t>(threads)); };
  http_->set_payload_max_length(options_.max_body_bytes);
  http_->set_keep_alive_max_count(1000);
  http_->set_tcp_nodelay(true);
  if (options_.port == 0) {
    bound_port_ = http_->bind_to_any_port(options_.host);
  } else {
    bound_port_ = http_->bind_to_port(options_.host, options_.port) ? options_.port : -1;
  }
  if (bound_port_ >= 0 && !static_cast<BacklogServer&>(*http_).raise_backlog(SOMAXCONN))
    spdlog::warn("serve: could not raise the listen backlog; a burst of connections may be refused");
  if (bound_port_ < 0) {
    return unavailable("cannot listen on " + options_.host + ":" + std::to_string(options_.port) +
                       " (address in use, or not an address of this machine); choose another --host/--port");
  }
  return Status::ok();
}

void HttpServer::start() {
  listener_ = std::thread([this] { http_->listen_after_bind(); });
}

void HttpServer::set_loaded(const LoadedModel& loaded) {
  loaded_storage_ = loaded;
  loaded_.store(&loaded_storage_);
}

void HttpServer::shutdown(std::chrono::milliseconds grace) {
  draining_ = true;
  const LoadedModel* m = loaded_.load();
  if (m) {
    const auto until = Clock::now() + grace;
    while (m->engine->open_requests() > 0 && Clock::now() < until)
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    if (const int left = m->engine->open_requests(); left > 0) {
      spdlog::warn("serve: {} requests still open after the {} ms grace period; cancelling them", left, grace.count());
      m->engine->cancel_all();
    }
  }
  http_->stop();
  if (listener_.joinable())
    listener_.join();
}

bool HttpServer::authorized(const httplib::Request& req, httplib::Response& res) const {
  if (options_.api_key.empty())
    return true;
  if (req.get_header_value("Authorization") == "Bearer " + options_.api_key)
    return true;
  res.set_header("WWW-Authenticate", "Bearer");
  send_error(res, server_error(401, "a valid API key is required: send 'Authorization: Bearer <key>'",
                               "invalid_request_error", "invalid_api_key"));
  return false;
}

void HttpServer::routes() {
  httplib::Server& s = *http_;
  s.Get("/", [](const httplib::Request&, httplib::Response& res) {
    res.set_header("Cache-Control", "no-cache");
    res.set_header("Content-Security-Policy",
                   "default-src 'self'; style-src 'unsafe-inline'; script-src 'unsafe-inline'");
    res.set_content(std::string(chat_page_html()), "text/html; charset=utf-8");
  });
  s.Get("/health", [this](const httplib::Request&, httplib::Response& res) { health(res); });
  s.Get("/ready", [this](const httplib::Request&, httplib::Response& res) { ready(res); });
  s.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) { metrics(res); });
  s.Get("/halyard/info", [this](const httplib::Request&, httplib::Response& res) { info(res); });
  s.Get("/v1/models", [this](const httplib::Request& req, httplib::Response& res) {
    if (authorized(req, res))
      models(res);
  });
  s.Post("/v1/chat/completions", [this](const httplib::Request& req, httplib::Response& res) {
    if (authorized(req, res))
      generate(req, res, ApiKind::kChat);
  });
  s.Post("/v1/completions", [this](const httplib::Request& req, httplib::Response& res) {
    if (authorized(req, res))
      generate(req, res, ApiKind::kCompletion);
  });
#ifdef HALYARD_SERVER_FAULT_INJECTION
  // Test builds only: wedges the engine loop for ?ms=N, so the tests see /health turn 503.
  s.Post("/debug/stall", [this](const httplib::Request& req, httplib::Response& res) {
    const LoadedModel* m = loaded_.load();
    const long ms = req.has_param("ms") ? std::strtol(req.get_param_value("ms").c_str(), nullptr, 10) : 0;
    if (!m || ms <= 0 || !m->engine->inject_stall(std::chrono::milliseconds(ms))) {
      send_error(res, server_error(400, "POST /debug/stall?ms=N needs a loaded model and N > 0"));
      return;
    }
    send_json(res, 200, {{"stalled_ms", ms}});
  });
#endif
  // What the library answers itself (no route, body too large, unreadable request) gets
  // OpenAI's error shape too.
  s.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty())
      return;
    std::string message = "HTTP " + std::to_string(res.status);
    std::string type = "invalid_request_error";
    if (res.status == 404)
      message = "no route for " + req.method + " " + req.path;
    else if (res.status == 413)
      message = "the request body is larger than the server's limit (--max-body-bytes)";
    else if (res.status >= 500)
      type = "server_error";
    ApiError e = server_error(res.status, message, type);
    res.set_content(dump(error_json(e)), "application/json");
  });
  s.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
    std::string what = "unknown error";
    try {
      std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {
    }
    spdlog::error("serve: a handler failed: {}", what);
    send_error(res, server_error(500, "internal error: " + what));
  });
}

void HttpServer::health(httplib::Response& res) const {
  const LoadedModel* m = loaded_.load();
  if (!m) {
    send_json(res, 503, {{"status", "loading"}});
  } else if (!m->engine->healthy()) {
    send_json(res, 503, {{"status", "engine stalled"}, {"last_step_age_seconds", m->engine->last_step_age_seconds()}});
  } else {
    send_json(res, 200, {{"status", "ok"}});
  }
}

void HttpServer::ready(httplib::Response& res) const {
  const LoadedModel* m = loaded_.load();
  if (!m)
    return send_json(res, 503, {{"status", "loading"}});
  if (draining_)
    return send_json(res, 503, {{"status", "shutting down"}});
  const runtime::SchedulerStats st = m->engine->stats();
  if (m->max_waiting > 0 && st.waiting >= m->max_waiting)
    return send_json(res, 503, {{"status", "queue full"}, {"waiting", st.waiting}});
  send_json(res, 200, {{"status", "ready"}});
}

void HttpServer::metrics(httplib::Response& res) const {
  const LoadedModel* m = loaded_.load();
  if (!m) {
    send_json(res, 503, {{"status", "loading"}});
    return;
  }
  res.set_content(m->metrics->render(m->engine->gauges()), "text/plain; version=0.0.4; charset=utf-8");
}

void HttpServer::models(httplib::Response& res) const {
  const LoadedModel* m = loaded_.load();
  if (!m)
    return send_error(res, server_error(503, "the model is still loading"));
  const std::string name = options_.served_model_name.empty() ? m->model->name() : options_.served_model_name;
  json data = json::array({{{"id", name},
                            {"object", "model"},
                            {"created", created_},
                            {"owned_by", "halyard"},
                            {"max_model_len", m->model->context_length()}}});
  send_json(res, 200, {{"object", "list"}, {"data", data}});
}

void HttpServer::info(httplib::Response& res) const {
  const LoadedModel* m = loaded_.load();
  if (!m)
    return send_json(res, 503, {{"status", "loading"}});
  send_json(res, 200,
            {{"model", options_.served_model_name.empty() ? m->model->name() : options_.served_model_name},
             {"device", m->model->device_uri()},
             {"device_name", m->model->device_info().name},
             {"context_length", m->model->context_length()},
             {"max_running", m->max_running},
             {"max_waiting", m->max_waiting}});
}

void HttpServer::generate(const httplib::Request& req, httplib::Response& res, ApiKind kind) {
  const LoadedModel* m = loaded_.load();
  if (!m)
    return send_error(res, server_error(503, "the model is still loading; try again shortly"));
  if (draining_)
    return send_error(res, server_error(503, "the server is shutting down"));
  const runtime::Tokenizer& tok = m->model->tokenizer();
  ParsedRequest parsed = parse_generation_request(req.body, kind, tok.vocab_size(), options_.limits);
  if (parsed.error)
    return send_error(res, *parsed.error);
  auto gen = std::make_shared<Generation>();
  gen->loaded = m;
  gen->draining = &draining_;
  gen->request = std::move(parsed.request);
  GenerationRequest& r = gen->request;
  const std::string served = options_.served_model_name.empty() ? m->model->name() : options_.served_model_name;
  if (!r.model.empty() && r.model != served) {
    ApiError e = server_error(404, "the model '" + r.model + "' does not exist; this server serves '" + served + "'",
                              "invalid_request_error", "model_not_found");
    e.param = "model";
    return send_error(res, e);
  }

  const int context = m->model->context_length();
  const int max_prompt =
      options_.max_prompt_tokens > 0 ? std::min(options_.max_prompt_tokens, context - 1) : context - 1;
  PromptTokens prompt = build_prompt(r, tok, m->chat(), context, max_prompt);
  if (prompt.error)
    return send_error(res, *prompt.error);
  if (!r.tools_json.empty())
    gen->tool_format = m->tool_call_format();
  if (r.test_output) {
    gen->test_output = tok.encode(*r.test_output, false, true);
    r.ignore_eos = true;  // the engine runs on until the chosen output is complete
  }
  gen->prompt = std::move(prompt.tokens);
  if (r.echo)
    gen->echo = r.prompt_is_tokens ? tok.decode(r.prompt_tokens, false) : r.prompt;

  gen->header.kind = kind;
  gen->header.id = make_response_id(kind);
  gen->header.created = unix_now();
  gen->header.model = served;
  gen->choices.resize(static_cast<std::size_t>(r.n));
  for (auto& c : gen->choices) {
    c.text = std::make_unique<TextStream>(tok, r.stop);
    if (gen->tool_format != runtime::ToolCallFormat::kNone)
      c.tool_stream.emplace(gen->tool_format);
  }
  gen->socket = find_connection_socket(req.local_addr, req.local_port, req.remote_addr, req.remote_port);
  gen->deadline = Clock::now() + options_.request_timeout;
  if (auto e = gen->submit_ready()) {
    if (e->status == 429)
      res.set_header("Retry-After", "1");
    return send_error(res, *e);
  }

  if (!r.stream) {
    while (true) {
      if (auto e = gen->submit_ready()) {
        gen->cancel_open();
        return send_error(res, *e);
      }
      gen->pump();
      if (gen->done())
        break;
      if (gen->check_client_and_deadline())
        return;  // nobody to answer
      gen->notifier->wait(kPoll);
    }
    if (gen->failure)
      return send_error(res, *gen->failure);
    std::vector<ChoiceResult> results;
    for (std::size_t i = 0; i < gen->choices.size(); ++i) {
      auto& c = gen->choices[i];
      ChoiceResult result{static_cast<int>(i), gen->echo + c.all_text, *c.finish, std::move(c.logprobs), {}, false};
      if (!c.tool_calls.empty()) {
        // The same parser over the whole text: content is what lies outside the calls.
        runtime::ParsedToolCalls parsed = runtime::parse_tool_calls(gen->tool_format, c.all_text);
        result.text = parsed.content.value_or("");
        result.content_null = !parsed.content;
        result.tool_calls = std::move(c.tool_calls);
      }
      results.push_back(std::move(result));
    }
    return send_json(res, 200, completion_body(gen->header, results, gen->usage(), r.logprobs >= 0));
  }

  res.set_header("Cache-Control", "no-cache");
  res.set_header("X-Accel-Buffering", "no");
  res.set_chunked_content_provider(
      "text/event-stream",
      [gen](std::size_t, httplib::DataSink& sink) {
        auto write = [&](const json& body) {
          const std::string event = "data: " + dump(body) + "\n\n";
          return sink.write(event.data(), event.size());
        };
        const GenerationRequest& r = gen->request;
        const bool with_usage = r.include_usage;
        const bool with_logprobs = r.logprobs >= 0;
        while (true) {
          std::optional<ApiError> submit_error = gen->submit_ready();
          if (submit_error && !gen->failure) {
            gen->failure = submit_error;
            gen->cancel_open();
            for (auto& c : gen->choices) {
              if (!c.stream)
                c.finish = "abort";
            }
          }
          gen->pump();
          for (std::size_t i = 0; i < gen->choices.size(); ++i) {
            auto& c = gen->choices[i];
            const int index = static_cast<int>(i);
            if (!c.first_sent) {
              if (!c.stream)
                continue;
              // The first chunk: the role (chat), or the echoed prompt (completions).
              c.first_sent = true;
              if (r.kind == ApiKind::kChat || !gen->echo.empty()) {
                if (!write(chunk_body(gen->header, index, gen->echo, true, std::nullopt, nullptr, with_logprobs,
                                      with_usage)))
                  return gen->cancel_open(), false;
              }
            }
            if (!c.unsent.empty() || c.logprobs_sent < c.logprobs.size()) {
              std::vector<TokenLogprobText> fresh(c.logprobs.begin() + static_cast<std::ptrdiff_t>(c.logprobs_sent),
                                                  c.logprobs.end());
              c.logprobs_sent = c.logprobs.size();
              const json body =
                  chunk_body(gen->header, index, c.unsent, false, std::nullopt, &fresh, with_logprobs, with_usage);
              c.unsent.clear();
              if (!write(body))
                return gen->cancel_open(), false;
            }
            if (c.finish && !c.finish_sent && !gen->failure) {
              c.finish_sent = true;
              for (std::size_t k = 0; k < c.tool_calls.size(); ++k) {
                for (const json& body :
                     tool_call_chunk_bodies(gen->header, index, static_cast<int>(k), c.tool_calls[k], with_usage)) {
                  if (!write(body))
                    return gen->cancel_open(), false;
                }
              }
              if (!write(chunk_body(gen->header, index, "", false, c.finish, nullptr, with_logprobs, with_usage)))
                return gen->cancel_open(), false;
            }
          }
          if (gen->done()) {
            if (gen->failure && !write(error_json(*gen->failure)))
              return false;
            if (with_usage && !gen->failure && !write(usage_chunk_body(gen->header, gen->usage())))
              return false;
            static constexpr char kDone[] = "data: [DONE]\n\n";
            if (!sink.write(kDone, sizeof kDone - 1))
              return false;
            sink.done();
            return true;
          }
          if (gen->check_client_and_deadline())
            return false;
          gen->notifier->wait(kPoll);
        }
      },
      [gen](bool) { gen->cancel_open(); });
}

}  // namespace halyard::server
