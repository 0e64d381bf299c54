// Each live item's category as a number, in an array indexed by item key. A category filter
// runs once per row an index scans (96,000 rows for a 1/6 category at 1M items, nprobe 384):
// a hash lookup and a string compare per row cost more than the scan itself, one array read
// does not.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

namespace lookalike {

class CategoryTags {
 public:
  using Tag = uint32_t;
  static constexpr Tag kNone = 0;  // no live item has this key, or no item this category
  // Never given to a category: a search restricted to a category no item has asks for it, so
  // that no row matches (the index's SearchParams::tag 0 would mean no restriction).
  static constexpr Tag kUnused = 0xffffffffu;

  // Records (or changes) the category of the item `key` (>= 0).
  void set(int64_t key, const std::string& category);
  // Forgets the item `key`; unknown keys are ignored.
  void erase(int64_t key);
  // The tag of a category, kNone when no item ever had it.
  Tag tag(const std::string& category) const;
  // The tag of the live item `key`, kNone when there is none.
  Tag of(int64_t key) const {
    return key >= 0 && static_cast<uint64_t>(key) < by_key_.size() ? by_key_[static_cast<size_t>(key)]
                                                                   : kNone;
  }
  // Whether the live item `key` has the category of `tag` (false for kNone).
  bool has(int64_t key, Tag tag) const {
    return tag != kNone && key >= 0 && static_cast<uint64_t>(key) < by_key_.size() &&
           by_key_[static_cast<size_t>(key)] == tag;
  }

 private:
  // One slot per key up to the largest: keys are the store's row ids, dense apart from removed
  // items (4 bytes per key ever given out).
  std::vector<Tag> by_key_;
  std::unordered_map<std::string, Tag> tags_;
};

}  // namespace lookalike
