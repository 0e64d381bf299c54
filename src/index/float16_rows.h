// The float16 copies a compressed index re-ranks its candidates from (index/vector_index.h):
// row-major, dimension() IEEE half floats a row, row i the copy of the index's position i.
//
// The rows a snapshot file holds can stay in that file, mapped read-only (map()): at 1M items of
// 1,024 dimensions they are 2 GB, which then sit in the kernel's page cache, shared and dropped
// under memory pressure (a re-rank then reads them back from disk), instead of in the process's
// own memory; rows added since live in memory. A mapping, not reads: a re-rank reads ~500 rows at
// random, which took 0.16 ms through a mapping against 1.4 ms through pread (2.3 us a call on the
// 2-core VM, docs/benchmarks.md).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "common/files.h"

namespace lookalike {

class Float16Rows {
 public:
  explicit Float16Rows(size_t dimension) : dimension_(dimension) {}
  ~Float16Rows() { unmap(); }
  Float16Rows(const Float16Rows&) = delete;
  Float16Rows& operator=(const Float16Rows&) = delete;

  size_t dimension() const { return dimension_; }
  size_t size() const { return mapped_rows_ + memory_.size() / dimension_; }
  const uint16_t* row(size_t i) const {
    return i < mapped_rows_ ? mapped_ + i * dimension_ : memory_.data() + (i - mapped_rows_) * dimension_;
  }
  // Appends n rows of dimension() floats (row-major, the caller's), rounded to float16.
  void append(size_t n, const float* rows);
  // Appends n rows left to the caller to fill (dimension() values each): returns the first.
  uint16_t* append_uninitialised(size_t n);
  // Row i as floats, into out (dimension() floats, the caller's).
  void decode(size_t i, float* out) const;
  // Room for `rows` rows in all, so that appends up to it copy nothing.
  void reserve(size_t rows);

  // Serves rows [0, rows) from the file open as `fd`, whose bytes from `offset` (a multiple of
  // the page size) hold them: rows of a snapshot being read, or the same rows as held now (a
  // snapshot just written), which then leave memory; rows after stay as they are. The file must
  // not change while mapped (snapshots are replaced by rename, never rewritten in place); fd may
  // be closed after. Returns false, changing nothing, when the mapping fails.
  bool map(int fd, size_t offset, size_t rows);
  size_t mapped_rows() const { return mapped_rows_; }
  // Bytes of rows in the process's memory (room reserved and not yet used is left out: the
  // kernel backs it only once written), and in a mapped file.
  size_t memory_bytes() const { return memory_.size() * sizeof(uint16_t); }
  size_t mapped_bytes() const { return mapped_rows_ * dimension_ * sizeof(uint16_t); }

  // Writes every row, in order, as size() x dimension() half floats.
  void write(const ByteSink& out) const;

 private:
  void unmap();

  size_t dimension_;
  const uint16_t* mapped_ = nullptr;
  size_t mapped_rows_ = 0;
  void* mapping_ = nullptr;  // what mmap returned (mapped_ may start past it)
  size_t mapping_bytes_ = 0;
  std::vector<uint16_t> memory_;
};

}  // namespace lookalike
