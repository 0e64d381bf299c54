// Nearest-neighbour search over unit-length descriptors (inner product = cosine).
// Vectors cross this boundary as row-major float arrays: n rows of dimension() floats,
// owned by the caller and only read during the call.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace lookalike {

struct SearchParams {
  size_t k = 12;
  // When set, only ids for which it returns true can be returned (category restriction and
  // metadata filters). Evaluated once per stored vector per query.
  std::function<bool(int64_t)> accept;
};

struct Neighbour {
  int64_t id;
  float score;  // inner product; 1 = identical direction
};

class VectorIndex {
 public:
  virtual ~VectorIndex() = default;
  virtual size_t dimension() const = 0;
  virtual size_t size() const = 0;
  // Adds n vectors with their ids (ids must be unique and not already present).
  virtual void add(size_t n, const int64_t* ids, const float* vectors) = 0;
  // Removes the ids present; returns how many were removed.
  virtual size_t remove(const std::vector<int64_t>& ids) = 0;
  // For each of the n queries, up to params.k neighbours by decreasing score.
  virtual std::vector<std::vector<Neighbour>> search(size_t n, const float* queries,
                                                     const SearchParams& params) const = 0;
  // Every stored id, in storage order.
  virtual std::vector<int64_t> ids() const = 0;
  // The stored vector for `id` (dimension() floats), or empty when absent.
  virtual std::vector<float> vector(int64_t id) const = 0;
  virtual std::string serialize() const = 0;
};

// Exact search (FAISS IndexFlatIP). At catalog sizes of 1e4..1e6 rows a flat scan costs
// 0.1..50 ms and needs no training, and FAISS 1.7.3's flat index honours an IDSelector.
std::unique_ptr<VectorIndex> make_flat_index(size_t dimension);
// Throws Error(kCorruptStore) when the bytes are not a flat index written by serialize().
std::unique_ptr<VectorIndex> deserialize_flat_index(const std::string& bytes);

}  // namespace lookalike
