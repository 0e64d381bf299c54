// Copies of one product shot in the catalog (issue 16, item 2): items whose photos are the same
// shot resized, re-compressed, slightly cropped or mirrored. Each item is compared once with its
// nearest neighbours in the index (the CNN finds the candidates; image/copy_fingerprint.h
// decides), the pairs found are stored, and the groups they form (connected pairs) are what
// search collapses and `lookalike duplicates` lists.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <unordered_map>
#include <vector>

#include "store/catalog_store.h"

namespace lookalike {

struct ServingState;
class LiveState;

// Items grouped by copy pairs. Built from the store's pairs at every load of the serving state.
class CopyGroups {
 public:
  CopyGroups() = default;
  explicit CopyGroups(const std::vector<CopyPair>& pairs);

  // The keys of `key`'s group in increasing order (`key` included), or nullptr when it has no copy.
  const std::vector<int64_t>* group_of(int64_t key) const;
  // Every group, each in increasing key order, groups ordered by their smallest key.
  const std::vector<std::vector<int64_t>>& groups() const { return groups_; }
  bool empty() const { return groups_.empty(); }
  // Items a search may hide by collapsing: every group's members but one.
  size_t hideable() const { return hideable_; }

 private:
  std::vector<std::vector<int64_t>> groups_;
  std::unordered_map<int64_t, size_t> group_index_;
  size_t hideable_ = 0;
};

struct CopyCheckOptions {
  size_t candidates = 8;      // nearest neighbours of each item compared with it (all categories)
  std::vector<int64_t> keys;  // check only these (when unchecked); empty: every unchecked item
  // Reads an item's stored photo (the catalog's copy); throws on a missing or damaged file.
  std::function<std::string(const Item&)> read_photo;
  std::function<void(size_t done, size_t total)> on_progress;
  const std::atomic<bool>* cancel = nullptr;  // stop after the batch in progress when it turns true
};

struct CopyCheckSummary {
  size_t checked = 0;     // items compared with their neighbours
  size_t pairs = 0;       // copy pairs found and stored
  size_t unreadable = 0;  // items whose photo could not be read (left unchecked, retried next time)
  size_t writes = 0;      // store commits made (each moves its revision by one)
};

// Compares every item the store has not checked yet with its nearest neighbours in the served
// index, and stores the pairs found, a batch at a time (an interrupted check keeps its finished
// batches). Holds the state's read lock only while searching a batch's neighbours.
CopyCheckSummary check_copies(const LiveState& live, CatalogStore& store, const CopyCheckOptions& options);

}  // namespace lookalike
