#include "common/error.h"

namespace lookalike {

std::string_view error_code_name(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInvalidArgument:
      return "invalid_argument";
    case ErrorCode::kNotFound:
      return "not_found";
    case ErrorCode::kUnsupportedMedia:
      return "unsupported_media_type";
    case ErrorCode::kUnprocessable:
      return "unprocessable_image";
    case ErrorCode::kPayloadTooLarge:
      return "payload_too_large";
    case ErrorCode::kUnauthorized:
      return "unauthorized";
    case ErrorCode::kConflict:
      return "conflict";
    case ErrorCode::kNotReady:
      return "not_ready";
    case ErrorCode::kBusy:
      return "busy";
    case ErrorCode::kNoSpace:
      return "insufficient_storage";
    case ErrorCode::kIoError:
      return "io_error";
    case ErrorCode::kCorruptStore:
      return "corrupt_store";
    case ErrorCode::kCancelled:
      return "cancelled";
    case ErrorCode::kInternal:
      return "internal";
  }
  return "internal";
}

}  // namespace lookalike
