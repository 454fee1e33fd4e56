// Route matching for one listener (docs/configuration.md, routes): the first route whose host,
// path and method all match wins. Built once per configuration snapshot and read-only
// afterwards, so every worker uses it without synchronisation. O(routes) per request with no
// allocation: listeners carry a handful of routes, and first-match-wins semantics need the
// order anyway.
#pragma once

#include <string_view>
#include <vector>

#include "meridian/config/config.hpp"

namespace meridian::http {

// The host part of a Host value: port removed, brackets kept for IPv6, one trailing dot
// removed ("Example.com.:80" -> "Example.com"). Case is left as received.
std::string_view host_without_port(std::string_view host);

class Router {
 public:
  Router() = default;
  explicit Router(const std::vector<config::Route>& routes);

  // `host` as received (any case, with or without port); `path` without the query.
  const config::Route* match(std::string_view host, std::string_view path,
                             std::string_view method) const;

 private:
  const std::vector<config::Route>* routes_ = nullptr;
};

// Exposed for unit tests: one route's predicate.
bool route_matches(const config::Route& route, std::string_view host_no_port, std::string_view path,
                   std::string_view method);

}  // namespace meridian::http
