// The served catalog's items in memory, compactly. Each item's fields are serialised into one
// record in blocks that never move; a slot per item, found by key, holds where its record is and
// its price; attributes are kept parsed (a search's filter reads them per scanned row) and only for
// items that have any. At 1M items the server's own memory fell from 1,044 MB to 555 MB (the
// index's 191 MB included): an unordered_map<int64_t, Item> took about 1 KB an item (a node,
// seven strings, a JSON object and a vector each) and, on a VM whose page faults are dear, most
// of the start-up (docs/benchmarks.md, stop 37).
//
// Items come back by value (find, at, iteration): a search copies its dozen hits anyway. Not
// thread-safe; ServingState's owner serialises writers against readers, and rebuilds the table
// when it wants_rebuild().
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "store/catalog_store.h"

namespace lookalike {

class ItemTable {
 public:
  // What a search filters on, without decoding the record. The views live until the next write.
  struct Facts {
    std::string_view category;
    std::optional<double> price;
    const nlohmann::json& attributes;  // an empty object when the item has none
  };

  // Adds an item, or replaces the one with its key (>= 0). O(1) amortised: the O(n) work, a
  // rebuild without the dead slots and records, waits for rebuilt() (but see wants_rebuild).
  void put(const Item& item);
  // Forgets the item with this key; false when there is none.
  bool erase(int64_t key);
  // Room for `items` items, and a quarter more, before the next rebuild is due: a table that
  // grows by rebuilds copies each item about five times.
  void reserve(size_t items);
  // Whether rebuilt() is due: dead slots or records are half of what the table holds, or the
  // next writes would grow its arrays (a copy of them all). The owner rebuilds beside the
  // readers and swaps the result in (LiveState::change), so that no search waits behind an
  // O(n) rewrite (about 1 s at 1M items; docs/benchmarks.md); a table no one rebuilds still
  // grows its id index itself when it fills.
  bool wants_rebuild() const;
  // The same items (in key order), without dead slots or records, with room to grow.
  ItemTable rebuilt() const;

  size_t size() const { return live_; }
  bool empty() const { return live_ == 0; }
  bool contains(int64_t key) const { return slot_of(key) != kNoSlot; }
  std::optional<Item> find(int64_t key) const;
  // The item with this key; throws Error(kNotFound) when there is none.
  Item at(int64_t key) const;
  std::optional<int64_t> key_of(std::string_view id) const;
  // Facts of the item with this key; nullopt when there is none.
  std::optional<Facts> facts(int64_t key) const;
  // The id of the item with this key; empty when there is none. Valid until the next write.
  std::string_view id_of(int64_t key) const;

  // Calls fn(const Item&) for every item in key order.
  template <typename Fn>
  void for_each(Fn&& fn) const {
    for (const uint32_t slot : slot_by_key_)
      if (slot != kNoSlot) fn(decode(slot));
  }
  // Calls fn(int64_t key, const Facts&) for every item in key order, without decoding records.
  template <typename Fn>
  void for_each_facts(Fn&& fn) const {
    for (const uint32_t slot : slot_by_key_)
      if (slot != kNoSlot) fn(slots_[slot].key, facts_at(slot));
  }
  std::vector<int64_t> keys() const;
  // Bytes held (records, slots, attributes are estimated), for the figures.
  size_t bytes() const;

 private:
  struct Slot {
    int64_t key = 0;
    double price = 0;
    uint32_t block = 0;
    uint32_t offset = 0;
    bool has_price = false;
  };
  static constexpr uint32_t kNoSlot = UINT32_MAX;
  static constexpr size_t kBlockBytes = size_t{4} << 20;

  uint32_t slot_of(int64_t key) const {
    return key >= 0 && static_cast<uint64_t>(key) < slot_by_key_.size()
               ? slot_by_key_[static_cast<size_t>(key)]
               : kNoSlot;
  }
  const char* record(const Slot& slot) const { return blocks_[slot.block].get() + slot.offset; }
  Item decode(uint32_t slot) const;
  Facts facts_at(uint32_t slot) const;
  // Appends the item's record to the blocks; sets the slot's block and offset.
  void write_record(const Item& item, Slot& slot);
  // Room for a record of `size` bytes at the end of the blocks, for the caller to fill; sets the
  // slot's block and offset.
  char* allocate_record(size_t size, Slot& slot);
  // Marks a slot's record dead and forgets its id (before the slot takes another record).
  void retire(uint32_t slot);
  // The id index: open addressing over slot indices, by the hash of the id in the slot's
  // record. No node per item: a std::unordered_map of 1M ids took 10% of a 1M start-up.
  size_t id_position(std::string_view id) const;  // of the entry with this id, or SIZE_MAX
  void id_insert(uint32_t slot);
  void id_place(uint32_t slot);
  void id_erase(uint32_t slot);
  void id_rehash(size_t capacity);  // a power of two

  // Slots in the order items arrived; dead ones (no key points at them) stay until a compaction. Items are
  // found by key through slot_by_key_: keys are the store's row ids, dense apart from removed items (4 bytes
  // per key ever given out, as CategoryTags), and a filter looks one up per scanned row.
  std::vector<Slot> slots_;
  std::vector<uint32_t> slot_by_key_;
  std::vector<std::unique_ptr<char[]>> blocks_;
  size_t block_capacity_ = 0, block_used_ = 0;  // of the last block
  size_t live_ = 0;
  size_t record_bytes_ = 0, dead_record_bytes_ = 0;
  static constexpr uint32_t kEmpty = UINT32_MAX, kTombstone = UINT32_MAX - 1;
  std::vector<uint32_t> id_table_;  // a rebuild is due past 3/8 used, tombstones included; grown past 1/2
  size_t id_used_ = 0;
  std::unordered_map<int64_t, nlohmann::json> attributes_;  // items with attributes only
};

}  // namespace lookalike
