#include <faiss/IndexFlat.h>
#include <faiss/impl/AuxIndexStructures.h>
#include <faiss/impl/FaissException.h>
#include <faiss/impl/IDSelector.h>
#include <faiss/impl/io.h>
#include <faiss/index_io.h>

#include <cstring>
#include <unordered_map>

#include "common/error.h"
#include "index/vector_index.h"

namespace lookalike {
using idx_t = faiss::Index::idx_t;
namespace {

// FAISS 1.7.3 cannot pass SearchParameters through IndexIDMap, so ids are kept here: the
// flat index addresses rows by position, `ids_` maps position -> id and `rows_` back.
class FlatIndex final : public VectorIndex {
 public:
  explicit FlatIndex(size_t dimension) : flat_(static_cast<idx_t>(dimension)) {}
  // A snapshot's index and ids (read_flat_index). The id map holds each id once, so a map
  // smaller than the ids means a damaged file repeats one.
  FlatIndex(std::unique_ptr<faiss::IndexFlatIP> flat, std::vector<int64_t> ids)
      : flat_(std::move(*flat)), ids_(std::move(ids)), tags_(ids_.size(), 0) {
    for (size_t i = 0; i < ids_.size(); ++i) rows_[ids_[i]] = static_cast<idx_t>(i);
    if (rows_.size() != ids_.size())
      throw Error(ErrorCode::kCorruptStore, "index file is corrupt: it repeats an id");
  }

  IndexKind kind() const override { return IndexKind::kFlat; }
  std::string parameters() const override { return "exact inner product, float32"; }
  size_t index_bytes() const override {
    // ids, tags and the id map
    return flat_.codes.size() + ids_.size() * (sizeof(int64_t) + sizeof(uint32_t) + 32);
  }
  size_t dimension() const override { return static_cast<size_t>(flat_.d); }
  size_t size() const override { return ids_.size(); }
  std::vector<int64_t> ids() const override { return ids_; }

  void add(size_t n, const int64_t* ids, const float* vectors) override {
    for (size_t i = 0; i < n; ++i) {
      if (rows_.count(ids[i]))
        throw Error(ErrorCode::kConflict, "vector id " + std::to_string(ids[i]) + " exists");
    }
    flat_.add(static_cast<idx_t>(n), vectors);
    for (size_t i = 0; i < n; ++i) {
      rows_[ids[i]] = static_cast<idx_t>(ids_.size());
      ids_.push_back(ids[i]);
    }
    tags_.resize(ids_.size(), 0);
  }

  void set_tags(size_t n, const int64_t* ids, const uint32_t* tags) override {
    for (size_t i = 0; i < n; ++i) {
      if (auto it = rows_.find(ids[i]); it != rows_.end()) tags_[static_cast<size_t>(it->second)] = tags[i];
    }
  }

  size_t remove(const std::vector<int64_t>& ids) override {
    std::vector<idx_t> positions;
    for (int64_t id : ids) {
      if (auto it = rows_.find(id); it != rows_.end()) positions.push_back(it->second);
    }
    if (positions.empty()) return 0;
    faiss::IDSelectorBatch selector(positions.size(), positions.data());
    flat_.remove_ids(selector);  // compacts rows, keeping the order of the survivors
    std::vector<int64_t> kept;
    std::vector<uint32_t> kept_tags;
    kept.reserve(ids_.size() - positions.size());
    kept_tags.reserve(kept.capacity());
    for (size_t i = 0; i < ids_.size(); ++i) {
      if (!selector.is_member(static_cast<idx_t>(i))) {
        kept.push_back(ids_[i]);
        kept_tags.push_back(tags_[i]);
      }
    }
    ids_ = std::move(kept);
    tags_ = std::move(kept_tags);
    rows_.clear();
    for (size_t i = 0; i < ids_.size(); ++i) rows_[ids_[i]] = static_cast<idx_t>(i);
    return positions.size();
  }

  std::vector<std::vector<Neighbour>> search(size_t n, const float* queries,
                                             const SearchParams& params) const override {
    std::vector<std::vector<Neighbour>> results(n);
    const size_t k = std::min(params.k, ids_.size());
    if (k == 0 || n == 0) return results;
    std::vector<uint8_t> bitmap;
    faiss::IDSelectorBitmap selector(0, nullptr);
    faiss::SearchParameters search_params;
    const bool filtered = params.accept || params.tag;
    if (filtered) {
      bitmap.assign((ids_.size() + 7) / 8, 0);
      for (size_t i = 0; i < ids_.size(); ++i) {
        if (params.tag && tags_[i] != params.tag) continue;
        if (!params.accept || params.accept(ids_[i])) bitmap[i >> 3] |= static_cast<uint8_t>(1u << (i & 7));
      }
      selector = faiss::IDSelectorBitmap(ids_.size(), bitmap.data());
      search_params.sel = &selector;
    }
    std::vector<float> scores(n * k);
    std::vector<idx_t> labels(n * k);
    flat_.search(static_cast<idx_t>(n), queries, static_cast<idx_t>(k), scores.data(), labels.data(),
                 filtered ? &search_params : nullptr);
    for (size_t q = 0; q < n; ++q) {
      for (size_t j = 0; j < k; ++j) {
        const idx_t row = labels[q * k + j];
        if (row < 0) break;  // fewer than k accepted rows
        results[q].push_back({ids_[static_cast<size_t>(row)], scores[q * k + j]});
      }
    }
    return results;
  }

  std::vector<float> vector(int64_t id) const override {
    auto it = rows_.find(id);
    if (it == rows_.end()) return {};
    std::vector<float> v(dimension());
    flat_.reconstruct(it->second, v.data());
    return v;
  }

  void write_unsealed(const ByteSink& out) const override {
    faiss::VectorIOWriter writer;
    faiss::write_index(&flat_, &writer);
    const uint64_t count = ids_.size();
    out(&count, sizeof count);
    out(ids_.data(), ids_.size() * sizeof(int64_t));
    out(writer.data.data(), writer.data.size());
  }

 private:
  faiss::IndexFlatIP flat_;
  std::vector<int64_t> ids_;
  std::vector<uint32_t> tags_;  // by position, as ids_
  std::unordered_map<int64_t, idx_t> rows_;
};

}  // namespace

std::unique_ptr<VectorIndex> make_flat_index(size_t dimension) {
  return std::make_unique<FlatIndex>(dimension);
}

std::unique_ptr<VectorIndex> read_flat_index(faiss::IOReader& in, size_t size) {
  uint64_t count = 0;
  if (size < sizeof count || in(&count, sizeof count, 1) != 1)
    throw Error(ErrorCode::kCorruptStore, "index file is truncated");
  if (count > (size - sizeof count) / sizeof(int64_t))
    throw Error(ErrorCode::kCorruptStore, "index file is truncated");
  std::vector<int64_t> ids(count);
  if (count > 0 && in(ids.data(), sizeof(int64_t), count) != count)
    throw Error(ErrorCode::kCorruptStore, "index file is truncated");
  std::unique_ptr<faiss::Index> index;
  try {
    index.reset(faiss::read_index(&in));
  } catch (const faiss::FaissException& e) {
    throw Error(ErrorCode::kCorruptStore, std::string("index file is corrupt: ") + e.what());
  }
  auto* flat = dynamic_cast<faiss::IndexFlatIP*>(index.get());
  if (!flat || static_cast<uint64_t>(flat->ntotal) != count) {
    throw Error(ErrorCode::kCorruptStore, "index file does not hold a flat inner-product index of its ids");
  }
  index.release();
  return std::make_unique<FlatIndex>(std::unique_ptr<faiss::IndexFlatIP>(flat), std::move(ids));
}

}  // namespace lookalike
