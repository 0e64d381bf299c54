#include <algorithm>

#include "common/error.h"
#include "index/vector_index.h"

namespace lookalike {

const char* index_kind_name(IndexKind kind) {
  switch (kind) {
    case IndexKind::kAuto:
      return "auto";
    case IndexKind::kFlat:
      return "flat";
    case IndexKind::kIvfPq:
      return "ivfpq";
    case IndexKind::kHnsw:
      return "hnsw";
  }
  return "auto";
}

IndexKind parse_index_kind(const std::string& name) {
  for (IndexKind kind : {IndexKind::kAuto, IndexKind::kFlat, IndexKind::kIvfPq, IndexKind::kHnsw}) {
    if (name == index_kind_name(kind)) return kind;
  }
  throw Error(ErrorCode::kInvalidArgument,
              "unknown index type '" + name + "'; use auto, flat, ivfpq or hnsw");
}

IndexKind resolve_index_kind(const IndexOptions& options, size_t items) {
  // Codes need a few vectors to train on (k-means cannot make more centroids than points).
  constexpr size_t kMinCompressedItems = 16;
  if (options.kind != IndexKind::kAuto) return items < kMinCompressedItems ? IndexKind::kFlat : options.kind;
  return items < options.exact_below ? IndexKind::kFlat : IndexKind::kIvfPq;
}

std::unique_ptr<VectorIndex> build_index(const IndexOptions& options, size_t dimension, size_t n,
                                         const int64_t* ids, const float* vectors) {
  const IndexKind kind = resolve_index_kind(options, n);
  if (kind == IndexKind::kFlat) {
    auto index = make_flat_index(dimension);
    index->add(n, ids, vectors);
    return index;
  }
  return build_compressed_index(options, kind, dimension, n, ids, vectors);
}

std::unique_ptr<VectorIndex> deserialize_index(const std::string& bytes) {
  return is_compressed_index(bytes) ? deserialize_compressed_index(bytes) : deserialize_flat_index(bytes);
}

}  // namespace lookalike
