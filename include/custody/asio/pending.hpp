#pragma once
// The asynchronous operations pending on one execution context (an io_context), so that its
// shutdown can end them: an operation waits in a channel's queue, where Asio cannot see it.
//
// At shutdown each pending operation is settled as stopped through its own word, by the one
// compare-exchange every settler uses; its resumer then posts it into the context, whose
// shutdown destroys it unrun, which unlinks it from its channels and frees it and its handler
// without calling it (Asio's rule for the handlers it holds). An operation that a peer is
// completing at that moment is waited for (that takes a move); a post under way is waited for
// too. Afterwards nothing is posted: a peer that settled an operation in the few instructions
// between the last of these waits and its own post leaves that operation unfreed rather than
// touch a context that is going away.
//
// The list also holds its context's task inbox (task_inbox.hpp; used by the tasks of an
// io_context only): one per context, reached through the list every task already holds. The
// shutdown covers the tasks in it as follows. (1) shut_down() settles every waiting task; each
// settled task is pushed, and the push that finds the inbox idle posts a drain, still before
// `shut_` is set (a post under way is waited for). (2) Then the context's own shutdown destroys
// every handler it holds unrun, among them the drain that owns the inbox, if there is one: that
// drain abandons its batch, then takes and abandons whatever the inbox holds until it finds it
// empty. A push that races the shutdown either lands before that last take (an owned inbox: it is
// taken and abandoned) or finds the inbox idle after it; it then cannot post (`shut_` is set), and
// its task, with any pushed after it, stays in the inbox unfreed, the same narrow race as above.

#include <asio/execution_context.hpp>
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>

#include "../detail/interleave.hpp"
#include "../detail/mutex.hpp"
#include "../detail/parker.hpp"
#include "../detail/thread_annotations.hpp"
#include "task_inbox.hpp"

namespace custody::detail {

/// One registered operation: its word, and its place in the list.
struct pending_entry {
  parker* word = nullptr;
  pending_entry* prev = nullptr;
  pending_entry* next = nullptr;
};

/// What an operation shares with its context's shutdown; it outlives both.
class pending_list {
 public:
  void add(pending_entry& e) {
    std::lock_guard lock(list_lock_);
    e.prev = nullptr;
    e.next = head_;
    if (head_) head_->prev = &e;
    head_ = &e;
  }

  void remove(pending_entry& e) {
    std::lock_guard lock(list_lock_);
    (e.prev ? e.prev->next : head_) = e.next;
    if (e.next) e.next->prev = e.prev;
  }

  /// Runs `post` unless the context has shut down (then false: the caller must not touch the
  /// context). Holds the shutdown off while posting.
  template <class Post>
  bool post_unless_shut(Post&& post) {
    // Either this sees `shut_`, or shut_down() sees the count and waits for the post.
    posting_.fetch_add(1, std::memory_order_seq_cst);
    const bool shut = shut_.load(std::memory_order_seq_cst);
    if (!shut) post();
    posting_.fetch_sub(1, std::memory_order_release);
    return !shut;
  }

  /// The inbox of the context's tasks woken from outside its loops.
  task_inbox& inbox() noexcept { return inbox_; }

  /// False once the context shut down: a list cached by its context's address is stale then.
  bool live() const noexcept { return !shut_.load(std::memory_order_acquire); }

  void shut_down() {
    {
      std::lock_guard lock(list_lock_);
      // Settling posts into the context (not into this list) and does not unlink anything:
      // entries leave the list only when their operation is destroyed.
      for (pending_entry* e = head_; e; e = e->next) {
        e->word->try_settle(parker::make(settled::stopped, 0));
      }
      // Settled by a peer that is moving a value right now: it finishes within a move.
      for (pending_entry* e = head_; e; e = e->next) {
        while (parker::open(e->word->load())) std::this_thread::yield();
      }
    }
    shut_.store(true, std::memory_order_seq_cst);
    while (posting_.load(std::memory_order_acquire) != 0) std::this_thread::yield();
  }

 private:
  mutex list_lock_;
  pending_entry* head_ CUSTODY_GUARDED_BY(list_lock_) = nullptr;
  atomic<std::uint32_t> posting_{0};
  atomic<bool> shut_{false};
  task_inbox inbox_;
};

/// The execution context's service that shuts its pending_list down.
class pending_service : public ::asio::execution_context::service {
 public:
  // Asio finds a service by this member; its constructor does not throw.
  inline static ::asio::execution_context::id id;  // NOLINT(cert-err58-cpp)

  explicit pending_service(::asio::execution_context& context)
      : ::asio::execution_context::service(context), list_(std::make_shared<pending_list>()) {}

  const std::shared_ptr<pending_list>& list() const noexcept { return list_; }

 private:
  void shutdown() override { list_->shut_down(); }

  std::shared_ptr<pending_list> list_;
};

inline std::shared_ptr<pending_list> pending_list_of_context(::asio::execution_context& context) {
  thread_local const ::asio::execution_context* cached_context = nullptr;
  thread_local std::shared_ptr<pending_list> cached;
  if (cached_context != &context || !cached->live()) {
    cached = ::asio::use_service<pending_service>(context).list();
    cached_context = &context;
  }
  return cached;
}

/// The pending_list of `context`; none without a context (use_future's executor, which
/// completes a promise). Looked up once per thread and context: Asio's service lookup takes a
/// lock.
inline std::shared_ptr<pending_list> pending_list_of(::asio::execution_context* context) {
  if (!context) return nullptr;
  return pending_list_of_context(*context);
}

}  // namespace custody::detail
