#include "meridian/proxy/mirror.hpp"

namespace meridian::proxy {

MirrorCounters& mirror_counters() {
  static MirrorCounters counters;
  return counters;
}

MirrorRequest::MirrorRequest(WorkerContext& worker, std::shared_ptr<const Snapshot> snapshot)
    : w_(worker), snapshot_(std::move(snapshot)), exchange_(worker) {
  // The worker's slot is taken now, not at start(): uploads admitted together would otherwise
  // all pass the kMaxInFlight check before any of them counted.
  ++w_.mirrors_in_flight;
  exchange_.attach(*this);
}

MirrorRequest::~MirrorRequest() {
  exchange_.detach();
  if (!finished_) --w_.mirrors_in_flight;
}

bool MirrorRequest::append_body(std::string_view bytes) {
  if (body_.size() + bytes.size() > kMaxBody) {
    mirror_counters().too_large.fetch_add(1, std::memory_order_relaxed);
    std::string().swap(body_);
    return false;
  }
  body_.append(bytes);
  return true;
}

void MirrorRequest::start(net::Clock::duration timeout) {
  link(w_.deadlines);
  expires_after(timeout);
  body_slices_.assign(1, body_);
  exchange_.start(request);
}

void MirrorRequest::on_request_body_wanted() {
  if (body_given_) return;
  body_given_ = true;
  exchange_.send_request_body(body_slices_, true);
}

void MirrorRequest::on_response_data(const http::ResponseHead*, const http::BodySlices&, bool) {
  // Read and dropped: the copy's answer is nobody's.
  exchange_.response_delivered();
}

void MirrorRequest::on_exchange_done() {
  finish(mirror_counters().answered);
}

void MirrorRequest::on_exchange_failed(unsigned, std::string_view, bool) {
  finish(mirror_counters().failed);
}

void MirrorRequest::on_deadline() {
  clear();
  // The exchange answers through on_exchange_failed().
  exchange_.on_request_timeout();
  if (!finished_) {
    exchange_.abort();
    finish(mirror_counters().failed);
  }
}

void MirrorRequest::on_abort() {
  clear();
  exchange_.abort();
  if (!finished_) finish(mirror_counters().failed);
}

void MirrorRequest::finish(std::atomic<std::uint64_t>& counter) {
  if (finished_) return;
  finished_ = true;
  --w_.mirrors_in_flight;
  counter.fetch_add(1, std::memory_order_relaxed);
  unlink();
}

}  // namespace meridian::proxy
