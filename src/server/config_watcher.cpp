#include "meridian/server/config_watcher.hpp"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <sys/inotify.h>
#include <unistd.h>

#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>

#include "meridian/core/log.hpp"

namespace meridian::server {

namespace asio = boost::asio;

std::string read_file_or_empty(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return {};
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

struct ConfigWatcher::Impl : std::enable_shared_from_this<Impl> {
  Impl(asio::io_context& io, std::string p, std::function<void()> cb, std::chrono::milliseconds s)
      : path(std::move(p)), on_change(std::move(cb)), settle(s), events(io), debounce(io) {
    const auto slash = path.rfind('/');
    directory = slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
    name = slash == std::string::npos ? path : path.substr(slash + 1);
  }

  std::string path;
  std::string directory;
  std::string name;
  std::function<void()> on_change;
  std::chrono::milliseconds settle;
  asio::posix::stream_descriptor events;
  asio::steady_timer debounce;
  std::string last_content;
  bool stopped = false;
  char buffer[8192] __attribute__((aligned(alignof(inotify_event))));

  void start() {
    const int fd = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (fd < 0) {
      log::warn("config watch: inotify unavailable (", std::strerror(errno),
                "); reload with SIGHUP or POST /reload");
      return;
    }
    // Writes in place (reported when the writer closes), renames into the directory, new
    // files and symlink swaps.
    constexpr std::uint32_t kMask = IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_DELETE;
    if (::inotify_add_watch(fd, directory.c_str(), kMask) < 0) {
      log::warn("config watch: cannot watch ", directory, " (", std::strerror(errno),
                "); reload with SIGHUP or POST /reload");
      ::close(fd);
      return;
    }
    events.assign(fd);
    read();
  }

  void read() {
    events.async_read_some(asio::buffer(buffer), [self = shared_from_this()](
                                                     boost::system::error_code ec, std::size_t n) {
      if (ec || self->stopped) return;
      if (self->concerns_us(n)) self->arm();
      self->read();
    });
  }

  // Whether the events in buffer[0, n) name the config file, or a Kubernetes ConfigMap's
  // "..data" symlink swap. Other files of the directory (an access log written there,
  // editors' backup files) must not keep re-arming the quiet period.
  bool concerns_us(std::size_t n) const {
    std::size_t pos = 0;
    while (pos + sizeof(inotify_event) <= n) {
      const auto* e = reinterpret_cast<const inotify_event*>(buffer + pos);
      const std::string_view file(e->len > 0 ? e->name : "");
      const std::string_view base = file.substr(0, file.find('\0'));
      if (base == name || base.starts_with("..") || (e->mask & IN_Q_OVERFLOW) != 0) return true;
      pos += sizeof(inotify_event) + e->len;
    }
    return false;
  }

  void arm() {
    debounce.expires_after(settle);
    debounce.async_wait([self = shared_from_this()](boost::system::error_code ec) {
      if (ec || self->stopped) return;
      const std::string content = read_file_or_empty(self->path);
      if (content.empty() || content == self->last_content) return;
      log::info("config watch: ", self->path, " changed; reloading");
      self->on_change();
    });
  }
};

ConfigWatcher::ConfigWatcher(asio::io_context& ioc, std::string path,
                             std::function<void()> on_change, std::chrono::milliseconds settle)
    : impl_(std::make_shared<Impl>(ioc, std::move(path), std::move(on_change), settle)) {
  impl_->start();
}

ConfigWatcher::~ConfigWatcher() {
  stop();
}

void ConfigWatcher::loaded(const std::string& content) {
  impl_->last_content = content;
}

void ConfigWatcher::stop() {
  impl_->stopped = true;
  boost::system::error_code ignored;
  impl_->debounce.cancel();
  impl_->events.close(ignored);
}

}  // namespace meridian::server
