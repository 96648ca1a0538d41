// The unknown-command message: a prefix match or the closest name by edit distance.
#include "command_names.hpp"

#include <algorithm>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace bitnet::app {
namespace {

// Global flags that take a value as the next argument (cli.cpp's list).
constexpr std::string_view kValueFlags[] = {"--log-level", "--log-file", "--timeout", "--slow-ms"};

size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

}  // namespace

std::optional<std::string> command_word(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    if (a.empty() || a[0] != '-') return std::string(a);
    if (std::find(std::begin(kValueFlags), std::end(kValueFlags), a) != std::end(kValueFlags)) ++i;
  }
  return std::nullopt;
}

std::string unknown_command(std::string_view word, std::span<const std::string_view> names) {
  std::string_view best;
  size_t best_distance = 3;  // suggest only within two edits
  for (std::string_view n : names) {
    if (n.starts_with(word)) {
      best = n;
      break;
    }
    const size_t d = edit_distance(word, n);
    if (d < best_distance) best = n, best_distance = d;
  }
  std::vector<std::string_view> sorted(names.begin(), names.end());
  std::sort(sorted.begin(), sorted.end());
  std::string msg = fmt::format("unknown command '{}'", word);
  if (!best.empty()) msg += fmt::format("; did you mean '{}'?", best);
  return msg + fmt::format(" (commands: {})", fmt::join(sorted, ", "));
}

}  // namespace bitnet::app
