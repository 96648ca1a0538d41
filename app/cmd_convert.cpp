// `bitnet convert IN OUT --type i2_s|tq2_0|tq1_0|f16|f32 [--arch A] [--requantize]`: rewrites
// the ternary weights of IN in another format, losslessly, and writes OUT atomically. Ctrl-C,
// SIGTERM and --timeout stop it between MiBs, leaving OUT as it was and no temporary file.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <string>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "app/cli.hpp"
#include "app/engine_options.hpp"
#include "app/output_path.hpp"
#include "app/signals.hpp"
#include "core/base/error.hpp"
#include "core/base/units.hpp"
#include "core/gguf/reader.hpp"
#include "core/model/convert.hpp"
#include "core/model/ternary.hpp"

namespace bitnet::app {
namespace {

struct ConvertFlags {
  EngineFlags engine;  // -t, for a synthetic IN
  std::string in;
  std::string out;
  std::string type;
  std::string arch;
  bool requantize = false;
};

gguf::GgmlType target_type(const std::string& name) {
  auto t = gguf::type_from_name(name);
  if (!t || !model::is_ternary_target(*t))
    throw make_error(ErrorCode::usage, "--type '{}' is not one of i2_s, tq2_0, tq1_0, f16, f32", name);
  return *t;
}

// "converting: 123/332 tensors, 1.20 GiB/4.50 GiB", redrawn in place on a terminal at most ten
// times a second, and erased at the end (also when the conversion fails or is cancelled), so the
// result line or the error stands alone.
class ProgressLine {
 public:
  explicit ProgressLine(bool on) : on_(on) {}
  ~ProgressLine() { erase(); }
  ProgressLine(const ProgressLine&) = delete;
  ProgressLine& operator=(const ProgressLine&) = delete;

  void update(const gguf::WriteProgress& p) {
    if (!on_) return;
    const auto now = std::chrono::steady_clock::now();
    if (drawn_ && p.tensors_done < p.tensors_total && now - last_ < std::chrono::milliseconds(100)) return;
    last_ = now;
    drawn_ = true;
    std::string line = fmt::format("\rconverting: {}/{} tensors, {}/{}", p.tensors_done, p.tensors_total,
                                   human_bytes(p.bytes_done), human_bytes(p.bytes_total));
    line += "\033[K";  // the previous text may have been longer
    std::fputs(line.c_str(), stderr);
  }
  void erase() {
    if (drawn_) std::fputs("\r\033[K", stderr);
    drawn_ = false;
    on_ = false;
  }

 private:
  bool on_;
  bool drawn_ = false;
  std::chrono::steady_clock::time_point last_;
};

}  // namespace

RunFn setup_convert(CLI::App& sub) {
  auto f = std::make_shared<ConvertFlags>();
  sub.add_option("IN", f->in, "The model to read: a .gguf path, fixture:NAME or synthetic:SHAPE[:TYPE]")->required();
  sub.add_option("OUT", f->out, "The .gguf file to write (replaced atomically)")->required();
  sub.add_option("--type", f->type, "Ternary weight format: i2_s (bitnet.cpp), tq2_0 or tq1_0 (llama.cpp), f16, f32")
      ->required();
  add_engine_flags(sub, f->engine,
                   {.model = EngineFlagSet::Model::none, .backend = false,
                    .threads_help = "Threads for generating a synthetic IN (default: all cores)"});
  sub.add_option("--arch", f->arch, "Rename the architecture: bitnet, bitnet-b1.58 or bitnet-25");
  sub.add_flag("--requantize", f->requantize,
               "Quantize weights that are not exactly ternary (or not exactly representable in --type) with "
               "BitNet's absmean rule instead of refusing; lossy");
  sub.footer("Examples:\n  bitnet convert ggml-model-i2_s.gguf model-tq2_0.gguf --type tq2_0 --arch bitnet\n"
             "  bitnet convert synthetic:2b4t model.gguf --type tq1_0\n"
             "Embeddings, norms and other tensors are copied as they are. Exit status 3 when a weight is not\n"
             "ternary or cannot be held exactly by --type (unless --requantize), or does not fit its block size.\n"
             "Ctrl-C, SIGTERM and --timeout stop it with OUT left as it was (exit 130, 143, 124); on a terminal\n"
             "one line shows the progress.");
  return [f](const Context& ctx) {
    const std::atomic<bool>& cancel = install_interrupt_handler();
    const gguf::GgmlType type = target_type(f->type);
    check_output_path("OUT", f->out);
    const gguf::GgufFile in = gguf::GgufFile::open(resolve_model(ctx, f->in, resolved_threads(f->engine)));
    model::ConvertOptions opt;
    opt.type = type;
    opt.arch = f->arch;
    opt.requantize = f->requantize;
    ProgressLine progress(::isatty(STDERR_FILENO) != 0 && !ctx.quiet);
    opt.write.cancel = &cancel;
    opt.write.progress = [&progress](const gguf::WriteProgress& p) { progress.update(p); };
    const model::ConvertStats st = model::convert_model(in, f->out, opt);
    progress.erase();
    std::string line = fmt::format("{}: {} weight tensors as {}", f->out, st.converted, gguf::type_name(type));
    if (st.requantized > 0) line += fmt::format(" ({} requantized, lossy)", st.requantized);
    line += fmt::format(", {} tensors copied\n", st.copied);
    write_stdout(line);
    return 0;
  };
}

}  // namespace bitnet::app
