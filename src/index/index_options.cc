#include <faiss/impl/io.h>
#include <zlib.h>

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
std::unique_ptr<VectorIndex> read_index(faiss::IOReader& in, const char* head, size_t head_size, size_t size,
                                        int map_fd = -1) {
  try {
    return is_compressed_index(head, head_size) ? read_compressed_index(in, size, map_fd)
                                                : read_flat_index(in, size);
  } catch (const std::bad_alloc&) {
    throw Error(ErrorCode::kCorruptStore,
                "index file is corrupt: it declares more data than memory can hold");
  } catch (const std::length_error&) {
    throw Error(ErrorCode::kCorruptStore,
                "index file is corrupt: it declares more data than memory can hold");
  }
}
}  // namespace

namespace {
// The seal after an index's bytes: this magic, then the CRC-32 (zlib) of those bytes as a
// little-endian uint64. CRC-32 reads about 4 GB/s here, 0.5 s for a 1M-item snapshot.
constexpr char kSealMagic[8] = {'L', 'K', 'S', 'E', 'A', 'L', '0', '1'};
constexpr size_t kSealSize = sizeof kSealMagic + sizeof(uint64_t);

uint64_t crc_of(uint64_t crc, const void* data, size_t size) {
  // zlib takes a null buffer as "start again" and returns the initial value: an empty piece
  // (the ids of an empty index) must leave the running CRC as it is.
  if (size == 0) return crc;
  return crc32_z(static_cast<uLong>(crc), static_cast<const Bytef*>(data), size);
}

std::string seal(uint64_t crc) {
  std::string trailer(kSealMagic, sizeof kSealMagic);
  trailer.append(reinterpret_cast<const char*>(&crc), sizeof crc);
  return trailer;
}

// The CRC a trailer states; throws when it is no seal.
uint64_t sealed_crc(const char* trailer) {
  if (std::memcmp(trailer, kSealMagic, sizeof kSealMagic) != 0)
    throw Error(ErrorCode::kCorruptStore,
                "index file is not sealed (written by an older version, or damaged)");
  uint64_t crc = 0;
  std::memcpy(&crc, trailer + sizeof kSealMagic, sizeof crc);
  return crc;
}

Error damaged() {
  return Error(ErrorCode::kCorruptStore, "index file is damaged: its checksum does not match");
}
}  // namespace

std::string VectorIndex::serialize() const {
  std::string bytes;
  write([&bytes](const void* data, size_t size) { bytes.append(static_cast<const char*>(data), size); });
  return bytes;
}

void VectorIndex::write(const ByteSink& out) const {
  uint64_t crc = 0;
  write_unsealed([&](const void* data, size_t size) {
    crc = crc_of(crc, data, size);
    out(data, size);
  });
  const std::string trailer = seal(crc);
  out(trailer.data(), trailer.size());
}

void save_index_file(const VectorIndex& index, const std::string& path) {
  write_file_atomic(path, [&index](const ByteSink& out) { index.write(out); });
}

std::unique_ptr<VectorIndex> deserialize_index(const std::string& bytes) {
  if (bytes.size() < kSealSize) throw Error(ErrorCode::kCorruptStore, "index file is truncated");
  const size_t size = bytes.size() - kSealSize;
  if (sealed_crc(bytes.data() + size) != crc_of(0, bytes.data(), size)) throw damaged();
  faiss::VectorIOReader in;
  in.data.assign(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(size));
  return read_index(in, bytes.data(), size, size);
}

std::unique_ptr<VectorIndex> load_index_file(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) throw Error(ErrorCode::kNotFound, "no such file: " + path);
  const auto file_size = static_cast<size_t>(std::filesystem::file_size(path, ec));
  if (ec) throw Error(ErrorCode::kIoError, "cannot stat " + path + ": " + ec.message());
  if (file_size < kSealSize) throw Error(ErrorCode::kCorruptStore, "index file is truncated");
  const size_t size = file_size - kSealSize;
  std::unique_ptr<FILE, int (*)(FILE*)> file(std::fopen(path.c_str(), "rb"), &std::fclose);
  if (!file) throw Error(ErrorCode::kIoError, "cannot open " + path + ": " + std::strerror(errno));
  // The checksum first, over the whole file, so that nothing damaged reaches the readers.
  std::vector<char> chunk(1 << 20);
  uint64_t crc = 0;
  for (size_t done = 0; done < size;) {
    const size_t n = std::fread(chunk.data(), 1, std::min(chunk.size(), size - done), file.get());
    if (n == 0) throw Error(ErrorCode::kIoError, "cannot read " + path);
    crc = crc_of(crc, chunk.data(), n);
    done += n;
  }
  char trailer[kSealSize];
  if (std::fread(trailer, 1, kSealSize, file.get()) != kSealSize)
    throw Error(ErrorCode::kIoError, "cannot read " + path);
  if (sealed_crc(trailer) != crc) throw damaged();
  std::rewind(file.get());
  char head[16] = {};
  const size_t got = std::fread(head, 1, std::min(sizeof head, size), file.get());
  std::rewind(file.get());
  faiss::FileIOReader in(file.get());
  return read_index(in, head, got, size, fileno(file.get()));
}

}  // namespace lookalike
