#include <faiss/impl/io.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <new>
#include <stdexcept>

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

size_t training_rows(const IndexOptions& options, size_t n) {
  return std::min(n, options.training_sample);
}

namespace {
std::vector<float> training_sample(size_t dimension, size_t n, const float* vectors, size_t rows) {
  std::vector<float> sample(rows * dimension);
  for (size_t i = 0; i < rows; ++i) {
    const size_t row = training_row(i, n, rows);
    std::memcpy(sample.data() + i * dimension, vectors + row * dimension, dimension * sizeof(float));
  }
  return sample;
}
}  // namespace

std::unique_ptr<VectorIndex> make_index(const IndexOptions& options, size_t dimension, size_t n,
                                        size_t sample_n, const float* sample) {
  const IndexKind kind = resolve_index_kind(options, n);
  if (kind == IndexKind::kFlat) return make_flat_index(dimension);
  return make_compressed_index(options, kind, dimension, n, sample_n, sample);
}

std::unique_ptr<VectorIndex> build_index(const IndexOptions& options, size_t dimension, size_t n,
                                         const int64_t* ids, const float* vectors) {
  std::vector<float> sample;
  if (resolve_index_kind(options, n) != IndexKind::kFlat)
    sample = training_sample(dimension, n, vectors, training_rows(options, n));
  auto index =
      make_index(options, dimension, n, sample.size() / std::max<size_t>(dimension, 1), sample.data());
  index->add(n, ids, vectors);
  return index;
}

namespace {
// A damaged snapshot can hold a FAISS array length that no machine can allocate (FAISS accepts up
// to 2^40 values): that is a corrupt file like any other, which the caller rebuilds.
std::unique_ptr<VectorIndex> read_index(faiss::IOReader& in, const char* head, size_t head_size,
                                        size_t size) {
  try {
    return is_compressed_index(head, head_size) ? read_compressed_index(in, size) : read_flat_index(in, size);
  } catch (const std::bad_alloc&) {
    throw Error(ErrorCode::kCorruptStore,
                "index file is corrupt: it declares more data than memory can hold");
  } catch (const std::length_error&) {
    throw Error(ErrorCode::kCorruptStore,
                "index file is corrupt: it declares more data than memory can hold");
  }
}
}  // namespace

std::unique_ptr<VectorIndex> deserialize_index(const std::string& bytes) {
  faiss::VectorIOReader in;
  in.data.assign(bytes.begin(), bytes.end());
  return read_index(in, bytes.data(), bytes.size(), bytes.size());
}

std::unique_ptr<VectorIndex> load_index_file(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) throw Error(ErrorCode::kNotFound, "no such file: " + path);
  const auto size = static_cast<size_t>(std::filesystem::file_size(path, ec));
  if (ec) throw Error(ErrorCode::kIoError, "cannot stat " + path + ": " + ec.message());
  std::unique_ptr<FILE, int (*)(FILE*)> file(std::fopen(path.c_str(), "rb"), &std::fclose);
  if (!file) throw Error(ErrorCode::kIoError, "cannot open " + path + ": " + std::strerror(errno));
  char head[16] = {};
  const size_t got = std::fread(head, 1, sizeof head, file.get());
  std::rewind(file.get());
  faiss::FileIOReader in(file.get());
  return read_index(in, head, got, size);
}

}  // namespace lookalike
