#include "meridian/server/server.hpp"

#include <chrono>
#include <csignal>
#include <ctime>
#include <iostream>
#include <thread>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>

#include "meridian/admin/admin_server.hpp"
#include "meridian/config/loader.hpp"
#include "meridian/core/log.hpp"
#include "meridian/health/health_checker.hpp"
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

std::string endpoint_text(const tcp::endpoint& e) {
  // Built with append: GCC 12 warns falsely (-Wrestrict) on chained operator+ here.
  const auto a = e.address();
  std::string text;
  if (a.is_v6()) text.push_back('[');
  text.append(a.to_string());
  if (a.is_v6()) text.push_back(']');
  text.push_back(':');
  text.append(std::to_string(e.port()));
  return text;
}

}  // namespace

struct Server::Impl {
  ServerOptions options;
  asio::io_context ioc{1};
  std::shared_ptr<const proxy::Snapshot> snapshot;  // main thread's view of the current one
  std::uint64_t generation = 0;
  std::atomic<std::uint64_t> node_connections{0};
  std::atomic<std::uint32_t> store_connections{0};  // workers connected to Redis
  std::vector<std::unique_ptr<Worker>> workers;
  std::shared_ptr<admin::AdminServer> admin;
  asio::signal_set signals{ioc};
  asio::steady_timer drain_timer{ioc};
  bool draining = false;
  int exit_code = 0;
  ReloadStatus reload_status;
  std::unique_ptr<health::HealthChecker> health;

  bool load_initial();
  bool bind_listeners();
  void wait_signal();
  void reload();
  void drain();
  void poll_drained();
};

bool Server::Impl::load_initial() {
  const auto result = config::load_config_file(options.config_path);
  if (!result.ok()) {
    print_errors(result.errors);
    return false;
  }
  std::string error;
  snapshot = proxy::Snapshot::build(result.config, nullptr, generation + 1, error);
  if (!snapshot) {
    std::cerr << options.config_path << ": geoip.database: " << error << '\n';
    return false;
  }
  ++generation;
  reload_status.generation = generation;
  return true;
}

bool Server::Impl::bind_listeners() {
  const auto& config = *snapshot->config;
  std::size_t n = config.workers;
  if (n == 0) n = std::max(1u, std::thread::hardware_concurrency());
  for (std::size_t i = 0; i < n; ++i) {
    workers.push_back(std::make_unique<Worker>(i, node_connections, store_connections));
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
      hooks.not_ready_reason = [this]() -> std::string {
        if (draining) return "draining";
        return unready_reason(*snapshot);
      };
      hooks.status_json = [this] {
        return status_json(*snapshot, reload_status, draining,
                           StoreConnections{store_connections.load(), workers.size()});
      };
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
    if (ec) return;
    if (signo == SIGHUP) {
      reload();
      wait_signal();
    } else {
      log::info("signal ", signo == SIGTERM ? "SIGTERM" : "SIGINT", ": draining");
      drain();
    }
  });
}

void Server::Impl::reload() {
  // The full reload (listener add/remove, file watching, /reload, metrics) belongs to the
  // operations issue; this swaps routes and backends when the listener set is unchanged.
  const auto result = config::load_config_file(options.config_path);
  std::string errors;
  std::shared_ptr<const proxy::Snapshot> next;
  if (!result.ok()) {
    for (const auto& e : result.errors)
      errors += e.to_string() + "\n";
  } else {
    const auto& old_listeners = snapshot->config->listeners;
    const auto& new_listeners = result.config->listeners;
    bool same = old_listeners.size() == new_listeners.size();
    for (std::size_t i = 0; same && i < new_listeners.size(); ++i) {
      same = old_listeners[i].name == new_listeners[i].name &&
             old_listeners[i].listen.text == new_listeners[i].listen.text;
    }
    std::string error;
    if (!same) {
      errors = "adding, removing or moving listeners needs a restart for now\n";
    } else if (next = proxy::Snapshot::build(result.config, snapshot.get(), generation + 1, error);
               !next) {
      errors = options.config_path + ": geoip.database: " + error + "\n";
    }
  }
  reload_status.last_time = now_rfc3339();
  if (!next) {
    log::error("reload failed; keeping generation ", generation, ":\n", errors);
    reload_status.last_result = "failure";
    reload_status.last_error = errors;
    return;
  }
  snapshot = std::move(next);
  ++generation;
  reload_status.generation = generation;
  reload_status.last_result = "success";
  reload_status.last_error.clear();
  for (auto& w : workers)
    w->publish(snapshot);
  if (health) health->update(snapshot, snapshot->backends);
  log::info("reloaded ", options.config_path, ": generation ", generation);
}

void Server::Impl::drain() {
  if (draining) return;
  draining = true;
  if (health) health->stop();  // its timers would keep the main loop alive
  for (auto& w : workers)
    w->drain();
  drain_timer.expires_after(snapshot->config->drain_timeout);
  drain_timer.async_wait([this](boost::system::error_code ec) {
    if (ec) return;
    log::warn("drain_timeout passed with requests in flight; closing them");
    for (auto& w : workers)
      w->stop();
    if (admin) admin->close();
    signals.cancel();
  });
  poll_drained();
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
  for (auto& w : s.workers)
    w->start(s.snapshot);
  // One prober per node, on the main thread (SPEC 5: N workers must not multiply probes).
  s.health = std::make_unique<health::HealthChecker>(s.ioc);
  s.health->update(s.snapshot, s.snapshot->backends);
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
