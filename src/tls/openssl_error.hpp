// The one way the tls module reports an OpenSSL failure: `what` (naming the file or setting)
// and OpenSSL's reason for it, as std::runtime_error. Internal to src/tls.
#pragma once

#include <stdexcept>
#include <string>

#include <openssl/err.h>

namespace meridian::tls::detail {

[[noreturn]] inline void fail(const std::string& what) {
  std::string reason;
  const unsigned long e = ERR_get_error();
  if (e != 0) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    reason = std::string(": ") + buf;
  }
  ERR_clear_error();
  throw std::runtime_error(what + reason);
}

}  // namespace meridian::tls::detail
