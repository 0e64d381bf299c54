// Nearest-neighbour search over unit-length descriptors (inner product = cosine).
// Vectors cross this boundary as row-major float arrays: n rows of dimension() floats,
// owned by the caller and only read during the call.
//
// Two families implement it: exact search (flat) for catalogs up to tens of thousands of items,
// and compressed approximate indexes (IVF-PQ, HNSW over 8-bit codes) for larger ones, which keep
// a float16 copy of every vector and re-rank their best candidates exactly from it.
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/files.h"

namespace faiss {
struct IOReader;
}

namespace lookalike {

struct SearchParams {
  size_t k = 12;
  // When set, only ids for which it returns true can be returned (category restriction and
  // metadata filters). Flat indexes call it once per stored vector, compressed ones once per
  // candidate they visit (or per stored vector when they scan a small filtered subset exactly).
  std::function<bool(int64_t)> accept;
  // How many stored ids `accept` is expected to admit, when the caller knows (a category's item
  // count). Compressed indexes widen their search for selective filters, and scan the accepted
  // vectors exactly when there are few; unknown (the default) counts as "most".
  size_t expected_accepted = std::numeric_limits<size_t>::max();
  // When nonzero, only rows whose recorded tag (VectorIndex::set_tags) equals it can be returned,
  // before `accept` is asked. A category filter is a tag: the index reads a 4-byte tag per
  // scanned row from one array, where `accept` costs a call and the row's id, read at random
  // (two thirds of a 1/6-category scan's time at 1M items). Rows never tagged hold 0 and are left
  // out of every tagged search.
  uint32_t tag = 0;
  // Whether the filter keeps the query's own neighbourhood: the query's own category (a stored
  // item's look-alikes in its category, a photo searched in its predicted category). A
  // compressed index widens its search for a selective filter because the filter rejects most
  // rows of the query's nearest lists; one that follows the query rejects fewer of them, and the
  // search is widened less (bench_scale `own_cat`, docs/benchmarks.md).
  bool filter_follows_query = false;
};

struct Neighbour {
  int64_t id;
  float score;  // inner product; 1 = identical direction
};

enum class IndexKind { kAuto, kFlat, kIvfPq, kHnsw };

// "auto", "flat", "ivfpq", "hnsw".
const char* index_kind_name(IndexKind kind);
// Throws Error(kInvalidArgument) naming the accepted values.
IndexKind parse_index_kind(const std::string& name);

// How an index is built and searched. The defaults were chosen with bench/bench_scale
// (docs/benchmarks.md): recall@12 >= 0.95 at 1M items within the search-time budget.
struct IndexOptions {
  IndexKind kind = IndexKind::kAuto;
  // `auto` searches exactly below this many items and builds IVF-PQ from it on: a flat scan of
  // 1,024-dimension vectors is memory-bound at about 11 ms per 10k items on one core (109 ms
  // at 100k), against about 1 ms for IVF-PQ at any size here.
  size_t exact_below = 10000;
  // IVF-PQ: coarse lists (0: 2 sqrt(n) with 4-bit codes, 4 sqrt(n) with 8-bit ones, at most
  // 4096), bytes per PQ code, lists probed (0: automatic, auto_nprobe(nlist)).
  size_t nlist = 0;
  size_t pq_bytes = 64;
  // Bits per sub-quantizer code: 4 (2 x pq_bytes sub-quantizers, codes in FAISS's fast-scan
  // blocks of 32 rows, scanned with byte shuffles) or 8 (pq_bytes sub-quantizers, one table load
  // each). Snapshots keep the kind they were built with.
  size_t pq_bits = 4;
  size_t nprobe = 0;
  // HNSW over 8-bit scalar codes: links per node and the search beam.
  size_t hnsw_links = 32;
  size_t ef_search = 96;
  // Both: candidates re-ranked exactly from the float16 copies (0: automatic, 4 x the lists
  // probed or 4 x ef_search), and the filtered-subset size up to which a filtered search scans
  // the accepted vectors exactly instead.
  size_t rerank = 0;
  size_t exact_subset = 5000;
  // Vectors the coarse quantizer and the codes are trained on (a sample of the catalog).
  size_t training_sample = 100000;
  // Dimensions of the parts a query may weigh independently (empty: one part). A blended
  // version indexes [head, frozen] and queries by either half alone; a compressed index then
  // keeps one coarse structure per part and searches the parts the query weighs, because one
  // quantizer over the whole vector routes half-vector queries badly (recall@12 0.32 against
  // 0.997 per part on the sample catalog, bench_scale --query-part head).
  std::vector<size_t> parts;
};

// The lists an IVF search probes by default: max(96, nlist / 30). A fixed 96 let recall@12 fall
// with the catalog (0.960 at 100k items, 1,265 lists; 0.927 at 1M, 4,000 lists); 134 of 4,000
// keeps it at about 0.95 (bench_scale, docs/benchmarks.md), and below 2,880 lists nothing changes.
// Fast-scan indexes have half as many lists (2,000 at 1M items), and 96 of them found 0.952.
inline size_t auto_nprobe(size_t nlist) {
  return std::max<size_t>(96, (nlist + 29) / 30);
}

// The kind `options` asks for at `items` items: auto resolved, and flat for any kind below 16
// items (too few to train codes on).
IndexKind resolve_index_kind(const IndexOptions& options, size_t items);

class VectorIndex {
 public:
  virtual ~VectorIndex() = default;
  virtual IndexKind kind() const = 0;
  // The build and search parameters, for `info` and /api/v1/stats: "nlist=1024 pq=128x4fs ...".
  virtual std::string parameters() const = 0;
  virtual size_t dimension() const = 0;
  virtual size_t size() const = 0;
  // Adds n vectors with their ids (ids must be unique and not already present).
  virtual void add(size_t n, const int64_t* ids, const float* vectors) = 0;
  // Removes the ids present; returns how many were removed.
  virtual size_t remove(const std::vector<int64_t>& ids) = 0;
  // Records tags[i] as the tag of ids[i] (see SearchParams::tag); ids not present are ignored.
  // Added rows start untagged (0). Tags live in memory only, not in snapshots: whoever loads an
  // index tags it (the service tags each row with its item's category number).
  virtual void set_tags(size_t n, const int64_t* ids, const uint32_t* tags) = 0;
  // For each of the n queries, up to params.k neighbours by decreasing score.
  virtual std::vector<std::vector<Neighbour>> search(size_t n, const float* queries,
                                                     const SearchParams& params) const = 0;
  // Every stored id, in storage order.
  virtual std::vector<int64_t> ids() const = 0;
  // The stored vector for `id` (dimension() floats), or empty when absent.
  virtual std::vector<float> vector(int64_t id) const = 0;
  // Takes the search-time parameters of `options` (nprobe, ef_search, rerank, exact_subset);
  // exact indexes have none.
  virtual void set_search_options(const IndexOptions& options) { (void)options; }
  // How far vector() may be from what was added (float16 copies round).
  virtual float vector_tolerance() const { return 0.0f; }
  // Bytes held in memory: the searchable structure, and the exact copies used to re-rank; and the
  // bytes of those copies served from a mapped snapshot file instead (page cache, not the
  // process's own memory; Float16Rows).
  virtual size_t index_bytes() const = 0;
  virtual size_t exact_copy_bytes() const { return 0; }
  virtual size_t mapped_copy_bytes() const { return 0; }
  // The bytes deserialize_index and load_index_file read: the index's own, then a seal (CRC-32s
  // of them), so that a damaged snapshot is refused before FAISS's readers see it: they trust the
  // lengths they read and allocate them (a flipped byte asked for gigabytes). The seal covers the
  // float16 copies (write_sealed_apart) apart from the rest, so that a start can read and check
  // the rest, map the copies unread (2 GB at 1M items) and check them later (open_index_file).
  std::string serialize() const;
  // The same bytes, written to `out` in pieces (save_index_file streams them to disk).
  void write(const ByteSink& out) const;
  // Serves the exact copies from the snapshot just saved at `path` from this index
  // (save_index_file), mapped, instead of from memory (Float16Rows::map); the caller must hold
  // searches off meanwhile. Returns false when there is nothing to map or it cannot be mapped.
  virtual bool map_snapshot(const std::string& path) {
    (void)path;
    return false;
  }

 protected:
  virtual void write_unsealed(const ByteSink& out) const = 0;
  // What follows write_unsealed's bytes under a CRC of its own: bytes that hold no length or
  // offset a reader trusts (a compressed index's float16 copies).
  virtual void write_sealed_apart(const ByteSink& out) const { (void)out; }
};

// The part of a snapshot file that open_index_file left unchecked, with the CRC the file's seal
// gives it. It keeps its own descriptor of the file, so that the bytes checked are the ones the
// index maps even after the snapshot is replaced (by rename) or deleted. Move-only.
class UncheckedPart {
 public:
  UncheckedPart(int fd, uint64_t offset, uint64_t size, uint64_t crc)  // takes fd
      : fd_(fd), offset_(offset), size_(size), crc_(crc) {}
  UncheckedPart(UncheckedPart&& other) noexcept;
  UncheckedPart& operator=(UncheckedPart&& other) noexcept;
  UncheckedPart(const UncheckedPart&) = delete;
  UncheckedPart& operator=(const UncheckedPart&) = delete;
  ~UncheckedPart();
  uint64_t size() const { return size_; }
  // Whether the part's bytes have the CRC sealed for them. Throws io_error() when unreadable.
  bool intact() const;

 private:
  int fd_;
  uint64_t offset_, size_, crc_;
};

// What open_index_file read: the index, and the part of its file left to check, if any.
struct IndexFile {
  std::unique_ptr<VectorIndex> index;
  std::optional<UncheckedPart> unchecked;
};

// Exact search (FAISS IndexFlatIP). At catalog sizes of 1e4..1e5 rows a flat scan costs
// 1..20 ms and needs no training, and FAISS 1.7.3's flat index honours an IDSelector.
std::unique_ptr<VectorIndex> make_flat_index(size_t dimension);

// An index of `kind` (auto resolved at n) holding the n vectors: compressed kinds train on an
// evenly spaced sample of at most options.training_sample of them first.
std::unique_ptr<VectorIndex> build_index(const IndexOptions& options, size_t dimension, size_t n,
                                         const int64_t* ids, const float* vectors);

// The same in two steps, for callers that stream n vectors they cannot hold at once: an empty
// index of `kind` (auto resolved at n) whose coarse structures are trained on the sample_n
// row-major vectors of `sample` (none for flat), to which the caller then adds the n vectors.
// The sample is rows training_row(0..training_rows(options, n)) of the n, as build_index takes it.
std::unique_ptr<VectorIndex> make_index(const IndexOptions& options, size_t dimension, size_t n,
                                        size_t sample_n, const float* sample);
size_t training_rows(const IndexOptions& options, size_t n);
// Evenly spaced over all n rows, so that no part of the catalog is left out of training.
inline size_t training_row(size_t i, size_t n, size_t rows) {
  return i * n / rows;
}

// Reads what serialize() wrote, of any kind. Throws Error(kCorruptStore) when the bytes are not
// an index.
std::unique_ptr<VectorIndex> deserialize_index(const std::string& bytes);
// The same from a file, streamed into the index's own arrays (a 1M-item snapshot is 2.2 GB: no
// whole-file buffer and copies of it); a compressed index's float16 copies stay in the file,
// mapped. Throws Error(kNotFound / kIoError) when it cannot be read.
std::unique_ptr<VectorIndex> load_index_file(const std::string& path);
// The same, except that the part sealed apart (the float16 copies, mapped) is left for the
// caller to check (IndexFile::unchecked; none for a file sealed whole by an older version),
// which a 1M-item start then does after it serves: until then a damaged copy can only misorder
// re-ranked candidates, never make a reader trust a length.
IndexFile open_index_file(const std::string& path);
// Writes `index` as a snapshot file (write_file_atomic: the old file or the new one, never a torn
// one), streamed. Throws io_error().
void save_index_file(const VectorIndex& index, const std::string& path);

// Internal to the index layer: the flat and compressed implementations. The readers take `in`
// at the start of the serialized bytes, of which there are `size`.
std::unique_ptr<VectorIndex> read_flat_index(faiss::IOReader& in, size_t size);
std::unique_ptr<VectorIndex> make_compressed_index(const IndexOptions& options, IndexKind kind,
                                                   size_t dimension, size_t n, size_t sample_n,
                                                   const float* sample);
// A compressed index read from a file open as map_fd (-1: none) maps its float16 copies from it.
std::unique_ptr<VectorIndex> read_compressed_index(faiss::IOReader& in, size_t size, int map_fd = -1);
// Whether serialized bytes starting with head[0..size) are a compressed index.
bool is_compressed_index(const char* head, size_t size);

}  // namespace lookalike
