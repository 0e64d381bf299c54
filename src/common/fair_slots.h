// A counting semaphore that hands its slots out in arrival order (a ticket per acquire); the
// image slots and NetworkPool's networks are handed out through it. std::counting_semaphore wakes whichever
// waiter the scheduler picks, so under load some requests waited many turns: p99 reached 5x p50 at 16 clients
// (docs/benchmarks.md), where tickets keep it near the queue's length.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <mutex>

namespace lookalike {

class FairSlots {
 public:
  explicit FairSlots(size_t slots) : free_(slots) {}
  FairSlots(const FairSlots&) = delete;
  FairSlots& operator=(const FairSlots&) = delete;

  void acquire() {
    std::unique_lock lock(mutex_);
    const uint64_t ticket = next_ticket_++;
    available_.wait(lock, [&] { return ticket == now_serving_ && free_ > 0; });
    ++now_serving_;
    --free_;
    lock.unlock();
    available_.notify_all();  // the next ticket may be servable too
  }

  void release() {
    {
      std::lock_guard lock(mutex_);
      ++free_;
    }
    available_.notify_all();
  }

 private:
  std::mutex mutex_;
  std::condition_variable available_;
  size_t free_;
  uint64_t next_ticket_ = 0;
  uint64_t now_serving_ = 0;
};

}  // namespace lookalike
