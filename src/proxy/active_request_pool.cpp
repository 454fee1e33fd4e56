#include "meridian/core/release_storage.hpp"
#include "meridian/proxy/active_request.hpp"

namespace meridian::proxy {

void ActiveRequest::end_tunnel() {
  if (tunnel) {
    tunnel->transport.close();
    tunnel.reset();
  }
  tunnel_in_flight.reset();
  tunnel_down.consume(tunnel_down.size());
  tunnel_down.release_if_empty();
}

void ActiveRequest::reset(const http::ParserLimits& limits, net::Clock::time_point now) {
  parser.reset(limits);
  start = now;
  deadline = {};
  exchange.forget_attempts();
  exchange_request = ExchangeRequest{};
  expect_continue = continue_pending = false;
  limit = nullptr;
  limit_headers.clear();
  store_key.clear();
  limit_tag = 0;  // a store answer still due is for nobody
  phase_ = Phase::head;
  has_body = body_done = http10 = grpc = close_after = body_wanted = false;
  // A tunnel only ends with its connection (give() closes it): none is open here.
  upgrade = client_eof = origin_eof = false;
  body_given_consumed = 0;
  response_head_sent = response_chunked = false;
  active = true;
  routed = false;
  route = nullptr;
  route_series = nullptr;
  route_backend = nullptr;
  trace.clear();
  affinity = nullptr;
  affinity_id = 0;
  mirror.reset();
  response_status = 0;
  bytes_out = 0;
  log_client.clear();
  log_method.clear();
  log_target.clear();
  log_host.clear();
  log_user_agent.clear();
  log_referer.clear();
  log_request_id.clear();
  log_version = 11;
}

std::unique_ptr<ActiveRequest> ActiveRequestPool::take(RequestEncoder& encoder) {
  std::unique_ptr<ActiveRequest> r;
  if (free_.empty()) {
    r = std::make_unique<ActiveRequest>(w_);
  } else {
    r = std::move(free_.back());
    free_.pop_back();
  }
  r->active = r->routed = false;  // nothing to record until reset() begins a request
  r->bind(encoder);
  r->exchange.attach(r->sink());
  return r;
}

void ActiveRequestPool::give(std::unique_ptr<ActiveRequest> r) {
  r->exchange.abort();
  r->exchange.detach();
  r->end_tunnel();
  // A mirror copy still waiting for the body (the request ended without it: a reset, an
  // early answer) is not sent; it must not stay pinned to this pooled object.
  r->mirror.reset();
  // Destroyed here instead: beyond kKeep, or with a completion still due (possible only
  // when a session is destroyed with its io_context at shutdown, its handlers never run).
  // One the rate limit store still owes an answer stays (the store holds it by pointer; a
  // late answer finds its tag stale), however many are kept.
  if (!r->exchange.quiescent() || (free_.size() >= kKeep && !r->store_pending)) return;
  r->in.consume(r->in.size());  // a closed connection's unread bytes
  if (r->in.capacity() > kKeepCapacity) r->in.release_if_empty();
  release_storage_over(r->down_head, kKeepCapacity);
  release_storage_over(r->limit_headers, kKeepCapacity);
  release_storage_over(r->log_target, kKeepCapacity);
  release_storage_over(r->log_user_agent, kKeepCapacity);
  release_storage_over(r->log_referer, kKeepCapacity);
  r->exchange.trim(kKeepCapacity);
  r->h2_request.trim(kKeepCapacity);
  r->h2_fields.trim(kKeepCapacity);
  if (r->write_list.capacity() > 64) std::vector<boost::asio::const_buffer>().swap(r->write_list);
  if (r->body_slices.capacity() > 64) http::BodySlices().swap(r->body_slices);
  free_.push_back(std::move(r));
}

}  // namespace meridian::proxy
