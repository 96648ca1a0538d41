// What `bitnet gen` says: the word taken for a command, and the nearest command names.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace bitnet::app {

// The first argument that is neither a global flag nor a global flag's value: the word the user
// meant as the command, or nullopt when there is none.
std::optional<std::string> command_word(int argc, char** argv);

// "unknown command 'gen'; did you mean 'generate'? (commands: bench, convert, ...)": the
// suggestion is a command that starts with the word, else the one within two edits of it.
std::string unknown_command(std::string_view word, std::span<const std::string_view> names);

}  // namespace bitnet::app
