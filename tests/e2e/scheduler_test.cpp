// The continuous-batching scheduler on the real model: requests submitted at different steps,
// prefilled in chunks beside decoding ones, deferred and preempted when the KV cache is short,
// cancelled and submitted from other threads, all give the tokens generate() gives each of
// them alone on a Session, and no error escapes. Greedy tokens are exactly alone's on ref (its
// logits are batch invariant) and on cpu, where only a near-tie may part them (kCpuNearTieMargin).
#include "halyard/runtime/scheduler.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <map>
#include <string>
#include <thread>

#include "engine_test.h"
#include "halyard/runtime/generator.h"
#include "halyard/runtime/session.h"
#include "test_paths.h"

namespace halyard::runtime {
namespace {

// What a run gave one request.
struct Outcome {
  std::vector<TokenId> tokens;
  std::optional<FinishReason> finish;
  int finish_events = 0;
};

Request make_request(std::vector<TokenId> prompt, int max_tokens, bool stop_at_eog = true) {
  Request r;
  r.prompt = std::move(prompt);
  r.max_tokens = max_tokens;
  r.stop_at_end_of_generation = stop_at_eog;
  return r;  // SamplerOptions' default temperature 0: greedy
}

std::unique_ptr<Context> make_context(Model& m, int max_sequences, int max_batch_tokens, int n_blocks = 0) {
  ContextOptions o;
  o.max_sequences = max_sequences;
  o.max_batch_tokens = max_batch_tokens;
  o.n_blocks = n_blocks;
  auto c = Context::create(m, o);
  EXPECT_TRUE(c.is_ok()) << c.status().to_string();
  return c.is_ok() ? std::move(c).value() : nullptr;
}

std::unique_ptr<Scheduler> make_scheduler(Context& ctx, int max_batch_tokens, int chunk, int max_running = 0) {
  SchedulerOptions o;
  o.max_batch_tokens = max_batch_tokens;
  o.prefill_chunk = chunk;
  o.max_running = max_running;
  auto s = Scheduler::create(ctx, o);
  EXPECT_TRUE(s.is_ok()) << s.status().to_string();
  return s.is_ok() ? std::move(s).value() : nullptr;
}

// Records a step's events into the outcomes; fails the test on an error.
bool record(Scheduler& s, std::map<RequestId, Outcome>& out, StepEvents* step_out = nullptr) {
  auto step = s.step();
  EXPECT_TRUE(step.is_ok()) << step.status().to_string();
  if (!step.is_ok())
    return false;
  for (const RequestEvent& e : step->events) {
    Outcome& o = out[e.id];
    EXPECT_FALSE(o.finish.has_value()) << "request " << e.id << " has an event after its finish";
    o.tokens.insert(o.tokens.end(), e.tokens.begin(), e.tokens.end());
    EXPECT_EQ(e.generated_tokens, static_cast<int>(o.tokens.size())) << "request " << e.id;
    if (e.finish) {
      o.finish = e.finish;
      ++o.finish_events;
    }
  }
  if (step_out)
    *step_out = std::move(step).value();
  return true;
}

RequestId must_submit(Scheduler& s, const Request& r) {
  auto id = s.submit(r);
  EXPECT_TRUE(id.is_ok()) << id.status().to_string();
  return id.is_ok() ? id.value() : 0;
}

bool all_finished(const std::map<RequestId, Outcome>& out, std::size_t n) {
  return out.size() == n && std::all_of(out.begin(), out.end(), [](const auto& e) { return e.second.finish; });
}

class SchedulerTest : public testing::EngineModelTest {
 protected:
  // A prompt of `len` tokens starting `offset` tokens into an English text.
  std::vector<TokenId> prompt(int len, int offset = 0) const {
    static const std::string text =
        "The lighthouse keeper climbed the spiral stairs every evening at dusk, carrying a lamp, a "
        "notebook and a flask of tea. From the gallery he could see the harbour, the fishing boats "
        "returning with their nets, and the long grey line of the coast fading into the mist. He wrote "
        "down the wind, the colour of the sea and the names of the ships that passed, because his "
        "father had done the same for forty years before him.";
    const auto ids = model_->tokenizer().encode(text, false, false);
    EXPECT_GE(ids.size(), static_cast<std::size_t>(offset + len));
    return std::vector<TokenId>(ids.begin() + offset, ids.begin() + offset + len);
  }

  // What generate() gives the request alone on a fresh Session (stop tokens cut its output).
  Outcome alone(const Request& r) {
    auto session = Session::create(*model_);
    EXPECT_TRUE(session.is_ok()) << session.status().to_string();
    GenerateOptions go;
    go.max_tokens = r.max_tokens;
    go.sampler = r.sampler;
    go.stop_at_end_of_generation = r.stop_at_end_of_generation;
    auto res = generate(**session, r.prompt, go, nullptr);
    EXPECT_TRUE(res.is_ok()) << res.status().to_string();
    Outcome o;
    if (!res.is_ok())
      return o;
    for (TokenId t : res->tokens) {
      if (std::find(r.stop_tokens.begin(), r.stop_tokens.end(), t) != r.stop_tokens.end()) {
        o.finish = FinishReason::kStopToken;
        return o;
      }
      o.tokens.push_back(t);
    }
    switch (res->stop) {
      case StopReason::kMaxTokens:
        o.finish = FinishReason::kMaxTokens;
        break;
      case StopReason::kEndOfGeneration:
        o.finish = FinishReason::kEndOfGeneration;
        break;
      case StopReason::kContextFull:
        o.finish = FinishReason::kContextFull;
        break;
      case StopReason::kCancelled:
        o.finish = FinishReason::kCancelled;
        break;
    }
    return o;
  }

  // The logits generate() sampled from after `prefix` of its tokens: the prompt in one eval,
  // then one eval per token, as generate() runs (on cpu a one-token step and a prefill round
  // differently).
  std::vector<float> alone_logits(const Request& r, const std::vector<TokenId>& prefix) {
    auto session = Session::create(*model_);
    EXPECT_TRUE(session.is_ok()) << session.status().to_string();
    auto l = (*session)->eval(r.prompt);
    for (std::size_t i = 0; i < prefix.size() && l.is_ok(); ++i)
      l = (*session)->eval(std::span<const TokenId>(&prefix[i], 1));
    EXPECT_TRUE(l.is_ok()) << l.status().to_string();
    return l.is_ok() ? std::vector<float>(l->begin(), l->end()) : std::vector<float>{};
  }

  void expect_alone(const Request& r, const Outcome& got, const std::string& what) {
    const Outcome want = alone(r);
    ASSERT_TRUE(got.finish.has_value()) << what;
    EXPECT_EQ(got.finish_events, 1) << what;
    if (got.tokens == want.tokens) {
      EXPECT_EQ(finish_reason_name(*got.finish), std::string(finish_reason_name(*want.finish))) << what;
      return;
    }
    std::size_t k = 0;
    while (k < got.tokens.size() && k < want.tokens.size() && got.tokens[k] == want.tokens[k])
      ++k;
    if (exact() || k == got.tokens.size() || k == want.tokens.size()) {
      EXPECT_EQ(got.tokens, want.tokens) << what << " (prompt of " << r.prompt.size() << ")";
      return;
    }
    // cpu: the batched run picked another token at k. Only a near-tie of the alone run's logits
    // there may explain it; after it the two continuations are different texts.
    const auto l = alone_logits(r, std::vector<TokenId>(want.tokens.begin(), want.tokens.begin() + k));
    ASSERT_FALSE(l.empty());
    const double margin =
        double{l[static_cast<std::size_t>(want.tokens[k])]} - l[static_cast<std::size_t>(got.tokens[k])];
    std::printf("[ %s ] %s: greedy token %zu parts from alone (%d vs %d) at a top-two margin of %.4f\n",
                GetParam().c_str(), what.c_str(), k, got.tokens[k], want.tokens[k], margin);
    EXPECT_LT(margin, kCpuNearTieMargin) << what << ": token " << k << " differs from alone (" << got.tokens[k]
                                         << " vs " << want.tokens[k] << ") at a margin of " << margin;
  }
  bool exact() const { return GetParam() == "ref"; }
  // On cpu a token's logits depend on its batch (n > 1 tokens take other matrix kernels than one,
  // see context_test.cpp), so a batched greedy run may part from the alone one where the alone
  // run's top two logits nearly tie. Measured (AMD EPYC, SmolLM2-135M Q4_1): two partings in
  // these tests, at margins 0.018 and 0.009 (every other token equal); the bound leaves room for
  // other CPUs' kernels and is 3x below model_test.cpp's llama.cpp near-tie margin of 0.3.
  static constexpr double kCpuNearTieMargin = 0.1;
};

TEST_P(SchedulerTest, GreedyOutputsEqualEachRequestAlone) {
  // Six requests, the second longer than 3 chunks of 8, submitted at steps 0, 0, 1, 2, 2 and 4
  // into 4 seats: some wait for a seat, most steps mix prefill chunks and decodes.
  const std::vector<int> lengths{5, 30, 1, 12, 17, 3};
  const std::vector<int> offsets{0, 7, 40, 3, 20, 60};
  const std::vector<int> max_tokens{6, 5, 8, 4, 7, 6};
  const std::vector<int> submit_at{0, 0, 1, 2, 2, 4};
  std::vector<Request> requests;
  for (std::size_t i = 0; i < lengths.size(); ++i)
    requests.push_back(make_request(prompt(lengths[i], offsets[i]), max_tokens[i]));
  auto ctx = make_context(*model_, 4, 16);
  ASSERT_NE(ctx, nullptr);
  auto sched = make_scheduler(*ctx, 16, 8);
  ASSERT_NE(sched, nullptr);
  std::map<RequestId, Outcome> out;
  std::vector<RequestId> ids(requests.size());
  int context_steps = 0;
  for (int step = 0; step < 200 && !all_finished(out, requests.size()); ++step) {
    for (std::size_t i = 0; i < requests.size(); ++i) {
      if (submit_at[i] == step) {
        auto id = sched->submit(requests[i]);
        ASSERT_TRUE(id.is_ok()) << id.status().to_string();
        ids[i] = *id;
      }
    }
    StepEvents so;
    ASSERT_TRUE(record(*sched, out, &so));
    EXPECT_LE(so.decode_tokens + so.prefill_tokens, 16);
    context_steps += so.decode_tokens + so.prefill_tokens > 0 ? 1 : 0;
  }
  ASSERT_TRUE(all_finished(out, requests.size()));
  int prompt_total = 0, generated_total = 0;
  for (std::size_t i = 0; i < requests.size(); ++i) {
    expect_alone(requests[i], out[ids[i]], "request " + std::to_string(i));
    prompt_total += lengths[i];
    generated_total += static_cast<int>(out[ids[i]].tokens.size());
  }
  const SchedulerStats st = sched->stats();
  EXPECT_EQ(st.running, 0);
  EXPECT_EQ(st.waiting, 0);
  EXPECT_EQ(st.kv_blocks_used, 0);  // every finished request freed its sequence
  EXPECT_EQ(st.steps, static_cast<std::uint64_t>(context_steps));
  EXPECT_EQ(st.prompt_tokens, static_cast<std::uint64_t>(prompt_total));
  EXPECT_EQ(st.generated_tokens, static_cast<std::uint64_t>(generated_total));
  EXPECT_EQ(st.preemptions, 0U);
  EXPECT_EQ(st.recomputed_tokens, 0U);
  EXPECT_EQ(st.finished, requests.size());
  EXPECT_FALSE(sched->has_work());
}

TEST_P(SchedulerTest, ARepeatedPromptIsServedFromThePrefixCache) {
  // The same 40-token prompt twice, the second after the first finished: the second shares the
  // first's two full blocks and computes 8 tokens, with the same greedy output.
  const Request r = make_request(prompt(40, 2), 4);
  auto ctx = make_context(*model_, 2, 64);
  ASSERT_NE(ctx, nullptr);
  auto sched = make_scheduler(*ctx, 64, 64);
  ASSERT_NE(sched, nullptr);
  std::map<RequestId, Outcome> out;
  std::vector<Admission> admitted;
  auto run = [&]() -> RequestId {
    auto id = sched->submit(r);
    EXPECT_TRUE(id.is_ok()) << id.status().to_string();
    for (int step = 0; step < 50 && sched->has_work(); ++step) {
      StepEvents events;
      EXPECT_TRUE(record(*sched, out, &events));
      admitted.insert(admitted.end(), events.admitted.begin(), events.admitted.end());
    }
    return id.is_ok() ? *id : RequestId{};
  };
  const RequestId first = run();
  EXPECT_EQ(sched->stats().cached_tokens, 0U);
  EXPECT_EQ(sched->stats().prompt_tokens, 40U);
  const RequestId second = run();
  // Each was admitted once; the second found 32 of its 40 tokens cached.
  ASSERT_EQ(admitted.size(), 2U);
  EXPECT_EQ(admitted[0].id, first);
  EXPECT_TRUE(admitted[0].first);
  EXPECT_EQ(admitted[0].queried_tokens, 40);
  EXPECT_EQ(admitted[0].cached_tokens, 0);
  EXPECT_EQ(admitted[1].id, second);
  EXPECT_EQ(admitted[1].queried_tokens, 40);
  EXPECT_EQ(admitted[1].cached_tokens, 32);
  EXPECT_EQ(sched->stats().cached_tokens, 32U);
  EXPECT_EQ(sched->stats().prompt_tokens, 48U);  // the second computed 8
  EXPECT_EQ(ctx->prefix_hits(), 2);
  expect_alone(r, out[first], "first");
  expect_alone(r, out[second], "second");
}

TEST_P(SchedulerTest, LongPromptsArePrefilledInChunksWhileOthersDecode) {
  // A and B decode; then C (30 tokens) and D (25) arrive. Budget 12, chunks of 8: each step
  // carries A's and B's decode tokens first, then 8 of C's and the 2 left for D (FIFO up to the
  // budget), so C takes 4 steps and the running requests get one token in every one of them.
  auto ctx = make_context(*model_, 4, 12);
  ASSERT_NE(ctx, nullptr);
  auto sched = make_scheduler(*ctx, 12, 8);
  ASSERT_NE(sched, nullptr);
  std::vector<Request> requests{make_request(prompt(5), 7, false), make_request(prompt(3, 30), 7, false),
                                make_request(prompt(30, 10), 3, false), make_request(prompt(25, 45), 3, false)};
  std::map<RequestId, Outcome> out;
  const RequestId a = must_submit(*sched, requests[0]);
  const RequestId b = must_submit(*sched, requests[1]);
  StepEvents so;
  ASSERT_TRUE(record(*sched, out, &so));  // both prompts in one step
  EXPECT_EQ(so.prefill_tokens, 8);
  ASSERT_EQ(out[a].tokens.size(), 1U);
  ASSERT_EQ(out[b].tokens.size(), 1U);
  const RequestId c = must_submit(*sched, requests[2]);
  const RequestId d = must_submit(*sched, requests[3]);
  // Sequences are handed out from 0 up: A, B, C and D hold 0 to 3. C's and D's lengths after
  // each step are the chunks the step carried.
  std::vector<int> c_len, d_len;
  for (int step = 0; out[c].tokens.empty(); ++step) {
    ASSERT_LT(step, 10) << "C never got its first token";
    const std::size_t a_before = out[a].tokens.size(), b_before = out[b].tokens.size();
    ASSERT_TRUE(record(*sched, out, &so));
    EXPECT_EQ(out[a].tokens.size(), a_before + 1) << "A did not decode in step " << step;
    EXPECT_EQ(out[b].tokens.size(), b_before + 1) << "B did not decode in step " << step;
    EXPECT_EQ(so.decode_tokens, 2) << "step " << step;
    EXPECT_EQ(so.decode_tokens + so.prefill_tokens, 12) << "the budget is not filled in step " << step;
    c_len.push_back(ctx->kv().length(2).value());
    d_len.push_back(ctx->kv().length(3).value());
  }
  EXPECT_EQ(c_len, (std::vector<int>{8, 16, 24, 30})) << "C's prompt did not go in 4 chunks of at most 8";
  EXPECT_EQ(d_len, (std::vector<int>{2, 4, 6, 10})) << "D did not get what the budget left after C";
  EXPECT_TRUE(out[d].tokens.empty());
  for (int step = 0; step < 100 && !all_finished(out, 4); ++step)
    ASSERT_TRUE(record(*sched, out));
  ASSERT_TRUE(all_finished(out, 4));
  const RequestId ids[4] = {a, b, c, d};
  for (std::size_t i = 0; i < 4; ++i)
    expect_alone(requests[i], out[ids[i]], "request " + std::string(1, static_cast<char>('A' + i)));
}

TEST_P(SchedulerTest, TooFewKvBlocksDefersAndPreemptsButEveryRequestCompletes) {
  // 5 blocks of 16 positions (the least that holds one 64-position sequence) for 4 seats: the
  // first four prompts fit, but each request grows past 16 positions and needs a second block,
  // so the cache runs out; the latest admitted are preempted and recomputed, later requests wait.
  auto ctx = make_context(*model_, 4, 16, 5);
  ASSERT_NE(ctx, nullptr);
  auto sched = make_scheduler(*ctx, 16, 8);
  ASSERT_NE(sched, nullptr);
  std::vector<Request> requests;
  const std::vector<int> lengths{12, 10, 14, 9, 6, 11};
  const std::vector<int> max_tokens{14, 12, 10, 16, 8, 9};
  for (std::size_t i = 0; i < lengths.size(); ++i)
    requests.push_back(make_request(prompt(lengths[i], static_cast<int>(i) * 9), max_tokens[i], false));
  std::map<RequestId, Outcome> out;
  std::vector<RequestId> ids;
  for (std::size_t i = 0; i < 4; ++i)
    ids.push_back(must_submit(*sched, requests[i]));
  int preempted = 0;
  for (int step = 0; step < 400 && !all_finished(out, requests.size()); ++step) {
    if (step == 3) {
      ids.push_back(must_submit(*sched, requests[4]));
      ids.push_back(must_submit(*sched, requests[5]));
    }
    StepEvents so;
    ASSERT_TRUE(record(*sched, out, &so));
    preempted += so.preempted;
  }
  ASSERT_TRUE(all_finished(out, requests.size()));
  for (std::size_t i = 0; i < requests.size(); ++i)
    expect_alone(requests[i], out[ids[i]], "request " + std::to_string(i));
  const SchedulerStats st = sched->stats();
  EXPECT_GT(st.preemptions, 0U) << "the cache never ran short: the test does not test preemption";
  EXPECT_EQ(st.preemptions, static_cast<std::uint64_t>(preempted));
  EXPECT_GT(st.recomputed_tokens, 0U);
  EXPECT_EQ(st.kv_blocks_used, 0);
  std::printf("[ %s ] %llu preemptions, %llu tokens recomputed, %llu steps\n", GetParam().c_str(),
              static_cast<unsigned long long>(st.preemptions), static_cast<unsigned long long>(st.recomputed_tokens),
              static_cast<unsigned long long>(st.steps));
}

TEST_P(SchedulerTest, CancelFromAnotherThreadEndsTheRequestWithinAStep) {
  auto ctx = make_context(*model_, 3, 16);
  ASSERT_NE(ctx, nullptr);
  auto sched = make_scheduler(*ctx, 16, 8);
  ASSERT_NE(sched, nullptr);
  std::vector<Request> requests{make_request(prompt(6), 8, false), make_request(prompt(9, 12), 30, false),
                                make_request(prompt(4, 25), 7, false)};
  std::map<RequestId, Outcome> out;
  std::vector<RequestId> ids;
  for (const Request& r : requests)
    ids.push_back(must_submit(*sched, r));
  for (int step = 0; out[ids[1]].tokens.size() < 2; ++step) {
    ASSERT_LT(step, 10);
    ASSERT_TRUE(record(*sched, out));
  }
  const std::size_t before = out[ids[1]].tokens.size();
  // The cancel races with a step: it lands in that step or, at the latest, the next one.
  std::atomic<bool> go{false};
  std::thread canceller([&] {
    while (!go.load())
      std::this_thread::yield();
    EXPECT_TRUE(sched->cancel(ids[1]).is_ok());
  });
  go.store(true);
  ASSERT_TRUE(record(*sched, out));
  canceller.join();
  ASSERT_TRUE(record(*sched, out));  // the first step to start after cancel() returned
  ASSERT_TRUE(out[ids[1]].finish.has_value());
  EXPECT_EQ(*out[ids[1]].finish, FinishReason::kCancelled);
  // Cancelled at the start of the racing step (no new token) or of the next (one).
  EXPECT_LE(out[ids[1]].tokens.size(), before + 1);
  EXPECT_EQ(sched->cancel(ids[1]).code(), StatusCode::kNotFound);  // its finish is out
  for (int step = 0; step < 100 && !all_finished(out, 3); ++step)
    ASSERT_TRUE(record(*sched, out));
  EXPECT_EQ(out[ids[1]].finish_events, 1);
  expect_alone(requests[0], out[ids[0]], "request 0");
  expect_alone(requests[2], out[ids[2]], "request 2");
  EXPECT_EQ(sched->stats().cancelled, 1U);
  EXPECT_EQ(ctx->blocks_used(), 0);

  // A waiting request (one seat, taken) is cancelled before it ever runs.
  sched.reset();  // the context is for one scheduler at a time
  auto one_seat = make_scheduler(*ctx, 16, 8, 1);
  ASSERT_NE(one_seat, nullptr);
  std::map<RequestId, Outcome> out2;
  const RequestId first = must_submit(*one_seat, make_request(prompt(4), 3, false));
  const RequestId second = must_submit(*one_seat, make_request(prompt(5), 3, false));
  ASSERT_TRUE(record(*one_seat, out2));
  EXPECT_EQ(one_seat->stats().waiting, 1);
  ASSERT_TRUE(one_seat->cancel(second).is_ok());
  ASSERT_TRUE(record(*one_seat, out2));
  ASSERT_TRUE(out2[second].finish.has_value());
  EXPECT_EQ(*out2[second].finish, FinishReason::kCancelled);
  EXPECT_TRUE(out2[second].tokens.empty());
  EXPECT_FALSE(out2[first].finish.has_value());
}

TEST_P(SchedulerTest, SubmitFromAnotherThreadWhileStepping) {
  auto ctx = make_context(*model_, 4, 16);
  ASSERT_NE(ctx, nullptr);
  auto sched = make_scheduler(*ctx, 16, 8);
  ASSERT_NE(sched, nullptr);
  std::vector<Request> requests;
  for (int i = 0; i < 5; ++i)
    requests.push_back(make_request(prompt(3 + 4 * i, 5 * i), 5));
  std::vector<RequestId> ids(requests.size());
  ids[0] = must_submit(*sched, requests[0]);
  // The engine thread (this one) steps until all five are done; the "HTTP" thread submits the
  // other four, one every few milliseconds, while steps run.
  std::thread submitter([&] {
    for (std::size_t i = 1; i < requests.size(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(3));
      auto id = sched->submit(requests[i]);
      EXPECT_TRUE(id.is_ok()) << id.status().to_string();
      ids[i] = id.is_ok() ? *id : 0;
    }
  });
  std::map<RequestId, Outcome> out;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(5);
  while (!all_finished(out, requests.size()) && std::chrono::steady_clock::now() < deadline) {
    if (!sched->wait_for_work(std::chrono::milliseconds(50)))
      continue;
    ASSERT_TRUE(record(*sched, out));
  }
  submitter.join();
  ASSERT_TRUE(all_finished(out, requests.size()));
  for (std::size_t i = 0; i < requests.size(); ++i)
    expect_alone(requests[i], out[ids[i]], "request " + std::to_string(i));
}

TEST_P(SchedulerTest, StopTokensContextFullAndSampledRequestsMatchGenerate) {
  auto ctx = make_context(*model_, 3, 64);
  ASSERT_NE(ctx, nullptr);
  auto sched = make_scheduler(*ctx, 64, 16);
  ASSERT_NE(sched, nullptr);
  std::vector<Request> requests;
  // A stop token: the third token generate() gives it alone; it ends the request where it
  // first occurs (the third token, or earlier if it repeats one).
  Request stop = make_request(prompt(7, 2), 8, false);
  const Outcome free_run = alone(stop);
  ASSERT_GE(free_run.tokens.size(), 3U);
  stop.stop_tokens = {free_run.tokens[2]};
  const auto stop_at = static_cast<std::size_t>(
      std::find(free_run.tokens.begin(), free_run.tokens.end(), free_run.tokens[2]) - free_run.tokens.begin());
  requests.push_back(stop);
  // 60 prompt tokens in a 64-position context: the 5th generated token fills it.
  requests.push_back(make_request(prompt(60, 3), 20, false));
  // Sampled with a seed and penalties (ref only: on cpu batched logits differ by rounding, and
  // a draw may then part at a near-tie of the distribution).
  if (GetParam() == "ref") {
    Request sampled = make_request(prompt(11, 30), 10, false);
    sampled.sampler.temperature = 0.9f;
    sampled.sampler.top_k = 20;
    sampled.sampler.seed = 1234;
    sampled.sampler.repeat_penalty = 1.2f;
    requests.push_back(sampled);
  }
  std::vector<RequestId> ids;
  for (const Request& r : requests)
    ids.push_back(must_submit(*sched, r));
  std::map<RequestId, Outcome> out;
  for (int step = 0; step < 100 && !all_finished(out, requests.size()); ++step)
    ASSERT_TRUE(record(*sched, out));
  ASSERT_TRUE(all_finished(out, requests.size()));
  for (std::size_t i = 0; i < requests.size(); ++i)
    expect_alone(requests[i], out[ids[i]], "request " + std::to_string(i));
  EXPECT_EQ(*out[ids[0]].finish, FinishReason::kStopToken);
  EXPECT_EQ(out[ids[0]].tokens, std::vector<TokenId>(free_run.tokens.begin(), free_run.tokens.begin() + stop_at));
  EXPECT_EQ(*out[ids[1]].finish, FinishReason::kContextFull);
  EXPECT_EQ(out[ids[1]].tokens.size(), 5U);
}

TEST_P(SchedulerTest, LogprobsComeWithEveryTokenFromTheRawDistribution) {
  auto ctx = make_context(*model_, 2, 32);
  ASSERT_NE(ctx, nullptr);
  auto sched = make_scheduler(*ctx, 32, 16);
  ASSERT_NE(sched, nullptr);
  // The same prompt with and without log-probabilities, one after the other (the same batch
  // shapes, so the same logits on every device).
  auto run = [&](int logprobs) {
    Request r = make_request(prompt(9, 5), 6, false);
    r.logprobs = logprobs;
    const RequestId id = must_submit(*sched, r);
    std::vector<TokenId> tokens;
    bool finished = false;
    for (int step = 0; step < 50 && !finished; ++step) {
      auto events = sched->step();
      EXPECT_TRUE(events.is_ok()) << events.status().to_string();
      if (!events.is_ok())
        break;
      for (const RequestEvent& e : events->events) {
        EXPECT_EQ(e.id, id);
        finished = finished || e.finish.has_value();
        tokens.insert(tokens.end(), e.tokens.begin(), e.tokens.end());
        if (logprobs < 0) {
          EXPECT_TRUE(e.logprobs.empty());
          continue;
        }
        EXPECT_EQ(e.logprobs.size(), e.tokens.size());
        for (std::size_t i = 0; i < std::min(e.tokens.size(), e.logprobs.size()); ++i) {
          const TokenLogprobs& lp = e.logprobs[i];
          EXPECT_EQ(lp.top.size(), static_cast<std::size_t>(logprobs));
          if (lp.top.empty())
            continue;
          // Greedy: the token is the most likely one, so its log-probability heads the list.
          EXPECT_EQ(lp.top[0].token, e.tokens[i]);
          EXPECT_FLOAT_EQ(lp.top[0].logprob, lp.logprob);
          EXPECT_LE(lp.logprob, 0.f);
          double mass = 0;
          for (std::size_t j = 0; j < lp.top.size(); ++j) {
            mass += std::exp(lp.top[j].logprob);
            if (j > 0) {
              EXPECT_GE(lp.top[j - 1].logprob, lp.top[j].logprob);
            }
          }
          EXPECT_LE(mass, 1.0 + 1e-5);
        }
      }
    }
    EXPECT_TRUE(finished);
    return tokens;
  };
  const std::vector<TokenId> with = run(4);
  EXPECT_EQ(with.size(), 6U);
  // Asking for log-probabilities does not change the tokens.
  EXPECT_EQ(with, run(-1));
  Request bad = make_request(prompt(3, 1), 2);
  bad.logprobs = kMaxTopLogprobs + 1;
  EXPECT_EQ(sched->submit(bad).status().code(), StatusCode::kInvalidArgument);
}

TEST_P(SchedulerTest, BadRequestsAndOptionsAreClearErrors) {
  auto ctx = make_context(*model_, 2, 16);
  ASSERT_NE(ctx, nullptr);
  {
    SchedulerOptions o;
    o.max_batch_tokens = 32;  // more than the context's 16
    EXPECT_EQ(Scheduler::create(*ctx, o).status().code(), StatusCode::kInvalidArgument);
    o = {};
    o.max_running = 3;  // more than the context's 2 sequences
    EXPECT_EQ(Scheduler::create(*ctx, o).status().code(), StatusCode::kInvalidArgument);
    o = {};
    o.prefill_chunk = -1;
    EXPECT_EQ(Scheduler::create(*ctx, o).status().code(), StatusCode::kInvalidArgument);
    o = {};
    o.max_batch_tokens = 1;
    o.max_running = 2;  // two decodes cannot fit a budget of one token
    EXPECT_EQ(Scheduler::create(*ctx, o).status().code(), StatusCode::kInvalidArgument);
  }
  {
    auto small = make_context(*model_, 2, 16, 3);  // 3 blocks cannot hold one 64-position sequence
    ASSERT_NE(small, nullptr);
    const auto s = Scheduler::create(*small, {});
    EXPECT_EQ(s.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(s.status().message().find("n_blocks >= 4"), std::string::npos) << s.status().message();
  }
  {
    auto used = make_context(*model_, 2, 16);
    ASSERT_NE(used, nullptr);
    const BatchToken t{1, 1, 0, false};
    ASSERT_TRUE(used->step({&t, 1}).is_ok());
    EXPECT_EQ(Scheduler::create(*used, {}).status().code(), StatusCode::kFailedPrecondition);
  }
  SchedulerOptions o;
  o.max_waiting = 2;
  auto sched_r = Scheduler::create(*ctx, o);
  ASSERT_TRUE(sched_r.is_ok()) << sched_r.status().to_string();
  Scheduler& sched = **sched_r;
  // An idle step runs nothing and reports nothing.
  auto idle = sched.step();
  ASSERT_TRUE(idle.is_ok());
  EXPECT_TRUE(idle->events.empty());
  EXPECT_EQ(sched.stats().steps, 0U);

  auto code = [&](Request r) { return sched.submit(std::move(r)).status().code(); };
  EXPECT_EQ(code(make_request({}, 4)), StatusCode::kInvalidArgument);
  EXPECT_EQ(code(make_request(std::vector<TokenId>(kContextLength + 1, 1), 4)), StatusCode::kOutOfRange);
  const int vocab = model_->config().vocab_size;
  EXPECT_EQ(code(make_request({1, vocab, 2}, 4)), StatusCode::kInvalidArgument);
  EXPECT_EQ(code(make_request({1, -3}, 4)), StatusCode::kInvalidArgument);
  EXPECT_EQ(code(make_request({1, 2}, 0)), StatusCode::kInvalidArgument);
  Request bad_stop = make_request({1, 2}, 4);
  bad_stop.stop_tokens = {vocab + 5};
  EXPECT_EQ(code(bad_stop), StatusCode::kInvalidArgument);
  Request bad_sampler = make_request({1, 2}, 4);
  bad_sampler.sampler.temperature = -1.f;
  const auto bs = sched.submit(bad_sampler);
  EXPECT_EQ(bs.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bs.status().message().find("temperature"), std::string::npos) << bs.status().message();
  Request bad_bias = make_request({1, 2}, 4);
  bad_bias.sampler.logit_bias = {{vocab, 1.f}};
  EXPECT_EQ(code(bad_bias), StatusCode::kInvalidArgument);
  EXPECT_EQ(sched.cancel(12345).code(), StatusCode::kNotFound);
  EXPECT_EQ(sched.cancel(0).code(), StatusCode::kNotFound);
  // None of those was queued; a prompt of exactly the context length is fine; max_waiting holds.
  EXPECT_FALSE(sched.has_work());
  EXPECT_TRUE(sched.submit(make_request(std::vector<TokenId>(kContextLength, 1), 1)).is_ok());
  EXPECT_TRUE(sched.submit(make_request({1, 2}, 1)).is_ok());
  EXPECT_EQ(code(make_request({1, 2}, 1)), StatusCode::kResourceExhausted);
  EXPECT_EQ(sched.stats().waiting, 2);
  EXPECT_TRUE(sched.has_work());
}

INSTANTIATE_TEST_SUITE_P(Devices, SchedulerTest, ::testing::ValuesIn(halyard::testing::engine_test_devices()),
                         [](const auto& info) { return halyard::testing::device_test_name(info.param); });

}  // namespace
}  // namespace halyard::runtime
