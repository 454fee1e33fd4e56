// A RequestEncoder that encodes nothing, for unit tests of the request object that never reach
// a connection.
#pragma once

#include <memory>
#include <string_view>
#include <vector>

#include "meridian/proxy/active_request.hpp"

namespace meridian::proxy::test {

struct NullEncoder final : RequestEncoder {
  std::shared_ptr<void> request_keepalive() override { return nullptr; }
  void encode_continue() override {}
  void encode_head(const http::ResponseHead&, http::ResponseForwarding, bool) override {}
  void encode_trailers(const std::vector<http::Field>&) override {}
  void encode_data(const http::BodySlices&, bool) override {}
  void encode_local_reply(unsigned, std::string_view, std::string_view, bool) override {}
  void send_local_reply() override {}
  void reset() override {}
  void arm(net::Clock::time_point) override {}
  void pull_body() override {}
  void release_body() override {}
  void response_complete() override {}
  void start_tunnel() override {}
};

}  // namespace meridian::proxy::test
