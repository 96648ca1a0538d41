// SPM merge loop. Symbols start as UTF-8 characters (by lead byte, so malformed input still
// splits somewhere); the adjacent pair whose concatenation is the highest-scoring token merges
// first, ties to the leftmost. A final symbol that is not a token falls back to byte tokens.
#include "spm.hpp"

#include <algorithm>
#include <string>

#include <fmt/format.h>

#include "core/base/log.hpp"
#include "core/tokenizer/utf8.hpp"

namespace bitnet::tokenizer {
namespace {

constexpr std::string_view kSpace = "\xE2\x96\x81";  // U+2581, SentencePiece's visible space

struct Symbol {
  size_t begin = 0;  // in the escaped text
  size_t n = 0;      // bytes; 0 once merged into its left neighbour
  int prev = -1;
  int next = -1;
};

struct Bigram {
  int left = 0;
  int right = 0;
  float score = 0;
  size_t size = 0;
};

// Max-heap order: higher score first, then the leftmost pair.
bool heap_less(const Bigram& l, const Bigram& r) { return l.score < r.score || (l.score == r.score && l.left > r.left); }

}  // namespace

SpmEncoder::SpmEncoder(const Vocab& v, const TextIndex& index) : vocab_(v), index_(index) {
  static log::Logger& lg = log::get("tokenizer");
  int missing = 0;
  for (int b = 0; b < 256; ++b) {
    std::optional<TokenId> id = index.find(fmt::format("<0x{:02X}>", b));
    if (!id) id = index.find(std::string(1, static_cast<char>(b)));
    // llama.cpp aborts here (std::out_of_range); unknown is the graceful answer.
    if (!id) {
      id = v.unk;
      ++missing;
    }
    byte_token_[b] = id;
  }
  if (missing) log::debug(lg, "{} bytes have no <0xXX> token; they encode as {}", missing, v.unk ? "<unk>" : "nothing");
}

void SpmEncoder::encode(std::string_view text, size_t begin, size_t end, bool prefix_space, Encoding& out) const {
  // Escaped text (spaces -> U+2581) plus, for each of its bytes, the input offset it came from.
  std::string s;
  std::vector<size_t> src;
  s.reserve(end - begin + 3);
  src.reserve(end - begin + 4);
  auto put = [&](std::string_view bytes, size_t from) {
    s += bytes;
    src.insert(src.end(), bytes.size(), from);
  };
  if (prefix_space) put(kSpace, begin);
  for (size_t i = begin; i < end; ++i) put(text[i] == ' ' ? kSpace : text.substr(i, 1), i);
  src.push_back(end);  // one past the last byte
  if (s.empty()) return;

  std::vector<Symbol> sym;
  sym.reserve(s.size());
  for (size_t off = 0; off < s.size();) {
    size_t n = std::min(utf8_len(s[off]), s.size() - off);
    int idx = static_cast<int>(sym.size());
    sym.push_back({off, n, idx - 1, off + n == s.size() ? -1 : idx + 1});
    off += n;
  }

  std::vector<Bigram> heap;
  auto try_add = [&](int left, int right) {
    if (left < 0 || right < 0) return;
    size_t size = sym[left].n + sym[right].n;
    auto id = index_.find(std::string_view(s).substr(sym[left].begin, size));
    if (!id) return;
    heap.push_back({left, right, vocab_.score[*id], size});
    std::push_heap(heap.begin(), heap.end(), heap_less);
  };
  for (int i = 1; i < static_cast<int>(sym.size()); ++i) try_add(i - 1, i);

  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), heap_less);
    Bigram bg = heap.back();
    heap.pop_back();
    Symbol& l = sym[bg.left];
    Symbol& r = sym[bg.right];
    if (l.n == 0 || r.n == 0 || l.n + r.n != bg.size) continue;  // stale: a side changed since
    l.n += r.n;
    r.n = 0;
    l.next = r.next;
    if (r.next >= 0) sym[r.next].prev = bg.left;
    try_add(l.prev, bg.left);
    try_add(bg.left, l.next);
  }

  // Every merge result is a token, so only unmerged characters can miss the vocabulary; llama.cpp's
  // rev_merge re-segmentation therefore never applies and byte fallback is all that is left.
  for (int i = 0; i != -1; i = sym[i].next) {
    const Symbol& y = sym[i];
    if (auto id = index_.find(std::string_view(s).substr(y.begin, y.n))) {
      out.push(*id, src[y.begin], src[y.begin + y.n]);
      continue;
    }
    for (size_t k = y.begin; k < y.begin + y.n; ++k)
      if (auto id = byte_token_[static_cast<uint8_t>(s[k])]) out.push(*id, src[k], src[k + 1]);
  }
}

}  // namespace bitnet::tokenizer
