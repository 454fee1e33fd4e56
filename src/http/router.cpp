#include "meridian/http/router.hpp"

#include "meridian/http/message_head.hpp"

namespace meridian::http {

namespace {

bool ends_with_ci(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && iequals(s.substr(s.size() - suffix.size()), suffix);
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// True when `raw`, percent-decoded with '+' as a space, equals `plain`. A '%' not followed by
// two hex digits stands for itself (as browsers and most servers read it).
bool decoded_equals(std::string_view raw, std::string_view plain) {
  std::size_t j = 0;
  for (std::size_t i = 0; i < raw.size(); ++i, ++j) {
    char c = raw[i];
    if (c == '+') {
      c = ' ';
    } else if (c == '%' && i + 2 < raw.size()) {
      const int hi = hex_value(raw[i + 1]);
      const int lo = hex_value(raw[i + 2]);
      if (hi >= 0 && lo >= 0) {
        c = static_cast<char>(hi * 16 + lo);
        i += 2;
      }
    }
    if (j >= plain.size() || plain[j] != c) return false;
  }
  return j == plain.size();
}

bool headers_match(const std::vector<config::ExactMatch>& wanted, const RequestHead& head) {
  for (const auto& w : wanted) {
    bool found = false;
    for (const auto& f : head.fields) {
      if (f.value == w.value && iequals(f.name, w.name)) {
        found = true;
        break;
      }
    }
    if (!found) return false;
  }
  return true;
}

}  // namespace

bool query_has(std::string_view query, std::string_view name, std::string_view value) {
  while (!query.empty()) {
    const auto amp = query.find('&');
    const auto pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
    const auto eq = pair.find('=');
    const auto key = pair.substr(0, eq);
    const auto val = eq == std::string_view::npos ? std::string_view{} : pair.substr(eq + 1);
    if (decoded_equals(key, name) && decoded_equals(val, value)) return true;
  }
  return false;
}

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

bool route_matches(const config::Route& route, const RequestHead& head,
                   std::string_view host_no_port) {
  const auto& m = route.match;
  if (!m.host_suffix.empty()) {
    // "*.example.com" covers "a.example.com" and "a.b.example.com", not "example.com".
    if (host_no_port.size() <= m.host_suffix.size() || !ends_with_ci(host_no_port, m.host_suffix)) {
      return false;
    }
  } else if (!m.host.empty() && !iequals(host_no_port, m.host)) {
    return false;
  }
  if (m.path && head.path != *m.path) return false;
  if (m.path_prefix && head.path.substr(0, m.path_prefix->size()) != *m.path_prefix) return false;
  if (!m.methods.empty()) {
    bool any = false;
    for (const auto& allowed : m.methods) {
      if (allowed == head.method) {
        any = true;
        break;
      }
    }
    if (!any) return false;
  }
  if (!m.headers.empty() && !headers_match(m.headers, head)) return false;
  if (!m.query.empty()) {
    const auto q = head.target.find('?');
    const auto query = q == std::string_view::npos ? std::string_view{} : head.target.substr(q + 1);
    for (const auto& p : m.query) {
      if (!query_has(query, p.name, p.value)) return false;
    }
  }
  return true;
}

std::size_t split_choice(const config::Route& route, std::uint64_t hash) {
  // (top 32 bits of hash) * total / 2^32: the point in [0, total) without a modulo's bias.
  // total is far below 2^32 (weights are at most 10^6, a split has a handful of entries).
  std::uint64_t point = ((hash >> 32) * route.total_weight) >> 32;
  for (std::size_t i = 0; i < route.backends.size(); ++i) {
    if (point < route.backends[i].weight) return i;
    point -= route.backends[i].weight;
  }
  return route.backends.size() - 1;
}

Router::Router(const std::vector<config::Route>& routes) : routes_(&routes) {}

const config::Route* Router::match(const RequestHead& head) const {
  if (routes_ == nullptr) return nullptr;
  const auto h = host_without_port(head.host);
  for (const auto& r : *routes_) {
    if (route_matches(r, head, h)) return &r;
  }
  return nullptr;
}

}  // namespace meridian::http
