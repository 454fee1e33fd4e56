// HealthChecker against tiny HTTP origins on 127.0.0.1 (port 0), all on one io_context run
// by the test thread: no threads and no fixed sleeps; each test runs handlers one at a time
// until what it waits for happened or a deadline passed.
#include "meridian/health/health_checker.hpp"

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <gtest/gtest.h>

#include "meridian/balancing/backend_runtime.hpp"

namespace meridian::health {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;

// An HTTP/1.1 origin whose behaviour the test changes between probes.
class TestOrigin {
 public:
  explicit TestOrigin(asio::io_context& ioc)
      : acceptor_(ioc, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)) {
    accept();
  }

  std::uint16_t port() const { return port_; }
  void close_listener() { acceptor_.close(); }

  int status = 200;
  bool silent = false;                // read requests, never answer
  bool close_after_response = false;  // close without saying so (no Connection: close)

  int connections = 0;  // accepted
  int requests = 0;
  int closed_by_peer = 0;  // connections the checker closed
  std::string last_target;
  std::string last_host;
  std::string last_user_agent;

 private:
  struct Conn : std::enable_shared_from_this<Conn> {
    Conn(tcp::socket s, TestOrigin& o) : socket(std::move(s)), origin(o) {}

    void read() {
      request = {};
      bhttp::async_read(socket, buffer, request,
                        [self = shared_from_this()](beast::error_code ec, std::size_t) {
                          if (ec) {
                            ++self->origin.closed_by_peer;
                            return;
                          }
                          self->on_request();
                        });
    }

    void on_request() {
      ++origin.requests;
      origin.last_target = std::string(request.target());
      origin.last_host = std::string(request[bhttp::field::host]);
      origin.last_user_agent = std::string(request[bhttp::field::user_agent]);
      if (origin.silent) return read();
      response = {};
      response.version(11);
      response.result(static_cast<unsigned>(origin.status));
      if (origin.status != 204 && origin.status != 304) response.body() = "ok\n";
      response.prepare_payload();
      bhttp::async_write(socket, response,
                         [self = shared_from_this()](beast::error_code ec, std::size_t) {
                           if (ec) return;
                           if (self->origin.close_after_response) {
                             beast::error_code ignored;
                             self->socket.shutdown(tcp::socket::shutdown_both, ignored);
                             self->socket.close(ignored);
                             return;
                           }
                           self->read();
                         });
    }

    tcp::socket socket;
    TestOrigin& origin;
    beast::flat_buffer buffer;
    bhttp::request<bhttp::string_body> request;
    bhttp::response<bhttp::string_body> response;
  };

  void accept() {
    acceptor_.async_accept([this](beast::error_code ec, tcp::socket socket) {
      if (ec) return;
      ++connections;
      std::make_shared<Conn>(std::move(socket), *this)->read();
      accept();
    });
  }

  tcp::acceptor acceptor_;
  std::uint16_t port_ = acceptor_.local_endpoint().port();
};

// A configuration and its run-time view, kept together like a Snapshot keeps them.
struct Setup {
  config::Config config;
  std::vector<balancing::BackendRuntime> backends;

  balancing::EndpointState& endpoint(std::size_t i) const {
    return *backends.at(0).regions.at(0).endpoints.at(i);
  }
};

config::HealthCheck fast_check() {
  config::HealthCheck check;
  check.path = "/health";
  check.interval = 20ms;
  check.timeout = 1000ms;
  check.healthy_threshold = 2;
  check.unhealthy_threshold = 3;
  return check;
}

std::shared_ptr<Setup> make_setup(const std::vector<std::uint16_t>& ports,
                                  std::optional<config::HealthCheck> check,
                                  const Setup* previous = nullptr) {
  auto setup = std::make_shared<Setup>();
  config::Backend backend;
  backend.name = "api";
  backend.health_check = std::move(check);
  config::Region region;
  region.name = "eu-west";
  for (const auto port : ports) {
    config::Endpoint e;
    e.address.text = "127.0.0.1:" + std::to_string(port);
    e.address.host = "127.0.0.1";
    e.address.port = port;
    e.address.resolved = tcp::endpoint(asio::ip::make_address("127.0.0.1"), port);
    region.endpoints.push_back(std::move(e));
  }
  backend.regions.push_back(std::move(region));
  setup->config.backends.push_back(std::move(backend));
  setup->backends = balancing::build_backends(
      setup->config, previous != nullptr
                         ? std::span<const balancing::BackendRuntime>(previous->backends)
                         : std::span<const balancing::BackendRuntime>());
  return setup;
}

void update(HealthChecker& checker, const std::shared_ptr<Setup>& setup) {
  checker.update(setup, setup->backends);
}

// Runs handlers one at a time until `done()` holds; false when `limit` passed first.
template <typename Pred>
bool run_until(asio::io_context& ioc, Pred done, std::chrono::milliseconds limit = 5000ms) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    const auto now = std::chrono::steady_clock::now();
    if (now >= deadline) return false;
    if (ioc.stopped()) ioc.restart();
    ioc.run_one_for(deadline - now);
  }
  return true;
}

EndpointCheckStats stats_of(const HealthChecker& checker, const balancing::EndpointState& e) {
  auto s = checker.stats(e);
  EXPECT_TRUE(s.has_value());
  return s.value_or(EndpointCheckStats{});
}

class HealthCheckerTest : public ::testing::Test {
 protected:
  asio::io_context ioc;
  TestOrigin origin{ioc};
  TestOrigin other{ioc};
};

TEST_F(HealthCheckerTest, FirstProbeGoesOutAtOnce) {
  auto check = fast_check();
  check.interval = 60'000ms;  // a probe after one interval would miss the deadline below
  auto setup = make_setup({origin.port()}, check);
  HealthChecker checker(ioc);
  update(checker, setup);
  EXPECT_EQ(checker.size(), 1u);
  ASSERT_TRUE(run_until(
      ioc, [&] { return checker.stats(setup->endpoint(0))->successes == 1; }, 2000ms));
  EXPECT_EQ(origin.requests, 1);
  EXPECT_TRUE(setup->endpoint(0).healthy.load());
  EXPECT_GT(setup->endpoint(0).rtt_ewma_us.load(), 0u);
}

TEST_F(HealthCheckerTest, SendsPathHostAndUserAgent) {
  auto setup = make_setup({origin.port()}, fast_check());
  HealthChecker checker(ioc);
  update(checker, setup);
  ASSERT_TRUE(run_until(ioc, [&] { return origin.requests >= 1; }));
  EXPECT_EQ(origin.last_target, "/health");
  EXPECT_EQ(origin.last_host, "127.0.0.1:" + std::to_string(origin.port()));
  EXPECT_EQ(origin.last_user_agent, "meridian-health");

  auto check = fast_check();
  check.path = "/status?deep=1";
  check.host = "health.example";
  auto reloaded = make_setup({origin.port()}, check, setup.get());
  update(checker, reloaded);
  ASSERT_TRUE(run_until(ioc, [&] { return origin.last_host == "health.example"; }));
  EXPECT_EQ(origin.last_target, "/status?deep=1");
}

TEST_F(HealthCheckerTest, UnhealthyAfterThresholdFailuresAndBackAfterThresholdSuccesses) {
  auto check = fast_check();
  check.interval = 50ms;
  auto setup = make_setup({origin.port()}, check);
  auto& endpoint = setup->endpoint(0);
  HealthChecker checker(ioc);
  update(checker, setup);
  ASSERT_TRUE(run_until(ioc, [&] { return checker.stats(endpoint)->successes >= 2; }));
  EXPECT_TRUE(endpoint.healthy.load());

  origin.status = 503;
  ASSERT_TRUE(run_until(ioc, [&] { return !endpoint.healthy.load(); }));
  auto s = stats_of(checker, endpoint);
  EXPECT_EQ(s.consecutive_failures, 3u);  // unhealthy_threshold, not one probe earlier
  EXPECT_EQ(s.failures, 3u);
  EXPECT_FALSE(s.healthy);
  EXPECT_EQ(s.last_failure, "status 503");

  origin.status = 200;
  ASSERT_TRUE(run_until(ioc, [&] { return endpoint.healthy.load(); }));
  s = stats_of(checker, endpoint);
  EXPECT_EQ(s.consecutive_successes, 2u);  // healthy_threshold
  EXPECT_EQ(s.consecutive_failures, 0u);
  EXPECT_EQ(s.failures, 3u);
  EXPECT_TRUE(s.healthy);
  EXPECT_GT(endpoint.rtt_ewma_us.load(), 0u);
  // An unexpected status is still a complete response: the connection stays.
  EXPECT_EQ(origin.connections, 1);
}

TEST_F(HealthCheckerTest, ReusesOneKeepAliveConnection) {
  auto setup = make_setup({origin.port()}, fast_check());
  HealthChecker checker(ioc);
  update(checker, setup);
  ASSERT_TRUE(run_until(ioc, [&] { return checker.stats(setup->endpoint(0))->successes >= 5; }));
  EXPECT_EQ(origin.connections, 1);
  EXPECT_GE(origin.requests, 5);
  EXPECT_EQ(origin.closed_by_peer, 0);
}

TEST_F(HealthCheckerTest, ExpectedStatusRangeIsConfigurable) {
  auto check = fast_check();
  check.expected_status = {204, 204};
  check.unhealthy_threshold = 1;
  auto setup = make_setup({origin.port()}, check);
  HealthChecker checker(ioc);
  update(checker, setup);
  ASSERT_TRUE(run_until(ioc, [&] { return !setup->endpoint(0).healthy.load(); }));
  EXPECT_EQ(stats_of(checker, setup->endpoint(0)).last_failure, "status 200");
  origin.status = 204;
  ASSERT_TRUE(run_until(ioc, [&] { return setup->endpoint(0).healthy.load(); }));
}

TEST_F(HealthCheckerTest, ProbeTimeoutCountsAsFailure) {
  origin.silent = true;
  auto check = fast_check();
  check.timeout = 100ms;
  check.unhealthy_threshold = 2;
  auto setup = make_setup({origin.port()}, check);
  auto& endpoint = setup->endpoint(0);
  HealthChecker checker(ioc);
  update(checker, setup);
  ASSERT_TRUE(run_until(ioc, [&] { return !endpoint.healthy.load(); }));
  const auto s = stats_of(checker, endpoint);
  EXPECT_EQ(s.failures, 2u);
  EXPECT_EQ(s.successes, 0u);
  EXPECT_NE(s.last_failure.find("timeout"), std::string::npos) << s.last_failure;
  EXPECT_EQ(endpoint.rtt_ewma_us.load(), 0u);  // nothing measured
  // A timed-out connection is not reused: its answer may still arrive.
  EXPECT_EQ(origin.connections, 2);
}

TEST_F(HealthCheckerTest, ConnectionRefusedCountsAsFailure) {
  const auto port = origin.port();
  origin.close_listener();
  auto check = fast_check();
  check.unhealthy_threshold = 2;
  auto setup = make_setup({port}, check);
  HealthChecker checker(ioc);
  update(checker, setup);
  ASSERT_TRUE(run_until(ioc, [&] { return !setup->endpoint(0).healthy.load(); }));
  const auto s = stats_of(checker, setup->endpoint(0));
  EXPECT_EQ(s.failures, 2u);
  EXPECT_EQ(s.last_failure.rfind("connect: ", 0), 0u) << s.last_failure;
}

TEST_F(HealthCheckerTest, ReconnectsWhenTheOriginClosesTheConnection) {
  // The origin closes after each response without a Connection: close header, so each
  // probe finds a dead kept-alive connection; the fresh retry makes that no failure.
  origin.close_after_response = true;
  auto setup = make_setup({origin.port()}, fast_check());
  HealthChecker checker(ioc);
  update(checker, setup);
  ASSERT_TRUE(run_until(ioc, [&] { return checker.stats(setup->endpoint(0))->successes >= 4; }));
  EXPECT_EQ(stats_of(checker, setup->endpoint(0)).failures, 0u);
  EXPECT_GE(origin.connections, 4);
  EXPECT_TRUE(setup->endpoint(0).healthy.load());
}

TEST_F(HealthCheckerTest, EndpointsWithoutHealthCheckAreNotProbed) {
  auto setup = make_setup({origin.port()}, std::nullopt);
  HealthChecker checker(ioc);
  update(checker, setup);
  EXPECT_EQ(checker.size(), 0u);
  EXPECT_FALSE(checker.stats(setup->endpoint(0)).has_value());
  ioc.poll();
  EXPECT_EQ(origin.connections, 0);
  EXPECT_TRUE(setup->endpoint(0).healthy.load());
}

TEST_F(HealthCheckerTest, KeptEndpointKeepsCountersAndConnectionAcrossUpdate) {
  auto setup = make_setup({origin.port()}, fast_check());
  HealthChecker checker(ioc);
  update(checker, setup);
  ASSERT_TRUE(run_until(ioc, [&] { return checker.stats(setup->endpoint(0))->successes >= 2; }));

  auto reloaded = make_setup({origin.port()}, fast_check(), setup.get());
  ASSERT_EQ(&reloaded->endpoint(0), &setup->endpoint(0));  // the same EndpointState
  const auto before = stats_of(checker, setup->endpoint(0)).successes;
  update(checker, reloaded);
  EXPECT_EQ(checker.size(), 1u);
  EXPECT_EQ(stats_of(checker, reloaded->endpoint(0)).successes, before);
  ASSERT_TRUE(run_until(
      ioc, [&] { return checker.stats(reloaded->endpoint(0))->successes >= before + 2; }));
  EXPECT_EQ(origin.connections, 1);
}

TEST_F(HealthCheckerTest, KeptUnhealthyEndpointStaysUnhealthyAcrossUpdate) {
  origin.status = 500;
  auto check = fast_check();
  check.unhealthy_threshold = 1;
  auto setup = make_setup({origin.port()}, check);
  HealthChecker checker(ioc);
  update(checker, setup);
  ASSERT_TRUE(run_until(ioc, [&] { return !setup->endpoint(0).healthy.load(); }));

  auto reloaded = make_setup({origin.port()}, check, setup.get());
  update(checker, reloaded);
  EXPECT_FALSE(reloaded->endpoint(0).healthy.load());
  origin.status = 200;
  ASSERT_TRUE(run_until(ioc, [&] { return reloaded->endpoint(0).healthy.load(); }));
  EXPECT_EQ(stats_of(checker, reloaded->endpoint(0)).consecutive_successes, 2u);
}

TEST_F(HealthCheckerTest, RemovedEndpointStopsBeingProbed) {
  auto setup = make_setup({origin.port(), other.port()}, fast_check());
  HealthChecker checker(ioc);
  update(checker, setup);
  ASSERT_TRUE(run_until(ioc, [&] { return origin.requests >= 1 && other.requests >= 1; }));

  auto reloaded = make_setup({origin.port()}, fast_check(), setup.get());
  update(checker, reloaded);
  EXPECT_EQ(checker.size(), 1u);
  EXPECT_FALSE(checker.stats(setup->endpoint(1)).has_value());
  ASSERT_TRUE(run_until(ioc, [&] { return other.closed_by_peer == 1; }));
  const int other_requests = other.requests;
  const int origin_requests = origin.requests;
  ASSERT_TRUE(run_until(ioc, [&] { return origin.requests >= origin_requests + 3; }));
  EXPECT_EQ(other.requests, other_requests);
}

TEST_F(HealthCheckerTest, RemovingTheHealthCheckMakesTheEndpointHealthy) {
  origin.status = 503;
  auto check = fast_check();
  check.unhealthy_threshold = 1;
  auto setup = make_setup({origin.port()}, check);
  HealthChecker checker(ioc);
  update(checker, setup);
  ASSERT_TRUE(run_until(ioc, [&] { return !setup->endpoint(0).healthy.load(); }));

  auto reloaded = make_setup({origin.port()}, std::nullopt, setup.get());
  ASSERT_EQ(&reloaded->endpoint(0), &setup->endpoint(0));
  update(checker, reloaded);
  EXPECT_TRUE(reloaded->endpoint(0).healthy.load());
  EXPECT_EQ(checker.size(), 0u);
  ASSERT_TRUE(run_until(ioc, [&] { return origin.closed_by_peer == 1; }));
}

TEST_F(HealthCheckerTest, StopClosesConnectionsAndEndsProbing) {
  auto setup = make_setup({origin.port(), other.port()}, fast_check());
  HealthChecker checker(ioc);
  update(checker, setup);
  ASSERT_TRUE(run_until(ioc, [&] { return origin.requests >= 1 && other.requests >= 1; }));
  checker.stop();
  EXPECT_EQ(checker.size(), 0u);
  ASSERT_TRUE(
      run_until(ioc, [&] { return origin.closed_by_peer == 1 && other.closed_by_peer == 1; }));
  EXPECT_EQ(origin.connections, 1);
  EXPECT_EQ(other.connections, 1);
}

TEST_F(HealthCheckerTest, DestroyedWithAProbeInFlight) {
  origin.silent = true;
  auto setup = make_setup({origin.port()}, fast_check());
  {
    HealthChecker checker(ioc);
    update(checker, setup);
    ASSERT_TRUE(run_until(ioc, [&] { return origin.requests == 1; }));
  }
  // The pending handlers run after the checker is gone and must touch nothing of it.
  ASSERT_TRUE(run_until(ioc, [&] { return origin.closed_by_peer == 1; }));
  EXPECT_TRUE(setup->endpoint(0).healthy.load());
}

}  // namespace
}  // namespace meridian::health
