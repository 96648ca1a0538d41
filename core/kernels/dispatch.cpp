// Backend registry.
#include "dispatch.hpp"

#include <algorithm>
#include <mutex>

#include "core/base/error.hpp"

namespace bitnet::kernels {
namespace {

struct Registry {
  std::mutex mu;
  std::vector<Backend> backends;
};

Registry& registry() {
  static Registry r;
  return r;
}

bool always() { return true; }

void append_word(std::string& s, std::string_view sep, std::string_view word) {
  if (!s.empty()) s.append(sep);
  s.append(word);
}

}  // namespace

void register_backend(const Backend& b) {
  Registry& r = registry();
  std::lock_guard lock(r.mu);
  for (const Backend& have : r.backends)
    if (have.name == b.name) return;  // registering twice is harmless
  r.backends.push_back(b);
}

std::vector<Backend> registered_backends() {
  std::vector<Backend> out;
  {
    Registry& r = registry();
    std::lock_guard lock(r.mu);
    out = r.backends;
  }
  out.push_back(Backend{"reference", always, reference_table, -1});
  std::stable_sort(out.begin(), out.end(), [](const Backend& a, const Backend& b) { return a.priority > b.priority; });
  return out;
}

Selection select_backend(std::string_view name) {
  const std::vector<Backend> all = registered_backends();
  std::string usable, known;
  for (const Backend& b : all) {
    append_word(known, ", ", b.name);
    if (b.supported()) append_word(usable, " ", b.name);
  }
  if (name.empty()) {
    for (const Backend& b : all)
      if (b.supported()) return {&b.table(), "best supported of: " + usable};
  }
  for (const Backend& b : all) {
    if (b.name != name) continue;
    if (!b.supported())
      throw make_error(ErrorCode::usage, "backend '{}' needs CPU features this machine lacks (usable here: {})", name,
                       usable);
    return {&b.table(), "asked for by name"};
  }
  throw make_error(ErrorCode::usage, "unknown backend '{}' (available: {})", name, known);
}

}  // namespace bitnet::kernels
