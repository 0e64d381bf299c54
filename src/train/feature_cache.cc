#include "train/feature_cache.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>

#include <opencv2/core.hpp>

#include "common/error.h"
#include "common/files.h"

namespace lookalike {
namespace fs = std::filesystem;
namespace {

constexpr char kMagic[8] = {'L', 'K', 'F', 'M', 'A', 'P', '1', '6'};
struct Header {
  char magic[8];
  int32_t shape[3];
  int32_t reserved;
};

}  // namespace

FeatureCache::FeatureCache(std::string directory, std::array<int, 3> shape)
    : directory_(std::move(directory)), shape_(shape) {}

size_t FeatureCache::bytes_per_map() const {
  return sizeof(Header) + values() * 2;
}

namespace {

std::string map_path(const std::string& directory, const std::string& sha256, bool flipped) {
  return (fs::path(directory) / sha256.substr(0, 2) / (sha256 + (flipped ? ".flip.f16" : ".f16"))).string();
}

}  // namespace

std::string FeatureCache::path(const std::string& sha256, bool flipped) const {
  return map_path(directory_, sha256, flipped);
}

void FeatureCache::erase(const std::string& directory, const std::string& sha256) {
  std::error_code ec;
  for (bool flipped : {false, true}) fs::remove(map_path(directory, sha256, flipped), ec);
}

bool FeatureCache::contains(const std::string& sha256, bool flipped) const {
  std::error_code ec;
  return fs::file_size(path(sha256, flipped), ec) == bytes_per_map() && !ec;
}

void FeatureCache::put(const std::string& sha256, bool flipped, const float* map) const {
  Header header{};
  std::memcpy(header.magic, kMagic, sizeof(kMagic));
  for (int i = 0; i < 3; ++i) header.shape[i] = shape_[i];
  std::string bytes(bytes_per_map(), '\0');
  std::memcpy(bytes.data(), &header, sizeof(header));
  const cv::Mat source(1, static_cast<int>(values()), CV_32F, const_cast<float*>(map));
  cv::Mat half(1, static_cast<int>(values()), CV_16F, bytes.data() + sizeof(header));
  source.convertTo(half, CV_16F);
  const std::string file = path(sha256, flipped);
  fs::create_directories(fs::path(file).parent_path());
  write_file_atomic(file, bytes, Durability::kRenameOnly);
}

bool FeatureCache::get(const std::string& sha256, bool flipped, float* out) const {
  const std::string file = path(sha256, flipped);
  const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  struct stat st {};
  const size_t expected = bytes_per_map();
  if (::fstat(fd, &st) != 0 || static_cast<size_t>(st.st_size) != expected) {
    ::close(fd);
    return false;
  }
  // MAP_POPULATE reads the whole map in one go: faulting it in page by page costs many small
  // disk reads when the file has left the page cache.
  void* mapped = ::mmap(nullptr, expected, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
  ::close(fd);
  if (mapped == MAP_FAILED) return false;
  Header header;
  std::memcpy(&header, mapped, sizeof(header));
  const bool ok = std::memcmp(header.magic, kMagic, sizeof(kMagic)) == 0 && header.shape[0] == shape_[0] &&
                  header.shape[1] == shape_[1] && header.shape[2] == shape_[2];
  if (ok) {
    const cv::Mat half(1, static_cast<int>(values()), CV_16F, static_cast<char*>(mapped) + sizeof(Header));
    cv::Mat target(1, static_cast<int>(values()), CV_32F, out);
    half.convertTo(target, CV_32F);
  }
  ::munmap(mapped, expected);
  return ok;
}

size_t FeatureCache::count() const {
  size_t n = 0;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(directory_, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    n += it->is_regular_file() && it->path().extension() == ".f16";
  }
  return n;
}

}  // namespace lookalike
