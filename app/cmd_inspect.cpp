// `bitnet inspect MODEL [--tensors] [--json]`: prints the model report; exit 3 unless the file
// is valid and runnable (a vocabulary-only file is reported in full, then exit 3: not a model).
#include <cstdio>
#include <memory>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include "core/base/units.hpp"
#include "app/cli.hpp"
#include "app/engine_options.hpp"
#include "core/base/error.hpp"
#include "core/base/json_writer.hpp"
#include "diag/model_report.hpp"

namespace bitnet::app {
namespace {

struct InspectOptions {
  EngineFlags engine;  // MODEL, and -t for a synthetic model
  bool tensors = false;
  bool json = false;
  bool no_hash = false;
  bool kv = false;
  bool check_tensors = false;
};

template <typename... Args>
void add_line(std::string& o, fmt::format_string<Args...> f, Args&&... args) {
  o += fmt::format(f, std::forward<Args>(args)...);
  o += '\n';
}

std::string id_or_none(const std::optional<uint32_t>& id) { return id ? fmt::to_string(*id) : "none"; }

std::string print_text(const diag::ModelReport& r, bool with_tensors, bool with_kv) {
  std::string o;
  add_line(o, "file          {}", r.path);
  add_line(o, "size          {} ({} bytes)", human_bytes(r.file_size), r.file_size);
  if (!r.sha256.empty()) add_line(o, "sha256        {}", r.sha256);
  add_line(o, "gguf          v{}, {} metadata keys, {} tensors, alignment {}, data at byte {}", r.gguf_version, r.n_kv,
       r.tensors.size(), r.alignment, r.data_offset);
  add_line(o, "architecture  {}{}", r.architecture.empty() ? "(none)" : r.architecture,
       r.name.empty() ? "" : fmt::format("  (name: {})", r.name));
  if (r.config) {
    const auto& c = *r.config;
    add_line(o, "hparams       n_vocab {}, n_ctx_train {}, n_embd {}, n_layer {}, n_ff {}", c.n_vocab, c.n_ctx_train, c.n_embd,
         c.n_layer, c.n_ff);
    add_line(o, "              n_head {}, n_head_kv {}, head_dim {}, n_rot {}, rope {} (base {}), rms_eps {}", c.n_head,
         c.n_head_kv, c.head_dim(), c.n_rot, c.rope == model::RopeType::neox ? "neox" : "norm", c.rope_freq_base,
         c.rms_eps);
    add_line(o, "              ffn {}{}{}", c.ffn_act == model::FfnAct::relu2 ? "relu^2" : "silu",
         c.sub_norms ? ", sub-norms" : "", r.tensors.empty() ? "" : (r.tied_output ? ", output tied to token_embd" : ", separate output"));
  }
  if (r.tokenizer) {
    const auto& t = *r.tokenizer;
    std::string kind = t.model == "llama" ? "SentencePiece (llama)" : t.model == "gpt2" ? "byte-level BPE (gpt2)" : t.model;
    add_line(o, "tokenizer     {}, {} tokens{}{}", kind, t.n_tokens, t.n_merges ? fmt::format(", {} merges", t.n_merges) : "",
         t.pre.empty() ? "" : fmt::format(", pre '{}'", t.pre));
    add_line(o, "              bos {}, eos {}, eot {}, unk {}, add_bos {}, add_eos {}, chat template {}", id_or_none(t.bos),
         id_or_none(t.eos), id_or_none(t.eot), id_or_none(t.unk), t.add_bos, t.add_eos, t.has_chat_template ? "yes" : "no");
  }
  if (with_kv) {
    add_line(o, "metadata      {} keys", r.metadata.size());
    for (const auto& m : r.metadata) add_line(o, "  {:<40} {:<14} {}", m.key, m.type, m.value);
  }
  if (!r.type_histogram.empty()) {
    add_line(o, "tensor types  {} parameters", r.n_params);
    for (const auto& [type, c] : r.type_histogram)
      add_line(o, "  {:<8} {:>5} tensors {:>12} elements {:>12}", type, c.tensors, c.elements, human_bytes(c.bytes));
  }
  if (with_tensors) {
    add_line(o, "tensors");
    for (const auto& t : r.tensors)
      add_line(o, "  {:<32} {:<6} [{}] at byte {}, {} bytes", t.name, t.type, fmt::join(t.ne, ", "), t.offset, t.nbytes);
  }
  for (const auto& n : r.notes) add_line(o, "note          {}", n);
  for (const auto& p : r.problems) add_line(o, "problem       {}", p);
  add_line(o, "verdict       {}", diag::verdict_name(r.verdict));
  return o;
}

std::string print_json(const diag::ModelReport& r, bool with_tensors, bool with_kv) {
  JsonWriter j;
  j.begin_object();
  j.key("file").value(r.path);
  j.key("size").value(r.file_size);
  j.key("sha256");
  if (r.sha256.empty()) j.null(); else j.value(r.sha256);
  j.key("gguf_version").value(static_cast<uint64_t>(r.gguf_version));
  j.key("alignment").value(r.alignment);
  j.key("data_offset").value(r.data_offset);
  j.key("n_kv").value(r.n_kv);
  j.key("n_tensors").value(static_cast<uint64_t>(r.tensors.size()));
  j.key("n_params").value(r.n_params);
  j.key("architecture").value(r.architecture);
  j.key("name").value(r.name);
  diag::write_hparams(j, r);
  diag::write_tokenizer(j, r);
  j.key("types");
  diag::write_type_histogram(j, r.type_histogram);
  if (with_tensors) {
    j.key("tensors").begin_array();
    for (const auto& t : r.tensors) {
      j.begin_object().key("name").value(t.name).key("type").value(t.type).key("ne").begin_array();
      for (int64_t d : t.ne) j.value(d);
      j.end_array().key("offset").value(t.offset).key("nbytes").value(t.nbytes).end_object();
    }
    j.end_array();
  }
  if (with_kv) {
    j.key("metadata").begin_array();
    for (const auto& m : r.metadata)
      j.begin_object().key("key").value(m.key).key("type").value(m.type).key("value").value(m.value).end_object();
    j.end_array();
  }
  j.key("notes").begin_array();
  for (const auto& n : r.notes) j.value(n);
  j.end_array();
  j.key("problems").begin_array();
  for (const auto& p : r.problems) j.value(p);
  j.end_array();
  j.key("verdict").value(diag::verdict_name(r.verdict));
  j.end_object();
  return j.str() + "\n";
}

}  // namespace

RunFn setup_inspect(CLI::App& sub) {
  auto opt = std::make_shared<InspectOptions>();
  add_engine_flags(sub, opt->engine,
                   {.model = EngineFlagSet::Model::positional, .backend = false,
                    .threads_help = "Threads for generating a synthetic model (default: all cores)"});
  sub.add_flag("--tensors", opt->tensors, "List every tensor: name, type, shape, offset, size");
  sub.add_flag("--kv", opt->kv, "List every metadata key, its type and value (arrays summarised)");
  sub.add_flag("--check-tensors", opt->check_tensors, "Read every weight and report the first NaN or Inf (exit 3)");
  sub.add_flag("--json", opt->json, "One JSON object instead of text");
  sub.add_flag("--no-hash", opt->no_hash, "Skip the SHA-256 of the file (faster on large models)");
  sub.footer("Example:\n  bitnet inspect fixture:stories260K --tensors\n"
             "Exit status 3 when the file is not a valid model this engine can run (a vocabulary-only\n"
             "file included: its report is printed, then one error line).");
  return [opt](const Context& ctx) {
    const Engine engine = resolve_engine(ctx, opt->engine, {});
    diag::ModelReport r;
    try {
      r = diag::build_model_report(engine.model_path, {.hash = !opt->no_hash, .check_values = opt->check_tensors});
    } catch (const Error& e) {
      // A file too broken to report on still gets its verdict in JSON, for scripts that parse it.
      if (opt->json && e.code() == ErrorCode::invalid_input) {
        JsonWriter j;
        j.begin_object().key("file").value(engine.model_path.string()).key("verdict").value("invalid");
        j.key("error").value(std::string(e.what())).end_object();
        write_stdout(j.str() + "\n");
      }
      throw;
    }
    std::string out = opt->json ? print_json(r, opt->tensors, opt->kv) : print_text(r, opt->tensors, opt->kv);
    write_stdout(out);
    if (r.verdict == diag::Verdict::ok) return 0;
    const std::string why = r.verdict == diag::Verdict::vocab_only
                                ? "no tensors, a tokenizer-only file and not a model (use it with `bitnet tokenize`)"
                            : r.problems.empty() ? "not a model this engine can run"
                                                 : r.problems.front();
    throw make_error(ErrorCode::invalid_input, "{}: {}: {}", r.path, diag::verdict_name(r.verdict), why);
  };
}

}  // namespace bitnet::app
