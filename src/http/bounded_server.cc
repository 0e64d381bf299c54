#include "http/bounded_server.h"

#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <climits>
#include <cstring>

#include <nlohmann/json.hpp>

namespace lookalike {
namespace {

using Clock = std::chrono::steady_clock;

struct ConnectionState {
  const ConnectionLimits* limits = nullptr;
  ReadRefusal refusal = ReadRefusal::kNone;
  bool close = false;
};

// The connection the calling worker thread is serving: httplib runs a connection's requests,
// handlers included, on the thread that called process_and_close_socket.
thread_local ConnectionState* t_connection = nullptr;

// Waits until `fd` has `events` or the deadline passes; true when ready (POLLHUP and POLLERR
// count as ready: the next read or write reports them).
bool wait_for(int fd, short events, Clock::time_point deadline) {
  for (;;) {
    const auto now = Clock::now();
    if (now >= deadline) return false;
    // Rounded up: rounding down would give up a fraction of a millisecond before the deadline,
    // and the caller, finding the deadline not yet passed, would take the timeout for an error.
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - now).count();
    pollfd p{fd, events, 0};
    const int n = ::poll(&p, 1, static_cast<int>(std::min<long long>(left, INT_MAX)));
    if (n > 0) return true;
    if (n < 0 && errno != EINTR) return false;
  }
}

void address_of(int fd, bool peer, std::string& ip, int& port) {
  sockaddr_storage addr{};
  socklen_t len = sizeof addr;
  const int rc = peer ? ::getpeername(fd, reinterpret_cast<sockaddr*>(&addr), &len)
                      : ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  if (rc != 0) return;
  std::array<char, NI_MAXHOST> host{};
  std::array<char, NI_MAXSERV> service{};
  if (::getnameinfo(reinterpret_cast<sockaddr*>(&addr), len, host.data(), host.size(), service.data(),
                    service.size(), NI_NUMERICHOST | NI_NUMERICSERV) == 0) {
    ip = host.data();
    port = std::atoi(service.data());
  }
}

// A socket stream (as httplib's own, buffered) that counts what one request reads.
class BoundedStream final : public httplib::Stream {
 public:
  BoundedStream(int fd, const ConnectionLimits& limits, std::atomic<size_t>& in_flight,
                ConnectionState& state)
      : fd_(fd), limits_(limits), in_flight_(in_flight), state_(state) {}
  ~BoundedStream() override { in_flight_ -= used_; }

  void begin_request() {
    in_flight_ -= used_;
    used_ = 0;
    written_ = 0;
    deadline_ = Clock::now() + limits_.request_timeout;
  }
  bool answered() const { return written_ > 0; }
  bool has_buffered() const { return begin_ < end_; }

  bool is_readable() const override {
    return has_buffered() || wait_for(fd_, POLLIN, std::min(deadline_, Clock::now() + limits_.io_timeout));
  }
  bool is_writable() const override { return wait_for(fd_, POLLOUT, Clock::now() + limits_.io_timeout); }

  ssize_t read(char* out, size_t size) override {
    if (used_ >= limits_.max_request_bytes) {
      state_.refusal = ReadRefusal::kTooLarge;
      return -1;
    }
    if (!has_buffered() && !fill()) return -1;
    if (!has_buffered()) return 0;  // the peer closed
    const size_t n = std::min({size, end_ - begin_, limits_.max_request_bytes - used_});
    if (in_flight_.fetch_add(n) + n > limits_.max_in_flight_bytes) {
      in_flight_ -= n;
      state_.refusal = ReadRefusal::kBusy;
      return -1;
    }
    std::memcpy(out, buffer_.data() + begin_, n);
    begin_ += n;
    used_ += n;
    return static_cast<ssize_t>(n);
  }

  ssize_t write(const char* data, size_t size) override {
    if (!is_writable()) return -1;
    ssize_t n;
    do {
      n = ::send(fd_, data, size, MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    if (n > 0) written_ += static_cast<size_t>(n);
    return n;
  }

  void get_remote_ip_and_port(std::string& ip, int& port) const override { address_of(fd_, true, ip, port); }
  void get_local_ip_and_port(std::string& ip, int& port) const override { address_of(fd_, false, ip, port); }
  socket_t socket() const override { return fd_; }

 private:
  // Refills the buffer; false on error or deadline (recorded), true with an empty buffer at EOF.
  bool fill() {
    if (!is_readable()) {
      if (Clock::now() >= deadline_) state_.refusal = ReadRefusal::kTimedOut;
      return false;
    }
    ssize_t n;
    do {
      n = ::recv(fd_, buffer_.data(), buffer_.size(), 0);
    } while (n < 0 && errno == EINTR);
    if (n < 0) return false;
    begin_ = 0;
    end_ = static_cast<size_t>(n);
    return true;
  }

  int fd_;
  const ConnectionLimits& limits_;
  std::atomic<size_t>& in_flight_;
  ConnectionState& state_;
  std::array<char, 16384> buffer_{};
  size_t begin_ = 0, end_ = 0;
  size_t used_ = 0;
  size_t written_ = 0;
  Clock::time_point deadline_ = Clock::now();
};

// Closing a socket with unread data makes the kernel send a reset, which can destroy the answer
// before the client reads it; so stop sending, drain what the client still sends for a moment,
// then close (what nginx calls a lingering close).
void linger_and_close(int fd) {
  ::shutdown(fd, SHUT_WR);
  const auto deadline = Clock::now() + std::chrono::seconds(2);
  std::array<char, 16384> sink;
  size_t drained = 0;
  while (drained < (64u << 20) && wait_for(fd, POLLIN, deadline)) {
    const ssize_t n = ::recv(fd, sink.data(), sink.size(), 0);
    if (n <= 0) break;
    drained += static_cast<size_t>(n);
  }
  ::close(fd);
}

// When the request line itself was cut off, httplib answers nothing: say why here.
void answer_refusal(BoundedStream& stream) {
  const ReadRefusal refusal = BoundedServer::current_refusal();
  const std::string body = BoundedServer::current_refusal_json();
  const int status = BoundedServer::refusal_status(refusal);
  const char* reason = status == 413   ? "Payload Too Large"
                       : status == 408 ? "Request Timeout"
                                       : "Service Unavailable";
  const std::string head = "HTTP/1.1 " + std::to_string(status) + " " + reason +
                           "\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: " +
                           std::to_string(body.size()) + "\r\n\r\n";
  stream.write(head.data(), head.size());
  stream.write(body.data(), body.size());
}

}  // namespace

int BoundedServer::refusal_status(ReadRefusal refusal) {
  switch (refusal) {
    case ReadRefusal::kTooLarge:
      return 413;
    case ReadRefusal::kTimedOut:
      return 408;
    case ReadRefusal::kBusy:
      return 503;
    case ReadRefusal::kNone:
      break;
  }
  return 400;
}

std::string BoundedServer::current_refusal_json() {
  if (!t_connection || !t_connection->limits) return "";
  const ConnectionLimits& limits = *t_connection->limits;
  std::string code, message;
  switch (t_connection->refusal) {
    case ReadRefusal::kTooLarge:
      code = "payload_too_large";
      message = "the request is over the limit of " + std::to_string(limits.max_request_bytes >> 10) +
                " KB (the upload limit plus room for headers and form fields)";
      break;
    case ReadRefusal::kTimedOut:
      code = "request_timeout";
      message =
          "the request did not arrive whole within " + std::to_string(limits.request_timeout.count()) + " s";
      break;
    case ReadRefusal::kBusy:
      code = "busy";
      message = "too many uploads in flight; retry in a moment";
      break;
    case ReadRefusal::kNone:
      return "";
  }
  return nlohmann::json{{"error", {{"code", code}, {"message", message}}}}.dump();
}

BoundedServer::BoundedServer(ConnectionLimits limits) : limits_(limits) {}

ReadRefusal BoundedServer::current_refusal() {
  return t_connection ? t_connection->refusal : ReadRefusal::kNone;
}

void BoundedServer::close_after_response() {
  if (t_connection) t_connection->close = true;
}

bool BoundedServer::process_and_close_socket(socket_t sock) {
  ConnectionState state;
  state.limits = &limits_;
  t_connection = &state;
  BoundedStream stream(sock, limits_, in_flight_bytes_, state);
  bool ok = true;
  for (size_t served = 0; served < limits_.max_requests_per_connection; ++served) {
    // Waits in short slices so that a stopping server does not wait out every idle connection.
    const auto idle_until = Clock::now() + limits_.idle_timeout;
    bool arrived = stream.has_buffered();
    while (!arrived && svr_sock_ != INVALID_SOCKET && Clock::now() < idle_until) {
      arrived = wait_for(sock, POLLIN, std::min(idle_until, Clock::now() + std::chrono::milliseconds(100)));
    }
    if (!arrived || svr_sock_ == INVALID_SOCKET) break;
    stream.begin_request();
    bool closed_by_client = false;
    const bool last = served + 1 == limits_.max_requests_per_connection;
    ok = process_request(stream, last, closed_by_client, nullptr);
    if (state.refusal != ReadRefusal::kNone && !stream.answered()) answer_refusal(stream);
    if (!ok || closed_by_client || state.close || state.refusal != ReadRefusal::kNone) break;
  }
  t_connection = nullptr;
  if (state.close || state.refusal != ReadRefusal::kNone) {
    linger_and_close(sock);
  } else {
    ::shutdown(sock, SHUT_RDWR);
    ::close(sock);
  }
  return ok;
}

}  // namespace lookalike
