#include "meridian/tls/server_context.hpp"

#include <algorithm>
#include <cctype>
#include <stdexcept>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "meridian/tls/ticket_keys.hpp"

#include "tls/openssl_error.hpp"

namespace meridian::tls {

namespace {

namespace ssl = boost::asio::ssl;
using detail::fail;

// Mozilla's "intermediate" TLS 1.2 suites (forward secrecy, AEAD only); TLS 1.3 keeps
// OpenSSL's defaults, which are all modern.
constexpr const char* kTls12Ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";
constexpr unsigned char kSessionIdContext[] = "meridian";
constexpr long kSessionCacheSize = 20000;

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

// The DNS names of the certificate in use by `ctx`: its subjectAltName entries, or its
// Common Name when it has none.
std::vector<std::string> certificate_names(SSL_CTX* ctx) {
  std::vector<std::string> names;
  X509* cert = SSL_CTX_get0_certificate(ctx);
  if (cert == nullptr) return names;
  auto* sans =
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  if (sans != nullptr) {
    for (int i = 0; i < sk_GENERAL_NAME_num(sans); ++i) {
      const GENERAL_NAME* n = sk_GENERAL_NAME_value(sans, i);
      if (n->type != GEN_DNS) continue;
      const auto* data = ASN1_STRING_get0_data(n->d.dNSName);
      const int length = ASN1_STRING_length(n->d.dNSName);
      names.push_back(
          lower({reinterpret_cast<const char*>(data), static_cast<std::size_t>(length)}));
    }
    GENERAL_NAMES_free(sans);
  }
  if (names.empty()) {
    char cn[256];
    const int n =
        X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, sizeof cn);
    if (n > 0) names.push_back(lower({cn, static_cast<std::size_t>(n)}));
  }
  return names;
}

bool matches(std::string_view pattern, std::string_view name) {
  if (pattern.starts_with("*.")) {
    // One label: "*.example.com" covers "a.example.com", not "example.com" or "a.b.example.com".
    const auto dot = name.find('.');
    return dot != std::string_view::npos && dot > 0 && name.substr(dot) == pattern.substr(1);
  }
  return pattern == name;
}

int on_server_name(SSL* ssl, int* /*alert*/, void* arg) {
  auto* self = static_cast<ServerContext*>(arg);
  const char* name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
  if (name == nullptr) return SSL_TLSEXT_ERR_OK;  // no SNI: the default certificate
  const std::size_t index = self->select(name);
  if (index != 0) SSL_set_SSL_CTX(ssl, self->context(index).native_handle());
  return SSL_TLSEXT_ERR_OK;  // an unknown name gets the default, as nginx does
}

int on_alpn(SSL* /*ssl*/, const unsigned char** out, unsigned char* out_length,
            const unsigned char* in, unsigned int in_length, void* arg) {
  const auto& ours = static_cast<ServerContext*>(arg)->alpn_wire();
  if (ours.empty()) return SSL_TLSEXT_ERR_NOACK;
  unsigned char* selected = nullptr;
  // Server preference: the first of our protocols the client offers.
  if (SSL_select_next_proto(
          &selected, out_length, reinterpret_cast<const unsigned char*>(ours.data()),
          static_cast<unsigned int>(ours.size()), in, in_length) != OPENSSL_NPN_NEGOTIATED) {
    return SSL_TLSEXT_ERR_NOACK;  // no protocol in common: go on without ALPN
  }
  *out = selected;
  return SSL_TLSEXT_ERR_OK;
}

// Whether SSL_free_buffers leaves a read buffer alone while it holds a record's header
// without its body (CVE-2024-4741, fixed in 3.0.14, 3.1.6, 3.2.2 and 3.3.1): the library
// this process runs with, not the headers it was built against.
bool free_buffers_is_safe() {
  const unsigned long v = OpenSSL_version_num();  // 0xMNN00PP0
  const unsigned long major = v >> 28;
  const unsigned long minor = (v >> 20) & 0xff;
  const unsigned long patch = (v >> 4) & 0xff;
  if (major != 3 || minor >= 4) return major >= 3;
  constexpr unsigned long kFixedPatch[] = {14, 6, 2, 1};  // for 3.0 .. 3.3
  return patch >= kFixedPatch[minor];
}

}  // namespace

std::shared_ptr<ServerContext> ServerContext::build(const config::ListenerTls& config) {
  std::shared_ptr<ServerContext> self(new ServerContext());
  for (const auto& file : config.ticket_keys) {
    self->ticket_keys_.push_back(TicketKeys::read_file(file));
  }
  for (const auto& protocol : config.alpn) {
    self->alpn_wire_ += static_cast<char>(protocol.size());
    self->alpn_wire_ += protocol;
  }
  for (const auto& certificate : config.certificates) {
    auto context = std::make_unique<ssl::context>(ssl::context::tls_server);
    SSL_CTX* ctx = context->native_handle();
    SSL_CTX_set_min_proto_version(ctx,
                                  config.min_version == "1.3" ? TLS1_3_VERSION : TLS1_2_VERSION);
    SSL_CTX_set_options(
        ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_COMPRESSION);
    // OpenSSL's record buffers (about 17 KiB each way) stay while a connection is busy and
    // go when its session finds it idle (net::TlsStream::release_idle_buffers): with
    // SSL_MODE_RELEASE_BUFFERS they would be allocated and freed around every record, about
    // 4% of the instructions of keep-alive HTTP/1.1 over TLS (bench/README.md). A library whose
    // SSL_free_buffers is unsafe keeps the mode (and the cost).
    if (!free_buffers_is_safe()) SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    if (SSL_CTX_set_cipher_list(ctx, kTls12Ciphers) != 1) fail("TLS 1.2 cipher list");
    if (SSL_CTX_use_certificate_chain_file(ctx, certificate.cert.c_str()) != 1) {
      fail("certificate " + certificate.cert);
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, certificate.key.c_str(), SSL_FILETYPE_PEM) != 1) {
      if (ERR_GET_REASON(ERR_peek_last_error()) == X509_R_KEY_VALUES_MISMATCH) {
        fail("key " + certificate.key + " does not match certificate " + certificate.cert);
      }
      fail("key " + certificate.key);
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
      fail("key " + certificate.key + " does not match certificate " + certificate.cert);
    }
    // Resumption: a server-side session cache (TLS 1.2 session ids; per context, so a
    // reload starts an empty one) and tickets under the process's rotating keys (which a
    // reload keeps), or under the listener's tls.ticket_keys (shared by a fleet). Sessions live
    // kSessionLifetime either way; the cache holds at most kSessionCacheSize of them (HAProxy's
    // default; OpenSSL evicts the oldest).
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
    SSL_CTX_set_session_id_context(ctx, kSessionIdContext, sizeof kSessionIdContext - 1);
    SSL_CTX_set_timeout(ctx, TicketKeys::kSessionLifetime);
    SSL_CTX_sess_set_cache_size(ctx, kSessionCacheSize);
    TicketKeys::global().install(ctx, &self->ticket_keys_);
    SSL_CTX_set_alpn_select_cb(ctx, on_alpn, self.get());
    Certificate c;
    c.names = certificate_names(ctx);
    c.context = std::move(context);
    self->certificates_.push_back(std::move(c));
  }
  if (self->certificates_.empty()) throw std::runtime_error("no certificate");
    // OpenSSL's setter macros cast the C way.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wold-style-cast"
  SSL_CTX_set_tlsext_servername_callback(self->initial().native_handle(), on_server_name);
  SSL_CTX_set_tlsext_servername_arg(self->initial().native_handle(), self.get());
#pragma GCC diagnostic pop
  return self;
}

std::size_t ServerContext::select(std::string_view server_name) const {
  const std::string name = lower(server_name);
  // Exact names before wildcards, across all certificates, as nginx picks server names.
  for (std::size_t i = 0; i < certificates_.size(); ++i) {
    for (const auto& n : certificates_[i].names) {
      if (!n.starts_with("*.") && n == name) return i;
    }
  }
  for (std::size_t i = 0; i < certificates_.size(); ++i) {
    for (const auto& n : certificates_[i].names) {
      if (n.starts_with("*.") && matches(n, name)) return i;
    }
  }
  return 0;
}

}  // namespace meridian::tls
