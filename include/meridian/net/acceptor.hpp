// A listening TCP socket and its accept loop, on one worker's io_context. Each worker opens
// its own socket on the same address with SO_REUSEPORT, so the kernel spreads connections
// over workers and no accept lock is shared (one context per thread, as h2o does). Knows
// nothing of HTTP: the worker hands it the function that makes sessions. Thread: the owning
// worker only.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include "meridian/net/socket.hpp"

namespace meridian::net {

// Opens, binds (SO_REUSEADDR + SO_REUSEPORT) and listens. Throws boost::system::system_error
// naming the address on failure; called only while starting or reloading.
TcpAcceptor open_listener(boost::asio::io_context& ioc,
                          const boost::asio::ip::tcp::endpoint& endpoint);

class Acceptor : public std::enable_shared_from_this<Acceptor> {
 public:
  // The accepted socket and its peer, as accept(2) reported it (no getpeername needed).
  using OnAccept = std::function<void(TcpSocket&&, const boost::asio::ip::tcp::endpoint&)>;

  Acceptor(TcpAcceptor acceptor, std::string name, OnAccept on_accept);

  void start();
  // Stops accepting and closes the socket (drain, or a listener removed by reload).
  void close();
  const std::string& name() const { return name_; }
  boost::asio::ip::tcp::endpoint local_endpoint() const;

 private:
  void do_accept();

  TcpAcceptor acceptor_;
  boost::asio::steady_timer backoff_;
  std::string name_;
  OnAccept on_accept_;
  boost::asio::ip::tcp::endpoint peer_;  // filled by the pending accept
  bool closed_ = false;
};

}  // namespace meridian::net
