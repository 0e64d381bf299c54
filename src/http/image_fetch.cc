#include "http/image_fetch.h"

#include <arpa/inet.h>
#include <httplib.h>
#include <netdb.h>

#include <algorithm>
#include <cstring>
#include <regex>

#include "common/error.h"

namespace lookalike {
namespace {

[[noreturn]] void bad(const std::string& message) {
  throw Error(ErrorCode::kInvalidArgument, message);
}

struct ParsedUrl {
  std::string scheme, host, path;
  int port = 0;
};

ParsedUrl parse_url(const std::string& url) {
  static const std::regex kUrl(R"(^(https?)://([A-Za-z0-9.-]+)(?::(\d{1,5}))?(/[^\s#]*)?$)");
  std::smatch m;
  if (url.size() > 2048 || !std::regex_match(url, m, kUrl)) {
    bad("'image_url' must be an http:// or https:// URL with a host name");
  }
  ParsedUrl p{m[1], m[2], m[4].matched ? std::string(m[4]) : "/", 0};
  std::transform(p.host.begin(), p.host.end(), p.host.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  p.port = m[3].matched ? std::stoi(m[3]) : (p.scheme == "https" ? 443 : 80);
  if (p.port < 1 || p.port > 65535) bad("'image_url' has an invalid port");
  return p;
}

// The addresses the host resolves to; every one must pass the policy, so a name with one
// public and one private address is refused.
std::vector<std::string> resolve(const std::string& host) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (::getaddrinfo(host.c_str(), nullptr, &hints, &found) != 0 || !found) {
    throw Error(ErrorCode::kUnprocessable, "'image_url' host " + host + " does not resolve");
  }
  std::vector<std::string> out;
  for (addrinfo* a = found; a; a = a->ai_next) {
    char text[INET6_ADDRSTRLEN] = {};
    const void* raw = a->ai_family == AF_INET
                          ? static_cast<const void*>(&reinterpret_cast<sockaddr_in*>(a->ai_addr)->sin_addr)
                          : static_cast<const void*>(&reinterpret_cast<sockaddr_in6*>(a->ai_addr)->sin6_addr);
    if (::inet_ntop(a->ai_family, raw, text, sizeof text)) out.emplace_back(text);
  }
  ::freeaddrinfo(found);
  return out;
}

bool private_v4(uint32_t a) {  // host byte order
  const auto in = [a](uint32_t net, int bits) { return (a >> (32 - bits)) == (net >> (32 - bits)); };
  return in(0x00000000, 8) || in(0x0A000000, 8) || in(0x7F000000, 8) || in(0xA9FE0000, 16) ||
         in(0xAC100000, 12) || in(0xC0A80000, 16) || in(0x64400000, 10);
}

}  // namespace

bool is_private_address(const std::string& numeric) {
  in_addr v4{};
  if (::inet_pton(AF_INET, numeric.c_str(), &v4) == 1) return private_v4(ntohl(v4.s_addr));
  in6_addr v6{};
  if (::inet_pton(AF_INET6, numeric.c_str(), &v6) != 1) return true;  // unparsable: refuse
  const unsigned char* b = v6.s6_addr;
  static const unsigned char kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF};
  if (std::memcmp(b, kMapped, 12) == 0) {
    return private_v4((uint32_t{b[12]} << 24) | (uint32_t{b[13]} << 16) | (uint32_t{b[14]} << 8) | b[15]);
  }
  static const unsigned char kZero[15] = {};
  const bool unspecified_or_loopback = std::memcmp(b, kZero, 15) == 0 && (b[15] == 0 || b[15] == 1);
  const bool unique_local = (b[0] & 0xFE) == 0xFC;
  const bool link_local = b[0] == 0xFE && (b[1] & 0xC0) == 0x80;
  return unspecified_or_loopback || unique_local || link_local;
}

std::string fetch_image(const std::string& url, const FetchPolicy& policy) {
  if (policy.allowed_hosts.empty()) {
    bad("'image_url' is disabled on this server (start it with --fetch-allow-host HOST)");
  }
  const ParsedUrl p = parse_url(url);
  if (std::find(policy.allowed_hosts.begin(), policy.allowed_hosts.end(), p.host) ==
      policy.allowed_hosts.end()) {
    bad("'image_url' host " + p.host + " is not on this server's allow-list");
  }
  const auto addresses = resolve(p.host);
  for (const auto& address : addresses) {
    if (!policy.allow_private_addresses && is_private_address(address)) {
      bad("'image_url' host " + p.host + " resolves to the private address " + address);
    }
  }
  // Connect to the address just checked (not a second lookup that could answer differently);
  // https keeps the host name for SNI and certificate checks.
  const std::string target = p.scheme == "https" ? p.host : addresses.front();
  httplib::Client client(p.scheme + "://" +
                         (target.find(':') != std::string::npos ? "[" + target + "]" : target) + ":" +
                         std::to_string(p.port));
  client.set_connection_timeout(policy.timeout_seconds, 0);
  client.set_read_timeout(policy.timeout_seconds, 0);
  client.set_follow_location(false);
  std::string body;
  bool too_large = false;
  const auto res = client.Get(p.path, httplib::Headers{{"Host", p.host}}, [&](const char* data, size_t n) {
    if (body.size() + n > policy.max_bytes) {
      too_large = true;
      return false;
    }
    body.append(data, n);
    return true;
  });
  if (too_large) {
    throw Error(ErrorCode::kPayloadTooLarge,
                "'image_url' is over the limit of " + std::to_string(policy.max_bytes) + " bytes");
  }
  if (!res)
    throw Error(ErrorCode::kUnprocessable,
                "'image_url' could not be fetched: " + httplib::to_string(res.error()));
  if (res->status != 200) {
    throw Error(ErrorCode::kUnprocessable, "'image_url' answered HTTP " + std::to_string(res->status));
  }
  return body;
}

}  // namespace lookalike
