// Server-side download of a search image given by URL (`image_url`), for shops whose photos
// already live on a CDN. Off unless hosts are allow-listed; private, loopback and link-local
// addresses are refused unless explicitly allowed (no SSRF into the shop's own network).
#pragma once

#include <string>
#include <vector>

namespace lookalike {

struct FetchPolicy {
  std::vector<std::string> allowed_hosts;  // exact host names; empty = image_url disabled
  bool allow_private_addresses = false;
  size_t max_bytes = 10 << 20;
  int timeout_seconds = 5;
};

// Returns the body of a 200 answer. Throws Error: kInvalidArgument (disabled, malformed URL,
// host not allowed, private address), kPayloadTooLarge, kUnprocessable (unreachable, non-200).
std::string fetch_image(const std::string& url, const FetchPolicy& policy);

// True for loopback, private (RFC 1918 / unique-local), link-local, CGNAT and unspecified
// addresses, IPv4 or IPv6 (including IPv4-mapped).
bool is_private_address(const std::string& numeric_address);

}  // namespace lookalike
