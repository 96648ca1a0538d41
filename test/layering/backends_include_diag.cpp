// Layering probe: backends see core only; naming a diag header must fail to compile.
#include "diag/model_report.hpp"
