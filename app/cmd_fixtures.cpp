// `bitnet fixtures list | fetch NAME... | verify [NAME...] | path NAME | clean [NAME...]`: the
// fixture cache (and the synthetic models in it) by hand. Exit 4 on any download or checksum failure (CLI.md).
#include <cstdio>
#include <memory>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "core/base/units.hpp"
#include "app/cli.hpp"
#include "app/signals.hpp"
#include "core/base/error.hpp"
#include "core/base/json_writer.hpp"
#include "core/fixtures/resolve.hpp"

namespace bitnet::app {
namespace {

struct FixturesOptions {
  std::vector<std::string> manifests;
  std::string cache_dir;
  bool offline = false;
  double connect_timeout = -1;  // seconds; < 0 = keep the default
  double stall_timeout = -1;
  int retries = -1;
  int retry_delay_ms = -1;
  std::vector<std::string> names;
  bool all = false;
  bool json = false;
};

void out(const std::string& s) { write_stdout(s); }

fixtures::Fixtures make_fixtures(const Context& ctx, const FixturesOptions& o) {
  fixtures::FixtureConfig cfg = ctx.fixtures;
  if (!o.cache_dir.empty()) cfg.cache_dir = o.cache_dir;
  if (o.offline) cfg.offline = true;
  auto& d = cfg.download;
  if (o.connect_timeout >= 0) d.connect_timeout = std::chrono::milliseconds(static_cast<int64_t>(o.connect_timeout * 1000));
  if (o.stall_timeout >= 0) d.stall_timeout = std::chrono::milliseconds(static_cast<int64_t>(std::max(0.1, o.stall_timeout) * 1000));
  if (o.retries >= 0) d.retries = o.retries;
  if (o.retry_delay_ms >= 0) d.retry_delay = std::chrono::milliseconds(o.retry_delay_ms);
  d.cancel = &install_interrupt_handler();
  std::vector<std::filesystem::path> manifests = ctx.manifests;
  for (const auto& m : o.manifests) manifests.emplace_back(m);
  return fixtures::Fixtures(std::move(cfg), load_manifests(manifests));
}

std::vector<const fixtures::Entry*> selected(const fixtures::Fixtures& fx, const std::vector<std::string>& names) {
  std::vector<const fixtures::Entry*> v;
  if (names.empty())
    for (const auto& e : fx.manifest().entries()) v.push_back(&e);
  for (const auto& n : names) v.push_back(&fx.entry(n));
  return v;
}

// Several failures become one error: a headline, then each failure's own lines as causes.
[[noreturn]] void throw_failures(std::vector<Error> failures, std::string_view what, size_t total) {
  if (failures.size() == 1) throw failures.front();
  std::vector<std::string> lines;
  for (const Error& e : failures) lines.insert(lines.end(), e.chain().begin(), e.chain().end());
  Error all(ErrorCode::fixture, lines.back());
  for (size_t i = lines.size() - 1; i-- > 0;) all.wrap(lines[i]);
  all.wrap(fmt::format("{} of {} fixtures {}", failures.size(), total, what));
  throw all;
}

int run_list(const fixtures::Fixtures& fx, const FixturesOptions& o) {
  std::vector<std::string> bad;
  JsonWriter j;
  std::string text = fmt::format("{:<28} {:<8} {:>10}  {}\n", "NAME", "STATUS", "SIZE", "PATH / SOURCE");
  j.begin_array();
  for (const fixtures::Entry* e : selected(fx, o.names)) {
    fixtures::EntryStatus s = fx.status(*e);
    if (s.state == fixtures::State::mismatch) bad.push_back(fmt::format("{}: {}: expected sha256 {}, got {}", e->name,
                                                                        s.path.string(), e->sha256, s.check.sha256));
    std::string where = s.path.string();
    if (s.state == fixtures::State::missing)
      where = e->urls.empty() ? "(no URL: local fixture directories only)" : "(download: " + e->urls.front() + ")";
    if (s.state == fixtures::State::mismatch) where += " (sha256 " + s.check.sha256 + ")";
    text += fmt::format("{:<28} {:<8} {:>10}  {}\n", e->name, fixtures::state_name(s.state), human_bytes(e->size), where);
    j.begin_object();
    j.key("name").value(e->name).key("status").value(fixtures::state_name(s.state));
    j.key("path");
    if (s.path.empty()) j.null(); else j.value(s.path.string());
    j.key("size").value(e->size).key("sha256").value(e->sha256);
    j.key("actual_sha256");
    if (s.check.sha256.empty()) j.null(); else j.value(s.check.sha256);
    j.key("urls").begin_array();
    for (const auto& u : e->urls) j.value(u);
    j.end_array();
    j.key("compression").value(e->compression == fixtures::Compression::zstd ? "zstd" : "none");
    j.key("licence").value(e->licence).key("description").value(e->description);
    j.end_object();
  }
  j.end_array();
  // Synthetic models are no fixtures (no manifest entry, no checksum), so they follow the table,
  // and only when all fixtures are listed; --json keeps its array of manifest entries.
  if (o.names.empty())
    if (const std::vector<fixtures::CachedFile> synth = fx.synthetic_models(); !synth.empty()) {
      text += fmt::format("\nsynthetic models in {} (made on first use; `fixtures clean` removes them):\n",
                          fx.config().synthetic_dir().string());
      for (const auto& f : synth)
        text += fmt::format("{:>10}  {}\n", human_bytes(f.bytes), f.path.filename().string());
    }
  out(o.json ? j.str() + "\n" : text);
  std::fflush(stdout);
  if (!bad.empty()) {
    Error e(ErrorCode::fixture, bad.back());
    for (size_t i = bad.size() - 1; i-- > 0;) e.wrap(bad[i]);
    e.wrap(fmt::format("{} fixture{} failed the checksum", bad.size(), bad.size() == 1 ? "" : "s"));
    throw e;
  }
  return 0;
}

int run_fetch(fixtures::Fixtures& fx, const FixturesOptions& o) {
  std::vector<std::string> names = o.names;
  if (o.all)
    for (const auto& e : fx.manifest().entries())
      if (!e.urls.empty()) names.push_back(e.name);
  if (names.empty()) throw Error(ErrorCode::usage, "fixtures fetch: name at least one fixture (or --all)");
  std::vector<Error> failures;
  for (const auto& n : names) {
    try {
      fixtures::Resolved r = fx.resolve(n);
      out(fmt::format("{}\t{}\t{}\n", fx.entry(n).name, fixtures::source_name(r.source), r.path.string()));
      std::fflush(stdout);
    } catch (const Error& e) {
      if (e.code() != ErrorCode::fixture) throw;
      failures.push_back(e);
    }
  }
  if (!failures.empty()) throw_failures(std::move(failures), "could not be fetched", names.size());
  return 0;
}

int run_verify(fixtures::Fixtures& fx, const FixturesOptions& o) {
  std::vector<Error> failures;
  auto entries = selected(fx, o.names);
  for (const fixtures::Entry* e : entries) {
    std::vector<fixtures::Finding> found = fx.verify(*e, !o.offline);
    if (found.empty()) {
      out(fmt::format("{:<9} {:<28} {}\n", "missing", e->name, "(not cached, not in a fixture directory)"));
      if (!o.names.empty())
        failures.push_back(make_error(ErrorCode::fixture, "fixture '{}' is not present: not cached and not in a fixture directory",
                                      e->name));
    }
    for (const fixtures::Finding& f : found) {
      std::string where = fmt::format("{} {}", fixtures::source_name(f.where), f.path.string());
      if (f.ok) {
        out(fmt::format("{:<9} {:<28} {}\n", "ok", e->name, where));
        continue;
      }
      std::string hashes = fmt::format("expected sha256 {}, got {}{}", e->sha256, f.check.sha256,
                                       f.check.size == e->size ? "" : fmt::format(" ({} bytes, expected {})", f.check.size, e->size));
      std::string fate = f.where == fixtures::Source::local ? "" : f.refetched ? "; removed and fetched again, now verified"
                                                                  : f.error.empty() ? "; removed"
                                                                  : "; removed, fetching it again failed";
      out(fmt::format("{:<9} {:<28} {}: {}{}\n", "mismatch", e->name, where, hashes, fate));
      if (!f.refetched)
        failures.push_back(make_error(ErrorCode::fixture, "{}: checksum mismatch for fixture '{}': {}{}", f.path.string(),
                                      e->name, hashes, fate));
    }
    std::fflush(stdout);
  }
  if (!failures.empty()) throw_failures(std::move(failures), "failed verification", entries.size());
  return 0;
}

int run_path(fixtures::Fixtures& fx, const FixturesOptions& o) {
  if (o.names.size() != 1) throw Error(ErrorCode::usage, "fixtures path: name exactly one fixture");
  out(fx.resolve(o.names.front()).path.string() + "\n");
  return 0;
}

int run_clean(const fixtures::Fixtures& fx, const FixturesOptions& o) {
  fixtures::CleanReport r = fx.clean(o.names);
  for (const auto& b : r.busy)
    std::fprintf(stderr, "warning: left '%s' alone: another bitnet process is fetching it\n", b.c_str());
  for (const auto& f : r.live)
    std::fprintf(stderr, "warning: left %s alone: the process writing it is still running\n", f.path.c_str());
  std::string text;
  for (const auto& f : r.removed) text += fmt::format("removed {} ({})\n", f.path.string(), human_bytes(f.bytes));
  text += fmt::format("removed {} file{} ({}) from {}\n", r.files(), r.files() == 1 ? "" : "s", human_bytes(r.bytes()),
                      fx.config().cache_dir.string());
  out(text);
  return 0;
}

}  // namespace

RunFn setup_fixtures(CLI::App& sub) {
  auto o = std::make_shared<FixturesOptions>();
  sub.require_subcommand(1, 1);
  // take_last: a later value wins, so a wrapper script's defaults can be overridden.
  sub.add_option("--manifest", o->manifests, "A manifest JSON merged over the built-in one (repeatable; also BITNET_MANIFEST)");
  sub.add_option("--cache-dir", o->cache_dir, "The cache directory (default: BITNET_CACHE_DIR, $XDG_CACHE_HOME/bitnet, ~/.cache/bitnet)")->take_last();
  sub.add_flag("--offline", o->offline, "Never touch the network (also BITNET_OFFLINE=1)");
  sub.add_option("--connect-timeout", o->connect_timeout, "Seconds to wait for a connection (default 15)")->take_last();
  sub.add_option("--stall-timeout", o->stall_timeout, "Give up an attempt after this many seconds without data (default 30)")->take_last();
  sub.add_option("--retries", o->retries, "Further attempts per mirror after a failure (default 4)")->take_last();
  sub.add_option("--retry-delay", o->retry_delay_ms, "Milliseconds before the first retry; doubles each time (default 500)")->take_last();
  sub.footer("Examples:\n  bitnet fixtures list\n  bitnet fixtures fetch stories260K\n"
             "  bitnet fixtures --manifest my.json path BitNet-b1.58-2B-4T\n"
             "Resolution: cache, then the BITNET_FIXTURE_PATH directories, then the manifest's URLs; every file is\n"
             "checked against the manifest's SHA-256. Exit status 4 on a download or checksum failure.");

  enum class Action { list, fetch, verify, path, clean };
  auto action = std::make_shared<Action>(Action::list);
  auto add = [&](const char* name, const char* help, Action a) {
    CLI::App* s = sub.add_subcommand(name, help);
    s->fallthrough();  // the shared flags may come after the action too
    s->callback([action, a] { *action = a; });
    return s;
  };
  CLI::App* list = add("list", "Every known fixture and its state: cached, local, missing, mismatch; then the synthetic models in the cache",
                        Action::list);
  list->add_flag("--json", o->json, "A JSON array instead of the table");
  list->add_option("NAME", o->names, "Only these fixtures (default: all)");
  add("fetch", "Make fixtures available (download unless cached or local); prints NAME, SOURCE, PATH", Action::fetch)
      ->add_option("NAME", o->names, "Fixture names");
  sub.get_subcommand("fetch")->add_flag("--all", o->all, "Every fixture that has a download URL");
  add("verify", "Hash every copy again; a corrupt cached copy is removed and fetched again", Action::verify)
      ->add_option("NAME", o->names, "Fixture names (default: all)");
  add("path", "Print the verified file of a fixture (fetching it if needed)", Action::path)
      ->add_option("NAME", o->names, "A fixture name")->required();
  add("clean", "Remove cached fixtures, synthetic models and leftovers of interrupted downloads and writes "
             "(.part, .lock, FILE.tmp-PID of a process that is gone); one line per file removed",
      Action::clean)
      ->add_option("NAME", o->names, "Only these fixtures (default: all, and the synthetic models)");

  return [o, action](const Context& ctx) {
    fixtures::Fixtures fx = make_fixtures(ctx, *o);
    switch (*action) {
      case Action::list: return run_list(fx, *o);
      case Action::fetch: return run_fetch(fx, *o);
      case Action::verify: return run_verify(fx, *o);
      case Action::path: return run_path(fx, *o);
      case Action::clean: return run_clean(fx, *o);
    }
    return 1;
  };
}

}  // namespace bitnet::app
