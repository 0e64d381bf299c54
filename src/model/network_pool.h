// A fixed set of networks so that at most size() forwards run at once (bounded memory), each on
// its own cv::dnn::Net (not thread-safe). lease() blocks until one is free; FairSlots hands them
// out in arrival order, so under load a request waits for the ones queued before it rather than
// for luck (tail latency).
#pragma once

#include <algorithm>
#include <memory>
#include <mutex>
#include <vector>

#include "common/fair_slots.h"

namespace lookalike {

template <typename Network>
class NetworkPool {
 public:
  // Takes ownership; `networks` must not be empty.
  explicit NetworkPool(std::vector<std::unique_ptr<Network>> networks)
      : state_(std::make_unique<State>(networks.size())) {
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
    state_->slots.acquire();
    std::lock_guard lock(state_->mutex);
    Network* n = state_->free.back();
    state_->free.pop_back();
    return Lease(this, n);
  }

  size_t size() const { return state_->all.size(); }
  const Network& front() const { return *state_->all.front(); }

 private:
  struct State {
    explicit State(size_t size) : slots(size) {}
    std::vector<std::unique_ptr<Network>> all;
    std::vector<Network*> free;
    std::mutex mutex;  // guards `free`; `slots` decides who may take from it, in arrival order
    FairSlots slots;
  };

  void give_back(Network* n) {
    {
      std::lock_guard lock(state_->mutex);
      state_->free.push_back(n);
    }
    state_->slots.release();
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
