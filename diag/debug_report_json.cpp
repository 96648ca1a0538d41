// The debug report as JSON, following docs/debug-report.schema.json (schema_version 1; new keys
// are added, never renamed). Every string taken from the outside world passes through Privacy::clean.
#include "core/base/json_writer.hpp"
#include "diag/debug_report.hpp"

namespace bitnet::diag {

namespace {

struct Json {
  const Privacy& p;
  JsonWriter j;
  Json& str(std::string_view key, std::string_view v) {
    j.key(key).value(p.clean(v));
    return *this;
  }
  Json& str_or_null(std::string_view key, std::string_view v) {
    j.key(key);
    if (v.empty()) j.null(); else j.value(p.clean(v));
    return *this;
  }
  template <typename T>
  Json& num_or_null(std::string_view key, const std::optional<T>& v) {
    j.key(key);
    if (v) j.value(*v); else j.null();
    return *this;
  }
  Json& strings(std::string_view key, const std::vector<std::string>& v) {
    j.key(key).begin_array();
    for (const std::string& s : v) j.value(p.clean(s));
    j.end_array();
    return *this;
  }
  Json& failure(std::string_view key, const std::optional<Failure>& f) {
    j.key(key);
    if (!f) {
      j.null();
      return *this;
    }
    j.begin_object().key("exit_code").value(f->code);
    strings("messages", f->messages);
    j.end_object();
    return *this;
  }
};

void json_model(Json& o, const ModelSection& m) {
  JsonWriter& j = o.j;
  j.begin_object();
  o.str("spec", m.spec).str_or_null("path", m.path);
  o.failure("error", m.error);
  j.key("verdict").value(m.report ? verdict_name(m.report->verdict) : "unreadable");
  j.key("report");
  if (!m.report) {
    j.null();
    j.end_object();
    return;
  }
  const ModelReport& r = *m.report;
  j.begin_object();
  j.key("size").value(r.file_size);
  o.str_or_null("sha256", r.sha256);
  j.key("gguf_version").value(static_cast<uint64_t>(r.gguf_version)).key("n_kv").value(r.n_kv);
  j.key("n_tensors").value(static_cast<uint64_t>(r.tensors.size())).key("n_params").value(r.n_params);
  o.str("architecture", r.architecture).str("name", r.name);
  write_hparams(j, r);
  write_tokenizer(j, r, [&](std::string_view v) { return o.p.clean(v); });
  j.key("types");
  write_type_histogram(j, r.type_histogram);
  o.strings("problems", r.problems).strings("notes", r.notes);
  j.end_object();
  j.end_object();
}

void json_child(Json& o, const ChildSection& c) {
  JsonWriter& j = o.j;
  j.begin_object();
  o.strings("args", c.args);
  j.key("started").value(c.started);
  o.failure("error", c.error);
  o.num_or_null("exit_code", c.exit_code).num_or_null("signal", c.signal);
  o.str_or_null("signal_name", c.signal_name);
  j.key("timed_out").value(c.timed_out).key("timeout_seconds").value(c.timeout_seconds).key("seconds").value(c.seconds);
  o.strings("stderr_tail", c.stderr_tail).strings("stdout_tail", c.stdout_tail);
  o.strings("threads_at_timeout", c.threads_at_timeout).strings("stacks", c.stacks);
  j.end_object();
}

}  // namespace

std::string render_json(const DebugReport& r) {
  Json o{r.privacy, JsonWriter{}};
  JsonWriter& j = o.j;
  j.begin_object();
  j.key("schema_version").value(1);
  o.str("generated_at", r.generated_at);
  o.strings("summary", r.summary);

  const ToolInfo& t = r.tool;
  j.key("tool").begin_object();
  o.str("version", t.version).str("commit", t.commit);
  j.key("dirty").value(t.dirty);
  o.str("build_type", t.build_type).str("compiler", t.compiler).str("compile_flags", t.compile_flags);
  o.strings("backends", t.backends).str("executable", t.executable);
  j.end_object();

  j.key("libraries").begin_array();
  for (const LibraryVersion& l : r.libraries) {
    j.begin_object();
    o.str("name", l.name).str("version", l.version);
    j.key("source").value(l.runtime ? "runtime" : "headers").end_object();
  }
  j.end_array();

  const MachineInfo& m = r.machine;
  j.key("machine").begin_object();
  o.str("os", m.os).str("kernel", m.kernel).str("arch", m.arch).str("cpu_model", m.cpu_model);
  j.key("logical_cores").value(m.logical_cores).key("usable_cores").value(m.usable_cores);
  o.num_or_null("physical_cores", m.physical_cores);
  j.key("cpu_flags").begin_object();
  for (const auto& [name, on] : m.cpu_flags) j.key(name).value(on);
  j.end_object();
  o.num_or_null("ram_total", m.ram_total).num_or_null("ram_available", m.ram_available);
  j.key("page_size").value(m.page_size);
  o.str_or_null("transparent_hugepages", m.transparent_hugepages);
  o.num_or_null("hugepages_total", m.hugepages_total).num_or_null("hugepage_size", m.hugepage_size);
  j.key("hypervisor").value(m.hypervisor);
  o.str_or_null("vm_vendor", m.vm_vendor);
  j.key("wsl").value(m.wsl);
  o.str_or_null("container", m.container);
  j.end_object();

  j.key("disks").begin_array();
  for (const DiskSpace& d : r.disks) {
    j.begin_object();
    o.str("role", d.role).str("path", d.path).str_or_null("measured", d.measured);
    o.num_or_null("free_bytes", d.free_bytes).num_or_null("total_bytes", d.total_bytes).str_or_null("error", d.error);
    j.end_object();
  }
  j.end_array();

  const KernelInfo& k = r.kernels;
  j.key("kernels").begin_object();
  o.str("requested", k.requested).str_or_null("selected", k.selected).str("why", k.why);
  o.failure("error", k.error);
  j.key("backends").begin_array();
  for (const BackendRow& b : k.backends) {
    j.begin_object().key("name").value(b.name).key("priority").value(b.priority);
    j.key("supported").value(b.supported).key("selected").value(b.selected).end_object();
  }
  j.end_array().end_object();

  const ConfigInfo& c = r.config;
  j.key("config").begin_object();
  j.key("threads").value(c.threads);
  o.str("threads_source", c.threads_source).str_or_null("threads_error", c.threads_error).str_or_null("cache_dir", c.cache_dir).strings("fixture_dirs", c.fixture_dirs);
  j.key("offline").value(c.offline);
  j.key("env").begin_array();
  for (const EnvEntry& e : c.env) {
    j.begin_object();
    o.str("name", e.name).str("value", e.value);
    j.key("redacted").value(e.redacted).end_object();
  }
  j.end_array().end_object();

  j.key("model");
  if (r.model) json_model(o, *r.model);
  else j.null();

  const FixtureSection& f = r.fixtures;
  j.key("fixtures").begin_object();
  o.str_or_null("cache_dir", f.cache_dir);
  j.key("hashed").value(f.hashed);
  o.failure("error", f.error);
  j.key("entries").begin_array();
  for (const FixtureRow& e : f.entries) {
    j.begin_object();
    o.str("name", e.name).str("status", e.status).str_or_null("source", e.source).str_or_null("path", e.path);
    o.str("expected_sha256", e.expected_sha256).str_or_null("actual_sha256", e.actual_sha256);
    j.end_object();
  }
  j.end_array().end_object();

  j.key("log").begin_object();
  o.str_or_null("file", r.log.file).str_or_null("note", r.log.note).strings("tail", r.log.tail);
  j.end_object();

  j.key("child");
  if (r.child) json_child(o, *r.child);
  else j.null();
  // Always empty: the Markdown report's three sections for the user, kept so that a JSON report
  // can be filled in the same way.
  j.key("what_i_ran").value("").key("what_i_expected").value("").key("what_i_got").value("");
  j.end_object();
  std::string out = j.str();
  out += '\n';
  return out;
}

}  // namespace bitnet::diag
