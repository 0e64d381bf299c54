// Hostile HTTP campaign against a running `lookalike serve` on 127.0.0.1: malformed requests,
// bombs, slow and idle connections and a burst of large uploads, all at once, while a prober
// checks that /healthz keeps answering. Prints what came back (by status), the longest
// /healthz wait, the server's peak resident memory, and whether a normal search gives the
// same results after as before.
//   bench_hostile --port PORT --pid SERVER_PID --query IMAGE [--requests 10000] [--slow 200]
//                 [--uploads 64] [--upload-mb 10]
#include <arpa/inet.h>
#include <httplib.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "common/files.h"

using Clock = std::chrono::steady_clock;

namespace {

int connect_to(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return -1;
  }
  timeval timeout{20, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
  return fd;
}

// Sends a raw request and returns the status of the answer: 0 when the server closed without
// one (a legitimate answer to garbage), -1 when the connection failed.
int raw_exchange(int port, const std::string& request) {
  const int fd = connect_to(port);
  if (fd < 0) return -1;
  size_t sent = 0;
  while (sent < request.size()) {
    const ssize_t n = ::send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) break;  // the server stopped reading: it answers below
    sent += static_cast<size_t>(n);
  }
  ::shutdown(fd, SHUT_WR);
  std::string response;
  char buf[4096];
  for (ssize_t n; response.size() < 16 && (n = ::recv(fd, buf, sizeof buf, 0)) > 0;)
    response.append(buf, static_cast<size_t>(n));
  ::close(fd);
  if (response.rfind("HTTP/1.", 0) != 0 || response.size() < 12) return 0;
  return std::atoi(response.c_str() + 9);
}

std::string gzip_of_zeros(size_t bytes) {
  z_stream z{};
  deflateInit2(&z, 9, Z_DEFLATED, 15 + 16, 9, Z_DEFAULT_STRATEGY);
  const std::string zeros(1 << 20, '\0');
  std::string out;
  char buf[1 << 16];
  for (size_t left = bytes; left > 0 || z.avail_in > 0;) {
    if (z.avail_in == 0) {
      const size_t n = std::min(left, zeros.size());
      z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(zeros.data()));
      z.avail_in = static_cast<uInt>(n);
      left -= n;
    }
    do {
      z.next_out = reinterpret_cast<Bytef*>(buf);
      z.avail_out = sizeof buf;
      deflate(&z, left == 0 ? Z_FINISH : Z_NO_FLUSH);
      out.append(buf, sizeof buf - z.avail_out);
    } while (z.avail_out == 0);
  }
  deflateEnd(&z);
  return out;
}

// One malformed request of kind `i % 10`, with random parts from `rng`.
std::string malformed(size_t i, std::mt19937& rng, const std::string& photo, const std::string& gzip_bomb) {
  auto random_bytes = [&](size_t n) {
    std::string s(n, '\0');
    for (auto& c : s) c = static_cast<char>(rng());
    return s;
  };
  const std::string head = "POST /api/v1/search HTTP/1.1\r\nHost: 127.0.0.1\r\n";
  const std::string multipart = "Content-Type: multipart/form-data; boundary=b\r\n";
  switch (i % 10) {
    case 0:  // random bytes instead of a request
      return random_bytes(1 + rng() % 4096);
    case 1: {  // truncated multipart: the declared length is never sent
      const std::string body =
          "--b\r\nContent-Disposition: form-data; name=\"image\"; filename=\"q.jpg\"\r\n\r\n" +
          photo.substr(0, photo.size() / 2);
      return head + multipart + "Content-Length: " + std::to_string(body.size() + 1000) + "\r\n\r\n" + body;
    }
    case 2:  // a huge header
      return "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(64 << 10 << (rng() % 4), 'a') +
             "\r\n\r\n";
    case 3: {  // JSON that is not
      const std::string body = "{\"image_base64\": \"" + random_bytes(64) + "\", \"options\": {\"k\": [";
      return head + "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
             "\r\n\r\n" + body;
    }
    case 4:  // a gzip bomb
      return head + "Content-Type: application/json\r\nContent-Encoding: gzip\r\nContent-Length: " +
             std::to_string(gzip_bomb.size()) + "\r\n\r\n" + gzip_bomb;
    case 5: {  // chunked, with a broken chunk size
      return head + multipart + "Transfer-Encoding: chunked\r\n\r\nzz\r\n" + random_bytes(100) +
             "\r\n0\r\n\r\n";
    }
    case 6: {  // a photo with its bytes flipped at random
      std::string bad = photo;
      for (int k = 0; k < 20; ++k) bad[rng() % bad.size()] = static_cast<char>(rng());
      const std::string body =
          "--b\r\nContent-Disposition: form-data; name=\"image\"; filename=\"q.jpg\"\r\n\r\n" + bad +
          "\r\n--b--\r\n";
      return head + multipart + "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
    }
    case 7:  // a bad request line
      return "GET " + random_bytes(200) + " HTTP/9.9\r\n\r\n";
    case 8:  // options out of range
      return "GET /api/v1/items?limit=" + std::to_string(rng()) + "&offset=-1 HTTP/1.1\r\nHost: x\r\n\r\n";
    default: {  // chunked, past the limit
      std::string body = head + multipart + "Transfer-Encoding: chunked\r\n\r\n";
      const std::string chunk(1 << 20, 'x');
      for (int k = 0; k < 24; ++k) body += "100000\r\n" + chunk + "\r\n";
      return body + "0\r\n\r\n";
    }
  }
}

size_t rss_bytes(int pid) {
  std::ifstream statm("/proc/" + std::to_string(pid) + "/statm");
  size_t pages = 0, resident = 0;
  statm >> pages >> resident;
  return resident * static_cast<size_t>(::sysconf(_SC_PAGESIZE));
}

std::string search_ids(int port, const std::string& photo) {
  httplib::Client client("127.0.0.1", port);
  client.set_read_timeout(60, 0);
  const auto res =
      client.Post("/api/v1/search", httplib::MultipartFormDataItems{{"image", photo, "q.jpg", "image/jpeg"},
                                                                    {"options", R"({"k": 12})", "", ""}});
  if (!res || res->status != 200) return "(search failed)";
  const auto doc = nlohmann::json::parse(res->body);
  std::string ids;
  for (const auto& hit : doc["results"]) ids += hit["id"].get<std::string>() + " ";
  return ids;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Hostile HTTP campaign against a running lookalike serve"};
  int port = 0, pid = 0;
  std::string query;
  size_t requests = 10000, slow = 200, uploads = 64, upload_mb = 10, senders = 4;
  app.add_option("--port", port)->required();
  app.add_option("--pid", pid, "The server's pid (for its memory)")->required();
  app.add_option("--query", query, "A catalog photo for the before/after search")->required();
  app.add_option("--requests", requests)->capture_default_str();
  app.add_option("--slow", slow, "Slow connections held open (one header byte a second)")
      ->capture_default_str();
  app.add_option("--uploads", uploads, "Concurrent large uploads")->capture_default_str();
  app.add_option("--upload-mb", upload_mb, "Size of each large upload")->capture_default_str();
  app.add_option("--senders", senders, "Threads sending malformed requests (they share this machine's cores)")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  const std::string photo = lookalike::read_file(query, 64 << 20);
  const std::string before = search_ids(port, photo);
  const size_t idle_rss = rss_bytes(pid);
  std::atomic<bool> done{false};
  std::atomic<size_t> peak_rss{idle_rss};
  std::atomic<double> worst_health_ms{0};
  std::vector<double> health_ms;
  std::atomic<size_t> health_failures{0};
  std::thread sampler([&] {
    while (!done) {
      peak_rss = std::max(peak_rss.load(), rss_bytes(pid));
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  });
  std::thread prober([&] {
    while (!done) {
      httplib::Client client("127.0.0.1", port);
      client.set_read_timeout(10, 0);
      const auto t = Clock::now();
      const auto res = client.Get("/healthz");
      const double ms = std::chrono::duration<double, std::milli>(Clock::now() - t).count();
      if (!res || res->status != 200) ++health_failures;
      worst_health_ms = std::max(worst_health_ms.load(), ms);
      health_ms.push_back(ms);
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  });
  // Slow connections: each sends one byte of a request line a second and reconnects when cut.
  std::thread slow_clients([&] {
    std::vector<int> fds(slow, -1);
    std::vector<size_t> sent(slow, 0);
    const std::string line = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ";
    while (!done) {
      for (size_t i = 0; i < slow; ++i) {
        if (fds[i] < 0) fds[i] = connect_to(port), sent[i] = 0;
        if (fds[i] < 0) continue;
        const char c = line[sent[i] % line.size()];
        if (::send(fds[i], &c, 1, MSG_NOSIGNAL) != 1) {
          ::close(fds[i]);
          fds[i] = -1;
        }
        ++sent[i];
      }
      std::this_thread::sleep_for(std::chrono::seconds(1));
    }
    for (const int fd : fds) {
      if (fd >= 0) ::close(fd);
    }
  });

  const auto started = Clock::now();
  std::map<int, size_t> statuses;
  std::mutex mutex;
  const std::string gzip_bomb = gzip_of_zeros(size_t{400} << 20);
  std::atomic<size_t> next{0};
  std::vector<std::thread> sender_threads;
  for (size_t t = 0; t < senders; ++t) {
    sender_threads.emplace_back([&, t] {
      std::mt19937 rng(static_cast<unsigned>(1234 + t));
      for (size_t i; (i = next++) < requests;) {
        const int status = raw_exchange(port, malformed(i, rng, photo, gzip_bomb));
        std::lock_guard lock(mutex);
        ++statuses[status];
      }
    });
  }
  // Meanwhile, a burst of large uploads (random bytes in a well-formed multipart body).
  std::map<int, size_t> upload_statuses;
  std::vector<std::thread> uploaders;
  const std::string big((upload_mb << 20) - 4096, 'u');
  for (size_t u = 0; u < uploads; ++u) {
    uploaders.emplace_back([&] {
      httplib::Client client("127.0.0.1", port);
      client.set_read_timeout(60, 0);
      client.set_write_timeout(60, 0);
      const auto res = client.Post("/api/v1/search",
                                   httplib::MultipartFormDataItems{{"image", big, "big.jpg", "image/jpeg"}});
      std::lock_guard lock(mutex);
      ++upload_statuses[res ? res->status : -1];
    });
  }
  for (auto& t : uploaders) t.join();
  for (auto& t : sender_threads) t.join();
  const double seconds = std::chrono::duration<double>(Clock::now() - started).count();
  done = true;
  sampler.join();
  prober.join();
  slow_clients.join();
  const std::string after = search_ids(port, photo);
  const bool alive = ::kill(pid, 0) == 0;

  std::printf("malformed requests: %zu in %.1f s; answers by status:", requests, seconds);
  for (const auto& [status, n] : statuses)
    std::printf(" %s=%zu",
                status == 0  ? "closed"
                : status < 0 ? "connect-failed"
                             : std::to_string(status).c_str(),
                n);
  std::printf("\n%zu concurrent %zu MB uploads; answers by status:", uploads, upload_mb);
  for (const auto& [status, n] : upload_statuses) std::printf(" %d=%zu", status, n);
  const size_t bound = idle_rss + uploads * 2 * (upload_mb << 20);
  std::printf("\nslow connections held: %zu\n", slow);
  std::printf("server RSS: idle %.0f MB, peak %.0f MB (bound: idle + %zu x 2 x %zu MB = %.0f MB)\n",
              idle_rss / 1048576.0, peak_rss / 1048576.0, uploads, upload_mb, bound / 1048576.0);
  std::sort(health_ms.begin(), health_ms.end());
  const auto at = [&](double p) {
    return health_ms.empty() ? 0.0 : health_ms[static_cast<size_t>(p * double(health_ms.size() - 1))];
  };
  std::printf("/healthz: %zu probes, p50 %.1f ms, p99 %.0f ms, longest %.0f ms, %zu failed\n", health_ms.size(),
              at(0.5), at(0.99), worst_health_ms.load(), health_failures.load());
  std::printf("server alive: %s; search after == before: %s\n", alive ? "yes" : "NO",
              after == before ? "yes" : "NO");
  const size_t errors500 = statuses[500] + upload_statuses[500];
  std::printf("responses 500: %zu\n", errors500);
  const bool ok = alive && after == before && errors500 == 0 && peak_rss <= bound && worst_health_ms < 1000 &&
                  health_failures == 0;
  std::printf("%s\n", ok ? "PASS" : "FAIL");
  return ok ? 0 : 1;
}
