#include "meridian/http/router.hpp"

#include "meridian/http/message_head.hpp"

namespace meridian::http {

namespace {

bool ends_with_ci(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && iequals(s.substr(s.size() - suffix.size()), suffix);
}

}  // namespace

std::string_view host_without_port(std::string_view host) {
  if (!host.empty() && host.front() == '[') {
    const auto close = host.find(']');
    return close == std::string_view::npos ? host : host.substr(0, close + 1);
  }
  const auto colon = host.rfind(':');
  if (colon != std::string_view::npos) host = host.substr(0, colon);
  if (!host.empty() && host.back() == '.') host.remove_suffix(1);
  return host;
}

bool route_matches(const config::Route& route, std::string_view host_no_port, std::string_view path,
                   std::string_view method) {
  const auto& m = route.match;
  if (!m.host_suffix.empty()) {
    // "*.example.com" covers "a.example.com" and "a.b.example.com", not "example.com".
    if (host_no_port.size() <= m.host_suffix.size() || !ends_with_ci(host_no_port, m.host_suffix)) {
      return false;
    }
  } else if (!m.host.empty() && !iequals(host_no_port, m.host)) {
    return false;
  }
  if (m.path && path != *m.path) return false;
  if (m.path_prefix && path.substr(0, m.path_prefix->size()) != *m.path_prefix) return false;
  if (!m.methods.empty()) {
    bool any = false;
    for (const auto& allowed : m.methods) {
      if (allowed == method) {
        any = true;
        break;
      }
    }
    if (!any) return false;
  }
  return true;
}

Router::Router(const std::vector<config::Route>& routes) : routes_(&routes) {}

const config::Route* Router::match(std::string_view host, std::string_view path,
                                   std::string_view method) const {
  if (routes_ == nullptr) return nullptr;
  const auto h = host_without_port(host);
  for (const auto& r : *routes_) {
    if (route_matches(r, h, path, method)) return &r;
  }
  return nullptr;
}

}  // namespace meridian::http
