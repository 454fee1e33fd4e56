#include "meridian/http/cookie.hpp"

namespace meridian::http {

std::optional<std::string_view> find_cookie(const RequestHead& head, std::string_view name) {
  for (const auto& f : head.fields) {
    if (f.name.size() != 6 || !iequals(f.name, "cookie")) continue;
    std::string_view list = f.value;
    while (!list.empty()) {
      const auto semi = list.find(';');
      const auto pair = trim_ows(list.substr(0, semi));
      list = semi == std::string_view::npos ? std::string_view{} : list.substr(semi + 1);
      const auto eq = pair.find('=');
      if (eq == std::string_view::npos || trim_ows(pair.substr(0, eq)) != name) continue;
      auto value = trim_ows(pair.substr(eq + 1));
      if (value.size() >= 2 && value.front() == '"' && value.back() == '"') {
        value = value.substr(1, value.size() - 2);
      }
      return value;
    }
  }
  return std::nullopt;
}

}  // namespace meridian::http
