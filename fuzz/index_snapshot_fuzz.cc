// libFuzzer target: an index snapshot file (index/*.faiss in the data directory) is read at every
// start of `serve`, and a damaged one must be refused with lookalike::Error (the caller then
// rebuilds it from the catalog), never crash or exhaust memory. What a read index offers is then
// used as serving uses it: its size, ids, stored vectors and a search.
//
// Behind the seal (a CRC-32 of the bytes, index/vector_index.h) lie FAISS's own readers, which
// allocate whatever lengths the bytes declare: fuzzed unsealed, they ran out of memory within
// seconds, and a damaged HNSW graph crashed the first search. So a snapshot is checked against
// its seal before FAISS sees it (and its graph and lists are walked once when read); mutated
// inputs stop at the seal, while the seeds (fuzz/corpus/index_snapshot: flat, IVF-PQ with 8-bit
// codes and with fast-scan 4-bit ones, HNSW, IVF-PQ in two parts, all sealed, each in the first
// layout and in the current one, "-v2", whose float16 copies end the file) go through every
// reader and a search.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "common/error.h"
#include "index/vector_index.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::unique_ptr<lookalike::VectorIndex> index;
  try {
    index = lookalike::deserialize_index(std::string(reinterpret_cast<const char*>(data), size));
  } catch (const lookalike::Error&) {
    return 0;
  }
  const size_t dimension = index->dimension();
  const std::vector<int64_t> ids = index->ids();
  if (ids.size() != index->size()) __builtin_trap();
  if (!ids.empty() && index->vector(ids.front()).size() != dimension) __builtin_trap();
  const std::vector<float> query(dimension, 0.5f);
  lookalike::SearchParams params;
  params.k = 4;
  const auto found = index->search(1, query.data(), params);
  if (found.size() != 1 || found[0].size() > params.k) __builtin_trap();
  for (const auto& n : found[0]) {
    if (index->vector(n.id).size() != dimension) __builtin_trap();
  }
  return 0;
}
