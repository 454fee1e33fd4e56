// The client side of TLS, for a backend with `tls` (docs/configuration.md, backend tls):
// requests and health probes to its endpoints. Built once per configuration snapshot.
#pragma once

#include <memory>
#include <string_view>

#include <boost/asio/ssl/context.hpp>

#include "meridian/config/config.hpp"

namespace meridian::tls {

// TLS 1.2 or newer; the peer's certificate verified against `ca` (or the system's store)
// unless verify is off; ALPN offers "h2" for protocol h2 (and nothing for http1). Throws
// std::runtime_error naming the CA file.
std::shared_ptr<boost::asio::ssl::context> make_client_context(
    const config::UpstreamTls& config,
    config::UpstreamProtocol protocol = config::UpstreamProtocol::http1);

// Readies a client SSL object (SSL*, as void* to keep OpenSSL out of this header) for the
// endpoint at `endpoint_address` ("host:port" / "[v6]:port"): the name is server_name, or
// the endpoint's host; it is sent as SNI when it is a host name, and the certificate must
// match it (name or IP address) when verify is on.
void prepare_client(void* ssl, const config::UpstreamTls& config,
                    std::string_view endpoint_address);

}  // namespace meridian::tls
