// image_url fetching against real sockets on 127.0.0.1: which addresses are refused (and why),
// that the connection goes to exactly the address that was checked (http and https), and that
// the whole download is bounded in time and size however slowly or hugely the server answers.
#include "http/image_fetch.h"

#include <arpa/inet.h>
#include <dlfcn.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "common/error.h"

// Fake DNS for this test binary: a name registered with answer_dns() resolves to the next of its
// numeric answers (the last one repeats), and every lookup of it is counted; any other name goes
// to the real resolver. Defined here, getaddrinfo also replaces the one cpp-httplib calls.
namespace {

std::mutex g_dns_mutex;
std::map<std::string, std::vector<std::string>> g_dns_answers;
std::map<std::string, int> g_dns_lookups;

void answer_dns(const std::string& name, std::vector<std::string> answers) {
  std::lock_guard<std::mutex> lock(g_dns_mutex);
  g_dns_answers[name] = std::move(answers);
  g_dns_lookups[name] = 0;
}

int dns_lookups(const std::string& name) {
  std::lock_guard<std::mutex> lock(g_dns_mutex);
  return g_dns_lookups[name];
}

}  // namespace

extern "C" int getaddrinfo(const char* node, const char* service, const addrinfo* hints, addrinfo** res) {
  using Real = int (*)(const char*, const char*, const addrinfo*, addrinfo**);
  static const Real real = reinterpret_cast<Real>(::dlsym(RTLD_NEXT, "getaddrinfo"));
  std::string answer;
  if (node) {
    std::lock_guard<std::mutex> lock(g_dns_mutex);
    const auto it = g_dns_answers.find(node);
    if (it != g_dns_answers.end() && !it->second.empty()) {
      const size_t n = static_cast<size_t>(g_dns_lookups[node]++);
      answer = it->second[std::min(n, it->second.size() - 1)];
    }
  }
  if (answer.empty()) return real(node, service, hints, res);
  addrinfo numeric{};
  if (hints) numeric = *hints;
  numeric.ai_family = AF_UNSPEC;
  numeric.ai_flags |= AI_NUMERICHOST;
  return real(answer.c_str(), service, &numeric, res);
}

namespace lookalike {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

bool send_all(int fd, const std::string& data) {
  size_t sent = 0;
  while (sent < data.size()) {
    const ssize_t n = ::send(fd, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) return false;
    sent += static_cast<size_t>(n);
  }
  return true;
}

// Reads what the client sends until `done(received)` or the client stops sending for `quiet_ms`.
std::string receive(int fd, const std::function<bool(const std::string&)>& done, int quiet_ms = 2000) {
  std::string received;
  char buf[4096];
  while (!done(received)) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, quiet_ms) <= 0) break;
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    received.append(buf, static_cast<size_t>(n));
  }
  return received;
}

std::string receive_request(int fd) {
  return receive(fd, [](const std::string& r) { return r.find("\r\n\r\n") != std::string::npos; });
}

// Sleeps up to `ms` unless the server is stopping; false when it is.
bool pause_ms(const std::atomic<bool>& stop, int ms) {
  for (int waited = 0; waited < ms; waited += 10) {
    if (stop) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return !stop;
}

// A TCP server on 127.0.0.1 (any free port) that hands each connection, one at a time, to
// `handler` on its own thread. The destructor asks the handler to stop and joins.
class TestServer {
 public:
  using Handler = std::function<void(int fd, const std::atomic<bool>& stop)>;

  explicit TestServer(Handler handler) : handler_(std::move(handler)) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (listen_fd_ < 0 || ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::listen(listen_fd_, 8) != 0 || ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      ADD_FAILURE() << "cannot listen on 127.0.0.1";
      return;
    }
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { serve(); });
  }
  ~TestServer() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    if (listen_fd_ >= 0) ::close(listen_fd_);
  }
  TestServer(const TestServer&) = delete;
  TestServer& operator=(const TestServer&) = delete;

  int port() const { return port_; }
  int connections() const { return connections_; }
  std::string url(const std::string& host = "127.0.0.1", const std::string& scheme = "http") const {
    return scheme + "://" + host + ":" + std::to_string(port_) + "/photo.jpg";
  }

 private:
  void serve() {
    while (!stop_) {
      pollfd p{listen_fd_, POLLIN, 0};
      if (::poll(&p, 1, 20) <= 0) continue;
      const int fd = ::accept(listen_fd_, nullptr, nullptr);
      if (fd < 0) continue;
      ++connections_;
      handler_(fd, stop_);
      ::close(fd);
    }
  }

  Handler handler_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> connections_{0};
  std::thread thread_;
};

// A server that answers every request with `head` and then `body`.
TestServer::Handler answer(std::string head, std::string body = "") {
  return [head = std::move(head), body = std::move(body)](int fd, const std::atomic<bool>&) {
    receive_request(fd);
    send_all(fd, head + body);
  };
}

FetchPolicy local_policy(int timeout_seconds = 2, size_t max_bytes = 64 << 10) {
  FetchPolicy policy;
  policy.allowed_hosts = {"127.0.0.1", "rebind.fetch-test", "private.fetch-test", "public.fetch-test"};
  policy.allow_private_addresses = true;
  policy.timeout_seconds = timeout_seconds;
  policy.max_bytes = max_bytes;
  return policy;
}

struct Failure {
  ErrorCode code = ErrorCode::kInternal;
  std::string message;
  double seconds = 0;
};

// Runs fetch_image, which must throw lookalike::Error.
Failure fetch_failure(const std::string& url, const FetchPolicy& policy) {
  const auto start = Clock::now();
  try {
    const std::string body = fetch_image(url, policy);
    ADD_FAILURE() << url << " was fetched (" << body.size() << " bytes) in " << seconds_since(start) << " s";
    return {};
  } catch (const Error& e) {
    return {e.code(), e.what(), seconds_since(start)};
  }
}

// --- which addresses are refused -------------------------------------------------------------

const char* const kRefused[] = {
    // IPv4
    "0.0.0.0", "0.1.2.3", "10.0.0.1", "10.255.255.255", "100.64.0.1", "100.127.255.255", "127.0.0.1",
    "127.255.255.254", "169.254.169.254", "172.16.0.1", "172.31.255.255", "192.0.0.8", "192.0.2.1",
    "192.88.99.1", "192.168.1.1", "198.18.0.1", "198.19.255.255", "198.51.100.7", "203.0.113.9", "224.0.0.1",
    "239.255.255.250", "240.0.0.1", "250.1.2.3", "255.255.255.255",
    // IPv6
    "::", "::1", "::10.0.0.1", "::8.8.8.8", "::ffff:10.0.0.1", "::ffff:127.0.0.1", "::ffff:169.254.169.254",
    "::ffff:224.0.0.1", "::ffff:0:8.8.8.8", "64:ff9b::10.0.0.1", "64:ff9b::127.0.0.1", "64:ff9b::224.0.0.1",
    "64:ff9b::255.255.255.255", "64:ff9b:1::8.8.8.8", "2002:a00:1::1", "2002:7f00:1::", "2002:a9fe:a9fe::1",
    "2002:e000:1::", "2001:0:4136:e378:8000:63bf:3fff:fdd2", "2001:2::1", "2001:1::1", "2001:db8::1", "3fff::1", "100::1", "fc00::1", "fd12:3456::1",
    "fe80::1", "febf:ffff::1", "fec0::1", "ff02::1", "ff0e::1", "ff05::1:3", "4000::1", "e000::1",
    // not an address
    "not-an-ip", "", "1.2.3", "1.2.3.4.5", "fe80::1%lo", "127.0.0.1 "};

const char* const kPublic[] = {"8.8.8.8",          "1.1.1.1",           "93.184.216.34",      "9.255.255.255",
                               "11.0.0.1",         "100.63.255.255",    "100.128.0.1",        "169.253.255.255",
                               "172.15.255.255",   "172.32.0.1",        "192.0.1.1",          "192.167.255.255",
                               "192.169.0.1",      "198.17.255.255",    "198.20.0.1",         "223.255.255.255",
                               "::ffff:8.8.8.8",   "64:ff9b::8.8.8.8",  "2002:808:808::1",    "2001:4860:4860::8888",
                               "2606:4700::1111",  "2a00:1450:4001::1", "2001:200::1",        "2c0f:fb50::1"};

TEST(ImageFetchAddresses, RefusesEveryNonPublicAddress) {
  for (const char* a : kRefused) EXPECT_TRUE(is_private_address(a)) << a;
}

TEST(ImageFetchAddresses, PassesPublicAddresses) {
  for (const char* a : kPublic) EXPECT_FALSE(is_private_address(a)) << a;
}

TEST(ImageFetchAddresses, RefusalNamesTheAddressAndTheRule) {
  answer_dns("private.fetch-test", {"10.1.2.3"});
  FetchPolicy policy = local_policy();
  policy.allow_private_addresses = false;
  const Failure f = fetch_failure("http://private.fetch-test/a.jpg", policy);
  EXPECT_EQ(f.code, ErrorCode::kInvalidArgument);
  EXPECT_NE(f.message.find("private.fetch-test"), std::string::npos) << f.message;
  EXPECT_NE(f.message.find("10.1.2.3"), std::string::npos) << f.message;
  EXPECT_NE(f.message.find("10.0.0.0/8"), std::string::npos) << f.message;

  answer_dns("private.fetch-test", {"64:ff9b::7f00:1"});
  const Failure nat64 = fetch_failure("http://private.fetch-test/a.jpg", policy);
  EXPECT_NE(nat64.message.find("64:ff9b::7f00:1"), std::string::npos) << nat64.message;
  EXPECT_NE(nat64.message.find("127.0.0.1"), std::string::npos) << nat64.message;
  EXPECT_NE(nat64.message.find("loopback"), std::string::npos) << nat64.message;
}

TEST(ImageFetchAddresses, NamesTheRule) {
  const std::pair<const char*, const char*> cases[] = {
      {"0.0.0.0", "this network 0.0.0.0/8"},
      {"10.1.2.3", "private 10.0.0.0/8 (RFC 1918)"},
      {"100.64.0.1", "100.64.0.0/10"},
      {"127.0.0.1", "loopback 127.0.0.0/8"},
      {"169.254.169.254", "link-local 169.254.0.0/16"},
      {"224.0.0.1", "multicast 224.0.0.0/4"},
      {"255.255.255.255", "broadcast"},
      {"240.0.0.1", "reserved 240.0.0.0/4"},
      {"::", "unspecified"},
      {"::1", "loopback ::1"},
      {"::8.8.8.8", "IPv4-compatible ::/96"},
      {"::ffff:192.168.0.1", "IPv4-mapped ::ffff:0:0/96 of 192.168.0.1: private 192.168.0.0/16"},
      {"64:ff9b::a9fe:a9fe", "NAT64 64:ff9b::/96 of 169.254.169.254: link-local"},
      {"2002:7f00:1::", "6to4 2002::/16 of 127.0.0.1: loopback"},
      {"2001:0:4136:e378:8000:63bf:3fff:fdd2", "Teredo 2001::/32"},
      {"fd00::1", "unique-local fc00::/7"},
      {"fe80::1", "link-local fe80::/10"},
      {"ff02::1", "multicast ff00::/8"},
      {"4000::1", "outside 2000::/3"},
      {"localhost", "not a numeric IP address"},
  };
  for (const auto& [address, rule] : cases) {
    EXPECT_NE(address_refusal(address).find(rule), std::string::npos) << address << ": " << address_refusal(address);
  }
  for (const char* a : kPublic) EXPECT_EQ(address_refusal(a), "") << a;
}

TEST(ImageFetchAddresses, OneRefusedAddressRefusesTheHost) {
  FetchPolicy policy;
  policy.allowed_hosts = {"cdn.example.com"};
  const ImageUrl url = check_image_url("https://cdn.example.com/a.jpg", policy);
  EXPECT_NO_THROW(check_image_addresses(url, {"8.8.8.8", "2001:4860:4860::8888"}, policy));
  try {
    check_image_addresses(url, {"8.8.8.8", "fd00::1"}, policy);
    ADD_FAILURE() << "fd00::1 was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(std::string(e.what()).find("cdn.example.com resolves to the private address fd00::1 (unique-local "),
              std::string::npos)
        << e.what();
  }
  EXPECT_THROW(check_image_addresses(url, {}, policy), Error);
  policy.allow_private_addresses = true;
  EXPECT_NO_THROW(check_image_addresses(url, {"8.8.8.8", "fd00::1"}, policy));
}

// --- the URL and the allow-list, without the network -----------------------------------------

TEST(ImageFetchUrl, ParsesAndNormalises) {
  FetchPolicy policy;
  policy.allowed_hosts = {"cdn.example.com", "203.0.113.7"};
  const ImageUrl a = check_image_url("http://CDN.Example.com/a/b.jpg?w=200&h=100", policy);
  EXPECT_EQ(a.scheme, "http");
  EXPECT_EQ(a.host, "cdn.example.com");
  EXPECT_EQ(a.port, 80);
  EXPECT_EQ(a.path, "/a/b.jpg?w=200&h=100");
  const ImageUrl b = check_image_url("https://cdn.example.com", policy);
  EXPECT_EQ(b.scheme, "https");
  EXPECT_EQ(b.port, 443);
  EXPECT_EQ(b.path, "/");
  EXPECT_EQ(check_image_url("https://cdn.example.com:8443/x%20y.jpg", policy).port, 8443);
  EXPECT_EQ(check_image_url("http://203.0.113.7:65535/", policy).host, "203.0.113.7");
}

TEST(ImageFetchUrl, RefusesSayingWhy) {
  FetchPolicy policy;
  policy.allowed_hosts = {"cdn.example.com"};
  const std::pair<std::string, const char*> cases[] = {
      {"ftp://cdn.example.com/a.jpg", "http:// or https://"},
      {"HTTP://cdn.example.com/a.jpg", "http:// or https://"},
      {"cdn.example.com/a.jpg", "http:// or https://"},
      {"http://", "with a host name"},
      {"http://:80/a.jpg", "with a host name"},
      {"http:///a.jpg", "with a host name"},
      {"http://user@cdn.example.com/a.jpg", "user name"},
      {"http://user:pw@cdn.example.com/a.jpg", "user name"},
      {"http://cdn.example.com:0/a.jpg", "invalid port"},
      {"http://cdn.example.com:65536/a.jpg", "invalid port"},
      {"http://cdn.example.com:99999/a.jpg", "invalid port"},
      {"http://cdn.example.com:/a.jpg", "invalid port"},
      {"http://cdn.example.com:8a/a.jpg", "invalid port"},
      {"http://cdn.example.com:+80/a.jpg", "invalid port"},
      {"http://cdn.example.com:80:80/a.jpg", "invalid port"},
      {"http://cdn.example.com:123456/a.jpg", "invalid port"},
      {"http://[::1]/a.jpg", "host must be a host name or an IPv4 address"},
      {"http://cdn.example.com?x=1", "host must be"},
      {"http://cdn_example.com/a.jpg", "host must be"},
      {"http://" + std::string(254, 'a') + "/a.jpg", "host must be"},
      {"http://cdn.example.com/a b.jpg", "path must be printable ASCII"},
      {"http://cdn.example.com/a.jpg#top", "path must be printable ASCII"},
      {"http://cdn.example.com/a.jpg\r\nX-Injected: 1", "path must be printable ASCII"},
      {std::string("http://cdn.example.com/a\0b.jpg", 31), "path must be printable ASCII"},
      {"http://cdn.example.com/\x7f", "path must be printable ASCII"},
      {"http://cdn.example.com/caf\xc3\xa9.jpg", "path must be printable ASCII"},
      {"http://cdn.example.com/" + std::string(2048, 'a'), "longer than 2048 characters"},
      {"http://other.example.com/a.jpg", "host other.example.com is not on this server's allow-list"},
      {"http://cdn.example.com./a.jpg", "is not on this server's allow-list"},
      {"http://sub.cdn.example.com/a.jpg", "is not on this server's allow-list"},
  };
  for (const auto& [url, why] : cases) {
    try {
      check_image_url(url, policy);
      ADD_FAILURE() << url << " was accepted";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument) << url;
      EXPECT_NE(std::string(e.what()).find(why), std::string::npos) << url << ": " << e.what();
      EXPECT_EQ(std::string(e.what()).rfind("'image_url'", 0), 0u) << e.what();
    }
  }
  try {
    check_image_url("http://cdn.example.com/a.jpg", FetchPolicy{});
    ADD_FAILURE() << "fetching is off without an allow-list";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("disabled"), std::string::npos) << e.what();
  }
}

// --- the connection goes to the checked address ----------------------------------------------

// The name answers 127.0.0.1 to the first lookup (checked, allowed) and 127.0.0.2 afterwards,
// where nothing listens: a second lookup when connecting would miss the server.
TEST(ImageFetchConnect, HttpsConnectsToTheCheckedAddressWithTheHostNameForSni) {
  std::mutex mutex;
  std::string hello;
  TestServer server([&](int fd, const std::atomic<bool>&) {
    const std::string got = receive(fd, [](const std::string& r) {  // one TLS record: the ClientHello
      return r.size() >= 5 && r.size() >= 5 + (static_cast<size_t>(static_cast<unsigned char>(r[3])) << 8 |
                                               static_cast<unsigned char>(r[4]));
    });
    std::lock_guard<std::mutex> lock(mutex);
    hello += got;
  });
  answer_dns("rebind.fetch-test", {"127.0.0.1", "127.0.0.2"});
  const Failure f = fetch_failure(server.url("rebind.fetch-test", "https"), local_policy(3));
  EXPECT_EQ(f.code, ErrorCode::kUnprocessable) << f.message;  // the test server speaks no TLS
  EXPECT_EQ(dns_lookups("rebind.fetch-test"), 1);
  EXPECT_EQ(server.connections(), 1);
  std::lock_guard<std::mutex> lock(mutex);
  ASSERT_FALSE(hello.empty());
  EXPECT_EQ(static_cast<unsigned char>(hello[0]), 0x16) << "not a TLS handshake record";
  EXPECT_NE(hello.find("rebind.fetch-test"), std::string::npos) << "no SNI with the host name";
}

TEST(ImageFetchConnect, HttpConnectsToTheCheckedAddressWithTheHostHeader) {
  std::mutex mutex;
  std::string request;
  TestServer server([&](int fd, const std::atomic<bool>&) {
    const std::string got = receive_request(fd);
    {
      std::lock_guard<std::mutex> lock(mutex);
      request = got;
    }
    send_all(fd, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nimage");
  });
  answer_dns("rebind.fetch-test", {"127.0.0.1", "127.0.0.2"});
  EXPECT_EQ(fetch_image(server.url("rebind.fetch-test"), local_policy()), "image");
  EXPECT_EQ(dns_lookups("rebind.fetch-test"), 1);
  std::lock_guard<std::mutex> lock(mutex);
  EXPECT_EQ(request.rfind("GET /photo.jpg HTTP/1.1\r\n", 0), 0u) << request;
  EXPECT_NE(request.find("\r\nHost: rebind.fetch-test:" + std::to_string(server.port()) + "\r\n"), std::string::npos)
      << request;
}

TEST(ImageFetchConnect, TriesTheNextCheckedAddressWhenOneRefusesTheConnection) {
  TestServer server(answer("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", "image"));
  answer_dns("rebind.fetch-test", {"127.0.0.3"});
  const ImageUrl url{"http", "rebind.fetch-test", server.port(), "/photo.jpg"};
  // Nothing listens on 127.0.0.2 (the test server is on 127.0.0.1 only).
  EXPECT_EQ(fetch_image_from(url, {"127.0.0.2", "127.0.0.1"}, local_policy()), "image");
  EXPECT_EQ(dns_lookups("rebind.fetch-test"), 0);
  EXPECT_EQ(server.connections(), 1);
  const Failure f = [&] {
    try {
      fetch_image_from(url, {"127.0.0.2"}, local_policy());
    } catch (const Error& e) {
      return Failure{e.code(), e.what(), 0};
    }
    return Failure{};
  }();
  EXPECT_EQ(f.code, ErrorCode::kUnprocessable);
  EXPECT_NE(f.message.find("could not be fetched from 127.0.0.2"), std::string::npos) << f.message;
}

// --- time and size bounds --------------------------------------------------------------------

TEST(ImageFetchLimits, ReturnsTheBodyOfA200AndRefusesOtherAnswers) {
  {
    TestServer server(answer("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", "image"));
    EXPECT_EQ(fetch_image(server.url(), local_policy()), "image");
  }
  for (const char* status : {"404 Not Found", "302 Found", "500 Internal Server Error", "204 No Content"}) {
    TestServer server(answer(std::string("HTTP/1.1 ") + status +
                             "\r\nLocation: http://127.0.0.1:1/x\r\nContent-Length: 0\r\n\r\n"));
    const Failure f = fetch_failure(server.url(), local_policy());
    EXPECT_EQ(f.code, ErrorCode::kUnprocessable) << status;
    EXPECT_NE(f.message.find(std::string("HTTP ") + std::string(status).substr(0, 3)), std::string::npos)
        << f.message;
    EXPECT_EQ(server.connections(), 1) << "redirects are not followed";
  }
}

// One body byte every 100 ms for up to 6 s: each read is quick, the whole download is not.
TEST(ImageFetchLimits, ATrickledBodyFailsAtTheDeadline) {
  TestServer server([](int fd, const std::atomic<bool>& stop) {
    receive_request(fd);
    if (!send_all(fd, "HTTP/1.1 200 OK\r\nContent-Type: image/jpeg\r\n\r\n")) return;
    for (int i = 0; i < 60 && send_all(fd, "x"); ++i) {
      if (!pause_ms(stop, 100)) return;
    }
  });
  const Failure f = fetch_failure(server.url(), local_policy(1));
  EXPECT_EQ(f.code, ErrorCode::kUnprocessable) << f.message;
  EXPECT_NE(f.message.find("1 s"), std::string::npos) << f.message;
  EXPECT_LT(f.seconds, 2.0);
}

TEST(ImageFetchLimits, TrickledHeadersFailAtTheDeadline) {
  TestServer server([](int fd, const std::atomic<bool>& stop) {
    receive_request(fd);
    if (!send_all(fd, "HTTP/1.1 200 OK\r\nX-Slow: ")) return;
    for (int i = 0; i < 60 && send_all(fd, "a"); ++i) {
      if (!pause_ms(stop, 100)) return;
    }
  });
  const Failure f = fetch_failure(server.url(), local_policy(1));
  EXPECT_EQ(f.code, ErrorCode::kUnprocessable) << f.message;
  EXPECT_NE(f.message.find("1 s"), std::string::npos) << f.message;
  EXPECT_LT(f.seconds, 2.0);
}

TEST(ImageFetchLimits, ASilentServerFailsAtTheDeadline) {
  TestServer server([](int fd, const std::atomic<bool>& stop) {
    receive_request(fd);
    pause_ms(stop, 6000);
  });
  const Failure f = fetch_failure(server.url(), local_policy(1));
  EXPECT_EQ(f.code, ErrorCode::kUnprocessable) << f.message;
  EXPECT_LT(f.seconds, 2.0);
}

TEST(ImageFetchLimits, ABodyOverTheLimitWithoutContentLengthIsTooLarge) {
  const std::string huge(1 << 20, 'x');
  {
    TestServer server(answer("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n", huge));
    const Failure f = fetch_failure(server.url(), local_policy(3, 64 << 10));
    EXPECT_EQ(f.code, ErrorCode::kPayloadTooLarge) << f.message;
    EXPECT_NE(f.message.find("65536 bytes"), std::string::npos) << f.message;
  }
  {
    std::string chunked;
    for (size_t i = 0; i < huge.size(); i += 8192) chunked += "2000\r\n" + huge.substr(i, 8192) + "\r\n";
    TestServer server(answer("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", chunked + "0\r\n\r\n"));
    const Failure f = fetch_failure(server.url(), local_policy(3, 64 << 10));
    EXPECT_EQ(f.code, ErrorCode::kPayloadTooLarge) << f.message;
  }
}

TEST(ImageFetchLimits, TheLimitIsInclusive) {
  const std::string exact(1000, 'x');
  {
    TestServer server(answer("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n", exact));
    EXPECT_EQ(fetch_image(server.url(), local_policy(3, 1000)), exact);
  }
  {
    TestServer server(answer("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n", exact + "y"));
    EXPECT_EQ(fetch_failure(server.url(), local_policy(3, 1000)).code, ErrorCode::kPayloadTooLarge);
  }
}

// A declared length over the limit is refused as soon as the headers arrive, not after the
// body (which this server never sends) or a timeout.
TEST(ImageFetchLimits, ADeclaredLengthOverTheLimitIsRefusedAtOnce) {
  TestServer server([](int fd, const std::atomic<bool>& stop) {
    receive_request(fd);
    if (send_all(fd, "HTTP/1.1 200 OK\r\nContent-Length: 1000000000\r\n\r\n")) pause_ms(stop, 6000);
  });
  const Failure f = fetch_failure(server.url(), local_policy(3, 64 << 10));
  EXPECT_EQ(f.code, ErrorCode::kPayloadTooLarge) << f.message;
  EXPECT_LT(f.seconds, 1.0);
}

}  // namespace
}  // namespace lookalike
