// The weight copy every session multiplies (see resident_weights.hpp). Huge pages: file pages are
// 4 KiB, so a decode streaming 0.7-1.2 GB per token would take a page walk every 4 KiB and the
// hardware prefetcher would stop at every page edge (docs/benchmarks.md, "Results").
#include "core/infer/resident_weights.hpp"

#include <algorithm>
#include <chrono>
#include <cstring>

#include "core/base/error.hpp"
#include "core/base/log.hpp"
#include "core/base/proc_memory.hpp"
#include "core/base/thread_pool.hpp"
#include "core/infer/session.hpp"
#include "core/kernels/formats.hpp"

namespace bitnet::infer {

bool repacks_at_load(const kernels::KernelTable& k, const kernels::WeightView& w) {
  const kernels::WeightFormat* f = kernels::find_format(w.type);
  if (f == nullptr || f->repack == nullptr) return false;
  const kernels::WeightFormat* to = kernels::find_format(f->repack_to);
  return to != nullptr && kernels::format_entries(k, *to, w.cols).gemm != nullptr;
}

kernels::WeightView resident_weight(const kernels::KernelTable& k, const kernels::WeightView& w) {
  kernels::WeightView r = w;
  if (repacks_at_load(k, w)) r.type = kernels::find_format(w.type)->repack_to;
  return r;
}

uint64_t resident_bytes(const kernels::KernelTable& k, const kernels::WeightView& w) {
  return pool_block_bytes(kernels::weight_bytes(resident_weight(k, w)));  // each copy 64-byte aligned
}

uint64_t resident_total_bytes(const model::Model& model, const kernels::KernelTable& k) {
  uint64_t bytes = 0;
  for (uint32_t l = 0; l < model.config().n_layer; ++l) {
    const model::LayerWeights& L = model.layer(l);
    for (const kernels::WeightView* w : {&L.wq, &L.wk, &L.wv, &L.wo, &L.gate, &L.up, &L.down})
      bytes += resident_bytes(k, *w);
  }
  return bytes + resident_bytes(k, model.output());
}

ResidentWeights::ResidentWeights(const model::Model& model, const kernels::KernelTable& k, MemoryPool& memory,
                                 ThreadPool* pool)
    : model_(model), k_(k), data_(memory, kTagWeights, resident_total_bytes(model, k)) {
  static log::Logger& lg = log::get("infer");
  log::Phase phase(lg, fmt::format("weight copy for table '{}'", k_.name), data_.size());
  const std::optional<uint64_t> huge_before = read_anon_huge_pages();
  advise_huge_pages(data_.data(), data_.size());
  size_t off = 0;
  auto copy = [&](kernels::WeightView& w) {
    const kernels::WeightView to = resident_weight(k_, w);
    const auto* src = reinterpret_cast<const uint8_t*>(w.data);
    uint8_t* dst = data_.data() + off;
    const size_t from_bytes = kernels::weight_bytes(w);
    // Units of work: the source's blocks when converting, bytes when copying; pieces of about
    // 2 MiB of the source, each dropped from the RSS as soon as it is copied, so that the file's
    // version and the copy are never both resident for more than a piece per thread (the 2B
    // model's 656 MiB output matrix would otherwise be held twice at the end of its copy).
    const bool convert = to.type != w.type;
    const auto repack = convert ? kernels::find_format(w.type)->repack : nullptr;
    const size_t from_unit = convert ? gguf::traits(w.type).block_bytes : 1;
    const size_t to_unit = convert ? gguf::traits(to.type).block_bytes : 1;
    const auto units = static_cast<int64_t>(from_bytes / from_unit);
    const auto per_piece = static_cast<int64_t>((size_t{2} << 20) / from_unit);
    auto pieces = [&](int64_t pb, int64_t pe) {
      for (int64_t p = pb; p < pe; ++p) {
        const int64_t b = p * per_piece, e = std::min(units, b + per_piece);
        const auto n = static_cast<size_t>(e - b);
        if (convert) repack(src + b * from_unit, e - b, dst + b * to_unit);
        else std::memcpy(dst + b, src + b, n);
        model_.file().release({w.data + b * from_unit, n * from_unit});
      }
    };
    const int64_t n_pieces = (units + per_piece - 1) / per_piece;
    if (pool != nullptr) pool->parallel_for(n_pieces, pieces);
    else pieces(0, n_pieces);
    model_.file().release({w.data, from_bytes});  // the pages the pieces' borders shared
    w = to;
    w.data = reinterpret_cast<const std::byte*>(dst);
    off += pool_block_bytes(kernels::weight_bytes(to));
  };
  for (uint32_t l = 0; l < model_.config().n_layer; ++l) {
    const model::LayerWeights& L = model_.layer(l);
    LayerMatrices m{L.wq, L.wk, L.wv, L.wo, L.gate, L.up, L.down};
    for (kernels::WeightView* w : {&m.wq, &m.wk, &m.wv, &m.wo, &m.gate, &m.up, &m.down}) copy(*w);
    mats_.push_back(m);
  }
  output_ = model_.output();
  copy(output_);
  BITNET_CHECK(off == data_.size());
  const double seconds = phase.finish();
  // The share of the copy in 2 MiB pages (decode reads 4 KiB pages about 15% slower): the growth
  // of this process's transparent huge pages across the copy.
  const std::optional<uint64_t> huge_after = read_anon_huge_pages();
  std::string thp = "transparent huge pages unknown";
  if (huge_before && huge_after && off > 0)
    thp = fmt::format("{:.0f}% in 2 MiB pages",
                      100.0 * static_cast<double>(std::min<uint64_t>(off, *huge_after - std::min(*huge_after, *huge_before))) /
                          static_cast<double>(off));
  log::info(lg, "weights: {:.1f} MiB copied for kernel table '{}' in {:.2f} s, {}", static_cast<double>(off) / (1 << 20),
            k_.name, seconds, thp);
}

}  // namespace bitnet::infer
