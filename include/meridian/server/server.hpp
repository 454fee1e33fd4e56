// The process: loads the configuration, owns the workers and the admin listener, and turns
// signals into reload and drain (docs/operations.md, signals). Runs on the main thread.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "meridian/proxy/snapshot.hpp"

namespace meridian::server {

class Worker;

struct ServerOptions {
  std::string config_path;
};

class Server {
 public:
  explicit Server(ServerOptions options);
  ~Server();

  // Loads, binds, serves until SIGTERM/SIGINT and the drain that follows. Returns the exit
  // code: 0 after a drain, 1 when the configuration is invalid or an address cannot be bound.
  int run();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// `meridian --check`: prints every error (or "PATH: ok"), returns 0 or 1.
int check_config(const std::string& path);

}  // namespace meridian::server
