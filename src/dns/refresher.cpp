#include "meridian/dns/refresher.hpp"

#include <algorithm>

#include "meridian/core/log.hpp"

namespace meridian::dns {

struct Refresher::Name {
  Name(boost::asio::io_context& ioc, std::string h) : host(std::move(h)), timer(ioc) {}
  std::string host;
  std::chrono::milliseconds every{0};
  boost::asio::steady_timer timer;
  std::uint64_t id = 0;  // the lookup in progress (answers of older ones are ignored)
  bool looking = false;
  std::string last_result = "pending";
  std::string last_error;
  std::chrono::seconds ttl{0};
};

Refresher::Refresher(boost::asio::io_context& ioc, std::function<void()> on_change)
    : ioc_(ioc), on_change_(std::move(on_change)) {}

Refresher::~Refresher() {
  stop();
}

void Refresher::stop() {
  names_.clear();  // cancels their timers
  resolver_.reset();
}

void Refresher::configure(const config::Config& config) {
  // Every name with `resolve`, and its shortest period among the endpoints that use it.
  std::map<std::string, std::chrono::milliseconds> wanted;
  for (const auto& b : config.backends) {
    for (const auto& r : b.regions) {
      for (const auto& e : r.endpoints) {
        if (!e.resolve_every) continue;
        auto [it, added] = wanted.emplace(e.address.host, *e.resolve_every);
        if (!added) it->second = std::min(it->second, *e.resolve_every);
      }
    }
  }
  const bool new_resolver = !resolver_ || servers_ != config.dns.servers;
  if (new_resolver) {
    // New servers: lookups in progress are abandoned and made again with them.
    resolver_.reset();
    if (!wanted.empty()) resolver_ = std::make_unique<Resolver>(ioc_, config.dns.servers);
    servers_ = config.dns.servers;
    for (auto& entry : names_)
      entry.second->looking = false;
  }
  for (auto it = names_.begin(); it != names_.end();) {
    if (wanted.count(it->first) == 0) {
      addresses_.erase(it->first);
      it = names_.erase(it);
    } else {
      ++it;
    }
  }
  for (const auto& [host, every] : wanted) {
    auto& name = names_[host];
    const bool fresh = !name;
    if (fresh) name = std::make_unique<Name>(ioc_, host);
    name->every = every;  // a changed period applies from the next lookup
    if (fresh || new_resolver) lookup(*name);
  }
}

void Refresher::lookup(Name& name) {
  if (!resolver_) return;
  name.looking = true;
  const std::uint64_t id = ++next_id_;
  name.id = id;
  resolver_->resolve(name.host, [this, host = name.host, id](Answer answer) {
    on_answer(host, id, std::move(answer));
  });
}

void Refresher::on_answer(const std::string& host, std::uint64_t id, Answer answer) {
  const auto it = names_.find(host);
  if (it == names_.end() || it->second->id != id) return;  // dropped or superseded
  Name& name = *it->second;
  name.looking = false;
  auto next = name.every;
  if (!answer.ok) {
    ++failed_;
    name.last_result = "failure";
    name.last_error = answer.error;
    const auto kept = addresses_.find(host);
    log::warn("dns: ", host, ": lookup failed (", answer.error, "); keeping ",
              kept == addresses_.end() ? std::string("the address resolved at load")
                                       : std::to_string(kept->second.size()) + " address(es)");
    schedule(name, next);
    return;
  }
  ++succeeded_;
  name.last_result = "success";
  name.ttl = answer.ttl;
  // A TTL of 0 is no TTL (/etc/hosts answers carry none): the period stands.
  if (answer.ttl.count() > 0) {
    next = std::min<std::chrono::milliseconds>(
        next, std::max<std::chrono::milliseconds>(answer.ttl, kMinInterval));
  }
  auto& current = addresses_[host];
  const bool changed = current != answer.addresses;
  if (changed) {
    std::string list;
    for (const auto& a : answer.addresses)
      list += (list.empty() ? "" : " ") + a.to_string();
    log::info("dns: ", host, " -> ", list, current.empty() ? "" : " (changed)");
    current = std::move(answer.addresses);
  }
  schedule(name, next);
  if (changed && on_change_) on_change_();
}

void Refresher::schedule(Name& name, std::chrono::milliseconds after) {
  name.timer.expires_after(after);
  name.timer.async_wait([this, host = name.host](boost::system::error_code ec) {
    if (ec) return;
    const auto it = names_.find(host);
    if (it != names_.end() && !it->second->looking) lookup(*it->second);
  });
}

std::vector<Refresher::NameStatus> Refresher::status() const {
  std::vector<NameStatus> out;
  for (const auto& [host, name] : names_) {
    NameStatus s;
    s.host = host;
    s.every = name->every;
    if (const auto it = addresses_.find(host); it != addresses_.end()) s.addresses = it->second;
    s.last_result = name->last_result;
    s.last_error = name->last_error;
    s.ttl = name->ttl;
    out.push_back(std::move(s));
  }
  return out;
}

}  // namespace meridian::dns
