#pragma once
// How updates reach one subscriber: custody::policy, chosen per subscriber at subscribe().
// Defined below the store's internals (detail/store_policy.hpp), which use it too.
#include "../detail/store_policy.hpp"
