#include "service/category_tags.h"

#include <cassert>

namespace lookalike {

void CategoryTags::set(int64_t key, const std::string& category) {
  assert(key >= 0);
  const auto index = static_cast<size_t>(key);
  if (index >= by_key_.size()) by_key_.resize(index + 1, kNone);
  const auto [it, added] = tags_.try_emplace(category, static_cast<Tag>(tags_.size() + 1));
  by_key_[index] = it->second;
}

void CategoryTags::erase(int64_t key) {
  if (key >= 0 && static_cast<uint64_t>(key) < by_key_.size()) by_key_[static_cast<size_t>(key)] = kNone;
}

CategoryTags::Tag CategoryTags::tag(const std::string& category) const {
  const auto it = tags_.find(category);
  return it == tags_.end() ? kNone : it->second;
}

}  // namespace lookalike
