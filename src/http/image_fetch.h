// Server-side download of a search image given by URL (`image_url`), for shops whose photos
// already live on a CDN. Off unless hosts are allow-listed; addresses that are not public unicast
// (loopback, private, link-local, CGNAT, multicast, reserved, and IPv6 forms that embed or tunnel
// to such IPv4 addresses) are refused unless explicitly allowed (no SSRF into the shop's own
// network).
//
// The host is resolved once; every address is checked, and the connection goes to exactly a
// checked address (http and https alike; https keeps the host name for SNI and the certificate
// check), so a DNS answer that changes between the check and the connection cannot steer it.
// The whole download (connect, TLS handshake, headers, body) is bounded by timeout_seconds and
// the body by max_bytes, whatever the server declares or however slowly it sends.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace lookalike {

struct FetchPolicy {
  std::vector<std::string> allowed_hosts;  // exact host names; empty = image_url disabled
  bool allow_private_addresses = false;
  size_t max_bytes = 10 << 20;  // the body is never held beyond this
  int timeout_seconds = 5;      // the whole download, name resolution included (at least 1)
};

// An image_url that passed check_image_url.
struct ImageUrl {
  std::string scheme;  // "http" or "https"
  std::string host;    // lower case: a host name or a dotted IPv4 address, as allow-listed
  int port = 0;        // 1..65535 (80 / 443 when the URL gives none)
  std::string path;    // starts with '/': printable ASCII without spaces or '#' (query included)
};

// Returns the body of a 200 answer. Throws Error: kInvalidArgument (disabled, malformed URL,
// host not allowed, refused address), kPayloadTooLarge (declared or received body over
// max_bytes), kUnprocessable (does not resolve, unreachable, over the deadline, non-200).
std::string fetch_image(const std::string& url, const FetchPolicy& policy);

// The URL and allow-list decision alone, without the network: throws Error kInvalidArgument
// (disabled, malformed URL, host not on the allow-list), saying which rule refused it.
ImageUrl check_image_url(const std::string& url, const FetchPolicy& policy);

// Throws Error kInvalidArgument naming the host, the address and the rule when the policy
// refuses one of the addresses (numeric, as resolved), or when there are none.
void check_image_addresses(const ImageUrl& url, const std::vector<std::string>& addresses,
                           const FetchPolicy& policy);

// The download after resolution: checks `addresses` (check_image_addresses), then connects to
// them in order (the next only when connecting fails) and never resolves url.host again.
std::string fetch_image_from(const ImageUrl& url, const std::vector<std::string>& addresses,
                             const FetchPolicy& policy);

// Why a numeric IPv4 or IPv6 address is not a public unicast address, e.g.
// "loopback 127.0.0.0/8" or "NAT64 64:ff9b::/96 of 10.0.0.1: private 10.0.0.0/8 (RFC 1918)";
// empty for a public address. Anything that does not parse is refused.
std::string address_refusal(const std::string& numeric_address);

// True when address_refusal is not empty.
bool is_private_address(const std::string& numeric_address);

}  // namespace lookalike
