// GGUF v2/v3 reader over a read-only mapping. Every count, length and offset is bounds-checked
// with overflow-safe 64-bit arithmetic before use; a bad file raises bitnet::Error(invalid_input)
// whose message names the file, the field, the byte offset, the value and the limit.
// Knows nothing of BitNet: model-level checks live in core/model.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <variant>
#include <vector>

#include "core/base/mapped_file.hpp"
#include "core/gguf/types.hpp"

namespace bitnet::gguf {

inline constexpr uint32_t kMagic = 0x46554747;  // "GGUF" read little-endian
inline constexpr uint64_t kDefaultAlignment = 32;
inline constexpr size_t kMaxTensorName = 63;   // ggml's GGML_MAX_NAME (64) minus the NUL
inline constexpr size_t kMaxKeyLength = 1024;
inline constexpr uint32_t kMaxDims = 4;

enum class ValueType : uint32_t { u8, i8, u16, i16, u32, i32, f32, boolean, string, array, u64, i64, f64 };
inline constexpr uint32_t kValueTypeCount = 13;
std::string_view value_type_name(ValueType t);
// Bytes of one element of a fixed-size type; 0 for string and array.
size_t value_type_size(ValueType t);

// `s` for an error message: bytes outside printable ASCII become \xNN, so a name read from a
// file can neither split the one-line message nor send control sequences to a terminal.
std::string printable(std::string_view s);

// A metadata array, viewed in place. Numeric elements are read with element<T>(i);
// string arrays are split into views up front.
struct ArrayView {
  ValueType elem_type = ValueType::u8;
  uint64_t count = 0;
  const std::byte* data = nullptr;          // numeric payload (unaligned, little-endian)
  std::vector<std::string_view> strings;    // elem_type == string

  template <typename T>
  T element(uint64_t i) const {
    T v;
    std::memcpy(&v, data + i * sizeof(T), sizeof(T));
    return v;
  }
};

// Variant index == GGUF value type id.
using Value = std::variant<uint8_t, int8_t, uint16_t, int16_t, uint32_t, int32_t, float, bool,
                           std::string_view, ArrayView, uint64_t, int64_t, double>;

struct KeyValue {
  std::string_view key;
  Value value;
  uint64_t offset = 0;  // file offset where this KV starts
  ValueType type() const { return static_cast<ValueType>(value.index()); }
};

struct TensorInfo {
  std::string name;
  uint32_t n_dims = 0;
  std::array<int64_t, kMaxDims> ne{1, 1, 1, 1};  // ne[0] is the contiguous dimension
  GgmlType type = GgmlType::F32;
  uint64_t offset = 0;       // relative to the data section
  uint64_t nbytes = 0;
  uint64_t info_offset = 0;  // file offset of this tensor's info record
  int64_t n_elements() const { return ne[0] * ne[1] * ne[2] * ne[3]; }
  std::span<const int64_t> dims() const { return {ne.data(), n_dims}; }
};

class GgufFile {
 public:
  // Maps and validates the whole container. Throws bitnet::Error(invalid_input).
  static GgufFile open(const std::filesystem::path& path);

  const std::filesystem::path& path() const { return map_.path(); }
  uint64_t file_size() const { return map_.size(); }
  uint32_t version() const { return version_; }
  uint64_t alignment() const { return alignment_; }
  uint64_t data_offset() const { return data_offset_; }

  const std::vector<KeyValue>& kvs() const { return kvs_; }
  const KeyValue* find(std::string_view key) const;

  // Typed getters: nullopt when absent; Error(invalid_input) when present with the wrong type.
  // get_uint accepts any integer type holding a non-negative value; get_float f32 or f64.
  std::optional<std::string_view> get_string(std::string_view key) const;
  std::optional<uint64_t> get_uint(std::string_view key) const;
  std::optional<double> get_float(std::string_view key) const;
  std::optional<bool> get_bool(std::string_view key) const;
  const ArrayView* get_array(std::string_view key) const;

  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  const TensorInfo* find_tensor(std::string_view name) const;
  std::span<const std::byte> tensor_data(const TensorInfo& t) const;
  // See MappedFile::release: for tensors whose data was copied into another layout.
  void release(std::span<const std::byte> range) const { map_.release(range); }

  // "FILE: " prefix for messages about this file.
  std::string where() const { return map_.path().string() + ": "; }

 private:
  MappedFile map_;
  uint32_t version_ = 0;
  uint64_t alignment_ = kDefaultAlignment;
  uint64_t data_offset_ = 0;
  std::vector<KeyValue> kvs_;
  std::unordered_map<std::string_view, size_t> kv_index_;
  std::vector<TensorInfo> tensors_;
  std::unordered_map<std::string_view, size_t> tensor_index_;

  friend class Parser;
};

}  // namespace bitnet::gguf
