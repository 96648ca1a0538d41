// `bitnet debug-report`: everything a bug report needs, gathered into one struct (tool, linked
// libraries, machine, free disk, kernel choice, configuration, model, fixture cache, log tail, a
// child run, and empty "what I ran / expected / got" sections for the user) and rendered as
// Markdown or JSON. Gathering never throws for a broken model or a crashing child: each failure
// becomes a described part of the report. app/ supplies what only it may know (build facts, the
// environment); the privacy rules (home -> ~, secrets -> "set") are applied when rendering.
#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/fixtures/resolve.hpp"
#include "diag/machine_info.hpp"
#include "diag/model_report.hpp"

namespace bitnet::diag {

// A caught bitnet::Error: its exit-code category and message chain, outermost first.
struct Failure {
  int code = 1;
  std::vector<std::string> messages;
};

struct ToolInfo {
  std::string version, commit, build_type, compiler, compile_flags;
  bool dirty = false;
  std::vector<std::string> backends;  // compiled in
  std::string executable;             // /proc/self/exe
};

// A library `bitnet` is linked with. Asked of the loaded library where it can tell (a distro update
// can change it under an unchanged binary), else the version of the headers it was built against.
struct LibraryVersion {
  std::string name;     // "libcurl", "OpenSSL", ...
  std::string version;  // "7.88.1"; "unknown" when the library gives nothing
  bool runtime = true;  // false: from the build's headers
};

// Free space of a directory the run writes to or reads big files from. A directory that does not
// exist yet (a fresh cache) is measured at its nearest existing parent, where it would be created.
struct DiskSpace {
  std::string role;      // "cache" or "model"
  std::string path;      // the directory as configured
  std::string measured;  // the directory statvfs was asked about ("" when none could be)
  std::optional<uint64_t> free_bytes;   // available to an unprivileged user (f_bavail)
  std::optional<uint64_t> total_bytes;
  std::string error;     // why there is no number
};

struct BackendRow {
  std::string name;
  int priority = 0;
  bool supported = false;
  bool selected = false;
};
struct KernelInfo {
  std::string requested;  // --backend / BITNET_BACKEND, "" = automatic
  std::string selected;   // the table's name; "" when the choice failed
  std::string why;
  std::optional<Failure> error;
  std::vector<BackendRow> backends;  // best first
};

struct EnvEntry {
  std::string name;
  std::string value;      // "set" when redacted
  bool redacted = false;
};
struct ConfigInfo {
  int threads = 0;
  std::string threads_source;  // "-t", "BITNET_THREADS" or "all cores"
  std::string threads_error;   // why BITNET_THREADS was not used ("" = it was fine or unset)
  std::string cache_dir;
  std::vector<std::string> fixture_dirs;
  bool offline = false;
  std::vector<EnvEntry> env;   // BITNET_* and the few foreign variables that change behaviour
};

struct ModelSection {
  std::string spec;  // as given to -m
  std::string path;  // "" when it could not be resolved
  std::optional<ModelReport> report;
  std::optional<Failure> error;  // resolution failed, or the container is unreadable
};

struct FixtureRow {
  std::string name;
  std::string status;  // "verified", "present" (not hashed), "mismatch", "missing"
  std::string source;  // "cache", "local" or ""
  std::string path;
  std::string expected_sha256, actual_sha256;
};
struct FixtureSection {
  std::string cache_dir;
  bool hashed = true;  // false under --no-hash: found files are "present", not "verified"
  std::vector<FixtureRow> entries;
  std::optional<Failure> error;  // e.g. an unreadable BITNET_MANIFEST
};

struct LogSection {
  std::string file;  // "" = none configured
  std::string note;  // why there is no tail
  std::vector<std::string> tail;
};

struct ChildSection {
  std::vector<std::string> args;  // bitnet ARGS...
  bool started = false;
  std::optional<Failure> error;   // could not be started
  std::optional<int> exit_code;
  std::optional<int> signal;
  std::string signal_name;        // "SIGSEGV"
  bool timed_out = false;
  double timeout_seconds = 0;
  double seconds = 0;
  std::vector<std::string> stderr_tail, stdout_tail;
  // When it timed out: its threads as /proc saw them, and the stacks it printed on SIGQUIT.
  std::vector<std::string> threads_at_timeout, stacks;
};

// What is never shown: the home directory (written as ~) and the values of secret variables.
struct Privacy {
  std::string home;
  std::vector<std::string> secrets;
  std::string clean(std::string_view text) const;
};

struct DebugReport {
  std::string generated_at;  // UTC, ISO 8601
  ToolInfo tool;
  std::vector<LibraryVersion> libraries;
  MachineInfo machine;
  std::vector<DiskSpace> disks;  // the cache directory, then the model's directory (with -m)
  KernelInfo kernels;
  ConfigInfo config;
  std::optional<ModelSection> model;
  FixtureSection fixtures;
  LogSection log;
  std::optional<ChildSection> child;
  std::vector<std::string> summary;  // the failures found, one line each, for the top of the report
  Privacy privacy;
};

// Names containing TOKEN, KEY, SECRET, PASSWORD or AUTH (any case) hold secrets.
bool is_secret_name(std::string_view name);
// Keeps BITNET_* and the foreign variables that matter (OMP_*, GGML_*, HF_*, XDG_CACHE_HOME,
// NO_COLOR, ...), sorted by name; secret values become "set" and are added to `privacy.secrets`.
std::vector<EnvEntry> relevant_env(const std::vector<std::pair<std::string, std::string>>& environ,
                                   Privacy& privacy);

// libcurl, OpenSSL, spdlog, simdjson, zstd, PCRE2, glibc, libstdc++, in that order. Only version
// queries: nothing is initialised, nothing touches the network.
std::vector<LibraryVersion> linked_library_versions();
// statvfs of `dir` (or its nearest existing parent); never throws.
DiskSpace disk_space(std::string role, const std::filesystem::path& dir);

KernelInfo gather_kernels(const std::string& requested);
// `resolve` turns the spec into a file (app's resolve_model, offline); anything it or the model
// report throws is recorded.
ModelSection gather_model(const std::string& spec, const std::function<std::filesystem::path(std::string_view)>& resolve,
                          bool hash);
// Offline: nothing is downloaded or deleted. `hash` = hash local copies (cache stamps are trusted).
FixtureSection gather_fixtures(const fixtures::Fixtures& fx, bool hash);
LogSection gather_log(const std::filesystem::path& file, size_t max_lines = 40);
// Runs `executable ARGS...` with stdin closed and the timeout; never throws.
ChildSection run_child_command(const std::string& executable, const std::vector<std::string>& args,
                               std::chrono::milliseconds timeout);
// Fills `summary` from the sections (a failed kernel choice, an invalid model, a crash...).
void summarize(DebugReport& r);

std::string render_markdown(const DebugReport& r);
std::string render_json(const DebugReport& r);

}  // namespace bitnet::diag
