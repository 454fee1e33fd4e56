#include "meridian/tls/ticket_keys.hpp"

#include <cstring>
#include <fstream>
#include <iterator>
#include <stdexcept>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

namespace meridian::tls {

namespace {

// The SSL_CTX ex_data slot that holds a listener's `tls.ticket_keys` (a
// const std::vector<TicketKeys::Key>*), absent for the process's own keys.
int fixed_keys_index() {
  static const int index = SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}

const std::vector<TicketKeys::Key>* fixed_keys_of(SSL* ssl) {
  return static_cast<const std::vector<TicketKeys::Key>*>(
      SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), fixed_keys_index()));
}

// The key named `name` among `keys` (newest or issuing first), and whether it is the first.
template <class Keys>
TicketKeys::Lookup find_by_name(const Keys& keys, const unsigned char* name, TicketKeys::Key& out) {
  for (std::size_t i = 0; i < keys.size(); ++i) {
    if (std::memcmp(keys[i].name.data(), name, keys[i].name.size()) == 0) {
      out = keys[i];
      return i == 0 ? TicketKeys::Lookup::current : TicketKeys::Lookup::previous;
    }
  }
  return TicketKeys::Lookup::unknown;
}

// The key to issue under, or the one named `name`: from the listener's files when it has
// them (the first issues; a ticket under another is renewed), else the process's rotation.
TicketKeys::Lookup pick_key(SSL* ssl, const unsigned char* name, TicketKeys::Key& key) {
  if (const auto* fixed = fixed_keys_of(ssl)) {
    if (name == nullptr) {
      key = fixed->front();
      return TicketKeys::Lookup::current;
    }
    return find_by_name(*fixed, name, key);
  }
  auto& keys = TicketKeys::global();
  if (name == nullptr) {
    key = keys.current();
    return TicketKeys::Lookup::current;
  }
  return keys.find(name, key);
}

// OpenSSL's ticket callback (SSL_CTX_set_tlsext_ticket_key_evp_cb): 1 = use this key,
// 2 = this key, and renew the ticket; 0 = no such key (a full handshake); -1 = failure.
//
// TLS 1.3 tickets are always renewed: a TLS 1.3 client uses a ticket once (RFC 8446 C.4;
// OpenSSL's client keeps only the session it resumed), so a resumption that brings no fresh
// ticket leaves it nothing to resume the next connection with, and every other connection
// was a full handshake (measured with a wrk-like client: 10 of 20 resumed, HAProxy 19 of 20).
// OpenSSL sends TLS 1.3 tickets after a resumption only when the callback asks for renewal.
// TLS 1.2 tickets are renewed only when made under a previous key (RFC 5077 reuse is normal).
int on_ticket(SSL* ssl, unsigned char key_name[16], unsigned char* iv, EVP_CIPHER_CTX* cipher,
              EVP_MAC_CTX* mac, int encrypt) {
  TicketKeys::Key key;
  int result = 1;
  if (encrypt == 1) {
    pick_key(ssl, nullptr, key);
    if (RAND_bytes(iv, EVP_CIPHER_get_iv_length(EVP_aes_256_cbc())) != 1) return -1;
    std::memcpy(key_name, key.name.data(), key.name.size());
  } else {
    switch (pick_key(ssl, key_name, key)) {
      case TicketKeys::Lookup::unknown:
        return 0;
      case TicketKeys::Lookup::previous:
        result = 2;
        break;
      case TicketKeys::Lookup::current:
        if (SSL_version(ssl) == TLS1_3_VERSION) result = 2;
        break;
    }
  }
  char digest[] = "SHA256";
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, key.mac_key.data(), key.mac_key.size()),
      OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
      OSSL_PARAM_construct_end()};
  if (EVP_MAC_CTX_set_params(mac, params) != 1) return -1;
  const int ok =
      encrypt == 1
          ? EVP_EncryptInit_ex(cipher, EVP_aes_256_cbc(), nullptr, key.cipher_key.data(), iv)
          : EVP_DecryptInit_ex(cipher, EVP_aes_256_cbc(), nullptr, key.cipher_key.data(), iv);
  return ok == 1 ? result : -1;
}

}  // namespace

TicketKeys& TicketKeys::global() {
  static TicketKeys keys;
  return keys;
}

void TicketKeys::install(SSL_CTX* ctx, const std::vector<Key>* fixed) {
  const void* data = fixed != nullptr && !fixed->empty() ? fixed : nullptr;
  if (SSL_CTX_set_ex_data(ctx, fixed_keys_index(), const_cast<void*>(data)) != 1) {
    throw std::runtime_error("SSL_CTX_set_ex_data failed for the session ticket keys");
  }
  SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, on_ticket);
}

TicketKeys::Key TicketKeys::read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw TicketKeyFileError("cannot open ticket key file " + path);
  std::string bytes{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  const std::size_t size = bytes.size();
  Key key{};
  constexpr std::size_t kSize = 16 + 32 + 32;
  if (!in.bad() && size == kSize) {
    // nginx's layout of an 80-byte key: name, HMAC key, AES key.
    std::memcpy(key.name.data(), bytes.data(), 16);
    std::memcpy(key.mac_key.data(), bytes.data() + 16, 32);
    std::memcpy(key.cipher_key.data(), bytes.data() + 48, 32);
  }
  OPENSSL_cleanse(bytes.data(), bytes.size());  // the only other copy of the secret
  if (in.bad() || size != kSize) {
    throw TicketKeyFileError("ticket key file " + path + " holds " + std::to_string(size) +
                             " bytes, not 80 (openssl rand 80 > " + path + ")");
  }
  return key;
}

TicketKeys::Key TicketKeys::make_key(Clock::time_point now) {
  Key key;
  if (RAND_bytes(key.name.data(), static_cast<int>(key.name.size())) != 1 ||
      RAND_bytes(key.cipher_key.data(), static_cast<int>(key.cipher_key.size())) != 1 ||
      RAND_bytes(key.mac_key.data(), static_cast<int>(key.mac_key.size())) != 1) {
    throw std::runtime_error("RAND_bytes failed for a session ticket key");
  }
  key.created = now;
  return key;
}

void TicketKeys::rotate_if_due(Clock::time_point now) {
  if (!keys_.empty() && now - keys_.front().created < kRotation) return;
  keys_.push_front(make_key(now));
  // Keys older than kPrevious rotations go, also after a long quiet time with no rotation.
  while (keys_.size() > kPrevious + 1 ||
         (keys_.size() > 1 && now - keys_.back().created >= kRotation * (kPrevious + 1))) {
    keys_.pop_back();
  }
}

TicketKeys::Key TicketKeys::current() {
  std::lock_guard lock(mutex_);
  rotate_if_due(now_());
  return keys_.front();
}

TicketKeys::Lookup TicketKeys::find(const unsigned char* name, Key& out) {
  std::lock_guard lock(mutex_);
  rotate_if_due(now_());
  return find_by_name(keys_, name, out);
}

std::size_t TicketKeys::size() {
  std::lock_guard lock(mutex_);
  return keys_.size();
}

}  // namespace meridian::tls
