// GGUF container parsing and validation (SPEC.md 1.1, PEERS.md 4.3).
#include "reader.hpp"

#include <algorithm>
#include <bit>

#include <fmt/ranges.h>

#include "core/base/checked.hpp"
#include "core/base/error.hpp"
#include "core/base/log.hpp"

namespace bitnet::gguf {

std::string_view value_type_name(ValueType t) {
  static constexpr std::string_view names[] = {"u8",  "i8",     "u16",   "i16", "u32", "i32", "f32",
                                               "bool", "string", "array", "u64", "i64", "f64"};
  auto i = static_cast<uint32_t>(t);
  return i < kValueTypeCount ? names[i] : "invalid";
}

size_t value_type_size(ValueType t) {
  switch (t) {
    case ValueType::u8: case ValueType::i8: case ValueType::boolean: return 1;
    case ValueType::u16: case ValueType::i16: return 2;
    case ValueType::u32: case ValueType::i32: case ValueType::f32: return 4;
    case ValueType::u64: case ValueType::i64: case ValueType::f64: return 8;
    case ValueType::string: case ValueType::array: return 0;
  }
  return 0;
}

std::string printable(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    if (c >= 0x20 && c < 0x7f) out += c;
    else out += fmt::format("\\x{:02x}", static_cast<uint8_t>(c));
  }
  return out;
}

namespace {

// Smallest possible records, used to reject counts that cannot fit in the bytes left.
constexpr uint64_t kMinKvBytes = 8 + 1 + 4 + 1;               // key len, 1-byte key, type, u8
constexpr uint64_t kMinTensorInfoBytes = 8 + 1 + 4 + 8 + 4 + 8;  // name len, name, n_dims, ne0, type, offset

// Counts are checked against the bytes left, but a record in memory is several times larger
// than its minimum size in the file: reserving a full count up front could ask for many times
// the file size before a single record is read. Reserve at most this many; grow past it only
// as records actually parse.
constexpr uint64_t kMaxReserve = 1 << 16;
size_t reserve_count(uint64_t n) { return static_cast<size_t>(std::min(n, kMaxReserve)); }

bool printable_ascii(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c > 0x20 && c < 0x7f; });
}

}  // namespace

// Parses the mapped bytes into a GgufFile. A cursor with a running offset; every read checks
// that the bytes exist and says what it was reading when they do not.
class Parser {
 public:
  explicit Parser(GgufFile& f) : f_(f), bytes_(f.map_.bytes()) {}

  void run();

 private:
  GgufFile& f_;
  std::span<const std::byte> bytes_;
  uint64_t pos_ = 0;

  uint64_t left() const { return bytes_.size() - pos_; }

  template <typename... Args>
  [[noreturn]] void fail(uint64_t at, fmt::format_string<Args...> fm, Args&&... args) const {
    throw Error(ErrorCode::invalid_input,
                f_.where() + fmt::format("at byte {}: ", at) + fmt::format(fm, std::forward<Args>(args)...));
  }

  // `what` names the field for error messages: a string, or a callable returning one, so that
  // hot loops (400k vocabulary strings) only format a description when something is wrong.
  template <typename What>
  static std::string describe(const What& what) {
    if constexpr (std::is_invocable_v<What>) return what();
    else return std::string(what);
  }

  template <typename What>
  void need(uint64_t n, const What& what) const {
    if (n > left())
      fail(pos_, "{} needs {} bytes but only {} remain in the {}-byte file (truncated download?)", describe(what), n,
           left(), bytes_.size());
  }

  template <typename T, typename What>
  T read(const What& what) {
    need(sizeof(T), what);
    T v;
    std::memcpy(&v, bytes_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }

  // A GGUF string (u64 length + bytes). `max_len` is a format limit such as the key length;
  // the bytes left in the file bound every string anyway.
  template <typename What>
  std::string_view read_string(const What& what, uint64_t max_len = UINT64_MAX) {
    uint64_t at = pos_;
    uint64_t len = read<uint64_t>(what);
    if (len > max_len) fail(at, "{} length {} exceeds the limit of {} bytes", describe(what), len, max_len);
    if (len > left())
      fail(at, "{} length {} exceeds the {} bytes left in the file", describe(what), len, left());
    std::string_view s(reinterpret_cast<const char*>(bytes_.data() + pos_), len);
    pos_ += len;
    return s;
  }

  void header();
  void read_kvs(uint64_t n_kv);
  Value read_value(ValueType type, std::string_view key, uint64_t at);
  ArrayView read_array(std::string_view key, uint64_t at);
  void apply_alignment();
  void read_tensor_infos(uint64_t n_tensors);
  void read_tensor_info(uint64_t index);
  void place_tensors();
};

void Parser::header() {
  const uint64_t size = bytes_.size();
  if (size == 0) fail(0, "file is empty (0 bytes); expected a GGUF model");
  if (size < 24) fail(0, "file is {} bytes, shorter than the 24-byte GGUF header", size);

  char magic[4];
  std::memcpy(magic, bytes_.data(), 4);
  std::string_view m(magic, 4);
  if (m != "GGUF") {
    if (m == "FUGG") fail(0, "magic 'FUGG': a big-endian GGUF file; only little-endian files are supported");
    for (std::string_view legacy : {"ggml", "ggmf", "ggjt", "ggla", "ggsn"}) {
      std::string rev(legacy.rbegin(), legacy.rend());
      if (m == legacy || m == rev)
        fail(0, "legacy GGML format (magic '{}'), not GGUF; convert it first with llama.cpp's conversion "
                "scripts", legacy);
    }
    fail(0, "bad magic '{}' (expected 'GGUF'); not a GGUF model file", printable(m));
  }
  pos_ = 4;
  uint32_t version = read<uint32_t>("version");
  if (version == 0) fail(4, "GGUF version 0 is invalid (supported: 2 and 3)");
  if (version == 1)
    fail(4, "GGUF version 1 is not supported (it used 32-bit counts); re-convert with a current llama.cpp");
  if (version > 3) {
    uint32_t swapped = __builtin_bswap32(version);
    if (swapped >= 1 && swapped <= 3)
      fail(4, "version field {:#010x} is byte-swapped: a big-endian GGUF file; only little-endian files are "
              "supported", version);
    fail(4, "GGUF version {} is newer than this build supports (2 and 3)", version);
  }
  f_.version_ = version;

  uint64_t n_tensors = read<uint64_t>("tensor count");
  uint64_t n_kv = read<uint64_t>("metadata count");
  if (n_tensors > static_cast<uint64_t>(INT64_MAX)) fail(8, "tensor count {} is negative as a signed 64-bit value", n_tensors);
  if (n_kv > static_cast<uint64_t>(INT64_MAX)) fail(16, "metadata count {} is negative as a signed 64-bit value", n_kv);
  // Each record needs a minimum number of bytes; a count beyond what the file can hold is corrupt,
  // and checking it first keeps a bogus count from driving a huge allocation.
  if (n_kv > left() / kMinKvBytes)
    fail(16, "metadata count {} cannot fit in the {} bytes left (each entry needs at least {} bytes)", n_kv,
         left(), kMinKvBytes);
  auto kv_min = n_kv * kMinKvBytes;
  if (n_tensors > (left() - kv_min) / kMinTensorInfoBytes)
    fail(8, "tensor count {} cannot fit in the {} bytes left (each tensor info needs at least {} bytes)",
         n_tensors, left(), kMinTensorInfoBytes);

  read_kvs(n_kv);
  apply_alignment();
  read_tensor_infos(n_tensors);
  place_tensors();
}

void Parser::read_kvs(uint64_t n_kv) {
  f_.kvs_.reserve(reserve_count(n_kv));
  for (uint64_t i = 0; i < n_kv; ++i) {
    uint64_t at = pos_;
    std::string_view key = read_string([&] { return fmt::format("metadata key #{}", i); }, kMaxKeyLength);
    if (key.empty()) fail(at, "metadata key #{} is empty", i);
    if (!printable_ascii(key))
      fail(at, "metadata key #{} is not printable ASCII (keys look like 'general.architecture')", i);
    if (f_.kv_index_.count(key)) fail(at, "duplicate metadata key '{}'", key);
    uint64_t type_at = pos_;
    uint32_t type = read<uint32_t>([&] { return fmt::format("type of key '{}'", key); });
    if (type >= kValueTypeCount)
      fail(type_at, "key '{}' has value type {}, beyond the last valid type ({})", key, type, kValueTypeCount - 1);
    Value v = read_value(static_cast<ValueType>(type), key, type_at);
    f_.kv_index_.emplace(key, f_.kvs_.size());
    f_.kvs_.push_back(KeyValue{key, std::move(v), at});
  }
}

Value Parser::read_value(ValueType type, std::string_view key, uint64_t at) {
  auto what = [&] { return fmt::format("value of key '{}'", key); };
  switch (type) {
    case ValueType::u8: return read<uint8_t>(what);
    case ValueType::i8: return read<int8_t>(what);
    case ValueType::u16: return read<uint16_t>(what);
    case ValueType::i16: return read<int16_t>(what);
    case ValueType::u32: return read<uint32_t>(what);
    case ValueType::i32: return read<int32_t>(what);
    case ValueType::f32: return read<float>(what);
    case ValueType::boolean: {
      uint64_t b_at = pos_;
      uint8_t b = read<uint8_t>(what);
      if (b > 1) fail(b_at, "bool key '{}' holds {}, expected 0 or 1", key, b);
      return b == 1;
    }
    case ValueType::string: return read_string(what);
    case ValueType::array: return read_array(key, at);
    case ValueType::u64: return read<uint64_t>(what);
    case ValueType::i64: return read<int64_t>(what);
    case ValueType::f64: return read<double>(what);
  }
  fail(at, "key '{}' has an invalid value type", key);
}

ArrayView Parser::read_array(std::string_view key, uint64_t) {
  ArrayView a;
  uint64_t type_at = pos_;
  uint32_t elem = read<uint32_t>(fmt::format("element type of array '{}'", key));
  if (elem >= kValueTypeCount)
    fail(type_at, "array '{}' has element type {}, beyond the last valid type ({})", key, elem, kValueTypeCount - 1);
  a.elem_type = static_cast<ValueType>(elem);
  if (a.elem_type == ValueType::array)
    fail(type_at, "array '{}' holds arrays; nested arrays are not supported", key);
  uint64_t count_at = pos_;
  a.count = read<uint64_t>(fmt::format("element count of array '{}'", key));
  if (a.elem_type == ValueType::string) {
    // Each string has at least its 8-byte length, which bounds the count before reserving.
    if (a.count > left() / 8)
      fail(count_at, "array '{}' claims {} strings but only {} bytes remain (at least 8 per string)", key,
           a.count, left());
    a.strings.reserve(reserve_count(a.count));
    for (uint64_t i = 0; i < a.count; ++i)
      a.strings.push_back(read_string([&] { return fmt::format("string #{} of array '{}'", i, key); }));
    return a;
  }
  size_t esize = value_type_size(a.elem_type);
  auto total = checked_mul(a.count, static_cast<uint64_t>(esize));
  if (!total || *total > left())
    fail(count_at, "array '{}' of {} {} elements needs {} bytes but only {} remain", key, a.count,
         value_type_name(a.elem_type), total ? fmt::to_string(*total) : std::string("more than 2^64"), left());
  a.data = bytes_.data() + pos_;
  if (a.elem_type == ValueType::boolean) {
    for (uint64_t i = 0; i < a.count; ++i) {
      auto b = static_cast<uint8_t>(a.data[i]);
      if (b > 1) fail(pos_ + i, "element {} of bool array '{}' holds {}, expected 0 or 1", i, key, b);
    }
  }
  pos_ += *total;
  return a;
}

void Parser::apply_alignment() {
  const KeyValue* kv = f_.find("general.alignment");
  if (!kv) return;
  if (kv->type() != ValueType::u32)
    fail(kv->offset, "'general.alignment' has type {}, expected u32", value_type_name(kv->type()));
  uint32_t a = std::get<uint32_t>(kv->value);
  if (!is_power_of_two(a))
    fail(kv->offset, "'general.alignment' is {}; it must be a non-zero power of two", a);
  f_.alignment_ = a;
}

void Parser::read_tensor_infos(uint64_t n_tensors) {
  f_.tensors_.reserve(reserve_count(n_tensors));
  for (uint64_t i = 0; i < n_tensors; ++i) read_tensor_info(i);
}

void Parser::read_tensor_info(uint64_t index) {
  TensorInfo t;
  t.info_offset = pos_;
  std::string_view raw = read_string(fmt::format("name of tensor #{}", index));
  const std::string name = printable(raw);  // as shown in messages
  if (raw.empty()) fail(t.info_offset, "tensor #{} has an empty name", index);
  if (raw.size() > kMaxTensorName)
    fail(t.info_offset, "tensor #{} name '{}...' is {} bytes; the limit is {}", index, name.substr(0, 32),
         raw.size(), kMaxTensorName);
  if (f_.tensor_index_.count(raw)) fail(t.info_offset, "duplicate tensor name '{}'", name);
  f_.tensor_index_.emplace(raw, f_.tensors_.size());  // the view points into the mapping: stable
  t.name = std::string(raw);

  uint64_t dims_at = pos_;
  t.n_dims = read<uint32_t>(fmt::format("dimension count of tensor '{}'", name));
  if (t.n_dims == 0 || t.n_dims > kMaxDims)
    fail(dims_at, "tensor '{}' has {} dimensions; supported is 1 to {}", name, t.n_dims, kMaxDims);
  int64_t n = 1;
  for (uint32_t d = 0; d < t.n_dims; ++d) {
    uint64_t ne_at = pos_;
    uint64_t ne = read<uint64_t>(fmt::format("dimension {} of tensor '{}'", d, name));
    if (ne > static_cast<uint64_t>(INT64_MAX))
      fail(ne_at, "tensor '{}' dimension {} is {} (negative as int64)", name, d, static_cast<int64_t>(ne));
    t.ne[d] = static_cast<int64_t>(ne);
    auto m = checked_mul(n, t.ne[d]);
    if (!m) fail(ne_at, "tensor '{}' element count overflows 64 bits at dimension {} ({})", name, d, ne);
    n = *m;
  }
  uint64_t type_at = pos_;
  uint32_t type = read<uint32_t>(fmt::format("type of tensor '{}'", name));
  const TypeTraits* tt = find_type(type);
  if (!tt) fail(type_at, "tensor '{}' has ggml type {}: {}", name, type, unknown_type_hint(type));
  t.type = tt->type;
  if (auto why = shape_problem(*tt, t.dims()); !why.empty())
    fail(t.info_offset, "tensor '{}' ({}, shape {}): {}", name, tt->name, fmt::join(t.dims(), "x"), why);
  auto nbytes = tensor_nbytes(*tt, t.dims());
  if (!nbytes)
    fail(t.info_offset, "tensor '{}' ({}, shape {}, {} elements): byte size overflows 64 bits", name, tt->name,
         fmt::join(t.dims(), "x"), n);
  t.nbytes = *nbytes;
  uint64_t off_at = pos_;
  t.offset = read<uint64_t>(fmt::format("data offset of tensor '{}'", name));
  if (t.offset % f_.alignment_ != 0)
    fail(off_at, "tensor '{}' data offset {} is not a multiple of the alignment {}", name, t.offset, f_.alignment_);
  f_.tensors_.push_back(std::move(t));
}

void Parser::place_tensors() {
  auto data = checked_align_up(pos_, f_.alignment_);
  if (!data) fail(pos_, "data section start overflows 64 bits");
  f_.data_offset_ = *data;
  if (f_.tensors_.empty()) return;  // vocab-only files may end right after the metadata

  const uint64_t size = bytes_.size();
  uint64_t expected = 0;  // where the next tensor must start, relative to the data section
  const TensorInfo* prev = nullptr;
  for (const TensorInfo& t : f_.tensors_) {
    if (t.offset != expected) {
      if (!prev)
        fail(t.info_offset, "first tensor '{}' starts at data offset {}, expected 0 (tensors must be contiguous, "
             "in order)", printable(t.name), t.offset);
      if (t.offset < expected)
        fail(t.info_offset, "tensor '{}' at data offset {} overlaps or precedes tensor '{}', which ends at {} "
             "(tensors must be contiguous, in order)", printable(t.name), t.offset, printable(prev->name),
             expected);
      fail(t.info_offset, "tensor '{}' at data offset {} leaves a gap after tensor '{}', which ends at {} "
           "(tensors must be contiguous, in order)", printable(t.name), t.offset, printable(prev->name),
           expected);
    }
    auto start = checked_add(f_.data_offset_, t.offset);
    auto end = start ? checked_add(*start, t.nbytes) : std::nullopt;
    if (!end)
      fail(t.info_offset, "tensor '{}': data offset {} + size {} overflows 64 bits", printable(t.name), t.offset,
           t.nbytes);
    if (*end > size) {
      // Total the rest so the message says how large the file should be.
      uint64_t need = *end;
      bool seen = false;
      uint64_t next = expected;
      for (const TensorInfo& u : f_.tensors_) {
        if (&u == &t) seen = true;
        if (!seen) continue;
        auto e = checked_add(next, u.nbytes);
        auto padded = e ? checked_align_up(*e, f_.alignment_) : std::nullopt;
        auto abs = e ? checked_add(f_.data_offset_, *e) : std::nullopt;
        if (!padded || !abs) break;
        need = std::max(need, *abs);
        next = *padded;
      }
      fail(t.info_offset, "tensor '{}': data offset {} + size {} runs past the end of the file: expected at least "
           "{} bytes, file has {}; the file is truncated (the download is probably incomplete)", printable(t.name),
           t.offset, t.nbytes, need, size);
    }
    auto padded = checked_align_up(t.offset + t.nbytes, f_.alignment_);
    if (!padded) fail(t.info_offset, "tensor '{}': padded end overflows 64 bits", printable(t.name));
    expected = *padded;
    prev = &t;
  }
}

void Parser::run() { header(); }

GgufFile GgufFile::open(const std::filesystem::path& path) {
  static log::Logger& lg = log::get("gguf");
  GgufFile f;
  f.map_ = MappedFile::open(path);
  Parser(f).run();
  log::debug(lg, "{}: GGUF v{}, {} metadata entries, {} tensors, alignment {}, data at byte {}", path.string(),
             f.version_, f.kvs_.size(), f.tensors_.size(), f.alignment_, f.data_offset_);
  return f;
}

const KeyValue* GgufFile::find(std::string_view key) const {
  auto it = kv_index_.find(key);
  return it == kv_index_.end() ? nullptr : &kvs_[it->second];
}

const TensorInfo* GgufFile::find_tensor(std::string_view name) const {
  auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

std::span<const std::byte> GgufFile::tensor_data(const TensorInfo& t) const {
  return map_.bytes().subspan(data_offset_ + t.offset, t.nbytes);
}

namespace {
[[noreturn]] void wrong_type(const GgufFile& f, const KeyValue& kv, std::string_view expected) {
  throw make_error(ErrorCode::invalid_input, "{}at byte {}: key '{}' has type {}, expected {}", f.where(),
                   kv.offset, kv.key, value_type_name(kv.type()), expected);
}
}  // namespace

std::optional<std::string_view> GgufFile::get_string(std::string_view key) const {
  const KeyValue* kv = find(key);
  if (!kv) return std::nullopt;
  if (kv->type() != ValueType::string) wrong_type(*this, *kv, "string");
  return std::get<std::string_view>(kv->value);
}

std::optional<uint64_t> GgufFile::get_uint(std::string_view key) const {
  const KeyValue* kv = find(key);
  if (!kv) return std::nullopt;
  return std::visit(
      [&](const auto& v) -> uint64_t {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
          if constexpr (std::is_signed_v<T>) {
            if (v < 0)
              throw make_error(ErrorCode::invalid_input, "{}at byte {}: key '{}' is {}, expected a non-negative integer",
                               where(), kv->offset, kv->key, v);
          }
          return static_cast<uint64_t>(v);
        } else {
          wrong_type(*this, *kv, "an integer");
        }
      },
      kv->value);
}

std::optional<double> GgufFile::get_float(std::string_view key) const {
  const KeyValue* kv = find(key);
  if (!kv) return std::nullopt;
  if (kv->type() == ValueType::f32) return std::get<float>(kv->value);
  if (kv->type() == ValueType::f64) return std::get<double>(kv->value);
  wrong_type(*this, *kv, "f32 or f64");
}

std::optional<bool> GgufFile::get_bool(std::string_view key) const {
  const KeyValue* kv = find(key);
  if (!kv) return std::nullopt;
  if (kv->type() != ValueType::boolean) wrong_type(*this, *kv, "bool");
  return std::get<bool>(kv->value);
}

const ArrayView* GgufFile::get_array(std::string_view key) const {
  const KeyValue* kv = find(key);
  if (!kv) return nullptr;
  if (kv->type() != ValueType::array) wrong_type(*this, *kv, "array");
  return &std::get<ArrayView>(kv->value);
}

}  // namespace bitnet::gguf
