// The paged KV cache of a context: per layer a K and a V pool of n_blocks blocks of block_size
// positions on the model's device (the ATTENTION op's layout, ops.h), a free list, per-block
// reference counts, and one block table per sequence. Sequences share blocks after copy()
// (a common prefix); a write into a shared block first copies that block (copy-on-write).
// Sequence ids are the slots of the ATTENTION op's block_table input: 0..max_sequences-1.
//
// Prefix cache: a full block is identified by the hash chain of its tokens (the hash of the
// previous block's identity and its own block_size tokens). commit() registers a sequence's
// newly full blocks; attach_prefix() gives an empty sequence the longest chain of registered
// blocks its tokens start with, shared like copy() shares. A registered block that no sequence
// holds any more is not freed but kept, evictable, in least-recently-used order: a new block is
// taken from the free list first and then by evicting the oldest of them. A block whose rows are
// about to change (a write after a suffix remove) is unregistered first.
// Ownership: borrows the Device, which must outlive it. Thread safety: one thread at a time.
#pragma once

#include <cstdint>
#include <list>
#include <memory>
#include <span>
#include <unordered_map>
#include <vector>

#include "halyard/hal/device.h"

namespace halyard::runtime {

struct KvCacheOptions {
  int n_layers = 0;
  std::int64_t kv_dim = 0;  // head_dim * n_kv_heads
  int max_sequences = 1;
  int max_positions = 0;  // the longest a sequence may grow (the context length)
  int n_blocks = 0;       // 0: enough for every sequence to reach max_positions
  int block_size = 16;
  // The element type of the pools: the one place the cache dtype is chosen (the graph builder
  // reads it from here, so an f16 cache is a change of this default).
  DType dtype = DType::kF32;
};

class KvCache {
 public:
  static Result<std::unique_ptr<KvCache>> create(Device& device, const KvCacheOptions& options);

  const KvCacheOptions& options() const { return options_; }
  int block_size() const { return options_.block_size; }
  int blocks_total() const { return options_.n_blocks; }
  int blocks_used() const { return options_.n_blocks - blocks_free(); }
  // Free blocks, those held by no sequence but kept for the prefix cache (evictable) included.
  int blocks_free() const { return static_cast<int>(free_.size() + lru_.size()); }
  // Blocks held by no sequence that the prefix cache keeps (part of blocks_free()).
  int blocks_cached() const { return static_cast<int>(lru_.size()); }
  int max_sequences() const { return options_.max_sequences; }
  int max_blocks_per_sequence() const { return max_blocks_; }
  // The number of positions a sequence holds (its positions are 0..length-1).
  Result<int> length(int seq) const;
  // -1 for an empty sequence.
  Result<int> pos_min(int seq) const;
  Result<int> pos_max(int seq) const;
  Result<std::span<const std::int32_t>> blocks(int seq) const;
  // How many sequences' tables hold a block.
  int refs(int block) const { return refs_[static_cast<std::size_t>(block)]; }

  // New blocks (allocated or copied) that writing positions [p0, p1) of `seq` would take.
  int blocks_needed(int seq, int p0, int p1) const;
  // Makes positions [p0, p1) of `seq` writable: allocates the blocks past its end and copies
  // any shared block in the range (copy-on-write), then sets its length to max(length, p1).
  // p0 must not be past the sequence's length. cache_full, changing nothing, when there are
  // fewer free blocks than blocks_needed.
  Status prepare_write(int seq, int p0, int p1);
  // dst becomes a copy of src (dst's old blocks are released); the blocks are shared until
  // either sequence writes into one.
  Status copy(int src, int dst);
  // Removes positions [p0, p1) (p1 < 0: to the end). Only a suffix (p1 past the last position):
  // a middle range is unimplemented here, since the later positions would need recomputing;
  // Context::remove does that, having the tokens.
  Status remove(int seq, int p0, int p1);
  // Releases every sequence but `seq`.
  Status keep(int seq);
  Status release(int seq);

  // Prefix cache. commit(): `tokens` are the tokens at positions 0..length-1 of `seq`; its full
  // blocks not yet registered are registered (a block whose identity is already registered
  // under another block stays unregistered: the first one computed serves later sequences).
  void commit(int seq, std::span<const std::int32_t> tokens);
  // For an empty `seq`: shares the registered blocks that match `tokens` block by block from the
  // start, at most max_positions positions' worth, and sets its length to what it got (a
  // multiple of block_size, maybe 0). Counts hits (blocks reused) and misses (the full blocks of
  // `tokens` within max_positions that were not). invalid_argument when `seq` is not empty.
  Result<int> attach_prefix(int seq, std::span<const std::int32_t> tokens, int max_positions);
  std::int64_t prefix_hits() const { return prefix_hits_; }
  std::int64_t prefix_misses() const { return prefix_misses_; }
  // Forgets every registered block (evictable ones become free).
  void clear_prefix_cache();
  // Writes zeros over every layer's K and V pool, so that a host device's pages are resident
  // before the first request touches them (a server's RSS then holds still under load instead of
  // growing by the pool as blocks are first used). Returns the bytes written. failed_precondition
  // while any block is held or cached: their rows would be lost.
  Result<std::uint64_t> prefault();

  // The ATTENTION op's block_table input, i32 [max_blocks_per_sequence, max_sequences]; unused
  // entries are 0 (never read: a token reads only positions 0..p of its sequence).
  const std::vector<std::int32_t>& table() const { return table_; }
  // Changes whenever table() does, so a caller uploads the table only after a change.
  std::uint64_t table_version() const { return table_version_; }
  Buffer& k(int layer) { return *k_[static_cast<std::size_t>(layer)]; }
  Buffer& v(int layer) { return *v_[static_cast<std::size_t>(layer)]; }
  TensorDesc pool_desc() const;

 private:
  explicit KvCache(const KvCacheOptions& o) : options_(o) {}
  Status check_seq(int seq) const;
  void drop_block(int block);
  // A block for a write: from the free list, else the least recently used evictable one.
  int take_block();
  void unregister(int block);
  static std::uint64_t chain_hash(std::uint64_t parent, std::span<const std::int32_t> tokens);
  void sync_table(int seq);
  // Copies one block's rows in every layer's K and V pool (see kv_cache.cpp for why this way).
  Status copy_block(int from, int to);

  KvCacheOptions options_;
  int max_blocks_ = 0;
  std::size_t block_bytes_ = 0;
  std::vector<std::unique_ptr<Buffer>> k_, v_;
  std::vector<int> free_;  // a stack of free block ids
  std::vector<int> refs_;  // per block: how many sequences' tables hold it
  std::vector<std::vector<std::int32_t>> seq_blocks_;
  std::vector<int> seq_len_;
  std::vector<std::int32_t> table_;
  std::uint64_t table_version_ = 1;
  std::vector<std::byte> scratch_;  // one block's bytes, for copy_block
  // Prefix cache state. Per block: its identity (0: unregistered) and, for registered blocks,
  // the tokens it holds (checked on every hit, so a hash collision can never share wrong rows)
  // and its parent's identity.
  std::vector<std::uint64_t> block_hash_, block_parent_;
  std::vector<std::int32_t> block_tokens_;  // [n_blocks * block_size]
  std::unordered_map<std::uint64_t, int> registered_;
  std::list<int> lru_;  // evictable registered blocks, oldest first
  std::vector<std::list<int>::iterator> lru_pos_;
  std::vector<std::vector<std::uint64_t>> seq_hashes_;  // per sequence: the identity of each full block
  std::int64_t prefix_hits_ = 0, prefix_misses_ = 0;
};

}  // namespace halyard::runtime
