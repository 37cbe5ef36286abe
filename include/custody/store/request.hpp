#pragma once
// SetRequest<T>: one consumer's request to change a store, as the owner receives it.
// Defined below the store's internals (detail/set_request.hpp), which use it too.
#include "../detail/set_request.hpp"
