// GGUF v3 writer: metadata and tensors in, a valid file out (tensors back to back, each padded
// to the alignment). Used by tests, `bitnet convert` and synthetic models. Files are written
// to a temporary name and renamed, so a failed write never leaves a half-written model.
#pragma once

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/gguf/reader.hpp"

namespace bitnet::gguf {

// Receives one tensor's bytes in order, in pieces of any size (see the streaming add_tensor).
class ByteSink {
 public:
  virtual void write(std::span<const std::byte> bytes) = 0;

 protected:
  ~ByteSink() = default;
};

// Produces a tensor's bytes into a sink when the file is written. It must write exactly the
// type's byte size for the tensor's shape; it may throw (the write is then abandoned).
using TensorProducer = std::function<void(ByteSink& out)>;

// Where a write() stands, after each tensor.
struct WriteProgress {
  size_t tensors_done = 0, tensors_total = 0;
  uint64_t bytes_done = 0, bytes_total = 0;  // of the whole file
};

struct WriteOptions {
  // Checked before every tensor and every MiB written: once set, the write stops with
  // Error(interrupted), the temporary file is removed and the destination is left as it was.
  const std::atomic<bool>* cancel = nullptr;
  std::function<void(const WriteProgress&)> progress;  // called after the header and each tensor
};

class GgufWriter {
 public:
  explicit GgufWriter(uint64_t alignment = kDefaultAlignment);

  void set_u8(std::string_view key, uint8_t v);
  void set_i8(std::string_view key, int8_t v);
  void set_u16(std::string_view key, uint16_t v);
  void set_i16(std::string_view key, int16_t v);
  void set_u32(std::string_view key, uint32_t v);
  void set_i32(std::string_view key, int32_t v);
  void set_u64(std::string_view key, uint64_t v);
  void set_i64(std::string_view key, int64_t v);
  void set_f32(std::string_view key, float v);
  void set_f64(std::string_view key, double v);
  void set_bool(std::string_view key, bool v);
  void set_string(std::string_view key, std::string_view v);
  void set_strings(std::string_view key, const std::vector<std::string>& v);
  // A numeric array from raw little-endian element bytes (count = raw.size() / element size).
  void set_array(std::string_view key, ValueType elem, std::span<const std::byte> raw);
  template <typename T>
  void set_array(std::string_view key, ValueType elem, const std::vector<T>& v) {
    set_array(key, elem, std::as_bytes(std::span<const T>(v)));
  }
  // Copies a value read from another file (used to carry metadata through a conversion).
  void set_value(std::string_view key, const Value& v);

  // Records a tensor. The data span must stay valid until write(); its size must equal the
  // type's byte size for ne.
  void add_tensor(std::string_view name, GgmlType type, std::vector<int64_t> ne, std::span<const std::byte> data);
  // Records a tensor whose bytes are made at write time, so a large model never has to be in
  // memory at once. The producer runs once per write() or to_bytes() call.
  void add_tensor(std::string_view name, GgmlType type, std::vector<int64_t> ne, TensorProducer produce);

  // The whole file in memory (small files, tests).
  std::vector<std::byte> to_bytes() const;
  // Writes path.tmp-PID (registered in core/base/temp_files.hpp while it exists), fsyncs, renames
  // it over path. Throws bitnet::Error on failure, Error(interrupted) when cancelled.
  void write(const std::filesystem::path& path, const WriteOptions& opt = {}) const;

 private:
  struct Tensor {
    std::string name;
    GgmlType type;
    std::vector<int64_t> ne;
    uint64_t nbytes;
    std::span<const std::byte> data;  // when produce is empty
    TensorProducer produce;
  };
  uint64_t alignment_;
  uint64_t n_kv_ = 0;
  std::vector<std::string> keys_;
  std::vector<std::byte> kv_bytes_;
  std::vector<Tensor> tensors_;

  void begin_kv(std::string_view key, ValueType type);
  void put_raw(const void* p, size_t n);
  void put_string(std::string_view s);
  template <typename T>
  void put(T v) { put_raw(&v, sizeof v); }
  std::vector<std::byte> header() const;
  Tensor& record(std::string_view name, GgmlType type, std::vector<int64_t> ne);
  // Sends tensor t's bytes (without padding) to out; checks a producer wrote exactly nbytes.
  static void emit(const Tensor& t, ByteSink& out);
};

}  // namespace bitnet::gguf
