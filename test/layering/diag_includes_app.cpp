// Layering probe: diag sits below app; naming an app header must fail to compile.
#include "app/cli.hpp"
