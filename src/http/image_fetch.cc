#include "http/image_fetch.h"

// Debian's libcpp-httplib is built with OpenSSL (pkg-config cpp-httplib passes this define);
// a build that does not pass it (the fuzz targets) must still see the library's class layout.
#ifndef CPPHTTPLIB_OPENSSL_SUPPORT
#define CPPHTTPLIB_OPENSSL_SUPPORT
#endif
#include <arpa/inet.h>
#include <fcntl.h>
#include <httplib.h>
#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <mutex>
#include <string_view>
#include <thread>

#include "common/error.h"

namespace lookalike {
namespace {

using Clock = std::chrono::steady_clock;

constexpr size_t kMaxUrlLength = 2048;
constexpr size_t kMaxHostLength = 253;

[[noreturn]] void bad(const std::string& message) {
  throw Error(ErrorCode::kInvalidArgument, message);
}

[[noreturn]] void unprocessable(const std::string& message) {
  throw Error(ErrorCode::kUnprocessable, message);
}

bool host_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '-';
}

// Printable ASCII without space and '#': what goes into the request line as it is.
bool path_char(char c) { return c > ' ' && c < 0x7F && c != '#'; }

ImageUrl parse_url(const std::string& url) {
  if (url.size() > kMaxUrlLength) {
    bad("'image_url' is longer than " + std::to_string(kMaxUrlLength) + " characters");
  }
  ImageUrl u;
  std::string_view rest(url);
  if (rest.starts_with("https://")) {
    u.scheme = "https";
  } else if (rest.starts_with("http://")) {
    u.scheme = "http";
  } else {
    bad("'image_url' must be an http:// or https:// URL with a host name");
  }
  rest.remove_prefix(u.scheme.size() + 3);
  const size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  const std::string_view path = slash == std::string_view::npos ? std::string_view("/") : rest.substr(slash);
  if (authority.find('@') != std::string_view::npos) bad("'image_url' must not contain a user name (user@host)");
  const size_t colon = authority.find(':');
  const std::string_view host = authority.substr(0, colon);
  if (host.empty()) bad("'image_url' must be an http:// or https:// URL with a host name");
  if (host.size() > kMaxHostLength || !std::all_of(host.begin(), host.end(), host_char)) {
    bad("'image_url' host must be a host name or an IPv4 address (letters, digits, '.' and '-')");
  }
  if (colon != std::string_view::npos) {
    const std::string_view digits = authority.substr(colon + 1);
    int port = 0;
    const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), port);
    if (digits.empty() || digits.size() > 5 || ec != std::errc() || end != digits.data() + digits.size() ||
        port < 1 || port > 65535) {
      bad("'image_url' has an invalid port (1..65535)");
    }
    u.port = port;
  } else {
    u.port = u.scheme == "https" ? 443 : 80;
  }
  if (!std::all_of(path.begin(), path.end(), path_char)) {
    bad("'image_url' path must be printable ASCII without spaces or a '#' fragment (percent-encode the rest)");
  }
  u.host.assign(host);
  std::transform(u.host.begin(), u.host.end(), u.host.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  u.path.assign(path);
  return u;
}

// The addresses the host resolves to, each once, in the resolver's order.
std::vector<std::string> resolve(const std::string& host) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  const int rc = ::getaddrinfo(host.c_str(), nullptr, &hints, &found);
  if (rc != 0 || !found) {
    if (found) ::freeaddrinfo(found);
    unprocessable("'image_url' host " + host + " does not resolve" + (rc != 0 ? std::string(": ") + ::gai_strerror(rc) : ""));
  }
  std::vector<std::string> out;
  for (addrinfo* a = found; a; a = a->ai_next) {
    char text[INET6_ADDRSTRLEN] = {};
    const void* raw = nullptr;
    if (a->ai_family == AF_INET) {
      raw = &reinterpret_cast<const sockaddr_in*>(a->ai_addr)->sin_addr;
    } else if (a->ai_family == AF_INET6) {
      raw = &reinterpret_cast<const sockaddr_in6*>(a->ai_addr)->sin6_addr;
    }
    if (raw && ::inet_ntop(a->ai_family, raw, text, sizeof text) &&
        std::find(out.begin(), out.end(), text) == out.end()) {
      out.emplace_back(text);
    }
  }
  ::freeaddrinfo(found);
  if (out.empty()) unprocessable("'image_url' host " + host + " has no IPv4 or IPv6 address");
  return out;
}

// --- address rules -------------------------------------------------------------------------

std::string v4_text(uint32_t a) {
  return std::to_string(a >> 24) + "." + std::to_string((a >> 16) & 0xFF) + "." + std::to_string((a >> 8) & 0xFF) +
         "." + std::to_string(a & 0xFF);
}

// Everything in IPv4 that is not public unicast (RFC 6890 special-purpose blocks that are not
// globally reachable, multicast and the reserved 240/4). Host byte order.
const char* v4_refusal(uint32_t a) {
  struct Block {
    uint32_t net;
    int bits;
    const char* rule;
  };
  static constexpr Block kBlocks[] = {
      {0x00000000, 8, "this network 0.0.0.0/8"},
      {0x0A000000, 8, "private 10.0.0.0/8 (RFC 1918)"},
      {0x64400000, 10, "shared address space 100.64.0.0/10 (carrier-grade NAT)"},
      {0x7F000000, 8, "loopback 127.0.0.0/8"},
      {0xA9FE0000, 16, "link-local 169.254.0.0/16"},
      {0xAC100000, 12, "private 172.16.0.0/12 (RFC 1918)"},
      {0xC0000000, 24, "IETF protocol assignments 192.0.0.0/24"},
      {0xC0000200, 24, "documentation 192.0.2.0/24"},
      {0xC0586300, 24, "6to4 relay anycast 192.88.99.0/24"},
      {0xC0A80000, 16, "private 192.168.0.0/16 (RFC 1918)"},
      {0xC6120000, 15, "benchmarking 198.18.0.0/15"},
      {0xC6336400, 24, "documentation 198.51.100.0/24"},
      {0xCB007100, 24, "documentation 203.0.113.0/24"},
      {0xE0000000, 4, "multicast 224.0.0.0/4"},
      {0xFFFFFFFF, 32, "broadcast 255.255.255.255"},
      {0xF0000000, 4, "reserved 240.0.0.0/4"},
  };
  for (const Block& b : kBlocks) {
    if ((a >> (32 - b.bits)) == (b.net >> (32 - b.bits))) return b.rule;
  }
  return nullptr;
}

uint32_t v4_at(const unsigned char* b) {
  return (uint32_t{b[0]} << 24) | (uint32_t{b[1]} << 16) | (uint32_t{b[2]} << 8) | uint32_t{b[3]};
}

// An IPv6 form that carries an IPv4 address: refused when that address is.
std::string embedded_refusal(const char* form, uint32_t v4) {
  const char* rule = v4_refusal(v4);
  return rule ? std::string(form) + " of " + v4_text(v4) + ": " + rule : std::string();
}

std::string v6_refusal(const unsigned char* b) {
  static constexpr unsigned char kZero[16] = {};
  const auto starts = [b](std::initializer_list<unsigned char> prefix) {
    return std::equal(prefix.begin(), prefix.end(), b);
  };
  if (std::memcmp(b, kZero, 16) == 0) return "unspecified ::";
  if (std::memcmp(b, kZero, 15) == 0 && b[15] == 1) return "loopback ::1";
  if (std::memcmp(b, kZero, 10) == 0 && b[10] == 0xFF && b[11] == 0xFF) {
    return embedded_refusal("IPv4-mapped ::ffff:0:0/96", v4_at(b + 12));
  }
  if (std::memcmp(b, kZero, 12) == 0) return "IPv4-compatible ::/96 (deprecated)";
  if (std::memcmp(b, kZero, 8) == 0 && b[8] == 0xFF && b[9] == 0xFF && b[10] == 0 && b[11] == 0) {
    return "IPv4-translated ::ffff:0:0:0/96";
  }
  if (starts({0x00, 0x64, 0xFF, 0x9B}) && std::memcmp(b + 4, kZero, 8) == 0) {
    return embedded_refusal("NAT64 64:ff9b::/96", v4_at(b + 12));
  }
  if (starts({0x00, 0x64, 0xFF, 0x9B, 0x00, 0x01})) return "local-use NAT64 64:ff9b:1::/48";
  if (starts({0x01, 0x00}) && std::memcmp(b + 2, kZero, 6) == 0) return "discard-only 100::/64";
  if (starts({0x20, 0x01, 0x00, 0x00})) return "Teredo 2001::/32";
  if (starts({0x20, 0x01, 0x0D, 0xB8})) return "documentation 2001:db8::/32";
  if (b[0] == 0x20 && b[1] == 0x01 && b[2] < 0x02) return "IETF protocol assignments 2001::/23";
  if (starts({0x20, 0x02})) return embedded_refusal("6to4 2002::/16", v4_at(b + 2));
  if (b[0] == 0x3F && b[1] == 0xFF && (b[2] & 0xF0) == 0) return "documentation 3fff::/20";
  if ((b[0] & 0xFE) == 0xFC) return "unique-local fc00::/7";
  if (b[0] == 0xFE && (b[1] & 0xC0) == 0x80) return "link-local fe80::/10";
  if (b[0] == 0xFE && (b[1] & 0xC0) == 0xC0) return "site-local fec0::/10 (deprecated)";
  if (b[0] == 0xFF) return "multicast ff00::/8";
  if ((b[0] & 0xE0) != 0x20) return "not global unicast (outside 2000::/3)";
  return "";
}

// --- the download ----------------------------------------------------------------------------

// Ends the download at the deadline, whatever it is waiting for: cpp-httplib's timeouts bound
// each connect, read and write, not their sum, so a server that trickles headers or body would
// otherwise keep it going. At the deadline every socket of the download is shut down, which
// makes the waiting call fail at once. The watchdog holds its own dup() of each socket, so it
// never acts on a descriptor number that cpp-httplib has closed and the process reused.
class Watchdog {
 public:
  explicit Watchdog(Clock::time_point deadline) : deadline_(deadline), thread_([this] { run(); }) {}
  ~Watchdog() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      done_ = true;
    }
    wake_.notify_all();
    thread_.join();
    for (int fd : fds_) ::close(fd);
  }
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;

  // Called by cpp-httplib for each socket it creates, before connecting.
  void watch(int sock) {
    const int fd = ::fcntl(sock, F_DUPFD_CLOEXEC, 0);
    std::lock_guard<std::mutex> lock(mutex_);
    if (fd < 0) {  // cannot watch it: fail this connection rather than let it run unbounded
      ::shutdown(sock, SHUT_RDWR);
      unwatched_ = true;
      return;
    }
    fds_.push_back(fd);
    if (expired_) ::shutdown(fd, SHUT_RDWR);
  }

  bool expired() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return expired_ || Clock::now() >= deadline_;
  }
  bool unwatched() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return unwatched_;
  }

 private:
  void run() {
    std::unique_lock<std::mutex> lock(mutex_);
    if (wake_.wait_until(lock, deadline_, [this] { return done_; })) return;
    expired_ = true;
    for (int fd : fds_) ::shutdown(fd, SHUT_RDWR);
  }

  const Clock::time_point deadline_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  bool done_ = false;
  bool expired_ = false;
  bool unwatched_ = false;
  std::vector<int> fds_;
  std::thread thread_;  // last: starts after the members it uses
};

std::string host_for_url(const std::string& host) {
  return host.find(':') != std::string::npos ? "[" + host + "]" : host;
}

std::string download(const ImageUrl& url, const std::vector<std::string>& addresses, const FetchPolicy& policy,
                     Clock::time_point start) {
  check_image_addresses(url, addresses, policy);
  const int timeout = std::max(policy.timeout_seconds, 1);
  const auto deadline = start + std::chrono::seconds(timeout);
  const std::string too_slow = "'image_url' was not downloaded within " + std::to_string(timeout) + " s";
  Watchdog watchdog(deadline);
  for (size_t i = 0; i < addresses.size(); ++i) {
    const std::string& address = addresses[i];
    const auto left = std::chrono::duration_cast<std::chrono::microseconds>(deadline - Clock::now());
    if (left.count() <= 0 || watchdog.expired()) unprocessable(too_slow);
    const time_t sec = static_cast<time_t>(left.count() / 1000000);
    const time_t usec = static_cast<time_t>(left.count() % 1000000);

    // The client is named by the host (Host header, TLS SNI and certificate check) and
    // connects to `address`, which cpp-httplib then uses as a numeric address (AI_NUMERICHOST):
    // no second lookup of the name.
    httplib::Client client(url.scheme + "://" + host_for_url(url.host) + ":" + std::to_string(url.port));
    if (!client.is_valid()) {
      throw Error(ErrorCode::kInternal, "'image_url': cannot make an " + url.scheme + " client");
    }
    client.set_hostname_addr_map({{url.host, address}});
    client.set_socket_options([&watchdog](socket_t sock) { watchdog.watch(sock); });
    client.set_connection_timeout(sec, usec);
    client.set_read_timeout(sec, usec);
    client.set_write_timeout(sec, usec);
    client.set_follow_location(false);
    client.set_keep_alive(false);

    std::string body;
    bool too_large = false;
    int status = 0;
    const auto on_headers = [&](const httplib::Response& r) {
      status = r.status;
      if (r.status != 200) return false;  // refused below; no need to read its body
      if (r.has_header("Content-Length")) {
        const std::string declared = r.get_header_value("Content-Length");
        uint64_t length = 0;
        const auto [end, ec] = std::from_chars(declared.data(), declared.data() + declared.size(), length);
        if (ec == std::errc::result_out_of_range ||
            (ec == std::errc() && end == declared.data() + declared.size() && length > policy.max_bytes)) {
          too_large = true;
          return false;
        }
        if (ec == std::errc()) body.reserve(static_cast<size_t>(length));
      }
      return true;
    };
    const auto on_body = [&](const char* data, size_t n) {
      if (n > policy.max_bytes - body.size()) {
        too_large = true;
        return false;
      }
      body.append(data, n);
      return true;
    };
    const auto res = client.Get(url.path, httplib::Headers{}, on_headers, on_body);

    if (too_large) {
      throw Error(ErrorCode::kPayloadTooLarge,
                  "'image_url' is over the limit of " + std::to_string(policy.max_bytes) + " bytes");
    }
    if (watchdog.expired()) unprocessable(too_slow);
    if (watchdog.unwatched()) {
      throw Error(ErrorCode::kInternal, "'image_url' could not be fetched: cannot watch its socket");
    }
    if (status != 0 && status != 200) unprocessable("'image_url' answered HTTP " + std::to_string(status));
    if (!res) {
      if (res.error() == httplib::Error::Connection && i + 1 < addresses.size()) continue;
      unprocessable("'image_url' could not be fetched from " + address + ": " + httplib::to_string(res.error()));
    }
    if (res->status != 200) unprocessable("'image_url' answered HTTP " + std::to_string(res->status));
    return body;
  }
  unprocessable("'image_url' host " + url.host + " has no address to connect to");
}

}  // namespace

std::string address_refusal(const std::string& numeric) {
  in_addr v4{};
  if (::inet_pton(AF_INET, numeric.c_str(), &v4) == 1) {
    const char* rule = v4_refusal(ntohl(v4.s_addr));
    return rule ? rule : "";
  }
  in6_addr v6{};
  if (::inet_pton(AF_INET6, numeric.c_str(), &v6) == 1) return v6_refusal(v6.s6_addr);
  return "not a numeric IP address";
}

bool is_private_address(const std::string& numeric) { return !address_refusal(numeric).empty(); }

ImageUrl check_image_url(const std::string& url, const FetchPolicy& policy) {
  if (policy.allowed_hosts.empty()) {
    bad("'image_url' is disabled on this server (start it with --fetch-allow-host HOST)");
  }
  ImageUrl u = parse_url(url);
  if (std::find(policy.allowed_hosts.begin(), policy.allowed_hosts.end(), u.host) == policy.allowed_hosts.end()) {
    bad("'image_url' host " + u.host + " is not on this server's allow-list");
  }
  return u;
}

void check_image_addresses(const ImageUrl& url, const std::vector<std::string>& addresses,
                           const FetchPolicy& policy) {
  if (addresses.empty()) bad("'image_url' host " + url.host + " has no address to check");
  if (policy.allow_private_addresses) return;
  for (const auto& address : addresses) {
    const std::string rule = address_refusal(address);
    if (!rule.empty()) {
      bad("'image_url' host " + url.host + " resolves to the private address " + address + " (" + rule + ")");
    }
  }
}

std::string fetch_image_from(const ImageUrl& url, const std::vector<std::string>& addresses,
                             const FetchPolicy& policy) {
  return download(url, addresses, policy, Clock::now());
}

std::string fetch_image(const std::string& url, const FetchPolicy& policy) {
  const auto start = Clock::now();
  const ImageUrl u = check_image_url(url, policy);
  return download(u, resolve(u.host), policy, start);
}

}  // namespace lookalike
