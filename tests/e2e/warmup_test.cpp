// Scheduler::warm_up on the real model: it compiles the decode batch shapes and a prefill chunk
// so that the steps of the requests after it compile nothing, prefaults the KV cache on host
// devices, leaves no sequence, cached block or counter behind, and changes no request's tokens.
// And a leak check: serving the same requests again leaves no more heap in use than before.
#include <gtest/gtest.h>
#include <malloc.h>

#include <map>
#include <string>

#include "engine_test.h"
#include "halyard/runtime/scheduler.h"

namespace halyard::runtime {
namespace {

constexpr int kSeats = 4;
constexpr int kChunk = 16;

class WarmupTest : public halyard::testing::EngineModelTest {
 protected:
  std::unique_ptr<Context> make_context() {
    ContextOptions o;
    o.max_sequences = kSeats;
    o.max_batch_tokens = 32;
    auto c = Context::create(*model_, o);
    EXPECT_TRUE(c.is_ok()) << c.status().to_string();
    return c.is_ok() ? std::move(c).value() : nullptr;
  }
  static std::unique_ptr<Scheduler> make_scheduler(Context& ctx) {
    SchedulerOptions o;
    o.max_batch_tokens = 32;
    o.prefill_chunk = kChunk;
    auto s = Scheduler::create(ctx, o);
    EXPECT_TRUE(s.is_ok()) << s.status().to_string();
    return s.is_ok() ? std::move(s).value() : nullptr;
  }
  bool host() const { return GetParam() == "cpu" || GetParam() == "ref"; }
};

Request greedy(std::vector<TokenId> prompt, int max_tokens) {
  Request r;
  r.prompt = std::move(prompt);
  r.max_tokens = max_tokens;
  r.stop_at_end_of_generation = false;  // every request runs its max_tokens: steps of known shapes
  return r;
}

// Steps until idle; returns each request's tokens.
std::map<RequestId, std::vector<TokenId>> drain(Scheduler& s) {
  std::map<RequestId, std::vector<TokenId>> out;
  for (int i = 0; i < 1000 && s.has_work(); ++i) {
    auto step = s.step();
    EXPECT_TRUE(step.is_ok()) << step.status().to_string();
    if (!step.is_ok())
      break;
    for (const RequestEvent& e : step->events)
      out[e.id].insert(out[e.id].end(), e.tokens.begin(), e.tokens.end());
  }
  EXPECT_FALSE(s.has_work());
  return out;
}

// Four one-token prompts admitted together and decoding together (batches of 4, then fewer as
// none finishes early: all run 6 tokens), then a prompt of exactly one chunk alone.
std::map<RequestId, std::vector<TokenId>> run_requests(Scheduler& s) {
  for (int i = 0; i < kSeats; ++i)
    EXPECT_TRUE(s.submit(greedy({static_cast<TokenId>(100 + 37 * i)}, 6)).is_ok());
  auto out = drain(s);
  std::vector<TokenId> prompt;
  for (int i = 0; i < kChunk; ++i)
    prompt.push_back(static_cast<TokenId>(200 + 11 * i));
  EXPECT_TRUE(s.submit(greedy(prompt, 5)).is_ok());
  for (auto& [id, tokens] : drain(s))
    out[id] = tokens;
  return out;
}

TEST_P(WarmupTest, CompilesTheDecodeBatchesAndAChunkAndLeavesNothingBehind) {
  auto ctx = make_context();
  ASSERT_NE(ctx, nullptr);
  auto sched = make_scheduler(*ctx);
  ASSERT_NE(sched, nullptr);
  auto report = sched->warm_up();
  ASSERT_TRUE(report.is_ok()) << report.status().to_string();
  EXPECT_EQ(report->decode_batches, kSeats);
  EXPECT_EQ(report->prefill_tokens, kChunk);
  EXPECT_EQ(static_cast<std::size_t>(report->graphs_compiled), ctx->compiled_graphs());
  if (host()) {
    // Decode batches 1..4 and the chunk: five shapes (GPU devices bucket them into fewer), and
    // the whole cache written.
    EXPECT_EQ(report->graphs_compiled, kSeats + 1);
    EXPECT_EQ(report->kv_bytes_prefaulted, static_cast<std::uint64_t>(ctx->blocks_total()) * ctx->kv_bytes_per_block());
  } else {
    EXPECT_GE(report->graphs_compiled, 1);
    EXPECT_EQ(report->kv_bytes_prefaulted, 0u);
  }
  EXPECT_GE(report->seconds, 0.0);
  EXPECT_EQ(ctx->blocks_used(), 0);
  EXPECT_EQ(ctx->kv().blocks_cached(), 0);
  for (int s = 0; s < kSeats; ++s)
    EXPECT_TRUE(ctx->tokens(s).empty()) << "sequence " << s;
  const SchedulerStats st = sched->stats();
  EXPECT_EQ(st.steps, 0u);
  EXPECT_EQ(st.prompt_tokens, 0u);
  EXPECT_EQ(ctx->prefix_hits(), 0);

  // The requests' steps are the warmed shapes only: nothing more is compiled.
  const std::size_t warmed = ctx->compiled_graphs();
  const auto warm_tokens = run_requests(*sched);
  EXPECT_EQ(ctx->compiled_graphs(), warmed) << "a step after the warm-up compiled a new graph";

  // And the tokens are those of a scheduler that never warmed up.
  auto cold_ctx = make_context();
  ASSERT_NE(cold_ctx, nullptr);
  auto cold = make_scheduler(*cold_ctx);
  ASSERT_NE(cold, nullptr);
  EXPECT_EQ(run_requests(*cold), warm_tokens);
}

TEST_P(WarmupTest, IsRefusedOnceARequestWasSubmitted) {
  auto ctx = make_context();
  ASSERT_NE(ctx, nullptr);
  auto sched = make_scheduler(*ctx);
  ASSERT_NE(sched, nullptr);
  ASSERT_TRUE(sched->submit(greedy({1, 2, 3}, 2)).is_ok());
  auto report = sched->warm_up();
  ASSERT_FALSE(report.is_ok());
  EXPECT_EQ(report.status().code(), StatusCode::kFailedPrecondition);
  drain(*sched);
  EXPECT_EQ(sched->warm_up().status().code(), StatusCode::kFailedPrecondition);
}

TEST_P(WarmupTest, CompiledGraphsStayWithinTheLimitAndAFreedShapeComputesTheSameAgain) {
  ContextOptions o;
  o.max_sequences = 1;
  o.max_batch_tokens = 32;
  o.max_compiled_graphs = 2;
  o.prefix_cache = false;
  auto ctx = Context::create(*model_, o);
  ASSERT_TRUE(ctx.is_ok()) << ctx.status().to_string();
  Context& c = **ctx;
  // A prompt of n tokens in one step: a graph of n tokens, one output. Lengths 3, 5, 7, 9, then
  // 3 again, long after it was freed.
  auto last_logits = [&](int n) {
    std::vector<BatchToken> batch;
    for (int p = 0; p < n; ++p)
      batch.push_back(BatchToken{static_cast<TokenId>(300 + 13 * p), 0, p, p + 1 == n});
    const Status st = c.step(batch);
    EXPECT_TRUE(st.is_ok()) << st.to_string();
    auto l = c.logits(n - 1);
    std::vector<float> out(l.begin(), l.end());
    EXPECT_TRUE(c.release(0).is_ok());
    return out;
  };
  const std::vector<float> first = last_logits(3);
  ASSERT_FALSE(first.empty());
  for (int n : {5, 7, 9}) {
    EXPECT_FALSE(last_logits(n).empty());
    EXPECT_LE(c.compiled_graphs(), 2u) << "after a step of " << n << " tokens";
  }
  EXPECT_EQ(last_logits(3), first) << "the shape compiled again computes other logits";
  EXPECT_EQ(c.compiled_graphs(), 2u);
  o.max_compiled_graphs = -1;
  EXPECT_EQ(Context::create(*model_, o).status().code(), StatusCode::kInvalidArgument);
}

// Bytes the heap holds for the program: the arenas' allocated chunks and the mmapped ones.
std::size_t heap_in_use() {
  const struct mallinfo2 m = mallinfo2();
  return m.uordblks + m.hblkhd;
}

TEST_P(WarmupTest, ServingTheSameRequestsAgainKeepsNoMoreHeap) {
  // Heap kept per request is a property of the engine, not of the device's arithmetic: the
  // five rounds take ~140 s on ref's scalar kernels, so the check runs where they take seconds.
  if (GetParam() == "ref")
    GTEST_SKIP() << "the heap check runs on cpu (five rounds of requests take ~140 s on ref)";
  auto ctx = make_context();
  ASSERT_NE(ctx, nullptr);
  auto sched = make_scheduler(*ctx);
  ASSERT_NE(sched, nullptr);
  ASSERT_TRUE(sched->warm_up().is_ok());
  // The first round may grow what is kept by design (the prefix cache's blocks, scratch sized by
  // the longest sequence); rounds two and three see the same cache hits and the same shapes, so
  // any growth between them is memory kept per request.
  run_requests(*sched);
  run_requests(*sched);
  const std::size_t before = heap_in_use();
  for (int round = 0; round < 3; ++round)
    run_requests(*sched);
  const std::size_t after = heap_in_use();
  EXPECT_LE(after, before + 4096) << "three rounds of the same 5 requests kept " << (after - before)
                                  << " more bytes of heap (" << before << " -> " << after << ")";
}

INSTANTIATE_TEST_SUITE_P(Devices, WarmupTest, ::testing::ValuesIn(halyard::testing::engine_test_devices()),
                         [](const auto& info) { return halyard::testing::device_test_name(info.param); });

}  // namespace
}  // namespace halyard::runtime
