#include "halyard/runtime/kv_cache.h"

#include <algorithm>
#include <string>

namespace halyard::runtime {

Result<std::unique_ptr<KvCache>> KvCache::create(Device& device, const KvCacheOptions& options) {
  KvCacheOptions o = options;
  if (o.n_layers < 1 || o.kv_dim < 1 || o.max_sequences < 1 || o.max_positions < 1 || o.block_size < 1)
    return invalid_argument("KV cache: layers, kv_dim, sequences, positions and block size must be >= 1");
  if (o.n_blocks < 0)
    return invalid_argument("KV cache: n_blocks must be >= 0 (0 picks one full context per sequence)");
  const int max_blocks = (o.max_positions + o.block_size - 1) / o.block_size;
  if (o.n_blocks == 0)
    o.n_blocks = max_blocks * o.max_sequences;
  auto c = std::unique_ptr<KvCache>(new KvCache(o));
  c->max_blocks_ = max_blocks;
  c->block_bytes_ = row_bytes(o.dtype, o.kv_dim) * static_cast<std::size_t>(o.block_size);
  const std::size_t pool_bytes = c->block_bytes_ * static_cast<std::size_t>(o.n_blocks);
  for (int l = 0; l < o.n_layers; ++l) {
    auto k = device.allocate(pool_bytes);
    auto v = device.allocate(pool_bytes);
    if (!k.is_ok() || !v.is_ok()) {
      return resource_exhausted(
          "cannot allocate the KV cache (" +
          std::to_string(2 * pool_bytes * static_cast<std::size_t>(o.n_layers) >> 20) + " MiB for " +
          std::to_string(o.n_blocks) + " blocks of " + std::to_string(o.block_size) +
          " positions); ask for fewer blocks or a shorter context: " + (k.is_ok() ? v.status() : k.status()).message());
    }
    c->k_.push_back(std::move(k).value());
    c->v_.push_back(std::move(v).value());
  }
  // Lowest ids on top of the stack: a fresh cache hands out blocks 0, 1, 2...
  for (int b = o.n_blocks - 1; b >= 0; --b)
    c->free_.push_back(b);
  c->refs_.assign(static_cast<std::size_t>(o.n_blocks), 0);
  c->seq_blocks_.resize(static_cast<std::size_t>(o.max_sequences));
  c->seq_len_.assign(static_cast<std::size_t>(o.max_sequences), 0);
  c->table_.assign(static_cast<std::size_t>(max_blocks) * static_cast<std::size_t>(o.max_sequences), 0);
  c->scratch_.resize(c->block_bytes_);
  c->block_hash_.assign(static_cast<std::size_t>(o.n_blocks), 0);
  c->block_parent_.assign(static_cast<std::size_t>(o.n_blocks), 0);
  c->block_tokens_.assign(static_cast<std::size_t>(o.n_blocks) * static_cast<std::size_t>(o.block_size), 0);
  c->lru_pos_.resize(static_cast<std::size_t>(o.n_blocks));
  c->seq_hashes_.resize(static_cast<std::size_t>(o.max_sequences));
  return c;
}

TensorDesc KvCache::pool_desc() const {
  return TensorDesc::make(options_.dtype, options_.kv_dim, options_.block_size, options_.n_blocks);
}

Status KvCache::check_seq(int seq) const {
  if (seq < 0 || seq >= options_.max_sequences) {
    return out_of_range("sequence id " + std::to_string(seq) + " is outside [0, " +
                        std::to_string(options_.max_sequences) + ")");
  }
  return Status::ok();
}

Result<int> KvCache::length(int seq) const {
  HALYARD_RETURN_IF_ERROR(check_seq(seq));
  return seq_len_[static_cast<std::size_t>(seq)];
}
Result<int> KvCache::pos_min(int seq) const {
  HALYARD_ASSIGN_OR_RETURN(int n, length(seq));
  return n > 0 ? 0 : -1;
}
Result<int> KvCache::pos_max(int seq) const {
  HALYARD_ASSIGN_OR_RETURN(int n, length(seq));
  return n - 1;
}
Result<std::span<const std::int32_t>> KvCache::blocks(int seq) const {
  HALYARD_RETURN_IF_ERROR(check_seq(seq));
  return std::span<const std::int32_t>(seq_blocks_[static_cast<std::size_t>(seq)]);
}

int KvCache::blocks_needed(int seq, int p0, int p1) const {
  if (p1 <= p0)
    return 0;
  const auto& blocks = seq_blocks_[static_cast<std::size_t>(seq)];
  const int bs = options_.block_size;
  int needed = 0;
  for (int b = p0 / bs; b <= (p1 - 1) / bs; ++b) {
    if (b >= static_cast<int>(blocks.size()))
      ++needed;  // a new block
    else if (refs_[static_cast<std::size_t>(blocks[static_cast<std::size_t>(b)])] > 1)
      ++needed;  // a shared block: copied before the write
  }
  return needed;
}

Status KvCache::prepare_write(int seq, int p0, int p1) {
  HALYARD_RETURN_IF_ERROR(check_seq(seq));
  const auto s = static_cast<std::size_t>(seq);
  if (p0 < 0 || p1 < p0 || p0 > seq_len_[s]) {
    return invalid_argument("KV cache: cannot write positions [" + std::to_string(p0) + ", " + std::to_string(p1) +
                            ") of a sequence of length " + std::to_string(seq_len_[s]) +
                            " (writes start at or before its end)");
  }
  if (p1 > options_.max_positions) {
    return out_of_range("position " + std::to_string(p1 - 1) + " is past the context of " +
                        std::to_string(options_.max_positions) + " positions");
  }
  const int needed = blocks_needed(seq, p0, p1);
  if (needed > blocks_free()) {
    return cache_full("the KV cache has " + std::to_string(blocks_free()) + " free blocks and this write needs " +
                      std::to_string(needed) + "; nothing was changed");
  }
  auto& blocks = seq_blocks_[s];
  const int bs = options_.block_size;
  for (int b = p0 / bs; p1 > p0 && b <= (p1 - 1) / bs; ++b) {
    if (b >= static_cast<int>(blocks.size())) {
      const int fresh = take_block();
      refs_[static_cast<std::size_t>(fresh)] = 1;
      blocks.push_back(fresh);
    } else if (const int old = blocks[static_cast<std::size_t>(b)]; refs_[static_cast<std::size_t>(old)] > 1) {
      const int fresh = take_block();
      // The copy may fail on the device; the block goes back to the free list then.
      if (Status st = copy_block(old, fresh); !st.is_ok()) {
        free_.push_back(fresh);
        return st;
      }
      refs_[static_cast<std::size_t>(fresh)] = 1;
      --refs_[static_cast<std::size_t>(old)];
      blocks[static_cast<std::size_t>(b)] = fresh;
    } else if (block_hash_[static_cast<std::size_t>(old)] != 0) {
      // This sequence alone holds it and its rows are about to change: it no longer has the
      // identity it was registered under.
      unregister(old);
      auto& hashes = seq_hashes_[s];
      if (hashes.size() > static_cast<std::size_t>(b))
        hashes.resize(static_cast<std::size_t>(b));
    }
  }
  seq_len_[s] = std::max(seq_len_[s], p1);
  sync_table(seq);
  return Status::ok();
}

// Through the Buffer API: a block is one contiguous range of each pool (ATTENTION's layout),
// so a copy is 2 x n_layers download/upload pairs of block_bytes_ (12 KiB per layer for
// SmolLM2-135M). It needs no graph or kernel and works on every backend, and copy-on-write
// copies a block at most once per fork, which is rare next to decode steps; a COPY graph would
// avoid the host round trip on GPUs if forks become frequent.
Status KvCache::copy_block(int from, int to) {
  const std::size_t src = block_bytes_ * static_cast<std::size_t>(from);
  const std::size_t dst = block_bytes_ * static_cast<std::size_t>(to);
  for (std::size_t l = 0; l < k_.size(); ++l) {
    for (Buffer* pool : {k_[l].get(), v_[l].get()}) {
      HALYARD_RETURN_IF_ERROR(pool->download(src, scratch_.data(), block_bytes_));
      HALYARD_RETURN_IF_ERROR(pool->upload(dst, scratch_.data(), block_bytes_));
    }
  }
  return Status::ok();
}

void KvCache::drop_block(int block) {
  const auto b = static_cast<std::size_t>(block);
  if (--refs_[b] > 0)
    return;
  if (block_hash_[b] != 0)
    lru_pos_[b] = lru_.insert(lru_.end(), block);  // kept for the prefix cache, most recent last
  else
    free_.push_back(block);
}

int KvCache::take_block() {
  if (free_.empty())
    unregister(lru_.front());  // callers checked blocks_free(); this moves it to the free list
  const int b = free_.back();
  free_.pop_back();
  return b;
}

void KvCache::unregister(int block) {
  const auto b = static_cast<std::size_t>(block);
  if (block_hash_[b] == 0)
    return;
  if (auto it = registered_.find(block_hash_[b]); it != registered_.end() && it->second == block)
    registered_.erase(it);
  block_hash_[b] = 0;
  if (refs_[b] == 0) {
    lru_.erase(lru_pos_[b]);
    free_.push_back(block);
  }
}

// FNV-1a would do for speed, but tokens are small integers: a multiply-xorshift mix of each
// token into the state spreads them over all 64 bits. 0 is reserved for "unregistered".
std::uint64_t KvCache::chain_hash(std::uint64_t parent, std::span<const std::int32_t> tokens) {
  std::uint64_t h = parent ^ 0x9e3779b97f4a7c15ULL;
  for (std::int32_t t : tokens) {
    h ^= static_cast<std::uint32_t>(t);
    h *= 0xbf58476d1ce4e5b9ULL;
    h ^= h >> 31;
  }
  h *= 0x94d049bb133111ebULL;
  h ^= h >> 29;
  return h == 0 ? 1 : h;
}

void KvCache::commit(int seq, std::span<const std::int32_t> tokens) {
  if (seq < 0 || seq >= options_.max_sequences)
    return;
  const auto s = static_cast<std::size_t>(seq);
  const auto bs = static_cast<std::size_t>(options_.block_size);
  const auto& blocks = seq_blocks_[s];
  auto& hashes = seq_hashes_[s];
  const std::size_t full = std::min(tokens.size(), static_cast<std::size_t>(seq_len_[s])) / bs;
  for (std::size_t i = hashes.size(); i < full; ++i) {
    const std::uint64_t parent = i == 0 ? 0 : hashes[i - 1];
    const auto block_tokens = tokens.subspan(i * bs, bs);
    const std::uint64_t h = chain_hash(parent, block_tokens);
    hashes.push_back(h);
    const auto b = static_cast<std::size_t>(blocks[i]);
    if (block_hash_[b] != 0 || registered_.contains(h))
      continue;  // shared from the cache already, or another block has this identity
    block_hash_[b] = h;
    block_parent_[b] = parent;
    std::copy(block_tokens.begin(), block_tokens.end(), block_tokens_.begin() + static_cast<std::ptrdiff_t>(b * bs));
    registered_.emplace(h, blocks[i]);
  }
}

Result<int> KvCache::attach_prefix(int seq, std::span<const std::int32_t> tokens, int max_positions) {
  HALYARD_RETURN_IF_ERROR(check_seq(seq));
  const auto s = static_cast<std::size_t>(seq);
  if (seq_len_[s] != 0)
    return invalid_argument("attach_prefix: sequence " + std::to_string(seq) + " is not empty");
  const auto bs = static_cast<std::size_t>(options_.block_size);
  const std::size_t limit = std::min(tokens.size(), static_cast<std::size_t>(std::max(max_positions, 0)));
  const std::size_t full = std::min(limit, static_cast<std::size_t>(options_.max_positions)) / bs;
  auto& blocks = seq_blocks_[s];
  auto& hashes = seq_hashes_[s];
  hashes.clear();
  std::uint64_t parent = 0;
  std::size_t i = 0;
  for (; i < full; ++i) {
    const auto block_tokens = tokens.subspan(i * bs, bs);
    const std::uint64_t h = chain_hash(parent, block_tokens);
    auto it = registered_.find(h);
    if (it == registered_.end())
      break;
    const auto b = static_cast<std::size_t>(it->second);
    if (block_parent_[b] != parent || !std::equal(block_tokens.begin(), block_tokens.end(),
                                                  block_tokens_.begin() + static_cast<std::ptrdiff_t>(b * bs)))
      break;  // a hash collision: never share rows of other tokens
    if (refs_[b]++ == 0)
      lru_.erase(lru_pos_[b]);
    blocks.push_back(it->second);
    hashes.push_back(h);
    parent = h;
  }
  prefix_hits_ += static_cast<std::int64_t>(i);
  prefix_misses_ += static_cast<std::int64_t>(full - i);
  seq_len_[s] = static_cast<int>(i * bs);
  if (i > 0)
    sync_table(seq);
  return seq_len_[s];
}

void KvCache::clear_prefix_cache() {
  for (int b = 0; b < options_.n_blocks; ++b)
    unregister(b);
}

Result<std::uint64_t> KvCache::prefault() {
  if (blocks_used() != 0 || blocks_cached() != 0) {
    return failed_precondition(
        "KV cache: prefault writes zeros over the pools and runs only while no block is held or "
        "cached (" +
        std::to_string(blocks_used()) + " held, " + std::to_string(blocks_cached()) + " cached)");
  }
  // In pieces of at most 1 MiB, never one upload of a whole pool: a whole-buffer upload asks for
  // transparent huge pages (hal/src/host.cpp), which a KV pool must not get (a 2 MiB page per
  // first touch made first prompts slower there).
  constexpr std::size_t kPiece = std::size_t{1} << 20;
  const std::size_t pool_bytes = block_bytes_ * static_cast<std::size_t>(options_.n_blocks);
  const std::vector<std::byte> zeros(std::min(kPiece, pool_bytes));
  std::uint64_t written = 0;
  for (int l = 0; l < options_.n_layers; ++l) {
    for (Buffer* pool : {k_[static_cast<std::size_t>(l)].get(), v_[static_cast<std::size_t>(l)].get()}) {
      for (std::size_t off = 0; off < pool_bytes; off += zeros.size()) {
        const std::size_t n = std::min(zeros.size(), pool_bytes - off);
        HALYARD_RETURN_IF_ERROR(pool->upload(off, zeros.data(), n));
        written += n;
      }
    }
  }
  return written;
}

void KvCache::sync_table(int seq) {
  const auto& blocks = seq_blocks_[static_cast<std::size_t>(seq)];
  std::int32_t* row = table_.data() + static_cast<std::size_t>(seq) * static_cast<std::size_t>(max_blocks_);
  std::fill(row, row + max_blocks_, 0);
  std::copy(blocks.begin(), blocks.end(), row);
  ++table_version_;
}

Status KvCache::copy(int src, int dst) {
  HALYARD_RETURN_IF_ERROR(check_seq(src));
  HALYARD_RETURN_IF_ERROR(check_seq(dst));
  if (src == dst)
    return Status::ok();
  HALYARD_RETURN_IF_ERROR(release(dst));
  const auto& blocks = seq_blocks_[static_cast<std::size_t>(src)];
  for (std::int32_t b : blocks)
    ++refs_[static_cast<std::size_t>(b)];
  seq_blocks_[static_cast<std::size_t>(dst)] = blocks;
  seq_hashes_[static_cast<std::size_t>(dst)] = seq_hashes_[static_cast<std::size_t>(src)];
  seq_len_[static_cast<std::size_t>(dst)] = seq_len_[static_cast<std::size_t>(src)];
  sync_table(dst);
  return Status::ok();
}

Status KvCache::remove(int seq, int p0, int p1) {
  HALYARD_RETURN_IF_ERROR(check_seq(seq));
  const auto s = static_cast<std::size_t>(seq);
  const int len = seq_len_[s];
  if (p0 < 0)
    return invalid_argument("remove: the first position must be >= 0");
  if (p1 < 0 || p1 > len)
    p1 = len;
  if (p0 >= p1)
    return Status::ok();  // nothing in range
  if (p1 < len) {
    return unimplemented("remove: only a suffix of a sequence can be removed today (positions [" + std::to_string(p0) +
                         ", " + std::to_string(p1) + ") lie before its end at " + std::to_string(len) +
                         "); a middle range would need its later positions moved");
  }
  auto& blocks = seq_blocks_[s];
  const auto keep_blocks = static_cast<std::size_t>((p0 + options_.block_size - 1) / options_.block_size);
  while (blocks.size() > keep_blocks) {
    drop_block(blocks.back());
    blocks.pop_back();
  }
  // Only whole blocks below p0 keep their identity in this sequence.
  auto& hashes = seq_hashes_[s];
  hashes.resize(std::min(hashes.size(), static_cast<std::size_t>(p0 / options_.block_size)));
  // The rows of a kept, partly removed block stay: later writes overwrite them, and no token
  // reads past its own position.
  seq_len_[s] = p0;
  sync_table(seq);
  return Status::ok();
}

Status KvCache::release(int seq) {
  HALYARD_RETURN_IF_ERROR(check_seq(seq));
  return remove(seq, 0, -1);
}

Status KvCache::keep(int seq) {
  HALYARD_RETURN_IF_ERROR(check_seq(seq));
  for (int s = 0; s < options_.max_sequences; ++s) {
    if (s != seq) {
      HALYARD_RETURN_IF_ERROR(release(s));
    }
  }
  return Status::ok();
}

}  // namespace halyard::runtime
