#include "meridian/net/acceptor.hpp"

#include <chrono>
#include <sys/socket.h>

#include <boost/asio/ip/v6_only.hpp>
#include <boost/asio/socket_base.hpp>

#include "meridian/core/log.hpp"

namespace meridian::net {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

TcpAcceptor open_listener(asio::io_context& ioc, const tcp::endpoint& endpoint) {
  TcpAcceptor acceptor(ioc);
  acceptor.open(endpoint.protocol());
  acceptor.set_option(asio::socket_base::reuse_address(true));
  using reuse_port = asio::detail::socket_option::boolean<SOL_SOCKET, SO_REUSEPORT>;
  acceptor.set_option(reuse_port(true));
  if (endpoint.address().is_v6()) {
    // "[::]:8080" serves IPv4 too (as ::ffff:a.b.c.d), as nginx and HAProxy do by default.
    acceptor.set_option(asio::ip::v6_only(false));
  }
  acceptor.bind(endpoint);
  acceptor.listen(asio::socket_base::max_listen_connections);
  acceptor.non_blocking(true);
  return acceptor;
}

Acceptor::Acceptor(TcpAcceptor acceptor, std::string name, OnAccept on_accept)
    : acceptor_(std::move(acceptor)),
      backoff_(acceptor_.get_executor()),
      name_(std::move(name)),
      on_accept_(std::move(on_accept)) {}

void Acceptor::start() {
  do_accept();
}

void Acceptor::close() {
  closed_ = true;
  boost::system::error_code ignored;
  acceptor_.close(ignored);
  backoff_.cancel();
}

tcp::endpoint Acceptor::local_endpoint() const {
  boost::system::error_code ec;
  return acceptor_.local_endpoint(ec);
}

void Acceptor::do_accept() {
  if (closed_) return;
  acceptor_.async_accept(
      peer_, [self = shared_from_this()](boost::system::error_code ec, TcpSocket socket) {
        if (self->closed_) return;
        if (ec) {
          if (ec == asio::error::operation_aborted) return;
          // EMFILE/ENFILE/ENOBUFS: the process is at a limit. Pause instead of spinning; the
          // backlog holds new connections meanwhile.
          log::warn("listener ", self->name_, ": accept failed: ", ec.message());
          self->backoff_.expires_after(std::chrono::milliseconds(100));
          self->backoff_.async_wait([self](boost::system::error_code wait_ec) {
            if (!wait_ec) self->do_accept();
          });
          return;
        }
        self->on_accept_(std::move(socket), self->peer_);
        self->do_accept();
      });
}

}  // namespace meridian::net
