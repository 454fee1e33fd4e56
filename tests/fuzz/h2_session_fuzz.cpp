// libFuzzer target: HTTP/2 frame handling as meridian runs it -- the input, after the client
// preface, goes through a real H2Session (nghttp2 with meridian's options, callbacks,
// flood budget, streams, request building, routing, rate limits, local answers) on a real
// loopback TCP connection, with the backend's endpoint refusing connections (502 paths).
// The session is then ended by the client's close and must wind down completely: no crash,
// no leak (LeakSanitizer), no sanitizer report, and no session left behind.
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "meridian/config/loader.hpp"
#include "meridian/metrics/registry.hpp"
#include "meridian/proxy/active_request.hpp"
#include "meridian/proxy/h2_session.hpp"
#include "meridian/proxy/snapshot.hpp"

namespace asio = boost::asio;
using namespace meridian;

namespace {

constexpr std::string_view kConfig = R"(
node: {name: fuzz}
workers: 1
admin: {listen: ""}
access_log: {path: off}
limits: {max_request_header_bytes: 4KiB, max_request_headers: 20, max_request_body_bytes: 100KiB}
rate_limit_store: {redis: "127.0.0.1:1", timeout: 10ms}
listeners:
  - name: fuzz
    listen: 127.0.0.1:1
    routes:
      - {name: local, match: {path_prefix: /l}, backend: b, rate_limit: {rate: 1/s, burst: 2}}
      - {name: global, match: {path_prefix: /g}, backend: b,
         rate_limit: {rate: 1/s, scope: global}}
      - {name: all, match: {host: fuzz.test}, backend: b, retries: 1}
backends:
  - name: b
    regions:
      - {name: r1, location: {lat: 0, lon: 0}, endpoints: [{address: "127.0.0.1:1"}]}
)";

constexpr std::string_view kPreface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

struct Harness {
  asio::io_context io;
  proxy::WorkerContext ctx{io};
  proxy::ActiveRequestPool pool{ctx};
  metrics::Registry registry{1};
  asio::ip::tcp::acceptor acceptor{io, {asio::ip::make_address("127.0.0.1"), 0}};
  std::string listener = "fuzz";

  Harness() {
    const auto loaded = config::load_config_string(kConfig, "fuzz.yaml");
    if (!loaded.ok()) {
      for (const auto& e : loaded.errors)
        std::fprintf(stderr, "%s\n", e.to_string().c_str());
      std::abort();
    }
    std::string error;
    ctx.snapshot = proxy::Snapshot::build(loaded.config, nullptr, 1, registry, error);
    if (!ctx.snapshot) std::abort();
    ctx.requests = &pool;
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static Harness* h = new Harness();  // lives for the whole run
  asio::ip::tcp::socket client(h->io);
  boost::system::error_code ec;
  client.connect(h->acceptor.local_endpoint(), ec);
  net::TcpSocket server(h->io.get_executor());
  if (!ec) h->acceptor.accept(server, ec);
  if (ec) return 0;  // the machine, not the input (ephemeral ports, descriptors)

  std::string received(kPreface);
  received.append(reinterpret_cast<const char*>(data), size);
  proxy::H2Transport transport{net::Transport(std::move(server)),
                               net::CompactAddress(asio::ip::make_address("127.0.0.1")), false,
                               "127.0.0.1"};
  auto session = std::make_shared<proxy::H2Session>(h->ctx, &h->listener, h->ctx.snapshot, 0,
                                                    std::move(transport));
  session->start(received);
  session.reset();
  // Let the exchanges fail against the refusing endpoint and their answers go out, then the
  // client leaves; everything must wind down.
  h->io.restart();
  for (int i = 0; i < 8; ++i)
    h->io.poll();
  client.shutdown(asio::socket_base::shutdown_both, ec);
  client.close(ec);
  for (int i = 0; i < 1000 && h->ctx.sessions != 0; ++i)
    h->io.run_one_for(std::chrono::milliseconds(10));
  if (h->ctx.sessions != 0) {
    std::fprintf(stderr, "an HTTP/2 session outlived its connection\n");
    std::abort();
  }
  h->io.poll();
  return 0;
}
