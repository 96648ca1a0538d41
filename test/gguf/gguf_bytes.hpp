// Test-only GGUF byte builder: writes any byte sequence by hand, valid or not, so a malformed
// case reads as a few lines ("header, one KV with type 13"). Nothing here validates; the point
// is to be able to lie about every count, length, type id and offset. size() is the offset the
// next byte will land at, which is how tests name the "at byte N" they expect.
#pragma once

#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <iterator>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <vector>

#include "core/gguf/reader.hpp"

#include "support/scoped.hpp"

namespace bitnet::test {

class GgufBytes {
 public:
  // --- raw pieces (little-endian, as on every host this project supports) ---
  template <typename T>
  GgufBytes& put(T v) {
    static_assert(std::is_trivially_copyable_v<T>);
    const auto* p = reinterpret_cast<const std::byte*>(&v);
    buf_.insert(buf_.end(), p, p + sizeof v);
    return *this;
  }
  GgufBytes& u8(uint8_t v) { return put(v); }
  GgufBytes& u32(uint32_t v) { return put(v); }
  GgufBytes& u64(uint64_t v) { return put(v); }
  GgufBytes& i32(int32_t v) { return put(v); }
  GgufBytes& f32(float v) { return put(v); }
  // Characters as they are, no length prefix.
  GgufBytes& chars(std::string_view s) {
    const auto* p = reinterpret_cast<const std::byte*>(s.data());
    buf_.insert(buf_.end(), p, p + s.size());
    return *this;
  }
  GgufBytes& zeros(uint64_t n) {
    buf_.resize(buf_.size() + n);
    return *this;
  }
  GgufBytes& fill(uint64_t n, uint8_t value) {
    buf_.resize(buf_.size() + n, std::byte{value});
    return *this;
  }
  // Zero bytes up to the next multiple of `alignment` (absolute file offset).
  GgufBytes& pad(uint64_t alignment) {
    while (buf_.size() % alignment != 0) buf_.push_back(std::byte{0});
    return *this;
  }

  // --- GGUF pieces ---
  // A GGUF string: u64 length + bytes.
  GgufBytes& str(std::string_view s) { return u64(s.size()).chars(s); }
  // The 24-byte header. Counts are u64 in v2/v3; nothing stops a test from lying.
  GgufBytes& header(uint64_t n_tensors, uint64_t n_kv, uint32_t version = 3) {
    return chars("GGUF").u32(version).u64(n_tensors).u64(n_kv);
  }
  // Key and value-type id; the caller appends the value bytes.
  GgufBytes& kv(std::string_view key, uint32_t type) { return str(key).u32(type); }
  GgufBytes& kv(std::string_view key, gguf::ValueType type) { return kv(key, static_cast<uint32_t>(type)); }
  GgufBytes& kv_u32(std::string_view key, uint32_t v) { return kv(key, gguf::ValueType::u32).u32(v); }
  GgufBytes& kv_str(std::string_view key, std::string_view v) { return kv(key, gguf::ValueType::string).str(v); }
  // Array header: element type id + count; the caller appends the elements.
  GgufBytes& kv_array(std::string_view key, uint32_t elem_type, uint64_t count) {
    return kv(key, gguf::ValueType::array).u32(elem_type).u64(count);
  }
  GgufBytes& kv_array(std::string_view key, gguf::ValueType elem_type, uint64_t count) {
    return kv_array(key, static_cast<uint32_t>(elem_type), count);
  }
  // A tensor info record: name, n_dims = ne.size(), ne[], ggml type id, data offset.
  GgufBytes& tensor(std::string_view name, std::initializer_list<uint64_t> ne, uint32_t type, uint64_t offset) {
    str(name).u32(static_cast<uint32_t>(ne.size()));
    for (uint64_t d : ne) u64(d);
    return u32(type).u64(offset);
  }
  GgufBytes& tensor(std::string_view name, std::initializer_list<uint64_t> ne, gguf::GgmlType type, uint64_t offset) {
    return tensor(name, ne, static_cast<uint32_t>(type), offset);
  }

  // --- editing ---
  template <typename T>
  void patch(uint64_t at, T v) {
    if (at + sizeof v > buf_.size()) throw std::out_of_range("GgufBytes::patch past the end");
    std::memcpy(buf_.data() + at, &v, sizeof v);
  }
  void truncate(uint64_t n) { buf_.resize(n); }

  uint64_t size() const { return buf_.size(); }
  const std::vector<std::byte>& bytes() const { return buf_; }

 private:
  std::vector<std::byte> buf_;
};

inline void write_file(const std::filesystem::path& p, std::span<const std::byte> bytes) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  if (!out) throw std::runtime_error("cannot write " + p.string());
}

inline std::vector<std::byte> read_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + p.string());
  std::vector<char> chars((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::byte> out(chars.size());
  if (!chars.empty()) std::memcpy(out.data(), chars.data(), chars.size());
  return out;
}


}  // namespace bitnet::test
