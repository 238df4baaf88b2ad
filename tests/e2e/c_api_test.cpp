// The public C API, end to end on the reference device, including its error paths.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <string>
#include <vector>

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

  const halyard_chat_message msg{"user", "Hi"};
  std::string chat(512, '\0');
  ASSERT_EQ(halyard_apply_chat_template(m, &msg, 1, chat.data(), chat.size(), &n), HALYARD_OK);
  chat.resize(n);
  EXPECT_TRUE(chat.starts_with("<|im_start|>system\n")) << chat;
  EXPECT_TRUE(chat.ends_with("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n")) << chat;
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

  Collected stop;
  stop.stop_after = 1;
  EXPECT_EQ(halyard_generate(m, "The capital of France is", &go, collect, &stop, nullptr), HALYARD_ERROR_CANCELLED);
  EXPECT_EQ(stop.calls, 1);
  halyard_model_free(m);
}

TEST(CApi, PromptLongerThanContextIsOutOfRange) {
  HALYARD_REQUIRE_MODEL(halyard::testing::default_model_path());
  halyard_model* m = load("ref", 4);
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(halyard_generate(m, "one two three four five six seven", nullptr, nullptr, nullptr, nullptr),
            HALYARD_ERROR_OUT_OF_RANGE);
  EXPECT_NE(std::string(halyard_last_error()).find("context"), std::string::npos);
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

TEST(CApi, SessionEvalAndKvCacheFull) {
  HALYARD_REQUIRE_MODEL(halyard::testing::default_model_path());
  halyard_model* m = load("ref", 8);
  ASSERT_NE(m, nullptr);
  EXPECT_GT(halyard_model_weight_bytes(m), 90u << 20);
  EXPECT_GT(halyard_model_parameter_count(m), 130000000u);
  EXPECT_EQ(halyard_model_kv_bytes_per_token(m), 2u * 30 * 64 * 3 * 4);
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

}  // namespace
