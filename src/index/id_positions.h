// The compressed index's map from vector id to row position. Ids are usually the catalog's item
// keys, which a store gives out densely: those live in an array indexed by the id (8 bytes per
// id), where a hash map costs about 40 bytes per entry (a fifth of the whole index's 200-byte
// budget per item at 1M items). Ids that would stretch the array past twice the live count go to
// a hash map, so any id works and the array never outgrows the ids it holds by more than 2x.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <unordered_map>
#include <vector>

namespace lookalike {

class IdPositions {
 public:
  using Position = int64_t;

  std::optional<Position> find(int64_t id) const;
  bool contains(int64_t id) const { return find(id).has_value(); }
  // Sets the position of `id` (>= 0), replacing the one it had.
  void insert(int64_t id, Position position);
  // Returns whether `id` was present.
  bool erase(int64_t id);
  size_t size() const { return count_; }
  // Memory held, for the index's size report.
  size_t bytes() const;

 private:
  void move_covered_ids();

  static constexpr Position kAbsent = -1;
  std::vector<Position> dense_;                   // by id; kAbsent where no row has that id
  std::unordered_map<int64_t, Position> sparse_;  // ids past what the array may cover
  size_t count_ = 0;
};

}  // namespace lookalike
