#include <faiss/impl/io.h>
#include <fcntl.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <new>
#include <stdexcept>
#include <utility>

#include "common/error.h"
#include "common/files.h"
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
// The seal after an index's bytes. Version 2 (32 bytes): the length of the part checked at load,
// its CRC-32 (zlib), the CRC-32 of the part sealed apart (the rest), then the magic "LKSEAL02",
// each a little-endian uint64. Version 1 (an older build's): the magic "LKSEAL01", then the
// CRC-32 of all the bytes. A version-1 seal never ends in the version-2 magic: its last 8 bytes
// are a CRC-32, whose top four bytes are zero. CRC-32 reads about 4 GB/s here.
constexpr char kSealMagicV1[8] = {'L', 'K', 'S', 'E', 'A', 'L', '0', '1'};
constexpr char kSealMagic[8] = {'L', 'K', 'S', 'E', 'A', 'L', '0', '2'};
constexpr size_t kSealSizeV1 = sizeof kSealMagicV1 + sizeof(uint64_t);
constexpr size_t kSealSize = sizeof kSealMagic + 3 * sizeof(uint64_t);

uint64_t crc_of(uint64_t crc, const void* data, size_t size) {
  // zlib takes a null buffer as "start again" and returns the initial value: an empty piece
  // (the ids of an empty index) must leave the running CRC as it is.
  if (size == 0) return crc;
  return crc32_z(static_cast<uLong>(crc), static_cast<const Bytef*>(data), size);
}

// What a seal states: bytes [0, checked) have CRC checked_crc, bytes [checked, size) apart_crc.
struct Seal {
  uint64_t size = 0;  // the index's bytes, the seal left out
  uint64_t checked = 0, checked_crc = 0, apart_crc = 0;
};

// The seal that ends the `total` bytes whose last kSealSize (or fewer) are `tail`, ending the
// file; throws when there is none.
Seal read_seal(const char* tail, size_t tail_size, uint64_t total) {
  auto word = [](const char* at) {
    uint64_t v = 0;
    std::memcpy(&v, at, sizeof v);
    return v;
  };
  Seal seal;
  if (tail_size >= kSealSize &&
      std::memcmp(tail + tail_size - sizeof kSealMagic, kSealMagic, sizeof kSealMagic) == 0) {
    const char* at = tail + tail_size - kSealSize;
    seal.size = total - kSealSize;
    seal.checked = word(at);
    seal.checked_crc = word(at + 8);
    seal.apart_crc = word(at + 16);
    // Nothing apart has the CRC of nothing: any other value is a damaged seal.
    if (seal.checked > seal.size || (seal.checked == seal.size && seal.apart_crc != 0))
      throw Error(ErrorCode::kCorruptStore, "index file is damaged: its seal does not fit it");
    return seal;
  }
  const char* at = tail + tail_size - std::min(tail_size, kSealSizeV1);
  if (tail_size < kSealSizeV1 || std::memcmp(at, kSealMagicV1, sizeof kSealMagicV1) != 0)
    throw Error(ErrorCode::kCorruptStore,
                "index file is not sealed (written by an older version, or damaged)");
  seal.size = seal.checked = total - kSealSizeV1;
  seal.checked_crc = word(at + sizeof kSealMagicV1);
  return seal;
}

Error damaged() {
  return Error(ErrorCode::kCorruptStore, "index file is damaged: its checksum does not match");
}

// A CRC-32 of `size` bytes of fd from `offset`, read in 1 MB pieces.
uint64_t file_crc(int fd, uint64_t offset, uint64_t size, const std::string& what) {
  std::vector<char> chunk(1 << 20);
  uint64_t crc = 0;
  for (uint64_t done = 0; done < size;) {
    const auto n =
        ::pread(fd, chunk.data(), static_cast<size_t>(std::min<uint64_t>(chunk.size(), size - done)),
                static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) throw io_error("cannot read " + what, n < 0 ? errno : EIO);
    crc = crc_of(crc, chunk.data(), static_cast<size_t>(n));
    done += static_cast<uint64_t>(n);
  }
  return crc;
}
}  // namespace

std::string VectorIndex::serialize() const {
  std::string bytes;
  write([&bytes](const void* data, size_t size) { bytes.append(static_cast<const char*>(data), size); });
  return bytes;
}

void VectorIndex::write(const ByteSink& out) const {
  uint64_t words[4] = {0, 0, 0, 0};  // the version-2 seal: checked bytes, their CRC, the rest's
  write_unsealed([&](const void* data, size_t size) {
    words[0] += size;
    words[1] = crc_of(words[1], data, size);
    out(data, size);
  });
  write_sealed_apart([&](const void* data, size_t size) {
    words[2] = crc_of(words[2], data, size);
    out(data, size);
  });
  std::memcpy(&words[3], kSealMagic, sizeof kSealMagic);
  out(words, sizeof words);
}

void save_index_file(const VectorIndex& index, const std::string& path) {
  write_file_atomic(path, [&index](const ByteSink& out) { index.write(out); });
}

std::unique_ptr<VectorIndex> deserialize_index(const std::string& bytes) {
  const size_t tail = std::min(bytes.size(), kSealSize);
  const Seal seal = read_seal(bytes.data() + bytes.size() - tail, tail, bytes.size());
  if (seal.checked_crc != crc_of(0, bytes.data(), seal.checked) ||
      (seal.checked < seal.size &&
       seal.apart_crc != crc_of(0, bytes.data() + seal.checked, seal.size - seal.checked)))
    throw damaged();
  faiss::VectorIOReader in;
  in.data.assign(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(seal.size));
  return read_index(in, bytes.data(), seal.size, seal.size);
}

UncheckedPart::UncheckedPart(UncheckedPart&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)), offset_(other.offset_), size_(other.size_), crc_(other.crc_) {}

UncheckedPart& UncheckedPart::operator=(UncheckedPart&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = std::exchange(other.fd_, -1);
    offset_ = other.offset_;
    size_ = other.size_;
    crc_ = other.crc_;
  }
  return *this;
}

UncheckedPart::~UncheckedPart() {
  if (fd_ >= 0) ::close(fd_);
}

bool UncheckedPart::intact() const {
  return file_crc(fd_, offset_, size_, "the index snapshot's float16 copies") == crc_;
}

IndexFile open_index_file(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) throw Error(ErrorCode::kNotFound, "no such file: " + path);
  const auto file_size = static_cast<uint64_t>(std::filesystem::file_size(path, ec));
  if (ec) throw Error(ErrorCode::kIoError, "cannot stat " + path + ": " + ec.message());
  std::unique_ptr<FILE, int (*)(FILE*)> file(std::fopen(path.c_str(), "rb"), &std::fclose);
  if (!file) throw Error(ErrorCode::kIoError, "cannot open " + path + ": " + std::strerror(errno));
  const int fd = fileno(file.get());
  char tail[kSealSize];
  const size_t tail_size = static_cast<size_t>(std::min<uint64_t>(file_size, kSealSize));
  if (::pread(fd, tail, tail_size, static_cast<off_t>(file_size - tail_size)) !=
      static_cast<ssize_t>(tail_size))
    throw Error(ErrorCode::kCorruptStore, "index file is truncated");
  const Seal seal = read_seal(tail, tail_size, file_size);
  // The checked part first, so that nothing damaged reaches the readers; the part sealed apart
  // is left to the caller.
  if (file_crc(fd, 0, seal.checked, path) != seal.checked_crc) throw damaged();
  char head[16] = {};
  const size_t got =
      std::fread(head, 1, static_cast<size_t>(std::min<uint64_t>(sizeof head, seal.size)), file.get());
  std::rewind(file.get());
  faiss::FileIOReader in(file.get());
  IndexFile read;
  read.index = read_index(in, head, got, static_cast<size_t>(seal.size), fd);
  if (seal.checked < seal.size) {
    const int own = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (own < 0) throw io_error("cannot keep " + path + " open", errno);
    read.unchecked.emplace(own, seal.checked, seal.size - seal.checked, seal.apart_crc);
  }
  return read;
}

std::unique_ptr<VectorIndex> load_index_file(const std::string& path) {
  IndexFile read = open_index_file(path);
  if (read.unchecked && !read.unchecked->intact()) throw damaged();
  return std::move(read.index);
}

}  // namespace lookalike
