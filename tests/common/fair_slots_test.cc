// FairSlots hands slots out in arrival order and never more at once than it has.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>
#include <vector>

#include "common/fair_slots.h"

namespace lookalike {
namespace {
using namespace std::chrono_literals;

TEST(FairSlots, WaitersAreServedInArrivalOrder) {
  FairSlots slots(1);
  slots.acquire();  // held: everyone below queues
  std::mutex mutex;
  std::vector<int> order;
  std::vector<std::thread> waiters;
  for (int i = 0; i < 5; ++i) {
    waiters.emplace_back([&, i] {
      slots.acquire();
      {
        std::lock_guard lock(mutex);
        order.push_back(i);
      }
      slots.release();
    });
    std::this_thread::sleep_for(30ms);  // waiter i queues before waiter i + 1 starts
  }
  slots.release();
  for (auto& t : waiters) t.join();
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3, 4}));
}

TEST(FairSlots, NeverMoreHoldersThanSlots) {
  FairSlots slots(3);
  std::atomic<int> holding{0}, most{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 12; ++i) {
    threads.emplace_back([&] {
      for (int round = 0; round < 50; ++round) {
        slots.acquire();
        const int now = ++holding;
        int seen = most.load();
        while (now > seen && !most.compare_exchange_weak(seen, now)) {
        }
        std::this_thread::yield();
        --holding;
        slots.release();
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_LE(most.load(), 3);
  EXPECT_GE(most.load(), 1);
}

}  // namespace
}  // namespace lookalike
