// `bitnet memcheck`: run generate workloads under the memory tracker and print plan vs tracked
// vs RSS per tag, growth per round and what is left after teardown (text or --json). A leak,
// growth across rounds or a tracked peak over --budget ends with exit 6 (CLI.md); growth over a
// --baseline file (tracked bytes exactly, RSS past its noise) with exit 7.
#include <cstdio>
#include <memory>
#include <optional>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "app/build_info.hpp"
#include "app/cli.hpp"
#include "app/engine_options.hpp"
#include "app/output_path.hpp"
#include "app/signals.hpp"
#include "app/text_file.hpp"
#include "core/base/error.hpp"
#include "core/base/json_writer.hpp"
#include "core/base/log.hpp"
#include "diag/memcheck.hpp"

namespace bitnet::app {
namespace {

struct MemcheckFlags {
  EngineFlags engine;  // -m, -t, -c, --backend
  std::string prompt = "Once upon a time";
  int32_t n_gen = 16;
  int32_t repeat = 1;
  std::string budget;
  bool json = false;
  std::string test_leak;  // hidden: see MemcheckOptions::test_leak_tag
  std::string test_overflow;  // hidden: see MemcheckOptions::test_overflow_tag
  std::string baseline, save_baseline;
};

// "1048576", "512K", "64M", "2G" (powers of 1024) -> bytes.
uint64_t parse_bytes(const std::string& s) {
  size_t used = 0;
  uint64_t v = 0;
  try {
    v = std::stoull(s, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  const std::string suffix = used > 0 ? s.substr(used) : "";
  int shift = -1;
  if (suffix.empty()) shift = 0;
  else if (suffix == "K" || suffix == "k" || suffix == "KiB") shift = 10;
  else if (suffix == "M" || suffix == "MiB") shift = 20;
  else if (suffix == "G" || suffix == "GiB") shift = 30;
  if (used == 0 || s[0] == '-' || shift < 0 || v > (UINT64_MAX >> shift))
    throw make_error(ErrorCode::usage, "--budget '{}': expected bytes like 1048576, 512K, 64M or 2G", s);
  return v << shift;
}

std::string human(uint64_t b) {
  if (b >= (1ull << 30)) return fmt::format("{:.2f} GiB", static_cast<double>(b) / (1ull << 30));
  if (b >= (1ull << 20)) return fmt::format("{:.2f} MiB", static_cast<double>(b) / (1ull << 20));
  if (b >= (1ull << 10)) return fmt::format("{:.1f} KiB", static_cast<double>(b) / (1ull << 10));
  return fmt::format("{} B", b);
}

std::string text(const diag::MemcheckReport& r, const diag::MemcheckBaseline* baseline, const std::string& baseline_file) {
  std::string o = fmt::format("memcheck: {} ({}), kernels {}, {} thread{}, n_ctx {}, n_batch {}, kv {}\n", r.model_path,
                              human(r.model_file_size), r.kernel_table, r.threads, r.threads == 1 ? "" : "s", r.n_ctx,
                              r.n_batch, r.kv_type);
  if (!r.rounds.empty())
    o.append(fmt::format("workload: {} round{} of generate, {} prompt tokens + {} generated, each in a fresh session\n\n",
                         r.rounds.size(), r.rounds.size() == 1 ? "" : "s", r.rounds[0].n_prompt, r.rounds[0].n_gen));
  o.append("| tag | plan | tracked peak | allocs | after teardown |\n| --- | ---: | ---: | ---: | ---: |\n");
  for (const auto& t : r.tags)
    o.append(fmt::format("| {} | {} | {} | {} | {} |\n", t.tag, human(t.planned), human(t.peak), t.allocs,
                         t.after_teardown ? fmt::format("{} LEAK", human(t.after_teardown)) : "0"));
  o.append(fmt::format("| pool total | {} | {} (at once) | | |\n", human(r.planned_total), human(r.tracked_peak)));
  o.append(fmt::format("| model mmap | {} file | {} resident of {} mapped | | {} |\n", human(r.model_file_size),
                       human(r.model_mapping.resident), human(r.model_mapping.mapped),
                       r.model_unmapped ? "unmapped" : "STILL MAPPED"));
  o.append(fmt::format("| process RSS | after load {} | peak {} ({}) | | {} |\n", human(r.rss_loaded.rss),
                       human(r.rss_end.peak_rss), r.peak_rss_since_load ? "since load" : "since start",
                       human(r.rss_teardown.rss)));
  o.append("\n| round | tracked peak | held after | pool footprint | system allocs | reused | RSS after |\n"
           "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n");
  for (size_t i = 0; i < r.rounds.size(); ++i) {
    const auto& x = r.rounds[i];
    o.append(fmt::format("| {} | {} | {} | {} | {} | {} | {} |\n", i + 1, human(x.tracked_peak), human(x.held_after),
                         human(x.pool_footprint), x.system_allocs, x.reused, human(x.rss_after)));
  }
  // A yardstick: weights plus KV cache (plus the output screen's int8 copy); code, tokenizer and
  // activations should stay small beside it.
  const uint64_t yardstick = r.model_file_size + r.kv_cache_planned + r.output_screen_planned;
  if (yardstick > 0 && r.peak_rss_since_load)
    o.append(fmt::format("\npeak RSS {} = {:.1f}% of model file + planned KV cache{} ({})\n", human(r.rss_end.peak_rss),
                         100.0 * static_cast<double>(r.rss_end.peak_rss) / static_cast<double>(yardstick),
                         r.output_screen_planned > 0 ? " + output screen" : "", human(yardstick)));
  if (baseline != nullptr) {
    o.append(fmt::format("\nbaseline {} ({}):\n", baseline_file, diag::provenance_line(baseline->provenance)));
    for (const auto& x : r.regressions) o.append(fmt::format("  REGRESSION {}\n", x));
    for (const auto& x : r.rss_growth) o.append(fmt::format("  RSS growth within {:.0f}% (not a regression): {}\n", 100 * diag::kRssNoise, x));
    if (r.regressions.empty() && r.rss_growth.empty()) o.append("  no growth over the baseline\n");
  }
  o.append(r.ok() ? "\nverdict: ok (no leak, no growth across rounds, within budget)\n" : "\nverdict: FAILED\n");
  return o;
}

std::string json(const diag::MemcheckReport& r, uint64_t budget, bool has_baseline) {
  JsonWriter j;
  j.begin_object();
  j.key("model").value(r.model_path).key("model_file_size").value(r.model_file_size);
  j.key("kernel_table").value(r.kernel_table).key("threads").value(r.threads);
  j.key("n_ctx").value(r.n_ctx).key("n_batch").value(r.n_batch).key("kv_type").value(r.kv_type);
  j.key("tags").begin_array();
  for (const auto& t : r.tags) {
    j.begin_object().key("tag").value(t.tag).key("planned").value(t.planned).key("peak").value(t.peak);
    j.key("allocs").value(t.allocs).key("after_teardown").value(t.after_teardown).key("live_blocks").value(t.live_blocks);
    j.end_object();
  }
  j.end_array();
  j.key("planned_total").value(r.planned_total).key("tracked_peak").value(r.tracked_peak);
  j.key("kv_cache_planned").value(r.kv_cache_planned).key("output_screen_planned").value(r.output_screen_planned);
  j.key("budget").value(budget);
  j.key("model_mapped").value(r.model_mapping.mapped).key("model_resident").value(r.model_mapping.resident);
  j.key("model_unmapped").value(r.model_unmapped);
  j.key("rss_after_load").value(r.rss_loaded.rss).key("rss_end").value(r.rss_end.rss);
  j.key("peak_rss").value(r.rss_end.peak_rss).key("peak_rss_since_load").value(r.peak_rss_since_load);
  j.key("rss_after_teardown").value(r.rss_teardown.rss);
  j.key("rounds").begin_array();
  for (const auto& x : r.rounds) {
    j.begin_object().key("tracked_peak").value(x.tracked_peak).key("held_after").value(x.held_after);
    j.key("pool_footprint").value(x.pool_footprint).key("system_allocs").value(x.system_allocs);
    j.key("reused").value(x.reused).key("rss_after").value(x.rss_after);
    j.key("n_prompt").value(static_cast<uint64_t>(x.n_prompt)).key("n_gen").value(static_cast<uint64_t>(x.n_gen));
    j.end_object();
  }
  j.end_array();
  auto list = [&](const char* key, const std::vector<std::string>& v) {
    j.key(key).begin_array();
    for (const auto& s : v) j.value(s);
    j.end_array();
  };
  list("leaks", r.leaks);
  list("growth", r.growth);
  list("over_budget", r.over_budget);
  if (has_baseline) {
    list("regressions", r.regressions);
    list("rss_growth", r.rss_growth);
  }
  j.key("ok").value(r.ok());
  j.end_object();
  std::string out = j.str();
  out.append("\n");
  return out;
}

// The verdict as an error: what failed on the first line, each finding as a "caused by" line.
Error failure(const diag::MemcheckReport& r, uint64_t budget) {
  std::vector<std::string> causes = r.leaks;
  causes.insert(causes.end(), r.growth.begin(), r.growth.end());
  causes.insert(causes.end(), r.over_budget.begin(), r.over_budget.end());
  std::string first = "memcheck failed:";
  if (!r.leaks.empty()) first.append(" a leak;");
  if (!r.growth.empty()) first.append(" growth across rounds;");
  if (!r.over_budget.empty())
    first.append(fmt::format(" tracked peak {} bytes over the budget of {} bytes;", r.tracked_peak, budget));
  first.pop_back();
  Error e(ErrorCode::memcheck, causes.back());
  for (size_t i = causes.size() - 1; i-- > 0;) e.wrap(causes[i]);
  e.wrap(first);
  return e;
}

std::string join(const std::vector<std::string>& v) {
  std::string o;
  for (const auto& x : v) o.append(o.empty() ? "" : ", ").append(x);
  return o;
}

// The baseline from another machine or build: still compared, with a warning.
void warn_differences(const diag::MemcheckBaseline& b, const diag::Provenance& now) {
  static log::Logger& lg = log::get("memcheck");
  const std::vector<std::string> d = diag::provenance_differences(b.provenance, now);
  if (!d.empty()) log::warn(lg, "the baseline was made on another machine or build: {}", join(d));
}

}  // namespace

RunFn setup_memcheck(CLI::App& sub) {
  auto f = std::make_shared<MemcheckFlags>();
  add_engine_flags(sub, f->engine, {.ctx = true, .kv = true});
  sub.add_option("-p,--prompt", f->prompt, "Prompt of each workload (default: \"Once upon a time\")");
  sub.add_option("-n,--n-predict", f->n_gen, "Tokens generated per workload")->check(CLI::Range(0, 1 << 20));
  sub.add_option("--repeat", f->repeat, "Workloads, each in a fresh session; growth between them fails")
      ->check(CLI::Range(1, 1000));
  sub.add_option("--budget", f->budget, "Fail (exit 6) when the tracked peak passes this many bytes (512K, 64M, 2G)");
  sub.add_flag("--json", f->json, "One JSON object instead of the tables");
  // Test-only: hold a block under this tag past teardown, to prove leaks are caught and named.
  sub.add_option("--test-leak", f->test_leak)->group("");
  // Test-only: make a session overflow this tag's plan, to prove that is told apart from a leak.
  sub.add_option("--test-overflow", f->test_overflow)->group("");
  sub.add_option("--save-baseline", f->save_baseline,
                 "Write this run's tracked peaks and RSS, with the workload and build/machine provenance, to FILE")
      ->type_name("FILE");
  sub.add_option("--baseline", f->baseline,
                 "Compare with a --save-baseline FILE of the same workload: any growth of a tracked peak, or RSS "
                 "growth over 5%, is a regression (exit 7)")
      ->type_name("FILE");
  sub.footer("Examples:\n  bitnet memcheck -m fixture:stories260K --repeat 3\n"
             "  bitnet memcheck -m model.gguf -p \"Hello\" -n 32 --budget 512M --json\n"
             "  bitnet memcheck -m model.gguf --save-baseline mem.json   (later: --baseline mem.json)\n"
             "Exit codes: 0 ok, 6 a leak, growth across rounds or a peak over --budget, 7 growth over --baseline.");
  return [f](const Context& ctx) {
    diag::MemcheckOptions o;
    o.prompt = f->prompt;
    o.n_gen = f->n_gen;
    o.repeat = f->repeat;
    o.budget = f->budget.empty() ? 0 : parse_bytes(f->budget);
    o.test_leak_tag = f->test_leak;
    o.test_overflow_tag = f->test_overflow;
    const diag::Provenance now = diag::current_provenance(build::commit, build::dirty, build::build_type, build::compiler);
    std::optional<diag::MemcheckBaseline> baseline;
    if (!f->baseline.empty())
      baseline = diag::parse_memcheck_baseline(read_text_file(f->baseline, "the memcheck baseline"), f->baseline);
    if (!f->save_baseline.empty()) check_output_path("--save-baseline", f->save_baseline);
    o.cancel = &install_interrupt_handler();
    // Only the path: memcheck loads the model itself, under the tracker, with its own pool.
    const Engine e = resolve_engine(ctx, f->engine, {});
    o.n_ctx = e.n_ctx;
    o.threads = e.threads;
    o.kernels = e.kernels;
    o.kv_type = e.kv_type;
    if (baseline) warn_differences(*baseline, now);
    diag::MemcheckReport r = diag::run_memcheck(e.model_path, o);
    const diag::MemcheckBaseline mine = diag::memcheck_baseline(r, o, now);
    if (baseline) {
      const std::vector<std::string> d = diag::workload_differences(*baseline, mine);
      if (!d.empty())
        throw make_error(ErrorCode::usage, "memcheck --baseline {}: another workload: {}", f->baseline, join(d));
      diag::compare_with_baseline(r, *baseline);
    }
    const std::string out = f->json ? json(r, o.budget, baseline.has_value())
                                    : text(r, baseline ? &*baseline : nullptr, f->baseline);
    write_stdout(out);
    if (!r.ok()) throw failure(r, o.budget);
    if (!f->save_baseline.empty()) write_file_atomically(f->save_baseline, diag::memcheck_baseline_json(mine));
    if (!r.regressions.empty()) {
      Error err(ErrorCode::regression, r.regressions.back());
      for (size_t i = r.regressions.size() - 1; i-- > 0;) err.wrap(r.regressions[i]);
      err.wrap(fmt::format("memcheck: more memory than the baseline {}", f->baseline));
      throw err;
    }
    return 0;
  };
}

}  // namespace bitnet::app
