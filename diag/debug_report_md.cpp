// The debug report as Markdown, to paste into an issue (render_json is in debug_report_json.cpp),
// ending in three empty sections for the user: what I ran, what I expected, what I got.
// Every string taken from the outside world passes through Privacy::clean on its way out.
#include <algorithm>

#include <fmt/format.h>

#include "core/base/units.hpp"
#include "diag/debug_report.hpp"

namespace bitnet::diag {
namespace {

std::string opt_bytes(const std::optional<uint64_t>& b) { return b ? human_bytes(*b) : "unknown"; }

// ---------------------------------------------------------------------------------- Markdown

class Md {
 public:
  explicit Md(const Privacy& p) : p_(p) {}
  // A table cell: private parts removed, pipes escaped, on one line.
  std::string cell(std::string_view s) const {
    std::string out;
    for (char c : p_.clean(s)) {
      if (c == '|') out += "\\|";
      else if (c == '\n' || c == '\r') out += ' ';
      else out += c;
    }
    return out.empty() ? "-" : out;
  }
  void line(std::string_view s = "") { out_.append(s).append("\n"); }
  void heading(std::string_view s) { out_.append("\n## ").append(s).append("\n\n"); }
  void row(std::string_view key, std::string_view value) {
    out_.append("| ").append(key).append(" | ").append(cell(value)).append(" |\n");
  }
  void table(std::initializer_list<std::string_view> head) {
    std::string sep = "|";
    out_ += '|';
    for (std::string_view h : head) {
      out_.append(" ").append(h).append(" |");
      sep += "---|";
    }
    out_.append("\n").append(sep).append("\n");
  }
  void kv_table() { table({"field", "value"}); }
  // A fenced block, the fence longer than any backtick run inside so nothing can close it early.
  void block(const std::vector<std::string>& lines) {
    size_t run = 0, longest = 0;
    std::vector<std::string> clean;
    for (const std::string& l : lines) {
      clean.push_back(p_.clean(l));
      run = 0;
      for (char c : clean.back()) longest = std::max(longest, run = c == '`' ? run + 1 : 0);
    }
    std::string fence(std::max<size_t>(3, longest + 1), '`');
    line(fmt::format("{}text", fence));
    for (const std::string& l : clean) line(l);
    line(fence);
  }
  std::string& str() { return out_; }

 private:
  const Privacy& p_;
  std::string out_;
};

std::string failure_text(const Failure& f) {
  std::string s = fmt::format("error: {}", f.messages.front());
  for (size_t i = 1; i < f.messages.size(); ++i) s.append("\n  caused by: ").append(f.messages[i]);
  return s;
}

std::string split_lines_join(const std::vector<std::string>& v, std::string_view sep) {
  std::string s;
  for (const std::string& x : v) {
    if (!s.empty()) s.append(sep);
    s.append(x);
  }
  return s;
}

void md_model(Md& md, const ModelSection& m) {
  md.heading("Model");
  md.kv_table();
  md.row("spec", m.spec);
  md.row("path", m.path.empty() ? "(not resolved)" : m.path);
  if (m.error) {
    md.row("verdict", "unreadable");
    md.line();
    md.line("The model could not be read:");
    md.line();
    md.block({failure_text(*m.error)});
    return;
  }
  const ModelReport& r = *m.report;
  md.row("size", fmt::format("{} ({} bytes)", human_bytes(r.file_size), r.file_size));
  md.row("sha256", r.sha256.empty() ? "(not computed: --no-hash)" : r.sha256);
  md.row("gguf", fmt::format("v{}, {} keys, {} tensors, alignment {}", r.gguf_version, r.n_kv, r.tensors.size(), r.alignment));
  md.row("architecture", r.architecture.empty() ? "(none)" : r.architecture);
  md.row("name", r.name);
  if (r.config) {
    const auto& c = *r.config;
    md.row("hyper-parameters", fmt::format("n_vocab {}, n_ctx_train {}, n_embd {}, n_layer {}, n_ff {}, n_head {}, n_head_kv {}, "
                                           "n_rot {}, rope_freq_base {}, rms_eps {}", c.n_vocab, c.n_ctx_train, c.n_embd,
                                           c.n_layer, c.n_ff, c.n_head, c.n_head_kv, c.n_rot, c.rope_freq_base, c.rms_eps));
  }
  if (r.tokenizer) {
    const auto& t = *r.tokenizer;
    md.row("tokenizer", fmt::format("{}{}, {} tokens, {} merges, chat template {}", t.model, t.pre.empty() ? "" : fmt::format(" (pre {})", t.pre),
                                    t.n_tokens, t.n_merges, t.has_chat_template ? "yes" : "no"));
  }
  md.row("verdict", std::string(verdict_name(r.verdict)));
  md.line();
  if (!r.type_histogram.empty()) {
    md.table({"tensor type", "tensors", "elements", "bytes"});
    for (const auto& [type, c] : r.type_histogram)
      md.line(fmt::format("| {} | {} | {} | {} |", md.cell(type), c.tensors, c.elements, human_bytes(c.bytes)));
    md.line();
  }
  for (const std::string& p : r.problems) md.line(fmt::format("- problem: {}", md.cell(p)));
  for (const std::string& n : r.notes) md.line(fmt::format("- note: {}", md.cell(n)));
}

void md_child(Md& md, const ChildSection& c) {
  md.heading(fmt::format("Run: `bitnet {}`", md.cell(split_lines_join(c.args, " "))));
  if (c.error) {
    md.line("The command could not be started:");
    md.line();
    md.block({failure_text(*c.error)});
    return;
  }
  md.kv_table();
  std::string how = c.timed_out ? fmt::format("timed out after {:.0f} s, killed ({})", c.timeout_seconds, c.signal_name)
                    : c.signal   ? fmt::format("killed by {} (signal {})", c.signal_name, *c.signal)
                                 : fmt::format("exit code {}", c.exit_code.value_or(-1));
  md.row("result", how);
  md.row("time", fmt::format("{:.3f} s (timeout {:.0f} s)", c.seconds, c.timeout_seconds));
  md.line();
  if (!c.threads_at_timeout.empty()) {
    md.line("Its threads when it was stopped (name, state, where in the kernel each waited):");
    md.line();
    md.block(c.threads_at_timeout);
    md.line();
  }
  if (!c.stacks.empty()) {
    md.line("Their stacks (it was sent SIGQUIT before the kill):");
    md.line();
    md.block(c.stacks);
    md.line();
  }
  md.line(fmt::format("stderr (last {} lines):", c.stderr_tail.size()));
  md.line();
  md.block(c.stderr_tail);
  if (!c.stdout_tail.empty()) {
    md.line();
    md.line(fmt::format("stdout (last {} lines):", c.stdout_tail.size()));
    md.line();
    md.block(c.stdout_tail);
  }
}

}  // namespace

std::string render_markdown(const DebugReport& r) {
  Md md(r.privacy);
  md.line("# bitnet debug report");
  md.line();
  md.line(fmt::format("Generated {} by `bitnet debug-report`. Nothing was uploaded; the home directory is shown as `~` "
                      "and variables that look secret only as \"set\".", r.generated_at));
  md.heading("Summary");
  if (r.summary.empty()) md.line("No failure found.");
  for (const std::string& s : r.summary) md.line(fmt::format("- {}", md.cell(s)));

  const ToolInfo& t = r.tool;
  md.heading("Tool");
  md.kv_table();
  md.row("version", t.version);
  md.row("commit", fmt::format("{}{}", t.commit, t.dirty ? " (dirty)" : ""));
  md.row("build type", t.build_type);
  md.row("compiler", t.compiler);
  md.row("compile flags", t.compile_flags.empty() ? "(none)" : t.compile_flags);
  md.row("backends compiled in", split_lines_join(t.backends, " "));
  md.row("executable", t.executable);

  md.heading("Libraries");
  md.table({"library", "version", "from"});
  for (const LibraryVersion& l : r.libraries)
    md.line(fmt::format("| {} | {} | {} |", l.name, md.cell(l.version), l.runtime ? "loaded library" : "build headers"));

  const MachineInfo& m = r.machine;
  md.heading("Machine");
  md.kv_table();
  md.row("OS", m.os);
  md.row("kernel", m.kernel);
  md.row("architecture", m.arch);
  md.row("CPU", m.cpu_model.empty() ? "unknown" : m.cpu_model);
  md.row("cores", fmt::format("{} logical, {} physical, {} usable by this process", m.logical_cores,
                              m.physical_cores ? fmt::to_string(*m.physical_cores) : "unknown", m.usable_cores));
  std::string flags;
  for (const auto& [name, on] : m.cpu_flags) flags += fmt::format("{}{}{}", flags.empty() ? "" : " ", on ? "+" : "-", name);
  md.row("CPU flags (runtime)", flags);
  md.row("RAM", fmt::format("{} total, {} available", opt_bytes(m.ram_total), opt_bytes(m.ram_available)));
  md.row("pages", fmt::format("{} B pages; transparent hugepages: {}; preallocated hugepages: {} of {}", m.page_size,
                              m.transparent_hugepages.empty() ? "unknown" : m.transparent_hugepages,
                              m.hugepages_total ? fmt::to_string(*m.hugepages_total) : "unknown", opt_bytes(m.hugepage_size)));
  md.row("virtualisation", fmt::format("{}{}{}", !m.hypervisor ? "none detected" : m.vm_vendor.empty() ? "hypervisor" : fmt::format("hypervisor ({})", m.vm_vendor),
                                       m.wsl ? ", WSL" : "", m.container.empty() ? "" : fmt::format(", container: {}", m.container)));

  md.heading("Disk");
  md.table({"directory", "for", "free", "total"});
  for (const DiskSpace& d : r.disks) {
    const std::string where = d.measured.empty() || d.measured == d.path
                                  ? d.path : fmt::format("{} (not created yet; measured at {})", d.path, d.measured);
    if (d.free_bytes && d.total_bytes)
      md.line(fmt::format("| {} | {} | {} ({} bytes) | {} |", md.cell(where), d.role, human_bytes(*d.free_bytes),
                          *d.free_bytes, human_bytes(*d.total_bytes)));
    else
      md.line(fmt::format("| {} | {} | unknown: {} | unknown |", md.cell(where), d.role, md.cell(d.error)));
  }

  const KernelInfo& k = r.kernels;
  md.heading("Kernels");
  if (k.error) md.line(fmt::format("No kernel table for '{}': {}", md.cell(k.requested), md.cell(k.error->messages.front())));
  else md.line(fmt::format("The dispatcher picks **{}** ({}{}).", k.selected, md.cell(k.why),
                           k.requested.empty() ? "" : fmt::format(", BITNET_BACKEND={}", md.cell(k.requested))));
  md.line();
  md.table({"backend", "priority", "this CPU", "chosen"});
  for (const BackendRow& b : k.backends)
    md.line(fmt::format("| {} | {} | {} | {} |", b.name, b.priority, b.supported ? "supported" : "unsupported", b.selected ? "yes" : ""));

  const ConfigInfo& c = r.config;
  md.heading("Configuration");
  md.kv_table();
  md.row("threads", fmt::format("{} ({})", c.threads, c.threads_source));
  if (!c.threads_error.empty()) md.row("threads problem", c.threads_error);
  md.row("cache dir", c.cache_dir.empty() ? "(none)" : c.cache_dir);
  md.row("fixture dirs", c.fixture_dirs.empty() ? "(none)" : split_lines_join(c.fixture_dirs, ":"));
  md.row("offline", c.offline ? "yes" : "no");
  md.line();
  if (c.env.empty()) md.line("No relevant environment variable is set.");
  else md.table({"variable", "value"});
  for (const EnvEntry& e : c.env) md.line(fmt::format("| {} | {} |", md.cell(e.name), md.cell(e.value)));

  if (r.model) md_model(md, *r.model);

  const FixtureSection& f = r.fixtures;
  md.heading("Fixture cache");
  md.line(fmt::format("Cache directory: {}{}", md.cell(f.cache_dir.empty() ? "(none)" : f.cache_dir),
                      f.hashed ? "" : " (--no-hash: files found are not verified)"));
  md.line();
  md.table({"fixture", "status", "source", "path"});
  for (const FixtureRow& e : f.entries)
    md.line(fmt::format("| {} | {} | {} | {} |", md.cell(e.name), e.status, md.cell(e.source), md.cell(e.path)));
  if (f.error) md.line(fmt::format("\n{}", md.cell(failure_text(*f.error))));

  if (r.child) md_child(md, *r.child);

  md.heading("Log");
  if (r.log.file.empty()) {
    md.line(md.cell(r.log.note));
  } else {
    md.line(fmt::format("File {}{}", md.cell(r.log.file), r.log.note.empty() ? ", last lines:" : fmt::format(": {}", r.log.note)));
    if (!r.log.tail.empty()) {
      md.line();
      md.block(r.log.tail);
    }
  }

  // For the user to fill in before posting; HTML comments so an unfilled hint does not show.
  md.heading("What I ran");
  md.line("<!-- The exact command line(s), and where the model came from. -->");
  md.heading("What I expected");
  md.line("<!-- The output, speed or behaviour you expected, and why (another engine, an older version). -->");
  md.heading("What I got");
  md.line("<!-- What happened instead: the output, the error message, how far it got. -->");
  return md.str();
}

}  // namespace bitnet::diag
