// An httplib::Server whose connections read every request through a byte budget and a deadline.
//
// cpp-httplib 0.11 bounds a request body only when it comes with Content-Length: a chunked
// body, a body without length (read until the peer closes) and a header line are read whole,
// whatever their size, and a gzip/brotli body is inflated without limit. Here each connection
// reads through BoundedStream, which fails a read once the request (line, headers and body as
// they travel on the wire, any framing) passes `max_request_bytes` or its deadline, so no
// request ever holds more than the budget in memory. The refused connection is then closed
// (after its answer), because the unread rest of its body cannot be told from a next request.
#pragma once

#include <httplib.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <string>

namespace lookalike {

struct ConnectionLimits {
  size_t max_request_bytes = (10 << 20) + (128 << 10);  // request line + headers + body
  std::chrono::seconds request_timeout{60};             // first byte of a request to its last byte
  std::chrono::seconds idle_timeout{5};                 // keep-alive wait for the next request
  std::chrono::seconds io_timeout{30};                  // one read or write without progress
  size_t max_requests_per_connection = 10000;
  // All requests together: what they have read and not yet finished with. Bounds the memory
  // held by request bodies whatever the number of connections; past it, a read is refused.
  size_t max_in_flight_bytes = size_t{1} << 30;
};

// Why the calling thread's current request could not be read whole (for the error handler).
enum class ReadRefusal { kNone, kTooLarge, kTimedOut, kBusy };

class BoundedServer : public httplib::Server {
 public:
  explicit BoundedServer(ConnectionLimits limits);

  // On a request thread: what stopped the request's read, if anything.
  static ReadRefusal current_refusal();
  // The answer to a refusal: status and a JSON error body {"error": {"code", "message"}}.
  static int refusal_status(ReadRefusal refusal);
  static std::string current_refusal_json();
  // On a request thread: close the connection once the answer is written, e.g. when the
  // answer refuses a body that was never read.
  static void close_after_response();

 private:
  bool process_and_close_socket(socket_t sock) override;

  ConnectionLimits limits_;
  std::atomic<size_t> in_flight_bytes_{0};
};

}  // namespace lookalike
