// Watches the configuration file for edits (saving the file reloads it, like SIGHUP; see
// docs/operations.md, reloading the configuration). It watches the file's directory with
// inotify rather than the file itself, so that editors and deploy tools that write a new file
// and rename it over the old one (vim, sed -i, Ansible, Kubernetes ConfigMap symlink swaps) are
// seen as well as in-place writes. Events are debounced: the callback runs once the directory
// has been quiet for `settle`, and only when the file's content differs from what was last
// loaded (a touch or an unrelated file in the directory changes nothing).
//
// Thread: the main thread's io_context. Linux only (inotify); where inotify cannot be set up
// the watcher logs why and stays inert, and SIGHUP and POST /reload still work.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include <boost/asio/io_context.hpp>

namespace meridian::server {

class ConfigWatcher {
 public:
  ConfigWatcher(boost::asio::io_context& ioc, std::string path, std::function<void()> on_change,
                std::chrono::milliseconds settle = std::chrono::milliseconds(200));
  ~ConfigWatcher();
  ConfigWatcher(const ConfigWatcher&) = delete;
  ConfigWatcher& operator=(const ConfigWatcher&) = delete;

  // The content a load just read, so that an event for the same content does not reload.
  void loaded(const std::string& content);
  void stop();

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

// The whole file, or "" when it cannot be read (its absence is a load error reported there).
std::string read_file_or_empty(const std::string& path);

}  // namespace meridian::server
