// argv (--config, --check, --version) -> Server::run(). The only code the tests cannot reach
// directly.
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>
#include <string_view>
#include <sys/resource.h>

#include "meridian/core/log.hpp"
#include "meridian/server/server.hpp"

namespace {

constexpr std::string_view kUsage =
    "usage: meridian [--config PATH]        run (default PATH: conf/meridian.yaml)\n"
    "       meridian --check --config PATH  validate the file, print every error\n"
    "       meridian --version              print the version\n"
    "environment: MERIDIAN_LOG_LEVEL=debug|info|warn|error (default info)\n";

void set_log_level_from_env() {
  const char* level = std::getenv("MERIDIAN_LOG_LEVEL");
  if (level == nullptr) return;
  const std::string_view l = level;
  if (l == "debug") meridian::log::set_level(meridian::log::Level::debug);
  if (l == "warn") meridian::log::set_level(meridian::log::Level::warn);
  if (l == "error") meridian::log::set_level(meridian::log::Level::error);
}

// Every connection is a descriptor (two when proxied), and the usual soft limit of 1024
// would cap a node long before max_connections or the machine does. Raise it to the hard
// limit, as HAProxy and Go programs do; the hard limit stays the operator's (systemd
// LimitNOFILE=, ulimit -Hn).
void raise_open_files_limit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur >= limit.rlim_max) return;
  const rlim_t was = limit.rlim_cur;
  limit.rlim_cur = limit.rlim_max;
  if (setrlimit(RLIMIT_NOFILE, &limit) == 0) {
    meridian::log::debug("open files limit raised from ", was, " to ", limit.rlim_cur);
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::string config_path = "conf/meridian.yaml";
  bool check = false;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--version") {
      std::cout << "meridian " << MERIDIAN_VERSION << '\n';
      return 0;
    } else if (arg == "--help" || arg == "-h") {
      std::cout << kUsage;
      return 0;
    } else if (arg == "--check") {
      check = true;
    } else if (arg == "--config" && i + 1 < argc) {
      config_path = argv[++i];
    } else if (arg.starts_with("--config=")) {
      config_path = std::string(arg.substr(std::strlen("--config=")));
    } else {
      std::cerr << "meridian: unknown argument \"" << arg << "\"\n" << kUsage;
      return 2;
    }
  }
  set_log_level_from_env();
  if (check) return meridian::server::check_config(config_path);
  raise_open_files_limit();
  meridian::server::Server server({config_path});
  return server.run();
}
