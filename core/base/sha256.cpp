// OpenSSL EVP SHA-256 wrapper.
#include "sha256.hpp"

#include <openssl/evp.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <vector>

#include "error.hpp"
#include "log.hpp"

namespace bitnet {

struct Sha256::Impl {
  EVP_MD_CTX* ctx = nullptr;
};

Sha256::Sha256() : impl_(std::make_unique<Impl>()) {
  impl_->ctx = EVP_MD_CTX_new();
  BITNET_CHECK(impl_->ctx != nullptr);
  BITNET_CHECK(EVP_DigestInit_ex(impl_->ctx, EVP_sha256(), nullptr) == 1);
}

Sha256::~Sha256() { EVP_MD_CTX_free(impl_->ctx); }

void Sha256::update(std::span<const std::byte> data) {
  if (!data.empty()) BITNET_CHECK(EVP_DigestUpdate(impl_->ctx, data.data(), data.size()) == 1);
}

std::string Sha256::hex_digest() {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  BITNET_CHECK(EVP_DigestFinal_ex(impl_->ctx, md, &len) == 1);
  static constexpr char hex[] = "0123456789abcdef";
  std::string out;
  out.reserve(len * 2);
  for (unsigned int i = 0; i < len; ++i) {
    out += hex[md[i] >> 4];
    out += hex[md[i] & 15];
  }
  return out;
}

std::string sha256_hex(std::span<const std::byte> data) {
  Sha256 h;
  h.update(data);
  return h.hex_digest();
}

std::string sha256_file(const std::filesystem::path& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) throw make_error(ErrorCode::invalid_input, "{}: cannot open for hashing: {}", path.string(), std::strerror(errno));
  Sha256 h;
  std::vector<std::byte> buf(1 << 20);
  static log::Logger& lg = log::get("fixtures");
  log::Phase phase(lg, "sha256 of " + path.filename().string());
  uint64_t total = 0;
  for (;;) {
    size_t n = std::fread(buf.data(), 1, buf.size(), f);
    if (n > 0) h.update({buf.data(), n});
    total += n;
    if (n < buf.size()) break;
  }
  phase.set_bytes(total);
  bool failed = std::ferror(f) != 0;
  std::fclose(f);
  if (failed) throw make_error(ErrorCode::failure, "{}: read error while hashing", path.string());
  return h.hex_digest();
}

}  // namespace bitnet
