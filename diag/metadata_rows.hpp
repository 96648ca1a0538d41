// Every metadata key of a GGUF file as text rows, for `inspect --kv`: arrays summarised by their
// length and first elements, strings made printable and shortened.
#pragma once

#include <string>
#include <vector>

#include "core/gguf/reader.hpp"

namespace bitnet::diag {

struct MetadataRow {
  std::string key;
  std::string type;   // "u32", "string", "array[string]", ...
  std::string value;  // as shown: 2560, "llama", [32000 strings: "<unk>", "<s>", ...]
};

std::vector<MetadataRow> metadata_rows(const gguf::GgufFile& f);

}  // namespace bitnet::diag
