// What `bitnet inspect` (and later debug-report) says about a model file: container facts,
// architecture and hyper-parameters, tokenizer summary, tensor table and type histogram,
// checksum, and a validation verdict. Builds the struct; never prints.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/model/metadata.hpp"
#include "diag/metadata_rows.hpp"

namespace bitnet {
class JsonWriter;
}

namespace bitnet::diag {

enum class Verdict {
  ok,            // valid and runnable by this engine
  vocab_only,    // valid vocabulary-only file (no weights)
  not_runnable,  // valid GGUF, but architecture or tensor types this engine cannot run
  invalid,       // model-level problem (missing tensor, wrong shape, bad key...)
};
std::string_view verdict_name(Verdict v);

struct TensorRow {
  std::string name;
  std::string type;
  std::vector<int64_t> ne;
  uint64_t offset = 0;  // absolute file offset
  uint64_t nbytes = 0;
};

struct TypeCount {
  uint64_t tensors = 0;
  uint64_t bytes = 0;
  uint64_t elements = 0;
};

struct ModelReport {
  std::string path;
  uint64_t file_size = 0;
  std::string sha256;  // empty when not computed
  uint32_t gguf_version = 0;
  uint64_t alignment = 0;
  uint64_t data_offset = 0;
  uint64_t n_kv = 0;
  uint64_t n_params = 0;
  std::string architecture;  // general.architecture as written, "" when absent
  std::string name;
  std::optional<model::ModelConfig> config;
  std::optional<model::TokenizerInfo> tokenizer;
  std::map<std::string, TypeCount> type_histogram;
  std::vector<TensorRow> tensors;
  std::vector<MetadataRow> metadata;  // every key, as text (inspect --kv)
  bool tied_output = false;
  Verdict verdict = Verdict::ok;
  std::vector<std::string> problems;  // why the verdict is not ok
  std::vector<std::string> notes;     // worth knowing, not wrong
};

struct ModelReportOptions {
  bool hash = true;
  bool check_values = false;  // read every weight for NaN/Inf (inspect --check-tensors)
};

// Throws bitnet::Error(invalid_input) when the container itself is broken (nothing to report);
// model-level problems are recorded in the report instead.
ModelReport build_model_report(const std::filesystem::path& path, const ModelReportOptions& opt = {});

// {"F16": {"tensors": N, "elements": N, "bytes": N}, ...}: the type histogram as `inspect --json`
// and `debug-report --format json` both write it.
void write_type_histogram(JsonWriter& j, const std::map<std::string, TypeCount>& histogram);

// "hparams" and "tokenizer" (objects, or null when the model could not be read that far), as
// `inspect --json` and `debug-report --format json` both write them. `clean` filters the
// tokenizer's strings (debug-report's privacy rules); the hyper-parameters hold none.
void write_hparams(JsonWriter& j, const ModelReport& r);
void write_tokenizer(JsonWriter& j, const ModelReport& r,
                     const std::function<std::string(std::string_view)>& clean = [](std::string_view s) {
                       return std::string(s);
                     });

}  // namespace bitnet::diag
