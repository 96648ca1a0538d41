// Tap capture and comparison for crossval --layers (layers.hpp).
#include "diag/crossval/layers.hpp"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

namespace bitnet::diag {

std::string tap_label(const std::string& name, int32_t layer) {
  return layer < 0 ? name : fmt::format("layer {} {}", layer, name);
}

infer::TapObserver capture_position(TapCapture& out, uint32_t pos, std::vector<std::string> only) {
  return [&out, pos, only = std::move(only)](const infer::Tap& t) {
    if (pos < t.pos0 || pos >= t.pos0 + t.n_tokens) return;
    if (!only.empty() && std::find(only.begin(), only.end(), t.name) == only.end()) return;
    const auto row = t.row(static_cast<int64_t>(pos - t.pos0));
    out.push_back({std::string(t.name), t.layer, std::vector<float>(row.begin(), row.end())});
  };
}

namespace {

TapCompare measure(const CapturedTap& a, const CapturedTap& b, double tolerance) {
  TapCompare c;
  c.name = a.name;
  c.layer = a.layer;
  c.width = static_cast<int64_t>(a.values.size());
  if (a.values.size() != b.values.size()) {
    c.over = true;
    c.max_abs = c.rel_l2 = INFINITY;
    c.cosine = 0;
    return c;
  }
  double diff2 = 0, ref2 = 0, ours2 = 0, dot = 0;
  for (size_t i = 0; i < a.values.size(); ++i) {
    const double x = a.values[i], y = b.values[i];
    c.max_abs = std::max(c.max_abs, std::fabs(x - y));
    diff2 += (x - y) * (x - y), ref2 += y * y, ours2 += x * x, dot += x * y;
  }
  // A reference of all zeros: the error is absolute (it cannot be relative to nothing).
  c.rel_l2 = std::sqrt(diff2) / (ref2 > 0 ? std::sqrt(ref2) : 1.0);
  c.cosine = ours2 > 0 && ref2 > 0 ? dot / std::sqrt(ours2 * ref2) : (ours2 == ref2 ? 1.0 : 0.0);
  c.over = !(c.rel_l2 <= tolerance);  // NaN counts as over
  return c;
}

}  // namespace

LayersReport compare_taps(const TapCapture& ours, const TapCapture& ref, double tolerance) {
  LayersReport r;
  r.tolerance = tolerance;
  for (const CapturedTap& a : ours) {
    const auto it = std::find_if(ref.begin(), ref.end(), [&](const CapturedTap& b) { return b.name == a.name && b.layer == a.layer; });
    if (it == ref.end()) {
      r.only_ours.push_back(tap_label(a.name, a.layer));
      continue;
    }
    r.taps.push_back(measure(a, *it, tolerance));
    if (r.taps.back().over && !r.first_over) r.first_over = r.taps.size() - 1;
  }
  if (r.taps.empty()) {
    r.verdict = "no tap to compare: the reference gave none of ours";
  } else if (!r.first_over) {
    const auto worst = std::max_element(r.taps.begin(), r.taps.end(),
                                        [](const TapCompare& a, const TapCompare& b) { return a.rel_l2 < b.rel_l2; });
    r.verdict = fmt::format("no divergence: every tap within rel {:.1e}; the largest, {}, rel {:.2e}", tolerance,
                            tap_label(worst->name, worst->layer), worst->rel_l2);
  } else {
    const TapCompare& f = r.taps[*r.first_over];
    r.verdict = fmt::format("first divergence: {}, rel {:.2e} (tol {:.1e})", tap_label(f.name, f.layer), f.rel_l2, tolerance);
    if (*r.first_over > 0) {
      const TapCompare& p = r.taps[*r.first_over - 1];
      r.verdict += fmt::format("; inputs agreed at {} (rel {:.2e})", tap_label(p.name, p.layer), p.rel_l2);
    } else {
      r.verdict += "; it is the first tap: the embeddings already differ";
    }
  }
  return r;
}

}  // namespace bitnet::diag
