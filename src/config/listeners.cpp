// listeners[]: addresses, PROXY protocol, TLS and routes.
#include <algorithm>
#include <cctype>
#include <fstream>

#include "meridian/core/units.hpp"

#include "config/address.hpp"
#include "config/walk.hpp"

namespace meridian::config::detail {
namespace {

constexpr Choice<ProxyProtocol> kProxyProtocols[] = {{"off", ProxyProtocol::off},
                                                     {"v1", ProxyProtocol::v1},
                                                     {"v2", ProxyProtocol::v2},
                                                     {"any", ProxyProtocol::any}};
constexpr Choice<std::string_view> kTlsVersions[] = {{"1.2", "1.2"}, {"1.3", "1.3"}};
constexpr Choice<std::string_view> kAlpn[] = {{"h2", "h2"}, {"http/1.1", "http/1.1"}};
// A session ticket key file: name (16), HMAC-SHA256 key (32), AES-256 key (32), as nginx's
// ssl_session_ticket_key reads it (tls::TicketKeys::read_file).
constexpr std::uintmax_t kTicketKeyFileSize = 80;
std::optional<ListenerTls> read_tls(Diagnostics& diag, const Field& field) {
  MapReader map(diag, field, Section::listener_tls);
  if (!map.valid()) return std::nullopt;
  ListenerTls tls;
  if (auto f = map.require("certificates")) {
    auto items = read_sequence(diag, *f);
    if (items.empty() && (f->node.IsNull() || f->node.IsSequence())) {
      diag.error(*f, "at least one certificate is required");
    }
    for (const auto& item : items) {
      MapReader pair(diag, item, Section::certificate);
      TlsCertificate certificate;
      if (auto cert = pair.require("cert")) {
        auto path = read_non_empty_string(diag, *cert);
        if (path && check_readable_file(diag, *cert, *path, "certificate file")) {
          certificate.cert = *path;
        }
      }
      if (auto key = pair.require("key")) {
        auto path = read_non_empty_string(diag, *key);
        if (path && check_readable_file(diag, *key, *path, "key file")) certificate.key = *path;
      }
      tls.certificates.push_back(std::move(certificate));
    }
  }
  if (auto f = map.get("min_version")) {
    if (auto v = read_choice(diag, *f, kTlsVersions)) tls.min_version = std::string(*v);
  }
  if (auto f = map.get("alpn")) {
    tls.alpn.clear();
    auto items = read_one_or_many(diag, *f);
    if (items.empty() && (f->node.IsNull() || f->node.IsSequence())) {
      diag.error(*f, "at least one protocol is required (h2, http/1.1)");
    }
    for (const auto& item : items) {
      auto protocol = read_choice(diag, item, kAlpn);
      if (!protocol) continue;
      if (std::find(tls.alpn.begin(), tls.alpn.end(), *protocol) != tls.alpn.end()) {
        diag.error(item, "duplicate protocol " + quoted(*protocol));
        continue;
      }
      tls.alpn.emplace_back(*protocol);
    }
  }
  if (auto f = map.get("ticket_keys")) {
    auto items = read_one_or_many(diag, *f);
    if (items.empty() && (f->node.IsNull() || f->node.IsSequence())) {
      diag.error(*f,
                 "at least one key file is required (leave ticket_keys out for keys of the "
                 "process's own)");
    }
    for (const auto& item : items) {
      auto path = read_non_empty_string(diag, item);
      if (!path || !check_readable_file(diag, item, *path, "ticket key file")) continue;
      const auto size = std::ifstream(*path, std::ios::binary | std::ios::ate).tellg();
      if (size >= 0 && static_cast<std::uintmax_t>(size) != kTicketKeyFileSize) {
        const auto want = std::to_string(kTicketKeyFileSize);
        diag.error(item, "ticket key file " + quoted(*path) + " holds " +
                             std::to_string(static_cast<long long>(size)) + " bytes; a key is " +
                             want + " random bytes (openssl rand " + want + " > " + *path + ")");
        continue;
      }
      tls.ticket_keys.push_back(std::move(*path));
    }
  }
  return tls;
}

Listener read_listener(Walk& walk, const Field& field, std::size_t index, UniqueNames& names) {
  auto& diag = walk.diag;
  Listener listener;
  MapReader map(diag, field, Section::listener);
  if (!map.valid()) return listener;
  if (auto f = map.require("name")) listener.name = names.read(diag, *f);
  if (auto f = map.require("listen")) {
    if (auto address = read_address(diag, *f, AllowZero::yes)) {
      listener.listen = *address;
      walk.bound_addresses.push_back({*f, "listener " + quoted(listener.name), address->resolved});
    }
  }
  if (auto f = map.get("proxy_protocol")) {
    if (is_plain_false(f->node)) {
      listener.proxy_protocol = ProxyProtocol::off;
    } else if (auto v = read_choice(diag, *f, kProxyProtocols)) {
      listener.proxy_protocol = *v;
    }
  }
  if (auto f = map.get("tls")) listener.tls = read_tls(diag, *f);
  if (auto f = map.require("routes")) {
    auto items = read_sequence(diag, *f);
    if (items.empty() && (f->node.IsNull() || f->node.IsSequence())) {
      diag.error(*f, "at least one route is required");
    }
    UniqueNames route_names("route");
    for (std::size_t i = 0; i < items.size(); ++i) {
      listener.routes.push_back(read_route(walk, items[i], index, i, route_names));
    }
  }
  return listener;
}

}  // namespace

void read_listeners(Walk& walk, const Field& field) {
  auto items = read_sequence(walk.diag, field);
  if (items.empty() && (field.node.IsNull() || field.node.IsSequence())) {
    walk.diag.error(field, "at least one listener is required");
  }
  UniqueNames names("listener");
  for (std::size_t i = 0; i < items.size(); ++i) {
    walk.config.listeners.push_back(read_listener(walk, items[i], i, names));
  }
}

}  // namespace meridian::config::detail
