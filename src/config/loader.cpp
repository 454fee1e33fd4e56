// Entry points of the config loader: read the file, parse YAML, walk the top level, then run
// the checks that need the whole file (route -> backend, global rate limits -> store,
// overlapping listen addresses). Sections live in listeners.cpp and backends.cpp.
#include "meridian/config/loader.hpp"

#include <algorithm>
#include <cerrno>
#include <fcntl.h>
#include <optional>
#include <sstream>
#include <system_error>
#include <unistd.h>

#include <boost/asio/ip/address.hpp>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/parser.h>

#include "meridian/core/units.hpp"

#include "config/address.hpp"
#include "config/cidr.hpp"
#include "config/walk.hpp"

namespace meridian::config {
namespace detail {
namespace {

constexpr Choice<AccessLogFormat> kLogFormats[] = {{"json", AccessLogFormat::json},
                                                   {"combined", AccessLogFormat::combined}};
constexpr Choice<OnError> kOnError[] = {{"allow", OnError::allow}, {"deny", OnError::deny}};

constexpr std::string_view kDefaultAdmin = "127.0.0.1:9901";
constexpr std::string_view kDefaultRedis = "127.0.0.1:6379";

// Built-in defaults are numeric literals, so this cannot fail.
SocketAddress default_address(std::string_view text) {
  std::string ignored;
  return make_socket_address(text, AllowZero::no, ignored).value_or(SocketAddress{});
}

std::string host_name() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof buf - 1) != 0 || buf[0] == '\0') return "localhost";
  return buf;
}

void read_node(Diagnostics& diag, const Field& field, Node& node) {
  MapReader map(diag, field, Section::node);
  if (auto f = map.get("name")) {
    if (auto name = read_name(diag, *f)) node.name = *name;
  }
  if (auto f = map.get("location")) node.location = read_location(diag, *f, Section::node_location);
}

constexpr Choice<bool> kSharedState[] = {{"off", false}, {"redis", true}};

void read_admin(Walk& walk, const Field& field) {
  MapReader map(walk.diag, field, Section::admin);
  if (auto shared = map.get("shared_state")) {
    if (is_plain_false(shared->node)) {
      walk.config.admin.shared_state_redis = false;
    } else if (auto v = read_choice(walk.diag, *shared, kSharedState)) {
      walk.config.admin.shared_state_redis = *v;
    }
  }
  auto f = map.get("listen");
  if (!f) return;
  auto text = read_string(walk.diag, *f);
  if (!text) return;
  if (text->empty()) {
    walk.config.admin.listen.reset();
    return;
  }
  if (auto address = read_address(walk.diag, *f, AllowZero::yes)) {
    walk.config.admin.listen = *address;
    walk.bound_addresses.push_back({*f, "admin", address->resolved});
  }
}

void read_geoip(Diagnostics& diag, const Field& field, GeoIp& geoip) {
  MapReader map(diag, field, Section::geoip);
  auto f = map.get("database");
  if (!f) return;
  auto path = read_string(diag, *f);
  if (path && (path->empty() || check_readable_file(diag, *f, *path, "GeoIP database"))) {
    geoip.database = *path;
  }
}

// dns.servers: "ip" or "ip:port" ("[v6]:port"), stored as "ip:port" for c-ares.
void read_dns(Diagnostics& diag, const Field& field, Dns& dns) {
  MapReader map(diag, field, Section::dns);
  auto f = map.get("servers");
  if (!f) return;
  for (const auto& item : read_one_or_many(diag, *f)) {
    auto text = read_string(diag, item);
    if (!text) continue;
    std::string host = *text;
    std::uint16_t port = 53;
    if (auto hp = parse_host_port(*text)) {
      host = hp->host;
      port = hp->port;
    }
    boost::system::error_code ec;
    const auto address = boost::asio::ip::make_address(host, ec);
    if (ec || port == 0) {
      diag.error(
          item, "expected a DNS server address like 10.0.0.2 or 10.0.0.2:53, got " + quoted(*text));
      continue;
    }
    dns.servers.push_back(format_host_port(address, port));
  }
}

void read_client_ip(Diagnostics& diag, const Field& field, ClientIp& client_ip) {
  MapReader map(diag, field, Section::client_ip);
  auto f = map.get("trusted_proxies");
  if (!f) return;
  for (const auto& item : read_sequence(diag, *f)) {
    auto text = read_string(diag, item);
    if (!text) continue;
    std::string error;
    if (auto cidr = parse_cidr(*text, error)) {
      client_ip.trusted_proxies.push_back(*cidr);
    } else {
      diag.error(item, std::move(error));
    }
  }
}

void read_access_log(Diagnostics& diag, const Field& field, AccessLog& log) {
  MapReader map(diag, field, Section::access_log);
  if (auto f = map.get("path")) {
    auto flag = plain_bool(f->node);
    if (flag == false) {
      log.path = "off";
    } else if (flag == true) {
      diag.error(*f, "expected stdout, stderr, off or a file path, got " + describe(f->node));
    } else if (auto path = read_string(diag, *f)) {
      if (path->empty()) {
        diag.error(*f, "must not be empty (stdout, stderr, off or a file path)");
      } else {
        log.path = *path;
      }
    }
  }
  map.read("format", log.format, kLogFormats);
}

void read_limits(Diagnostics& diag, const Field& field, Limits& limits) {
  MapReader map(diag, field, Section::limits);
  map.read_size("max_request_header_bytes", limits.max_request_header_bytes, 1);
  map.read("max_request_headers", limits.max_request_headers, 1);
  map.read_size("max_request_body_bytes", limits.max_request_body_bytes);
  map.read("header_timeout", limits.header_timeout, AllowZero::no);
  map.read("idle_timeout", limits.idle_timeout, AllowZero::no);
  map.read("max_connections", limits.max_connections);
  if (map.read("max_rate_limit_keys", limits.max_rate_limit_keys, 1) &&
      limits.max_rate_limit_keys > Limits::kMaxRateLimitKeys) {
    diag.error(*map.get("max_rate_limit_keys"),
               "at most " + std::to_string(Limits::kMaxRateLimitKeys) + ", got " +
                   std::to_string(limits.max_rate_limit_keys));
  }
}

constexpr Choice<TracePropagation> kPropagation[] = {{"off", TracePropagation::off},
                                                     {"w3c", TracePropagation::w3c}};

void read_tracing(Diagnostics& diag, const Field& field, Tracing& tracing) {
  MapReader map(diag, field, Section::tracing);
  if (auto f = map.get("propagate")) {
    if (is_plain_false(f->node)) {
      tracing.propagate = TracePropagation::off;
    } else if (auto v = read_choice(diag, *f, kPropagation)) {
      tracing.propagate = *v;
    }
  }
}

RateLimitStore read_rate_limit_store(Diagnostics& diag, const Field& field) {
  RateLimitStore store;
  store.redis = default_address(kDefaultRedis);
  MapReader map(diag, field, Section::rate_limit_store);
  if (auto f = map.get("redis")) {
    if (auto address = read_address(diag, *f, AllowZero::no)) store.redis = *address;
  }
  map.read("timeout", store.timeout, AllowZero::no);
  map.read("on_error", store.on_error, kOnError);
  return store;
}

void check_backend_refs(Walk& walk) {
  // No backends at all is reported once; every route naming one would only repeat it.
  if (walk.config.backends.empty()) return;
  std::vector<std::string_view> names;
  for (const auto& backend : walk.config.backends)
    names.push_back(backend.name);
  for (const auto& ref : walk.backend_refs) {
    auto& route = walk.config.listeners[ref.listener].routes[ref.route];
    const std::string& name = ref.mirror ? route.mirror->backend : route.backends[ref.entry].name;
    auto it = std::find(names.begin(), names.end(), name);
    if (it == names.end()) {
      walk.diag.error(ref.field,
                      "backend " + quoted(name) + " does not exist" + did_you_mean(name, names));
      continue;
    }
    const auto index = static_cast<std::size_t>(it - names.begin());
    (ref.mirror ? route.mirror->index : route.backends[ref.entry].index) = index;
  }
}

void check_global_scope(Walk& walk) {
  if (walk.config.rate_limit_store) return;
  for (const auto& field : walk.global_scope_uses) {
    walk.diag.error(field, "scope global needs a rate_limit_store section");
  }
}

// Two sockets that cannot both be bound: same port and the same address, or one of them the
// wildcard of the same family. Port 0 asks the kernel for a fresh port, so never collides.
bool overlaps(const boost::asio::ip::tcp::endpoint& a, const boost::asio::ip::tcp::endpoint& b) {
  if (a.port() == 0 || a.port() != b.port()) return false;
  if (a.address() == b.address()) return true;
  if (a.address().is_v4() != b.address().is_v4()) return false;
  return a.address().is_unspecified() || b.address().is_unspecified();
}

void check_bound_addresses(Walk& walk) {
  auto& bound = walk.bound_addresses;
  // Report the later one in the file, naming the earlier.
  std::stable_sort(bound.begin(), bound.end(), [](const auto& a, const auto& b) {
    return a.field.mark.pos < b.field.mark.pos;
  });
  for (std::size_t i = 0; i < bound.size(); ++i) {
    for (std::size_t j = 0; j < i; ++j) {
      if (overlaps(bound[i].endpoint, bound[j].endpoint)) {
        walk.diag.error(bound[i].field, "address " + quoted(bound[i].field.node.Scalar()) +
                                            " is already used by " + bound[j].owner + " (line " +
                                            std::to_string(bound[j].field.mark.line + 1) + ")");
        break;
      }
    }
  }
}

void walk_root(Walk& walk, const YAML::Node& root) {
  auto& diag = walk.diag;
  auto& config = walk.config;
  // Defaults that are not plain struct initialisers.
  config.node.name = host_name();
  config.admin.listen = default_address(kDefaultAdmin);

  // An empty document has no position; yaml-cpp would point past its end.
  Field top{root, "", root.IsNull() ? YAML::Mark::null_mark() : root.Mark()};
  MapReader map(diag, top, Section::top);
  if (!map.valid()) return;
  if (auto f = map.get("node")) read_node(diag, *f, config.node);
  map.read("workers", config.workers);
  map.read("drain_timeout", config.drain_timeout, AllowZero::yes);
  map.read("drain_grace", config.drain_grace, AllowZero::yes);
  map.read("debug_headers", config.debug_headers);
  if (auto f = map.get("admin")) read_admin(walk, *f);
  if (auto f = map.get("geoip")) read_geoip(diag, *f, config.geoip);
  if (auto f = map.get("dns")) read_dns(diag, *f, config.dns);
  if (auto f = map.get("client_ip")) read_client_ip(diag, *f, config.client_ip);
  if (auto f = map.get("access_log")) read_access_log(diag, *f, config.access_log);
  if (auto f = map.get("limits")) read_limits(diag, *f, config.limits);
  if (auto f = map.require("listeners")) read_listeners(walk, *f);
  if (auto f = map.get("rate_limit_store")) {
    config.rate_limit_store = read_rate_limit_store(diag, *f);
  }
  if (auto f = map.require("backends")) read_backends(walk, *f);
  if (auto f = map.get("tracing")) read_tracing(diag, *f, config.tracing);

  check_backend_refs(walk);
  check_global_scope(walk);
  check_bound_addresses(walk);
}

// 0, or the errno that stopped the read. POSIX calls rather than ifstream so that a
// directory or a permission problem is reported as such instead of as an empty file.
int read_whole_file(const std::string& path, std::string& out) noexcept {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno;
  int error = 0;
  try {
    char buf[64 * 1024];
    for (;;) {
      ssize_t n = ::read(fd, buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        error = errno;
        break;
      }
      if (n == 0) break;
      out.append(buf, static_cast<std::size_t>(n));
    }
  } catch (...) {
    error = ENOMEM;
  }
  ::close(fd);
  return error;
}

// yaml-cpp 0.7 (Debian 12) does not terminate on some malformed input: found by the
// tests/fuzz config target, a ',' where a block value begins (a file holding "," alone,
// " , x" below a more indented mapping, "!tag," ...) makes it emit null nodes without end
// until memory runs out. A reload must never take the node down, so the text goes first
// through yaml-cpp's event parser with a budget: a well-formed document yields a few events
// per byte at most, a runaway parse exceeds any budget proportional to the input.
class EventBudget final : public YAML::EventHandler {
 public:
  struct Exhausted {
    YAML::Mark mark;
  };
  explicit EventBudget(std::size_t events) : left_(events) {}

  void OnDocumentStart(const YAML::Mark& mark) override { spend(mark); }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark& mark, YAML::anchor_t) override { spend(mark); }
  void OnAlias(const YAML::Mark& mark, YAML::anchor_t) override { spend(mark); }
  void OnScalar(const YAML::Mark& mark, const std::string&, YAML::anchor_t,
                const std::string&) override {
    spend(mark);
  }
  void OnSequenceStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {
    spend(mark);
  }
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {
    spend(mark);
  }
  void OnMapEnd() override {}

 private:
  void spend(const YAML::Mark& mark) {
    if (left_ == 0) throw Exhausted{mark};
    --left_;
  }
  std::size_t left_;
};

// The mark where yaml-cpp stops making progress, or nullopt when the text parses (or fails
// with an ordinary syntax error, which the real parse reports).
std::optional<YAML::Mark> runaway_parse(std::string_view text) {
  std::istringstream in{std::string(text)};
  YAML::Parser parser(in);
  EventBudget budget(4 * text.size() + 64);
  try {
    while (parser.HandleNextDocument(budget)) {
    }
  } catch (const EventBudget::Exhausted& e) {
    return e.mark;
  } catch (const YAML::Exception&) {
  }
  return std::nullopt;
}

LoadResult load(std::string_view text, const std::string& display_path) {
  Diagnostics diag(display_path);
  Config config;
  config.source_path = display_path;
  if (const auto mark = runaway_parse(text)) {
    diag.error(*mark, "",
               "YAML syntax error: the parser does not terminate here (a ',' or another "
               "indicator out of place?)");
    LoadResult result;
    result.errors = diag.take_sorted();
    return result;
  }
  try {
    auto documents = YAML::LoadAll(std::string(text));
    if (documents.size() > 1) {
      diag.error(documents[1].Mark(), "",
                 "expected a single YAML document, found " + std::to_string(documents.size()));
    }
    Walk walk{diag, config, {}, {}, {}};
    walk_root(walk, documents.empty() ? YAML::Node() : documents.front());
  } catch (const YAML::ParserException& e) {
    // A syntax error stops the parse before the walk, so it is the only error.
    diag = Diagnostics(display_path);
    diag.error(e.mark, "", "YAML syntax error: " + e.msg);
  } catch (const std::exception& e) {
    // The readers never convert with as<>, so yaml-cpp has nothing else to throw; this is
    // the "never throws" guarantee, not an expected path.
    diag.error_without_position(std::string("internal error: ") + e.what());
  }
  LoadResult result;
  if (diag.empty()) {
    result.config = std::make_shared<const Config>(std::move(config));
  } else {
    result.errors = diag.take_sorted();
  }
  return result;
}

}  // namespace
}  // namespace detail

LoadResult load_config_string(std::string_view yaml, const std::string& display_path) {
  try {
    return detail::load(yaml, display_path);
  } catch (...) {
    // Only allocation failure can get here; the contract is "never throws".
    LoadResult result;
    result.errors.push_back(ConfigError{display_path, 0, 0, "", "out of memory"});
    return result;
  }
}

LoadResult load_config_file(const std::string& path) {
  std::string contents;
  if (int error = detail::read_whole_file(path, contents); error != 0) {
    LoadResult result;
    result.errors.push_back(
        ConfigError{path, 0, 0, "", "cannot read file: " + std::generic_category().message(error)});
    return result;
  }
  return load_config_string(contents, path);
}

}  // namespace meridian::config
