// SHA-256 through OpenSSL EVP: incremental, and a streamed whole-file helper.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>

namespace bitnet {

class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  void update(std::span<const std::byte> data);
  // Lowercase hex digest; the object is finished afterwards.
  std::string hex_digest();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

std::string sha256_hex(std::span<const std::byte> data);
// Reads the file in chunks (never whole into memory). Throws bitnet::Error on I/O failure.
std::string sha256_file(const std::filesystem::path& path);

}  // namespace bitnet
