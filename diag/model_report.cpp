// Model report assembly.
#include "model_report.hpp"

#include "core/base/error.hpp"
#include "core/base/json_writer.hpp"
#include "core/base/sha256.hpp"
#include "core/gguf/reader.hpp"
#include "diag/check_tensors.hpp"

namespace bitnet::diag {

std::string_view verdict_name(Verdict v) {
  switch (v) {
    case Verdict::ok: return "ok";
    case Verdict::vocab_only: return "vocab-only";
    case Verdict::not_runnable: return "not runnable";
    case Verdict::invalid: return "invalid";
  }
  return "?";
}

namespace {

// Runs one model-level check; a bitnet::Error becomes a recorded problem.
template <typename F>
bool record(ModelReport& r, F&& check) {
  try {
    check();
    return true;
  } catch (const Error& e) {
    std::string msg = e.chain().front();
    // The file name is already the report's subject.
    if (msg.starts_with(r.path + ": ")) msg.erase(0, r.path.size() + 2);
    r.problems.push_back(std::move(msg));
    r.verdict = Verdict::invalid;
    return false;
  }
}

// Everything but the optional value check, from the open file.
ModelReport describe(const gguf::GgufFile& f, const std::filesystem::path& path, const ModelReportOptions& opt) {
  ModelReport r;
  r.path = path.string();
  r.file_size = f.file_size();
  r.gguf_version = f.version();
  r.alignment = f.alignment();
  r.data_offset = f.data_offset();
  r.n_kv = f.kvs().size();
  r.metadata = metadata_rows(f);
  for (const auto& t : f.tensors()) {
    r.tensors.push_back(TensorRow{t.name, std::string(gguf::type_name(t.type)),
                                  std::vector<int64_t>(t.dims().begin(), t.dims().end()), f.data_offset() + t.offset,
                                  t.nbytes});
    TypeCount& c = r.type_histogram[std::string(gguf::type_name(t.type))];
    ++c.tensors;
    c.bytes += t.nbytes;
    c.elements += static_cast<uint64_t>(t.n_elements());
    r.n_params += static_cast<uint64_t>(t.n_elements());
  }
  if (opt.hash) r.sha256 = sha256_file(path);

  record(r, [&] {
    r.architecture = std::string(f.get_string("general.architecture").value_or(""));
    r.name = std::string(f.get_string("general.name").value_or(""));
  });
  record(r, [&] { r.tokenizer = model::read_tokenizer_info(f); });
  const bool vocab_only = f.tensors().empty();
  const bool arch_known = model::is_supported_architecture(r.architecture);
  if (!arch_known) {
    std::string what = r.architecture.empty() ? std::string("no 'general.architecture' key")
                                              : fmt::format("architecture '{}' is not supported", r.architecture);
    std::string msg = fmt::format("{} (supported: {})", what, model::supported_architectures());
    if (vocab_only) {
      r.notes.push_back(msg);
    } else {
      if (r.verdict == Verdict::ok) r.verdict = Verdict::not_runnable;
      r.problems.push_back(msg);
    }
  } else {
    record(r, [&] { r.config = model::read_config(f); });
  }
  if (r.verdict != Verdict::ok) return r;
  if (vocab_only) {
    r.verdict = Verdict::vocab_only;
    r.notes.push_back("no tensors: a vocabulary-only file (usable by `bitnet tokenize`)");
    return r;
  }
  if (!arch_known) return r;
  record(r, [&] {
    model::TensorCheck tc = model::check_tensors(f, *r.config);
    r.tied_output = tc.tied_output;
    if (!tc.unused.empty())
      r.notes.push_back(fmt::format("{} tensor(s) not used by architecture '{}' (first: {})", tc.unused.size(),
                                    r.config->arch_name, tc.unused.front()));
    if (!tc.not_runnable.empty()) {
      r.verdict = Verdict::not_runnable;
      r.problems.push_back(fmt::format("{} tensor(s) of types this engine cannot run (first: {})",
                                       tc.not_runnable.size(), tc.not_runnable.front()));
    }
  });
  if (r.tokenizer && r.tokenizer->model != "llama" && r.tokenizer->model != "gpt2") {
    r.verdict = Verdict::not_runnable;
    r.problems.push_back(fmt::format("tokenizer '{}' is not supported (supported: llama, gpt2)", r.tokenizer->model));
  }
  if (r.tokenizer && r.tokenizer->model == "gpt2" && r.tokenizer->pre.empty())
    r.notes.push_back("no 'tokenizer.ggml.pre' key: LLaMA-3 pre-tokenizer rules are assumed (bitnet.cpp would "
                      "use its 'default' chain)");
  return r;
}

}  // namespace

ModelReport build_model_report(const std::filesystem::path& path, const ModelReportOptions& opt) {
  const gguf::GgufFile f = gguf::GgufFile::open(path);
  ModelReport r = describe(f, path, opt);
  if (opt.check_values) {
    // After the other checks, on the same open file: a NaN makes any verdict invalid.
    const TensorCheckResult c = check_tensor_values(f);
    r.notes.push_back(fmt::format("--check-tensors: {} tensors read, {} of types not checked{}", c.checked, c.skipped,
                                  c.problem ? "" : ", every value finite"));
    if (c.problem) {
      r.problems.insert(r.problems.begin(), *c.problem + ": not finite");
      r.verdict = Verdict::invalid;
    }
  }
  return r;
}

void write_type_histogram(JsonWriter& j, const std::map<std::string, TypeCount>& histogram) {
  j.begin_object();
  for (const auto& [type, c] : histogram) {
    j.key(type).begin_object();
    j.key("tensors").value(c.tensors).key("elements").value(c.elements).key("bytes").value(c.bytes);
    j.end_object();
  }
  j.end_object();
}

namespace {
void optional_id(JsonWriter& j, std::string_view key, const std::optional<uint32_t>& id) {
  j.key(key);
  if (id) j.value(static_cast<uint64_t>(*id));
  else j.null();
}
}  // namespace

void write_hparams(JsonWriter& j, const ModelReport& r) {
  j.key("hparams");
  if (!r.config) {
    j.null();
    return;
  }
  const auto& c = *r.config;
  j.begin_object();
  j.key("n_vocab").value(c.n_vocab).key("n_ctx_train").value(c.n_ctx_train).key("n_embd").value(c.n_embd);
  j.key("n_layer").value(c.n_layer).key("n_ff").value(c.n_ff).key("n_head").value(c.n_head);
  j.key("n_head_kv").value(c.n_head_kv).key("head_dim").value(c.head_dim()).key("n_rot").value(c.n_rot);
  j.key("rope").value(c.rope == model::RopeType::neox ? "neox" : "norm");
  j.key("rope_freq_base").value(static_cast<double>(c.rope_freq_base));
  j.key("rms_eps").value(static_cast<double>(c.rms_eps));
  j.key("ffn_act").value(c.ffn_act == model::FfnAct::relu2 ? "relu2" : "silu");
  j.key("sub_norms").value(c.sub_norms);
  j.key("tied_output").value(r.tied_output);
  j.end_object();
}

void write_tokenizer(JsonWriter& j, const ModelReport& r, const std::function<std::string(std::string_view)>& clean) {
  j.key("tokenizer");
  if (!r.tokenizer) {
    j.null();
    return;
  }
  const auto& t = *r.tokenizer;
  j.begin_object();
  j.key("model").value(clean(t.model)).key("pre").value(clean(t.pre)).key("n_tokens").value(t.n_tokens);
  j.key("n_merges").value(t.n_merges);
  optional_id(j, "bos", t.bos);
  optional_id(j, "eos", t.eos);
  optional_id(j, "eot", t.eot);
  optional_id(j, "unk", t.unk);
  optional_id(j, "pad", t.pad);
  j.key("add_bos").value(t.add_bos).key("add_eos").value(t.add_eos).key("add_space_prefix").value(t.add_space_prefix);
  j.key("chat_template").value(t.has_chat_template);
  j.end_object();
}

}  // namespace bitnet::diag
