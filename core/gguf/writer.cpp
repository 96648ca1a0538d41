// GGUF serialisation.
#include "writer.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "core/base/checked.hpp"
#include "core/base/error.hpp"
#include "core/base/temp_files.hpp"

namespace bitnet::gguf {

GgufWriter::GgufWriter(uint64_t alignment) : alignment_(alignment) {
  BITNET_CHECK(is_power_of_two(alignment));
  if (alignment != kDefaultAlignment) set_u32("general.alignment", static_cast<uint32_t>(alignment));
}

void GgufWriter::put_raw(const void* p, size_t n) {
  auto b = static_cast<const std::byte*>(p);
  kv_bytes_.insert(kv_bytes_.end(), b, b + n);
}

void GgufWriter::put_string(std::string_view s) {
  put<uint64_t>(s.size());
  put_raw(s.data(), s.size());
}

void GgufWriter::begin_kv(std::string_view key, ValueType type) {
  if (std::find(keys_.begin(), keys_.end(), key) != keys_.end())
    throw make_error(ErrorCode::failure, "GGUF writer: metadata key '{}' set twice", key);
  keys_.emplace_back(key);
  ++n_kv_;
  put_string(key);
  put<uint32_t>(static_cast<uint32_t>(type));
}

void GgufWriter::set_u8(std::string_view k, uint8_t v) { begin_kv(k, ValueType::u8); put(v); }
void GgufWriter::set_i8(std::string_view k, int8_t v) { begin_kv(k, ValueType::i8); put(v); }
void GgufWriter::set_u16(std::string_view k, uint16_t v) { begin_kv(k, ValueType::u16); put(v); }
void GgufWriter::set_i16(std::string_view k, int16_t v) { begin_kv(k, ValueType::i16); put(v); }
void GgufWriter::set_u32(std::string_view k, uint32_t v) { begin_kv(k, ValueType::u32); put(v); }
void GgufWriter::set_i32(std::string_view k, int32_t v) { begin_kv(k, ValueType::i32); put(v); }
void GgufWriter::set_u64(std::string_view k, uint64_t v) { begin_kv(k, ValueType::u64); put(v); }
void GgufWriter::set_i64(std::string_view k, int64_t v) { begin_kv(k, ValueType::i64); put(v); }
void GgufWriter::set_f32(std::string_view k, float v) { begin_kv(k, ValueType::f32); put(v); }
void GgufWriter::set_f64(std::string_view k, double v) { begin_kv(k, ValueType::f64); put(v); }
void GgufWriter::set_bool(std::string_view k, bool v) { begin_kv(k, ValueType::boolean); put<uint8_t>(v ? 1 : 0); }
void GgufWriter::set_string(std::string_view k, std::string_view v) { begin_kv(k, ValueType::string); put_string(v); }

void GgufWriter::set_strings(std::string_view k, const std::vector<std::string>& v) {
  begin_kv(k, ValueType::array);
  put<uint32_t>(static_cast<uint32_t>(ValueType::string));
  put<uint64_t>(v.size());
  for (const auto& s : v) put_string(s);
}

void GgufWriter::set_array(std::string_view k, ValueType elem, std::span<const std::byte> raw) {
  size_t esize = value_type_size(elem);
  BITNET_CHECK(esize > 0 && raw.size() % esize == 0);
  begin_kv(k, ValueType::array);
  put<uint32_t>(static_cast<uint32_t>(elem));
  put<uint64_t>(raw.size() / esize);
  put_raw(raw.data(), raw.size());
}

void GgufWriter::set_value(std::string_view k, const Value& value) {
  std::visit(
      [&](const auto& v) {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, std::string_view>) {
          set_string(k, v);
        } else if constexpr (std::is_same_v<T, ArrayView>) {
          begin_kv(k, ValueType::array);
          put<uint32_t>(static_cast<uint32_t>(v.elem_type));
          put<uint64_t>(v.count);
          if (v.elem_type == ValueType::string) {
            for (auto s : v.strings) put_string(s);
          } else {
            put_raw(v.data, v.count * value_type_size(v.elem_type));
          }
        } else if constexpr (std::is_same_v<T, bool>) {
          set_bool(k, v);
        } else {
          begin_kv(k, static_cast<ValueType>(Value(v).index()));
          put(v);
        }
      },
      value);
}

GgufWriter::Tensor& GgufWriter::record(std::string_view name, GgmlType type, std::vector<int64_t> ne) {
  BITNET_CHECK(!name.empty() && name.size() <= kMaxTensorName);
  BITNET_CHECK(!ne.empty() && ne.size() <= kMaxDims);
  const TypeTraits& t = traits(type);
  BITNET_CHECK(shape_problem(t, ne).empty());
  auto nbytes = tensor_nbytes(t, ne);
  BITNET_CHECK(nbytes.has_value());
  for (const auto& other : tensors_)
    if (other.name == name) throw make_error(ErrorCode::failure, "GGUF writer: tensor '{}' added twice", name);
  tensors_.push_back(Tensor{std::string(name), type, std::move(ne), *nbytes, {}, {}});
  return tensors_.back();
}

void GgufWriter::add_tensor(std::string_view name, GgmlType type, std::vector<int64_t> ne,
                            std::span<const std::byte> data) {
  Tensor& t = record(name, type, std::move(ne));
  BITNET_CHECK(t.nbytes == data.size());
  t.data = data;
}

void GgufWriter::add_tensor(std::string_view name, GgmlType type, std::vector<int64_t> ne, TensorProducer produce) {
  BITNET_CHECK(produce != nullptr);
  record(name, type, std::move(ne)).produce = std::move(produce);
}

namespace {

// Counts what a producer writes so a wrong size is caught before the next tensor's offset.
class CountingSink final : public ByteSink {
 public:
  explicit CountingSink(ByteSink& out) : out_(out) {}
  void write(std::span<const std::byte> bytes) override {
    n_ += bytes.size();
    out_.write(bytes);
  }
  uint64_t count() const { return n_; }

 private:
  ByteSink& out_;
  uint64_t n_ = 0;
};

class VectorSink final : public ByteSink {
 public:
  explicit VectorSink(std::vector<std::byte>& v) : v_(v) {}
  void write(std::span<const std::byte> bytes) override {
    // resize + memcpy rather than insert(): see header().
    const size_t at = v_.size();
    v_.resize(at + bytes.size());
    if (!bytes.empty()) std::memcpy(v_.data() + at, bytes.data(), bytes.size());
  }

 private:
  std::vector<std::byte>& v_;
};

}  // namespace

void GgufWriter::emit(const Tensor& t, ByteSink& out) {
  if (!t.produce) {
    out.write(t.data);
    return;
  }
  CountingSink counted(out);
  t.produce(counted);
  if (counted.count() != t.nbytes)
    throw make_error(ErrorCode::failure, "GGUF writer: tensor '{}' produced {} bytes, expected {}", t.name,
                     counted.count(), t.nbytes);
}

std::vector<std::byte> GgufWriter::header() const {
  std::vector<std::byte> out;
  // resize + memcpy rather than insert(): GCC 12 at -O3 reports a false -Wstringop-overflow
  // for range-inserting into the still-empty vector.
  auto put_out = [&](const void* p, size_t n) {
    size_t at = out.size();
    out.resize(at + n);
    std::memcpy(out.data() + at, p, n);
  };
  uint32_t magic = kMagic, version = 3;
  uint64_t n_tensors = tensors_.size();
  put_out(&magic, 4);
  put_out(&version, 4);
  put_out(&n_tensors, 8);
  put_out(&n_kv_, 8);
  out.insert(out.end(), kv_bytes_.begin(), kv_bytes_.end());
  uint64_t offset = 0;
  for (const auto& t : tensors_) {
    uint64_t len = t.name.size();
    put_out(&len, 8);
    put_out(t.name.data(), t.name.size());
    auto n_dims = static_cast<uint32_t>(t.ne.size());
    put_out(&n_dims, 4);
    for (int64_t d : t.ne) put_out(&d, 8);
    auto type = static_cast<uint32_t>(t.type);
    put_out(&type, 4);
    put_out(&offset, 8);
    offset = *checked_align_up(offset + t.nbytes, alignment_);
  }
  out.resize(*checked_align_up(out.size(), alignment_));
  return out;
}

std::vector<std::byte> GgufWriter::to_bytes() const {
  std::vector<std::byte> out = header();
  VectorSink sink(out);
  for (const auto& t : tensors_) {
    emit(t, sink);
    out.resize(*checked_align_up(out.size(), alignment_));
  }
  return out;
}

namespace {

void write_all(int fd, const std::byte* p, size_t n, const std::string& path) {
  while (n > 0) {
    ssize_t w = ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      throw make_error(ErrorCode::failure, "{}: write failed: {}", path, std::strerror(errno));
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
}

// Gathers small pieces into 1 MiB writes; large pieces go straight to the file, a MiB at a time,
// so a cancellation is noticed within a MiB.
class FileSink final : public ByteSink {
 public:
  FileSink(int fd, const std::string& path, const std::atomic<bool>* cancel) : fd_(fd), path_(path), cancel_(cancel) {
    buf_.reserve(kBuffer);
  }
  void write(std::span<const std::byte> bytes) override {
    if (buf_.size() + bytes.size() > kBuffer) flush();
    if (bytes.size() >= kBuffer) {
      for (size_t at = 0; at < bytes.size(); at += kBuffer) {
        check_cancel();
        const size_t n = std::min(kBuffer, bytes.size() - at);
        write_all(fd_, bytes.data() + at, n, path_);
        written_ += n;
      }
      return;
    }
    const size_t at = buf_.size();
    buf_.resize(at + bytes.size());
    if (!bytes.empty()) std::memcpy(buf_.data() + at, bytes.data(), bytes.size());
  }
  void pad(uint64_t n) {
    static constexpr std::byte zeros[256] = {};
    while (n > 0) {
      const size_t k = static_cast<size_t>(std::min<uint64_t>(n, sizeof zeros));
      write({zeros, k});
      n -= k;
    }
  }
  void flush() {
    check_cancel();
    write_all(fd_, buf_.data(), buf_.size(), path_);
    written_ += buf_.size();
    buf_.clear();
  }
  // Bytes handed to this sink so far (written or buffered).
  uint64_t count() const { return written_ + buf_.size(); }
  void check_cancel() const {
    if (cancel_ != nullptr && cancel_->load())
      throw make_error(ErrorCode::interrupted, "{}: cancelled; the file was removed", path_);
  }

 private:
  static constexpr size_t kBuffer = size_t{1} << 20;
  int fd_;
  const std::string& path_;
  const std::atomic<bool>* cancel_;
  uint64_t written_ = 0;
  std::vector<std::byte> buf_;
};

}  // namespace

void GgufWriter::write(const std::filesystem::path& path, const WriteOptions& opt) const {
  TempFile tmp_file(path);  // removed unless committed, and by a signal handler or the watchdog
  const std::string tmp = tmp_file.path().string();
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw make_error(ErrorCode::failure, "{}: cannot create: {}", tmp, std::strerror(errno));
  try {
    FileSink sink(fd, tmp, opt.cancel);
    const std::vector<std::byte> head = header();
    WriteProgress p{0, tensors_.size(), 0, head.size()};
    for (const auto& t : tensors_) p.bytes_total += *checked_align_up(t.nbytes, alignment_);
    sink.write(head);
    for (const auto& t : tensors_) {
      if (opt.progress) {
        p.bytes_done = sink.count();
        opt.progress(p);
      }
      sink.check_cancel();
      emit(t, sink);
      sink.pad(*checked_align_up(t.nbytes, alignment_) - t.nbytes);
      ++p.tensors_done;
    }
    sink.flush();
    if (opt.progress) {
      p.bytes_done = sink.count();
      opt.progress(p);
    }
    if (::fsync(fd) != 0) throw make_error(ErrorCode::failure, "{}: fsync failed: {}", tmp, std::strerror(errno));
    sink.check_cancel();  // the last moment the destination can still be left as it was
  } catch (...) {
    ::close(fd);
    throw;
  }
  ::close(fd);
  tmp_file.commit();
}

}  // namespace bitnet::gguf
