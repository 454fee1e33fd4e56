#include "proxy/request_flow.hpp"

#include <charconv>
#include <optional>

#include "meridian/core/log.hpp"
#include "meridian/core/splitmix.hpp"
#include "meridian/http/client_address.hpp"
#include "meridian/http/cookie.hpp"
#include "meridian/http/forwarding.hpp"
#include "meridian/http/grpc.hpp"
#include "meridian/http/h2/message.hpp"
#include "meridian/proxy/active_request.hpp"
#include "meridian/proxy/mirror.hpp"

namespace meridian::proxy {

namespace asio = boost::asio;

std::string address_text(const asio::ip::address& a) {
  if (a.is_v6() && a.to_v6().is_v4_mapped()) {
    return asio::ip::make_address_v4(asio::ip::v4_mapped, a.to_v6()).to_string();
  }
  return a.to_string();
}

namespace {

void capture_log_fields(const http::RequestHead& head, const asio::ip::address& client,
                        const asio::ip::address& peer, ActiveRequest& rq) {
  // Copied (into buffers reused from request to request): the head's views die with it.
  rq.log_method.assign(head.method);
  rq.log_target.assign(head.target);
  rq.log_host.assign(head.host);
  rq.log_version = head.version;
  const auto* ua = head.find("user-agent");
  rq.log_user_agent.assign(ua != nullptr ? ua->value : std::string_view{});
  const auto* referer = head.find("referer");
  rq.log_referer.assign(referer != nullptr ? referer->value : std::string_view{});
  rq.log_client = client == peer ? rq.peer_text : address_text(client);
}

// The client address as steering sheds by: an IPv4-mapped IPv6 address hashes as its IPv4
// form, so a client is the same client on either kind of listener.
std::uint64_t client_hash_of(const asio::ip::address& a) {
  if (a.is_v4() || (a.is_v6() && a.to_v6().is_v4_mapped())) {
    const auto v4 =
        a.is_v4() ? a.to_v4() : asio::ip::make_address_v4(asio::ip::v4_mapped, a.to_v6());
    const auto bytes = v4.to_bytes();
    return balancing::client_hash(bytes.data(), bytes.size());
  }
  const auto bytes = a.to_v6().to_bytes();
  return balancing::client_hash(bytes.data(), bytes.size());
}

constexpr std::uint64_t kSplitSalt = 0x5be2a6c3e4f1d097;

// The Location line of a redirect route's answer ("Location: URL\r\n"), into `out`: each part
// the redirect leaves "" is the request's own, the query always is. A scheme change drops the
// request's port (it belonged to the other scheme). False when the request has no Host to
// keep.
bool write_location(const config::Redirect& r, const http::RequestHead& head, bool https,
                    std::string& out) {
  const std::string_view own_scheme = https ? "https" : "http";
  const std::string_view scheme = r.scheme.empty() ? own_scheme : std::string_view(r.scheme);
  std::string_view host = r.host;
  if (host.empty()) {
    host = scheme == own_scheme ? head.host : http::host_without_port(head.host);
    if (host.empty()) return false;
  }
  const auto q = head.target.find('?');
  out.assign("Location: ");
  out.append(scheme);
  out.append("://");
  out.append(host);
  out.append(r.path.empty() ? head.path : std::string_view(r.path));
  if (q != std::string_view::npos) out.append(head.target.substr(q));
  out.append("\r\n");
  return true;
}

// The endpoint id an affinity cookie carries (16 hex digits); nullopt for no cookie or any
// other value (a client's garbage is no cookie: the answer sets a real one).
std::optional<std::uint64_t> affinity_cookie_id(const http::RequestHead& head,
                                                std::string_view cookie) {
  const auto value = http::find_cookie(head, cookie);
  if (!value || value->size() != 16) return std::nullopt;
  std::uint64_t id = 0;
  const auto [end, ec] = std::from_chars(value->data(), value->data() + 16, id, 16);
  if (ec != std::errc() || end != value->data() + 16) return std::nullopt;
  return id;
}

constexpr std::size_t kNoChoice = static_cast<std::size_t>(-1);

// A split whose backends have `affinity`: the backend whose affinity cookie the request
// carries (naming one of its endpoints) keeps the client, whatever its address hashes to --
// a client that moved address stays with the version it was on. kNoChoice otherwise.
std::size_t split_by_affinity(const config::Route& route, const Snapshot& snapshot,
                              const http::RequestHead& head) {
  for (std::size_t k = 0; k < route.backends.size(); ++k) {
    const auto& backend = snapshot.backends[route.backends[k].index];
    if (!backend.config->affinity) continue;
    const auto id = affinity_cookie_id(head, backend.config->affinity->cookie);
    if (id && backend.find_affinity(*id) != nullptr) return k;
  }
  return kNoChoice;
}

// What ring_hash and maglev hash for this request: the hash_key's header or cookie value, or
// the client address (also when the request lacks the header or cookie, so that leaving it
// out still spreads clients instead of piling them on one endpoint).
std::uint64_t balance_key_hash(const config::HashKey& key, const http::RequestHead& head,
                               const asio::ip::address& client) {
  switch (key.kind) {
    case config::HashKeyKind::header:
      if (const auto* f = head.find(key.name)) return balancing::hash_bytes(f->value);
      break;
    case config::HashKeyKind::cookie:
      if (const auto value = http::find_cookie(head, key.name)) {
        return balancing::hash_bytes(*value);
      }
      break;
    case config::HashKeyKind::client_ip:
      break;
  }
  return client_hash_of(client);
}

// routes[].mirror: a copy of the request for the mirror backend, written now (the request's
// head dies with admission) and sent only if the original is forwarded (not refused by its
// rate limit): at once for a request without a body, else once its body has passed
// (ActiveRequest::start_exchange and send_body). `fwd` is the original's forwarding, so the copy
// gets the same header rules and trace context.
void start_mirror(const Downstream& d, const http::RequestHead& head, http::RequestForwarding fwd,
                  const config::Route& route, const asio::ip::address& client, ActiveRequest& rq) {
  const config::Mirror& m = *route.mirror;
  if (m.percent < 1.0 && unit_interval(splitmix64(d.w.request_ids.next_u64())) >= m.percent) {
    return;
  }
  auto& counters = mirror_counters();
  if (head.content_length && *head.content_length > MirrorRequest::kMaxBody) {
    counters.too_large.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  if (d.w.mirrors_in_flight >= MirrorRequest::kMaxInFlight) {
    counters.overflow.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  auto snapshot = d.snapshot.weak_from_this().lock();
  if (!snapshot) return;  // not a shared snapshot (a unit test's): nothing to pin
  const Snapshot& s = *snapshot;
  const auto& backend = s.backends[m.index];
  auto mirror = std::make_shared<MirrorRequest>(d.w, std::move(snapshot));
  fwd.default_host = backend.config->regions.front().endpoints.front().address.text;
  fwd.upgrade = false;
  const auto protocol = backend.config->protocol;
  if (protocol == config::UpstreamProtocol::http1) {
    http::write_upstream_request(head, fwd, mirror->exchange().request_head());
  } else {
    http::encode_request(head, fwd, protocol == config::UpstreamProtocol::h2 ? "https" : "http",
                         mirror->exchange().request_fields());
  }
  ExchangeRequest& request = mirror->request;
  request.backend = &backend;
  request.protocol = protocol;
  request.node_location = &s.config->node.location;
  request.retries = 0;  // a copy is sent once: a retry would only add load to the shadow
  static const config::RetryPolicy kNoRetry = [] {
    config::RetryPolicy p;
    p.on_connect = p.on_reset = false;
    return p;
  }();
  request.retry = &kNoRetry;
  request.idempotent = http::is_idempotent(head.method);
  request.has_body = head.has_body();
  request.chunked_body = head.chunked;
  request.head_request = head.method == "HEAD";
  request.tls = s.upstream_tls[m.index].get();
  request.tls_config = backend.config->tls ? &*backend.config->tls : nullptr;
  request.region_series = &s.region_series[m.index];
  if (s.geo && backend.uses_client_location) request.client = s.geo->lookup(client);
  if (backend.regions.size() > 1) request.client_hash = client_hash_of(client);
  const auto balance = backend.config->balance;
  if (balance == config::Balance::ring_hash || balance == config::Balance::maglev) {
    request.key_hash = balance_key_hash(backend.config->hash_key, head, client);
  }
  rq.mirror = std::move(mirror);
  rq.mirror_timeout = route.timeout;
}

bool logging(const WorkerContext& w, const Snapshot& snapshot) {
  return w.access_log != nullptr && snapshot.access_log_on;
}

}  // namespace

Admission admit(const Downstream& d, const http::RequestHead& head, ActiveRequest& rq,
                ratelimit::Decision& decision) {
  rq.routed = true;
  const Snapshot& snapshot = d.snapshot;
  // The client address, settled once per request: the access log, GeoIP and rate limit keys
  // all use it.
  const auto client =
      d.proxied_source
          ? d.peer
          : http::settle_client_address(d.peer, head, snapshot.config->client_ip.trusted_proxies);
  const bool log = logging(d.w, snapshot);
  if (log) capture_log_fields(head, client, d.peer, rq);
  rq.grpc = head.version == 20 && http::grpc::is_grpc(head);
  const auto* route = d.listener.router.match(head);
  if (route == nullptr) return Admission::no_route;
  rq.route = route;
  const auto route_index = static_cast<std::size_t>(route - d.listener.config->routes.data());
  const auto& route_series = d.listener.series[route_index];
  if (route->redirect) {
    rq.route_series = &route_series.front();
    return write_location(*route->redirect, head, d.https, rq.limit_headers)
               ? Admission::redirect
               : Admission::bad_redirect;
  }
  // A split sends each client address to the same backend (so a client does not flip between
  // versions); the hash is mixed apart from the one steering sheds by, so the clients of a
  // 5% split are not also the ones a region's traffic_dial moves.
  std::size_t choice = 0;
  if (route->backends.size() > 1) {
    choice = split_by_affinity(*route, snapshot, head);
    if (choice == kNoChoice) {
      choice = http::split_choice(*route, splitmix64(client_hash_of(client) ^ kSplitSalt));
    }
  }
  rq.route_backend = &route->backends[choice];
  rq.route_series = &route_series[choice];
  const std::size_t backend_index = rq.route_backend->index;
  const auto& backend = snapshot.backends[backend_index];
  rq.deadline = rq.start + route->timeout;
  if (rq.grpc) {
    // The client's own deadline, when it is the nearer one (as Envoy's
    // max_grpc_timeout lets it be): past it, the answer is DEADLINE_EXCEEDED.
    if (const auto t = http::grpc::timeout(head)) {
      const auto until = rq.start + std::chrono::duration_cast<net::Clock::duration>(*t);
      if (until < rq.deadline) rq.deadline = until;
    }
  }

  std::string_view request_id = http::request_id_of(head);
  if (request_id.empty()) request_id = d.w.request_ids.next();
  if (log) rq.log_request_id.assign(request_id);
  rq.upgrade = http::is_websocket_upgrade(head);
  http::RequestForwarding fwd{rq.peer_text,
                              d.https ? "https" : "http",
                              snapshot.via,
                              request_id,
                              backend.config->regions.front().endpoints.front().address.text,
                              rq.upgrade};
  if (snapshot.config->tracing.propagate == config::TracePropagation::w3c) {
    rq.trace.begin(head, d.w.request_ids);
    fwd.traceparent = rq.trace.traceparent();
    fwd.keep_tracestate = rq.trace.continued();
  }
  if (!route->request_headers.empty()) fwd.rules = &route->request_headers;
  const auto protocol = backend.config->protocol;
  if (protocol == config::UpstreamProtocol::http1) {
    http::write_upstream_request(head, fwd, rq.exchange.request_head());
  } else {
    http::encode_request(head, fwd, protocol == config::UpstreamProtocol::h2 ? "https" : "http",
                         rq.exchange.request_fields());
  }
  rq.limit = d.listener.limits[route_index].get();
  ExchangeRequest& request = rq.exchange_request;
  request = ExchangeRequest{};
  request.backend = &backend;
  request.protocol = protocol;
  request.node_location = &snapshot.config->node.location;
  request.retries = route->retries;
  request.retry = &route->retry;
  request.idempotent = http::is_idempotent(head.method);
  request.has_body = head.has_body();
  request.chunked_body = head.chunked;
  request.head_request = head.method == "HEAD";
  request.upgrade = rq.upgrade;
  request.tls = snapshot.upstream_tls[backend_index].get();
  request.tls_config = backend.config->tls ? &*backend.config->tls : nullptr;
  request.region_series = &snapshot.region_series[backend_index];
  if (snapshot.geo && backend.uses_client_location) request.client = snapshot.geo->lookup(client);
  if (backend.regions.size() > 1) request.client_hash = client_hash_of(client);
  const auto balance = backend.config->balance;
  if (balance == config::Balance::ring_hash || balance == config::Balance::maglev) {
    request.key_hash = balance_key_hash(backend.config->hash_key, head, client);
  }
  rq.affinity = backend.config->affinity ? &*backend.config->affinity : nullptr;
  rq.affinity_secure = d.https;
  rq.affinity_id = 0;
  if (rq.affinity != nullptr) {
    if (const auto id = affinity_cookie_id(head, rq.affinity->cookie)) {
      rq.affinity_id = *id;
      request.sticky = backend.find_affinity(*id);
    }
  }
  if (route->mirror) start_mirror(d, head, fwd, *route, client, rq);
  if (rq.limit == nullptr) return Admission::forward;
  const auto key = ratelimit::client_key(rq.limit->config, head, client, rq.key_buffer);
  if (rq.limit->config.scope == config::RateLimitScope::global) {
    rq.store_key = ratelimit::global_key(*rq.limit, key);
    return Admission::ask_store;
  }
  // Node-wide and synchronous: decided now, while the key's views are valid.
  decision =
      ratelimit::take_local(*rq.limit, snapshot.buckets.get(), key, balancing::steady_now_ns());
  return Admission::decided;
}

bool apply_limit_decision(const ratelimit::Decision& d, ActiveRequest& rq) {
  auto line = [&rq](std::string_view name, std::uint64_t value) {
    char digits[24];
    const auto r = std::to_chars(digits, digits + sizeof digits, value);
    rq.limit_headers.append(name);
    rq.limit_headers.append(digits, r.ptr);
    rq.limit_headers.append("\r\n");
  };
  line("RateLimit-Limit: ", d.limit);
  line("RateLimit-Remaining: ", d.remaining);
  line("RateLimit-Reset: ", d.reset_s);
  if (d.allowed) return true;
  rq.limit->limited.fetch_add(1, std::memory_order_relaxed);
  line("Retry-After: ", d.retry_after_s);
  return false;
}

bool ask_store(WorkerContext& w, ActiveRequest& rq, ratelimit::StoreWaiter& waiter,
               std::shared_ptr<void> keepalive) {
  rq.limit_tag = ++w.store_tags;
  if (w.redis == nullptr) return false;
  w.redis->take(rq.store_key, rq.limit->quota, waiter, std::move(keepalive), rq.limit_tag);
  return true;
}

const ratelimit::StoreOutcome& no_store_outcome() {
  static const ratelimit::StoreOutcome none = [] {
    ratelimit::StoreOutcome o;
    o.error = "no rate_limit_store";
    return o;
  }();
  return none;
}

StoreVerdict judge_store_outcome(const Snapshot& snapshot, const ActiveRequest& rq,
                                 const ratelimit::StoreOutcome& outcome,
                                 ratelimit::Decision& decision) {
  if (outcome.ok) {
    decision = ratelimit::gcra_decision(outcome.allowed, outcome.ahead_ns, rq.limit->quota);
    return StoreVerdict::decided;
  }
  // The store failed or answered late; rate_limit_store.on_error decides, without RateLimit
  // headers (there is no count to report).
  log::debug("rate limit ", rq.limit->name, ": store unavailable (", outcome.error, ")");
  const auto& store = snapshot.config->rate_limit_store;
  return store && store->on_error == config::OnError::deny ? StoreVerdict::deny
                                                           : StoreVerdict::allow;
}

void record_request(WorkerContext& w, const Snapshot& snapshot, const ListenerRuntime& listener,
                    ActiveRequest& rq, unsigned status) {
  if (!rq.active) return;
  rq.active = false;
  const auto duration = net::Clock::now() - rq.start;
  const auto duration_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(duration).count();
  const int region = rq.exchange.region_index();
  if (w.counters != nullptr) {
    const metrics::SeriesId id = rq.route_series == nullptr ? listener.no_route_series
                                 : region >= 0
                                     ? rq.route_series->regions[static_cast<std::size_t>(region)]
                                     : rq.route_series->local;
    w.counters->record_request(id, status, duration_ns);
  }
  if (w.spans != nullptr && rq.trace.active()) {
    http::SpanRecord span;
    span.trace_id = rq.trace.trace_id();
    span.span_id = rq.trace.span_id();
    span.parent_id = rq.trace.parent_id();
    span.end = std::chrono::system_clock::now();
    span.start =
        span.end - std::chrono::duration_cast<std::chrono::system_clock::duration>(duration);
    if (rq.route != nullptr) span.route = rq.route->name;
    if (rq.route_backend != nullptr) span.backend = rq.route_backend->name;
    if (const auto* endpoint = rq.exchange.last_endpoint()) {
      span.region = endpoint->region;
      span.endpoint = endpoint->address;
    }
    span.status = status;
    w.spans->record(span);
  }
  if (!logging(w, snapshot)) return;
  accesslog::Entry e;
  e.time = std::chrono::system_clock::now();
  e.client =
      rq.log_client.empty() ? std::string_view(rq.peer_text) : std::string_view(rq.log_client);
  e.method = rq.log_method;
  e.host = rq.log_host;
  e.target = rq.log_target;
  e.path = std::string_view(rq.log_target).substr(0, rq.log_target.find('?'));
  e.version = rq.log_version;
  e.status = status;
  e.bytes_out = rq.bytes_out;
  e.duration_ms = static_cast<double>(duration_ns) / 1e6;
  e.listener = listener.config->name;
  if (rq.route != nullptr) {
    e.route = rq.route->name;
  }
  if (rq.route_backend != nullptr) {
    e.backend = rq.route_backend->name;
    if (region >= 0) {
      const auto& backend = snapshot.backends[rq.route_backend->index];
      e.region = backend.regions[static_cast<std::size_t>(region)].config->name;
    }
    if (const auto* endpoint = rq.exchange.last_endpoint()) e.endpoint = endpoint->address;
  }
  e.request_id = rq.log_request_id;
  if (rq.trace.active()) {
    e.trace_id = rq.trace.trace_id();
    e.span_id = rq.trace.span_id();
  }
  e.user_agent = rq.log_user_agent;
  e.referer = rq.log_referer;
  accesslog::format(snapshot.config->access_log.format, e, w.log_time, w.log_line);
  w.access_log->push(w.index, w.log_line);
}

}  // namespace meridian::proxy
