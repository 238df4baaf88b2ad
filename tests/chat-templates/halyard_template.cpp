// halyard-template: renders a chat template file with Halyard's ChatTemplate (the path the CLI,
// C API and server take) for the differential test against Python's jinja2
// (compare_jinja2.py).
//
//   halyard-template TEMPLATE.jinja CONVERSATIONS.json
//
// CONVERSATIONS.json is one context or an array of them, each an object with messages (OpenAI's
// shape: role, content, tool_calls with arguments as JSON text, tool_call_id, name: read by
// read_chat_messages, as the server and C API read them), add_generation_prompt, bos_token,
// eos_token and, optionally, tools. For one object
// the rendering is printed as it is (exit 1 and the error on stderr when it fails); for an
// array, a JSON array of {"ok": true, "text": ...} or {"ok": false, "error": ...}, one per context.
#include <cstdio>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "halyard/runtime/chat_messages.h"
#include "halyard/runtime/chat_template.h"

namespace {

using halyard::Result;
using halyard::runtime::ChatMessage;
using halyard::runtime::ChatTemplate;
using json = nlohmann::ordered_json;

bool read_file(const char* path, std::string& out) {
  std::ifstream f(path, std::ios::binary);
  if (!f)
    return false;
  std::ostringstream s;
  s << f.rdbuf();
  out = s.str();
  return true;
}

Result<std::string> render(const std::string& source, const json& context) {
  const std::string bos = context.value("bos_token", "");
  const std::string eos = context.value("eos_token", "");
  HALYARD_ASSIGN_OR_RETURN(ChatTemplate t, ChatTemplate::from_jinja(source, bos, eos));
  std::vector<ChatMessage> messages;
  if (auto e = halyard::runtime::read_chat_messages(context.value("messages", json::array()), 1024, messages))
    return halyard::invalid_argument(e->param + ": " + e->message);
  std::string tools;
  if (context.contains("tools")) {
    if (auto e = halyard::runtime::read_chat_tools(context["tools"], tools))
      return halyard::invalid_argument(e->param + ": " + e->message);
  }
  return t.apply(messages, context.value("add_generation_prompt", false), tools);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: halyard-template TEMPLATE.jinja CONVERSATIONS.json\n");
    return 2;
  }
  std::string source, conversations;
  if (!read_file(argv[1], source) || !read_file(argv[2], conversations)) {
    std::fprintf(stderr, "halyard-template: cannot read %s or %s\n", argv[1], argv[2]);
    return 2;
  }
  const json contexts = json::parse(conversations, nullptr, false);
  if (contexts.is_discarded() || !(contexts.is_object() || contexts.is_array())) {
    std::fprintf(stderr, "halyard-template: %s is not a JSON object or array\n", argv[2]);
    return 2;
  }
  if (contexts.is_object()) {
    auto r = render(source, contexts);
    if (!r.is_ok()) {
      std::fprintf(stderr, "halyard-template: %s\n", r.status().message().c_str());
      return 1;
    }
    std::fwrite(r.value().data(), 1, r.value().size(), stdout);
    return 0;
  }
  json results = json::array();
  for (const auto& c : contexts) {
    auto r = render(source, c);
    if (r.is_ok())
      results.push_back({{"ok", true}, {"text", r.value()}});
    else
      results.push_back({{"ok", false}, {"error", r.status().message()}});
  }
  // Replace invalid UTF-8 rather than fail: the comparison reports such a rendering as different.
  std::cout << results.dump(-1, ' ', false, json::error_handler_t::replace) << "\n";
  return 0;
}
