#include "meridian/tls/client_context.hpp"

#include <boost/asio/ip/address.hpp>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "tls/openssl_error.hpp"

namespace meridian::tls {

namespace ssl = boost::asio::ssl;
using detail::fail;

std::shared_ptr<ssl::context> make_client_context(const config::UpstreamTls& config,
                                                  config::UpstreamProtocol protocol) {
  auto context = std::make_shared<ssl::context>(ssl::context::tls_client);
  SSL_CTX* ctx = context->native_handle();
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
  if (protocol == config::UpstreamProtocol::h2) {
    // HTTP/2 over TLS is only spoken when the origin chooses it (RFC 9113 3.2).
    static constexpr unsigned char kH2[] = {2, 'h', '2'};
    if (SSL_CTX_set_alpn_protos(ctx, kH2, sizeof kH2) != 0) fail("ALPN h2");
  }
  if (!config.verify) {
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
    return context;
  }
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  if (config.ca.empty()) {
    if (SSL_CTX_set_default_verify_paths(ctx) != 1) fail("the system's CA store");
  } else if (SSL_CTX_load_verify_locations(ctx, config.ca.c_str(), nullptr) != 1) {
    fail("CA file " + config.ca);
  }
  return context;
}

void prepare_client(void* handle, const config::UpstreamTls& config,
                    std::string_view endpoint_address) {
  SSL* ssl = static_cast<SSL*>(handle);
  std::string name = config.server_name;
  if (name.empty()) {  // the host part of "host:port" or "[v6]:port"
    const auto a = endpoint_address;
    name = a.starts_with('[') ? a.substr(1, a.find(']') - 1) : a.substr(0, a.rfind(':'));
  }
  boost::system::error_code ec;
  const auto address = boost::asio::ip::make_address(name, ec);
  if (ec) {
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wold-style-cast"
    SSL_set_tlsext_host_name(ssl, name.c_str());  // SNI only for names (RFC 6066 3)
#pragma GCC diagnostic pop
    if (config.verify) SSL_set1_host(ssl, name.c_str());
  } else if (config.verify) {
    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), address.to_string().c_str());
  }
}

}  // namespace meridian::tls
