// The keys that encrypt TLS session tickets (RFC 5077; TLS 1.3's tickets alike): one set
// for the whole process, so that every worker thread and every listener context -- including
// the contexts a reload builds, which would otherwise start with fresh random keys and turn
// every client's ticket into a full handshake -- issue and accept the same tickets.
//
// Rotation: tickets are issued under the newest key, which is replaced every kRotation (one
// hour); the two keys before it are still accepted, and a ticket under one of them is renewed
// (a new ticket under the newest key goes out with the resumed handshake). A ticket therefore
// resumes for as long as its lifetime (kSessionLifetime, also one hour) whatever the moment it
// was issued, and no key lives longer than three hours, which bounds what a stolen key can
// decrypt. Rotation happens when a ticket is issued or checked (no timer): an idle process
// keeps its keys. Keys are random (RAND_bytes), never written anywhere: a restart starts
// new ones, as nginx's and HAProxy's defaults do.
//
// A listener with `tls.ticket_keys` uses the keys of those files instead (read_file), the
// same on every node that has them, so that a client anycast moves to another node of the
// fleet still resumes: the first issues tickets, all are accepted, a ticket under any but the
// first is renewed. The operator rotates them by reloading (docs/operations.md: a new key
// second, then first, then the old one out).
//
// Thread: any (a mutex around the ring; it is taken once per handshake).
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <deque>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include <openssl/ssl.h>

namespace meridian::tls {

// A `tls.ticket_keys` file that cannot be read or does not hold a key.
struct TicketKeyFileError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class TicketKeys {
 public:
  static constexpr std::chrono::seconds kRotation{3600};
  static constexpr std::size_t kPrevious = 2;     // older keys still accepted
  static constexpr long kSessionLifetime = 3600;  // seconds: tickets and the session cache

  using Clock = std::chrono::steady_clock;

  struct Key {
    std::array<unsigned char, 16> name;
    std::array<unsigned char, 32> cipher_key;  // AES-256-CBC
    std::array<unsigned char, 32> mac_key;     // HMAC-SHA256
    Clock::time_point created;
  };

  // The process's keys.
  static TicketKeys& global();

  // Makes `ctx` issue and accept tickets under these keys, or, when `fixed` is not empty,
  // under those instead (they must outlive every handshake on `ctx`).
  void install(SSL_CTX* ctx, const std::vector<Key>* fixed = nullptr);

  // For tests: the clock the rotation reads, and how many keys there are now.
  void set_clock(Clock::time_point (*now)()) { now_ = now; }
  std::size_t size();

  enum class Lookup { current, previous, unknown };

  // A key file of `tls.ticket_keys`: exactly 80 bytes, the key's name (16), its HMAC-SHA256
  // key (32) and its AES-256 key (32), nginx's layout, so `openssl rand 80 > file` makes one.
  // Throws TicketKeyFileError naming the file.
  static Key read_file(const std::string& path);

  // The key to issue a ticket under (rotating first when it is due).
  Key current();
  // The key named `name`, and whether it is the current one.
  Lookup find(const unsigned char* name, Key& out);

 private:
  void rotate_if_due(Clock::time_point now);  // with mutex_ held
  Key make_key(Clock::time_point now);

  std::mutex mutex_;
  std::deque<Key> keys_;  // newest first
  Clock::time_point (*now_)() = &Clock::now;
};

}  // namespace meridian::tls
