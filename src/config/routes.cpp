// listeners[].routes[]: what a request must look like (match) and what the route does with
// it (backend, a weighted split of backends, or a redirect), with its header rules, timeout,
// retries and rate limit.
#include <algorithm>
#include <cctype>
#include <iterator>

#include "meridian/core/units.hpp"

#include "config/address.hpp"
#include "config/walk.hpp"

namespace meridian::config::detail {
namespace {

constexpr Choice<RateLimitScope> kScopes[] = {{"local", RateLimitScope::local},
                                              {"global", RateLimitScope::global}};

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

// A header value meridian writes into a head or compares with one (RFC 9110 5.5): visible
// characters (obs-text included), with spaces and tabs only inside -- HTTP/2 peers reset a
// stream whose field value has control characters or whitespace at either end (RFC 9113
// 8.2.1), and a received value never has them at its ends, so a match on one could not hold.
bool is_field_value(std::string_view text) {
  if (!text.empty() &&
      (text.front() == ' ' || text.front() == '\t' || text.back() == ' ' || text.back() == '\t')) {
    return false;
  }
  return std::all_of(text.begin(), text.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return u == '\t' || (u >= 0x20 && u != 0x7f);
  });
}

// A header field value from the file, reported unless is_field_value().
std::optional<std::string> read_field_value(Diagnostics& diag, const Field& field) {
  auto text = read_string(diag, field);
  if (text && !is_field_value(*text)) {
    diag.error(field,
               "a header value must be visible characters, with spaces or tabs only "
               "inside, got " +
                   quoted(*text));
    return std::nullopt;
  }
  return text;
}

// match.headers: {name: value, ...}; names are tokens, compared case-insensitively.
void read_header_matches(Diagnostics& diag, const Field& field, std::vector<ExactMatch>& out) {
  for (const auto& [key, value] : read_free_map(diag, field)) {
    const std::string& name = key.node.Scalar();
    if (!is_token(name)) {
      diag.error(key, "expected a header field name, got " + quoted(name));
      continue;
    }
    auto text = read_field_value(diag, value);
    if (!text) continue;
    std::string lower = ascii_lower(name);
    if (std::any_of(out.begin(), out.end(), [&](const auto& m) { return m.name == lower; })) {
      diag.error(key, "duplicate header " + quoted(name));
      continue;
    }
    out.push_back({std::move(lower), std::move(*text)});
  }
}

// match.query: {name: value, ...}, compared with the request's percent-decoded parameters.
void read_query_matches(Diagnostics& diag, const Field& field, std::vector<ExactMatch>& out) {
  for (const auto& [key, value] : read_free_map(diag, field)) {
    const std::string& name = key.node.Scalar();
    if (name.empty()) {
      diag.error(key, "a query parameter name must not be empty");
      continue;
    }
    auto text = read_string(diag, value);
    if (!text) continue;
    if (std::any_of(out.begin(), out.end(), [&](const auto& m) { return m.name == name; })) {
      diag.error(key, "duplicate query parameter " + quoted(name));
      continue;
    }
    out.push_back({name, std::move(*text)});
  }
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
  if (auto f = map.get("headers")) read_header_matches(diag, *f, match.headers);
  if (auto f = map.get("query")) read_query_matches(diag, *f, match.query);
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

constexpr Choice<unsigned> kRedirectCodes[] = {
    {"301", 301}, {"302", 302}, {"307", 307}, {"308", 308}};
constexpr Choice<std::string_view> kSchemes[] = {{"http", "http"}, {"https", "https"}};

// routes[].redirect. An empty scheme, host or path keeps the request's own.
Redirect read_redirect(Diagnostics& diag, const Field& field) {
  Redirect redirect;
  MapReader map(diag, field, Section::redirect);
  if (!map.valid()) return redirect;
  if (auto f = map.get("scheme")) {
    if (auto text = read_string(diag, *f); text && !text->empty()) {
      if (auto v = read_choice(diag, *f, kSchemes)) redirect.scheme = std::string(*v);
    }
  }
  if (auto f = map.get("host")) {
    if (auto text = read_string(diag, *f); text && !text->empty()) {
      // "host" or "host:port"; an IPv6 literal only with its port ("[::1]:8443").
      const bool valid =
          text->find(':') == std::string::npos
              ? std::all_of(text->begin(), text->end(), is_host_char)
              : parse_host_port(*text).has_value() && parse_host_port(*text)->port != 0 &&
                    (text->front() == '[' ||
                     std::all_of(text->begin(),
                                 text->begin() + static_cast<std::ptrdiff_t>(text->rfind(':')),
                                 is_host_char));
      if (!valid) {
        diag.error(*f, "expected a host name, optionally with :port, got " + quoted(*text));
      } else {
        redirect.host = ascii_lower(*text);
      }
    }
  }
  if (auto f = map.get("path")) {
    if (auto text = read_string(diag, *f); text && !text->empty()) {
      if (auto path = read_path(diag, *f)) {
        if (path->find('?') != std::string::npos || path->find('#') != std::string::npos) {
          diag.error(*f,
                     "must be a path without '?' or '#' (the query is kept), got " + quoted(*path));
        } else {
          redirect.path = *path;
        }
      }
    }
  }
  if (auto f = map.get("code")) {
    if (auto v = read_choice(diag, *f, kRedirectCodes)) redirect.code = *v;
  }
  if (map.valid() && !map.has("scheme") && !map.has("host") && !map.has("path")) {
    diag.error(field,
               "a redirect needs a scheme, host or path to change: one keeping all three "
               "sends the client back to the URL it asked for, in a loop");
  }
  return redirect;
}

// Fields a header rule may not touch: framing and connection management are meridian's (it
// re-frames every message), and Host is the route's authority, not a header to rewrite.
bool reserved_field(std::string_view lower) {
  static constexpr std::string_view kReserved[] = {
      "content-length", "transfer-encoding", "connection", "keep-alive", "proxy-connection", "te",
      "trailer",        "upgrade",           "host"};
  return std::find(std::begin(kReserved), std::end(kReserved), lower) != std::end(kReserved);
}

std::optional<std::string> read_rule_name(Diagnostics& diag, const Field& field,
                                          const std::string& name) {
  if (!is_token(name)) {
    diag.error(field, "expected a header field name, got " + quoted(name));
    return std::nullopt;
  }
  std::string lower = ascii_lower(name);
  if (reserved_field(lower)) {
    diag.error(field, quoted(name) +
                          " is managed by meridian (framing, connection or routing) and cannot be "
                          "set or removed by a header rule");
    return std::nullopt;
  }
  return lower;
}

// headers.request / headers.response: {set: {name: value}, remove: [name, ...]}.
HeaderRules read_header_rules(Diagnostics& diag, const Field& field, Section section) {
  HeaderRules rules;
  MapReader map(diag, field, section);
  if (!map.valid()) return rules;
  auto named = [&rules](const std::string& lower) {
    return std::find(rules.remove.begin(), rules.remove.end(), lower) != rules.remove.end() ||
           std::any_of(rules.set.begin(), rules.set.end(),
                       [&](const auto& s) { return s.first == lower; });
  };
  if (auto f = map.get("set")) {
    for (const auto& [key, value] : read_free_map(diag, *f)) {
      auto name = read_rule_name(diag, key, key.node.Scalar());
      if (!name) continue;
      auto text = read_field_value(diag, value);
      if (!text) continue;
      if (named(*name)) {
        diag.error(key, "header " + quoted(key.node.Scalar()) + " is named twice");
        continue;
      }
      rules.set.emplace_back(std::move(*name), std::move(*text));
    }
  }
  if (auto f = map.get("remove")) {
    for (const auto& item : read_one_or_many(diag, *f)) {
      auto text = read_string(diag, item);
      if (!text) continue;
      auto name = read_rule_name(diag, item, *text);
      if (!name) continue;
      if (named(*name)) {
        diag.error(item, "header " + quoted(*text) + " is named twice");
        continue;
      }
      rules.remove.push_back(std::move(*name));
    }
  }
  return rules;
}

// routes[].backends: [{name, weight}, ...], a weighted split.
void read_route_backends(Walk& walk, const Field& field, std::size_t listener_index,
                         std::size_t route_index, Route& route) {
  auto& diag = walk.diag;
  auto items = read_sequence(diag, field);
  if (items.empty() && (field.node.IsNull() || field.node.IsSequence())) {
    diag.error(field, "at least one backend is required");
  }
  for (const auto& item : items) {
    MapReader map(diag, item, Section::route_backend);
    if (!map.valid()) continue;
    RouteBackend entry;
    auto name_field = map.require("name");
    if (!name_field) continue;
    auto name = read_non_empty_string(diag, *name_field);
    if (!name) continue;
    if (std::any_of(route.backends.begin(), route.backends.end(),
                    [&](const RouteBackend& b) { return b.name == *name; })) {
      diag.error(*name_field, "backend " + quoted(*name) + " is listed twice");
      continue;
    }
    entry.name = *name;
    if (auto f = map.get("weight")) {
      // A zero weight would be a backend that never gets a request: leave it out instead.
      if (auto w = read_uint(diag, *f, 1, 1'000'000)) entry.weight = static_cast<std::uint32_t>(*w);
    }
    walk.backend_refs.push_back({listener_index, route_index, route.backends.size(), *name_field});
    route.backends.push_back(std::move(entry));
  }
}

// routes[].mirror: {backend, percent}.
void read_mirror(Walk& walk, const Field& field, std::size_t listener_index,
                 std::size_t route_index, Route& route) {
  auto& diag = walk.diag;
  MapReader map(diag, field, Section::mirror);
  if (!map.valid()) return;
  Mirror mirror;
  auto name_field = map.require("backend");
  if (!name_field) return;
  auto name = read_non_empty_string(diag, *name_field);
  if (!name) return;
  mirror.backend = *name;
  if (auto f = map.get("percent")) {
    // `5` (as SPEC.md writes it) or `5%`: a number of percent either way.
    const bool sign = f->node.IsScalar() && f->node.Scalar().ends_with('%');
    if (auto share = sign ? read_percent(diag, *f) : read_double(diag, *f, 0, 100)) {
      mirror.percent = sign ? *share : *share / 100.0;
    }
  }
  route.mirror = std::move(mirror);
  walk.backend_refs.push_back({listener_index, route_index, 0, *name_field, true});
}

}  // namespace

Route read_route(Walk& walk, const Field& field, std::size_t listener_index,
                 std::size_t route_index, UniqueNames& names) {
  auto& diag = walk.diag;
  Route route;
  MapReader map(diag, field, Section::route);
  if (!map.valid()) return route;
  if (auto f = map.require("name")) route.name = names.read(diag, *f);
  if (auto f = map.get("match")) route.match = read_match(diag, *f);

  // Exactly one of backend, backends and redirect says what the route does.
  std::optional<Field> action;
  for (std::string_view key : {"backend", "backends", "redirect"}) {
    auto f = map.get(key);
    if (!f) continue;
    if (action && action->mark.pos < f->mark.pos) {
      diag.error(*f, std::string(key) + " cannot be combined with " +
                         action->path.substr(action->path.rfind('.') + 1) +
                         ": a route has exactly one of backend, backends and redirect");
      continue;
    }
    if (action) {
      diag.error(*action, action->path.substr(action->path.rfind('.') + 1) +
                              " cannot be combined with " + std::string(key) +
                              ": a route has exactly one of backend, backends and redirect");
    }
    action = f;
  }
  if (!action) {
    map.report_missing("backend", "a route needs one of backend, backends and redirect");
  } else if (action->path.ends_with(".backends")) {
    read_route_backends(walk, *action, listener_index, route_index, route);
  } else if (action->path.ends_with(".redirect")) {
    route.redirect = read_redirect(diag, *action);
  } else if (auto name = read_non_empty_string(diag, *action)) {
    walk.backend_refs.push_back({listener_index, route_index, 0, *action});
    route.backends.push_back({*name, 1, 0});
  }
  for (const auto& b : route.backends)
    route.total_weight += b.weight;

  if (route.redirect) {
    // A redirect is answered before anything else happens to the request: keys about the
    // forwarded request would silently do nothing.
    for (std::string_view key :
         {"timeout", "retries", "retry", "rate_limit", "headers", "mirror"}) {
      if (auto f = map.get(key)) {
        diag.error(*f, std::string(key) +
                           " has no effect on a route with redirect (meridian "
                           "answers it without forwarding)");
      }
    }
    return route;
  }
  if (auto f = map.get("headers")) {
    MapReader headers(diag, *f, Section::route_headers);
    if (auto r = headers.get("request")) {
      route.request_headers = read_header_rules(diag, *r, Section::request_header_rules);
    }
    if (auto r = headers.get("response")) {
      route.response_headers = read_header_rules(diag, *r, Section::response_header_rules);
    }
  }
  if (auto f = map.get("mirror")) read_mirror(walk, *f, listener_index, route_index, route);
  map.read("timeout", route.timeout, AllowZero::no);
  if (map.read("retries", route.retries) && route.retries > Route::kMaxRetries) {
    diag.error(*map.get("retries"), "at most " + std::to_string(Route::kMaxRetries) +
                                        " retries, got " + std::to_string(route.retries));
  }
  if (auto f = map.get("retry")) route.retry = read_retry(diag, *f);
  if (auto f = map.get("rate_limit")) route.rate_limit = read_rate_limit(walk, *f);
  return route;
}

}  // namespace meridian::config::detail
