// Route matching for one listener (docs/configuration.md, routes): the first route whose host,
// path, method, header fields and query parameters all match wins. Built once per configuration
// snapshot and read-only afterwards, so every worker uses it without synchronisation. O(routes) per
// request with no allocation: listeners carry a handful of routes, and first-match-wins semantics
// need the order anyway.
#pragma once

#include <string_view>
#include <vector>

#include "meridian/config/config.hpp"
#include "meridian/http/message_head.hpp"

namespace meridian::http {

// The host part of a Host value: port removed, brackets kept for IPv6, one trailing dot
// removed ("Example.com.:80" -> "Example.com"). Case is left as received.
std::string_view host_without_port(std::string_view host);

class Router {
 public:
  Router() = default;
  explicit Router(const std::vector<config::Route>& routes);

  const config::Route* match(const RequestHead& head) const;

 private:
  const std::vector<config::Route>* routes_ = nullptr;
};

// Exposed for unit tests: one route's predicate; `host_no_port` is host_without_port(head.host).
bool route_matches(const config::Route& route, const RequestHead& head,
                   std::string_view host_no_port);

// The entry of route.backends (a weighted split) that a request hashing to `hash` goes to:
// each entry owns a slice of [0, 2^64) in proportion to its weight.
std::size_t split_choice(const config::Route& route, std::uint64_t hash);

// True when the query string `query` (without the '?') has a parameter named `name` whose
// value, percent-decoded ('+' as a space), is exactly `value`. Names are compared decoded too.
// No allocation: decoding happens during the comparison.
bool query_has(std::string_view query, std::string_view name, std::string_view value);

}  // namespace meridian::http
