// listeners[]: addresses, PROXY protocol, TLS and routes.
#include <algorithm>
#include <cctype>

#include "meridian/core/units.hpp"

#include "config/address.hpp"
#include "config/walk.hpp"

namespace meridian::config::detail {
namespace {

constexpr Choice<ProxyProtocol> kProxyProtocols[] = {{"off", ProxyProtocol::off},
                                                     {"v1", ProxyProtocol::v1},
                                                     {"v2", ProxyProtocol::v2},
                                                     {"any", ProxyProtocol::any}};
constexpr Choice<std::string_view> kTlsVersions[] = {{"1.2", "1.2"}, {"1.3", "1.3"}};
constexpr Choice<std::string_view> kAlpn[] = {{"h2", "h2"}, {"http/1.1", "http/1.1"}};
constexpr Choice<RateLimitScope> kScopes[] = {{"local", RateLimitScope::local},
                                              {"global", RateLimitScope::global}};

// RFC 9110 token: method names and header field names.
bool is_token(std::string_view text) {
  static constexpr std::string_view kExtra = "!#$%&'*+-.^_`|~";
  return !text.empty() && std::all_of(text.begin(), text.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || kExtra.find(c) != std::string_view::npos;
  });
}

bool is_host_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_';
}

// match.host: exact ("api.example.com"), wildcard ("*.example.com" -> suffix
// ".example.com"), or "" / "*" for any. Compared case-insensitively, so stored lower-cased.
void read_host(Diagnostics& diag, const Field& field, RouteMatch& match) {
  auto text = read_string(diag, field);
  if (!text) return;
  std::string host = ascii_lower(*text);
  if (host.empty() || host == "*") return;
  bool wildcard = host.starts_with("*.");
  std::string_view name = wildcard ? std::string_view(host).substr(2) : std::string_view(host);
  bool bracketed = name.size() > 2 && name.front() == '[' && name.back() == ']';
  if (name.find('*') != std::string_view::npos) {
    diag.error(field, "a wildcard is allowed only as a leading \"*.\", got " + quoted(*text));
    return;
  }
  if (!bracketed && name.find(':') != std::string_view::npos) {
    diag.error(field, "must be a host without a port (the port is ignored when matching), got " +
                          quoted(*text));
    return;
  }
  bool valid =
      bracketed ? !wildcard : !name.empty() && std::all_of(name.begin(), name.end(), is_host_char);
  if (!valid) {
    diag.error(field, "expected a host name, \"*.domain\" or \"*\", got " + quoted(*text));
    return;
  }
  if (wildcard) {
    match.host_suffix = host.substr(1);
  } else {
    match.host = host;
  }
}

std::optional<std::string> read_path(Diagnostics& diag, const Field& field) {
  auto text = read_string(diag, field);
  if (!text) return std::nullopt;
  if (!text->starts_with('/')) {
    diag.error(field, "must start with '/', got " + quoted(*text));
    return std::nullopt;
  }
  if (std::any_of(text->begin(), text->end(),
                  [](char c) { return static_cast<unsigned char>(c) <= 0x20 || c == 0x7f; })) {
    diag.error(field, "must not contain spaces or control characters, got " + quoted(*text));
    return std::nullopt;
  }
  return text;
}

RouteMatch read_match(Diagnostics& diag, const Field& field) {
  RouteMatch match;
  MapReader map(diag, field, Section::route_match);
  if (auto f = map.get("host")) read_host(diag, *f, match);
  auto prefix = map.get("path_prefix");
  auto exact = map.get("path");
  if (prefix && exact) {
    // Reported at whichever of the two comes second in the file.
    const Field& later = prefix->mark.pos > exact->mark.pos ? *prefix : *exact;
    diag.error(later, "path_prefix and path are mutually exclusive");
  } else if (prefix) {
    match.path_prefix = read_path(diag, *prefix);
  } else if (exact) {
    match.path = read_path(diag, *exact);
  }
  if (auto f = map.get("methods")) {
    for (const auto& item : read_one_or_many(diag, *f)) {
      auto method = read_string(diag, item);
      if (!method) continue;
      if (!is_token(*method)) {
        diag.error(item, "expected an HTTP method, got " + quoted(*method));
        continue;
      }
      std::string upper = ascii_upper(*method);
      if (std::find(match.methods.begin(), match.methods.end(), upper) != match.methods.end()) {
        diag.error(item, "duplicate method " + quoted(upper));
        continue;
      }
      match.methods.push_back(std::move(upper));
    }
  }
  return match;
}

// rate_limit.key: client_ip | route | header:NAME.
void read_rate_limit_key(Diagnostics& diag, const Field& field, RateLimit& limit) {
  auto text = read_string(diag, field);
  if (!text) return;
  if (*text == "client_ip") {
    limit.key = RateLimitKey::client_ip;
  } else if (*text == "route") {
    limit.key = RateLimitKey::route;
  } else if (text->starts_with("header:") && is_token(std::string_view(*text).substr(7))) {
    limit.key = RateLimitKey::header;
    limit.header_name = ascii_lower(text->substr(7));
  } else {
    diag.error(field, "expected client_ip, route or header:NAME, got " + quoted(*text));
  }
}

std::optional<RateLimit> read_rate_limit(Walk& walk, const Field& field) {
  auto& diag = walk.diag;
  MapReader map(diag, field, Section::rate_limit);
  if (!map.valid()) return std::nullopt;
  RateLimit limit;
  if (auto f = map.require("rate")) {
    if (auto text = read_string(diag, *f)) {
      auto rate = parse_rate(*text);
      if (!rate) {
        diag.error(*f, "expected a rate like 100/s, 10/m or 5/h, got " + quoted(*text));
      } else if (rate->tokens == 0) {
        diag.error(*f, "rate must be greater than zero, got " + quoted(*text));
      } else {
        limit.rate = Rate{rate->tokens, rate->per};
      }
    }
  }
  if (!map.read("burst", limit.burst, 1) && limit.rate.tokens > 0) {
    // Default: one second's worth of tokens, rounded up, at least 1. `per` is a whole
    // number of seconds (s, m or h), so this stays in integers.
    auto seconds = static_cast<std::uint64_t>(limit.rate.per.count() / 1000);
    limit.burst = std::max<std::uint64_t>(
        1, limit.rate.tokens / seconds + (limit.rate.tokens % seconds != 0 ? 1 : 0));
  }
  if (auto f = map.get("key")) read_rate_limit_key(diag, *f, limit);
  if (map.read("scope", limit.scope, kScopes) && limit.scope == RateLimitScope::global) {
    walk.global_scope_uses.push_back(*map.get("scope"));
  }
  return limit;
}

// routes[].retry: `on` lists connect, reset and origin status codes (400-599).
RetryPolicy read_retry(Diagnostics& diag, const Field& field) {
  RetryPolicy retry;
  MapReader map(diag, field, Section::route_retry);
  if (!map.valid()) return retry;
  if (auto f = map.get("on")) {
    retry.on_connect = retry.on_reset = false;
    for (const auto& item : read_one_or_many(diag, *f)) {
      auto text = read_string(diag, item);
      if (!text) continue;
      if (*text == "connect") {
        retry.on_connect = true;
      } else if (*text == "reset") {
        retry.on_reset = true;
      } else if (auto code = parse_uint(*text); code && *code >= 400 && *code <= 599) {
        retry.on_status.set(static_cast<std::size_t>(*code));
      } else {
        diag.error(
            item, "expected connect, reset or a status code from 400 to 599, got " + quoted(*text));
      }
    }
  }
  map.read("per_try_timeout", retry.per_try_timeout, AllowZero::yes);
  if (auto f = map.get("budget")) {
    if (auto share = read_percent(diag, *f)) retry.budget = *share;
  }
  map.read("backoff", retry.backoff, AllowZero::yes);
  return retry;
}

Route read_route(Walk& walk, const Field& field, std::size_t listener_index,
                 std::size_t route_index, UniqueNames& names) {
  auto& diag = walk.diag;
  Route route;
  MapReader map(diag, field, Section::route);
  if (!map.valid()) return route;
  if (auto f = map.require("name")) route.name = names.read(diag, *f);
  if (auto f = map.get("match")) route.match = read_match(diag, *f);
  if (auto f = map.require("backend")) {
    if (auto name = read_non_empty_string(diag, *f)) {
      route.backend = *name;
      walk.backend_refs.push_back({listener_index, route_index, *f});
    }
  }
  map.read("timeout", route.timeout, AllowZero::no);
  if (map.read("retries", route.retries) && route.retries > Route::kMaxRetries) {
    diag.error(*map.get("retries"), "at most " + std::to_string(Route::kMaxRetries) +
                                        " retries, got " + std::to_string(route.retries));
  }
  if (auto f = map.get("retry")) route.retry = read_retry(diag, *f);
  if (auto f = map.get("rate_limit")) route.rate_limit = read_rate_limit(walk, *f);
  return route;
}

std::optional<ListenerTls> read_tls(Diagnostics& diag, const Field& field) {
  MapReader map(diag, field, Section::listener_tls);
  if (!map.valid()) return std::nullopt;
  ListenerTls tls;
  if (auto f = map.require("certificates")) {
    auto items = read_sequence(diag, *f);
    if (items.empty() && (f->node.IsNull() || f->node.IsSequence())) {
      diag.error(*f, "at least one certificate is required");
    }
    for (const auto& item : items) {
      MapReader pair(diag, item, Section::certificate);
      TlsCertificate certificate;
      if (auto cert = pair.require("cert")) {
        auto path = read_non_empty_string(diag, *cert);
        if (path && check_readable_file(diag, *cert, *path, "certificate file")) {
          certificate.cert = *path;
        }
      }
      if (auto key = pair.require("key")) {
        auto path = read_non_empty_string(diag, *key);
        if (path && check_readable_file(diag, *key, *path, "key file")) certificate.key = *path;
      }
      tls.certificates.push_back(std::move(certificate));
    }
  }
  if (auto f = map.get("min_version")) {
    if (auto v = read_choice(diag, *f, kTlsVersions)) tls.min_version = std::string(*v);
  }
  if (auto f = map.get("alpn")) {
    tls.alpn.clear();
    auto items = read_one_or_many(diag, *f);
    if (items.empty() && (f->node.IsNull() || f->node.IsSequence())) {
      diag.error(*f, "at least one protocol is required (h2, http/1.1)");
    }
    for (const auto& item : items) {
      auto protocol = read_choice(diag, item, kAlpn);
      if (!protocol) continue;
      if (std::find(tls.alpn.begin(), tls.alpn.end(), *protocol) != tls.alpn.end()) {
        diag.error(item, "duplicate protocol " + quoted(*protocol));
        continue;
      }
      tls.alpn.emplace_back(*protocol);
    }
  }
  return tls;
}

Listener read_listener(Walk& walk, const Field& field, std::size_t index, UniqueNames& names) {
  auto& diag = walk.diag;
  Listener listener;
  MapReader map(diag, field, Section::listener);
  if (!map.valid()) return listener;
  if (auto f = map.require("name")) listener.name = names.read(diag, *f);
  if (auto f = map.require("listen")) {
    if (auto address = read_address(diag, *f, AllowZero::yes)) {
      listener.listen = *address;
      walk.bound_addresses.push_back({*f, "listener " + quoted(listener.name), address->resolved});
    }
  }
  if (auto f = map.get("proxy_protocol")) {
    if (is_plain_false(f->node)) {
      listener.proxy_protocol = ProxyProtocol::off;
    } else if (auto v = read_choice(diag, *f, kProxyProtocols)) {
      listener.proxy_protocol = *v;
    }
  }
  if (auto f = map.get("tls")) listener.tls = read_tls(diag, *f);
  if (auto f = map.require("routes")) {
    auto items = read_sequence(diag, *f);
    if (items.empty() && (f->node.IsNull() || f->node.IsSequence())) {
      diag.error(*f, "at least one route is required");
    }
    UniqueNames route_names("route");
    for (std::size_t i = 0; i < items.size(); ++i) {
      listener.routes.push_back(read_route(walk, items[i], index, i, route_names));
    }
  }
  return listener;
}

}  // namespace

void read_listeners(Walk& walk, const Field& field) {
  auto items = read_sequence(walk.diag, field);
  if (items.empty() && (field.node.IsNull() || field.node.IsSequence())) {
    walk.diag.error(field, "at least one listener is required");
  }
  UniqueNames names("listener");
  for (std::size_t i = 0; i < items.size(); ++i) {
    walk.config.listeners.push_back(read_listener(walk, items[i], i, names));
  }
}

}  // namespace meridian::config::detail
