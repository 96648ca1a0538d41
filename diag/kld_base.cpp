// KL-divergence base files: zstd streams of a JSON header line and f32 rows (kld_base.hpp).
#include "diag/kld_base.hpp"

#include <simdjson.h>
#include <zstd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include <fmt/format.h>

#include "core/base/error.hpp"
#include "core/base/json_writer.hpp"
#include "core/base/sha256.hpp"

namespace bitnet::diag {
namespace {

constexpr std::string_view kFormat = "bitnet-kld-base";
constexpr uint64_t kVersion = 1;
constexpr size_t kMaxHeader = size_t{256} << 20;  // a million tokens' ids take a few MB

size_t row_floats(const KldBaseHeader& h) { return size_t{h.n_ctx - h.first} * h.n_vocab; }

}  // namespace

std::string vocab_fingerprint(const tokenizer::Vocab& v) {
  Sha256 sha;
  for (size_t i = 0; i < v.text.size(); ++i) {
    const std::string& t = v.text[i];
    // The length first, so that token boundaries are part of what is hashed.
    const uint64_t len = t.size();
    const auto type = static_cast<uint8_t>(i < v.type.size() ? static_cast<int>(v.type[i]) : 0);
    sha.update(std::as_bytes(std::span(&len, 1)));
    sha.update(std::as_bytes(std::span(t.data(), t.size())));
    sha.update(std::as_bytes(std::span(&type, 1)));
  }
  return sha.hex_digest();
}

struct KldBaseWriter::Impl {
  std::filesystem::path path;
  TempFile tmp;
  FILE* file = nullptr;
  ZSTD_CCtx* ctx = nullptr;
  std::vector<char> out = std::vector<char>(ZSTD_CStreamOutSize());
  size_t row_floats = 0, chunks_left = 0;

  explicit Impl(const std::filesystem::path& p) : path(p), tmp(p) {}
  ~Impl() {
    if (file) std::fclose(file);
    ZSTD_freeCCtx(ctx);
  }
  [[noreturn]] void fail(const std::string& why) {
    throw make_error(ErrorCode::failure, "cannot write the base file {}: {}", path.string(), why);
  }
  void push(const void* data, size_t n, ZSTD_EndDirective mode) {
    ZSTD_inBuffer in{data, n, 0};
    for (;;) {
      ZSTD_outBuffer o{out.data(), out.size(), 0};
      const size_t left = ZSTD_compressStream2(ctx, &o, &in, mode);
      if (ZSTD_isError(left)) fail(ZSTD_getErrorName(left));
      if (o.pos > 0 && std::fwrite(out.data(), 1, o.pos, file) != o.pos) fail(std::strerror(errno));
      if (mode == ZSTD_e_end ? left == 0 : in.pos == in.size) break;
    }
  }
};

KldBaseWriter::KldBaseWriter(const std::filesystem::path& path, const KldBaseHeader& h) : impl_(std::make_unique<Impl>(path)) {
  Impl& w = *impl_;
  w.file = std::fopen(w.tmp.path().c_str(), "wb");
  if (!w.file) w.fail(std::strerror(errno));
  w.ctx = ZSTD_createCCtx();
  if (!w.ctx) w.fail("out of memory");
  ZSTD_CCtx_setParameter(w.ctx, ZSTD_c_compressionLevel, 3);
  JsonWriter j(false);
  j.begin_object().key("format").value(kFormat).key("version").value(kVersion);
  j.key("model").value(h.model).key("engine").value(h.engine).key("vocab_sha256").value(h.vocab_sha256);
  j.key("n_vocab").value(static_cast<uint64_t>(h.n_vocab)).key("n_ctx").value(static_cast<uint64_t>(h.n_ctx));
  j.key("first").value(static_cast<uint64_t>(h.first)).key("tokens").begin_array();
  for (TokenId t : h.tokens) j.value(static_cast<int64_t>(t));
  j.end_array().end_object();
  const std::string line = j.str() + "\n";
  w.push(line.data(), line.size(), ZSTD_e_continue);
  w.row_floats = row_floats(h);
  w.chunks_left = h.n_chunks();
}

KldBaseWriter::~KldBaseWriter() = default;

void KldBaseWriter::add_chunk(const std::vector<float>& rows) {
  Impl& w = *impl_;
  if (rows.size() != w.row_floats || w.chunks_left == 0)
    throw make_error(ErrorCode::failure, "base file {}: a chunk of {} values, {} expected ({} chunks left)", w.path.string(),
                     rows.size(), w.row_floats, w.chunks_left);
  w.push(rows.data(), rows.size() * sizeof(float), ZSTD_e_continue);
  --w.chunks_left;
}

void KldBaseWriter::commit() {
  Impl& w = *impl_;
  if (w.chunks_left != 0) w.fail(fmt::format("{} chunks were never written", w.chunks_left));
  w.push(nullptr, 0, ZSTD_e_end);
  const int rc = std::fclose(w.file);
  w.file = nullptr;
  if (rc != 0) w.fail(std::strerror(errno));
  w.tmp.commit();
}

struct KldBaseReader::Impl {
  std::filesystem::path path;
  FILE* file = nullptr;
  ZSTD_DCtx* ctx = nullptr;
  std::vector<char> in_buf = std::vector<char>(ZSTD_DStreamInSize());
  ZSTD_inBuffer in{in_buf.data(), 0, 0};
  std::vector<char> out = std::vector<char>(ZSTD_DStreamOutSize());
  size_t out_pos = 0, out_end = 0;
  bool frame_done = false;  // the last call ended a frame and nothing is pending
  bool eof = false;
  KldBaseHeader header;
  size_t chunks_read = 0;

  ~Impl() {
    if (file) std::fclose(file);
    ZSTD_freeDCtx(ctx);
  }
  [[noreturn]] void bad(const std::string& why) const {
    throw make_error(ErrorCode::invalid_input, "{}: not a usable KL-divergence base file: {}", path.string(), why);
  }
  // Refills `out`; false at the end of the input.
  bool refill() {
    for (;;) {
      if (in.pos == in.size && !eof) {
        in.size = std::fread(in_buf.data(), 1, in_buf.size(), file);
        in.pos = 0;
        if (in.size == 0 && std::ferror(file)) bad(std::strerror(errno));
        eof = in.size == 0;
      }
      if (eof && frame_done) return false;
      // Also with no input left: a frame may still hold output that did not fit last time.
      ZSTD_outBuffer o{out.data(), out.size(), 0};
      const size_t rc = ZSTD_decompressStream(ctx, &o, &in);
      if (ZSTD_isError(rc)) bad(fmt::format("zstd: {}", ZSTD_getErrorName(rc)));
      frame_done = rc == 0;
      out_pos = 0, out_end = o.pos;
      if (out_end > 0) return true;
      if (eof) {
        if (!frame_done) bad("it ends in the middle of its compressed data (truncated?)");
        return false;
      }
    }
  }
  // Exactly n bytes, or an error saying what was being read.
  void read(void* dst, size_t n, std::string_view what) {
    auto* d = static_cast<char*>(dst);
    while (n > 0) {
      if (out_pos == out_end && !refill()) bad(fmt::format("it ends before {}", what));
      const size_t take = std::min(n, out_end - out_pos);
      std::memcpy(d, out.data() + out_pos, take);
      d += take, out_pos += take, n -= take;
    }
  }
};

KldBaseReader::KldBaseReader(const std::filesystem::path& path) : impl_(std::make_unique<Impl>()) {
  Impl& r = *impl_;
  r.path = path;
  r.file = std::fopen(path.c_str(), "rb");
  if (!r.file) throw make_error(ErrorCode::invalid_input, "cannot read the base file {}: {}", path.string(), std::strerror(errno));
  r.ctx = ZSTD_createDCtx();
  if (!r.ctx) throw make_error(ErrorCode::failure, "out of memory");
  std::string line;
  for (char c = 0; line.size() <= kMaxHeader;) {
    r.read(&c, 1, "the end of its header line");
    if (c == '\n') break;
    line.push_back(c);
  }
  if (line.size() > kMaxHeader) r.bad("a header line longer than 256 MiB");
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (parser.parse(simdjson::padded_string(line)).get(doc)) r.bad("its header is not JSON");
  std::string_view format, s;
  uint64_t version = 0, n_vocab = 0, n_ctx = 0, first = 0;
  if (doc["format"].get_string().get(format) || format != kFormat) r.bad("no \"format\": \"bitnet-kld-base\" in its header");
  if (doc["version"].get_uint64().get(version) || version != kVersion)
    r.bad(fmt::format("version {} (this bitnet reads version {})", version, kVersion));
  KldBaseHeader& h = r.header;
  if (!doc["model"].get_string().get(s)) h.model = s;
  if (!doc["engine"].get_string().get(s)) h.engine = s;
  if (doc["vocab_sha256"].get_string().get(s) || s.size() != 64) r.bad("no vocab_sha256 in its header");
  h.vocab_sha256 = s;
  if (doc["n_vocab"].get_uint64().get(n_vocab) || n_vocab == 0 || n_vocab > (1u << 24))
    r.bad(fmt::format("n_vocab {} (1 to {})", n_vocab, 1u << 24));
  if (doc["n_ctx"].get_uint64().get(n_ctx) || n_ctx < 4 || n_ctx > (1u << 20)) r.bad(fmt::format("n_ctx {} (4 to {})", n_ctx, 1u << 20));
  if (doc["first"].get_uint64().get(first) || first >= n_ctx) r.bad(fmt::format("first {} (below n_ctx {})", first, n_ctx));
  h.n_vocab = static_cast<uint32_t>(n_vocab), h.n_ctx = static_cast<uint32_t>(n_ctx), h.first = static_cast<uint32_t>(first);
  simdjson::dom::array tokens;
  if (doc["tokens"].get_array().get(tokens)) r.bad("no tokens in its header");
  for (simdjson::dom::element e : tokens) {
    uint64_t id = 0;
    if (e.get_uint64().get(id) || id >= n_vocab) r.bad(fmt::format("a token id outside its vocabulary of {}", n_vocab));
    h.tokens.push_back(static_cast<TokenId>(id));
  }
  if (h.tokens.empty() || h.tokens.size() % n_ctx != 0)
    r.bad(fmt::format("{} tokens, not a whole number of chunks of {}", h.tokens.size(), n_ctx));
}

KldBaseReader::~KldBaseReader() = default;

const KldBaseHeader& KldBaseReader::header() const { return impl_->header; }

std::vector<float> KldBaseReader::next_chunk() {
  Impl& r = *impl_;
  if (r.chunks_read == r.header.n_chunks()) r.bad("a chunk past the last was asked for");
  std::vector<float> rows(row_floats(r.header));
  r.read(rows.data(), rows.size() * sizeof(float), fmt::format("the logits of chunk {}", r.chunks_read + 1));
  ++r.chunks_read;
  return rows;
}

void KldBaseReader::expect_end() {
  Impl& r = *impl_;
  if (r.out_pos != r.out_end || r.refill()) r.bad("bytes after its last chunk");
}

}  // namespace bitnet::diag
