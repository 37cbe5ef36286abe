#pragma once
// Clang thread-safety annotations, behind custody's own macros.
//
// With Clang these expand to the attributes of Clang's thread-safety analysis
// (https://clang.llvm.org/docs/ThreadSafetyAnalysis.html); with every other compiler they expand
// to nothing. Building with `clang++ -Wthread-safety -Werror` then checks at compile time that
// every member marked CUSTODY_GUARDED_BY(lock) is only touched while `lock` is held, and that
// every helper marked CUSTODY_REQUIRES(lock) is only called with it held.
//
// The standard library's std::lock_guard and std::unique_lock carry no annotations in
// libstdc++, so the analysis would not see them take a lock; spin.hpp and mutex.hpp therefore
// specialize both for custody's spinlock and mutex (same behaviour, plus the annotations)
// while the analysis is on. std::mutex itself is no capability either: state it guards uses
// detail::mutex (mutex.hpp) instead.
//
// Define CUSTODY_NO_THREAD_SAFETY_ANNOTATIONS to turn the macros into no-ops with Clang too.

#if defined(__clang__) && !defined(CUSTODY_NO_THREAD_SAFETY_ANNOTATIONS)
#define CUSTODY_THREAD_SAFETY_ANALYSIS 1
#define CUSTODY_THREAD_ANNOTATION_(x) __attribute__((x))
#else
#define CUSTODY_THREAD_SAFETY_ANALYSIS 0
#define CUSTODY_THREAD_ANNOTATION_(x)
#endif

/// A class whose objects are locks ("capabilities"); `name` appears in diagnostics.
#define CUSTODY_CAPABILITY(name) CUSTODY_THREAD_ANNOTATION_(capability(name))
/// An RAII class that holds a capability for its lifetime.
#define CUSTODY_SCOPED_CAPABILITY CUSTODY_THREAD_ANNOTATION_(scoped_lockable)

/// A data member that may be read or written only while `lock` is held.
#define CUSTODY_GUARDED_BY(lock) CUSTODY_THREAD_ANNOTATION_(guarded_by(lock))
/// A pointer member whose pointee may be touched only while `lock` is held.
#define CUSTODY_PT_GUARDED_BY(lock) CUSTODY_THREAD_ANNOTATION_(pt_guarded_by(lock))

/// A function that must be called with the given locks held (exclusively), and keeps them.
#define CUSTODY_REQUIRES(...) CUSTODY_THREAD_ANNOTATION_(requires_capability(__VA_ARGS__))
/// A function that must be called without the given locks (it takes them itself).
#define CUSTODY_EXCLUDES(...) CUSTODY_THREAD_ANNOTATION_(locks_excluded(__VA_ARGS__))

/// A function that takes the given locks (or `this`, if none is named) and returns holding them.
#define CUSTODY_ACQUIRE(...) CUSTODY_THREAD_ANNOTATION_(acquire_capability(__VA_ARGS__))
/// A function that releases the given locks (or `this`).
#define CUSTODY_RELEASE(...) CUSTODY_THREAD_ANNOTATION_(release_capability(__VA_ARGS__))
/// A function that takes the locks only when it returns `result`.
#define CUSTODY_TRY_ACQUIRE(...) CUSTODY_THREAD_ANNOTATION_(try_acquire_capability(__VA_ARGS__))
/// A function that checks at run time that the lock is held, and tells the analysis so.
#define CUSTODY_ASSERT_CAPABILITY(x) CUSTODY_THREAD_ANNOTATION_(assert_capability(x))
/// A function returning a reference to the given lock.
#define CUSTODY_RETURN_CAPABILITY(x) CUSTODY_THREAD_ANNOTATION_(lock_returned(x))

/// Turns the analysis off for one function: for code whose locking it cannot follow (e.g. a
/// helper handed guarded members by reference). Every use says why.
#define CUSTODY_NO_THREAD_SAFETY_ANALYSIS CUSTODY_THREAD_ANNOTATION_(no_thread_safety_analysis)
