#include "index/id_positions.h"

#include <algorithm>
#include <cassert>

namespace lookalike {
namespace {

// The array may cover ids below twice the entries it would then hold, plus some slack for
// small indexes.
constexpr size_t kMinDenseIds = 4096;

}  // namespace

std::optional<IdPositions::Position> IdPositions::find(int64_t id) const {
  if (id >= 0 && static_cast<uint64_t>(id) < dense_.size()) {
    const Position p = dense_[static_cast<size_t>(id)];
    if (p != kAbsent) return p;
    return std::nullopt;
  }
  if (const auto it = sparse_.find(id); it != sparse_.end()) return it->second;
  return std::nullopt;
}

void IdPositions::insert(int64_t id, Position position) {
  assert(position >= 0);
  erase(id);  // an id already present (repeated in a caller's batch) moves to its new position
  const auto slot = static_cast<uint64_t>(id);
  if (id >= 0 && slot >= dense_.size() && slot < std::max(kMinDenseIds, 2 * (count_ + 1))) {
    // Grown by half at a time (amortised O(1) per id added in order), and reserved exactly:
    // resize alone would double the capacity.
    const size_t size = std::max<size_t>(slot + 1, std::min<size_t>(dense_.size() * 3 / 2, 2 * (count_ + 1)));
    dense_.reserve(size);
    dense_.resize(size, kAbsent);
    move_covered_ids();
  }
  if (id >= 0 && slot < dense_.size()) {
    dense_[static_cast<size_t>(slot)] = position;
  } else {
    sparse_.emplace(id, position);
  }
  ++count_;
}

// Ids the array has grown to cover leave the hash map, so that each id lives in one place.
void IdPositions::move_covered_ids() {
  for (auto it = sparse_.begin(); it != sparse_.end();) {
    if (it->first >= 0 && static_cast<uint64_t>(it->first) < dense_.size()) {
      dense_[static_cast<size_t>(it->first)] = it->second;
      it = sparse_.erase(it);
    } else {
      ++it;
    }
  }
}

bool IdPositions::erase(int64_t id) {
  if (id >= 0 && static_cast<uint64_t>(id) < dense_.size()) {
    Position& p = dense_[static_cast<size_t>(id)];
    if (p == kAbsent) return false;
    p = kAbsent;
  } else if (sparse_.erase(id) == 0) {
    return false;
  }
  --count_;
  return true;
}

size_t IdPositions::bytes() const {
  // A hash map node: the pair, the next pointer and malloc's header; plus a bucket pointer.
  constexpr size_t kNodeBytes =
      sizeof(std::pair<const int64_t, Position>) + 2 * sizeof(void*) + sizeof(void*);
  return dense_.capacity() * sizeof(Position) + sparse_.size() * kNodeBytes;
}

}  // namespace lookalike
