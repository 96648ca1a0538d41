// Byte-level BPE merge table and merge loop. Equivalent to llama.cpp's string-keyed version:
// a bigram is stale exactly when one of its symbols changed, which interned ids show as well as
// the strings do.
#include "bpe.hpp"

#include <algorithm>
#include <chrono>
#include <unordered_map>

#include "core/base/error.hpp"
#include "core/base/log.hpp"
#include "core/tokenizer/utf8.hpp"

namespace bitnet::tokenizer {

namespace {
// Interned id of a merge result that is neither a token nor a merge side: it can take part in
// no further merge, and it is not a token, so it ends in the byte fallback.
constexpr uint32_t kDeadEnd = ~uint32_t{0};
}  // namespace

// (left id, right id) -> rank, open addressing with linear probing: 280k merges build in
// milliseconds, and lookups in the merge loop stay cheap.
struct BpeEncoder::MergeTable {
  struct Slot {
    uint32_t left = kDeadEnd;  // kDeadEnd never starts a merge, so it marks an empty slot
    uint32_t right = 0;
    uint32_t rank = 0;
  };
  std::vector<Slot> slots;
  size_t mask = 0;
  size_t count = 0;

  explicit MergeTable(size_t n) {
    size_t cap = 16;
    while (cap < n + n / 2) cap <<= 1;  // load factor at most 2/3
    slots.resize(cap);
    mask = cap - 1;
  }
  static size_t hash(uint32_t a, uint32_t b) {  // splitmix64 finaliser
    uint64_t k = (uint64_t{a} << 32) | b;
    k ^= k >> 30;
    k *= 0xbf58476d1ce4e5b9ull;
    k ^= k >> 27;
    k *= 0x94d049bb133111ebull;
    k ^= k >> 31;
    return static_cast<size_t>(k);
  }
  // Keeps the first (lowest) rank when a pair repeats, like llama.cpp's map emplace.
  void insert(uint32_t a, uint32_t b, uint32_t rank) {
    for (size_t i = hash(a, b) & mask;; i = (i + 1) & mask) {
      Slot& s = slots[i];
      if (s.left == a && s.right == b) return;
      if (s.left == kDeadEnd) {
        s = {a, b, rank};
        ++count;
        return;
      }
    }
  }
  // Rank of merging a with b, or -1.
  int64_t find(uint32_t a, uint32_t b) const {
    for (size_t i = hash(a, b) & mask;; i = (i + 1) & mask) {
      const Slot& s = slots[i];
      if (s.left == a && s.right == b) return s.rank;
      if (s.left == kDeadEnd) return -1;
    }
  }
};

BpeEncoder::BpeEncoder(const Vocab& v, const TextIndex& index) : vocab_(v), index_(index) {
  static log::Logger& lg = log::get("tokenizer");
  auto t0 = std::chrono::steady_clock::now();
  if (v.merges.empty()) throw Error(ErrorCode::invalid_input, "invalid vocabulary: byte-level BPE without merges");
  if (v.merges.size() >= (size_t{1} << 30)) throw Error(ErrorCode::invalid_input, "invalid vocabulary: too many merges");
  const uint32_t n_tokens = v.size();
  auto intern = [&](std::string_view s) -> uint32_t {
    if (auto id = index.find(s)) return *id;
    auto [it, added] = extra_ids_.try_emplace(std::string(s), n_tokens + static_cast<uint32_t>(extra_ids_.size()));
    return it->second;
  };

  for (int b = 0; b < 256; ++b) byte_symbol_[b] = intern(byte_to_unicode(static_cast<uint8_t>(b)));
  merges_ = std::make_unique<MergeTable>(v.merges.size());
  for (size_t rank = 0; rank < v.merges.size(); ++rank) {
    std::string_view m = v.merges[rank];
    // "left right", split at the first space after the first byte (a side may start with one).
    size_t sp = m.size() > 1 ? m.find(' ', 1) : std::string_view::npos;
    if (sp == std::string_view::npos || sp + 1 == m.size()) continue;  // malformed; can never apply
    merges_->insert(intern(m.substr(0, sp)), intern(m.substr(sp + 1)), static_cast<uint32_t>(rank));
  }
  auto ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  log::debug(lg, "BPE merge table: {} merges ({} distinct pairs, {} non-token sides) in {:.1f} ms", v.merges.size(),
             merges_->count, extra_ids_.size(), ms);
}

uint32_t BpeEncoder::intern_result(std::string_view s) const {
  if (auto id = index_.find(s)) return *id;
  if (extra_ids_.empty()) return kDeadEnd;
  auto it = extra_ids_.find(std::string(s));
  return it == extra_ids_.end() ? kDeadEnd : it->second;
}

BpeEncoder::~BpeEncoder() = default;

size_t BpeEncoder::n_merges() const { return merges_->count; }

namespace {

struct Symbol {
  uint32_t id = 0;    // interned text
  size_t begin = 0;   // input bytes [begin, end)
  size_t end = 0;
  int prev = -1;
  int next = -1;
  bool alive = true;
};

struct Bigram {
  uint32_t rank = 0;
  int left = 0;
  int right = 0;
  uint32_t left_id = 0;
  uint32_t right_id = 0;
};

// Max-heap order that pops the lowest rank first, then the leftmost pair.
bool heap_less(const Bigram& l, const Bigram& r) { return l.rank > r.rank || (l.rank == r.rank && l.left > r.left); }

}  // namespace

void BpeEncoder::encode(std::string_view text, size_t begin, size_t end, Encoding& out) const {
  if (begin >= end) return;
  std::string mapped;  // GPT-2 alphabet text of the bytes at hand
  if (vocab_.ignore_merges) {
    // LLaMA-3 (HF ignore_merges): a pre-token that is a token as a whole is emitted as is.
    for (size_t i = begin; i < end; ++i) mapped += byte_to_unicode(static_cast<uint8_t>(text[i]));
    if (auto id = index_.find(mapped)) {
      out.push(*id, begin, end);
      return;
    }
  }

  std::vector<Symbol> sym;
  sym.reserve(end - begin);
  for (size_t i = begin; i < end; ++i) {
    int idx = static_cast<int>(sym.size());
    sym.push_back({byte_symbol_[static_cast<uint8_t>(text[i])], i, i + 1, idx - 1, i + 1 == end ? -1 : idx + 1, true});
  }

  std::vector<Bigram> heap;
  auto try_add = [&](int left, int right) {
    if (left < 0 || right < 0) return;
    int64_t rank = merges_->find(sym[left].id, sym[right].id);
    if (rank < 0) return;
    heap.push_back({static_cast<uint32_t>(rank), left, right, sym[left].id, sym[right].id});
    std::push_heap(heap.begin(), heap.end(), heap_less);
  };
  for (int i = 1; i < static_cast<int>(sym.size()); ++i) try_add(i - 1, i);

  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), heap_less);
    Bigram bg = heap.back();
    heap.pop_back();
    Symbol& l = sym[bg.left];
    Symbol& r = sym[bg.right];
    if (!l.alive || !r.alive || l.id != bg.left_id || r.id != bg.right_id) continue;  // stale
    mapped.clear();
    for (size_t k = l.begin; k < r.end; ++k) mapped += byte_to_unicode(static_cast<uint8_t>(text[k]));
    l.id = intern_result(mapped);
    l.end = r.end;
    r.alive = false;
    l.next = r.next;
    if (r.next >= 0) sym[r.next].prev = bg.left;
    try_add(l.prev, bg.left);
    try_add(bg.left, l.next);
  }

  const uint32_t n_tokens = vocab_.size();
  for (int i = 0; i != -1; i = sym[i].next) {
    const Symbol& y = sym[i];
    if (y.id < n_tokens) {
      out.push(y.id, y.begin, y.end);
      continue;
    }
    // Not a token (only with vocabularies whose merges make non-tokens): like llama.cpp, emit
    // the single-byte tokens of the symbol's alphabet text that exist, drop the rest.
    for (size_t k = y.begin; k < y.end; ++k) {
      std::string_view ch = byte_to_unicode(static_cast<uint8_t>(text[k]));
      for (char c : ch)
        if (auto id = index_.find(std::string_view(&c, 1))) out.push(*id, k, k + 1);
    }
  }
}

}  // namespace bitnet::tokenizer
