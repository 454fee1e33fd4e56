// The socket types of the data path: bound to the io_context's own executor rather than
// the type-erased any_io_executor that tcp::socket carries. Every data-path socket lives on
// one worker's io_context, so nothing is lost, and both the socket (40 bytes instead of 88)
// and every operation queued on it (a wait: 104 bytes instead of 208, since the operation
// holds the executor) get smaller -- which is most of what an idle connection costs.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

namespace meridian::net {

using Executor = boost::asio::io_context::executor_type;
using TcpSocket = boost::asio::basic_stream_socket<boost::asio::ip::tcp, Executor>;
using TcpAcceptor = boost::asio::basic_socket_acceptor<boost::asio::ip::tcp, Executor>;

}  // namespace meridian::net
