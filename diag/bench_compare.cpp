// The regression rule and the baseline files of bench and memcheck (JSON written with JsonWriter,
// read with simdjson). A bad file names the field at fault, so a hand-edited baseline is easy to fix.
#include "bench_compare.hpp"

#include <cmath>
#include <ctime>
#include <utility>

#include <fmt/format.h>
#include <simdjson.h>

#include "core/base/error.hpp"
#include "core/base/json_writer.hpp"
#include "diag/machine_info.hpp"

namespace bitnet::diag {
namespace {

// Reads fields of one JSON object, throwing "FILE: not a KIND: WHAT" for a missing or mistyped one.
class Fields {
 public:
  Fields(simdjson::dom::element obj, const std::string& file, std::string_view kind, std::string where)
      : obj_(obj), file_(file), kind_(kind), where_(std::move(where)) {}

  [[noreturn]] void bad(const std::string& what) const {
    throw make_error(ErrorCode::invalid_input, "{}: not a {}: {}", file_, kind_, what);
  }
  const std::string& where() const { return where_; }
  std::string name(std::string_view key) const { return where_.empty() ? std::string(key) : where_ + "." + std::string(key); }

  std::string str(std::string_view key) const {
    std::string_view v;
    if (obj_[key].get_string().get(v)) bad(fmt::format("\"{}\" is missing or not a string", name(key)));
    return std::string(v);
  }
  uint64_t u64(std::string_view key) const {
    uint64_t v = 0;
    if (obj_[key].get_uint64().get(v)) bad(fmt::format("\"{}\" is missing or not a whole number", name(key)));
    return v;
  }
  int32_t i32(std::string_view key, int64_t max) const {
    const uint64_t v = u64(key);
    if (v > static_cast<uint64_t>(max)) bad(fmt::format("\"{}\" is {}, more than {}", name(key), v, max));
    return static_cast<int32_t>(v);
  }
  bool boolean(std::string_view key) const {
    bool v = false;
    if (obj_[key].get_bool().get(v)) bad(fmt::format("\"{}\" is missing or not true/false", name(key)));
    return v;
  }
  simdjson::dom::element object(std::string_view key) const {
    simdjson::dom::element e;
    if (obj_[key].get(e) || !e.is_object()) bad(fmt::format("\"{}\" is missing or not an object", name(key)));
    return e;
  }
  simdjson::dom::array array(std::string_view key) const {
    simdjson::dom::array a;
    if (obj_[key].get_array().get(a)) bad(fmt::format("\"{}\" is missing or not an array", name(key)));
    return a;
  }

 private:
  simdjson::dom::element obj_;
  const std::string& file_;
  std::string_view kind_;
  std::string where_;
};

simdjson::dom::element parse_root(simdjson::dom::parser& parser, std::string_view json, const std::string& file,
                                  std::string_view kind, std::string_view format) {
  simdjson::dom::element doc;
  if (parser.parse(simdjson::padded_string(json)).get(doc) || !doc.is_object())
    throw make_error(ErrorCode::invalid_input, "{}: not a {}: not a JSON object", file, kind);
  const Fields f(doc, file, kind, "");
  if (f.str("format") != format) f.bad(fmt::format("\"format\" is not \"{}\"", format));
  if (f.u64("version") != 1) f.bad(fmt::format("\"version\" {} (this bitnet reads version 1)", f.u64("version")));
  return doc;
}

void write_provenance(JsonWriter& j, const Provenance& p) {
  j.key("provenance").begin_object();
  j.key("build_commit").value(p.build_commit).key("build_dirty").value(p.build_dirty);
  j.key("build_type").value(p.build_type).key("compiler").value(p.compiler);
  j.key("cpu_info").value(p.cpu_info).key("cpu_flags").value(p.cpu_flags).key("thp").value(p.thp);
  j.key("date").value(p.date);
  j.end_object();
}

Provenance read_provenance(const Fields& root, const std::string& file, std::string_view kind) {
  const Fields f(root.object("provenance"), file, kind, "provenance");
  Provenance p;
  p.build_commit = f.str("build_commit");
  p.build_dirty = f.boolean("build_dirty");
  p.build_type = f.str("build_type");
  p.compiler = f.str("compiler");
  p.cpu_info = f.str("cpu_info");
  p.cpu_flags = f.str("cpu_flags");
  p.thp = f.str("thp");
  p.date = f.str("date");
  return p;
}

constexpr int64_t kMaxTokens = int64_t{1} << 30;
constexpr int64_t kMaxThreads = 4096;

}  // namespace

Provenance current_provenance(std::string build_commit, bool build_dirty, std::string build_type, std::string compiler) {
  Provenance p;
  p.build_commit = std::move(build_commit);
  p.build_dirty = build_dirty;
  p.build_type = std::move(build_type);
  p.compiler = std::move(compiler);
  const MachineInfo m = gather_machine_info();
  p.cpu_info = m.cpu_model;
  for (const auto& [flag, has] : m.cpu_flags)
    if (has) p.cpu_flags += (p.cpu_flags.empty() ? "" : " ") + flag;
  p.thp = m.transparent_hugepages;
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  ::gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  p.date = buf;
  return p;
}

std::string provenance_line(const Provenance& p) {
  return fmt::format("commit {}{}, {}, {}; CPU: {}{}; THP {}; {}", p.build_commit, p.build_dirty ? " (dirty)" : "",
                     p.build_type, p.compiler, p.cpu_info.empty() ? "unknown" : p.cpu_info,
                     p.cpu_flags.empty() ? "" : " [" + p.cpu_flags + "]", p.thp.empty() ? "unknown" : p.thp, p.date);
}

std::vector<std::string> provenance_differences(const Provenance& base, const Provenance& now) {
  std::vector<std::string> out;
  auto differ = [&](const char* what, const std::string& b, const std::string& n) {
    if (b != n) out.push_back(fmt::format("{} '{}' (baseline '{}')", what, n, b));
  };
  differ("CPU", base.cpu_info, now.cpu_info);
  differ("CPU flags", base.cpu_flags, now.cpu_flags);
  differ("THP", base.thp, now.thp);
  differ("commit", base.build_commit, now.build_commit);
  if (base.build_dirty != now.build_dirty)
    out.push_back(fmt::format("a {} tree (baseline: {})", now.build_dirty ? "dirty" : "clean",
                              base.build_dirty ? "dirty" : "clean"));
  differ("build type", base.build_type, now.build_type);
  differ("compiler", base.compiler, now.compiler);
  return out;
}

void mean_sd(std::span<const double> s, double& mean, double& sd) {
  mean = 0;
  sd = 0;
  if (s.empty()) return;
  for (double v : s) mean += v;
  mean /= static_cast<double>(s.size());
  double sq = 0;
  for (double v : s) sq += (v - mean) * (v - mean);
  sd = s.size() > 1 ? std::sqrt(sq / static_cast<double>(s.size() - 1)) : 0.0;
}

SampleComparison compare_samples(std::span<const double> base_ts, std::span<const double> new_ts,
                                 const CompareRule& rule) {
  SampleComparison c;
  mean_sd(base_ts, c.base_mean, c.base_sd);
  mean_sd(new_ts, c.new_mean, c.new_sd);
  c.noise = rule.sigmas * std::sqrt(c.base_sd * c.base_sd + c.new_sd * c.new_sd);
  if (c.base_mean <= 0) return c;  // nothing to compare with
  c.change = c.new_mean / c.base_mean - 1.0;
  const double drop = c.base_mean - c.new_mean;
  c.regression = drop > rule.threshold * c.base_mean && drop > c.noise;
  return c;
}

std::string bench_baseline_json(const BenchBaseline& b) {
  JsonWriter j;
  j.begin_object();
  j.key("format").value(kBenchBaselineFormat).key("version").value(1);
  write_provenance(j, b.provenance);
  j.key("repetitions").value(b.reps).key("exact_logits").value(b.exact_logits);
  j.key("rows").begin_array();
  for (const BaselineRow& r : b.rows) {
    j.begin_object();
    j.key("model").value(r.model).key("model_filename").value(r.model_filename).key("model_size").value(r.model_size);
    j.key("test").value(r.test).key("n_prompt").value(r.n_prompt).key("n_gen").value(r.n_gen);
    j.key("n_depth").value(r.n_depth).key("n_threads").value(r.n_threads);
    j.key("kernel_table").value(r.kernel_table).key("type_k").value(r.kv_type);
    j.key("samples_ts").begin_array();
    for (double t : r.samples_ts) j.value(t);
    j.end_array();
    j.end_object();
  }
  j.end_array();
  j.end_object();
  return j.str() + "\n";
}

BenchBaseline parse_bench_baseline(std::string_view json, const std::string& file) {
  constexpr std::string_view kind = "bench baseline";
  simdjson::dom::parser parser;
  const Fields root(parse_root(parser, json, file, kind, kBenchBaselineFormat), file, kind, "");
  BenchBaseline b;
  b.provenance = read_provenance(root, file, kind);
  b.reps = root.i32("repetitions", 1000);
  if (b.reps < 1) root.bad("\"repetitions\" is 0");
  b.exact_logits = root.boolean("exact_logits");
  size_t i = 0;
  for (simdjson::dom::element e : root.array("rows")) {
    const Fields f(e, file, kind, fmt::format("rows[{}]", i++));
    if (!e.is_object()) f.bad(fmt::format("{} is not an object", f.where()));
    BaselineRow r;
    r.model = f.str("model");
    r.model_filename = f.str("model_filename");
    r.model_size = f.u64("model_size");
    r.test = f.str("test");
    r.n_prompt = f.i32("n_prompt", kMaxTokens);
    r.n_gen = f.i32("n_gen", kMaxTokens);
    r.n_depth = f.i32("n_depth", kMaxTokens);
    r.n_threads = f.i32("n_threads", kMaxThreads);
    if (r.n_threads < 1 || (r.n_prompt == 0 && r.n_gen == 0)) f.bad(fmt::format("{}: no threads or no tokens", f.name("test")));
    r.kernel_table = f.str("kernel_table");
    r.kv_type = f.str("type_k");
    for (simdjson::dom::element s : f.array("samples_ts")) {
      double v = 0;
      if (s.get_double().get(v) || !(v > 0) || !std::isfinite(v))
        f.bad(fmt::format("\"{}\" holds a value that is not a positive number", f.name("samples_ts")));
      r.samples_ts.push_back(v);
    }
    if (r.samples_ts.empty()) f.bad(fmt::format("\"{}\" is empty", f.name("samples_ts")));
    b.rows.push_back(std::move(r));
  }
  if (b.rows.empty()) root.bad("\"rows\" is empty");
  return b;
}

std::string memcheck_baseline_json(const MemcheckBaseline& b) {
  JsonWriter j;
  j.begin_object();
  j.key("format").value(kMemcheckBaselineFormat).key("version").value(1);
  write_provenance(j, b.provenance);
  j.key("model_filename").value(b.model_filename).key("model_file_size").value(b.model_file_size);
  j.key("prompt").value(b.prompt).key("n_gen").value(b.n_gen).key("repeat").value(b.repeat);
  j.key("n_ctx").value(b.n_ctx).key("threads").value(b.threads).key("kv_type").value(b.kv_type);
  j.key("kernel_table").value(b.kernel_table);
  j.key("tags").begin_array();
  for (const MemcheckBaselineTag& t : b.tags) j.begin_object().key("tag").value(t.tag).key("peak").value(t.peak).end_object();
  j.end_array();
  j.key("tracked_peak").value(b.tracked_peak).key("rss_after_load").value(b.rss_after_load);
  j.key("peak_rss").value(b.peak_rss).key("rss_after_teardown").value(b.rss_after_teardown);
  j.end_object();
  return j.str() + "\n";
}

MemcheckBaseline parse_memcheck_baseline(std::string_view json, const std::string& file) {
  constexpr std::string_view kind = "memcheck baseline";
  simdjson::dom::parser parser;
  const Fields root(parse_root(parser, json, file, kind, kMemcheckBaselineFormat), file, kind, "");
  MemcheckBaseline b;
  b.provenance = read_provenance(root, file, kind);
  b.model_filename = root.str("model_filename");
  b.model_file_size = root.u64("model_file_size");
  b.prompt = root.str("prompt");
  b.n_gen = root.i32("n_gen", kMaxTokens);
  b.repeat = root.i32("repeat", 1000);
  b.n_ctx = static_cast<uint32_t>(root.i32("n_ctx", kMaxTokens));
  b.threads = root.i32("threads", kMaxThreads);
  b.kv_type = root.str("kv_type");
  b.kernel_table = root.str("kernel_table");
  size_t i = 0;
  for (simdjson::dom::element e : root.array("tags")) {
    const Fields f(e, file, kind, fmt::format("tags[{}]", i++));
    b.tags.push_back({f.str("tag"), f.u64("peak")});
  }
  b.tracked_peak = root.u64("tracked_peak");
  b.rss_after_load = root.u64("rss_after_load");
  b.peak_rss = root.u64("peak_rss");
  b.rss_after_teardown = root.u64("rss_after_teardown");
  return b;
}

}  // namespace bitnet::diag
