#pragma once
// Names the calling thread, so that `top -H`, /proc and a debugger show what it does.

#include <pthread.h>

#include <string>
#include <string_view>

namespace car {

/// Linux keeps 15 characters of a thread's name; longer names are cut.
inline void name_this_thread(std::string_view name) {
  const std::string kept(name.substr(0, 15));
  (void)pthread_setname_np(pthread_self(), kept.c_str());
}

}  // namespace car
