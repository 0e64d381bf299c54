#include "service/copy_finder.h"

#include <algorithm>
#include <map>
#include <mutex>
#include <numeric>
#include <optional>
#include <set>
#include <utility>

#include <spdlog/spdlog.h>
#include <opencv2/core/utility.hpp>

#include "image/copy_fingerprint.h"
#include "image/image_decoder.h"
#include "service/serving_state.h"

namespace lookalike {

CopyGroups::CopyGroups(const std::vector<CopyPair>& pairs) {
  // Union-find over the keys the pairs name; groups are its components.
  std::map<int64_t, int64_t> parent;
  const auto root = [&](int64_t key) {
    while (parent.at(key) != key) key = parent[key] = parent.at(parent.at(key));
    return key;
  };
  for (const auto& p : pairs) {
    parent.try_emplace(p.a, p.a);
    parent.try_emplace(p.b, p.b);
    const int64_t ra = root(p.a), rb = root(p.b);
    if (ra != rb) parent[std::max(ra, rb)] = std::min(ra, rb);
  }
  std::map<int64_t, std::vector<int64_t>> by_root;  // keys visited in increasing order
  for (const auto& [key, unused] : parent) by_root[root(key)].push_back(key);
  for (auto& [unused, members] : by_root) {
    for (const int64_t key : members) group_index_[key] = groups_.size();
    hideable_ += members.size() - 1;
    groups_.push_back(std::move(members));
  }
}

const std::vector<int64_t>* CopyGroups::group_of(int64_t key) const {
  const auto it = group_index_.find(key);
  return it == group_index_.end() ? nullptr : &groups_[it->second];
}

namespace {

constexpr size_t kBatch = 32;
// Pairs one run remembers as compared (about 50 bytes each): a pair found from both ends is
// compared once. Past this many the memory is freed and a few pairs are compared twice, so a
// first check of a million items holds tens of megabytes, not hundreds.
constexpr size_t kMaxRememberedPairs = size_t{1} << 20;

// The vector that finds an item's copies in the index: the frozen part alone when the index
// combines a head with the frozen recipe (it recognises the very shot; docs/quality.md).
std::vector<float> copy_query(const ServingState& state, const std::vector<float>& indexed) {
  if (!state.searches_frozen() ||
      indexed.size() != state.descriptor_dimension + state.frozen_pca->output_dimension())
    return indexed;
  return state.weighted_query(indexed.data(), indexed.data() + state.descriptor_dimension, 0, 1);
}

// Each key's nearest neighbours (not itself), and the items involved, from one read of the state.
struct Neighbourhoods {
  std::vector<std::pair<int64_t, std::vector<int64_t>>> candidates;  // key -> neighbour keys
  std::unordered_map<int64_t, Item> items;
};

Neighbourhoods neighbourhoods(const LiveState& live, const std::vector<int64_t>& keys, size_t k) {
  Neighbourhoods out;
  live.read([&](const ServingState& state) {
    if (!state.index) return;
    for (const int64_t key : keys) {
      std::optional<Item> item = state.items.find(key);
      if (!item) continue;  // removed since the store listed it
      const auto indexed = state.index->vector(key);
      if (indexed.empty()) continue;
      const auto query = copy_query(state, indexed);
      SearchParams params;
      params.k = k + 1;
      std::vector<int64_t> found;
      const auto results = state.index->search(1, query.data(), params);  // kept: front() refers into it
      for (const auto& n : results.front()) {
        if (n.id == key || !state.items.contains(n.id)) continue;
        found.push_back(n.id);
        out.items.emplace(n.id, state.items.at(n.id));
      }
      out.items.emplace(key, std::move(*item));
      out.candidates.emplace_back(key, std::move(found));
    }
  });
  return out;
}

}  // namespace

CopyCheckSummary check_copies(const LiveState& live, CatalogStore& store, const CopyCheckOptions& options) {
  std::vector<int64_t> unchecked = store.keys_unchecked_for_copies();
  if (!options.keys.empty()) {
    const std::set<int64_t> wanted(options.keys.begin(), options.keys.end());
    std::erase_if(unchecked, [&](int64_t key) { return !wanted.count(key); });
  }
  CopyCheckSummary summary;
  std::set<std::pair<int64_t, int64_t>> compared;  // this run's pairs, smaller key first
  for (size_t start = 0; start < unchecked.size() && !(options.cancel && *options.cancel); start += kBatch) {
    const std::vector<int64_t> keys(
        unchecked.begin() + static_cast<std::ptrdiff_t>(start),
        unchecked.begin() + static_cast<std::ptrdiff_t>(std::min(unchecked.size(), start + kBatch)));
    if (compared.size() > kMaxRememberedPairs) compared.clear();
    const Neighbourhoods hood = neighbourhoods(live, keys, options.candidates);
    // Fingerprints of every photo involved, decoded in parallel (OpenCV's thread pool).
    std::vector<const Item*> involved;
    for (const auto& [key, item] : hood.items) involved.push_back(&item);
    std::vector<std::optional<CopyFingerprint>> prints(involved.size());
    cv::parallel_for_(cv::Range(0, static_cast<int>(involved.size())), [&](const cv::Range& range) {
      for (int i = range.start; i < range.end; ++i) {
        try {
          prints[static_cast<size_t>(i)] = copy_fingerprint(
              decode_image_or_throw(options.read_photo(*involved[static_cast<size_t>(i)])).rgb);
        } catch (const std::exception& e) {
          spdlog::warn("copies: cannot read the photo of item '{}': {}", involved[static_cast<size_t>(i)]->id,
                       e.what());
        }
      }
    });
    std::unordered_map<int64_t, const CopyFingerprint*> print_of;
    for (size_t i = 0; i < involved.size(); ++i) {
      if (prints[i]) print_of[involved[i]->key] = &*prints[i];
    }
    std::vector<std::pair<int64_t, int64_t>> to_compare;
    std::vector<int64_t> checked;
    for (const auto& [key, neighbours] : hood.candidates) {
      if (!print_of.count(key)) {
        ++summary.unreadable;
        continue;
      }
      checked.push_back(key);
      for (const int64_t other : neighbours) {
        const auto pair = std::minmax(key, other);
        if (print_of.count(other) && compared.insert(pair).second) to_compare.push_back(pair);
      }
    }
    std::vector<CopyPair> found;
    std::mutex found_mutex;
    cv::parallel_for_(cv::Range(0, static_cast<int>(to_compare.size())), [&](const cv::Range& range) {
      for (int i = range.start; i < range.end; ++i) {
        const auto [a, b] = to_compare[static_cast<size_t>(i)];
        const CopyComparison c = compare_copies(*print_of.at(a), *print_of.at(b));
        if (!is_copy(c)) continue;
        std::lock_guard lock(found_mutex);
        found.push_back({a, b, c.correlation, c.structure});
      }
    });
    store.put_copy_checks(checked, found);
    ++summary.writes;
    summary.checked += checked.size();
    summary.pairs += found.size();
    if (options.on_progress)
      options.on_progress(std::min(unchecked.size(), start + kBatch), unchecked.size());
  }
  return summary;
}

}  // namespace lookalike
