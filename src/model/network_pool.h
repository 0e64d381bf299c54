// A fixed set of networks so that at most size() forwards run at once (bounded memory), each on
// its own cv::dnn::Net (not thread-safe). lease() blocks until one is free; tickets hand them
// out in arrival order, so under load a request waits for the ones queued before it rather than
// for luck (tail latency).
#pragma once

#include <algorithm>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

namespace lookalike {

template <typename Network>
class NetworkPool {
 public:
  // Takes ownership; `networks` must not be empty.
  explicit NetworkPool(std::vector<std::unique_ptr<Network>> networks) : state_(std::make_unique<State>()) {
    state_->all = std::move(networks);
    for (auto& n : state_->all) state_->free.push_back(n.get());
  }

  class Lease {
   public:
    Lease(NetworkPool* pool, Network* network) : pool_(pool), network_(network) {}
    Lease(Lease&& other) noexcept : pool_(other.pool_), network_(other.network_) { other.pool_ = nullptr; }
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    Lease& operator=(Lease&&) = delete;
    ~Lease() {
      if (pool_) pool_->give_back(network_);
    }
    Network* operator->() const { return network_; }
    Network& operator*() const { return *network_; }

   private:
    NetworkPool* pool_;
    Network* network_;
  };

  Lease lease() {
    std::unique_lock lock(state_->mutex);
    const uint64_t ticket = state_->next_ticket++;
    state_->available.wait(lock, [&] { return ticket == state_->now_serving && !state_->free.empty(); });
    ++state_->now_serving;
    Network* n = state_->free.back();
    state_->free.pop_back();
    lock.unlock();
    state_->available.notify_all();  // the next ticket may be servable too
    return Lease(this, n);
  }

  size_t size() const { return state_->all.size(); }
  const Network& front() const { return *state_->all.front(); }

 private:
  struct State {
    std::vector<std::unique_ptr<Network>> all;
    std::vector<Network*> free;
    uint64_t next_ticket = 0;
    uint64_t now_serving = 0;
    std::mutex mutex;
    std::condition_variable available;
  };

  void give_back(Network* n) {
    {
      std::lock_guard lock(state_->mutex);
      state_->free.push_back(n);
    }
    state_->available.notify_all();
  }

  std::unique_ptr<State> state_;
};

// `size` (at least one) networks, each constructed from the same arguments.
template <typename Network, typename... Args>
std::vector<std::unique_ptr<Network>> make_networks(size_t size, const Args&... args) {
  std::vector<std::unique_ptr<Network>> all;
  for (size_t i = 0; i < std::max<size_t>(1, size); ++i) all.push_back(std::make_unique<Network>(args...));
  return all;
}

}  // namespace lookalike
