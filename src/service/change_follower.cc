#include "service/change_follower.h"

#include <map>

namespace lookalike {
namespace {

// What the log says happened to each key over the whole range, in the end.
struct NetChanges {
  std::map<int64_t, bool> items;  // key -> present at the end (true: read it again)
  bool copies = false;
  bool reload = false;
};

NetChanges net_changes(const std::vector<StoreChange>& log) {
  NetChanges net;
  for (const auto& change : log) {
    switch (change.kind) {
      case StoreChange::Kind::kAdded:
      case StoreChange::Kind::kUpdated:
        net.items[change.key] = true;
        break;
      case StoreChange::Kind::kRemoved:
        net.items[change.key] = false;
        break;
      case StoreChange::Kind::kCopies:
        net.copies = true;
        break;
      case StoreChange::Kind::kReload:
        net.reload = true;
        break;
    }
  }
  return net;
}

struct ItemRead {
  Item item;
  std::vector<float> vector;  // to add to the index; empty when the item is there already
};

// The stored item and, when the state does not index it yet, its index vector. nullopt when
// the item is gone (removed after `upto`) or lacks a descriptor of the served version (a
// reload fills it in).
std::optional<ItemRead> read_item(const ServingState& state, const CatalogStore& store, int64_t key,
                                  bool* needs_reload) {
  auto item = store.find_by_key(key);
  if (!item) return std::nullopt;
  ItemRead read{std::move(*item), {}};
  if (state.items.contains(key) || !state.trained() || !state.index) return read;
  const auto raw = store.descriptor(state.version, key);
  const auto frozen = state.searches_frozen() ? store.descriptor(0, key) : std::vector<float>{};
  read.vector = state.version == 0
                    ? (raw.size() == state.descriptor_dimension ? state.project(raw) : std::vector<float>{})
                    : state.index_vector(raw, frozen);
  if (read.vector.empty()) {
    *needs_reload = true;
    return std::nullopt;
  }
  return read;
}

}  // namespace

FollowOutcome follow_changes(LiveState& live, const LiveState::WriteLock& write, const CatalogStore& store) {
  const ServingState& state = live.current(write);
  const int64_t upto = store.revision();
  if (upto <= state.revision) return FollowOutcome::kCurrent;
  const auto log = store.changes(state.revision, upto);
  if (!log) return FollowOutcome::kReload;
  const NetChanges net = net_changes(*log);
  if (net.reload) return FollowOutcome::kReload;

  // Reads happen before the exclusive lock: searches go on while the store answers.
  std::vector<ItemRead> present;
  std::vector<int64_t> gone;
  bool needs_reload = false;
  for (const auto& [key, keep] : net.items) {
    std::optional<ItemRead> read;
    if (keep) read = read_item(state, store, key, &needs_reload);
    if (needs_reload) return FollowOutcome::kReload;
    if (read) {
      present.push_back(std::move(*read));
    } else if (state.items.contains(key)) {
      gone.push_back(key);
    }
  }
  std::optional<CopyGroups> copies;
  if (net.copies || !gone.empty()) copies = CopyGroups(store.copy_pairs());

  live.change(write, [&](ServingState& s) {
    for (const int64_t key : gone) s.erase_item(key);
    if (s.index && !gone.empty()) s.index->remove(gone);
    for (auto& read : present) {
      const int64_t key = read.item.key;
      if (!read.vector.empty()) s.index->add(1, &key, read.vector.data());
      s.put_item(std::move(read.item));
    }
    if (copies) s.copies = std::move(*copies);
    s.revision = upto;
  });
  return FollowOutcome::kApplied;
}

}  // namespace lookalike
