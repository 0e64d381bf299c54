// Compressed approximate indexes for large catalogs: FAISS IVF-PQ or HNSW over 8-bit scalar
// codes finds candidates, and a float16 copy of every vector (index/float16_rows.h: mapped from
// the snapshot file the index was loaded from or last saved to) re-ranks them exactly, so the
// final order over the candidates is the exact one.
// Three steps bypass FAISS's own code, which Debian builds for baseline x86-64 (index/dot_kernels.h):
// the re-rank reads the float16 copies through dot_float16 (over the parts the query weighs), a
// single query's nearest lists come from dot_float16 over a float16 copy of the centroids
// (FAISS's own loop for fewer than 20 queries took 4 ms for 2 x 4,000 lists of 512 values at 1M
// items), and the codes of the probed lists are scored by our own kernels (index/pq_scan.h):
// 4-bit codes in FAISS's fast-scan blocks (IndexIVFPQFastScan, the default) with byte shuffles
// 32 rows at a time, whose lists are ordered by tag so that a category search scores the blocks
// of its category (TagRuns); 8-bit codes (IndexIVFPQ, snapshots built before) one table load per
// sub-quantizer, rejected rows skipped first.
//
// Every structure addresses rows by position (the label FAISS assigns on add); `ids_` maps a
// position to its id and `tags_` to its tag (SearchParams::tag: a category filter reads one
// 4-byte tag per scanned row, not the row's id and the caller's filter). A removal marks the
// position dead (O(1), no rewrite of 1M codes): searches skip dead rows through the IDSelector,
// and `reindex` (or any rebuild) compacts them away.
#include <faiss/IndexFlat.h>
#include <faiss/IndexHNSW.h>
#include <faiss/IndexIVFPQ.h>
#include <faiss/IndexIVFPQFastScan.h>
#include <faiss/IndexScalarQuantizer.h>
#include <faiss/impl/FaissException.h>
#include <faiss/impl/HNSW.h>
#include <faiss/impl/IDSelector.h>
#include <faiss/impl/io.h>
#include <faiss/impl/pq4_fast_scan.h>
#include <faiss/index_io.h>
#include <faiss/invlists/BlockInvertedLists.h>
#include <faiss/invlists/InvertedLists.h>
#include <faiss/utils/Heap.h>
#include <faiss/utils/fp16.h>
#include <unistd.h>

#include <algorithm>
#include <cassert>
#include <cmath>
#include <cstring>
#include <numeric>
#include <optional>
#include <queue>
#include <sstream>
#include <unordered_map>

#include "common/error.h"
#include "index/dot_kernels.h"
#include "index/float16_rows.h"
#include "index/id_positions.h"
#include "index/pq_scan.h"
#include "index/vector_index.h"

namespace lookalike {
using idx_t = faiss::Index::idx_t;
namespace {

// Snapshot layout (little-endian uint64 fields): magic, kind, nprobe, ef_search, rerank,
// exact_subset, row count n, n ids (kDead for a removed row), part count, then each part as its
// byte count and FAISS's bytes. Then the float16 copies: version 01 as a FAISS
// IndexScalarQuantizer (QT_fp16), version 02 (written since 2026-12-02) as dimension, n, zero bytes
// up to the next multiple of kCopiesAlignment from the start, and the n x dimension half floats,
// which end the bytes: there they can be mapped in place (Float16Rows::map). The half floats are
// the part of a version-02 snapshot sealed apart (write_sealed_apart): a start maps them unread.
constexpr char kMagic[8] = {'L', 'K', 'I', 'D', 'X', 'C', '0', '2'};
constexpr char kMagicV1[8] = {'L', 'K', 'I', 'D', 'X', 'C', '0', '1'};
constexpr size_t kCopiesAlignment = 4096;

size_t aligned(size_t offset) {
  return (offset + kCopiesAlignment - 1) / kCopiesAlignment * kCopiesAlignment;
}

// Where the float16 copies of the version-02 snapshot in `file` begin, when it holds `rows` rows
// of `dimension` (a snapshot just written from the index): its header is walked, not trusted.
std::optional<size_t> copies_offset(FILE* file, size_t dimension, size_t rows) {
  size_t at = 0;
  auto get = [&]() -> std::optional<uint64_t> {
    uint64_t v = 0;
    if (std::fread(&v, sizeof v, 1, file) != 1) return std::nullopt;
    at += sizeof v;
    return v;
  };
  auto skip = [&](uint64_t bytes) {
    at += bytes;
    return std::fseek(file, static_cast<long>(at), SEEK_SET) == 0;
  };
  char magic[sizeof kMagic];
  if (std::fread(magic, 1, sizeof magic, file) != sizeof magic || std::memcmp(magic, kMagic, sizeof kMagic))
    return std::nullopt;
  at = sizeof magic;
  const auto count = skip(5 * sizeof(uint64_t)) ? get() : std::nullopt;
  if (!count || *count != rows || !skip(*count * sizeof(int64_t))) return std::nullopt;
  const auto part_count = get();
  for (uint64_t p = 0; part_count && p < *part_count; ++p) {
    const auto bytes = get();
    if (!bytes || !skip(*bytes)) return std::nullopt;
  }
  const auto d = get(), n = get();
  if (!part_count || d != dimension || n != rows) return std::nullopt;
  return aligned(at);
}
constexpr int64_t kDead = std::numeric_limits<int64_t>::min();
// A selective filter multiplies the lists probed (or the HNSW beam) by sqrt(1/selectivity), up
// to this: a 1/6 category probes 3x the lists.
constexpr size_t kMaxWiden = 8;
// FAISS computes distances to the list centroids with BLAS from this many queries at once
// (faiss::distance_compute_blas_threshold); fewer go through nearest_lists.
constexpr idx_t kFaissBlasQueries = 20;
// A filtered scan reads each listed row's tag or id at random (`tags_`, `ids_`: 4 and 8 MB at 1M
// items); it asks for them this many rows ahead (a profile put two thirds of the filtered scan on
// that load).
constexpr size_t kPrefetchRows = 16;
// A filter function admitting at most this share of the rows picks a fast-scan list's rows
// before their blocks are scored (scan_blocks).
constexpr double kSelectFirst = 1.0 / 32;

// The removed positions, one bit each (125 KB at 1M items). A scan after removals checks a
// row here instead of reading its id at random in `ids_` (8 MB at 1M items): with 100 rows
// removed, that read was half of an unfiltered scan's time in a profile at 1M items.
class DeadRows {
 public:
  void resize(size_t positions) { words_.resize((positions + 63) / 64); }
  void mark(size_t position) { words_[position / 64] |= uint64_t{1} << (position % 64); }
  bool contains(size_t position) const { return (words_[position / 64] >> (position % 64)) & 1; }
  size_t bytes() const { return words_.capacity() * sizeof(uint64_t); }

 private:
  std::vector<uint64_t> words_;
};

// The tags of an IVF part's inverted lists, entry by entry in list order, 16 bits each (kSpilled
// for a tag that does not fit, which the scan then reads by position). A filtered scan reads
// them beside the listed positions, where reading each row's tag by position (4 MB at 1M items,
// at random) made a 1/6-category search slower than an unfiltered one (docs/benchmarks.md).
// The tags by position stay the reference; these follow them.
class ListTags {
 public:
  static constexpr uint16_t kSpilled = 0xffff;
  static uint16_t narrow(uint32_t tag) { return tag < kSpilled ? static_cast<uint16_t>(tag) : kSpilled; }

  // Tags the entries the lists gained since the last call (FAISS appends to a list's end).
  void follow(const faiss::InvertedLists& lists, const std::vector<uint32_t>& tags) {
    by_list_.resize(lists.nlist);
    for (size_t l = 0; l < lists.nlist; ++l) follow_list(lists, l, tags);
  }
  // Every entry again.
  void rebuild(const faiss::InvertedLists& lists, const std::vector<uint32_t>& tags) {
    by_list_.clear();
    follow(lists, tags);
  }
  // Tags the entry of `position` in `list`; returns its index there, or -1 when the list does
  // not hold it.
  std::ptrdiff_t set(const faiss::InvertedLists& lists, size_t list, idx_t position, uint32_t tag) {
    faiss::InvertedLists::ScopedIds ids(&lists, list);
    const idx_t* end = ids.get() + lists.list_size(list);
    const idx_t* at = std::find(ids.get(), end, position);
    if (at == end) return -1;
    by_list_[list][static_cast<size_t>(at - ids.get())] = narrow(tag);
    return at - ids.get();
  }
  // The entries of one list again (after its rows were reordered).
  void refresh(const faiss::InvertedLists& lists, size_t list, const std::vector<uint32_t>& tags) {
    by_list_[list].clear();
    follow_list(lists, list, tags);
  }
  const uint16_t* of(size_t list) const { return by_list_[list].data(); }
  size_t bytes() const {
    size_t bytes = by_list_.size() * sizeof(by_list_[0]);
    for (const auto& entries : by_list_) bytes += entries.capacity() * sizeof(uint16_t);
    return bytes;
  }

 private:
  // Tags the entries list l gained since it was last followed.
  void follow_list(const faiss::InvertedLists& lists, size_t l, const std::vector<uint32_t>& tags) {
    auto& entries = by_list_[l];
    const size_t size = lists.list_size(l);
    if (entries.size() == size) return;
    faiss::InvertedLists::ScopedIds ids(&lists, l);
    for (size_t i = entries.size(); i < size; ++i)
      entries.push_back(narrow(tags[static_cast<size_t>(ids[i])]));
  }

  std::vector<std::vector<uint16_t>> by_list_;
};

// The rows of a fast-scan part's lists grouped by tag, so that a search for one tag computes the
// distances of the blocks that hold it, not of every block: with 4-bit codes in blocks of 32 a
// block costs the same whatever share of its rows the filter admits, and a 1/6 category's rows
// are spread over nearly every block. Each list is ordered by tag up to `ordered` (its runs
// record where each tag starts); rows added since, and rows re-tagged inside a run (which cut
// the ordered part back to that run), form a tail that tagged searches scan whole.
class TagRuns {
 public:
  struct Span {
    size_t begin = 0, end = 0;  // the tag's run in the ordered part
    size_t tail = 0;            // where the unordered rows start
  };
  void resize(size_t lists) { lists_.resize(lists); }
  // Reorders list l of `lists` by the tags of its entries in list order (`listed`): ids and codes
  // move together, so a row keeps its position (label) and its code.
  void order(faiss::BlockInvertedLists& lists, size_t l, size_t m, const uint16_t* listed) {
    const size_t size = lists.ids[l].size();
    std::vector<uint32_t> by_tag(size);
    std::iota(by_tag.begin(), by_tag.end(), 0u);
    std::stable_sort(by_tag.begin(), by_tag.end(),
                     [&](uint32_t a, uint32_t b) { return listed[a] < listed[b]; });
    auto& list = lists_[l];
    list.runs.clear();
    for (size_t i = 0; i < size; ++i) {
      if (i == 0 || listed[by_tag[i]] != listed[by_tag[i - 1]]) list.runs.push_back({listed[by_tag[i]], i});
    }
    list.ordered = size;
    if (std::is_sorted(by_tag.begin(), by_tag.end())) return;
    const size_t code_bytes = m / 2;
    std::vector<uint8_t> flat(size * code_bytes, 0);
    std::vector<idx_t> ids(size);
    for (size_t i = 0; i < size; ++i) {
      ids[i] = lists.ids[l][by_tag[i]];
      for (size_t sq = 0; sq < m; ++sq)
        flat[i * code_bytes + sq / 2] |= pq4_packed_code(lists.codes[l].get(), m, by_tag[i], sq)
                                         << (4 * (sq % 2));
    }
    lists.ids[l] = std::move(ids);
    faiss::pq4_pack_codes(flat.data(), size, m, lists.codes[l].size() / (m / 2), kPq4BlockRows, m,
                          lists.codes[l].get());
  }
  // Entry i of list l was re-tagged: the ordered part ends before the run that held it.
  void cut(size_t l, size_t i) {
    auto& list = lists_[l];
    if (i >= list.ordered) return;
    while (!list.runs.empty() && list.runs.back().begin > i) list.runs.pop_back();
    list.ordered = list.runs.empty() ? 0 : list.runs.back().begin;
    if (!list.runs.empty()) list.runs.pop_back();
  }
  size_t tail(size_t l) const { return lists_[l].ordered; }
  Span span(size_t l, uint16_t tag) const {
    const auto& list = lists_[l];
    Span span;
    span.tail = list.ordered;
    for (size_t r = 0; r < list.runs.size(); ++r) {
      if (list.runs[r].tag != tag) continue;
      span.begin = list.runs[r].begin;
      span.end = r + 1 < list.runs.size() ? list.runs[r + 1].begin : list.ordered;
    }
    return span;
  }
  size_t bytes() const {
    size_t bytes = lists_.capacity() * sizeof(List);
    for (const auto& list : lists_) bytes += list.runs.capacity() * sizeof(Run);
    return bytes;
  }

 private:
  struct Run {
    uint16_t tag;
    size_t begin;
  };
  struct List {
    size_t ordered = 0;
    std::vector<Run> runs;
  };
  std::vector<List> lists_;
};

// Accepts the live positions that hold the search's tag (when it names one) and whose id the
// caller's filter accepts (when it gives one): the tag first, since it is one array read.
class LiveSelector final : public faiss::IDSelector {
 public:
  LiveSelector(const std::vector<int64_t>& ids, const DeadRows& dead, const std::vector<uint32_t>& tags,
               const SearchParams& params)
      : ids_(ids),
        dead_(dead),
        tags_(tags),
        tag_(params.tag),
        accept_(params.accept ? &params.accept : nullptr) {}
  bool is_member(idx_t position) const override { return accepts(position); }
  uint32_t tag() const { return tag_; }
  bool accepts(idx_t position) const {
    const auto at = static_cast<size_t>(position);
    return !dead_.contains(at) && (!tag_ || tags_[at] == tag_) && (!accept_ || (*accept_)(ids_[at]));
  }
  // accepts(position) for a listed row whose tag in list order is *listed_tag (null: none kept).
  bool admits(idx_t position, const uint16_t* listed_tag) const {
    if (!tag_ || !listed_tag) return accepts(position);
    const uint16_t wanted = ListTags::narrow(tag_);
    if (*listed_tag != wanted) return false;
    const auto at = static_cast<size_t>(position);
    return !dead_.contains(at) && (wanted != ListTags::kSpilled || tags_[at] == tag_) &&
           (!accept_ || (*accept_)(ids_[at]));
  }
  // The indices i of the n listed positions that accepts() admits, into `rows`. With the list's
  // tags (`listed_tags`, from ListTags) a tag is read in list order; without them tags and ids
  // are read at random by position (4 and 8 MB at 1M items) and asked for kPrefetchRows rows
  // ahead. The ids the filter takes are read only for the rows whose tag matched.
  void select(const idx_t* positions, const uint16_t* listed_tags, size_t n,
              std::vector<uint32_t>& rows) const {
    rows.clear();
    if (tag_ && listed_tags) {
      const uint16_t wanted = ListTags::narrow(tag_);
      for (size_t i = 0; i < n; ++i) {
        if (listed_tags[i] != wanted) continue;
        const auto at = static_cast<size_t>(positions[i]);
        if (!dead_.contains(at) && (wanted != ListTags::kSpilled || tags_[at] == tag_))
          rows.push_back(static_cast<uint32_t>(i));
      }
    } else {
      for (size_t i = 0; i < n; ++i) {
        if (i + kPrefetchRows < n) prefetch_first_read(positions[i + kPrefetchRows]);
        const auto at = static_cast<size_t>(positions[i]);
        if (!dead_.contains(at) && (!tag_ || tags_[at] == tag_)) rows.push_back(static_cast<uint32_t>(i));
      }
    }
    if (!accept_) return;
    size_t kept = 0;
    for (size_t j = 0; j < rows.size(); ++j) {
      if (tag_ && j + kPrefetchRows < rows.size())
        __builtin_prefetch(ids_.data() + positions[rows[j + kPrefetchRows]]);
      if ((*accept_)(ids_[static_cast<size_t>(positions[rows[j]])])) rows[kept++] = rows[j];
    }
    rows.resize(kept);
  }

 private:
  void prefetch_first_read(idx_t position) const {
    if (tag_) {
      __builtin_prefetch(tags_.data() + position);
    } else if (accept_) {
      __builtin_prefetch(ids_.data() + position);
    }
  }

  const std::vector<int64_t>& ids_;
  const DeadRows& dead_;
  const std::vector<uint32_t>& tags_;
  uint32_t tag_;
  const std::function<bool(int64_t)>* accept_;
};

// How much a filter admitting `selectivity` of the rows widens the search (lists probed, HNSW
// beam): sqrt(1 / selectivity) rounded up, up to kMaxWiden, so that about as many accepted rows
// are scanned as an unfiltered search scans rows. A filter that follows the query (its own
// category) rejects fewer rows of the query's nearest lists than its selectivity says: the
// fourth root (1.57 for a sixth): at 1M items a 1/6 own-category search found 0.970 of the top
// 12 so; unwidened 0.949, widened 3x 0.985 for about 1.4x the time (bench_scale own_cat,
// docs/benchmarks.md).
double widening(double selectivity, bool follows_query) {
  if (follows_query) return std::min<double>(kMaxWiden, std::pow(1.0 / selectivity, 0.25));
  return static_cast<double>(
      std::clamp<size_t>(static_cast<size_t>(std::ceil(std::sqrt(1.0 / selectivity))), 1, kMaxWiden));
}

size_t widened(size_t breadth, double widen, size_t most) {
  return std::min(most, static_cast<size_t>(std::ceil(static_cast<double>(breadth) * widen)));
}

// The `size` rows with the smallest approximate distances offered (a list scan's candidates),
// in FAISS's max-heap.
class Candidates {
 public:
  explicit Candidates(size_t size)
      : distances_(size, std::numeric_limits<float>::max()), labels_(size, idx_t{-1}) {}
  float worst() const { return distances_[0]; }
  void offer(float distance, idx_t label) {
    if (distance < distances_[0])
      faiss::maxheap_replace_top(distances_.size(), distances_.data(), labels_.data(), distance, label);
  }
  // Into labels[0, size): nearest first, unfilled slots (-1) last, as FAISS's own search leaves them.
  void write(idx_t* labels) {
    faiss::maxheap_reorder(distances_.size(), distances_.data(), labels_.data());
    std::copy(labels_.begin(), labels_.end(), labels);
  }

 private:
  std::vector<float> distances_;
  std::vector<idx_t> labels_;
};

// The k best (position, score) pairs offered, by decreasing score.
class TopK {
 public:
  explicit TopK(size_t k) : k_(k) {}
  void offer(idx_t position, float score) {
    if (heap_.size() < k_) {
      heap_.emplace(score, position);
    } else if (k_ > 0 && score > heap_.top().first) {
      heap_.pop();
      heap_.emplace(score, position);
    }
  }
  std::vector<std::pair<float, idx_t>> sorted() {
    std::vector<std::pair<float, idx_t>> out;
    for (; !heap_.empty(); heap_.pop()) out.push_back(heap_.top());
    std::reverse(out.begin(), out.end());
    return out;
  }

 private:
  size_t k_;
  // Min-heap on score: the worst kept candidate on top.
  std::priority_queue<std::pair<float, idx_t>, std::vector<std::pair<float, idx_t>>, std::greater<>> heap_;
};

// 4 sqrt(n) lists for 8-bit codes; 2 sqrt(n) for fast-scan ones, whose scan is cheap enough that
// ranking the lists' centroids was a third of a query: at 1M items 2,000 lists probed 96 at a
// time answered in 1.29 ms at recall@12 0.952, against 1.33-1.56 ms at 0.951 for 4,000 lists
// probed 134 at a time, and the half-filled last block of each list costs half as much memory
// (bench_scale, docs/benchmarks.md).
size_t default_nlist(size_t n, bool fast_scan) {
  const double per_root = fast_scan ? 2.0 : 4.0;
  const auto lists = static_cast<size_t>(std::lround(per_root * std::sqrt(static_cast<double>(n))));
  return std::clamp<size_t>(lists, 1, 4096);
}

// The largest divisor of `dimension` not above `wanted` (FAISS PQ needs d % M == 0).
size_t pq_subquantizers(size_t dimension, size_t wanted) {
  for (size_t m = std::min(wanted, dimension); m > 1; --m) {
    if (dimension % m == 0) return m;
  }
  return 1;
}

class CompressedIndex final : public VectorIndex {
 public:
  // `parts` holds one coarse structure per part of the vector (see IndexOptions::parts), over
  // that part's dimensions.
  CompressedIndex(IndexKind kind, const IndexOptions& options,
                  std::vector<std::unique_ptr<faiss::Index>> parts, std::unique_ptr<Float16Rows> copies,
                  std::vector<int64_t> ids)
      : kind_(kind),
        options_(options),
        parts_(std::move(parts)),
        copies_(std::move(copies)),
        ids_(std::move(ids)) {
    dead_.resize(ids_.size());
    tags_.resize(ids_.size(), 0);
    for (size_t i = 0; i < ids_.size(); ++i) {
      if (ids_[i] == kDead) {
        dead_.mark(i);
      } else {
        rows_.insert(ids_[i], static_cast<idx_t>(i));
      }
    }
    for (const auto& part : parts_) centroids_.push_back(list_centroids(*part));
    list_tags_.resize(parts_.size());
    tag_runs_.resize(parts_.size());
    for (size_t p = 0; p < parts_.size(); ++p) {
      if (const auto* fast = fast_scan(*parts_[p])) tag_runs_[p].resize(fast->nlist);
    }
    follow_lists();
    reserve_headroom();
  }

  IndexKind kind() const override { return kind_; }
  size_t dimension() const override { return copies_->dimension(); }
  size_t size() const override { return rows_.size(); }
  float vector_tolerance() const override { return 1e-3f; }  // float16 keeps 11 significant bits

  std::string parameters() const override {
    std::ostringstream out;
    for (size_t p = 0; p < parts_.size(); ++p) {
      if (parts_.size() > 1) out << (p ? " | " : "") << "part " << parts_[p]->d << "d: ";
      if (const auto* ivf = dynamic_cast<const faiss::IndexIVFPQ*>(parts_[p].get())) {
        out << "nlist=" << ivf->nlist << " pq=" << ivf->pq.M << "x" << ivf->pq.nbits
            << " nprobe=" << (options_.nprobe ? "" : "auto:") << probes(*ivf);
      } else if (const auto* fast = fast_scan(*parts_[p])) {
        out << "nlist=" << fast->nlist << " pq=" << fast->pq.M << "x4fs" << (pq4_vectorised() ? "/avx2" : "")
            << " nprobe=" << (options_.nprobe ? "" : "auto:") << probes(*fast);
      } else if (const auto* hnsw = dynamic_cast<const faiss::IndexHNSW*>(parts_[p].get())) {
        out << "sq8 links=" << hnsw->hnsw.nb_neighbors(0) / 2 << " ef_search=" << options_.ef_search;
      }
    }
    out << "; rerank=" << (options_.rerank ? "" : "auto:") << rerank_depth() << " float16"
        << (dot_kernels_vectorised() ? "/f16c" : "") << " exact_subset=" << options_.exact_subset;
    if (ids_.size() > rows_.size()) out << " removed_pending=" << ids_.size() - rows_.size();
    return out.str();
  }

  size_t index_bytes() const override {
    // position <-> id, tags, removed rows
    size_t bytes = ids_.size() * (sizeof(int64_t) + sizeof(uint32_t)) + rows_.bytes() + dead_.bytes();
    for (const auto& part : parts_) bytes += part_bytes(*part);
    for (const auto& tags : list_tags_) bytes += tags.bytes();
    for (const auto& runs : tag_runs_) bytes += runs.bytes();
    for (const auto& c : centroids_)
      bytes += c.halves.size() * sizeof(uint16_t) + c.norms.size() * sizeof(float);
    return bytes;
  }
  size_t exact_copy_bytes() const override { return copies_->memory_bytes(); }
  size_t mapped_copy_bytes() const override { return copies_->mapped_bytes(); }

  std::vector<int64_t> ids() const override {
    std::vector<int64_t> live;
    live.reserve(rows_.size());
    for (int64_t id : ids_) {
      if (id != kDead) live.push_back(id);
    }
    return live;
  }

  void add(size_t n, const int64_t* ids, const float* vectors) override {
    if (ids_.size() + n > ids_.capacity()) reserve_headroom(n);
    for (size_t i = 0; i < n; ++i) {
      if (rows_.contains(ids[i]) || ids[i] == kDead)
        throw Error(ErrorCode::kConflict, "vector id " + std::to_string(ids[i]) + " exists");
    }
    // In chunks, so that a part's columns are copied 64k rows at a time (128 MB at 512-d), not
    // for the whole catalog at once (2 GB per part at 1M items).
    constexpr size_t kChunk = 65536;
    for (size_t first = 0; first < n; first += kChunk) {
      const size_t rows = std::min(kChunk, n - first);
      const float* chunk = vectors + first * dimension();
      size_t offset = 0;
      for (size_t p = 0; p < parts_.size(); ++p) {
        const auto width = static_cast<size_t>(parts_[p]->d);
        if (parts_.size() == 1) {
          add_to_part(p, rows, chunk);
        } else {
          add_to_part(p, rows, part_columns(rows, chunk, offset, width).data());
        }
        offset += width;
      }
      copies_->append(rows, chunk);
    }
    for (size_t i = 0; i < n; ++i) {
      rows_.insert(ids[i], static_cast<idx_t>(ids_.size()));
      ids_.push_back(ids[i]);
    }
    dead_.resize(ids_.size());
    tags_.resize(ids_.size(), 0);
    follow_lists();
  }

  // Many tags at once (an index just loaded) retag every list entry, O(rows); a few find their
  // row's list entry through the row's nearest lists (the list it was added to, O(list)).
  void set_tags(size_t n, const int64_t* ids, const uint32_t* tags) override {
    constexpr size_t kRetagAll = 256;
    std::vector<idx_t> changed;
    for (size_t i = 0; i < n; ++i) {
      const auto position = rows_.find(ids[i]);
      if (!position || tags_[static_cast<size_t>(*position)] == tags[i]) continue;
      tags_[static_cast<size_t>(*position)] = tags[i];
      changed.push_back(*position);
    }
    for (size_t p = 0; p < parts_.size(); ++p) {
      const auto* ivf = dynamic_cast<const faiss::IndexIVF*>(parts_[p].get());
      if (!ivf || changed.empty()) continue;
      if (changed.size() > kRetagAll) {
        list_tags_[p].rebuild(*ivf->invlists, tags_);
        if (fast_scan(*ivf)) order_lists(p, [](size_t) { return true; });
        continue;
      }
      for (const idx_t position : changed) {
        const size_t list = retag_entry(p, *ivf, position);
        if (tags_ordered_ && fast_scan(*ivf) && overgrown(*ivf, p, list))
          order_lists(p, [list](size_t l) { return l == list; });
      }
    }
    if (changed.size() > kRetagAll) tags_ordered_ = true;
  }

  size_t remove(const std::vector<int64_t>& ids) override {
    size_t removed = 0;
    for (int64_t id : ids) {
      const auto position = rows_.find(id);
      if (!position) continue;
      ids_[static_cast<size_t>(*position)] = kDead;
      dead_.mark(static_cast<size_t>(*position));
      rows_.erase(id);
      ++removed;
    }
    return removed;
  }

  std::vector<std::vector<Neighbour>> search(size_t n, const float* queries,
                                             const SearchParams& params) const override {
    std::vector<std::vector<Neighbour>> results(n);
    const size_t live = rows_.size();
    if (n == 0 || params.k == 0 || live == 0) return results;
    const bool filtered = params.accept || params.tag;
    LiveSelector selector(ids_, dead_, tags_, params);  // FAISS takes a non-const IDSelector*
    const size_t expected = filtered ? std::min(params.expected_accepted, live) : live;
    if (filtered && expected <= options_.exact_subset) {
      for (size_t q = 0; q < n; ++q) {
        const float* query = queries + q * dimension();
        results[q] = scan(query, weighed_spans(query), params.k, selector);
      }
      return results;
    }
    const double selectivity = static_cast<double>(std::max<size_t>(expected, 1)) / static_cast<double>(live);
    const double widen = widening(selectivity, params.filter_follows_query);
    const size_t candidates = std::min(std::max(params.k, rerank_depth()), live);
    std::vector<std::vector<idx_t>> found(n);
    const bool select = filtered || ids_.size() > rows_.size();  // removed rows are skipped too
    size_t offset = 0;
    for (size_t p = 0; p < parts_.size(); ++p) {
      search_part(p, n, queries, offset, candidates, widen, select ? &selector : nullptr,
                  params.accept && selectivity <= kSelectFirst, found);
      offset += static_cast<size_t>(parts_[p]->d);
    }
    for (size_t q = 0; q < n; ++q) {
      const float* query = queries + q * dimension();
      results[q] = rerank(query, weighed_spans(query), found[q], params.k);
    }
    return results;
  }

  std::vector<float> vector(int64_t id) const override {
    const auto position = rows_.find(id);
    if (!position) return {};
    std::vector<float> v(dimension());
    copies_->decode(static_cast<size_t>(*position), v.data());
    return v;
  }

  void set_search_options(const IndexOptions& options) override {
    options_.nprobe = options.nprobe;
    options_.ef_search = options.ef_search;
    options_.rerank = options.rerank;
    options_.exact_subset = options.exact_subset;
  }

  void write_unsealed(const ByteSink& out) const override {
    size_t written = 0;
    auto write = [&](const void* data, size_t size) {
      out(data, size);
      written += size;
    };
    auto put = [&](uint64_t v) { write(&v, sizeof v); };
    write(kMagic, sizeof kMagic);
    put(static_cast<uint64_t>(kind_));
    for (size_t v : {options_.nprobe, options_.ef_search, options_.rerank, options_.exact_subset}) put(v);
    put(ids_.size());
    write(ids_.data(), ids_.size() * sizeof(int64_t));
    put(parts_.size());
    for (const auto& part : parts_) {
      faiss::VectorIOWriter writer;
      faiss::write_index(part.get(), &writer);
      put(writer.data.size());
      write(writer.data.data(), writer.data.size());
    }
    put(copies_->dimension());
    put(copies_->size());
    const std::vector<char> padding(aligned(written) - written, 0);
    write(padding.data(), padding.size());
  }

  void write_sealed_apart(const ByteSink& out) const override { copies_->write(out); }

  bool map_snapshot(const std::string& path) override {
    std::unique_ptr<FILE, int (*)(FILE*)> file(std::fopen(path.c_str(), "rb"), &std::fclose);
    if (!file) return false;
    const auto offset = copies_offset(file.get(), dimension(), copies_->size());
    return offset && copies_->map(fileno(file.get()), *offset, copies_->size());
  }

 private:
  // Brings each IVF part's list tags up to the rows its lists hold now (after an add, at load).
  void follow_lists() {
    for (size_t p = 0; p < parts_.size(); ++p) {
      if (const auto* ivf = dynamic_cast<const faiss::IndexIVF*>(parts_[p].get()))
        list_tags_[p].follow(*ivf->invlists, tags_);
    }
  }

  // Orders the lists of fast-scan part p that `chosen` picks by their rows' tags (TagRuns).
  template <class Chosen>
  void order_lists(size_t p, Chosen chosen) {
    auto& fast = dynamic_cast<faiss::IndexIVFPQFastScan&>(*parts_[p]);
    auto& lists = dynamic_cast<faiss::BlockInvertedLists&>(*fast.invlists);
    for (size_t l = 0; l < fast.nlist; ++l) {
      if (!chosen(l)) continue;
      tag_runs_[p].order(lists, l, fast.M, list_tags_[p].of(l));
      list_tags_[p].refresh(lists, l, tags_);
    }
  }

  // Whether list l's rows not ordered by tag (added or re-tagged since) are more than a quarter
  // of it and two blocks: a row added online is tagged next (ServingState::put_item), and such a
  // list is then ordered again, O(list): a few hundred rows at 1M items.
  bool overgrown(const faiss::IndexIVF& ivf, size_t p, size_t l) const {
    const size_t size = ivf.invlists->list_size(l), unordered = size - tag_runs_[p].tail(l);
    return unordered > std::max<size_t>(2 * kPq4BlockRows, size / 4);
  }

  // Sets the list entry of `position` in part p to its tag and returns the list: the lists
  // nearest to the row's float16 copy hold it (FAISS assigned it by the float32 vector, so it
  // may be the second nearest or further), and failing those every list is looked through.
  size_t retag_entry(size_t p, const faiss::IndexIVF& ivf, idx_t position) {
    constexpr size_t kNearest = 8;
    const uint32_t tag = tags_[static_cast<size_t>(position)];
    std::vector<float> v(dimension());
    copies_->decode(static_cast<size_t>(position), v.data());
    size_t offset = 0;
    for (size_t q = 0; q < p; ++q) offset += static_cast<size_t>(parts_[q]->d);
    auto retag_in = [&](size_t list) {
      const std::ptrdiff_t entry = list_tags_[p].set(*ivf.invlists, list, position, tag);
      if (entry >= 0 && fast_scan(ivf)) tag_runs_[p].cut(list, static_cast<size_t>(entry));
      return entry >= 0;
    };
    for (const idx_t list : nearest_lists(centroids_[p], v.data() + offset, kNearest).first) {
      if (retag_in(static_cast<size_t>(list))) return static_cast<size_t>(list);
    }
    for (size_t list = 0; list < ivf.nlist; ++list) {
      if (retag_in(list)) return list;
    }
    assert(false && "every live row is in a list");
    return 0;
  }

  // Room for an eighth more float16 copies (at least 4,096) beyond `adding`: the copies are one
  // contiguous FAISS array, and letting an add grow it doubles and copies 2 GB at 1M items
  // (4.5 s, measured) while the add holds the write lock. Growing here happens once per eighth.
  void reserve_headroom(size_t adding = 0) {
    const size_t rows = ids_.size() + adding;
    const size_t room = rows + std::max<size_t>(4096, rows / 8);
    copies_->reserve(room);
    ids_.reserve(room);
    tags_.reserve(room);
  }

  static size_t part_bytes(const faiss::Index& part) {
    if (const auto* ivf = dynamic_cast<const faiss::IndexIVFPQ*>(&part)) {
      return static_cast<size_t>(ivf->ntotal) * (ivf->code_size + sizeof(idx_t)) +
             ivf->nlist * static_cast<size_t>(ivf->d) * sizeof(float) +
             ivf->pq.centroids.size() * sizeof(float);
    }
    if (const auto* fast = fast_scan(part)) {
      const auto* lists = dynamic_cast<const faiss::BlockInvertedLists*>(fast->invlists);
      size_t bytes = fast->nlist * static_cast<size_t>(fast->d) * sizeof(float) +
                     fast->pq.centroids.size() * sizeof(float);
      for (size_t l = 0; l < fast->nlist; ++l)
        bytes += lists->codes[l].size() + lists->ids[l].size() * sizeof(idx_t);
      return bytes;
    }
    size_t bytes = 0;
    if (const auto* hnsw = dynamic_cast<const faiss::IndexHNSW*>(&part)) {
      bytes += hnsw->hnsw.neighbors.size() * sizeof(faiss::HNSW::storage_idx_t);
      bytes += hnsw->hnsw.offsets.size() * sizeof(size_t) + hnsw->hnsw.levels.size() * sizeof(int);
      if (const auto* codes = dynamic_cast<const faiss::IndexFlatCodes*>(hnsw->storage))
        bytes += codes->codes.size();
    }
    return bytes;
  }

  // A few rows find their IVF list through nearest_lists (FAISS's own single-row assignment
  // took 1.7 ms per add at 100k items); batches go through FAISS, which uses BLAS for them.
  void add_to_part(size_t p, size_t rows, const float* columns) {
    auto* ivf = dynamic_cast<faiss::IndexIVF*>(parts_[p].get());
    if (!ivf || static_cast<idx_t>(rows) >= kFaissBlasQueries) {
      parts_[p]->add(static_cast<idx_t>(rows), columns);
      return;
    }
    std::vector<idx_t> lists(rows);
    for (size_t i = 0; i < rows; ++i)
      lists[i] = nearest_lists(centroids_[p], columns + i * ivf->d, 1).first[0];
    if (auto* fast = dynamic_cast<faiss::IndexIVFPQFastScan*>(ivf)) {
      append_fast_scan(*fast, rows, columns, lists.data());
    } else {
      ivf->add_core(static_cast<idx_t>(rows), columns, nullptr, lists.data());
    }
  }

  // Appends rows to the given lists of a fast-scan part, each at the end of its list's last
  // block (FAISS's own add assigns lists itself, one row at a time without BLAS, and
  // BlockInvertedLists::add_entries refuses a list that holds rows).
  static void append_fast_scan(faiss::IndexIVFPQFastScan& ivf, size_t rows, const float* columns,
                               const idx_t* lists) {
    auto& block_lists = dynamic_cast<faiss::BlockInvertedLists&>(*ivf.invlists);
    std::vector<uint8_t> code(ivf.code_size);
    for (size_t i = 0; i < rows; ++i) {
      const auto list = static_cast<size_t>(lists[i]);
      const size_t at = block_lists.list_size(list);
      ivf.pq.compute_code(columns + i * static_cast<size_t>(ivf.d), code.data());
      block_lists.resize(list, at + 1);  // zero-fills a new block
      block_lists.ids[list][at] = ivf.ntotal + static_cast<idx_t>(i);
      faiss::pq4_pack_codes_range(code.data(), ivf.M, at, at + 1, ivf.bbs, ivf.M2,
                                  block_lists.codes[list].data());
    }
    ivf.ntotal += static_cast<idx_t>(rows);
  }

  // Columns [offset, offset + width) of n rows (the whole rows when the part is the vector).
  std::vector<float> part_columns(size_t n, const float* rows, size_t offset, size_t width) const {
    const size_t d = dimension();
    if (width == d) return std::vector<float>(rows, rows + n * d);
    std::vector<float> out(n * width);
    for (size_t i = 0; i < n; ++i)
      std::memcpy(out.data() + i * width, rows + i * d + offset, width * sizeof(float));
    return out;
  }

  // Adds each query's candidates from one part to `found`; queries that do not weigh the part
  // (all zero there) skip it.
  // `selector` is null when every live row qualifies.
  // `select_first`: see scan_blocks.
  void search_part(size_t p, size_t n, const float* queries, size_t offset, size_t candidates, double widen,
                   LiveSelector* selector, bool select_first, std::vector<std::vector<idx_t>>& found) const {
    const faiss::Index& part = *parts_[p];
    const auto width = static_cast<size_t>(part.d);
    const auto columns = part_columns(n, queries, offset, width);
    std::vector<size_t> asking;
    std::vector<float> sub;
    for (size_t q = 0; q < n; ++q) {
      const float* v = columns.data() + q * width;
      if (std::any_of(v, v + width, [](float x) { return x != 0.0f; })) {
        asking.push_back(q);
        sub.insert(sub.end(), v, v + width);
      }
    }
    if (asking.empty()) return;
    std::vector<float> scores(asking.size() * candidates);
    std::vector<idx_t> labels(asking.size() * candidates);
    const auto m = static_cast<idx_t>(asking.size());
    const auto* ivf = dynamic_cast<const faiss::IndexIVFPQ*>(&part);
    const auto* fast = fast_scan(part);
    if (fast || (ivf && scannable(*ivf))) {
      const faiss::IndexIVF& lists_of = fast ? static_cast<const faiss::IndexIVF&>(*fast) : *ivf;
      const size_t nprobe = widened(probes(lists_of), widen, lists_of.nlist);
      const auto lists = assign_lists(p, lists_of, asking.size(), sub.data(), nprobe);
#pragma omp parallel for if (m > 1) schedule(dynamic)
      for (idx_t q = 0; q < m; ++q) {
        const float* x = sub.data() + q * lists_of.d;
        const idx_t* probed = lists.data() + q * nprobe;
        if (fast) {
          scan_blocks(*fast, x, probed, nprobe, candidates, selector, select_first, list_tags_[p],
                      tag_runs_[p], labels.data() + q * candidates);
        } else {
          scan_lists(*ivf, x, probed, nprobe, candidates, selector, list_tags_[p],
                     labels.data() + q * candidates);
        }
      }
    } else if (ivf) {
      faiss::SearchParametersIVF ip;
      ip.nprobe = widened(probes(*ivf), widen, ivf->nlist);
      ip.sel = selector;
      if (m < kFaissBlasQueries) {
        for (idx_t q = 0; q < m; ++q) {
          const float* x = sub.data() + q * ivf->d;
          const auto [lists, distances] = nearest_lists(centroids_[p], x, ip.nprobe);
          ivf->search_preassigned(1, x, static_cast<idx_t>(candidates), lists.data(), distances.data(),
                                  scores.data() + q * candidates, labels.data() + q * candidates, false, &ip);
        }
      } else {
        ivf->search(m, sub.data(), static_cast<idx_t>(candidates), scores.data(), labels.data(), &ip);
      }
    } else {
      faiss::SearchParametersHNSW hp;
      hp.efSearch = static_cast<int>(std::max(candidates, widened(options_.ef_search, widen, SIZE_MAX)));
      hp.sel = selector;
      part.search(m, sub.data(), static_cast<idx_t>(candidates), scores.data(), labels.data(), &hp);
    }
    for (size_t i = 0; i < asking.size(); ++i) {
      auto& into = found[asking[i]];
      for (size_t j = 0; j < candidates && labels[i * candidates + j] >= 0; ++j)
        into.push_back(labels[i * candidates + j]);
    }
  }

  // Whether pq8_distances can scan the part's codes: 8-bit codes of the vectors themselves
  // (not residuals) compared by L2, 8 sub-quantizers at a time. Other parts go through FAISS.
  static bool scannable(const faiss::IndexIVFPQ& ivf) {
    return ivf.pq.nbits == 8 && ivf.pq.M % 8 == 0 && !ivf.by_residual &&
           ivf.metric_type == faiss::METRIC_L2 && ivf.polysemous_ht == 0;
  }

  // The `nprobe` nearest lists of each of n queries (row-major, n x nprobe; -1 where a part has
  // fewer lists): nearest_lists for a few queries, FAISS's BLAS assignment for batches.
  std::vector<idx_t> assign_lists(size_t p, const faiss::IndexIVF& ivf, size_t n, const float* x,
                                  size_t nprobe) const {
    std::vector<idx_t> lists(n * nprobe, idx_t{-1});
    if (static_cast<idx_t>(n) >= kFaissBlasQueries) {
      std::vector<float> distances(n * nprobe);
      ivf.quantizer->search(static_cast<idx_t>(n), x, static_cast<idx_t>(nprobe), distances.data(),
                            lists.data());
      return lists;
    }
    for (size_t q = 0; q < n; ++q) {
      const auto nearest = nearest_lists(centroids_[p], x + q * static_cast<size_t>(ivf.d), nprobe).first;
      std::copy(nearest.begin(), nearest.end(), lists.begin() + static_cast<std::ptrdiff_t>(q * nprobe));
    }
    return lists;
  }

  // The first codes and ids of a list about to be scanned: each list is its own allocation, and
  // the hardware prefetcher only follows a list once it has missed on its first lines.
  static void prefetch_list_head(const faiss::IndexIVF& ivf, idx_t list) {
    const uint8_t* codes = ivf.invlists->get_codes(list);
    const idx_t* ids = ivf.invlists->get_ids(list);
    for (size_t line = 0; line < 4; ++line) __builtin_prefetch(codes + line * 64);
    __builtin_prefetch(ids);
    ivf.invlists->release_codes(list, codes);
    ivf.invlists->release_ids(list, ids);
  }

  // The `candidates` positions of the given lists nearest to x by their codes' distances, into
  // labels[0, candidates) (every slot written; -1 where fewer rows were found). With a selector,
  // rejected rows are skipped before scoring.
  static void scan_lists(const faiss::IndexIVFPQ& ivf, const float* x, const idx_t* lists, size_t nprobe,
                         size_t candidates, const LiveSelector* selector, const ListTags& list_tags,
                         idx_t* labels) {
    const size_t m = ivf.pq.M;
    std::vector<float> table(m * ivf.pq.ksub);
    ivf.pq.compute_distance_table(x, table.data());
    Candidates best(candidates);
    std::vector<float> distances;
    std::vector<uint32_t> rows;
    visit_lists(ivf, lists, nprobe, [&](size_t list, size_t size, const uint8_t* codes, const idx_t* ids) {
      size_t count = size;
      if (selector) {
        selector->select(ids, list_tags.of(list), size, rows);
        count = rows.size();
      }
      distances.resize(count);
      pq8_distances(table.data(), m, codes, selector ? rows.data() : nullptr, count, distances.data());
      for (size_t i = 0; i < count; ++i) best.offer(distances[i], ids[selector ? rows[i] : i]);
    });
    best.write(labels);
  }

  // Calls visit(list, size, codes, ids) for each probed list that holds rows, in probe order,
  // the next list's first lines fetched ahead.
  template <class Visit>
  static void visit_lists(const faiss::IndexIVF& ivf, const idx_t* lists, size_t nprobe, Visit visit) {
    for (size_t l = 0; l < nprobe; ++l) {
      if (lists[l] < 0) continue;
      const size_t size = ivf.invlists->list_size(lists[l]);
      if (size == 0) continue;
      if (l + 1 < nprobe && lists[l + 1] >= 0) prefetch_list_head(ivf, lists[l + 1]);
      faiss::InvertedLists::ScopedCodes codes(ivf.invlists, lists[l]);
      faiss::InvertedLists::ScopedIds ids(ivf.invlists, lists[l]);
      visit(static_cast<size_t>(lists[l]), size, codes.get(), ids.get());
    }
  }

  // The fast-scan part that scan_blocks reads (4-bit codes of the vectors themselves in blocks of
  // 32, an even number of sub-quantizers), or null; sound_part admits no other kind of one.
  static const faiss::IndexIVFPQFastScan* fast_scan(const faiss::Index& part) {
    const auto* fast = dynamic_cast<const faiss::IndexIVFPQFastScan*>(&part);
    return fast && fast->pq.nbits == 4 && fast->M % 2 == 0 && fast->M2 == fast->M && fast->bbs == 32 &&
                   !fast->by_residual && fast->metric_type == faiss::METRIC_L2
               ? fast
               : nullptr;
  }

  // scan_lists for a fast-scan part: every row of a probed list's blocks gets its byte-table
  // distance (pq4_distances), and only rows nearer than the worst candidate kept are checked
  // against the selector, so a filter costs little once the candidates fill. A tag reads only
  // its run's blocks (TagRuns). With `select_first` (a selective filter function) the selector
  // picks a list's rows first and only the blocks holding one are scored: at 1% a block of 32
  // holds an admitted row about a quarter of the time.
  static void scan_blocks(const faiss::IndexIVFPQFastScan& ivf, const float* x, const idx_t* lists,
                          size_t nprobe, size_t candidates, const LiveSelector* selector, bool select_first,
                          const ListTags& list_tags, const TagRuns& runs, idx_t* labels) {
    const size_t m = ivf.pq.M;
    std::vector<float> table(m * ivf.pq.ksub);
    ivf.pq.compute_distance_table(x, table.data());
    std::vector<uint8_t> packed(m * 16);
    pq4_quantize_table(table.data(), m, packed.data());
    Candidates best(candidates);
    std::vector<uint16_t> distances;
    std::vector<uint32_t> rows;
    visit_lists(ivf, lists, nprobe, [&](size_t list, size_t size, const uint8_t* codes, const idx_t* ids) {
      distances.resize((size + kPq4BlockRows - 1) / kPq4BlockRows * kPq4BlockRows);
      const uint16_t* tags = selector ? list_tags.of(list) : nullptr;
      auto score_blocks = [&](size_t from, size_t to) {
        pq4_distances(packed.data(), m, codes + from * m * 16, to - from,
                      distances.data() + from * kPq4BlockRows);
      };
      if (selector && select_first) {
        selector->select(ids, tags, size, rows);
        size_t scored = SIZE_MAX;  // the block whose distances are in `distances`
        for (const uint32_t i : rows) {
          const size_t block = i / kPq4BlockRows;
          if (block != scored) score_blocks(block, block + 1);
          scored = block;
          best.offer(distances[i], ids[i]);
        }
        return;
      }
      // Rows [first, last): their blocks' distances, then the selector for the rows nearer than
      // the worst candidate kept.
      auto score = [&](size_t first, size_t last) {
        if (first >= last) return;
        score_blocks(first / kPq4BlockRows, (last + kPq4BlockRows - 1) / kPq4BlockRows);
        for (size_t i = first; i < last; ++i) {
          if (distances[i] >= best.worst()) continue;
          if (selector && !selector->admits(ids[i], tags ? tags + i : nullptr)) continue;
          best.offer(distances[i], ids[i]);
        }
      };
      if (selector && selector->tag()) {  // the tag's run, and the rows not ordered yet
        const auto span = runs.span(list, ListTags::narrow(selector->tag()));
        score(span.begin, span.end);
        score(span.tail, size);
      } else {
        score(0, size);
      }
    });
    best.write(labels);
  }

  // The [offset, offset + width) column spans of the parts the query weighs (not all zero there),
  // adjacent ones merged: a blended version's default query weighs its head half alone, and the
  // re-rank then reads half of each float16 copy.
  std::vector<std::pair<size_t, size_t>> weighed_spans(const float* query) const {
    std::vector<std::pair<size_t, size_t>> spans;
    size_t offset = 0;
    for (const auto& part : parts_) {
      const auto width = static_cast<size_t>(part->d);
      const float* v = query + offset;
      if (std::any_of(v, v + width, [](float x) { return x != 0.0f; })) {
        if (!spans.empty() && spans.back().first + spans.back().second == offset)
          spans.back().second += width;
        else
          spans.emplace_back(offset, width);
      }
      offset += width;
    }
    return spans;
  }

  // The candidates' exact scores from the float16 copies over the weighed spans (the other
  // columns of the query are zero); the best k.
  std::vector<Neighbour> rerank(const float* query, const std::vector<std::pair<size_t, size_t>>& spans,
                                std::vector<idx_t>& labels, size_t k) const {
    std::sort(labels.begin(), labels.end());
    labels.erase(std::unique(labels.begin(), labels.end()), labels.end());  // found by several parts
    TopK best(k);
    for (const idx_t label : labels) best.offer(label, exact_score(query, spans, label));
    return neighbours(best);
  }

  // Exact search over the accepted live rows (a filter that admits few of them).
  std::vector<Neighbour> scan(const float* query, const std::vector<std::pair<size_t, size_t>>& spans,
                              size_t k, const LiveSelector& selector) const {
    TopK best(k);
    for (size_t i = 0; i < ids_.size(); ++i) {
      if (selector.accepts(static_cast<idx_t>(i)))
        best.offer(static_cast<idx_t>(i), exact_score(query, spans, static_cast<idx_t>(i)));
    }
    return neighbours(best);
  }

  // The inner product of `query` with the float16 copy at `position` (QT_fp16 codes are the
  // vector's IEEE half floats, in order), over the spans the query weighs (zero elsewhere).
  float exact_score(const float* query, const std::vector<std::pair<size_t, size_t>>& spans,
                    idx_t position) const {
    const uint16_t* copy = float16_copy(position);
    float score = 0.0f;
    for (const auto& [offset, width] : spans) score += dot_float16(query + offset, copy + offset, width);
    return score;
  }

  const uint16_t* float16_copy(idx_t position) const {
    return copies_->row(static_cast<size_t>(position));
  }

  // An IVF part's list centroids as nearest_lists reads them (empty for other parts).
  struct ListCentroids {
    size_t d = 0;
    std::vector<float> norms;      // squared L2 norm of each centroid
    std::vector<uint16_t> halves;  // the centroids as float16, row-major: half the bytes of FAISS's
                                   // float32 copy (8 MB at 1M items), which each query reads whole
  };

  static ListCentroids list_centroids(const faiss::Index& part) {
    const auto* ivf = dynamic_cast<const faiss::IndexIVF*>(&part);
    const auto* flat = ivf ? dynamic_cast<const faiss::IndexFlat*>(ivf->quantizer) : nullptr;
    if (!flat) return {};
    ListCentroids out;
    out.d = static_cast<size_t>(flat->d);
    const size_t n = static_cast<size_t>(flat->ntotal);
    const float* c = flat->get_xb();
    out.norms.resize(n);
    for (size_t j = 0; j < n; ++j) out.norms[j] = dot_float32(c + j * out.d, c + j * out.d, out.d);
    out.halves.resize(n * out.d);
    for (size_t i = 0; i < out.halves.size(); ++i) out.halves[i] = faiss::encode_fp16(c[i]);
    return out;
  }

  // The `nprobe` lists whose centroids are nearest to x (L2, as the quantizer ranks them, from
  // the float16 centroids) and their squared distances, nearest first: |c|^2 - 2 c.x + |x|^2.
  static std::pair<std::vector<idx_t>, std::vector<float>> nearest_lists(const ListCentroids& centroids,
                                                                         const float* x, size_t nprobe) {
    const size_t d = centroids.d, n = centroids.norms.size();
    const float x_norm = dot_float32(x, x, d);
    std::vector<float> distances(n);
    for (size_t j = 0; j < n; ++j)
      distances[j] = centroids.norms[j] - 2.0f * dot_float16(x, centroids.halves.data() + j * d, d) + x_norm;
    std::vector<idx_t> order(n);
    std::iota(order.begin(), order.end(), idx_t{0});
    nprobe = std::min(nprobe, order.size());
    std::partial_sort(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(nprobe), order.end(),
                      [&](idx_t a, idx_t b) { return distances[a] < distances[b]; });
    order.resize(nprobe);
    std::vector<float> nearest(nprobe);
    for (size_t i = 0; i < nprobe; ++i) nearest[i] = distances[order[i]];
    return {std::move(order), std::move(nearest)};
  }

  std::vector<Neighbour> neighbours(TopK& best) const {
    std::vector<Neighbour> out;
    for (const auto& [score, position] : best.sorted())
      out.push_back({ids_[static_cast<size_t>(position)], score});
    return out;
  }

  IndexKind kind_;
  // The lists probed in an IVF part: the option, or automatic by its list count.
  size_t probes(const faiss::IndexIVF& ivf) const {
    return options_.nprobe ? options_.nprobe : auto_nprobe(ivf.nlist);
  }
  // The candidates re-ranked from the float16 copies: the option, or 4 x the widest beam (16/3 x
  // for fast-scan lists, whose byte-table distances are coarser: at 1M items 384 candidates of 96
  // lists found 0.949 of the top 12, 512 found 0.952, bench_scale).
  size_t rerank_depth() const {
    if (options_.rerank) return options_.rerank;
    size_t lists = 0;
    bool fast = false;
    for (const auto& part : parts_) {
      if (const auto* ivf = dynamic_cast<const faiss::IndexIVF*>(part.get())) {
        lists = std::max(lists, probes(*ivf));
        fast = fast || fast_scan(*ivf);
      }
    }
    if (!lists) return 4 * options_.ef_search;
    return fast ? lists * 16 / 3 : 4 * lists;
  }

  IndexOptions options_;  // the search-time parameters (nprobe, ef_search, rerank, exact_subset)
  std::vector<std::unique_ptr<faiss::Index>> parts_;
  std::unique_ptr<Float16Rows> copies_;
  std::vector<ListCentroids> centroids_;  // per part, see list_centroids
  std::vector<int64_t> ids_;              // position -> id, kDead once removed
  IdPositions rows_;                      // id -> position of the live rows
  DeadRows dead_;                         // the positions of `ids_` that are kDead
  std::vector<uint32_t> tags_;            // position -> tag (SearchParams::tag), 0 untagged
  std::vector<ListTags> list_tags_;       // per part (empty for HNSW): tags_ in list order
  std::vector<TagRuns> tag_runs_;         // per part (used by fast-scan parts): lists ordered by tag
  bool tags_ordered_ = false;             // whether the lists were ordered by tag (set_tags, many)
};

// The coarse structures find candidates by L2 distance. Every part of every stored vector has
// the same length (unit vectors, or unit parts scaled alike), so the L2 order is the inner-product
// order whatever the query's length, and L2 is what k-means, residual PQ and HNSW's graph are
// built for: inner-product routing over k-means centroids found 0.13 of the top 12 where L2
// routing finds (bench_scale, 100k items). The final scores are exact inner products (re-rank).
std::unique_ptr<faiss::Index> make_coarse(const IndexOptions& options, IndexKind kind, size_t dimension,
                                          size_t n, size_t sample_n) {
  const auto d = static_cast<idx_t>(dimension);
  if (kind == IndexKind::kHnsw) {
    auto hnsw = std::make_unique<faiss::IndexHNSWSQ>(static_cast<int>(d), faiss::ScalarQuantizer::QT_8bit,
                                                     static_cast<int>(options.hnsw_links), faiss::METRIC_L2);
    return hnsw;
  }
  const size_t fast_m = pq_subquantizers(dimension, 2 * options.pq_bytes);
  const bool fast_scan = options.pq_bits == 4 && fast_m % 2 == 0 && sample_n >= 16;
  const size_t nlist =
      std::min(options.nlist ? options.nlist : default_nlist(n, fast_scan), std::max<size_t>(sample_n, 1));
  auto* quantizer = new faiss::IndexFlatL2(d);
  if (fast_scan) {
    auto fast = std::make_unique<faiss::IndexIVFPQFastScan>(quantizer, d, nlist, fast_m, 4, faiss::METRIC_L2);
    fast->own_fields = true;
    fast->by_residual = false;  // as below
    fast->cp.min_points_per_centroid = 1;
    fast->pq.cp.min_points_per_centroid = 1;
    return fast;
  }
  const size_t m = pq_subquantizers(dimension, options.pq_bytes);
  // 8-bit codes need 256 training points per sub-quantizer; a small catalog forced to IVF-PQ
  // (tests, `reindex --index ivfpq`) gets fewer bits instead of a k-means that cannot run.
  size_t nbits = 8;
  while (nbits > 1 && (size_t{1} << nbits) > sample_n) --nbits;
  auto ivf = std::make_unique<faiss::IndexIVFPQ>(quantizer, d, nlist, m, nbits, faiss::METRIC_L2);
  ivf->own_fields = true;
  // Codes of the vectors themselves, not of their residuals to the list centroid: a query then
  // needs one distance table instead of one per list probed, which at nprobe 64 was most of its
  // cost (2 ms at 100k items), and the exact re-rank makes up for the coarser codes.
  ivf->by_residual = false;
  // FAISS warns below 39 points per centroid; the sample is what the catalog has.
  ivf->cp.min_points_per_centroid = 1;
  ivf->pq.cp.min_points_per_centroid = 1;
  // 64 points per code word (16k vectors) train the sub-quantizers as well as FAISS's default 256
  // do, at a quarter of the cost: their k-means on 8-16 dimensions is all BLAS overhead.
  ivf->pq.cp.max_points_per_centroid = 64;
  return ivf;
}

}  // namespace

bool is_compressed_index(const char* head, size_t size) {
  return size >= sizeof kMagic &&
         (std::memcmp(head, kMagic, sizeof kMagic) == 0 || std::memcmp(head, kMagicV1, sizeof kMagic) == 0);
}

std::unique_ptr<VectorIndex> make_compressed_index(const IndexOptions& options, IndexKind kind,
                                                   size_t dimension, size_t n, size_t sample_n,
                                                   const float* sample) {
  if (kind != IndexKind::kIvfPq && kind != IndexKind::kHnsw)
    throw Error(ErrorCode::kInvalidArgument,
                std::string("not a compressed index type: ") + index_kind_name(kind));
  if (sample_n == 0) throw Error(ErrorCode::kInvalidArgument, "a compressed index needs vectors to train on");
  std::vector<size_t> widths = options.parts.empty() ? std::vector<size_t>{dimension} : options.parts;
  size_t total = 0;
  for (size_t w : widths) total += w;
  if (total != dimension || std::count(widths.begin(), widths.end(), size_t{0}))
    throw Error(ErrorCode::kInvalidArgument, "index parts do not add up to the vector's dimensions");
  std::vector<std::unique_ptr<faiss::Index>> parts;
  try {
    size_t offset = 0;
    for (size_t width : widths) {
      std::vector<float> columns(sample_n * width);
      for (size_t i = 0; i < sample_n; ++i)
        std::memcpy(columns.data() + i * width, sample + i * dimension + offset, width * sizeof(float));
      parts.push_back(make_coarse(options, kind, width, n, sample_n));
      parts.back()->train(static_cast<idx_t>(sample_n), columns.data());
      offset += width;
    }
  } catch (const faiss::FaissException& e) {
    throw Error(ErrorCode::kInternal, std::string("training the compressed index failed: ") + e.what());
  }
  return std::make_unique<CompressedIndex>(kind, options, std::move(parts),
                                           std::make_unique<Float16Rows>(dimension), std::vector<int64_t>{});
}

namespace {

// FAISS reads a graph or inverted lists as stored and trusts them at search time: a damaged
// snapshot whose neighbour id or offset points outside its arrays crashed the first search
// (fuzz/index_snapshot_fuzz.cc). These checks walk every stored link and list once, O(file),
// so that such a file is refused at load like any other corrupt one.
bool sound_codes(const faiss::IndexScalarQuantizer& sq, idx_t count) {
  return sq.ntotal == count && sq.d > 0 && sq.code_size == sq.sq.code_size &&
         sq.codes.size() == static_cast<size_t>(count) * sq.code_size;
}

bool sound_graph(const faiss::HNSW& g, idx_t count) {
  const auto& cum = g.cum_nneighbor_per_level;
  if (g.levels.size() != static_cast<size_t>(count) || g.offsets.size() != g.levels.size() + 1 ||
      g.offsets[0] != 0 || g.max_level < 0 || cum.size() < static_cast<size_t>(g.max_level) + 2 ||
      cum[0] != 0 || !std::is_sorted(cum.begin(), cum.end()))
    return false;
  for (idx_t i = 0; i < count; ++i) {
    const int levels = g.levels[i];
    if (levels < 1 || levels > g.max_level + 1 || g.offsets[i + 1] != g.offsets[i] + cum[levels])
      return false;
  }
  if (g.neighbors.size() != g.offsets.back()) return false;
  if (count > 0 &&
      (g.entry_point < 0 || g.entry_point >= count || g.levels[g.entry_point] != g.max_level + 1))
    return false;
  // A link on level l must lead to a node that has level l, whose own links there are read next.
  for (idx_t i = 0; i < count; ++i) {
    for (int level = 0; level < g.levels[i]; ++level) {
      for (size_t j = g.offsets[i] + cum[level]; j < g.offsets[i] + cum[level + 1]; ++j) {
        const int n = g.neighbors[j];
        if (n < -1 || n >= count || (n >= 0 && g.levels[n] <= level)) return false;
      }
    }
  }
  return true;
}

bool sound_lists(const faiss::IndexIVFPQ& ivf, idx_t count) {
  const auto* lists = dynamic_cast<const faiss::ArrayInvertedLists*>(ivf.invlists);
  if (!lists || lists->nlist != ivf.nlist || !ivf.quantizer ||
      ivf.quantizer->ntotal != static_cast<idx_t>(ivf.nlist) || ivf.quantizer->d != ivf.d ||
      ivf.pq.d != static_cast<size_t>(ivf.d) || lists->code_size != ivf.code_size)
    return false;
  size_t listed = 0;
  for (size_t l = 0; l < ivf.nlist; ++l) {
    const auto& ids = lists->ids[l];
    if (lists->codes[l].size() != ids.size() * lists->code_size) return false;
    for (const idx_t id : ids)
      if (id < 0 || id >= count) return false;
    listed += ids.size();
  }
  return listed == static_cast<size_t>(count);
}

// A fast-scan part as CompressedIndex::fast_scan reads it, whose block lists hold each row once
// in whole blocks.
bool sound_blocks(const faiss::IndexIVFPQFastScan& ivf, idx_t count) {
  const auto* lists = dynamic_cast<const faiss::BlockInvertedLists*>(ivf.invlists);
  if (!lists || lists->nlist != ivf.nlist || !ivf.quantizer ||
      ivf.quantizer->ntotal != static_cast<idx_t>(ivf.nlist) || ivf.quantizer->d != ivf.d ||
      ivf.pq.d != static_cast<size_t>(ivf.d) || ivf.pq.nbits != 4 || ivf.M != ivf.pq.M || ivf.M % 2 != 0 ||
      ivf.M2 != ivf.M || ivf.bbs != 32 || ivf.by_residual || ivf.metric_type != faiss::METRIC_L2 ||
      lists->n_per_block != 32 || lists->block_size != 32 * ivf.M2 / 2 || lists->ids.size() != ivf.nlist ||
      lists->codes.size() != ivf.nlist)
    return false;
  size_t listed = 0;
  for (size_t l = 0; l < ivf.nlist; ++l) {
    const auto& ids = lists->ids[l];
    if (lists->codes[l].size() != (ids.size() + 31) / 32 * lists->block_size) return false;
    for (const idx_t id : ids)
      if (id < 0 || id >= count) return false;
    listed += ids.size();
  }
  return listed == static_cast<size_t>(count);
}

bool sound_part(const faiss::Index& part, idx_t count) {
  if (const auto* ivf = dynamic_cast<const faiss::IndexIVFPQ*>(&part)) return sound_lists(*ivf, count);
  if (const auto* fast = dynamic_cast<const faiss::IndexIVFPQFastScan*>(&part))
    return sound_blocks(*fast, count);
  const auto* hnsw = dynamic_cast<const faiss::IndexHNSW*>(&part);
  const auto* storage = hnsw ? dynamic_cast<const faiss::IndexScalarQuantizer*>(hnsw->storage) : nullptr;
  return storage && storage->d == hnsw->d && sound_codes(*storage, count) && sound_graph(hnsw->hnsw, count);
}

}  // namespace

std::unique_ptr<VectorIndex> read_compressed_index(faiss::IOReader& in, size_t size, int map_fd) {
  // Reads n bytes or throws: FAISS's own reads throw FaissException on a short file as well.
  size_t at = 0;
  auto read_bytes = [&](void* into, size_t n) {
    if (n > size - at || in(into, 1, n) != n)
      throw Error(ErrorCode::kCorruptStore, "index file is truncated");
    at += n;
  };
  auto get = [&]() {
    uint64_t v = 0;
    read_bytes(&v, sizeof v);
    return v;
  };
  char magic[sizeof kMagic];
  read_bytes(magic, sizeof magic);
  const bool v1 = std::memcmp(magic, kMagicV1, sizeof kMagic) == 0;
  if (!v1 && std::memcmp(magic, kMagic, sizeof kMagic) != 0)
    throw Error(ErrorCode::kCorruptStore, "index file does not hold a compressed index");
  const uint64_t kind_value = get();
  if (kind_value != static_cast<uint64_t>(IndexKind::kIvfPq) &&
      kind_value != static_cast<uint64_t>(IndexKind::kHnsw))
    throw Error(ErrorCode::kCorruptStore, "index file names an unknown index type");
  IndexOptions options;
  options.kind = static_cast<IndexKind>(kind_value);
  for (size_t* v : {&options.nprobe, &options.ef_search, &options.rerank, &options.exact_subset}) *v = get();
  const uint64_t count = get();
  if (count > (size - at) / sizeof(int64_t)) throw Error(ErrorCode::kCorruptStore, "index file is truncated");
  std::vector<int64_t> ids(count);
  read_bytes(ids.data(), count * sizeof(int64_t));
  // A part is read from its own bytes, so that a wrong size cannot shift what follows.
  auto read_part = [&](size_t bytes) -> std::unique_ptr<faiss::Index> {
    if (bytes > size - at) throw Error(ErrorCode::kCorruptStore, "index file is truncated");
    faiss::VectorIOReader part;
    part.data.resize(bytes);
    read_bytes(part.data.data(), bytes);
    return std::unique_ptr<faiss::Index>(faiss::read_index(&part));
  };
  try {
    const uint64_t part_count = get();
    if (part_count == 0 || part_count > 16)
      throw Error(ErrorCode::kCorruptStore, "index file names no parts");
    std::vector<std::unique_ptr<faiss::Index>> parts;
    idx_t width = 0;
    for (uint64_t p = 0; p < part_count; ++p) {
      parts.push_back(read_part(get()));
      const faiss::Index* part = parts.back().get();
      const bool fits = options.kind == IndexKind::kIvfPq
                            ? dynamic_cast<const faiss::IndexIVFPQ*>(part) != nullptr ||
                                  dynamic_cast<const faiss::IndexIVFPQFastScan*>(part) != nullptr
                            : dynamic_cast<const faiss::IndexHNSW*>(part) != nullptr;
      if (!fits || static_cast<uint64_t>(part->ntotal) != count)
        throw Error(ErrorCode::kCorruptStore, "index file does not hold a compressed index of its ids");
      if (!sound_part(*part, static_cast<idx_t>(count)))
        throw Error(ErrorCode::kCorruptStore, "index file is corrupt: its graph or lists point outside it");
      width += part->d;
    }
    auto copies = std::make_unique<Float16Rows>(static_cast<size_t>(width));
    if (v1) {
      std::unique_ptr<faiss::Index> exact_index(faiss::read_index(&in));
      auto* exact = dynamic_cast<faiss::IndexScalarQuantizer*>(exact_index.get());
      if (!exact || exact->d != width || !sound_codes(*exact, static_cast<idx_t>(count)))
        throw Error(ErrorCode::kCorruptStore, "index file does not hold a compressed index of its ids");
      std::memcpy(copies->append_uninitialised(count), exact->codes.data(), exact->codes.size());
    } else {
      const uint64_t d = get(), rows = get();
      if (d != static_cast<uint64_t>(width) || rows != count)
        throw Error(ErrorCode::kCorruptStore, "index file does not hold a compressed index of its ids");
      std::vector<char> padding(aligned(at) - at);
      read_bytes(padding.data(), padding.size());
      const size_t bytes = count * d * sizeof(uint16_t);
      if (bytes != size - at)
        throw Error(ErrorCode::kCorruptStore, "index file is corrupt: its float16 copies do not end it");
      // The copies (most of the file) stay in it, mapped, when it is a file; else they are read.
      const bool mapped = map_fd >= 0 && at % static_cast<size_t>(::sysconf(_SC_PAGESIZE)) == 0 &&
                          copies->map(map_fd, at, count);
      if (!mapped) read_bytes(copies->append_uninitialised(count), bytes);
    }
    const auto live = count - static_cast<uint64_t>(std::count(ids.begin(), ids.end(), kDead));
    auto read = std::make_unique<CompressedIndex>(options.kind, options, std::move(parts), std::move(copies),
                                                  std::move(ids));
    // Its id map holds each live id once: fewer entries than live ids means one repeats.
    if (read->size() != live)
      throw Error(ErrorCode::kCorruptStore, "index file is corrupt: it repeats an id");
    return read;
  } catch (const faiss::FaissException& e) {
    throw Error(ErrorCode::kCorruptStore, std::string("index file is corrupt: ") + e.what());
  }
}

}  // namespace lookalike
