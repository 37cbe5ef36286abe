# custody::asio: custody's channels, select, stores and task groups for coroutines and callbacks
# on Asio executors (include <custody/asio.hpp>). Defined only when standalone Asio (Debian:
# libasio-dev) is found; the rest of custody does not need it.
#
# Used by custody's own build and by its installed package alike: after including this file,
# `if(TARGET custody::asio)` tells whether it is available.
include_guard(GLOBAL)

find_path(CUSTODY_ASIO_INCLUDE_DIR NAMES asio.hpp DOC "standalone Asio's include directory")
mark_as_advanced(CUSTODY_ASIO_INCLUDE_DIR)

if(CUSTODY_ASIO_INCLUDE_DIR AND NOT TARGET custody::asio)
  add_library(custody::asio INTERFACE IMPORTED GLOBAL)
  target_include_directories(custody::asio SYSTEM INTERFACE "${CUSTODY_ASIO_INCLUDE_DIR}")
  # Standalone Asio, without Boost; coroutines are C++20's own.
  # Asio 1.22 turns co_await support on by GCC's macros only, and for Clang looks for
  # <experimental/coroutine>, which libstdc++ does not ship; C++20's <coroutine> is enough, so say
  # so for every compiler.
  # Asio 1.22 chooses between aligned_alloc/free and operator new/delete by a macro of the
  # standard library's that is defined only once a standard header was included: a unit that
  # includes Asio first chooses the other way, and the linker keeps one unit's inline functions
  # for all, pairing one's allocation with the other's release. One choice for every unit.
  target_compile_definitions(custody::asio INTERFACE ASIO_STANDALONE ASIO_NO_DEPRECATED
                                                     ASIO_HAS_CO_AWAIT=1 ASIO_HAS_STD_COROUTINE=1
                                                     ASIO_DISABLE_STD_ALIGNED_ALLOC)
  target_link_libraries(custody::asio INTERFACE custody::custody)
endif()
