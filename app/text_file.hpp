// Reads a whole text file named on the command line (a prompt, a prompts list, text to
// tokenize). A path that cannot be read is the user's input error: ErrorCode::invalid_input,
// with the path, what the file was for, and the reason ("Is a directory", "Permission denied").
#pragma once

#include <string>
#include <string_view>

namespace bitnet::app {

// `what` names the file's role in the message, e.g. "the prompt file".
std::string read_text_file(const std::string& path, std::string_view what);

}  // namespace bitnet::app
