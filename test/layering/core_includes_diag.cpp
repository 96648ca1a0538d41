// Layering probe (never part of the build): compiled with only core's include roots, so naming a
// diag header must fail. Test Layering.CoreCannotIncludeDiag expects exactly that failure.
#include "diag/model_report.hpp"
