// Errors that end a request. Every layer throws lookalike::Error with a stable code; the CLI
// turns it into a message and exit status, the HTTP layer into a JSON body and status code.
// Expected failures inside a loop (a corrupt photo during an import) are return values instead.
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>

namespace lookalike {

enum class ErrorCode {
  kInvalidArgument,   // malformed request, flag or option
  kNotFound,          // unknown id, category, file or route
  kUnsupportedMedia,  // not an image, or a format we do not decode
  kUnprocessable,     // a real image we refuse: too many pixels, corrupt data
  kPayloadTooLarge,   // body over the configured limit
  kUnauthorized,      // missing or wrong admin token
  kConflict,          // id already exists
  kNotReady,          // catalog empty or still loading
  kBusy,              // a shared resource is held by another process or request; retry later
  kNoSpace,           // the disk (or quota) is full; nothing half-written was kept
  kIoError,           // reading or writing a file failed for another reason
  kCorruptStore,      // data directory unreadable or inconsistent
  kCancelled,         // stopped on request (Ctrl-C); nothing half-done was kept
  kInternal,          // a bug or an environment failure
};

std::string_view error_code_name(ErrorCode code);

class Error : public std::runtime_error {
 public:
  Error(ErrorCode code, const std::string& message) : std::runtime_error(message), code_(code) {}
  ErrorCode code() const { return code_; }

 private:
  ErrorCode code_;
};

}  // namespace lookalike
