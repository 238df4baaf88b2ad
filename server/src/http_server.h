// `halyard serve`'s HTTP side (cpp-httplib): the OpenAI endpoints over the Engine, health and
// readiness, Prometheus metrics, the chat page. It binds and answers before the model is loaded
// (/health and /ready say 503 until set_loaded), and shuts down gracefully: shutdown() stops
// new generations, lets open ones finish within a grace period, cancels the rest, then stops
// listening.
// Ownership: borrows what set_loaded() gives (model, engine, metrics), which must outlive
// shutdown(). Thread safety: set_loaded() and shutdown() from any one thread; handlers run on
// the library's thread pool.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "api_request.h"
#include "engine.h"
#include "halyard/runtime/model.h"
#include "metrics.h"

namespace httplib {
class Server;
struct Request;
struct Response;
}  // namespace httplib

namespace halyard::server {

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;      // 0: any free port (bound_port() says which)
  std::string api_key;  // non-empty: /v1/* needs "Authorization: Bearer <key>"
  std::size_t max_body_bytes = 4u << 20;
  int max_prompt_tokens = 0;  // 0: the context length - 1
  std::chrono::seconds request_timeout{600};
  int http_threads = 0;           // 0: enough for the running and waiting requests and then some
  std::string served_model_name;  // "" : the model's name
  RequestLimits limits;
};

// What the server serves once the model is loaded.
struct LoadedModel {
  runtime::Model* model = nullptr;
  Engine* engine = nullptr;
  ServerMetrics* metrics = nullptr;
  int max_waiting = 0;  // the queue bound (for /ready)
  int max_running = 0;
  // --chat-template: renders chat requests instead of the model's own; nullptr: the model's.
  const runtime::ChatTemplate* chat_template = nullptr;
  // --tool-call-parser: how generated text is read for tool calls; empty: what the template
  // teaches (ChatTemplate::tool_call_format).
  std::optional<runtime::ToolCallFormat> tool_call_parser;

  const runtime::ChatTemplate& chat() const { return chat_template ? *chat_template : model->chat_template(); }
  runtime::ToolCallFormat tool_call_format() const { return tool_call_parser.value_or(chat().tool_call_format()); }
};

class HttpServer {
 public:
  explicit HttpServer(ServerOptions options);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds host:port; unavailable with the reason when it cannot (port in use, bad address).
  Status bind();
  int bound_port() const { return bound_port_; }
  // Serves on a thread of its own until shutdown().
  void start();
  void set_loaded(const LoadedModel& loaded);
  // Graceful shutdown: /ready and new generations answer 503; open requests get up to `grace`
  // to finish, then are cancelled; then the listener stops and its threads are joined.
  void shutdown(std::chrono::milliseconds grace);

 private:
  struct Generation;
  void routes();
  bool authorized(const httplib::Request& req, httplib::Response& res) const;
  void generate(const httplib::Request& req, httplib::Response& res, ApiKind kind);
  void health(httplib::Response& res) const;
  void ready(httplib::Response& res) const;
  void metrics(httplib::Response& res) const;
  void models(httplib::Response& res) const;
  void info(httplib::Response& res) const;

  ServerOptions options_;
  std::unique_ptr<httplib::Server> http_;
  std::thread listener_;
  int bound_port_ = -1;
  std::atomic<const LoadedModel*> loaded_{nullptr};
  LoadedModel loaded_storage_;
  std::atomic<bool> draining_{false};
  long long created_ = 0;  // unix time the server started, for /v1/models
};

}  // namespace halyard::server
