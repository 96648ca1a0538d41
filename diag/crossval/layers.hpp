// crossval --layers: one position's taps (core/infer/taps.hpp) of our engine against a
// reference's, and the first tap whose error passes the tolerance: where two runs part.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/infer/taps.hpp"

namespace bitnet::diag {

struct CapturedTap {
  std::string name;
  int32_t layer = -1;
  std::vector<float> values;  // the tap's row at the captured position
};
using TapCapture = std::vector<CapturedTap>;

// An observer that appends the row of position `pos` of every tap it sees to `out` (only the
// names in `only`, when not empty). `out` must outlive the observer's use.
infer::TapObserver capture_position(TapCapture& out, uint32_t pos, std::vector<std::string> only = {});

struct TapCompare {
  std::string name;
  int32_t layer = -1;
  int64_t width = 0;
  double max_abs = 0;  // max |ours - reference|
  double rel_l2 = 0;   // ||ours - reference|| / ||reference||
  double cosine = 1;
  bool over = false;   // rel_l2 above the tolerance (or a width or NaN difference)
};

struct LayersReport {
  size_t step = 0;        // the crossval step whose logits the position gives
  uint32_t position = 0;  // the token position compared
  double tolerance = 0;   // on rel_l2
  std::vector<TapCompare> taps;        // in forward-pass order
  std::optional<size_t> first_over;    // index into taps
  std::vector<std::string> only_ours;  // taps the reference did not give ("layer 3 ffn_sub_norm")
  std::string verdict;    // "first divergence: layer 3 ffn_gate, rel 2.1e-2 (tol 1e-3); inputs agreed at ..."
};

// Pairs the taps by (layer, name) in our order and measures each pair.
LayersReport compare_taps(const TapCapture& ours, const TapCapture& ref, double tolerance);

// "layer 3 ffn_gate", "result_output"
std::string tap_label(const std::string& name, int32_t layer);

}  // namespace bitnet::diag
