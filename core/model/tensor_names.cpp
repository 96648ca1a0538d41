// Building and parsing GGUF tensor names from the table in tensor_names.hpp.
#include "core/model/tensor_names.hpp"

#include <algorithm>
#include <cctype>
#include <iterator>

#include <fmt/format.h>

#include "core/base/error.hpp"

namespace bitnet::model {
namespace {

constexpr std::string_view kLayerPrefix = "blk.";

// The table must list every Tensor at its own index, or tensor_info() would return the wrong row.
constexpr bool table_in_enum_order() {
  for (size_t i = 0; i < std::size(kTensorNames); ++i)
    if (static_cast<size_t>(kTensorNames[i].tensor) != i) return false;
  return true;
}
static_assert(table_in_enum_order());
static_assert(static_cast<size_t>(Tensor::ffn_sub_norm) + 1 == std::size(kTensorNames));  // the last one listed

}  // namespace

std::string tensor_name(Tensor t, uint32_t layer, std::string_view suffix) {
  const TensorNameInfo& i = tensor_info(t);
  if (!i.per_layer) return fmt::format("{}.{}", i.base, suffix);
  return fmt::format("{}{}.{}.{}", kLayerPrefix, layer, i.base, suffix);
}

std::string tensor_name(Tensor t) {
  BITNET_CHECK(!tensor_info(t).per_layer);
  return tensor_name(t, 0);
}

std::optional<Tensor> parse_layer_tensor_name(std::string_view name, std::string_view suffix) {
  if (!name.starts_with(kLayerPrefix)) return std::nullopt;
  name.remove_prefix(kLayerPrefix.size());  // "N.<name>.<suffix>"
  if (name.size() <= suffix.size() || !name.ends_with(suffix) || name[name.size() - suffix.size() - 1] != '.')
    return std::nullopt;
  name.remove_suffix(suffix.size() + 1);  // "N.<name>"
  const size_t dot = name.find('.');
  if (dot == 0 || dot == std::string_view::npos) return std::nullopt;
  if (!std::all_of(name.begin(), name.begin() + static_cast<std::ptrdiff_t>(dot),
                   [](char c) { return std::isdigit(static_cast<unsigned char>(c)) != 0; }))
    return std::nullopt;
  const std::string_view base = name.substr(dot + 1);
  for (const TensorNameInfo& i : kTensorNames)
    if (i.per_layer && i.base == base) return i.tensor;
  return std::nullopt;
}

}  // namespace bitnet::model
