// A load generator of TLS handshakes for bench/e2e/run.sh: every request on a new connection,
// `--conns` of them in flight from one thread (epoll, non-blocking OpenSSL), so that the proxy
// under test, not the client, is what runs out of CPU. The Python clients it replaced spent more
// CPU per handshake than any of the proxies and set the rate on their own.
//
//   handshake_load --port P --mode full|ticket|id [--conns N] [--duration SECONDS | --requests N]
//
//   full    TLS 1.3, no session offered: a full handshake per request
//   ticket  TLS 1.3, each connection offers the session (ticket) its slot's previous one got
//   id      TLS 1.2 with tickets refused, so the server's session-ID cache resumes it
//
// --requests makes exactly N handshakes (the callgrind runs difference two counts) instead of
// running for a time. Each connection sends `GET / HTTP/1.1` with `Connection: close` and reads
// until the server closes. The summary is h2load's format (report.py parses it): in modes ticket
// and id a handshake that did not resume counts as failed (each slot's first one excepted), in mode
// full one that did.
#include <algorithm>
#include <arpa/inet.h>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string>
#include <string_view>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <utility>
#include <vector>

#include <openssl/err.h>
#include <openssl/ssl.h>

namespace {

enum class Mode { full, ticket, id };

// The modes by their names on the command line and in the summary.
constexpr std::pair<std::string_view, Mode> kModes[] = {
    {"full", Mode::full}, {"ticket", Mode::ticket}, {"id", Mode::id}};

constexpr int kQuietLimit = 30;  // seconds without an event on any connection

struct Options {
  int port = 0;
  Mode mode = Mode::full;
  int conns = 16;
  double duration = 5;
  long requests = 0;  // 0: as many as fit in `duration`
};

struct Totals {
  long done = 0;
  long ok = 0;       // answered 200
  long resumed = 0;  // the handshake resumed a session
  long failed = 0;   // errors, and handshakes that (did not) resume against the mode
  long bytes = 0;
};

enum class Step { handshake, write, read };

// One slot: a connection at a time, and the session its last one left for the next.
struct Slot {
  int fd = -1;
  SSL* ssl = nullptr;
  SSL_SESSION* session = nullptr;
  Step step = Step::handshake;
  bool first = true;
  std::string head;  // the response's first bytes, as far as the status code
};

constexpr std::string_view request = "GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n";
constexpr std::string_view ok_prefix = "HTTP/1.1 200";

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "handshake_load: %s\n", what.c_str());
  ERR_print_errors_fp(stderr);
  std::exit(1);
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    if (i + 1 >= argc) die("option " + std::string(a) + " needs a value");
    std::string_view v = argv[++i];
    if (a == "--port") {
      o.port = std::atoi(v.data());
    } else if (a == "--conns") {
      o.conns = std::atoi(v.data());
    } else if (a == "--requests") {
      o.requests = std::atol(v.data());
    } else if (a == "--duration") {
      o.duration = std::atof(v.data());
    } else if (a == "--mode") {
      const auto* m = std::find_if(std::begin(kModes), std::end(kModes),
                                   [v](const auto& entry) { return entry.first == v; });
      if (m == std::end(kModes)) die("--mode is full, ticket or id, not " + std::string(v));
      o.mode = m->second;
    } else {
      die("unknown option " + std::string(a));
    }
  }
  if (o.port <= 0 || o.port > 65535) die("--port is required (1-65535)");
  if (o.conns <= 0) die("--conns must be positive");
  if (o.duration <= 0) die("--duration must be positive");
  if (o.requests < 0) die("--requests must not be negative");
  return o;
}

SSL_CTX* make_context(Mode mode) {
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  if (ctx == nullptr) die("SSL_CTX_new failed");
  SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);  // the bench certificate is self-signed
  static const unsigned char alpn[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
  SSL_CTX_set_alpn_protos(ctx, alpn, sizeof alpn);
  // A server that closes without close_notify ends the response as well as one that sends it.
  SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
  // Closing is a close(), as for Python's socket.close(): no close_notify written. Quiet
  // shutdown only marks the connection shut, which keeps its session resumable.
  SSL_CTX_set_quiet_shutdown(ctx, 1);
  if (mode == Mode::id) {
    SSL_CTX_set_max_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
  } else {
    SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
  }
  return ctx;
}

class Load {
 public:
  Load(const Options& o, SSL_CTX* ctx) : o_(o), ctx_(ctx), slots_(o.conns) {
    ep_ = epoll_create1(EPOLL_CLOEXEC);
    if (ep_ < 0) die(std::string("epoll_create1: ") + std::strerror(errno));
    addr_.sin_family = AF_INET;
    addr_.sin_port = htons(static_cast<uint16_t>(o.port));
    addr_.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  }

  Totals run() {
    using clock = std::chrono::steady_clock;
    start_ = clock::now();
    end_ = start_ +
           std::chrono::duration_cast<clock::duration>(std::chrono::duration<double>(o_.duration));
    for (size_t i = 0; i < slots_.size() && more(); ++i)
      open(i);
    std::vector<epoll_event> events(slots_.size());
    int quiet_seconds = 0;
    while (open_ > 0) {
      int n = epoll_wait(ep_, events.data(), static_cast<int>(events.size()), 1000);
      if (n < 0 && errno != EINTR) die(std::string("epoll_wait: ") + std::strerror(errno));
      // A server that stops answering fails the run instead of hanging the harness.
      quiet_seconds = n == 0 ? quiet_seconds + 1 : 0;
      if (quiet_seconds == kQuietLimit) {
        die(std::to_string(open_) + " connections without any progress for " +
            std::to_string(kQuietLimit) + " s");
      }
      for (int i = 0; i < n; ++i)
        advance(events[i].data.u64);
    }
    elapsed_ = std::chrono::duration<double>(clock::now() - start_).count();
    return totals_;
  }

  ~Load() {
    for (Slot& s : slots_) {
      if (s.session != nullptr) SSL_SESSION_free(s.session);
    }
    close(ep_);
  }
  Load(const Load&) = delete;
  Load& operator=(const Load&) = delete;

  double elapsed() const { return elapsed_; }

 private:
  bool more() const {
    return o_.requests > 0 ? started_ < o_.requests : std::chrono::steady_clock::now() < end_;
  }

  void open(size_t i) {
    ++started_;
    Slot& s = slots_[i];
    s.fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (s.fd < 0) die(std::string("socket: ") + std::strerror(errno));
    // Without it a resumed TLS 1.3 handshake's request waits behind the unacknowledged
    // Finished until the server's delayed ACK (40 ms).
    int one = 1;
    setsockopt(s.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(s.fd, reinterpret_cast<const sockaddr*>(&addr_), sizeof addr_) < 0 &&
        errno != EINPROGRESS) {
      die("connect to 127.0.0.1:" + std::to_string(o_.port) + ": " + std::strerror(errno));
    }
    s.ssl = SSL_new(ctx_);
    if (s.ssl == nullptr || SSL_set_fd(s.ssl, s.fd) != 1) die("SSL_new failed");
    if (s.session != nullptr) SSL_set_session(s.ssl, s.session);
    s.step = Step::handshake;
    s.head.clear();
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLOUT | EPOLLET;
    ev.data.u64 = i;
    if (epoll_ctl(ep_, EPOLL_CTL_ADD, s.fd, &ev) < 0) die("epoll_ctl failed");
    ++open_;
    advance(i);  // SSL_connect writes the ClientHello once the connect completes
  }

  // Runs the slot's connection as far as it goes without blocking.
  void advance(size_t i) {
    Slot& s = slots_[i];
    if (s.ssl == nullptr) return;
    for (;;) {
      int r = 0;
      switch (s.step) {
        case Step::handshake:
          r = SSL_connect(s.ssl);
          if (r == 1) {
            s.step = Step::write;
            continue;
          }
          break;
        case Step::write:
          r = SSL_write(s.ssl, request.data(), static_cast<int>(request.size()));
          if (r > 0) {
            s.step = Step::read;
            continue;
          }
          break;
        case Step::read: {
          char buf[16384];
          r = SSL_read(s.ssl, buf, sizeof buf);
          if (r > 0) {
            take(s, std::string_view(buf, static_cast<size_t>(r)));
            continue;
          }
          break;
        }
      }
      int err = SSL_get_error(s.ssl, r);
      if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) return;
      finish(i, s.step == Step::read && err == SSL_ERROR_ZERO_RETURN);
      return;
    }
  }

  void take(Slot& s, std::string_view data) {
    totals_.bytes += static_cast<long>(data.size());
    if (s.head.size() < ok_prefix.size()) {
      s.head.append(data.substr(0, ok_prefix.size() - s.head.size()));
    }
  }

  void finish(size_t i, bool clean) {
    Slot& s = slots_[i];
    bool reused = SSL_session_reused(s.ssl) == 1;
    ++totals_.done;
    if (clean && s.head == ok_prefix) ++totals_.ok;
    if (reused) ++totals_.resumed;
    bool as_expected = o_.mode == Mode::full ? !reused : (reused || s.first);
    if (!clean || !as_expected) ++totals_.failed;
    s.first = false;
    if (o_.mode != Mode::full) {
      SSL_SESSION* next = SSL_get1_session(s.ssl);
      if (s.session != nullptr) SSL_SESSION_free(s.session);
      s.session = next;
    }
    SSL_shutdown(s.ssl);  // quiet: nothing is written
    SSL_free(s.ssl);
    s.ssl = nullptr;
    close(s.fd);  // also takes it out of the epoll set
    s.fd = -1;
    --open_;
    ERR_clear_error();
    if (more()) open(i);
  }

  const Options& o_;
  SSL_CTX* ctx_;
  std::vector<Slot> slots_;
  int ep_ = -1;
  int open_ = 0;
  long started_ = 0;
  sockaddr_in addr_{};
  Totals totals_;
  std::chrono::steady_clock::time_point start_, end_;
  double elapsed_ = 0;
};

std::string_view name(Mode m) {
  for (const auto& [text, mode] : kModes) {
    if (mode == m) return text;
  }
  return "?";
}

}  // namespace

int main(int argc, char** argv) {
  Options o = parse(argc, argv);
  SSL_CTX* ctx = make_context(o.mode);
  Totals t;
  double secs = 0;
  {
    Load load(o, ctx);  // frees the sessions it kept before the context goes
    t = load.run();
    secs = load.elapsed();
  }
  std::printf(
      "h2load-style summary from handshake_load (mode %s, %d connections): %ld of %ld "
      "handshakes resumed\n",
      std::string(name(o.mode)).c_str(), o.conns, t.resumed, t.done);
  std::printf("finished in %.2fs, %.2f req/s, %.2fKB/s\n", secs, static_cast<double>(t.done) / secs,
              static_cast<double>(t.bytes) / secs / 1024);
  std::printf(
      "requests: %ld total, %ld started, %ld done, %ld succeeded, %ld failed, 0 errored, "
      "0 timeout\n",
      t.done, t.done, t.done, t.done - t.failed, t.failed);
  std::printf("status codes: %ld 2xx, 0 3xx, 0 4xx, %ld 5xx\n", t.ok, t.done - t.ok);
  SSL_CTX_free(ctx);
  if (t.ok == 0) {
    std::fprintf(stderr, "handshake_load: no request on 127.0.0.1:%d was answered with a 200\n",
                 o.port);
    return 1;
  }
  return 0;
}
