// The paged KV cache's bookkeeping (free list, reference counts, block tables) and its
// copy-on-write block copy, on the reference device.
#include "halyard/runtime/kv_cache.h"

#include <gtest/gtest.h>

#include <numeric>

#include "test_registry.h"

namespace halyard::runtime {
namespace {

class KvCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    registry_ = testing::load_registry();
    ASSERT_NE(registry_, nullptr);
    auto d = registry_->open_device("ref");
    ASSERT_TRUE(d.is_ok()) << d.status().to_string();
    device_ = std::move(d).value();
  }
  std::unique_ptr<KvCache> make(int n_blocks, int max_sequences = 4, int max_positions = 64) {
    KvCacheOptions o;
    o.n_layers = 2;
    o.kv_dim = 3;
    o.max_sequences = max_sequences;
    o.max_positions = max_positions;
    o.n_blocks = n_blocks;
    o.block_size = 4;
    auto c = KvCache::create(*device_, o);
    EXPECT_TRUE(c.is_ok()) << c.status().to_string();
    return c.is_ok() ? std::move(c).value() : nullptr;
  }
  std::unique_ptr<BackendRegistry> registry_;
  std::unique_ptr<Device> device_;
};

std::vector<std::int32_t> blocks_of(const KvCache& c, int seq) {
  auto b = c.blocks(seq);
  EXPECT_TRUE(b.is_ok());
  return b.is_ok() ? std::vector<std::int32_t>(b.value().begin(), b.value().end()) : std::vector<std::int32_t>{};
}

TEST_F(KvCacheTest, DefaultCapacityIsOneFullContextPerSequence) {
  auto c = make(0, 3, 10);  // 10 positions -> 3 blocks of 4
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->max_blocks_per_sequence(), 3);
  EXPECT_EQ(c->blocks_total(), 9);
  EXPECT_EQ(c->blocks_used(), 0);
  EXPECT_EQ(c->block_size(), 4);
  EXPECT_EQ(c->pool_desc(), TensorDesc::make(DType::kF32, 3, 4, 9));
  EXPECT_EQ(c->table().size(), 9u);
  EXPECT_EQ(c->k(0).size(), 9u * 4 * 3 * sizeof(float));
}

TEST_F(KvCacheTest, BlocksAreAllocatedAsASequenceGrowsAndFreedOnRelease) {
  auto c = make(8);
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->pos_max(0).value(), -1);
  EXPECT_EQ(c->pos_min(0).value(), -1);
  ASSERT_TRUE(c->prepare_write(0, 0, 5).is_ok());  // 2 blocks
  EXPECT_EQ(c->length(0).value(), 5);
  EXPECT_EQ(c->pos_min(0).value(), 0);
  EXPECT_EQ(c->pos_max(0).value(), 4);
  EXPECT_EQ(blocks_of(*c, 0), (std::vector<std::int32_t>{0, 1}));
  ASSERT_TRUE(c->prepare_write(0, 5, 8).is_ok());  // fills block 1, no new block
  EXPECT_EQ(c->blocks_used(), 2);
  ASSERT_TRUE(c->prepare_write(1, 0, 1).is_ok());
  EXPECT_EQ(blocks_of(*c, 1), (std::vector<std::int32_t>{2}));
  // The table rows: [max_blocks, sequences], unused entries 0.
  const auto& t = c->table();
  EXPECT_EQ(t[0], 0);
  EXPECT_EQ(t[1], 1);
  EXPECT_EQ(t[static_cast<std::size_t>(c->max_blocks_per_sequence())], 2);
  ASSERT_TRUE(c->release(0).is_ok());
  EXPECT_EQ(c->blocks_used(), 1);
  EXPECT_EQ(c->length(0).value(), 0);
  EXPECT_EQ(t[0], 0);
  EXPECT_EQ(t[1], 0);
}

TEST_F(KvCacheTest, CacheFullChangesNothing) {
  auto c = make(3);
  ASSERT_NE(c, nullptr);
  ASSERT_TRUE(c->prepare_write(0, 0, 8).is_ok());  // 2 of 3 blocks
  const auto table = c->table();
  const Status st = c->prepare_write(1, 0, 9);  // needs 3
  EXPECT_EQ(st.code(), StatusCode::kCacheFull) << st.to_string();
  EXPECT_EQ(c->length(1).value(), 0);
  EXPECT_EQ(c->blocks_used(), 2);
  EXPECT_EQ(c->table(), table);
  EXPECT_TRUE(c->prepare_write(1, 0, 4).is_ok());  // one block still fits
}

TEST_F(KvCacheTest, BadArgumentsAreClearErrors) {
  auto c = make(8);
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->prepare_write(4, 0, 1).code(), StatusCode::kOutOfRange);
  EXPECT_EQ(c->prepare_write(-1, 0, 1).code(), StatusCode::kOutOfRange);
  EXPECT_EQ(c->prepare_write(0, 2, 3).code(), StatusCode::kInvalidArgument);  // a gap after the end
  EXPECT_EQ(c->prepare_write(0, 0, 65).code(), StatusCode::kOutOfRange);      // past the context
  EXPECT_EQ(c->copy(0, 9).code(), StatusCode::kOutOfRange);
  EXPECT_FALSE(c->length(7).is_ok());
  KvCacheOptions bad;
  EXPECT_EQ(KvCache::create(*device_, bad).status().code(), StatusCode::kInvalidArgument);
}

// Writes a recognisable value into every row of seq's blocks in both pools of every layer.
void fill_block(KvCache& c, int block, float value) {
  const std::size_t floats = static_cast<std::size_t>(c.options().kv_dim * c.block_size());
  std::vector<float> rows(floats, value);
  for (int l = 0; l < c.options().n_layers; ++l) {
    ASSERT_TRUE(c.k(l).upload(static_cast<std::size_t>(block) * floats * 4, rows.data(), floats * 4).is_ok());
    ASSERT_TRUE(c.v(l).upload(static_cast<std::size_t>(block) * floats * 4, rows.data(), floats * 4).is_ok());
  }
}
std::vector<float> read_block(KvCache& c, int layer, bool v, int block) {
  const std::size_t floats = static_cast<std::size_t>(c.options().kv_dim * c.block_size());
  std::vector<float> rows(floats);
  Buffer& pool = v ? c.v(layer) : c.k(layer);
  EXPECT_TRUE(pool.download(static_cast<std::size_t>(block) * floats * 4, rows.data(), floats * 4).is_ok());
  return rows;
}

TEST_F(KvCacheTest, CopySharesBlocksAndAWriteCopiesTheSharedBlock) {
  auto c = make(8);
  ASSERT_NE(c, nullptr);
  ASSERT_TRUE(c->prepare_write(0, 0, 6).is_ok());  // blocks 0, 1 (1 half full)
  fill_block(*c, 0, 1.f);
  fill_block(*c, 1, 2.f);
  ASSERT_TRUE(c->copy(0, 1).is_ok());
  EXPECT_EQ(blocks_of(*c, 1), blocks_of(*c, 0));
  EXPECT_EQ(c->length(1).value(), 6);
  EXPECT_EQ(c->blocks_used(), 2);
  // Appending to the copy writes into shared block 1: it needs one copy.
  EXPECT_EQ(c->blocks_needed(1, 6, 7), 1);
  ASSERT_TRUE(c->prepare_write(1, 6, 7).is_ok());
  const auto b1 = blocks_of(*c, 1);
  ASSERT_EQ(b1.size(), 2u);
  EXPECT_EQ(b1[0], 0);  // the full prefix block stays shared
  EXPECT_NE(b1[1], 1);
  EXPECT_EQ(c->blocks_used(), 3);
  for (int l = 0; l < 2; ++l) {
    for (bool v : {false, true})
      EXPECT_EQ(read_block(*c, l, v, b1[1]), read_block(*c, l, v, 1));  // the copy holds the rows
  }
  // Now block 1 belongs to sequence 0 alone: writing into it copies nothing.
  EXPECT_EQ(c->blocks_needed(0, 6, 8), 0);
  // Releasing the source keeps the shared block alive for the copy.
  ASSERT_TRUE(c->release(0).is_ok());
  EXPECT_EQ(c->blocks_used(), 2);
  EXPECT_EQ(blocks_of(*c, 1), b1);
}

TEST_F(KvCacheTest, CopyWhenFullOfSharedBlocksIsCacheFull) {
  auto c = make(2);
  ASSERT_NE(c, nullptr);
  ASSERT_TRUE(c->prepare_write(0, 0, 6).is_ok());
  ASSERT_TRUE(c->copy(0, 1).is_ok());
  EXPECT_EQ(c->prepare_write(1, 6, 7).code(), StatusCode::kCacheFull);
  EXPECT_EQ(c->length(1).value(), 6);
  EXPECT_EQ(blocks_of(*c, 1), blocks_of(*c, 0));
}

TEST_F(KvCacheTest, RemoveASuffixDropsBlocksAMiddleRangeIsUnimplemented) {
  auto c = make(8);
  ASSERT_NE(c, nullptr);
  ASSERT_TRUE(c->prepare_write(0, 0, 10).is_ok());  // 3 blocks
  EXPECT_EQ(c->remove(0, 3, 5).code(), StatusCode::kUnimplemented);
  EXPECT_EQ(c->length(0).value(), 10);
  ASSERT_TRUE(c->remove(0, 5, -1).is_ok());
  EXPECT_EQ(c->length(0).value(), 5);
  EXPECT_EQ(c->blocks_used(), 2);
  ASSERT_TRUE(c->remove(0, 4, 100).is_ok());  // p1 past the end: still a suffix
  EXPECT_EQ(c->blocks_used(), 1);
  EXPECT_EQ(c->pos_max(0).value(), 3);
  ASSERT_TRUE(c->remove(0, 7, -1).is_ok());  // nothing in range
  EXPECT_EQ(c->length(0).value(), 4);
  EXPECT_EQ(c->remove(0, -1, 2).code(), StatusCode::kInvalidArgument);
  // A removed suffix of a shared sequence leaves the other's blocks alone.
  ASSERT_TRUE(c->copy(0, 2).is_ok());
  ASSERT_TRUE(c->remove(2, 0, -1).is_ok());
  EXPECT_EQ(c->length(0).value(), 4);
  EXPECT_EQ(c->blocks_used(), 1);
}

TEST_F(KvCacheTest, KeepReleasesEveryOtherSequence) {
  auto c = make(8);
  ASSERT_NE(c, nullptr);
  for (int s = 0; s < 4; ++s)
    ASSERT_TRUE(c->prepare_write(s, 0, 4 + s).is_ok());
  ASSERT_TRUE(c->copy(2, 3).is_ok());
  ASSERT_TRUE(c->keep(3).is_ok());
  EXPECT_EQ(c->length(3).value(), 6);
  for (int s = 0; s < 3; ++s)
    EXPECT_EQ(c->length(s).value(), 0);
  EXPECT_EQ(c->blocks_used(), 2);
  EXPECT_EQ(c->blocks_free(), 6);
}

}  // namespace
}  // namespace halyard::runtime
