// A read-only memory mapping of a whole file. Pages are only touched when read, so mapping a
// large model to read its header costs nothing for the weights.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <span>

namespace bitnet {

class MappedFile {
 public:
  // Throws bitnet::Error(invalid_input) for a missing path, a directory, or an unreadable file.
  static MappedFile open(const std::filesystem::path& path);

  MappedFile() = default;
  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&& other) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  ~MappedFile();

  std::span<const std::byte> bytes() const { return {data_, size_}; }
  uint64_t size() const { return size_; }
  const std::filesystem::path& path() const { return path_; }

  // Drops the resident pages wholly inside `range` (a part of this mapping) from the process; a
  // later read faults them back in from the file. For data copied elsewhere (repacked weights),
  // so the copy does not count twice in the RSS.
  void release(std::span<const std::byte> range) const;

 private:
  std::filesystem::path path_;
  const std::byte* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace bitnet
