#pragma once
// Outcome of every channel, select and store operation: custody::status and to_string().
// Defined below the internals (detail/status.hpp), which use it too.
#include "detail/status.hpp"
