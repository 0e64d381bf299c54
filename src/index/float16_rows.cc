#include "index/float16_rows.h"

#include <faiss/utils/fp16.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cassert>

namespace lookalike {

void Float16Rows::append(size_t n, const float* rows) {
  uint16_t* out = append_uninitialised(n);
  for (size_t i = 0; i < n * dimension_; ++i) out[i] = faiss::encode_fp16(rows[i]);
}

uint16_t* Float16Rows::append_uninitialised(size_t n) {
  const size_t before = memory_.size();
  memory_.resize(before + n * dimension_);
  return memory_.data() + before;
}

void Float16Rows::decode(size_t i, float* out) const {
  const uint16_t* r = row(i);
  for (size_t j = 0; j < dimension_; ++j) out[j] = faiss::decode_fp16(r[j]);
}

void Float16Rows::reserve(size_t rows) {
  if (rows > mapped_rows_) memory_.reserve((rows - mapped_rows_) * dimension_);
}

bool Float16Rows::map(int fd, size_t offset, size_t rows) {
  assert(rows >= mapped_rows_);
  const size_t bytes = rows * dimension_ * sizeof(uint16_t);
  if (bytes == 0) return false;
  void* mapping = ::mmap(nullptr, bytes, PROT_READ, MAP_SHARED, fd, static_cast<off_t>(offset));
  if (mapping == MAP_FAILED) return false;
  // A re-rank reads rows at random: read-ahead around each would fill the cache with neighbours.
  ::madvise(mapping, bytes, MADV_RANDOM);
  // The rows now mapped leave memory, and so does the room reserved for them (an index built in
  // memory and then saved held all its rows there).
  const auto moved =
      static_cast<std::ptrdiff_t>(std::min((rows - mapped_rows_) * dimension_, memory_.size()));
  std::vector<uint16_t> after(memory_.begin() + moved, memory_.end());
  memory_.swap(after);
  unmap();
  mapping_ = mapping;
  mapping_bytes_ = bytes;
  mapped_ = static_cast<const uint16_t*>(mapping);
  mapped_rows_ = rows;
  return true;
}

void Float16Rows::unmap() {
  if (mapping_) ::munmap(mapping_, mapping_bytes_);
  mapping_ = nullptr;
  mapping_bytes_ = 0;
  mapped_ = nullptr;
  mapped_rows_ = 0;
}

void Float16Rows::write(const ByteSink& out) const {
  if (mapped_rows_) out(mapped_, mapped_bytes());
  if (!memory_.empty()) out(memory_.data(), memory_.size() * sizeof(uint16_t));
}

}  // namespace lookalike
