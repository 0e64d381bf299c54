#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

namespace lookalike {

// Lower-case hex SHA-256 of the bytes (OpenSSL). Used as the content key of catalog photos.
std::string sha256_hex(std::string_view bytes);

class Error;

// An Error for a failed system call on a file: kNoSpace for a full disk or quota, else kIoError;
// the message is `what` and strerror(errno_value).
Error io_error(const std::string& what, int errno_value);

// Reads a whole file; throws Error (kNotFound, kPayloadTooLarge over max_bytes, kIoError) with
// the path in the message.
std::string read_file(const std::string& path, size_t max_bytes);

// Writes via a temporary file in the same folder, fsync and rename, so readers see the old or
// the new content, never a torn file, even after kill -9 or power loss. kRenameOnly skips the
// fsync: still never torn after kill -9, for derived files (caches) that can be recomputed.
enum class Durability { kSynced, kRenameOnly };
void write_file_atomic(const std::string& path, std::string_view bytes,
                       Durability durability = Durability::kSynced);  // throws io_error()
// The same for content too large to hold at once (a 1M-item index snapshot is 2.2 GB): `produce`
// writes it in pieces through the sink it is given. Whatever `produce` throws is rethrown, with
// the temporary file removed and `path` untouched.
using ByteSink = std::function<void(const void* data, size_t size)>;
void write_file_atomic(const std::string& path, const std::function<void(const ByteSink&)>& produce,
                       Durability durability = Durability::kSynced);

}  // namespace lookalike
