// Facts about this build, generated at build time (cmake/build_info.cmake).
#pragma once

namespace bitnet::build {
extern const char* const version;
extern const char* const commit;
extern const bool dirty;
extern const char* const build_type;
extern const char* const compiler;
extern const char* const compile_flags;
}  // namespace bitnet::build
