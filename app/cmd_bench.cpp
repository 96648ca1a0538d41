// `bitnet bench`: prompt-processing and generation speed of this engine (llama-bench's pp/tg
// tests), as a Markdown table (default), JSON or CSV with llama-bench's field names where
// they exist. Only the report goes to stdout.
#include <cstdio>
#include <memory>
#include <sstream>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "app/cli.hpp"
#include "core/base/error.hpp"
#include "core/base/json_writer.hpp"
#include "core/base/thread_pool.hpp"
#include "diag/bench.hpp"

namespace bitnet::app {
namespace {

struct BenchFlags {
  std::string model = "fixture:stories260K";
  int32_t n_prompt = 512;
  int32_t n_gen = 128;
  int32_t reps = 5;
  std::string threads;
  std::string backend;
  std::string output = "md";
};

std::vector<int> parse_threads(const std::string& s, int fallback) {
  std::vector<int> out;
  std::stringstream in(s);
  for (std::string item; std::getline(in, item, ',');) {
    char* end = nullptr;
    long v = std::strtol(item.c_str(), &end, 10);
    if (item.empty() || *end != '\0' || v < 1 || v > 1024)
      throw make_error(ErrorCode::usage, "-t '{}': expected thread counts like 2 or 1,2,4", s);
    out.push_back(static_cast<int>(v));
  }
  if (out.empty()) out.push_back(fallback);
  return out;
}

std::string human_size(uint64_t b) {
  return b >= (1ull << 30) ? fmt::format("{:.2f} GiB", static_cast<double>(b) / (1ull << 30))
                           : fmt::format("{:.2f} MiB", static_cast<double>(b) / (1ull << 20));
}

std::string human_params(uint64_t n) {
  if (n >= 1000000000ull) return fmt::format("{:.2f} B", static_cast<double>(n) / 1e9);
  if (n >= 1000000ull) return fmt::format("{:.2f} M", static_cast<double>(n) / 1e6);
  return fmt::format("{:.2f} K", static_cast<double>(n) / 1e3);
}

std::string markdown(const diag::BenchReport& r) {
  std::string o = "| model | size | params | backend | threads | test | t/s |\n";
  o += "| --- | ---: | ---: | --- | ---: | ---: | ---: |\n";
  for (const auto& x : r.results)
    o += fmt::format("| {} | {} | {} | {} | {} | {} | {:.2f} ± {:.2f} |\n", r.model_type, human_size(r.model_size),
                     human_params(r.model_n_params), r.kernel_table, x.n_threads, x.test, x.avg_ts, x.stddev_ts);
  return o;
}

std::string json(const diag::BenchReport& r) {
  JsonWriter j;
  j.begin_array();
  for (const auto& x : r.results) {
    j.begin_object();
    j.key("model_filename").value(r.model_path).key("model_type").value(r.model_type);
    j.key("model_size").value(r.model_size).key("model_n_params").value(r.model_n_params);
    j.key("backends").value("CPU").key("kernel_table").value(r.kernel_table);
    j.key("n_threads").value(x.n_threads).key("n_prompt").value(x.n_prompt).key("n_gen").value(x.n_gen);
    j.key("test").value(x.test);
    j.key("samples_ns").begin_array();
    for (double s : x.seconds) j.value(static_cast<uint64_t>(s * 1e9));
    j.end_array();
    j.key("avg_ts").value(x.avg_ts).key("stddev_ts").value(x.stddev_ts);
    j.end_object();
  }
  j.end_array();
  return j.str() + "\n";
}

std::string csv(const diag::BenchReport& r) {
  std::string o = "model_filename,model_type,model_size,model_n_params,backends,kernel_table,n_threads,n_prompt,n_gen,"
                  "test,avg_ts,stddev_ts\n";
  for (const auto& x : r.results)
    o += fmt::format("\"{}\",\"{}\",{},{},CPU,{},{},{},{},{},{:.6f},{:.6f}\n", r.model_path, r.model_type, r.model_size,
                     r.model_n_params, r.kernel_table, x.n_threads, x.n_prompt, x.n_gen, x.test, x.avg_ts, x.stddev_ts);
  return o;
}

}  // namespace

RunFn setup_bench(CLI::App& sub) {
  auto f = std::make_shared<BenchFlags>();
  sub.add_option("-m,--model", f->model, "A .gguf path or fixture:NAME (default: fixture:stories260K)");
  sub.add_option("-p,--n-prompt", f->n_prompt, "Prompt tokens of the pp test (0: skip)")->check(CLI::Range(0, 1 << 20));
  sub.add_option("-n,--n-gen", f->n_gen, "Generated tokens of the tg test (0: skip)")->check(CLI::Range(0, 1 << 20));
  sub.add_option("-r,--repetitions", f->reps, "Timed repetitions after one warm-up")->check(CLI::Range(1, 1000));
  sub.add_option("-t,--threads", f->threads, "Thread counts, comma-separated (default: BITNET_THREADS or all cores)");
  sub.add_option("--backend", f->backend, "Kernel table (default: the best this CPU runs)");
  sub.add_option("-o,--output", f->output, "md (default), json or csv")->check(CLI::IsMember({"md", "json", "csv"}));
  sub.footer("Example:\n  bitnet bench -m model.gguf -p 512 -n 128 -t 1,2 -o json");
  return [f](const Context& ctx) {
    const kernels::KernelTable& table = select_kernels(f->backend.empty() ? ctx.backend : f->backend);
    std::filesystem::path path = resolve_model(ctx, f->model);
    auto model = model::Model::load(path);
    diag::BenchOptions o;
    o.n_prompt = f->n_prompt;
    o.n_gen = f->n_gen;
    o.reps = f->reps;
    o.threads = parse_threads(f->threads, ctx.threads > 0 ? ctx.threads : ThreadPool::default_threads());
    o.kernels = &table;
    diag::BenchReport r = diag::run_bench(path.string(), *model, o);
    std::string out = f->output == "json" ? json(r) : f->output == "csv" ? csv(r) : markdown(r);
    std::fwrite(out.data(), 1, out.size(), stdout);
    return 0;
  };
}

}  // namespace bitnet::app
