#include "common/files.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/error.h"

namespace lookalike {

Error io_error(const std::string& what, int errno_value) {
  const bool full = errno_value == ENOSPC || errno_value == EDQUOT;
  return Error(full ? ErrorCode::kNoSpace : ErrorCode::kIoError, what + ": " + std::strerror(errno_value));
}

std::string sha256_hex(std::string_view bytes) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (EVP_Digest(bytes.data(), bytes.size(), digest, &length, EVP_sha256(), nullptr) != 1) {
    throw Error(ErrorCode::kInternal, "SHA-256 failed");
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(length * 2);
  for (unsigned int i = 0; i < length; ++i) {
    hex.push_back(kHex[digest[i] >> 4]);
    hex.push_back(kHex[digest[i] & 15]);
  }
  return hex;
}

std::string read_file(const std::string& path, size_t max_bytes) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    throw Error(ErrorCode::kNotFound, "no such file: " + path);
  }
  const auto size = std::filesystem::file_size(path, ec);
  if (ec) throw Error(ErrorCode::kIoError, "cannot stat " + path + ": " + ec.message());
  if (size > max_bytes) {
    throw Error(ErrorCode::kPayloadTooLarge, path + " is " + std::to_string(size) +
                                                 " bytes, over the limit of " + std::to_string(max_bytes));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(ErrorCode::kIoError, "cannot open " + path + ": " + std::strerror(errno));
  std::string bytes(size, '\0');
  in.read(bytes.data(), static_cast<std::streamsize>(size));
  if (!in) throw Error(ErrorCode::kIoError, "cannot read " + path);
  return bytes;
}

void write_file_atomic(const std::string& path, std::string_view bytes, Durability durability) {
  write_file_atomic(
      path, [bytes](const ByteSink& write) { write(bytes.data(), bytes.size()); }, durability);
}

void write_file_atomic(const std::string& path, const std::function<void(const ByteSink&)>& produce,
                       Durability durability) {
  // Unique per process and per call: two threads of one process may write the same path at once
  // (two state rebuilds of the same revision), and must not share a temporary file.
  static std::atomic<uint64_t> next_tmp{0};
  const std::string tmp = path + ".tmp-" + std::to_string(::getpid()) + "-" + std::to_string(next_tmp++);
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw io_error("cannot create " + tmp, errno);
  auto write = [&](const void* data, size_t size) {
    for (size_t written = 0; written < size;) {
      const ssize_t n = ::write(fd, static_cast<const char*>(data) + written, size - written);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) throw io_error("cannot write " + tmp, errno);
      written += static_cast<size_t>(n);
    }
  };
  try {
    produce(write);
  } catch (...) {
    ::close(fd);
    ::unlink(tmp.c_str());
    throw;
  }
  const bool synced = durability == Durability::kRenameOnly || ::fsync(fd) == 0;
  // close() reports a delayed write error (NFS, some full-disk cases) that write() did not.
  const bool closed = ::close(fd) == 0;
  if (!synced || !closed || ::rename(tmp.c_str(), path.c_str()) != 0) {
    const int why = errno;
    ::unlink(tmp.c_str());
    throw io_error("cannot replace " + path, why);
  }
}

}  // namespace lookalike
