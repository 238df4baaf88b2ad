// The public C API, end to end on the reference device, including its error paths.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <numeric>
#include <string>
#include <thread>
#include <vector>

#include "gguf_writer.h"
#include "halyard.h"
#include "test_paths.h"

namespace {

halyard_model* load(const char* device, int ctx = 256) {
  halyard_model_options o;
  halyard_model_options_default(&o);
  o.device = device;
  o.context_length = ctx;
  halyard_model* m = nullptr;
  const halyard_status s = halyard_model_load(halyard::testing::default_model_path().c_str(), &o, &m);
  EXPECT_EQ(s, HALYARD_OK) << halyard_last_error();
  return m;
}

// halyard_version() is what `halyard --version` and embedders print: it must be the release.
TEST(CApi, ListsTheReferenceDevice) {
  halyard_device_list* list = nullptr;
  ASSERT_EQ(halyard_list_devices(&list), HALYARD_OK) << halyard_last_error();
  bool found = false;
  for (size_t i = 0; i < halyard_device_list_size(list); ++i) {
    if (std::string(halyard_device_list_uri(list, i)) == "ref") {
      found = true;
      EXPECT_TRUE(halyard_device_list_available(list, i));
    }
  }
  EXPECT_TRUE(found);
  EXPECT_NE(halyard_device_list_auto(list), nullptr);
  halyard_device_list_free(list);
}

TEST(CApi, TokenizeDetokenizeAndChat) {
  HALYARD_REQUIRE_MODEL(halyard::testing::default_model_path());
  halyard_model* m = load("ref");
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(halyard_model_vocab_size(m), 49152);
  const std::string text = "The capital of France is";
  size_t n = 0;
  EXPECT_EQ(halyard_tokenize(m, text.data(), text.size(), 1, 1, nullptr, 0, &n), HALYARD_ERROR_BUFFER_TOO_SMALL);
  ASSERT_EQ(n, 5u);
  std::vector<int32_t> ids(n);
  ASSERT_EQ(halyard_tokenize(m, text.data(), text.size(), 1, 1, ids.data(), ids.size(), &n), HALYARD_OK);
  EXPECT_EQ(ids, (std::vector<int32_t>{504, 3575, 282, 4649, 314}));
  std::string back(64, '\0');
  ASSERT_EQ(halyard_detokenize(m, ids.data(), ids.size(), back.data(), back.size(), &n), HALYARD_OK);
  back.resize(n);
  EXPECT_EQ(back, text);
  const int32_t bad = 1 << 30;
  EXPECT_EQ(halyard_detokenize(m, &bad, 1, back.data(), back.size(), &n), HALYARD_ERROR_INVALID_ARGUMENT);
  // End-of-generation tokens: ChatML's <|im_end|> is one, ordinary text is not.
  int32_t im_end = -1;
  ASSERT_EQ(halyard_tokenize(m, "<|im_end|>", 10, 0, 1, &im_end, 1, &n), HALYARD_OK);
  EXPECT_EQ(halyard_token_is_end_of_generation(m, im_end), 1);
  EXPECT_EQ(halyard_token_is_end_of_generation(m, 7042), 0);  // " Paris"
  EXPECT_EQ(halyard_token_is_end_of_generation(m, -1), 0);
  EXPECT_EQ(halyard_token_is_end_of_generation(m, bad), 0);
  EXPECT_EQ(halyard_token_is_end_of_generation(nullptr, im_end), 0);

  const halyard_chat_message msg{"user", "Hi"};
  std::string chat(512, '\0');
  ASSERT_EQ(halyard_apply_chat_template(m, &msg, 1, chat.data(), chat.size(), &n), HALYARD_OK);
  chat.resize(n);
  EXPECT_TRUE(chat.starts_with("<|im_start|>system\n")) << chat;
  EXPECT_TRUE(chat.ends_with("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n")) << chat;
  // The default model's own template is what renders it.
  EXPECT_STREQ(halyard_model_chat_template(m), "the model's own (tokenizer.chat_template)");
  EXPECT_STREQ(halyard_model_chat_template(nullptr), "");
  halyard_model_free(m);
}

TEST(CApi, ChatTemplateTakesToolTurnsAndParsesToolCalls) {
  HALYARD_REQUIRE_MODEL(halyard::testing::default_model_path());
  halyard_model* m = load("ref");
  ASSERT_NE(m, nullptr);
  halyard_chat_template_options o;
  halyard_chat_template_options_default(&o);
  EXPECT_EQ(o.struct_size, sizeof o);
  EXPECT_EQ(o.add_generation_prompt, 1);
  o.messages_json = R"([{"role": "system", "content": "S"},
      {"role": "user", "content": [{"type": "text", "text": "Weather?"}]},
      {"role": "assistant", "content": "Checking.", "tool_calls": [{"id": "call_1", "type": "function",
        "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}}]},
      {"role": "tool", "tool_call_id": "call_1", "content": "18 C"}])";
  o.tools_json = R"([{"type": "function", "function": {"name": "get_weather", "parameters": {}}}])";
  std::string text(1024, '\0');
  size_t n = 0;
  ASSERT_EQ(halyard_apply_chat_template_ex(m, nullptr, 0, &o, text.data(), text.size(), &n), HALYARD_OK)
      << halyard_last_error();
  text.resize(n);
  // SmolLM2's ChatML template renders the tool turn's content under its role.
  EXPECT_TRUE(text.find("<|im_start|>user\nWeather?<|im_end|>\n") != std::string::npos) << text;
  EXPECT_TRUE(text.ends_with("<|im_start|>tool\n18 C<|im_end|>\n<|im_start|>assistant\n")) << text;
  o.add_generation_prompt = 0;
  text.assign(1024, '\0');
  ASSERT_EQ(halyard_apply_chat_template_ex(m, nullptr, 0, &o, text.data(), text.size(), &n), HALYARD_OK);
  text.resize(n);
  EXPECT_TRUE(text.ends_with("<|im_start|>tool\n18 C<|im_end|>\n")) << text;
  // A bad field is named.
  o.messages_json = R"([{"role": "assistant", "tool_calls": [{"function": {"arguments": "{}"}}]}])";
  EXPECT_EQ(halyard_apply_chat_template_ex(m, nullptr, 0, &o, text.data(), text.size(), &n),
            HALYARD_ERROR_INVALID_ARGUMENT);
  EXPECT_TRUE(std::string(halyard_last_error()).find("messages[0].tool_calls[0].function.name") != std::string::npos)
      << halyard_last_error();
  o.messages_json = "[{";
  EXPECT_EQ(halyard_apply_chat_template_ex(m, nullptr, 0, &o, text.data(), text.size(), &n),
            HALYARD_ERROR_INVALID_ARGUMENT);
  // NULL options: halyard_apply_chat_template.
  const halyard_chat_message msg{"user", "Hi"};
  std::string a(512, '\0'), b(512, '\0');
  size_t na = 0, nb = 0;
  ASSERT_EQ(halyard_apply_chat_template(m, &msg, 1, a.data(), a.size(), &na), HALYARD_OK);
  ASSERT_EQ(halyard_apply_chat_template_ex(m, &msg, 1, nullptr, b.data(), b.size(), &nb), HALYARD_OK);
  EXPECT_EQ(a.substr(0, na), b.substr(0, nb));

  EXPECT_STREQ(halyard_model_tool_call_format(m), "none");  // SmolLM2's template teaches no tools
  const std::string out =
      "Sure.<tool_call>{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Oslo\"}}</tool_call>";
  std::string j(1024, '\0');
  ASSERT_EQ(halyard_parse_tool_calls(m, out.data(), out.size(), "hermes", j.data(), j.size(), &n), HALYARD_OK);
  j.resize(n);
  EXPECT_TRUE(j.starts_with(R"({"content":"Sure.","tool_calls":[{"id":"call_)")) << j;
  EXPECT_TRUE(
      j.ends_with(R"(","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Oslo\"}"}}]})"))
      << j;
  j.assign(1024, '\0');
  ASSERT_EQ(halyard_parse_tool_calls(m, out.data(), out.size(), nullptr, j.data(), j.size(), &n), HALYARD_OK);
  j.resize(n);
  EXPECT_EQ(
      j,
      R"({"content":"Sure.<tool_call>{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Oslo\"}}</tool_call>","tool_calls":[]})");
  EXPECT_EQ(halyard_parse_tool_calls(m, out.data(), out.size(), "pythonic", j.data(), j.size(), &n),
            HALYARD_ERROR_INVALID_ARGUMENT);
  halyard_model_free(m);
}

struct Collected {
  std::string text;
  int calls = 0;
  int stop_after = -1;
};

int collect(int32_t, const char* text, size_t len, void* user) {
  auto* c = static_cast<Collected*>(user);
  c->text.append(text, len);
  return ++c->calls == c->stop_after ? 1 : 0;
}

TEST(CApi, GeneratesGreedyTextWithTimings) {
  HALYARD_REQUIRE_MODEL(halyard::testing::default_model_path());
  halyard_model* m = load("ref");
  ASSERT_NE(m, nullptr);
  halyard_generate_options go;
  halyard_generate_options_default(&go);
  go.max_tokens = 3;
  halyard_timings t{};
  t.struct_size = sizeof t;
  Collected c;
  ASSERT_EQ(halyard_generate(m, "The capital of France is", &go, collect, &c, &t), HALYARD_OK) << halyard_last_error();
  EXPECT_EQ(c.text, " Paris.\n");  // llama.cpp's greedy continuation (tests/data/llama_cpp_reference)
  EXPECT_EQ(t.prompt_tokens, 5);
  EXPECT_EQ(t.generated_tokens, 3);
  EXPECT_GT(t.time_to_first_token_ms, 0);
  EXPECT_GT(t.prefill_tokens_per_s, 0);
  EXPECT_GT(t.decode_tokens_per_s, 0);
  EXPECT_EQ(t.finish_reason, HALYARD_FINISH_MAX_TOKENS);
  EXPECT_STREQ(halyard_finish_reason_name(t.finish_reason), "max tokens");

  Collected stop;
  stop.stop_after = 1;
  halyard_timings cancelled{};
  cancelled.struct_size = sizeof cancelled;
  EXPECT_EQ(halyard_generate(m, "The capital of France is", &go, collect, &stop, &cancelled), HALYARD_ERROR_CANCELLED);
  EXPECT_EQ(stop.calls, 1);
  EXPECT_EQ(cancelled.finish_reason, HALYARD_FINISH_CANCELLED);
  EXPECT_EQ(cancelled.generated_tokens, 1);
  halyard_model_free(m);
}

struct Tokens {
  std::vector<int32_t> ids;
};

int collect_tokens(int32_t token, const char*, size_t, void* user) {
  if (token >= 0)
    static_cast<Tokens*>(user)->ids.push_back(token);
  return 0;
}

TEST(CApi, ALogitBiasBanningTheGreedyTokenChangesIt) {
  HALYARD_REQUIRE_MODEL(halyard::testing::default_model_path());
  halyard_model* m = load("ref", 32);
  ASSERT_NE(m, nullptr);
  halyard_generate_options go;
  halyard_generate_options_default(&go);
  go.max_tokens = 1;
  Tokens plain;
  ASSERT_EQ(halyard_generate(m, "The capital of France is", &go, collect_tokens, &plain, nullptr), HALYARD_OK)
      << halyard_last_error();
  ASSERT_EQ(plain.ids, std::vector<int32_t>{7042});  // " Paris"
  const int32_t tokens[1] = {7042};
  const float ban[1] = {-INFINITY};
  go.logit_bias_tokens = tokens;
  go.logit_bias_values = ban;
  go.n_logit_bias = 1;
  Tokens banned;
  ASSERT_EQ(halyard_generate(m, "The capital of France is", &go, collect_tokens, &banned, nullptr), HALYARD_OK)
      << halyard_last_error();
  ASSERT_EQ(banned.ids.size(), 1u);
  EXPECT_NE(banned.ids[0], 7042);
  // The entries apply together: +100 on " Paris" and -inf on the runner-up picks " Paris" again.
  const int32_t two[2] = {7042, banned.ids[0]};
  const float promote[2] = {100.f, -INFINITY};
  go.logit_bias_tokens = two;
  go.logit_bias_values = promote;
  go.n_logit_bias = 2;
  Tokens promoted;
  ASSERT_EQ(halyard_generate(m, "The capital of France is", &go, collect_tokens, &promoted, nullptr), HALYARD_OK)
      << halyard_last_error();
  EXPECT_EQ(promoted.ids, std::vector<int32_t>{7042});
  halyard_model_free(m);
}

TEST(CApi, AStrongPresencePenaltyChangesGreedyText) {
  // Greedy " Paris.\n" continues with text that repeats its tokens; a presence penalty of
  // 100 on every token of the prompt and of the text so far makes each token new.
  HALYARD_REQUIRE_MODEL(halyard::testing::default_model_path());
  halyard_model* m = load("ref", 64);
  ASSERT_NE(m, nullptr);
  halyard_generate_options go;
  halyard_generate_options_default(&go);
  go.max_tokens = 12;
  go.repeat_last_n = -1;
  Tokens plain, penalised;
  ASSERT_EQ(halyard_generate(m, "The capital of France is", &go, collect_tokens, &plain, nullptr), HALYARD_OK);
  go.presence_penalty = 100.f;
  ASSERT_EQ(halyard_generate(m, "The capital of France is", &go, collect_tokens, &penalised, nullptr), HALYARD_OK)
      << halyard_last_error();
  EXPECT_NE(plain.ids, penalised.ids);
  const std::vector<int32_t> prompt{504, 3575, 282, 4649, 314};
  std::vector<int32_t> seen = prompt;
  for (int32_t id : penalised.ids) {
    EXPECT_EQ(std::count(seen.begin(), seen.end(), id), 0) << "token " << id << " repeats";
    seen.push_back(id);
  }
  halyard_model_free(m);
}

// A caller compiled against the header before the sampling fields were appended passes that
// struct's size: the fields after it must read as their defaults, whatever lies there.
TEST(CApi, ACallerWithTheOlderOptionsStructGetsTheDefaults) {
  HALYARD_REQUIRE_MODEL(halyard::testing::default_model_path());
  halyard_model* m = load("ref", 32);
  ASSERT_NE(m, nullptr);
  halyard_generate_options go;
  halyard_generate_options_default(&go);
  go.max_tokens = 3;
  go.struct_size = offsetof(halyard_generate_options, logit_bias_tokens);
  // Garbage where the new fields are: each value would be refused if it were read.
  go.logit_bias_tokens = nullptr;
  go.logit_bias_values = nullptr;
  go.n_logit_bias = 12345;
  go.min_p = 7.f;
  go.repeat_penalty = -1.f;
  go.repeat_last_n = -9;
  go.presence_penalty = NAN;
  go.frequency_penalty = NAN;
  Collected c;
  ASSERT_EQ(halyard_generate(m, "The capital of France is", &go, collect, &c, nullptr), HALYARD_OK)
      << halyard_last_error();
  EXPECT_EQ(c.text, " Paris.\n");
  // The same struct with its full size is read in full, and refused.
  go.struct_size = sizeof go;
  EXPECT_EQ(halyard_generate(m, "The capital of France is", &go, collect, &c, nullptr), HALYARD_ERROR_INVALID_ARGUMENT);
  halyard_model_free(m);
}

TEST(CApi, FinishReasonContextFull) {
  HALYARD_REQUIRE_MODEL(halyard::testing::default_model_path());
  halyard_model* m = load("ref", 8);
  ASSERT_NE(m, nullptr);
  halyard_generate_options go;
  halyard_generate_options_default(&go);
  go.max_tokens = 20;
  halyard_timings t{};
  t.struct_size = sizeof t;
  ASSERT_EQ(halyard_generate(m, "The capital of France is", &go, nullptr, nullptr, &t), HALYARD_OK)
      << halyard_last_error();
  EXPECT_EQ(t.finish_reason, HALYARD_FINISH_CONTEXT_FULL);
  EXPECT_EQ(t.prompt_tokens + t.generated_tokens, 8 + 1);  // the last sampled token needs no position
  halyard_model_free(m);
}

// The project's version from CMake (project(halyard VERSION ...)), passed to this test.
TEST(CApi, VersionIsTheProjectVersion) {
  EXPECT_STREQ(halyard_version(), HALYARD_PROJECT_VERSION);
}

// Every callback call, with its token id.
struct Stream {
  std::vector<int32_t> ids;  // the generated tokens (calls with id >= 0)
  std::string text;          // all texts concatenated
  std::vector<int32_t> call_ids;
};

int record(int32_t id, const char* text, size_t len, void* user) {
  auto* s = static_cast<Stream*>(user);
  s->call_ids.push_back(id);
  if (id >= 0)
    s->ids.push_back(id);
  s->text.append(text, len);
  return 0;
}

std::string detokenize(const halyard_model* m, const std::vector<int32_t>& ids) {
  size_t n = 0;
  std::string out(4096, '\0');
  EXPECT_EQ(halyard_detokenize(m, ids.data(), ids.size(), out.data(), out.size(), &n), HALYARD_OK);
  out.resize(n);
  return out;
}

TEST(CApi, AModelThatSamplesItsEndTokenStopsThere) {
  // A short chat answer whose greedy continuation on ref ends with <|im_end|> after 11 tokens,
  // well before max_tokens: the end token stops generation, is not passed to the callback, and
  // the reason is end of sequence.
  HALYARD_REQUIRE_MODEL(halyard::testing::default_model_path());
  halyard_model* m = load("ref", 128);
  ASSERT_NE(m, nullptr);
  halyard_generate_options go;
  halyard_generate_options_default(&go);
  go.max_tokens = 40;
  halyard_timings t{};
  t.struct_size = sizeof t;
  Stream s;
  const char* prompt =
      "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
      "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n";
  ASSERT_EQ(halyard_generate(m, prompt, &go, record, &s, &t), HALYARD_OK) << halyard_last_error();
  EXPECT_EQ(t.finish_reason, HALYARD_FINISH_END_OF_SEQUENCE);
  EXPECT_STREQ(halyard_finish_reason_name(t.finish_reason), "end of sequence");
  EXPECT_EQ(s.text, "The answer to this classic math problem is 4.");
  EXPECT_EQ(t.generated_tokens, 11);
  EXPECT_EQ(s.ids.size(), 11u);
  EXPECT_EQ(s.text.find("<|im_end|>"), std::string::npos);
  halyard_model_free(m);
}

TEST(CApi, AStreamEndingMidCharacterDeliversTheRestWithTokenMinusOne) {
  // "中国的首都是" continues greedily (on ref) with 一 (one token) and then 位 split over two byte
  // tokens, then 美 over two: max_tokens 2 ends after the first byte token of 位 (2 bytes held
  // back), 4 after the first of 美 (1 byte). The texts of all calls must concatenate to exactly
  // the generated text, the held bytes coming in one last call with token -1.
  HALYARD_REQUIRE_MODEL(halyard::testing::default_model_path());
  halyard_model* m = load("ref", 64);
  ASSERT_NE(m, nullptr);
  for (int max_tokens : {2, 4}) {
    halyard_generate_options go;
    halyard_generate_options_default(&go);
    go.max_tokens = max_tokens;
    Stream s;
    ASSERT_EQ(halyard_generate(m, "中国的首都是", &go, record, &s, nullptr), HALYARD_OK) << halyard_last_error();
    ASSERT_EQ(s.ids.size(), static_cast<size_t>(max_tokens));
    const std::string generated = detokenize(m, s.ids);
    EXPECT_EQ(s.text, generated) << max_tokens << " tokens";
    ASSERT_FALSE(s.call_ids.empty());
    EXPECT_EQ(s.call_ids.back(), -1) << "the last token leaves an incomplete character: one more call with -1";
    EXPECT_EQ(std::count(s.call_ids.begin(), s.call_ids.end(), -1), 1);
    // The generated text really ends mid-character (a lead byte with too few continuations).
    const std::size_t lead = generated.find_last_of("\xe4\xe5\xe6\xe7\xe8\xe9");
    ASSERT_NE(lead, std::string::npos);
    EXPECT_LT(generated.size() - lead, 3u) << max_tokens << " tokens";
  }
  halyard_model_free(m);
}

TEST(CApi, InvalidSamplingValuesAreRefused) {
  HALYARD_REQUIRE_MODEL(halyard::testing::default_model_path());
  halyard_model* m = load("ref", 16);
  ASSERT_NE(m, nullptr);
  auto generate_with = [&](auto change) {
    halyard_generate_options go;
    halyard_generate_options_default(&go);
    go.max_tokens = 1;
    change(go);
    return halyard_generate(m, "Hi", &go, nullptr, nullptr, nullptr);
  };
  using O = halyard_generate_options;
  EXPECT_EQ(generate_with([](O& o) { o.temperature = NAN; }), HALYARD_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(generate_with([](O& o) { o.temperature = -1.f; }), HALYARD_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(generate_with([](O& o) { o.temperature = INFINITY; }), HALYARD_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(generate_with([](O& o) { o.top_p = 2.f; }), HALYARD_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(generate_with([](O& o) { o.top_p = NAN; }), HALYARD_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(generate_with([](O& o) { o.top_p = 0.f; }), HALYARD_ERROR_INVALID_ARGUMENT);
  // A struct_size too small to hold struct_size itself was copied in part (2 bytes over the
  // defaults, so a garbage struct_size); it is an error naming the struct, like every options struct's.
  EXPECT_EQ(generate_with([](O& o) { o.struct_size = 2; }), HALYARD_ERROR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(halyard_last_error()).find("halyard_generate_options.struct_size"), std::string::npos);
  EXPECT_EQ(generate_with([](O& o) { o.top_k = -5; }), HALYARD_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(generate_with([](O& o) { o.top_k = INT_MIN; }), HALYARD_ERROR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(halyard_last_error()).find("top-k"), std::string::npos) << halyard_last_error();
  EXPECT_EQ(generate_with([](O& o) { o.max_tokens = -1; }), HALYARD_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(generate_with([](O& o) { o.min_p = NAN; }), HALYARD_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(generate_with([](O& o) { o.min_p = 1.5f; }), HALYARD_ERROR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(halyard_last_error()).find("min-p"), std::string::npos) << halyard_last_error();
  EXPECT_EQ(generate_with([](O& o) { o.repeat_penalty = 0.f; }), HALYARD_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(generate_with([](O& o) { o.repeat_last_n = -2; }), HALYARD_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(generate_with([](O& o) { o.presence_penalty = NAN; }), HALYARD_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(generate_with([](O& o) { o.frequency_penalty = INFINITY; }), HALYARD_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(generate_with([](O& o) { o.n_logit_bias = 1; }), HALYARD_ERROR_INVALID_ARGUMENT);  // NULL arrays
  EXPECT_NE(std::string(halyard_last_error()).find("NULL"), std::string::npos) << halyard_last_error();
  const int32_t outside[1] = {halyard_model_vocab_size(m)};
  const float one[1] = {1.f};
  EXPECT_EQ(generate_with([&](O& o) {
              o.logit_bias_tokens = outside;
              o.logit_bias_values = one;
              o.n_logit_bias = 1;
            }),
            HALYARD_ERROR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(halyard_last_error()).find("vocabulary"), std::string::npos) << halyard_last_error();
  const float plus_inf[1] = {INFINITY};
  const int32_t paris[1] = {7042};
  EXPECT_EQ(generate_with([&](O& o) {
              o.logit_bias_tokens = paris;
              o.logit_bias_values = plus_inf;
              o.n_logit_bias = 1;
            }),
            HALYARD_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(generate_with([](O& o) {
              o.temperature = 0.8f;
              o.top_k = 0;
              o.top_p = 1.f;
            }),
            HALYARD_OK)
      << halyard_last_error();
  halyard_model_free(m);
}

// Runs fn with file descriptors 1 and 2 redirected to files; returns what each received.
template <typename Fn>
std::pair<std::string, std::string> capture_output(Fn fn) {
  std::fflush(stdout);
  std::fflush(stderr);
  // Per process: ctest runs each case in its own process, several at a time.
  const std::string stem = ::testing::TempDir() + "/halyard_capture_" + std::to_string(::getpid());
  const std::string out_path = stem + ".stdout", err_path = stem + ".stderr";
  const int saved_out = ::dup(1), saved_err = ::dup(2);
  const int out = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  const int err = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  ::dup2(out, 1);
  ::dup2(err, 2);
  fn();
  std::fflush(stdout);
  std::fflush(stderr);
  ::dup2(saved_out, 1);
  ::dup2(saved_err, 2);
  for (int fd : {out, err, saved_out, saved_err})
    ::close(fd);
  auto slurp = [](const std::string& path) {
    std::ifstream in(path);
    return std::string(std::istreambuf_iterator<char>(in), {});
  };
  std::pair<std::string, std::string> result{slurp(out_path), slurp(err_path)};
  std::remove(out_path.c_str());
  std::remove(err_path.c_str());
  return result;
}

TEST(CApi, TheLibraryNeverWritesToStdout) {
  HALYARD_REQUIRE_MODEL(halyard::testing::default_model_path());
  halyard_set_log_level(3);  // debug: the model load and the graph compiles log something
  const auto [out, err] = capture_output([] {
    halyard_model* m = load("ref", 16);
    halyard_generate_options go;
    halyard_generate_options_default(&go);
    go.max_tokens = 2;
    EXPECT_EQ(halyard_generate(m, "Hi", &go, nullptr, nullptr, nullptr), HALYARD_OK);
    halyard_model_free(m);
  });
  halyard_set_log_level(1);
  EXPECT_EQ(out, "");
  EXPECT_NE(err.find("halyard: "), std::string::npos) << err;
}

// halyard_generate keeps its sequence between calls: the second call with the same prompt
// compiles no graph (the debug log names every compile) and gives the same greedy text.
TEST(CApi, GenerateCompilesItsGraphsOnce) {
  HALYARD_REQUIRE_MODEL(halyard::testing::default_model_path());
  struct Compiles {
    int count = 0;
  } compiles;
  halyard_set_log_callback(
      [](int, const char* message, void* user) {
        if (std::string(message).find("compiled a") != std::string::npos)
          ++static_cast<Compiles*>(user)->count;
      },
      &compiles);
  halyard_set_log_level(3);
  halyard_model* m = load("cpu", 64);
  ASSERT_NE(m, nullptr);
  halyard_generate_options go;
  halyard_generate_options_default(&go);
  go.max_tokens = 3;
  Collected first, second;
  EXPECT_EQ(halyard_generate(m, "The capital of France is", &go, collect, &first, nullptr), HALYARD_OK);
  const int after_first = compiles.count;
  EXPECT_EQ(halyard_generate(m, "The capital of France is", &go, collect, &second, nullptr), HALYARD_OK);
  const int after_second = compiles.count;
  halyard_set_log_level(1);
  halyard_set_log_callback(nullptr, nullptr);
  halyard_model_free(m);
  EXPECT_GE(after_first, 2);  // the 5-token prefill and the decode graph
  EXPECT_EQ(after_second, after_first);
  EXPECT_EQ(second.text, first.text);
  EXPECT_EQ(first.text, " Paris.\n");
}

TEST(CApi, LogMessagesReachTheCallerSink) {
  HALYARD_REQUIRE_MODEL(halyard::testing::default_model_path());
  struct Sink {
    std::vector<std::pair<int, std::string>> messages;
  } sink;
  halyard_set_log_callback([](int level, const char* message,
                              void* user) { static_cast<Sink*>(user)->messages.emplace_back(level, message); },
                           &sink);
  halyard_set_log_level(3);
  const auto [out, err] = capture_output([] { halyard_model_free(load("ref", 16)); });
  halyard_set_log_level(1);
  halyard_set_log_callback(nullptr, nullptr);
  EXPECT_EQ(out, "");
  EXPECT_EQ(err, "");
  ASSERT_FALSE(sink.messages.empty());
  for (const auto& [level, message] : sink.messages) {
    EXPECT_GE(level, 0);
    EXPECT_LE(level, 3);
    EXPECT_FALSE(message.empty());
  }
}

// One meaning per status code: more tokens than the whole context is OUT_OF_RANGE from every
// call; KV_CACHE_FULL only when tokens that would fit an empty sequence do not fit after the
// tokens already held.
TEST(CApi, PromptLongerThanContextIsOutOfRange) {
  HALYARD_REQUIRE_MODEL(halyard::testing::default_model_path());
  halyard_model* m = load("ref", 4);
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(halyard_generate(m, "one two three four five six seven", nullptr, nullptr, nullptr, nullptr),
            HALYARD_ERROR_OUT_OF_RANGE);
  EXPECT_NE(std::string(halyard_last_error()).find("context"), std::string::npos);
  halyard_session* s = nullptr;
  ASSERT_EQ(halyard_session_create(m, &s), HALYARD_OK) << halyard_last_error();
  const int32_t five[5] = {504, 3575, 282, 4649, 314};
  EXPECT_EQ(halyard_session_eval(s, five, 5, nullptr), HALYARD_ERROR_OUT_OF_RANGE);
  EXPECT_EQ(halyard_session_position(s), 0);
  halyard_session_free(s);
  halyard_model_free(m);
}

// A prompt far longer than the context is refused once it has more tokens than the context,
// without tokenizing the whole megabyte first.
TEST(CApi, HugePromptIsRefusedAfterAContextOfTokens) {
  HALYARD_REQUIRE_MODEL(halyard::testing::default_model_path());
  halyard_model* m = load("ref", 64);
  ASSERT_NE(m, nullptr);
  std::string prompt;
  while (prompt.size() < (1u << 20))
    prompt += "The quick brown fox jumps over the lazy dog, and then it rests for a while. ";
  EXPECT_EQ(halyard_generate(m, prompt.c_str(), nullptr, nullptr, nullptr, nullptr), HALYARD_ERROR_OUT_OF_RANGE);
  EXPECT_EQ(std::string(halyard_last_error()),
            "the prompt has more than 64 tokens but the context holds 64; shorten it or raise --ctx");
  halyard_model_free(m);
}

// kv_dtype picks the cache's element type (f32: 4 bytes an element); other values are refused.
TEST(CApi, KvDtypeOption) {
  HALYARD_REQUIRE_MODEL(halyard::testing::default_model_path());
  halyard_model_options o;
  halyard_model_options_default(&o);
  EXPECT_EQ(o.kv_dtype, HALYARD_KV_F16);
  o.device = "ref";
  o.context_length = 8;
  o.kv_dtype = HALYARD_KV_F32;
  halyard_model* m = nullptr;
  ASSERT_EQ(halyard_model_load(halyard::testing::default_model_path().c_str(), &o, &m), HALYARD_OK)
      << halyard_last_error();
  EXPECT_EQ(halyard_model_kv_bytes_per_token(m), 2u * 30 * 64 * 3 * 4);
  halyard_session* s = nullptr;
  ASSERT_EQ(halyard_session_create(m, &s), HALYARD_OK) << halyard_last_error();
  const int32_t prompt[5] = {504, 3575, 282, 4649, 314};
  std::vector<float> logits(static_cast<size_t>(halyard_model_vocab_size(m)));
  ASSERT_EQ(halyard_session_eval(s, prompt, 5, logits.data()), HALYARD_OK) << halyard_last_error();
  EXPECT_EQ(std::max_element(logits.begin(), logits.end()) - logits.begin(), 7042);  // " Paris"
  halyard_session_free(s);
  halyard_model_free(m);
  o.kv_dtype = 7;
  m = nullptr;
  EXPECT_EQ(halyard_model_load(halyard::testing::default_model_path().c_str(), &o, &m), HALYARD_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(m, nullptr);
  EXPECT_NE(std::string(halyard_last_error()).find("kv_dtype"), std::string::npos) << halyard_last_error();
}

TEST(CApi, SessionEvalAndKvCacheFull) {
  HALYARD_REQUIRE_MODEL(halyard::testing::default_model_path());
  halyard_model* m = load("ref", 8);
  ASSERT_NE(m, nullptr);
  EXPECT_GT(halyard_model_weight_bytes(m), 90u << 20);
  EXPECT_GT(halyard_model_parameter_count(m), 130000000u);
  // K and V, 30 layers, 3 KV heads of 64: f16 by default, 2 bytes an element.
  EXPECT_EQ(halyard_model_kv_bytes_per_token(m), 2u * 30 * 64 * 3 * 2);
  halyard_session* s = nullptr;
  ASSERT_EQ(halyard_session_create(m, &s), HALYARD_OK) << halyard_last_error();
  const int32_t prompt[5] = {504, 3575, 282, 4649, 314};
  std::vector<float> logits(static_cast<size_t>(halyard_model_vocab_size(m)));
  ASSERT_EQ(halyard_session_eval(s, prompt, 5, logits.data()), HALYARD_OK) << halyard_last_error();
  EXPECT_EQ(std::max_element(logits.begin(), logits.end()) - logits.begin(), 7042);  // " Paris"
  EXPECT_EQ(halyard_session_position(s), 5);
  EXPECT_EQ(halyard_session_eval(s, prompt, 4, nullptr), HALYARD_ERROR_KV_CACHE_FULL);
  EXPECT_EQ(halyard_session_position(s), 5);  // unchanged
  halyard_session_reset(s);
  EXPECT_EQ(halyard_session_position(s), 0);
  const int32_t bad = -3;
  EXPECT_EQ(halyard_session_eval(s, &bad, 1, nullptr), HALYARD_ERROR_INVALID_ARGUMENT);
  halyard_session_free(s);
  halyard_model_free(m);
}

// Four sequences of different prompt lengths through one context: their prompts prefill in one
// step, then they decode together, one token each per step; each gets the greedy tokens
// halyard_generate gives it alone (exactly, on ref).
TEST(CApi, ContextDecodesFourSequencesAtOnceLikeGenerateAlone) {
  HALYARD_REQUIRE_MODEL(halyard::testing::default_model_path());
  halyard_model* m = load("ref", 64);
  ASSERT_NE(m, nullptr);
  const char* prompts[4] = {"The capital of France is", "Hi", "One, two, three, four, five,",
                            "The quick brown fox jumps over the lazy"};
  constexpr int kTokens = 4;
  std::vector<std::vector<int32_t>> alone(4);
  for (int s = 0; s < 4; ++s) {
    halyard_generate_options go;
    halyard_generate_options_default(&go);
    go.max_tokens = kTokens;
    Tokens t;
    ASSERT_EQ(halyard_generate(m, prompts[s], &go, collect_tokens, &t, nullptr), HALYARD_OK) << halyard_last_error();
    ASSERT_EQ(t.ids.size(), static_cast<size_t>(kTokens)) << prompts[s];
    alone[static_cast<size_t>(s)] = t.ids;
  }

  halyard_context_options co;
  halyard_context_options_default(&co);
  co.max_sequences = 4;
  halyard_context* ctx = nullptr;
  ASSERT_EQ(halyard_context_create(m, &co, &ctx), HALYARD_OK) << halyard_last_error();
  EXPECT_EQ(halyard_context_max_sequences(ctx), 4);
  EXPECT_EQ(halyard_context_block_size(ctx), 16);
  EXPECT_EQ(halyard_context_kv_blocks_total(ctx), 4 * 4);  // 64 positions per sequence
  EXPECT_EQ(halyard_context_kv_blocks_used(ctx), 0);

  std::vector<int32_t> tokens, positions, seqs;
  std::vector<int8_t> want;
  std::vector<size_t> last(4);
  for (int s = 0; s < 4; ++s) {
    int32_t ids[64];
    size_t n = 0;
    ASSERT_EQ(halyard_tokenize(m, prompts[s], std::strlen(prompts[s]), 1, 1, ids, 64, &n), HALYARD_OK);
    for (size_t i = 0; i < n; ++i) {
      tokens.push_back(ids[i]);
      positions.push_back(static_cast<int32_t>(i));
      seqs.push_back(s);
      want.push_back(i + 1 == n);
    }
    last[static_cast<size_t>(s)] = tokens.size() - 1;
  }
  halyard_batch b{sizeof(halyard_batch), tokens.size(), tokens.data(),        positions.data(),
                  seqs.data(),           want.data(),   HALYARD_OUTPUT_LOGITS};
  ASSERT_EQ(halyard_context_step(ctx, &b), HALYARD_OK) << halyard_last_error();
  EXPECT_EQ(halyard_context_logits(ctx, 0), nullptr);  // it did not ask
  const size_t vocab = static_cast<size_t>(halyard_model_vocab_size(m));
  std::vector<std::vector<int32_t>> together(4);
  std::vector<int32_t> next(4);
  for (int step = 0; step < kTokens; ++step) {
    for (size_t s = 0; s < 4; ++s) {
      const float* l = halyard_context_logits(ctx, step == 0 ? last[s] : s);
      ASSERT_NE(l, nullptr);
      next[s] = static_cast<int32_t>(std::max_element(l, l + vocab) - l);
      together[s].push_back(next[s]);
    }
    if (step + 1 == kTokens)
      break;
    std::vector<int32_t> pos(4), ids(4);
    for (int s = 0; s < 4; ++s)
      pos[static_cast<size_t>(s)] = halyard_seq_pos_max(ctx, s) + 1;
    const int32_t seq_ids[4] = {0, 1, 2, 3};
    const int8_t all[4] = {1, 1, 1, 1};
    halyard_batch d{sizeof(halyard_batch), 4, next.data(), pos.data(), seq_ids, all, HALYARD_OUTPUT_LOGITS};
    ASSERT_EQ(halyard_context_step(ctx, &d), HALYARD_OK) << halyard_last_error();
  }
  for (size_t s = 0; s < 4; ++s)
    EXPECT_EQ(together[s], alone[s]) << prompts[s];
  EXPECT_EQ(halyard_seq_pos_min(ctx, 0), 0);
  EXPECT_EQ(halyard_seq_pos_max(ctx, 0), 5 + kTokens - 2);  // 5 prompt tokens, 3 fed back
  EXPECT_GT(halyard_context_kv_blocks_used(ctx), 3);

  // Sequence operations: copy shares blocks, keep and remove free them.
  const int used = halyard_context_kv_blocks_used(ctx);
  ASSERT_EQ(halyard_seq_copy(ctx, 0, 1), HALYARD_OK) << halyard_last_error();
  EXPECT_EQ(halyard_seq_pos_max(ctx, 1), halyard_seq_pos_max(ctx, 0));
  EXPECT_LT(halyard_context_kv_blocks_used(ctx), used);  // sequence 1's own blocks were freed
  const int32_t before = halyard_seq_pos_max(ctx, 0);
  EXPECT_EQ(halyard_seq_remove(ctx, 0, 1, 2), HALYARD_OK) << halyard_last_error();  // a middle position
  EXPECT_EQ(halyard_seq_pos_max(ctx, 0), before - 1);
  EXPECT_EQ(halyard_seq_remove(ctx, 0, 2, -1), HALYARD_OK);
  EXPECT_EQ(halyard_seq_pos_max(ctx, 0), 1);
  EXPECT_EQ(halyard_seq_keep(ctx, 1), HALYARD_OK);
  EXPECT_EQ(halyard_seq_pos_max(ctx, 0), -1);
  EXPECT_EQ(halyard_seq_pos_max(ctx, 2), -1);
  EXPECT_EQ(halyard_context_kv_blocks_used(ctx), 1);
  EXPECT_EQ(halyard_seq_copy(ctx, 0, 4), HALYARD_ERROR_OUT_OF_RANGE);
  EXPECT_EQ(halyard_seq_keep(ctx, -1), HALYARD_ERROR_OUT_OF_RANGE);
  EXPECT_EQ(halyard_seq_pos_max(ctx, 9), -1);
  halyard_context_free(ctx);
  halyard_model_free(m);
}

TEST(CApi, APrefixCacheHitEqualsRecomputingAndGenerateUsesIt) {
  HALYARD_REQUIRE_MODEL(halyard::testing::default_model_path());
  halyard_model* m = load("cpu");
  ASSERT_NE(m, nullptr);
  // A prompt of 3 blocks and a bit: generate twice, the second call reuses the first's blocks.
  const std::string prompt =
      "The history of the city begins with a small fishing village on the river, where traders from the north "
      "came every summer to sell furs and buy salt. Over the centuries it grew into a market town, then a port "
      "with its own fleet, and finally the capital of a kingdom that";
  halyard_generate_options go;
  halyard_generate_options_default(&go);
  go.max_tokens = 6;
  halyard_timings cold{}, warm{};
  cold.struct_size = warm.struct_size = sizeof cold;
  Collected a, b;
  ASSERT_EQ(halyard_generate(m, prompt.c_str(), &go, collect, &a, &cold), HALYARD_OK) << halyard_last_error();
  ASSERT_EQ(halyard_generate(m, prompt.c_str(), &go, collect, &b, &warm), HALYARD_OK) << halyard_last_error();
  ASSERT_GT(cold.prompt_tokens, 48);
  EXPECT_EQ(cold.prompt_cached_tokens, 0);
  EXPECT_EQ(warm.prompt_cached_tokens, (cold.prompt_tokens - 1) / 16 * 16);
  EXPECT_EQ(a.text, b.text);

  // Through a context: the same logits after a hit as after computing the whole prompt.
  std::vector<int32_t> ids(256);
  size_t n = 0;
  ASSERT_EQ(halyard_tokenize(m, prompt.c_str(), prompt.size(), 1, 0, ids.data(), ids.size(), &n), HALYARD_OK);
  ids.resize(n);
  halyard_context_options co;
  halyard_context_options_default(&co);
  co.max_sequences = 2;
  halyard_context* ctx = nullptr;
  ASSERT_EQ(halyard_context_create(m, &co, &ctx), HALYARD_OK) << halyard_last_error();
  auto feed = [&](int32_t seq, int32_t from) {
    std::vector<int32_t> pos, seqs(n - static_cast<size_t>(from), seq);
    for (size_t i = static_cast<size_t>(from); i < n; ++i)
      pos.push_back(static_cast<int32_t>(i));
    halyard_batch bt{
        sizeof(halyard_batch), n - static_cast<size_t>(from), ids.data() + from, pos.data(), seqs.data(), nullptr,
        HALYARD_OUTPUT_LOGITS};
    EXPECT_EQ(halyard_context_step(ctx, &bt), HALYARD_OK) << halyard_last_error();
    const float* l = halyard_context_logits(ctx, bt.n_tokens - 1);
    return std::vector<float>(l, l + halyard_model_vocab_size(m));
  };
  int32_t cached = -1;
  ASSERT_EQ(halyard_seq_attach_prefix(ctx, 0, ids.data(), n, &cached), HALYARD_OK);
  EXPECT_EQ(cached, 0);
  const auto computed = feed(0, 0);
  ASSERT_EQ(halyard_seq_remove(ctx, 0, 0, -1), HALYARD_OK);
  EXPECT_EQ(halyard_context_kv_blocks_used(ctx), 0);
  EXPECT_EQ(halyard_context_kv_blocks_cached(ctx), static_cast<int32_t>(n / 16));
  ASSERT_EQ(halyard_seq_attach_prefix(ctx, 1, ids.data(), n, &cached), HALYARD_OK);
  EXPECT_EQ(cached, static_cast<int32_t>((n - 1) / 16 * 16));
  EXPECT_EQ(halyard_seq_pos_max(ctx, 1), cached - 1);
  EXPECT_EQ(halyard_context_prefix_hits(ctx), (n - 1) / 16);
  EXPECT_EQ(halyard_context_prefix_misses(ctx), static_cast<int64_t>((n - 1) / 16));  // the cold attach
  const auto reused = feed(1, cached);
  // cpu's batched products round with the batch size (a 3-token step here, a whole prompt
  // there): the bound of ContextTest's batch invariance, and the same greedy token.
  double err = 0, ref = 0;
  for (size_t i = 0; i < computed.size(); ++i) {
    err += (double{computed[i]} - reused[i]) * (double{computed[i]} - reused[i]);
    ref += double{computed[i]} * computed[i];
  }
  EXPECT_LT(err / ref, 2e-3);
  EXPECT_EQ(std::max_element(computed.begin(), computed.end()) - computed.begin(),
            std::max_element(reused.begin(), reused.end()) - reused.begin());
  EXPECT_EQ(halyard_seq_attach_prefix(ctx, 1, ids.data(), n, &cached), HALYARD_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(halyard_seq_attach_prefix(nullptr, 1, ids.data(), n, &cached), HALYARD_ERROR_INVALID_ARGUMENT);
  halyard_context_free(ctx);
  halyard_model_free(m);
}

TEST(CApi, ContextStepKvCacheFullAndBadBatches) {
  HALYARD_REQUIRE_MODEL(halyard::testing::default_model_path());
  halyard_model* m = load("ref", 64);
  ASSERT_NE(m, nullptr);
  halyard_context_options co;
  halyard_context_options_default(&co);
  co.max_sequences = 2;
  co.kv_blocks = 1;
  co.max_batch_tokens = 20;
  halyard_context* ctx = nullptr;
  ASSERT_EQ(halyard_context_create(m, &co, &ctx), HALYARD_OK) << halyard_last_error();
  EXPECT_EQ(halyard_context_kv_blocks_total(ctx), 1);
  const int32_t tokens[2] = {504, 3575};
  const int32_t pos[2] = {0, 0};
  const int32_t seqs[2] = {0, 1};
  halyard_batch b{sizeof(halyard_batch), 2, tokens, pos, seqs, nullptr,
                  HALYARD_OUTPUT_LOGITS};  // two sequences need two blocks
  EXPECT_EQ(halyard_context_step(ctx, &b), HALYARD_ERROR_KV_CACHE_FULL);
  EXPECT_NE(std::string(halyard_last_error()).find("nothing was changed"), std::string::npos);
  EXPECT_EQ(halyard_seq_pos_max(ctx, 0), -1);
  EXPECT_EQ(halyard_context_kv_blocks_used(ctx), 0);
  b.n_tokens = 1;  // sequence 0 alone fits; logits NULL: the last token's are kept
  ASSERT_EQ(halyard_context_step(ctx, &b), HALYARD_OK) << halyard_last_error();
  EXPECT_NE(halyard_context_logits(ctx, 0), nullptr);
  EXPECT_EQ(halyard_context_logits(ctx, 1), nullptr);
  EXPECT_EQ(halyard_seq_pos_max(ctx, 0), 0);
  // Bad batches: a position that does not continue the sequence, a bad sequence id, NULL
  // arrays, an old struct_size, too many tokens.
  const int32_t gap = 5;
  halyard_batch bad{sizeof(halyard_batch), 1, tokens, &gap, seqs, nullptr, HALYARD_OUTPUT_LOGITS};
  EXPECT_EQ(halyard_context_step(ctx, &bad), HALYARD_ERROR_INVALID_ARGUMENT);
  const int32_t seq9 = 9;
  bad = halyard_batch{sizeof(halyard_batch), 1, tokens, pos, &seq9, nullptr, HALYARD_OUTPUT_LOGITS};
  EXPECT_EQ(halyard_context_step(ctx, &bad), HALYARD_ERROR_INVALID_ARGUMENT);
  bad = halyard_batch{sizeof(halyard_batch), 1, nullptr, pos, seqs, nullptr, HALYARD_OUTPUT_LOGITS};
  EXPECT_EQ(halyard_context_step(ctx, &bad), HALYARD_ERROR_INVALID_ARGUMENT);
  bad = halyard_batch{sizeof(size_t), 1, tokens, pos, seqs, nullptr, HALYARD_OUTPUT_LOGITS};
  EXPECT_EQ(halyard_context_step(ctx, &bad), HALYARD_ERROR_INVALID_ARGUMENT);
  std::vector<int32_t> many(21, 504), many_pos(21), many_seq(21, 1);
  std::iota(many_pos.begin(), many_pos.end(), 0);
  bad = halyard_batch{sizeof(halyard_batch), 21,      many.data(),          many_pos.data(),
                      many_seq.data(),       nullptr, HALYARD_OUTPUT_LOGITS};
  EXPECT_EQ(halyard_context_step(ctx, &bad), HALYARD_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(halyard_context_step(ctx, nullptr), HALYARD_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(halyard_seq_pos_max(ctx, 0), 0);
  halyard_context_free(ctx);

  co.max_sequences = 0;
  EXPECT_EQ(halyard_context_create(m, &co, &ctx), HALYARD_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(ctx, nullptr);
  co.max_sequences = 1;
  co.kv_blocks = -1;
  EXPECT_EQ(halyard_context_create(m, &co, &ctx), HALYARD_ERROR_INVALID_ARGUMENT);
  halyard_context_free(nullptr);
  halyard_model_free(m);
}

// kv_bytes sizes the cache as a byte budget (whole blocks of halyard_context_kv_bytes_per_block
// bytes), kv_dtype picks its element type (0: the model's); bad values are refused by name, and
// a struct_size that ends before the appended fields leaves them at their defaults.
TEST(CApi, ContextKvBytesAndKvDtype) {
  HALYARD_REQUIRE_MODEL(halyard::testing::default_model_path());
  halyard_model* m = load("ref", 64);
  ASSERT_NE(m, nullptr);
  halyard_context_options co;
  halyard_context_options_default(&co);
  EXPECT_EQ(co.struct_size, sizeof co);
  EXPECT_EQ(co.kv_bytes, 0);
  EXPECT_EQ(co.kv_dtype, 0);
  halyard_context* ctx = nullptr;
  ASSERT_EQ(halyard_context_create(m, &co, &ctx), HALYARD_OK) << halyard_last_error();
  const uint64_t f16_block = halyard_context_kv_bytes_per_block(ctx);
  EXPECT_EQ(f16_block, 16 * halyard_model_kv_bytes_per_token(m));  // the model's dtype: f16
  EXPECT_EQ(f16_block, 16u * 2 * 30 * 64 * 3 * 2);
  halyard_context_free(ctx);
  EXPECT_EQ(halyard_context_kv_bytes_per_block(nullptr), 0u);

  // A budget of 3.5 blocks buys 3; the same budget in f32 blocks (twice the bytes) buys 1.
  co.max_sequences = 2;
  co.kv_bytes = static_cast<int64_t>(3 * f16_block + f16_block / 2);
  ASSERT_EQ(halyard_context_create(m, &co, &ctx), HALYARD_OK) << halyard_last_error();
  EXPECT_EQ(halyard_context_kv_blocks_total(ctx), 3);
  halyard_context_free(ctx);
  co.kv_dtype = HALYARD_KV_F32;
  ASSERT_EQ(halyard_context_create(m, &co, &ctx), HALYARD_OK) << halyard_last_error();
  EXPECT_EQ(halyard_context_kv_bytes_per_block(ctx), 2 * f16_block);
  EXPECT_EQ(halyard_context_kv_blocks_total(ctx), 1);
  // The f32 cache runs: the prompt's greedy next token is " Paris".
  const int32_t prompt[5] = {504, 3575, 282, 4649, 314};
  const int32_t pos[5] = {0, 1, 2, 3, 4};
  const int32_t seqs[5] = {0, 0, 0, 0, 0};
  halyard_batch b{sizeof(halyard_batch), 5, prompt, pos, seqs, nullptr, HALYARD_OUTPUT_LOGITS};
  ASSERT_EQ(halyard_context_step(ctx, &b), HALYARD_OK) << halyard_last_error();
  const float* l = halyard_context_logits(ctx, 4);
  ASSERT_NE(l, nullptr);
  EXPECT_EQ(std::max_element(l, l + halyard_model_vocab_size(m)) - l, 7042);
  halyard_context_free(ctx);

  // Invalid values, each refused with a message naming the field.
  struct Bad {
    int32_t kv_blocks;
    int64_t kv_bytes;
    int32_t kv_dtype;
    const char* message;
  };
  const Bad bad[] = {
      {0, static_cast<int64_t>(f16_block) - 1, 0, "holds less than one KV block"},
      {0, static_cast<int64_t>(f16_block), HALYARD_KV_F32, "holds less than one KV block"},
      {0, -1, 0, "kv_bytes must be >= 0"},
      {2, static_cast<int64_t>(4 * f16_block), 0, "not both"},
      {0, 0, 2, "kv_dtype must be"},
      {0, 0, -1, "kv_dtype must be"},
  };
  for (const Bad& c : bad) {
    co.kv_blocks = c.kv_blocks;
    co.kv_bytes = c.kv_bytes;
    co.kv_dtype = c.kv_dtype;
    ctx = nullptr;
    EXPECT_EQ(halyard_context_create(m, &co, &ctx), HALYARD_ERROR_INVALID_ARGUMENT) << c.message;
    EXPECT_EQ(ctx, nullptr);
    EXPECT_NE(std::string(halyard_last_error()).find(c.message), std::string::npos) << halyard_last_error();
  }

  // A budget no device holds is out of memory, not an overflow.
  co.kv_blocks = 0;
  co.kv_bytes = INT64_MAX;
  co.kv_dtype = 0;
  EXPECT_EQ(halyard_context_create(m, &co, &ctx), HALYARD_ERROR_OUT_OF_MEMORY) << halyard_last_error();
  EXPECT_EQ(ctx, nullptr);

  // An older caller's struct_size ends where kv_bytes begins: whatever lies beyond it is not read.
  co.kv_blocks = 2;
  co.kv_bytes = -5;
  co.kv_dtype = 9;
  co.struct_size = offsetof(halyard_context_options, kv_bytes);
  ASSERT_EQ(halyard_context_create(m, &co, &ctx), HALYARD_OK) << halyard_last_error();
  EXPECT_EQ(halyard_context_kv_blocks_total(ctx), 2);
  EXPECT_EQ(halyard_context_kv_bytes_per_block(ctx), f16_block);
  halyard_context_free(ctx);
  // One that covers kv_bytes but not kv_dtype reads the first only.
  co.kv_blocks = 0;
  co.kv_bytes = static_cast<int64_t>(2 * f16_block);
  co.struct_size = offsetof(halyard_context_options, kv_dtype);
  ASSERT_EQ(halyard_context_create(m, &co, &ctx), HALYARD_OK) << halyard_last_error();
  EXPECT_EQ(halyard_context_kv_blocks_total(ctx), 2);
  EXPECT_EQ(halyard_context_kv_bytes_per_block(ctx), f16_block);
  halyard_context_free(ctx);
  halyard_model_free(m);
}

// A context's kv_dtype of 0 follows the model: on a model loaded with f32 caches it is f32.
TEST(CApi, ContextKvDtypeZeroIsTheModels) {
  HALYARD_REQUIRE_MODEL(halyard::testing::default_model_path());
  halyard_model_options o;
  halyard_model_options_default(&o);
  o.device = "ref";
  o.context_length = 32;
  o.kv_dtype = HALYARD_KV_F32;
  halyard_model* m = nullptr;
  ASSERT_EQ(halyard_model_load(halyard::testing::default_model_path().c_str(), &o, &m), HALYARD_OK)
      << halyard_last_error();
  halyard_context_options co;
  halyard_context_options_default(&co);
  halyard_context* ctx = nullptr;
  ASSERT_EQ(halyard_context_create(m, &co, &ctx), HALYARD_OK) << halyard_last_error();
  EXPECT_EQ(halyard_context_kv_bytes_per_block(ctx), 16 * halyard_model_kv_bytes_per_token(m));
  EXPECT_EQ(halyard_context_kv_bytes_per_block(ctx), 16u * 2 * 30 * 64 * 3 * 4);
  halyard_context_free(ctx);
  halyard_model_free(m);
}

// halyard_X_options_init writes the defaults of exactly the size it is given (at most its own
// struct's), and the exported halyard_X_options_default functions that binaries built before the
// macros call write the 230fb20 sizes, so neither writes past an older caller's struct.
template <typename T>
std::vector<unsigned char> filled(void (*fill)(T*, size_t), size_t size, size_t room) {
  std::vector<unsigned char> buf(room, 0xA5);
  fill(reinterpret_cast<T*>(buf.data()), size);
  return buf;
}

size_t written(const std::vector<unsigned char>& buf) {
  size_t n = buf.size();
  while (n > 0 && buf[n - 1] == 0xA5)
    --n;
  return n;
}

// On a host device the weights are used in place from the mapped file unless
// HALYARD_LOAD_NO_MMAP asks for a copy; a caller whose struct ends before load_flags gets the
// default whatever lies there; unknown bits are refused.
TEST(CApi, LoadFlagsChooseMappedOrCopiedWeights) {
  HALYARD_REQUIRE_MODEL(halyard::testing::default_model_path());
  const std::string path = halyard::testing::default_model_path();
  for (const char* device : {"ref", "cpu"}) {
    SCOPED_TRACE(device);
    halyard_model_options o;
    halyard_model_options_default(&o);
    EXPECT_EQ(o.load_flags, 0u);
    o.device = device;
    o.context_length = 8;
    halyard_model* m = nullptr;
    ASSERT_EQ(halyard_model_load(path.c_str(), &o, &m), HALYARD_OK) << halyard_last_error();
    EXPECT_EQ(halyard_model_mapped_weight_bytes(m), halyard_model_weight_bytes(m));  // 32-byte aligned file
    halyard_model_free(m);
    o.load_flags = HALYARD_LOAD_NO_MMAP;
    ASSERT_EQ(halyard_model_load(path.c_str(), &o, &m), HALYARD_OK) << halyard_last_error();
    EXPECT_EQ(halyard_model_mapped_weight_bytes(m), 0u);
    EXPECT_GT(halyard_model_weight_bytes(m), 90u << 20);
    halyard_model_free(m);
    o.struct_size = offsetof(halyard_model_options, load_flags);
    o.load_flags = ~std::uint64_t{0};
    ASSERT_EQ(halyard_model_load(path.c_str(), &o, &m), HALYARD_OK) << halyard_last_error();
    EXPECT_EQ(halyard_model_mapped_weight_bytes(m), halyard_model_weight_bytes(m));
    halyard_model_free(m);
    o.struct_size = sizeof o;
    o.load_flags = 2;
    m = nullptr;
    EXPECT_EQ(halyard_model_load(path.c_str(), &o, &m), HALYARD_ERROR_INVALID_ARGUMENT);
    EXPECT_EQ(m, nullptr);
    EXPECT_NE(std::string(halyard_last_error()).find("load_flags"), std::string::npos) << halyard_last_error();
  }
  EXPECT_EQ(halyard_model_mapped_weight_bytes(nullptr), 0u);
}

TEST(CApi, OptionsInitWritesOnlyTheSizeItIsGiven) {
  if (sizeof(void*) != 8)
    GTEST_SKIP() << "the frozen sizes checked here are those of LP64";
  const size_t room = 256;
  // A size smaller than the struct: exactly that many bytes, and struct_size says so.
  auto ctx_old = filled(halyard_context_options_init, 24, room);
  EXPECT_EQ(written(ctx_old), 24u);
  halyard_context_options co;
  std::memcpy(&co, ctx_old.data(), 24);
  EXPECT_EQ(co.struct_size, 24u);
  EXPECT_EQ(co.max_sequences, 1);
  EXPECT_EQ(co.kv_blocks, 0);
  EXPECT_EQ(co.max_batch_tokens, 512);
  // A size larger than the library's struct: only the library's struct.
  auto ctx_big = filled(halyard_context_options_init, room, room);
  EXPECT_LE(written(ctx_big), sizeof(halyard_context_options));
  std::memcpy(&co, ctx_big.data(), sizeof co);
  EXPECT_EQ(co.struct_size, sizeof(halyard_context_options));
  // Too small to hold struct_size: nothing.
  EXPECT_EQ(written(filled(halyard_context_options_init, 4, room)), 0u);
  halyard_context_options_init(nullptr, sizeof co);  // a no-op

  auto gen = filled(halyard_generate_options_init, 40, room);  // the struct before the sampling fields
  EXPECT_EQ(written(gen), 40u);
  halyard_generate_options go;
  std::memcpy(&go, gen.data(), 40);
  EXPECT_EQ(go.struct_size, 40u);
  EXPECT_EQ(go.max_tokens, 128);
  EXPECT_EQ(go.top_k, 40);
  auto model = filled(halyard_model_options_init, 32, room);  // the struct before kv_dtype
  EXPECT_EQ(written(model), 32u);

  // The legacy symbols (parenthesised: not the macros) write the 230fb20 sizes.
  auto legacy_ctx = filled<halyard_context_options>(
      [](halyard_context_options* o, size_t) { (halyard_context_options_default)(o); }, 0, room);
  EXPECT_EQ(written(legacy_ctx), 24u);
  std::memcpy(&co, legacy_ctx.data(), 24);
  EXPECT_EQ(co.struct_size, 24u);
  EXPECT_EQ(co.max_batch_tokens, 512);
  auto legacy_gen = filled<halyard_generate_options>(
      [](halyard_generate_options* o, size_t) { (halyard_generate_options_default)(o); }, 0, room);
  EXPECT_EQ(written(legacy_gen), 88u);  // the padding after frequency_penalty is written as zeros
  std::memcpy(&go, legacy_gen.data(), sizeof(size_t));
  EXPECT_EQ(go.struct_size, 88u);
  auto legacy_model = filled<halyard_model_options>(
      [](halyard_model_options* o, size_t) { (halyard_model_options_default)(o); }, 0, room);
  EXPECT_EQ(written(legacy_model), 40u);
  halyard_model_options mo;
  std::memcpy(&mo, legacy_model.data(), sizeof(size_t));
  EXPECT_EQ(mo.struct_size, 40u);
}

TEST(CApi, SeqCancelLeavesASequenceOutUntilItIsEmptied) {
  HALYARD_REQUIRE_MODEL(halyard::testing::default_model_path());
  halyard_model* m = load("ref", 64);
  ASSERT_NE(m, nullptr);
  halyard_context_options co;
  halyard_context_options_default(&co);
  co.max_sequences = 2;
  halyard_context* ctx = nullptr;
  ASSERT_EQ(halyard_context_create(m, &co, &ctx), HALYARD_OK) << halyard_last_error();
  const int32_t tokens[2] = {504, 3575};
  const int32_t pos[2] = {0, 0};
  const int32_t seqs[2] = {0, 1};
  const int8_t want[2] = {1, 1};
  halyard_batch b{sizeof(halyard_batch), 2, tokens, pos, seqs, want, HALYARD_OUTPUT_LOGITS};
  ASSERT_EQ(halyard_context_step(ctx, &b), HALYARD_OK) << halyard_last_error();
  EXPECT_EQ(halyard_context_step_ran(ctx, 0), 1);
  EXPECT_EQ(halyard_context_step_ran(ctx, 1), 1);
  EXPECT_EQ(halyard_context_step_ran(ctx, 2), 0);
  // Cancelled from another thread (before this step begins: joined first).
  halyard_status cancel_status = HALYARD_ERROR_INTERNAL;
  std::thread([&] { cancel_status = halyard_seq_cancel(ctx, 1); }).join();
  EXPECT_EQ(cancel_status, HALYARD_OK);
  const int32_t pos1[2] = {1, 1};
  b.positions = pos1;
  EXPECT_EQ(halyard_context_step(ctx, &b), HALYARD_ERROR_CANCELLED);
  EXPECT_NE(std::string(halyard_last_error()).find("cancelled"), std::string::npos) << halyard_last_error();
  EXPECT_EQ(halyard_context_step_ran(ctx, 0), 1);
  EXPECT_EQ(halyard_context_step_ran(ctx, 1), 0);
  EXPECT_NE(halyard_context_logits(ctx, 0), nullptr);
  EXPECT_EQ(halyard_context_logits(ctx, 1), nullptr);
  EXPECT_EQ(halyard_seq_pos_max(ctx, 0), 1);
  EXPECT_EQ(halyard_seq_pos_max(ctx, 1), 0);
  // Emptying sequence 1 clears the flag: it runs again from position 0.
  ASSERT_EQ(halyard_seq_remove(ctx, 1, 0, -1), HALYARD_OK);
  halyard_batch one{sizeof(halyard_batch), 1, tokens + 1, pos, seqs + 1, nullptr, HALYARD_OUTPUT_LOGITS};
  EXPECT_EQ(halyard_context_step(ctx, &one), HALYARD_OK) << halyard_last_error();
  EXPECT_EQ(halyard_context_step_ran(ctx, 0), 1);
  EXPECT_EQ(halyard_seq_pos_max(ctx, 1), 0);
  EXPECT_EQ(halyard_seq_cancel(ctx, 2), HALYARD_ERROR_OUT_OF_RANGE);
  EXPECT_EQ(halyard_seq_cancel(nullptr, 0), HALYARD_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(halyard_context_step_ran(nullptr, 0), 0);
  halyard_context_free(ctx);
  halyard_model_free(m);
}

TEST(CApi, SeqStateRoundTripsBetweenContexts) {
  HALYARD_REQUIRE_MODEL(halyard::testing::default_model_path());
  halyard_model* m = load("ref", 64);
  ASSERT_NE(m, nullptr);
  const uint64_t fingerprint = halyard_model_fingerprint(m);
  EXPECT_NE(fingerprint, 0U);
  EXPECT_EQ(halyard_model_fingerprint(nullptr), 0U);
  halyard_context_options co;
  halyard_context_options_default(&co);
  co.max_sequences = 2;
  halyard_context* a = nullptr;
  halyard_context* b = nullptr;
  ASSERT_EQ(halyard_context_create(m, &co, &a), HALYARD_OK) << halyard_last_error();
  ASSERT_EQ(halyard_context_create(m, &co, &b), HALYARD_OK) << halyard_last_error();
  const int32_t prompt[5] = {504, 3575, 282, 4649, 314};
  const int32_t pos[5] = {0, 1, 2, 3, 4};
  const int32_t seq0[5] = {0, 0, 0, 0, 0};
  halyard_batch pb{sizeof(halyard_batch), 5, prompt, pos, seq0, nullptr, HALYARD_OUTPUT_LOGITS};
  ASSERT_EQ(halyard_context_step(a, &pb), HALYARD_OK) << halyard_last_error();
  size_t size = 0;
  ASSERT_EQ(halyard_seq_state_size(a, 0, &size), HALYARD_OK) << halyard_last_error();
  // 30 layers, kv_dim 192, f16: header, 5 tokens, K and V rows, CRC.
  EXPECT_EQ(size, 32U + 4 * 5 + 2 * 30 * 5 * 192 * 2 + 4);
  size_t n = 0;
  EXPECT_EQ(halyard_seq_state_save(a, 0, nullptr, 0, &n), HALYARD_ERROR_BUFFER_TOO_SMALL);
  EXPECT_EQ(n, size);
  std::vector<unsigned char> state(size);
  EXPECT_EQ(halyard_seq_state_save(a, 0, state.data(), size - 1, &n), HALYARD_ERROR_BUFFER_TOO_SMALL);
  ASSERT_EQ(halyard_seq_state_save(a, 0, state.data(), size, &n), HALYARD_OK) << halyard_last_error();
  EXPECT_EQ(n, size);
  uint64_t carried = 0;
  std::memcpy(&carried, state.data() + 8, 8);
  EXPECT_EQ(carried, fingerprint);
  // Into sequence 1 of another context: both continue with the same token alike.
  ASSERT_EQ(halyard_seq_state_load(b, 1, state.data(), state.size()), HALYARD_OK) << halyard_last_error();
  EXPECT_EQ(halyard_seq_pos_max(b, 1), 4);
  const int32_t next = 7042, next_pos = 5, s0 = 0, s1 = 1;
  halyard_batch da{sizeof(halyard_batch), 1, &next, &next_pos, &s0, nullptr, HALYARD_OUTPUT_LOGITS};
  halyard_batch db{sizeof(halyard_batch), 1, &next, &next_pos, &s1, nullptr, HALYARD_OUTPUT_LOGITS};
  ASSERT_EQ(halyard_context_step(a, &da), HALYARD_OK) << halyard_last_error();
  ASSERT_EQ(halyard_context_step(b, &db), HALYARD_OK) << halyard_last_error();
  const int32_t vocab = halyard_model_vocab_size(m);
  const float* la = halyard_context_logits(a, 0);
  const float* lb = halyard_context_logits(b, 0);
  ASSERT_TRUE(la && lb);
  EXPECT_TRUE(std::equal(la, la + vocab, lb)) << "ref: the loaded sequence continues bit-identically";
  // Errors: not empty, truncated, NULL.
  EXPECT_EQ(halyard_seq_state_load(b, 1, state.data(), state.size()), HALYARD_ERROR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(halyard_last_error()).find("empty"), std::string::npos) << halyard_last_error();
  EXPECT_EQ(halyard_seq_state_load(b, 0, state.data(), state.size() / 2), HALYARD_ERROR_CORRUPT_FILE);
  EXPECT_NE(std::string(halyard_last_error()).find("truncated"), std::string::npos) << halyard_last_error();
  EXPECT_EQ(halyard_seq_pos_max(b, 0), -1);
  EXPECT_EQ(halyard_seq_state_load(b, 0, nullptr, 10), HALYARD_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(halyard_seq_state_load(b, 0, nullptr, 0), HALYARD_ERROR_CORRUPT_FILE);
  EXPECT_EQ(halyard_seq_state_size(a, 5, &size), HALYARD_ERROR_OUT_OF_RANGE);
  EXPECT_EQ(halyard_seq_state_size(nullptr, 0, &size), HALYARD_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(halyard_seq_state_save(a, 0, nullptr, 5, &n), HALYARD_ERROR_INVALID_ARGUMENT);
  halyard_context_free(a);
  halyard_context_free(b);
  halyard_model_free(m);
}
TEST(CApi, LoadErrorsAreClear) {
  halyard_model_options o;
  halyard_model_options_default(&o);
  o.device = "ref";
  halyard_model* m = nullptr;
  EXPECT_EQ(halyard_model_load("/nonexistent/model.gguf", &o, &m), HALYARD_ERROR_NOT_FOUND);
  EXPECT_EQ(m, nullptr);

  const std::string corrupt = ::testing::TempDir() + "/corrupt.gguf";
  std::ofstream(corrupt) << "GGUF but not really";
  EXPECT_EQ(halyard_model_load(corrupt.c_str(), &o, &m), HALYARD_ERROR_CORRUPT_FILE);
  EXPECT_NE(std::string(halyard_last_error()).find("GGUF"), std::string::npos);

  HALYARD_REQUIRE_MODEL(halyard::testing::default_model_path());
  o.device = "nosuch:0";
  EXPECT_EQ(halyard_model_load(halyard::testing::default_model_path().c_str(), &o, &m), HALYARD_ERROR_NOT_FOUND);
  EXPECT_NE(std::string(halyard_last_error()).find("nosuch"), std::string::npos);
  EXPECT_EQ(halyard_model_load(nullptr, &o, &m), HALYARD_ERROR_INVALID_ARGUMENT);
}

// A tiny byte-level BPE model whose tokenizer.ggml.pre Halyard does not know: the load fails
// with a message naming the known splits, and force_gpt2_split loads it with GPT-2's split.
TEST(CApi, UnknownPreTokenizerFailsUnlessGpt2SplitIsForced) {
  constexpr int kDim = 8, kVocab = 4;
  halyard::testing::GgufWriter w;
  w.add_string("general.architecture", "llama");
  w.add_u32("llama.block_count", 1);
  w.add_u32("llama.embedding_length", kDim);
  w.add_u32("llama.feed_forward_length", kDim);
  w.add_u32("llama.attention.head_count", 1);
  w.add_u32("llama.context_length", 16);
  w.add_f32("llama.attention.layer_norm_rms_epsilon", 1e-5f);
  w.add_string("tokenizer.ggml.model", "gpt2");
  w.add_string("tokenizer.ggml.pre", "mystery-bpe");
  w.add_string_array("tokenizer.ggml.tokens", {"a", "b", "c", "d"});
  w.add_string_array("tokenizer.ggml.merges", {});
  // F32 tensors (GGUF type 0) as raw bytes: constant rows, enough for a model that loads.
  auto f32 = [](std::size_t n, float value) {
    std::vector<std::uint8_t> raw(n * sizeof(float));
    for (std::size_t i = 0; i < n; ++i)
      std::memcpy(raw.data() + i * sizeof(float), &value, sizeof(float));
    return raw;
  };
  constexpr std::uint64_t d = kDim;
  w.add_raw_tensor("token_embd.weight", {d, kVocab}, 0, f32(kDim * kVocab, 0.5f));
  w.add_raw_tensor("output_norm.weight", {d}, 0, f32(kDim, 1.f));
  w.add_raw_tensor("blk.0.attn_norm.weight", {d}, 0, f32(kDim, 1.f));
  for (const char* name : {"attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"})
    w.add_raw_tensor(std::string("blk.0.") + name + ".weight", {d, d}, 0, f32(kDim * kDim, 0.f));
  w.add_raw_tensor("blk.0.ffn_norm.weight", {d}, 0, f32(kDim, 1.f));
  const std::string path = ::testing::TempDir() + "/mystery_pre_" + std::to_string(::getpid()) + ".gguf";
  const auto bytes = w.bytes();
  std::ofstream(path, std::ios::binary)
      .write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));

  halyard_model_options o;
  halyard_model_options_default(&o);
  o.device = "ref";
  EXPECT_EQ(o.force_gpt2_split, 0);
  halyard_model* m = nullptr;
  EXPECT_EQ(halyard_model_load(path.c_str(), &o, &m), HALYARD_ERROR_UNIMPLEMENTED);
  const std::string error = halyard_last_error();
  EXPECT_NE(error.find("unknown pre-tokenizer 'mystery-bpe'"), std::string::npos) << error;
  EXPECT_NE(error.find("qwen2"), std::string::npos) << error;
  EXPECT_EQ(m, nullptr);

  o.force_gpt2_split = 1;
  ASSERT_EQ(halyard_model_load(path.c_str(), &o, &m), HALYARD_OK) << halyard_last_error();
  int32_t ids[8];
  size_t n = 0;
  EXPECT_EQ(halyard_tokenize(m, "abcd", 4, 0, 0, ids, 8, &n), HALYARD_OK) << halyard_last_error();
  EXPECT_EQ(n, 4u);
  halyard_model_free(m);
  std::remove(path.c_str());
}

// Every backend's options through the C API, with the environment's current value; listing
// starts no backend (so it also works for unavailable ones).
TEST(CApi, ListsBackendOptions) {
  ::setenv("HALYARD_CPU_PREFILL", "tiles", 1);
  halyard_option_list* list = nullptr;
  ASSERT_EQ(halyard_list_options(&list), HALYARD_OK) << halyard_last_error();
  ::unsetenv("HALYARD_CPU_PREFILL");
  bool kernels = false, prefill = false;
  for (size_t i = 0; i < halyard_option_list_size(list); ++i) {
    const std::string key = halyard_option_list_key(list, i);
    EXPECT_EQ(key.rfind(std::string(halyard_option_list_backend(list, i)) + ".", 0), 0u) << key;
    EXPECT_NE(std::string(halyard_option_list_doc(list, i)), "") << key;
    if (key == "cpu.kernels") {
      kernels = true;
      EXPECT_STREQ(halyard_option_list_type(list, i), "enum");
      EXPECT_STREQ(halyard_option_list_default(list, i), "auto");
      EXPECT_STREQ(halyard_option_list_env(list, i), "HALYARD_CPU_KERNELS");
      EXPECT_NE(std::string(halyard_option_list_values(list, i)).find("avx2"), std::string::npos);
    }
    if (key == "cpu.prefill") {
      prefill = true;
      ASSERT_NE(halyard_option_list_current(list, i), nullptr);
      EXPECT_STREQ(halyard_option_list_current(list, i), "tiles");
    }
  }
  EXPECT_STREQ(halyard_option_list_key(list, 100000), "");
  EXPECT_EQ(halyard_option_list_current(list, 100000), nullptr);
  halyard_option_list_free(list);
  if (!kernels)
    GTEST_SKIP() << "the cpu plugin is not built";
  EXPECT_TRUE(prefill);
}

// halyard_model_options.backend_options: checked by the device's backend, and stronger than the
// environment.
TEST(CApi, BackendOptionsReachTheDevice) {
  HALYARD_REQUIRE_MODEL(halyard::testing::default_model_path());
  halyard_model_options o;
  halyard_model_options_default(&o);
  o.device = "cpu";
  o.context_length = 64;
  halyard_model* m = nullptr;
  const char* bogus[] = {"cpu.kernels=bogus", nullptr};
  o.backend_options = bogus;
  const halyard_status s = halyard_model_load(halyard::testing::default_model_path().c_str(), &o, &m);
  if (s == HALYARD_ERROR_NOT_FOUND)
    GTEST_SKIP() << "no cpu backend: " << halyard_last_error();
  EXPECT_EQ(s, HALYARD_ERROR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(halyard_last_error()).find("generic, avx2"), std::string::npos) << halyard_last_error();
  EXPECT_EQ(m, nullptr);

  const char* malformed[] = {"kernels", nullptr};
  o.backend_options = malformed;
  EXPECT_EQ(halyard_model_load(halyard::testing::default_model_path().c_str(), &o, &m), HALYARD_ERROR_INVALID_ARGUMENT);

  ::setenv("HALYARD_CPU_KERNELS", "bogus", 1);
  o.backend_options = nullptr;  // the environment alone: the same check
  EXPECT_EQ(halyard_model_load(halyard::testing::default_model_path().c_str(), &o, &m), HALYARD_ERROR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(halyard_last_error()).find("HALYARD_CPU_KERNELS"), std::string::npos) << halyard_last_error();
  const char* generic[] = {"cpu.kernels=generic", nullptr};
  o.backend_options = generic;  // explicit beats the environment
  const halyard_status loaded = halyard_model_load(halyard::testing::default_model_path().c_str(), &o, &m);
  ::unsetenv("HALYARD_CPU_KERNELS");
  ASSERT_EQ(loaded, HALYARD_OK) << halyard_last_error();
  halyard_model_free(m);
}

}  // namespace

namespace {

// halyard_quantize through the C API: the lines reach the callback, the file loads, and bad
// arguments are errors with messages.
TEST(CApiQuantize, WritesAModelThatLoadsAndReportsThroughTheCallback) {
  HALYARD_REQUIRE_MODEL(halyard::testing::default_model_path());
  const std::string out = "c_api_quantize." + std::to_string(::getpid()) + ".gguf";
  std::vector<std::string> lines;
  halyard_quantize_options o;
  halyard_quantize_options_default(&o);
  EXPECT_EQ(o.struct_size, sizeof o);
  EXPECT_EQ(o.threads, 0);
  EXPECT_EQ(o.pure, 0);
  o.on_message = [](const char* line, void* user) { static_cast<std::vector<std::string>*>(user)->push_back(line); };
  o.user_data = &lines;
  ASSERT_EQ(halyard_quantize(halyard::testing::default_model_path().c_str(), out.c_str(), "q4_0", &o), HALYARD_OK)
      << halyard_last_error();
  EXPECT_GE(lines.size(), 3u);
  bool summary = false;
  for (const auto& l : lines)
    summary |= l.find("q4_0") != std::string::npos && l.find("tensors") != std::string::npos;
  EXPECT_TRUE(summary);
  halyard_model_options mo;
  halyard_model_options_default(&mo);
  mo.device = "ref";
  mo.context_length = 64;
  halyard_model* m = nullptr;
  EXPECT_EQ(halyard_model_load(out.c_str(), &mo, &m), HALYARD_OK) << halyard_last_error();
  halyard_model_free(m);
  std::remove(out.c_str());
}

TEST(CApiQuantize, BadArgumentsAreErrors) {
  EXPECT_EQ(halyard_quantize(nullptr, "x.gguf", "Q4_0", nullptr), HALYARD_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(halyard_quantize("/nonexistent/in.gguf", "x.gguf", "Q4_0", nullptr), HALYARD_ERROR_NOT_FOUND);
  EXPECT_NE(std::string(halyard_last_error()).find("/nonexistent/in.gguf"), std::string::npos);
  EXPECT_EQ(halyard_quantize(halyard::testing::default_model_path().c_str(), "x.gguf", "Q4_X", nullptr),
            HALYARD_ERROR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(halyard_last_error()).find("Q4_K_M"), std::string::npos);
  halyard_quantize_options o;
  halyard_quantize_options_default(&o);
  o.threads = -1;
  EXPECT_EQ(halyard_quantize(halyard::testing::default_model_path().c_str(), "x.gguf", "Q4_0", &o),
            HALYARD_ERROR_INVALID_ARGUMENT);
  o.struct_size = 2;
  EXPECT_EQ(halyard_quantize(halyard::testing::default_model_path().c_str(), "x.gguf", "Q4_0", &o),
            HALYARD_ERROR_INVALID_ARGUMENT);
  EXPECT_FALSE(std::ifstream("x.gguf").good());
}

}  // namespace

namespace {

// Feeds a prompt to sequence 0 of a fresh one-sequence context (the last token asks for its
// output) and returns the step's status.
halyard_status feed(halyard_context* ctx, const std::vector<int32_t>& ids, int32_t first_pos, int32_t output) {
  std::vector<int32_t> pos(ids.size()), seqs(ids.size(), 0);
  std::iota(pos.begin(), pos.end(), first_pos);
  halyard_batch b{sizeof(halyard_batch), ids.size(), ids.data(), pos.data(), seqs.data(), nullptr, output};
  return halyard_context_step(ctx, &b);
}

std::vector<int32_t> tokenize_prompt(halyard_model* m, const char* text) {
  int32_t ids[64];
  size_t n = 0;
  EXPECT_EQ(halyard_tokenize(m, text, std::strlen(text), 1, 1, ids, 64, &n), HALYARD_OK) << halyard_last_error();
  return std::vector<int32_t>(ids, ids + n);
}

}  // namespace

// A greedy caller asks a step for the argmax only: same token as the logits' argmax, no logits
// downloaded, on every host device; an older halyard_batch (without `output`) gets logits.
TEST(CApi, ArgmaxStepsGiveTheLogitsArgmaxWithoutLogits) {
  HALYARD_REQUIRE_MODEL(halyard::testing::default_model_path());
  for (const char* device : {"ref", "cpu"}) {
    halyard_model* m = load(device, 64);
    ASSERT_NE(m, nullptr);
    halyard_context_options co;
    halyard_context_options_default(&co);
    halyard_context *with_logits = nullptr, *with_argmax = nullptr;
    ASSERT_EQ(halyard_context_create(m, &co, &with_logits), HALYARD_OK) << halyard_last_error();
    ASSERT_EQ(halyard_context_create(m, &co, &with_argmax), HALYARD_OK) << halyard_last_error();
    std::vector<int32_t> ids = tokenize_prompt(m, "The capital of France is");
    const size_t vocab = static_cast<size_t>(halyard_model_vocab_size(m));
    int32_t pos = 0;
    for (int step = 0; step < 4; ++step) {
      ASSERT_EQ(feed(with_logits, ids, pos, HALYARD_OUTPUT_LOGITS), HALYARD_OK) << halyard_last_error();
      ASSERT_EQ(feed(with_argmax, ids, pos, HALYARD_OUTPUT_ARGMAX), HALYARD_OK) << halyard_last_error();
      const size_t last = ids.size() - 1;
      const float* l = halyard_context_logits(with_logits, last);
      ASSERT_NE(l, nullptr);
      const auto want = static_cast<int32_t>(std::max_element(l, l + vocab) - l);
      EXPECT_EQ(halyard_context_argmax(with_logits, last), want) << device;  // either kind of step has it
      EXPECT_EQ(halyard_context_argmax(with_argmax, last), want) << device << " step " << step;
      EXPECT_EQ(halyard_context_logits(with_argmax, last), nullptr) << device;
      if (last > 0) {
        EXPECT_EQ(halyard_context_argmax(with_argmax, 0), -1) << "token 0 did not ask for an output";
      }
      EXPECT_EQ(halyard_context_argmax(with_argmax, ids.size()), -1);  // past the batch
      pos += static_cast<int32_t>(ids.size());
      ids = {want};
    }
    // The batch of a caller built before `output` existed: its struct_size ends at logits.
    const int32_t tok = ids[0], p = pos, seq = 0;
    halyard_batch old{offsetof(halyard_batch, output), 1, &tok, &p, &seq, nullptr, 7};  // 7 lies past its size
    ASSERT_EQ(halyard_context_step(with_argmax, &old), HALYARD_OK) << halyard_last_error();
    EXPECT_NE(halyard_context_logits(with_argmax, 0), nullptr);
    halyard_batch bad{sizeof(halyard_batch), 1, &tok, &p, &seq, nullptr, 2};
    EXPECT_EQ(halyard_context_step(with_logits, &bad), HALYARD_ERROR_INVALID_ARGUMENT);
    EXPECT_NE(std::string(halyard_last_error()).find("halyard_batch.output"), std::string::npos)
        << halyard_last_error();
    EXPECT_EQ(halyard_context_argmax(nullptr, 0), -1);
    halyard_context_free(with_logits);
    halyard_context_free(with_argmax);
    halyard_model_free(m);
  }
}

// The sampler chain over a context reproduces halyard_generate: same options (a seeded draw
// with temperature, top-k, top-p, min-p and penalties), same prompt, same tokens.
TEST(CApi, ASamplerOverAContextGivesGeneratesTokens) {
  HALYARD_REQUIRE_MODEL(halyard::testing::default_model_path());
  halyard_model* m = load("ref", 64);
  ASSERT_NE(m, nullptr);
  const char* prompt = "Once upon a time";
  halyard_generate_options go;
  halyard_generate_options_default(&go);
  go.max_tokens = 8;
  go.temperature = 0.9f;
  go.top_k = 30;
  go.top_p = 0.9f;
  go.min_p = 0.02f;
  go.seed = 1234;
  go.repeat_penalty = 1.2f;
  go.presence_penalty = 0.3f;
  Tokens want;
  ASSERT_EQ(halyard_generate(m, prompt, &go, collect_tokens, &want, nullptr), HALYARD_OK) << halyard_last_error();
  ASSERT_FALSE(want.ids.empty());

  halyard_sampler* s = nullptr;
  ASSERT_EQ(halyard_sampler_create(m, &go, &s), HALYARD_OK) << halyard_last_error();
  EXPECT_EQ(halyard_sampler_needs_logits(s), 1);
  halyard_context_options co;
  halyard_context_options_default(&co);
  halyard_context* ctx = nullptr;
  ASSERT_EQ(halyard_context_create(m, &co, &ctx), HALYARD_OK) << halyard_last_error();
  const size_t vocab = static_cast<size_t>(halyard_model_vocab_size(m));
  for (int round = 0; round < 2; ++round) {  // the second after a reset: the same draws again
    std::vector<int32_t> ids = tokenize_prompt(m, prompt), got;
    ASSERT_EQ(halyard_sampler_accept(s, ids.data(), ids.size()), HALYARD_OK);
    int32_t pos = 0;
    while (got.size() < static_cast<size_t>(go.max_tokens)) {
      ASSERT_EQ(feed(ctx, ids, pos, HALYARD_OUTPUT_LOGITS), HALYARD_OK) << halyard_last_error();
      pos += static_cast<int32_t>(ids.size());
      int32_t next = -1;
      ASSERT_EQ(halyard_sampler_sample(s, halyard_context_logits(ctx, ids.size() - 1), vocab, &next), HALYARD_OK);
      if (halyard_token_is_end_of_generation(m, next))
        break;
      ASSERT_EQ(halyard_sampler_accept(s, &next, 1), HALYARD_OK);
      got.push_back(next);
      ids = {next};
    }
    EXPECT_EQ(got, want.ids) << "round " << round;
    halyard_sampler_reset(s);
    ASSERT_EQ(halyard_seq_remove(ctx, 0, 0, -1), HALYARD_OK);
  }
  halyard_sampler_free(s);
  halyard_context_free(ctx);
  halyard_model_free(m);
}

TEST(CApi, SamplerArgumentsAreChecked) {
  HALYARD_REQUIRE_MODEL(halyard::testing::default_model_path());
  halyard_model* m = load("ref", 32);
  ASSERT_NE(m, nullptr);
  const size_t vocab = static_cast<size_t>(halyard_model_vocab_size(m));
  halyard_sampler* s = nullptr;
  // NULL options: the defaults, greedy: the argmax, and no logits needed.
  ASSERT_EQ(halyard_sampler_create(m, nullptr, &s), HALYARD_OK) << halyard_last_error();
  EXPECT_EQ(halyard_sampler_needs_logits(s), 0);
  std::vector<float> logits(vocab, 0.f);
  logits[123] = 5.f;
  int32_t t = -1;
  ASSERT_EQ(halyard_sampler_sample(s, logits.data(), vocab, &t), HALYARD_OK);
  EXPECT_EQ(t, 123);
  EXPECT_EQ(halyard_sampler_sample(s, logits.data(), vocab - 1, &t), HALYARD_ERROR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(halyard_last_error()).find("n_vocab"), std::string::npos) << halyard_last_error();
  EXPECT_EQ(halyard_sampler_sample(s, nullptr, vocab, &t), HALYARD_ERROR_INVALID_ARGUMENT);
  const int32_t outside = static_cast<int32_t>(vocab);
  EXPECT_EQ(halyard_sampler_accept(s, &outside, 1), HALYARD_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(halyard_sampler_accept(s, nullptr, 1), HALYARD_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(halyard_sampler_accept(s, nullptr, 0), HALYARD_OK);
  halyard_sampler_free(s);

  // A penalty with tokens in its window needs the logits, and changes the pick.
  halyard_generate_options go;
  halyard_generate_options_default(&go);
  go.presence_penalty = 10.f;
  ASSERT_EQ(halyard_sampler_create(m, &go, &s), HALYARD_OK) << halyard_last_error();
  EXPECT_EQ(halyard_sampler_needs_logits(s), 0);  // an empty window: still the argmax
  const int32_t seen = 123;
  ASSERT_EQ(halyard_sampler_accept(s, &seen, 1), HALYARD_OK);
  EXPECT_EQ(halyard_sampler_needs_logits(s), 1);
  logits[77] = 4.f;
  ASSERT_EQ(halyard_sampler_sample(s, logits.data(), vocab, &t), HALYARD_OK);
  EXPECT_EQ(t, 77);
  halyard_sampler_free(s);

  // Invalid options are refused naming the field, as halyard_generate refuses them.
  go.presence_penalty = 0.f;
  go.top_p = 0.f;
  EXPECT_EQ(halyard_sampler_create(m, &go, &s), HALYARD_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(s, nullptr);
  EXPECT_NE(std::string(halyard_last_error()).find("top-p"), std::string::npos) << halyard_last_error();
  go.top_p = 1.f;
  const int32_t bias_token = outside;
  const float bias_value = 1.f;
  go.logit_bias_tokens = &bias_token;
  go.logit_bias_values = &bias_value;
  go.n_logit_bias = 1;
  EXPECT_EQ(halyard_sampler_create(m, &go, &s), HALYARD_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(halyard_sampler_create(nullptr, &go, &s), HALYARD_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(halyard_sampler_create(m, &go, nullptr), HALYARD_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(halyard_sampler_needs_logits(nullptr), 0);
  halyard_sampler_reset(nullptr);
  halyard_sampler_free(nullptr);
  halyard_model_free(m);
}
