// Internal to the proxy module. The steps of a request (docs/architecture.md, the life of a
// request) that do not depend on the downstream protocol, shared by the HTTP/1.1 connection
// (H1Session) and the HTTP/2 stream (H2Stream): settling the client address, routing, writing the
// upstream head, preparing the exchange (steering inputs, retries, TLS), the rate limit's decision,
// and recording the request in the metrics and the access log. The sessions keep only what their
// framing needs: when to read, how to answer, when to close.
//
// Thread: the owning worker only.
#pragma once

#include <string>

#include <boost/asio/ip/address.hpp>

#include "meridian/http/message_head.hpp"
#include "meridian/proxy/active_request.hpp"
#include "meridian/proxy/snapshot.hpp"
#include "meridian/proxy/worker_context.hpp"
#include "meridian/ratelimit/redis_store.hpp"
#include "meridian/ratelimit/route_limit.hpp"

namespace meridian::proxy {

// What admit() decided.
enum class Admission {
  no_route,      // answer 404
  redirect,      // a redirect route: answer its code with rq.limit_headers (the Location line)
  bad_redirect,  // a redirect route that needs the request's Host, and there is none: 400
  forward,       // start the exchange (rq.exchange_request is ready)
  decided,       // the local rate limit decided: see apply_limit_decision()
  ask_store,     // scope: global: ask the store for rq.store_key
};

// Admission of a complete request head: the client address, the route, the upstream head
// (into rq.exchange.request_head()), the exchange request, the client's location when the
// backend steers by it, the access log fields, and a scope-local rate limit's decision
// (into `decision`). `head`'s views are used only during the call.
Admission admit(const Downstream& d, const http::RequestHead& head, ActiveRequest& rq,
                ratelimit::Decision& decision);

// Adds the RateLimit-* lines (and Retry-After when refused) to rq.limit_headers and counts
// a refusal; true when the request may go on.
bool apply_limit_decision(const ratelimit::Decision& decision, ActiveRequest& rq);

// Asks the worker's rate limit store about rq's scope-global limit (Admission::ask_store);
// the answer reaches `waiter` later, never within this call, tagged with the rq.limit_tag
// this sets. False when the worker has no store: judge no_store_outcome() at once then.
bool ask_store(WorkerContext& w, ActiveRequest& rq, ratelimit::StoreWaiter& waiter,
               std::shared_ptr<void> keepalive);
const ratelimit::StoreOutcome& no_store_outcome();

// The store's answer for a scope-global limit: `decided` with `decision` filled, or the
// rate_limit_store.on_error policy when it failed or answered late.
enum class StoreVerdict { decided, allow, deny };
StoreVerdict judge_store_outcome(const Snapshot& snapshot, const ActiveRequest& rq,
                                 const ratelimit::StoreOutcome& outcome,
                                 ratelimit::Decision& decision);

// Counts the request in the metric series and writes its access log line, once
// (rq.active is cleared); `status` is what the client was sent.
void record_request(WorkerContext& w, const Snapshot& snapshot, const ListenerRuntime& listener,
                    ActiveRequest& rq, unsigned status);

// An address as the access log and X-Forwarded-For write it (IPv4-mapped IPv6 as IPv4).
std::string address_text(const boost::asio::ip::address& a);

}  // namespace meridian::proxy
