// One listener's TLS (its `tls`): an OpenSSL server context per certificate, the one for
// the name a client asks for chosen by SNI (the first certificate when the name matches
// none, or the client sends none), a minimum protocol version, modern cipher defaults,
// ALPN, and session resumption (server-side cache and tickets).
//
// Built once per configuration snapshot, so a reload reads the certificate files again.
// Connections keep the OpenSSL context they started with alive (SSL objects hold a
// reference); the callbacks are used only during a handshake, while the connection pins
// its snapshot and so this object. Thread: built on the main thread, then read-only.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/ssl/context.hpp>

#include "meridian/config/config.hpp"
#include "meridian/tls/ticket_keys.hpp"

namespace meridian::tls {

class ServerContext {
 public:
  // Throws std::runtime_error naming the file and OpenSSL's reason (a certificate that does
  // not parse, a key that does not match it, ...); TicketKeyFileError for tls.ticket_keys.
  static std::shared_ptr<ServerContext> build(const config::ListenerTls& config);

  ServerContext(const ServerContext&) = delete;
  ServerContext& operator=(const ServerContext&) = delete;

  // What new connections start with; SNI may switch them to another certificate's.
  boost::asio::ssl::context& initial() { return *certificates_.front().context; }

  // The index of the certificate for `server_name` (the first one when none matches).
  std::size_t select(std::string_view server_name) const;
  boost::asio::ssl::context& context(std::size_t certificate) {
    return *certificates_.at(certificate).context;
  }
  // The protocols the listener offers (tls.alpn: h2, http/1.1), in ALPN wire format, in the
  // configuration's order.
  const std::string& alpn_wire() const { return alpn_wire_; }

 private:
  ServerContext() = default;
  struct Certificate {
    std::unique_ptr<boost::asio::ssl::context> context;
    std::vector<std::string> names;  // lower case; "*.example.com" for wildcards
  };

  std::vector<Certificate> certificates_;
  std::string alpn_wire_;                     // the protocols meridian speaks, in ALPN wire format
  std::vector<TicketKeys::Key> ticket_keys_;  // tls.ticket_keys; empty: the process's keys
};

}  // namespace meridian::tls
