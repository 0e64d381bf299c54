// libFuzzer target: the image_url decision without the network. Any text is either refused
// with lookalike::Error kInvalidArgument or becomes an ImageUrl that is safe to put into a
// request line (scheme, allow-listed lower-case host, port in range, printable path) and parses
// back to itself; the address rules agree with themselves across the IPv6 forms that carry an
// IPv4 address (mapped, NAT64, 6to4).
#include <arpa/inet.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "common/error.h"
#include "http/image_fetch.h"

namespace {

using lookalike::Error;
using lookalike::ErrorCode;

bool valid(const lookalike::ImageUrl& u, const lookalike::FetchPolicy& policy) {
  if (u.scheme != "http" && u.scheme != "https") return false;
  if (u.host.empty() || u.host.size() > 253) return false;
  if (std::find(policy.allowed_hosts.begin(), policy.allowed_hosts.end(), u.host) == policy.allowed_hosts.end())
    return false;
  for (char c : u.host) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-')) return false;
  }
  if (u.port < 1 || u.port > 65535) return false;
  if (u.path.empty() || u.path[0] != '/') return false;
  for (char c : u.path) {
    if (c <= ' ' || c >= 0x7F || c == '#') return false;
  }
  return true;
}

std::string v4_text(const unsigned char* b) {
  char text[INET_ADDRSTRLEN] = {};
  ::inet_ntop(AF_INET, b, text, sizeof text);
  return text;
}

std::string v6_text(const unsigned char* b) {
  char text[INET6_ADDRSTRLEN] = {};
  ::inet_ntop(AF_INET6, b, text, sizeof text);
  return text;
}

// An IPv6 form that embeds the IPv4 address at `v4` is public exactly when that address is.
void check_embedding(const unsigned char* v6, const unsigned char* v4) {
  if (lookalike::is_private_address(v6_text(v6)) != lookalike::is_private_address(v4_text(v4))) __builtin_trap();
}

void check_address_bytes(const uint8_t* data, size_t size) {
  if (size < 16) return;
  unsigned char b[16];
  std::memcpy(b, data, 16);
  const std::string text = v6_text(b);
  const std::string refusal = lookalike::address_refusal(text);
  if (lookalike::is_private_address(text) != !refusal.empty()) __builtin_trap();
  // Always refused: unique-local, link-local, site-local, multicast.
  if (((b[0] & 0xFE) == 0xFC || b[0] == 0xFF || (b[0] == 0xFE && (b[1] & 0x80))) && refusal.empty()) __builtin_trap();
  // Public IPv6 is global unicast 2000::/3, or an embedding of a public IPv4 address.
  static const unsigned char kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF};
  static const unsigned char kNat64[12] = {0, 0x64, 0xFF, 0x9B, 0, 0, 0, 0, 0, 0, 0, 0};
  const bool mapped = std::memcmp(b, kMapped, 12) == 0;
  const bool nat64 = std::memcmp(b, kNat64, 12) == 0;
  if (refusal.empty() && (b[0] & 0xE0) != 0x20 && !mapped && !nat64) __builtin_trap();
  // The same IPv4 address (the last four bytes) in each embedding.
  unsigned char v6[16];
  std::memcpy(v6, kMapped, 12);
  std::memcpy(v6 + 12, b + 12, 4);
  check_embedding(v6, b + 12);
  std::memcpy(v6, kNat64, 12);
  check_embedding(v6, b + 12);
  std::memset(v6, 0, 16);
  v6[0] = 0x20;
  v6[1] = 0x02;
  std::memcpy(v6 + 2, b + 12, 4);
  check_embedding(v6, b + 12);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);

  lookalike::FetchPolicy policy;
  policy.allowed_hosts = {"cdn.example.com", "127.0.0.1", "a", "xn--bcher-kva.example"};
  try {
    const lookalike::ImageUrl u = lookalike::check_image_url(text, policy);
    if (!valid(u, policy)) __builtin_trap();
    // Written back out, the URL means the same thing.
    const auto again =
        lookalike::check_image_url(u.scheme + "://" + u.host + ":" + std::to_string(u.port) + u.path, policy);
    if (again.scheme != u.scheme || again.host != u.host || again.port != u.port || again.path != u.path)
      __builtin_trap();
    // The address decision for the URL's host when it is numeric, and for the text as an address.
    for (const std::string& address : {u.host, text}) {
      try {
        lookalike::check_image_addresses(u, {address}, policy);
        if (lookalike::is_private_address(address)) __builtin_trap();
      } catch (const Error& e) {
        if (e.code() != ErrorCode::kInvalidArgument) __builtin_trap();
        if (!lookalike::is_private_address(address)) __builtin_trap();
      }
    }
  } catch (const Error& e) {
    if (e.code() != ErrorCode::kInvalidArgument) __builtin_trap();
  }

  lookalike::FetchPolicy off;
  try {
    lookalike::check_image_url(text, off);
    __builtin_trap();  // no allow-list: always refused
  } catch (const Error& e) {
    if (e.code() != ErrorCode::kInvalidArgument) __builtin_trap();
  }

  const std::string refusal = lookalike::address_refusal(text);
  if (lookalike::is_private_address(text) != !refusal.empty()) __builtin_trap();
  check_address_bytes(data, size);
  return 0;
}
