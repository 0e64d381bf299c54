#pragma once

#include <string>
#include <string_view>

namespace lookalike {

// Lower-case hex SHA-256 of the bytes (OpenSSL). Used as the content key of catalog photos.
std::string sha256_hex(std::string_view bytes);

// Reads a whole file; throws Error(kNotFound / kInvalidArgument) with the path in the message.
std::string read_file(const std::string& path, size_t max_bytes);

// Writes via a temporary file in the same folder, fsync and rename, so readers see the old or
// the new content, never a torn file, even after kill -9 or power loss. kRenameOnly skips the
// fsync: still never torn after kill -9, for derived files (caches) that can be recomputed.
enum class Durability { kSynced, kRenameOnly };
void write_file_atomic(const std::string& path, std::string_view bytes,
                       Durability durability = Durability::kSynced);

}  // namespace lookalike
