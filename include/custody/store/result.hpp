#pragma once
// The answer to one set() request: custody::set_status, custody::set_result.
// Defined below the store's internals (detail/set_result.hpp), which use it too.
#include "../detail/set_result.hpp"
