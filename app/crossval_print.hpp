// How `bitnet crossval` shows its report: a readable table, JSON (--json) and JUnit XML (--junit).
#pragma once

#include <string>

#include "diag/crossval/crossval.hpp"

namespace bitnet::app {

// with_steps: one row per step under each prompt.
std::string crossval_table(const diag::CrossvalReport& r, bool with_steps);
std::string crossval_json(const diag::CrossvalReport& r);
// One test case per prompt (and one for the metadata check when it was made).
std::string crossval_junit(const diag::CrossvalReport& r);

}  // namespace bitnet::app
