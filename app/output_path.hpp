// Files the commands write besides stdout (crossval's --record and --junit, debug-report -o,
// convert's OUT): checked before any work, so a typo in a directory costs no crossval run or
// conversion, and written through a registered temporary name, so a failure leaves nothing.
#pragma once

#include <filesystem>
#include <string_view>

namespace bitnet::app {

// Error(failure), exit 1 as for any output that cannot be made: "FLAG PATH: cannot create it:
// REASON" when PATH is a directory, or its directory does not exist or cannot be written to.
void check_output_path(std::string_view flag, const std::filesystem::path& path);

// Writes bytes to path.tmp-PID (core/base/temp_files.hpp: removed by a signal or a forced exit too)
// and renames it over path. A failure removes the temporary and throws Error(failure) naming path
// and the reason.
void write_file_atomically(const std::filesystem::path& path, std::string_view bytes);

}  // namespace bitnet::app
