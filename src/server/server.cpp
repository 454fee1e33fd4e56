#include "meridian/server/server.hpp"

#include <chrono>
#include <csignal>
#include <ctime>
#include <iostream>
#include <thread>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>

#include "meridian/accesslog/access_log.hpp"
#include "meridian/admin/admin_server.hpp"
#include "meridian/config/loader.hpp"
#include "meridian/core/log.hpp"
#include "meridian/core/units.hpp"
#include "meridian/dns/refresher.hpp"
#include "meridian/health/health_checker.hpp"
#include "meridian/metrics/registry.hpp"
#include "meridian/server/config_watcher.hpp"
#include "meridian/server/metrics_page.hpp"
#include "meridian/server/runtime_control.hpp"
#include "meridian/server/shared_state.hpp"
#include "meridian/server/status_page.hpp"
#include "meridian/server/worker.hpp"

namespace meridian::server {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

namespace {

void print_errors(const std::vector<config::ConfigError>& errors) {
  for (const auto& e : errors)
    std::cerr << e.to_string() << '\n';
}

std::string now_rfc3339() {
  const auto now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm utc{};
  gmtime_r(&now, &utc);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &utc);
  return text;
}

bool same_admin(const config::Config& a, const config::Config& b) {
  if (a.admin.listen.has_value() != b.admin.listen.has_value()) return false;
  return !a.admin.listen || a.admin.listen->resolved == b.admin.listen->resolved;
}

std::string endpoint_text(const tcp::endpoint& e) {
  return format_host_port(e.address(), e.port());
}

}  // namespace

struct Server::Impl {
  ServerOptions options;
  asio::io_context ioc{1};
  std::shared_ptr<const proxy::Snapshot> snapshot;  // main thread's view of the current one
  std::uint64_t generation = 0;
  std::atomic<std::uint64_t> node_connections{0};
  std::atomic<std::uint32_t> store_connections{0};   // workers connected to Redis
  std::unique_ptr<metrics::Registry> registry;       // before workers: they count into it
  std::unique_ptr<accesslog::AccessLog> access_log;  // before workers: they write into it
  std::vector<std::unique_ptr<Worker>> workers;
  std::shared_ptr<admin::AdminServer> admin;
  asio::signal_set signals{ioc};
  asio::steady_timer drain_timer{ioc};
  asio::steady_timer grace_timer{ioc};
  asio::steady_timer region_health_timer{ioc};  // publish_region_health's period
  NodeState node;         // drain phase and maintenance; survives reloads, not restarts
  bool stopping = false;  // the signal wait is over for good
  int exit_code = 0;
  ReloadStatus reload_status;
  std::uint64_t reloads_succeeded = 0;  // meridian_config_reloads_total{result}
  std::uint64_t reloads_failed = 0;
  std::unique_ptr<health::HealthChecker> health;
  std::unique_ptr<ConfigWatcher> watcher;
  std::unique_ptr<SharedState> shared;       // admin.shared_state: redis
  std::unique_ptr<dns::Refresher> resolver;  // endpoints[].resolve
  std::string initial_content;               // what load_initial() read, for the watcher

  struct ReloadOutcome {
    bool ok = false;
    std::uint64_t generation = 0;
    std::vector<std::string> errors;
  };

  bool load_initial();
  bool bind_listeners();
  void wait_signal();
  ReloadOutcome reload(std::string_view trigger);
  void plan_listeners(const config::Config& next, std::vector<Worker::ListenerChanges>& changes,
                      std::vector<std::string>& errors);
  void on_stop_signal(int signo);
  void drain();
  void poll_drained();
  void stop_signals();
  void publish_region_health();
  void configure_dns();
  void on_dns_change();
  admin::AdminAnswer maintenance(std::string_view state);
  admin::AdminAnswer set_state(const admin::StateRequest& request);
  void configure_shared_state();
  void apply_shared(const std::vector<SharedUpdate>& updates);
};

bool Server::Impl::load_initial() {
  initial_content = read_file_or_empty(options.config_path);
  const auto result = config::load_config_file(options.config_path);
  if (!result.ok()) {
    print_errors(result.errors);
    return false;
  }
  std::size_t n = result.config->workers;
  if (n == 0) n = std::max(1u, std::thread::hardware_concurrency());
  registry = std::make_unique<metrics::Registry>(n);
  std::string error;
  snapshot = proxy::Snapshot::build(result.config, nullptr, generation + 1, *registry, error);
  if (!snapshot) {
    std::cerr << options.config_path << ": " << error << '\n';
    return false;
  }
  ++generation;
  reload_status.generation = generation;
  return true;
}

bool Server::Impl::bind_listeners() {
  const auto& config = *snapshot->config;
  const std::size_t n = registry->workers();
  access_log = std::make_unique<accesslog::AccessLog>(config.access_log.path, n);
  for (std::size_t i = 0; i < n; ++i) {
    workers.push_back(std::make_unique<Worker>(i, node_connections, store_connections,
                                               registry->worker(i), *access_log));
  }
  for (std::size_t l = 0; l < config.listeners.size(); ++l) {
    const auto& listener = config.listeners[l];
    auto endpoint = listener.listen.resolved;
    try {
      for (auto& w : workers) {
        w->open_listener(listener.name, endpoint);
        // Port 0 asks the kernel for a port; every other worker must join that one.
        if (endpoint.port() == 0) endpoint.port(w->listener_endpoint(l).port());
      }
    } catch (const boost::system::system_error& e) {
      std::cerr << config.source_path << ": listeners[" << l << "].listen: cannot listen on "
                << listener.listen.text << ": " << e.code().message() << '\n';
      return false;
    }
    log::info("listener ", listener.name, " on ", endpoint_text(endpoint), " (", n,
              n == 1 ? " worker)" : " workers)");
  }
  if (config.admin.listen) {
    try {
      admin::AdminHooks hooks;
      hooks.ready = [this](const std::optional<std::string>& backend) -> admin::AdminAnswer {
        if (backend) return backend_readiness(*snapshot, *backend);
        const std::string reason = node_unready_reason(node);
        if (reason.empty()) return {200, "ready\n"};
        return {503, "not ready: " + reason + "\n"};
      };
      hooks.status_json = [this] {
        NodeState now = node;
        if (shared) {
          now.shared_state_redis = shared->address();
          now.shared_state_connected = shared->connected();
        }
        return status_json(
            *snapshot, reload_status, now,
            StoreConnections{store_connections.load(), workers.size()},
            resolver ? resolver->status() : std::vector<dns::Refresher::NameStatus>{});
      };
      hooks.metrics_text = [this] {
        return server::metrics_text(
            *snapshot, *registry,
            ProcessCounters{reloads_succeeded, reloads_failed, generation, access_log->dropped(),
                            resolver ? resolver->succeeded() : 0,
                            resolver ? resolver->failed() : 0});
      };
      hooks.reload = [this] {
        const auto outcome = reload("POST /reload");
        return admin::AdminAnswer{outcome.ok ? 200u : 400u,
                                  reload_json(outcome.ok, outcome.generation, outcome.errors),
                                  true};
      };
      hooks.maintenance = [this](std::string_view state) { return maintenance(state); };
      hooks.set_state = [this](const admin::StateRequest& request) { return set_state(request); };
      admin = std::make_shared<admin::AdminServer>(ioc, config.admin.listen->resolved,
                                                   std::move(hooks));
    } catch (const boost::system::system_error& e) {
      std::cerr << config.source_path << ": admin.listen: cannot listen on "
                << config.admin.listen->text << ": " << e.code().message() << '\n';
      return false;
    }
    admin->start();
    log::info("admin on ", endpoint_text(admin->local_endpoint()));
  }
  return true;
}

void Server::Impl::wait_signal() {
  signals.async_wait([this](boost::system::error_code ec, int signo) {
    if (ec || stopping) return;
    if (signo == SIGHUP) {
      reload("SIGHUP");
      wait_signal();
    } else if (signo == SIGUSR1) {
      // logrotate: the old file was renamed; write to a new one of the same name.
      log::info("signal SIGUSR1: reopening the access log");
      access_log->reopen();
      wait_signal();
    } else {
      on_stop_signal(signo);
    }
  });
}

void Server::Impl::on_stop_signal(int signo) {
  const char* name = signo == SIGTERM ? "SIGTERM" : "SIGINT";
  const auto grace = snapshot->config->drain_grace;
  if (node.drain_phase == DrainPhase::serving && grace.count() > 0) {
    // Phase 1: /ready answers 503 at once so that the announcer (ExaBGP, BIRD) or the L4
    // balancer stops sending new connections here, while the listeners keep accepting and
    // serving those still routed to this node until the withdrawal has spread.
    node.drain_phase = DrainPhase::grace;
    log::info("signal ", name, ": /ready answers 503; serving for drain_grace (", grace.count(),
              " ms) before draining; a second signal drains at once");
    grace_timer.expires_after(grace);
    grace_timer.async_wait([this](boost::system::error_code ec) {
      if (ec) return;
      log::info("drain_grace passed: draining");
      drain();
    });
    wait_signal();  // a second signal skips the rest of the grace
    return;
  }
  if (node.drain_phase == DrainPhase::grace) {
    log::info("signal ", name, " during drain_grace: draining now");
    grace_timer.cancel();
  } else {
    log::info("signal ", name, ": draining");
  }
  drain();
}

admin::AdminAnswer Server::Impl::set_state(const admin::StateRequest& request) {
  auto answer = set_runtime_state(*snapshot, request);
  if (answer.status != 200 || !shared) return answer;
  // Applied here; the fleet follows through Redis. The answer says whether Redis took it
  // ("shared"), so an operator knows when an override holds on this node only.
  const bool ok = shared->publish(
      SharedUpdate{request.backend, request.region, request.endpoint, request.state});
  answer.body.insert(answer.body.rfind('}'), ok ? ",\"shared\":true" : ",\"shared\":false");
  return answer;
}

void Server::Impl::configure_shared_state() {
  const auto& config = *snapshot->config;
  if (!config.admin.shared_state_redis) {
    if (shared) log::info("shared state: off");
    shared.reset();
    return;
  }
  // The fleet's Redis: the rate limit store's, or its default address.
  const config::RateLimitStore store = config.rate_limit_store.value_or(config::RateLimitStore{});
  tcp::endpoint redis = store.redis.resolved;
  std::string text = store.redis.text;
  if (!config.rate_limit_store) {
    redis = tcp::endpoint(asio::ip::make_address("127.0.0.1"), 6379);
    text = "127.0.0.1:6379";
  }
  if (shared && shared->redis() == redis) return;
  shared.reset();
  shared = std::make_unique<SharedState>(
      ioc, redis, text,
      [this](const std::vector<SharedUpdate>& updates) { apply_shared(updates); });
}

void Server::Impl::apply_shared(const std::vector<SharedUpdate>& updates) {
  for (const auto& u : updates) {
    const auto answer = set_runtime_state(
        *snapshot, admin::StateRequest{u.backend, u.region, u.endpoint, u.state}, "the fleet");
    // A name this node does not have (its configuration differs) is not an error here.
    if (answer.status != 200) log::debug("shared state: ignored: ", answer.body);
  }
}

admin::AdminAnswer Server::Impl::maintenance(std::string_view state) {
  if (state != "on" && state != "off") {
    return {400, "state must be on or off, got \"" + std::string(state) + "\"\n"};
  }
  const bool on = state == "on";
  if (node.maintenance != on) {
    node.maintenance = on;
    log::info(
        "maintenance ", state,
        on ? ": /ready answers 503; traffic is still served" : ": /ready follows the node again");
  }
  return {200, "maintenance " + std::string(state) + "\n"};
}

Server::Impl::ReloadOutcome Server::Impl::reload(std::string_view trigger) {
  // The new file is validated whole, new listeners are bound, and only then does anything
  // change; any failure leaves the running configuration as it was.
  if (node.drain_phase != DrainPhase::serving) {
    // The process is on its way out: a new configuration would restart health checks and
    // open listeners that nobody serves.
    ReloadOutcome refused;
    refused.generation = generation;
    refused.errors.push_back("draining: the process is shutting down");
    return refused;
  }
  const std::string content = read_file_or_empty(options.config_path);
  if (watcher) watcher->loaded(content);
  const auto result = config::load_config_string(content, options.config_path);
  std::vector<std::string> errors;
  std::shared_ptr<const proxy::Snapshot> next;
  std::vector<Worker::ListenerChanges> changes(workers.size());
  if (content.empty() && !result.ok()) {
    // Unreadable or gone: let the file loader name the cause.
    for (const auto& e : config::load_config_file(options.config_path).errors)
      errors.push_back(e.to_string());
  } else if (!result.ok()) {
    for (const auto& e : result.errors)
      errors.push_back(e.to_string());
  } else {
    // The snapshot first (it may fail on the GeoIP file or a certificate), then the new
    // sockets: nothing is bound for a reload that cannot happen.
    std::string error;
    next = proxy::Snapshot::build(result.config, snapshot.get(), generation + 1, *registry, error,
                                  resolver ? &resolver->addresses() : nullptr);
    if (!next) {
      errors.push_back(options.config_path + ": " + error);
    } else {
      plan_listeners(*result.config, changes, errors);
      if (!errors.empty()) next.reset();
    }
    const auto& before = *snapshot->config;
    const auto& after = *result.config;
    if (next && before.workers != after.workers) {
      log::warn("reload: workers ", after.workers, " takes effect at the next restart");
    }
    if (next && !same_admin(before, after)) {
      log::warn("reload: admin.listen takes effect at the next restart");
    }
  }
  reload_status.last_time = now_rfc3339();
  ReloadOutcome outcome;
  if (!next) {
    std::string text;
    for (const auto& e : errors)
      text += e + "\n";
    log::error("reload (", trigger, ") failed; keeping generation ", generation, ":\n", text);
    reload_status.last_result = "failure";
    reload_status.last_error = text;
    ++reloads_failed;
    outcome.errors = std::move(errors);
    outcome.generation = generation;
    return outcome;
  }
  snapshot = std::move(next);
  ++generation;
  ++reloads_succeeded;
  reload_status.generation = generation;
  reload_status.last_result = "success";
  reload_status.last_error.clear();
  access_log->set_path(snapshot->config->access_log.path);
  for (std::size_t i = 0; i < workers.size(); ++i)
    workers[i]->publish(snapshot, std::move(changes[i]));
  if (health) health->update(snapshot, snapshot->backends);
  configure_shared_state();
  configure_dns();
  log::info("reloaded ", options.config_path, " (", trigger, "): generation ", generation);
  outcome.ok = true;
  outcome.generation = generation;
  return outcome;
}

void Server::Impl::plan_listeners(const config::Config& next,
                                  std::vector<Worker::ListenerChanges>& changes,
                                  std::vector<std::string>& errors) {
  // A listener is kept when one of the same name listens on the same address: its sockets
  // stay open and its connections are untouched. Anything else is closed or opened.
  const auto& running = snapshot->config->listeners;
  auto kept = [&](const config::Listener& l) {
    for (const auto& r : running) {
      if (r.name == l.name && r.listen.resolved == l.listen.resolved &&
          r.listen.resolved.port() != 0) {
        return true;
      }
    }
    return false;
  };
  for (const auto& r : running) {
    bool stays = false;
    for (const auto& l : next.listeners) {
      if (l.name == r.name && kept(l)) stays = true;
    }
    if (stays) continue;
    for (auto& c : changes)
      c.removed.push_back(r.name);
  }
  for (std::size_t i = 0; i < next.listeners.size(); ++i) {
    const auto& l = next.listeners[i];
    if (kept(l)) continue;
    auto endpoint = l.listen.resolved;
    try {
      for (std::size_t w = 0; w < workers.size(); ++w) {
        auto socket = workers[w]->open_socket(endpoint);
        // Port 0 asks the kernel for a port; every other worker must join that one.
        if (endpoint.port() == 0) endpoint.port(socket.local_endpoint().port());
        changes[w].added.emplace_back(l.name, std::move(socket));
      }
      log::info("reload: listener ", l.name, " on ", endpoint_text(endpoint));
    } catch (const boost::system::system_error& e) {
      errors.push_back(options.config_path + ": listeners[" + std::to_string(i) +
                       "].listen: cannot listen on " + l.listen.text + ": " + e.code().message());
      // The sockets opened so far close with `changes` when the reload is abandoned.
      return;
    }
  }
}

void Server::Impl::drain() {
  if (node.drain_phase == DrainPhase::draining) return;
  node.drain_phase = DrainPhase::draining;
  if (health) health->stop();  // its timers would keep the main loop alive
  region_health_timer.cancel();
  if (resolver) resolver->stop();
  if (watcher) watcher->stop();
  for (auto& w : workers)
    w->drain();
  // After the listeners closed: joining the Redis follower may wait out a connect timeout.
  shared.reset();
  drain_timer.expires_after(snapshot->config->drain_timeout);
  drain_timer.async_wait([this](boost::system::error_code ec) {
    if (ec) return;
    log::warn("drain_timeout passed with requests in flight; closing them");
    for (auto& w : workers)
      w->stop();
    if (admin) admin->close();
    stop_signals();
  });
  poll_drained();
}

void Server::Impl::configure_dns() {
  // Names whose `resolve` went away are dropped, new ones looked up at once. An answer that
  // changes a name's addresses comes back through on_dns_change().
  try {
    if (!resolver) resolver = std::make_unique<dns::Refresher>(ioc, [this] { on_dns_change(); });
    resolver->configure(*snapshot->config);
  } catch (const std::exception& e) {
    log::error(e.what(), "; names with resolve get no address until a reload fixes dns");
  }
}

void Server::Impl::on_dns_change() {
  // The same configuration with the backends rebuilt from the new addresses: addresses that
  // stay keep their endpoint state, removed ones finish their requests in flight (which pin
  // the snapshot they started with) and take no new ones.
  if (node.drain_phase == DrainPhase::draining) return;
  snapshot = snapshot->with_resolved(resolver->addresses());
  for (auto& w : workers)
    w->publish(snapshot);
  if (health) health->update(snapshot, snapshot->backends);
}

void Server::Impl::publish_region_health() {
  // Steering's per-region summary (healthy endpoints, slow start), recounted on a short
  // period: health changes, ejections and their ends all show within it.
  balancing::publish_region_health(snapshot->backends, balancing::steady_now_ns());
  region_health_timer.expires_after(balancing::RegionState::kPublishPeriod);
  region_health_timer.async_wait([this](boost::system::error_code ec) {
    if (!ec && node.drain_phase != DrainPhase::draining) publish_region_health();
  });
}

void Server::Impl::poll_drained() {
  // Workers end on their own when their last session closes; the main thread notices on a
  // short poll (drain is rare and this keeps workers from touching main-thread state).
  for (const auto& w : workers) {
    if (!w->finished()) {
      auto timer = std::make_shared<asio::steady_timer>(ioc, std::chrono::milliseconds(50));
      timer->async_wait([this, timer](boost::system::error_code ec) {
        if (!ec) poll_drained();
      });
      return;
    }
  }
  drain_timer.cancel();
  if (admin) admin->close();
  stop_signals();
}

void Server::Impl::stop_signals() {
  // A SIGHUP or SIGUSR1 whose handler is already queued must not wait again: the loop would
  // never run out of work and the process would not exit.
  stopping = true;
  signals.cancel();
}

Server::Server(ServerOptions options) : impl_(std::make_unique<Impl>()) {
  impl_->options = std::move(options);
}

Server::~Server() = default;

int Server::run() {
  auto& s = *impl_;
  std::signal(SIGPIPE, SIG_IGN);
  if (!s.load_initial()) return 1;
  if (!s.bind_listeners()) return 1;
  s.signals.add(SIGTERM);
  s.signals.add(SIGINT);
  s.signals.add(SIGHUP);
  s.signals.add(SIGUSR1);
  for (auto& w : s.workers) {
    // A worker's failed connect is news for the prober on the main thread.
    w->set_connect_failure_report([&s](const balancing::EndpointState* endpoint) {
      asio::post(s.ioc, [&s, endpoint] {
        if (s.health) s.health->passive_failure(endpoint);
      });
    });
    w->start(s.snapshot);
  }
  // One prober per node, on the main thread: N workers must not multiply probes.
  s.health = std::make_unique<health::HealthChecker>(s.ioc);
  s.health->update(s.snapshot, s.snapshot->backends);
  s.publish_region_health();
  s.configure_dns();
  s.watcher = std::make_unique<ConfigWatcher>(s.ioc, s.options.config_path,
                                              [&s] { s.reload("file changed"); });
  s.watcher->loaded(s.initial_content);
  s.configure_shared_state();
  s.initial_content.clear();
  log::info("meridian ", MERIDIAN_VERSION, " serving ", s.options.config_path, " (generation ",
            s.generation, ")");
  s.wait_signal();
  s.ioc.run();
  for (auto& w : s.workers) {
    w->stop();
    w->join();
  }
  log::info("drained; exiting");
  return s.exit_code;
}

int check_config(const std::string& path) {
  const auto result = config::load_config_file(path);
  if (!result.ok()) {
    print_errors(result.errors);
    return 1;
  }
  std::cout << path << ": ok\n";
  return 0;
}

}  // namespace meridian::server
