// SHA-256 against FIPS 180-2 vectors and the fixture checksums published in SHA256SUMS.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "core/base/error.hpp"
#include "core/base/sha256.hpp"
#include "support/fixtures.hpp"

namespace bitnet {
namespace {

std::span<const std::byte> bytes(std::string_view s) { return std::as_bytes(std::span(s.data(), s.size())); }

TEST(Sha256, KnownVectors) {
  EXPECT_EQ(sha256_hex(bytes("")), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_hex(bytes("abc")), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256_hex(bytes("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

TEST(Sha256, IncrementalEqualsOneShot) {
  std::string data(100000, 'x');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 131 % 251);
  Sha256 h;
  for (size_t i = 0; i < data.size(); i += 777) h.update(bytes(std::string_view(data).substr(i, 777)));
  EXPECT_EQ(h.hex_digest(), sha256_hex(bytes(data)));
}

TEST(Sha256, FileMatchesPublishedFixtureChecksums) {
  std::ifstream sums(test::fixture_file("SHA256SUMS"));
  ASSERT_TRUE(sums.good());
  std::string line;
  int checked = 0;
  while (std::getline(sums, line)) {
    std::istringstream in(line);
    std::string hex, name;
    in >> hex >> name;
    if (name.starts_with("*")) name.erase(0, 1);
    if (!name.starts_with("models/stories260K") && !name.starts_with("models/bitnet-tiny-i2_s")) continue;
    EXPECT_EQ(sha256_file(test::fixture_file(name)), hex) << name;
    ++checked;
  }
  EXPECT_EQ(checked, 2);
  // The Hugging Face checksum of stories260K.gguf (the fixture manifest's pin).
  EXPECT_EQ(sha256_file(test::fixture_file("models/stories260K.gguf")),
            "270cba1bd5109f42d03350f60406024560464db173c0e387d91f0426d3bd256d");
}

TEST(Sha256, MissingFileIsAnInputError) {
  try {
    sha256_file("/nonexistent/x.gguf");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::invalid_input);
    EXPECT_NE(std::string(e.what()).find("/nonexistent/x.gguf"), std::string::npos);
  }
}

}  // namespace
}  // namespace bitnet
