// Metadata as text: one row per key, long values cut so that a 128k-token vocabulary stays one
// line.
#include "metadata_rows.hpp"

#include <fmt/format.h>

#include <type_traits>
#include <variant>

namespace bitnet::diag {
namespace {

constexpr size_t kMaxString = 120;  // characters of one string value shown
constexpr uint64_t kMaxItems = 4;   // array elements shown before "..."

std::string quoted(std::string_view s) {
  std::string p = gguf::printable(s);
  if (p.size() > kMaxString) p = p.substr(0, kMaxString) + "...";
  return "\"" + p + "\"";
}

std::string element(const gguf::ArrayView& a, uint64_t i) {
  using gguf::ValueType;
  switch (a.elem_type) {
    case ValueType::u8: return fmt::format("{}", a.element<uint8_t>(i));
    case ValueType::i8: return fmt::format("{}", a.element<int8_t>(i));
    case ValueType::u16: return fmt::format("{}", a.element<uint16_t>(i));
    case ValueType::i16: return fmt::format("{}", a.element<int16_t>(i));
    case ValueType::u32: return fmt::format("{}", a.element<uint32_t>(i));
    case ValueType::i32: return fmt::format("{}", a.element<int32_t>(i));
    case ValueType::f32: return fmt::format("{}", a.element<float>(i));
    case ValueType::boolean: return a.element<uint8_t>(i) ? "true" : "false";
    case ValueType::string: return quoted(a.strings[i]);
    case ValueType::u64: return fmt::format("{}", a.element<uint64_t>(i));
    case ValueType::i64: return fmt::format("{}", a.element<int64_t>(i));
    case ValueType::f64: return fmt::format("{}", a.element<double>(i));
    case ValueType::array: break;
  }
  return "?";
}

std::string array_text(const gguf::ArrayView& a) {
  std::string s = fmt::format("[{} x {}:", a.count, gguf::value_type_name(a.elem_type));
  const uint64_t shown = a.elem_type == gguf::ValueType::array ? 0 : std::min(a.count, kMaxItems);
  for (uint64_t i = 0; i < shown; ++i) s += (i ? ", " : " ") + element(a, i);
  return s + (a.count > shown ? ", ...]" : "]");
}

}  // namespace

std::vector<MetadataRow> metadata_rows(const gguf::GgufFile& f) {
  std::vector<MetadataRow> rows;
  for (const gguf::KeyValue& kv : f.kvs()) {
    MetadataRow r{gguf::printable(kv.key), std::string(gguf::value_type_name(kv.type())), ""};
    std::visit(
        [&](const auto& v) {
          using T = std::decay_t<decltype(v)>;
          if constexpr (std::is_same_v<T, gguf::ArrayView>) {
            r.type = fmt::format("array[{}]", gguf::value_type_name(v.elem_type));
            r.value = array_text(v);
          } else if constexpr (std::is_same_v<T, std::string_view>) {
            r.value = quoted(v);
          } else if constexpr (std::is_same_v<T, bool>) {
            r.value = v ? "true" : "false";
          } else {
            r.value = fmt::format("{}", v);
          }
        },
        kv.value);
    rows.push_back(std::move(r));
  }
  return rows;
}

}  // namespace bitnet::diag
