#include "service/item_table.h"

#include <bit>
#include <cstring>
#include <functional>

#include "common/error.h"

namespace lookalike {
namespace {

// A record: the string fields, each as a uint32 length and its bytes (category first, so that
// Facts reads it without walking the rest), then width, height (int32) and added_at (int64).
// Attributes are not in it (ItemTable keeps them parsed).
constexpr size_t kStringFields = 9;

size_t record_size(const Item& item) {
  return kStringFields * sizeof(uint32_t) + item.category.size() + item.id.size() + item.file_name.size() +
         item.source.size() + item.sha256.size() + item.image_path.size() + item.metadata.title.size() +
         item.metadata.url.size() + item.colours.size() * sizeof(float) + 2 * sizeof(int32_t) +
         sizeof(int64_t);
}

class RecordWriter {
 public:
  explicit RecordWriter(char* out) : out_(out) {}
  void bytes(const void* data, size_t size) {
    const auto length = static_cast<uint32_t>(size);
    std::memcpy(out_, &length, sizeof length);
    if (size) std::memcpy(out_ + sizeof length, data, size);
    out_ += sizeof length + size;
  }
  void text(const std::string& s) { bytes(s.data(), s.size()); }
  template <typename T>
  void value(T v) {
    std::memcpy(out_, &v, sizeof v);
    out_ += sizeof v;
  }

 private:
  char* out_;
};

class RecordReader {
 public:
  explicit RecordReader(const char* in) : in_(in) {}
  std::string_view view() {
    uint32_t length = 0;
    std::memcpy(&length, in_, sizeof length);
    const std::string_view v(in_ + sizeof length, length);
    in_ += sizeof length + length;
    return v;
  }
  std::string text() { return std::string(view()); }
  std::vector<float> floats() {
    const std::string_view v = view();
    std::vector<float> out(v.size() / sizeof(float));
    if (!out.empty()) std::memcpy(out.data(), v.data(), out.size() * sizeof(float));
    return out;
  }
  const char* position() const { return in_; }
  template <typename T>
  T value() {
    T v;
    std::memcpy(&v, in_, sizeof v);
    in_ += sizeof v;
    return v;
  }

 private:
  const char* in_;
};

std::string_view id_in(const char* record) {
  RecordReader r(record);
  r.view();  // the category
  return r.view();
}

size_t record_length(const char* record) {
  RecordReader r(record);
  for (size_t i = 0; i < kStringFields; ++i) r.view();
  return static_cast<size_t>(r.position() - record) + 2 * sizeof(int32_t) + sizeof(int64_t);
}

const nlohmann::json& empty_object() {
  static const nlohmann::json empty = nlohmann::json::object();
  return empty;
}

}  // namespace

void ItemTable::put(const Item& item) {
  if (item.key < 0)
    throw Error(ErrorCode::kInternal, "item key " + std::to_string(item.key) + " is negative");
  const auto key = static_cast<size_t>(item.key);
  if (key >= slot_by_key_.size())
    slot_by_key_.resize(std::max(key + 1, slot_by_key_.size() * 5 / 4), kNoSlot);
  // The record first: a failure to allocate its block leaves the table as it was.
  Slot written{item.key, item.metadata.price.value_or(0), 0, 0, item.metadata.price.has_value()};
  write_record(item, written);
  uint32_t index = slot_by_key_[key];
  if (index == kNoSlot) {
    if (slots_.size() >= kTombstone) throw Error(ErrorCode::kInternal, "the item table is full");
    slots_.push_back(written);
    index = static_cast<uint32_t>(slots_.size() - 1);
    slot_by_key_[key] = index;
    ++live_;
  } else {
    retire(index);
    slots_[index] = written;
  }
  id_insert(index);
  if (item.metadata.attributes.is_object() && !item.metadata.attributes.empty())
    attributes_.insert_or_assign(item.key, item.metadata.attributes);
  else
    attributes_.erase(item.key);
}

bool ItemTable::erase(int64_t key) {
  const uint32_t index = slot_of(key);
  if (index == kNoSlot) return false;
  retire(index);
  slot_by_key_[static_cast<size_t>(key)] = kNoSlot;
  attributes_.erase(key);
  --live_;
  return true;
}

void ItemTable::reserve(size_t items) {
  const size_t room = items + items / 4 + 1024;
  slots_.reserve(room);
  // At most a third used once the room is: a rebuild is due at 3/8.
  if (id_table_.size() < room * 3) id_rehash(std::bit_ceil(room * 3));
}

std::optional<Item> ItemTable::find(int64_t key) const {
  const uint32_t index = slot_of(key);
  if (index == kNoSlot) return std::nullopt;
  return decode(index);
}

Item ItemTable::at(int64_t key) const {
  const uint32_t index = slot_of(key);
  if (index == kNoSlot) throw Error(ErrorCode::kNotFound, "no item with key " + std::to_string(key));
  return decode(index);
}

std::optional<int64_t> ItemTable::key_of(std::string_view id) const {
  const size_t position = id_position(id);
  if (position == SIZE_MAX) return std::nullopt;
  return slots_[id_table_[position]].key;
}

std::optional<ItemTable::Facts> ItemTable::facts(int64_t key) const {
  const uint32_t index = slot_of(key);
  if (index == kNoSlot) return std::nullopt;
  return facts_at(index);
}

std::string_view ItemTable::id_of(int64_t key) const {
  const uint32_t index = slot_of(key);
  return index == kNoSlot ? std::string_view() : id_in(record(slots_[index]));
}

std::vector<int64_t> ItemTable::keys() const {
  std::vector<int64_t> keys;
  keys.reserve(live_);
  for (size_t key = 0; key < slot_by_key_.size(); ++key)
    if (slot_by_key_[key] != kNoSlot) keys.push_back(static_cast<int64_t>(key));
  return keys;
}

size_t ItemTable::bytes() const {
  // An attribute object's parsed size is not known: its text length and a hash node's 64 bytes
  // stand in for it.
  size_t attributes = 0;
  for (const auto& [key, object] : attributes_) attributes += 64 + object.dump().size();
  return slots_.capacity() * sizeof(Slot) + slot_by_key_.capacity() * sizeof(uint32_t) +
         blocks_.size() * kBlockBytes + id_table_.capacity() * sizeof(uint32_t) + attributes;
}

Item ItemTable::decode(uint32_t index) const {
  const Slot& slot = slots_[index];
  RecordReader r(record(slot));
  Item item;
  item.key = slot.key;
  item.category = r.text();
  item.id = r.text();
  item.file_name = r.text();
  item.source = r.text();
  item.sha256 = r.text();
  item.image_path = r.text();
  item.metadata.title = r.text();
  item.metadata.url = r.text();
  item.colours = r.floats();
  item.width = r.value<int32_t>();
  item.height = r.value<int32_t>();
  item.added_at = r.value<int64_t>();
  if (slot.has_price) item.metadata.price = slot.price;
  const auto attributes = attributes_.find(slot.key);
  item.metadata.attributes = attributes == attributes_.end() ? empty_object() : attributes->second;
  return item;
}

ItemTable::Facts ItemTable::facts_at(uint32_t index) const {
  const Slot& slot = slots_[index];
  const auto attributes = attributes_.find(slot.key);
  return {RecordReader(record(slot)).view(),
          slot.has_price ? std::optional<double>(slot.price) : std::nullopt,
          attributes == attributes_.end() ? empty_object() : attributes->second};
}

void ItemTable::write_record(const Item& item, Slot& slot) {
  RecordWriter w(allocate_record(record_size(item), slot));
  for (const std::string* s : {&item.category, &item.id, &item.file_name, &item.source, &item.sha256,
                               &item.image_path, &item.metadata.title, &item.metadata.url})
    w.text(*s);
  w.bytes(item.colours.data(), item.colours.size() * sizeof(float));
  w.value<int32_t>(item.width);
  w.value<int32_t>(item.height);
  w.value<int64_t>(item.added_at);
}

char* ItemTable::allocate_record(size_t size, Slot& slot) {
  if (blocks_.empty() || block_capacity_ - block_used_ < size) {
    if (blocks_.size() >= UINT32_MAX) throw Error(ErrorCode::kInternal, "the item table is full");
    const size_t capacity = std::max(size, kBlockBytes);  // a record larger than a block gets its own
    blocks_.push_back(std::unique_ptr<char[]>(new char[capacity]));  // not zeroed: written next
    block_capacity_ = capacity;
    block_used_ = 0;
  }
  slot.block = static_cast<uint32_t>(blocks_.size() - 1);
  slot.offset = static_cast<uint32_t>(block_used_);
  char* out = blocks_.back().get() + block_used_;
  block_used_ += size;
  record_bytes_ += size;
  return out;
}

void ItemTable::retire(uint32_t index) {
  id_erase(index);
  dead_record_bytes_ += record_length(record(slots_[index]));
}

size_t ItemTable::id_position(std::string_view id) const {
  if (id_table_.empty()) return SIZE_MAX;
  const size_t mask = id_table_.size() - 1;
  for (size_t i = std::hash<std::string_view>{}(id)&mask;; i = (i + 1) & mask) {
    const uint32_t entry = id_table_[i];
    if (entry == kEmpty) return SIZE_MAX;
    if (entry != kTombstone && id_in(record(slots_[entry])) == id) return i;
  }
}

void ItemTable::id_insert(uint32_t index) {
  if ((id_used_ + 1) * 2 > id_table_.size()) id_rehash(std::bit_ceil(std::max<size_t>(16, (live_ + 1) * 4)));
  id_place(index);
}

// Another slot with the same id loses it to this one (ids are unique in the store; the last
// written wins, as a map's assignment would).
void ItemTable::id_place(uint32_t index) {
  const std::string_view id = id_in(record(slots_[index]));
  const size_t mask = id_table_.size() - 1;
  size_t free = SIZE_MAX;
  for (size_t i = std::hash<std::string_view>{}(id)&mask;; i = (i + 1) & mask) {
    const uint32_t entry = id_table_[i];
    if (entry == kEmpty) {
      if (free == SIZE_MAX) {
        free = i;
        ++id_used_;
      }
      break;
    }
    if (entry == kTombstone) {
      if (free == SIZE_MAX) free = i;
    } else if (id_in(record(slots_[entry])) == id) {
      id_table_[i] = index;
      return;
    }
  }
  id_table_[free] = index;
}

void ItemTable::id_erase(uint32_t index) {
  const size_t position = id_position(id_in(record(slots_[index])));
  if (position != SIZE_MAX && id_table_[position] == index) id_table_[position] = kTombstone;
}

void ItemTable::id_rehash(size_t capacity) {
  id_table_.assign(capacity, kEmpty);
  id_used_ = 0;
  for (const uint32_t slot : slot_by_key_)
    if (slot != kNoSlot) id_place(slot);
}

bool ItemTable::wants_rebuild() const {
  const size_t dead_slots = slots_.size() - live_;
  return (dead_slots > 4096 && dead_slots > live_) ||
         (dead_record_bytes_ > kBlockBytes && dead_record_bytes_ * 2 > record_bytes_) ||
         id_used_ * 8 >= id_table_.size() * 3 || slots_.size() == slots_.capacity();
}

ItemTable ItemTable::rebuilt() const {
  // Records are copied as they are, not decoded and written again: 1M items took 2.3 s the
  // other way (bench_items).
  ItemTable fresh;
  fresh.reserve(live_);
  fresh.slot_by_key_.assign(slot_by_key_.size(), kNoSlot);
  for (size_t key = 0; key < slot_by_key_.size(); ++key) {
    if (slot_by_key_[key] == kNoSlot) continue;
    Slot slot = slots_[slot_by_key_[key]];
    const char* from = record(slot);
    const size_t length = record_length(from);
    std::memcpy(fresh.allocate_record(length, slot), from, length);
    fresh.slots_.push_back(slot);
    const auto index = static_cast<uint32_t>(fresh.slots_.size() - 1);
    fresh.slot_by_key_[key] = index;
    ++fresh.live_;
    fresh.id_insert(index);
  }
  fresh.attributes_ = attributes_;
  return fresh;
}
}  // namespace lookalike
