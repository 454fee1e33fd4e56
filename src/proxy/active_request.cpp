// The life of a request, whatever the downstream protocol (docs/architecture.md, the life of a
// request): admission, the rate limit, the exchange, the route timeout, meridian's own
// answers, and the record of it. The protocol only encodes (RequestEncoder).
#include "meridian/proxy/active_request.hpp"

#include <cstdio>
#include <string>
#include <string_view>

#include "meridian/proxy/mirror.hpp"

#include "proxy/request_flow.hpp"

namespace meridian::proxy {

void ActiveRequest::begin(const Downstream& d, const http::RequestHead& head,
                          std::size_t head_bytes) {
  phase_ = Phase::exchange;
  ratelimit::Decision decision;
  const auto admission = admit(d, head, *this, decision);
  in.consume(head_bytes);  // the head's views are invalid from here on
  switch (admission) {
    case Admission::no_route:
      // A body nobody reads makes an HTTP/1.1 connection unusable for a next request.
      reply(404, "no route matches this request", {}, has_body);
      return;
    case Admission::redirect:
      reply(route->redirect->code, "redirected", limit_headers, has_body);
      return;
    case Admission::bad_redirect:
      reply(400, "a redirect needs the request's Host", {}, has_body);
      return;
    case Admission::forward:
      encoder_->arm(deadline);
      start_exchange();
      return;
    case Admission::decided:
      encoder_->arm(deadline);
      on_rate_limit_decision(decision);
      return;
    case Admission::ask_store:
      break;
  }
  encoder_->arm(deadline);
  // scope: global -- one round trip to the store, answered within its timeout.
  phase_ = Phase::limiting;
  if (!ask_store(w_, *this, *this, encoder_->request_keepalive())) {
    on_store_outcome(limit_tag, no_store_outcome());
    return;
  }
  store_pending = true;  // the store answers later (never within ask_store)
}

void ActiveRequest::on_store_outcome(std::uint64_t tag, const ratelimit::StoreOutcome& outcome) {
  if (tag == limit_tag || limit_tag == 0) store_pending = false;
  if (phase_ != Phase::limiting || tag != limit_tag) return;  // abandoned, or answered
  phase_ = Phase::exchange;
  ratelimit::Decision decision;
  switch (judge_store_outcome(*snapshot_, *this, outcome, decision)) {
    case StoreVerdict::decided:
      on_rate_limit_decision(decision);
      return;
    case StoreVerdict::deny:
      reply(503, "rate limit store unavailable", {}, has_body);
      return;
    case StoreVerdict::allow:
      start_exchange();
      return;
  }
}

void ActiveRequest::on_rate_limit_decision(const ratelimit::Decision& decision) {
  if (apply_limit_decision(decision, *this)) {
    start_exchange();
    return;
  }
  reply(429, "rate limit exceeded", limit_headers, has_body);
}

void ActiveRequest::copy_to_mirror(const http::BodySlices& body, bool last) {
  for (const auto piece : body) {
    if (!mirror->append_body(piece)) {
      mirror.reset();  // over MirrorRequest::kMaxBody: not mirrored (counted)
      return;
    }
  }
  if (last) {
    mirror->start(mirror_timeout);
    mirror.reset();
  }
}

void ActiveRequest::start_exchange() {
  phase_ = Phase::exchange;
  if (mirror && !exchange_request.has_body) {
    mirror->start(mirror_timeout);
    mirror.reset();
  }
  if (expect_continue) {
    // The body is welcome: say so at once (RFC 9110 10.1.1) rather than making the client
    // wait out its expect timeout; the exchange starts once that is on its way.
    encoder_->encode_continue();
    return;
  }
  exchange.start(exchange_request);
}

void ActiveRequest::continue_sent() {
  if (phase_ == Phase::exchange) exchange.start(exchange_request);
}

// ---------------------------------------------------------------------------------------
// The exchange's answer

namespace {

// "Set-Cookie: NAME=<16 hex>; Path=/; Max-Age=TTL; HttpOnly[; Secure]\r\n".
void write_affinity_cookie(const config::Affinity& a, std::uint64_t id, bool secure,
                           std::string& out) {
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(id));
  out.assign("Set-Cookie: ");
  out.append(a.cookie);
  out.push_back('=');
  out.append(hex, 16);
  out.append("; Path=/");
  if (a.ttl.count() > 0) {
    out.append("; Max-Age=");
    out.append(std::to_string(std::chrono::duration_cast<std::chrono::seconds>(a.ttl).count()));
  }
  out.append("; HttpOnly");
  if (secure) out.append("; Secure");
  out.append("\r\n");
}

}  // namespace

void ActiveRequest::on_response_data(const http::ResponseHead* head, const http::BodySlices& body,
                                     bool done) {
  if (phase_ != Phase::exchange) return;
  const auto& trailers = exchange.response_trailers();
  bool empty = true;
  for (auto s : body) {
    if (!s.empty()) empty = false;
  }
  const bool ends_with_head = head != nullptr && done && empty && trailers.empty();
  if (head != nullptr) {
    response_status = head->status;
    const bool debug = snapshot_->config->debug_headers;
    const auto* endpoint = exchange.endpoint();
    const bool named = debug && endpoint != nullptr;
    http::ResponseForwarding fwd;
    fwd.via = snapshot_->via;
    fwd.region = named ? std::string_view(endpoint->region) : std::string_view{};
    fwd.endpoint = named ? std::string_view(endpoint->address) : std::string_view{};
    fwd.rate_limit_headers = limit_headers;
    if (route != nullptr && !route->response_headers.empty()) fwd.rules = &route->response_headers;
    if (affinity != nullptr && endpoint != nullptr) {
      // The client sticks to the endpoint that answered: a cookie naming it. A cookie with a
      // Max-Age is sent with every answer, so its life slides with the client's activity
      // (ttl is an idle time, as HAProxy's maxidle); a session cookie only when it changes.
      const std::uint64_t id = balancing::affinity_id(*endpoint);
      if (id != affinity_id || affinity->ttl.count() > 0) {
        write_affinity_cookie(*affinity, id, affinity_secure, affinity_line);
        fwd.set_cookie = affinity_line;
      }
    }
    encoder_->encode_head(*head, fwd, ends_with_head);
    if (ends_with_head) return;
  }
  if (done && !trailers.empty()) encoder_->encode_trailers(trailers);
  encoder_->encode_data(body, done);
}

void ActiveRequest::on_exchange_done() {
  encoder_->release_body();
  if (upgrade && response_status == 101) {
    encoder_->start_tunnel();  // recorded when the tunnel ends, with its duration and bytes
    return;
  }
  phase_ = Phase::done;
  record(response_status);
  encoder_->response_complete();
}

void ActiveRequest::on_exchange_failed(unsigned status, std::string_view cause, bool retry_after) {
  // The body piece the exchange held is spent either way.
  encoder_->release_body();
  if (response_head_sent) {
    encoder_->reset();  // the client has part of a response: only a cut tells it so
    return;
  }
  if (retry_after) limit_headers.append("Retry-After: 1\r\n");
  reply(status, cause, limit_headers, !complete());
}

// ---------------------------------------------------------------------------------------
// Timeouts, local answers, the record

bool ActiveRequest::on_deadline(net::Clock::time_point now) {
  switch (phase_) {
    case Phase::limiting:
      if (now < deadline) {
        encoder_->arm(deadline);
      } else {
        limit_tag = 0;  // the store's answer, when it comes, is for nobody
        reply(504, "rate limit store did not answer within the route timeout", {}, true);
      }
      return true;
    case Phase::exchange:
      if (now < deadline) {
        encoder_->arm(deadline);
      } else if (response_head_sent || continue_pending) {
        encoder_->reset();
      } else if (!complete()) {
        reply(408, "request body not received within the route timeout", {}, true);
      } else {
        exchange.on_request_timeout();  // answers 504 through on_exchange_failed()
      }
      return true;
    case Phase::head:
    case Phase::replying:
    case Phase::done:
      return false;
  }
  return false;
}

void ActiveRequest::reply(unsigned status, std::string_view cause, std::string_view extra_headers,
                          bool close) {
  exchange.abort();
  mirror.reset();  // the request is not forwarded (or not in full): no copy either
  phase_ = Phase::replying;
  response_status = status;
  encoder_->encode_local_reply(status, cause, extra_headers, close);
  record(status);
  encoder_->send_local_reply();
}

void ActiveRequest::record(unsigned status) {
  if (snapshot_ == nullptr || listener_index_ < 0) return;
  record_request(w_, *snapshot_, listener(), *this, status);
}

}  // namespace meridian::proxy
