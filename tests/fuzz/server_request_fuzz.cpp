// libFuzzer target: the server's request path on arbitrary bodies. A body is parsed as a chat
// and as a text completion request; a valid one becomes its prompt tokens through the default
// model's tokenizer and chat template, its stop strings run over those tokens as if generated,
// and its response chunks are rendered. Nothing may crash, hang or throw; an error names a
// field or none; the prompt respects the limit. The body itself is also read for tool calls in
// every format, whole and streamed in small pieces, and the two must find the same calls.
//   HALYARD_TEST_MODEL=... build/fuzz/bin/server_request_fuzz -max_total_time=60
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "api_request.h"
#include "api_response.h"
#include "halyard/runtime/chat_template.h"
#include "halyard/runtime/gguf.h"
#include "halyard/runtime/tokenizer.h"
#include "halyard/runtime/tool_call_parser.h"
#include "prompt.h"
#include "text_stream.h"

namespace {

using namespace halyard;

struct Model {
  std::unique_ptr<runtime::GgufFile> file;
  std::unique_ptr<runtime::Tokenizer> tokenizer;
  runtime::ChatTemplate chat = runtime::ChatTemplate::make(runtime::ChatFormat::kChatML);
};

const Model& model() {
  static std::unique_ptr<Model> m;
  if (!m) {
    const char* path = std::getenv("HALYARD_TEST_MODEL");
    const std::string p =
        path ? path : std::string(std::getenv("HOME")) + "/.cache/halyard/models/SmolLM2-135M-Instruct.Q4_1.gguf";
    m = std::make_unique<Model>();
    auto f = runtime::GgufFile::open(p);
    if (!f.is_ok()) {
      std::fprintf(stderr, "server_request_fuzz: cannot open %s: %s\n", p.c_str(), f.status().to_string().c_str());
      std::abort();
    }
    m->file = std::move(f).value();
    auto t = runtime::Tokenizer::from_gguf(*m->file);
    if (!t.is_ok())
      std::abort();
    m->tokenizer = std::move(t).value();
    if (auto c = runtime::ChatTemplate::from_jinja(m->file->get_string("tokenizer.chat_template").value_or(""),
                                                   m->tokenizer->token_text(m->tokenizer->bos()),
                                                   m->tokenizer->token_text(m->tokenizer->eos()));
        c.is_ok())
      m->chat = c.value();
  }
  return *m;
}

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "server_request_fuzz: %s\n", what);
    std::abort();
  }
}

}  // namespace

// The body as generated text: whole and streamed 3 bytes at a time, the same calls (by name and
// arguments) and, without calls, the same text back.
static void check_tool_calls(std::string_view text) {
  for (const runtime::ToolCallFormat f :
       {runtime::ToolCallFormat::kHermes, runtime::ToolCallFormat::kLlama3Json, runtime::ToolCallFormat::kMistral}) {
    const runtime::ParsedToolCalls whole = runtime::parse_tool_calls(f, text);
    runtime::ToolCallStream stream(f);
    std::string released;
    for (std::size_t i = 0; i < text.size(); i += 3)
      released += stream.push(text.substr(i, 3));
    const runtime::ToolCallStream::End end = stream.finish();
    check(end.calls.size() == whole.calls.size(), "streamed and whole tool call parsing disagree");
    for (std::size_t i = 0; i < end.calls.size(); ++i)
      check(end.calls[i].name == whole.calls[i].name && end.calls[i].arguments == whole.calls[i].arguments,
            "streamed and whole tool calls differ");
    if (whole.calls.empty())
      check(released + end.content == text && whole.content == std::string(text), "text without calls changed");
  }
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const Model& m = model();
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  check_tool_calls(body);
  constexpr int kContext = 256, kMaxPrompt = 200;
  for (const server::ApiKind kind : {server::ApiKind::kChat, server::ApiKind::kCompletion}) {
    server::ParsedRequest parsed = server::parse_generation_request(body, kind, m.tokenizer->vocab_size());
    if (parsed.error) {
      check(parsed.error->status == 400, "a parse error is not a 400");
      check(!parsed.error->message.empty(), "an error without a message");
      (void)server::dump(server::error_json(*parsed.error));
      continue;
    }
    server::GenerationRequest& r = parsed.request;
    check(r.n >= 1 && r.n <= 16 && r.stop.size() <= 4, "n or stop past their limits");
    check(r.logprobs >= -1 && r.logprobs <= 20, "logprobs out of range");
    server::PromptTokens prompt = server::build_prompt(r, *m.tokenizer, m.chat, kContext, kMaxPrompt);
    if (prompt.error) {
      (void)server::dump(server::error_json(*prompt.error));
      continue;
    }
    check(!prompt.tokens.empty() && prompt.tokens.size() <= kMaxPrompt, "a prompt outside the limit");
    check(r.max_tokens && *r.max_tokens >= 1 && *r.max_tokens + static_cast<int>(prompt.tokens.size()) <= kContext,
          "max_tokens past the context");
    // The prompt's own tokens through the stop strings, as if generated.
    server::TextStream stream(*m.tokenizer, r.stop);
    std::string text;
    for (runtime::TokenId t : prompt.tokens) {
      const server::TextStream::Piece piece = stream.push(t);
      text += piece.text;
      if (piece.stopped)
        break;
    }
    text += stream.finish();
    server::ResponseHeader h{kind, server::make_response_id(kind), 0, r.model};
    (void)server::dump(server::chunk_body(h, 0, text, true, std::nullopt, nullptr, false, r.include_usage));
    (void)server::dump(server::completion_body(h, {{0, text, "stop", {}, {}, false}}, {}, r.logprobs >= 0));
  }
  return 0;
}
