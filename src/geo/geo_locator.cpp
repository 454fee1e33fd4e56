#include "meridian/geo/geo_locator.hpp"

#include <cerrno>
#include <cmath>
#include <cstring>
#include <netinet/in.h>
#include <sys/socket.h>
#include <system_error>
#include <utility>

#include <maxminddb.h>

namespace meridian::geo {

namespace {

// Lookup paths for MMDB_aget_value, null-terminated; the key names of GeoIP2/GeoLite2
// City and Country records.
constexpr const char* kLatitudePath[] = {"location", "latitude", nullptr};
constexpr const char* kLongitudePath[] = {"location", "longitude", nullptr};
constexpr const char* kCountryPath[] = {"country", "iso_code", nullptr};
constexpr const char* kContinentPath[] = {"continent", "code", nullptr};

bool is_ascii_letter(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

char to_ascii_upper(char c) {
  return (c >= 'a' && c <= 'z') ? static_cast<char>(c - 'a' + 'A') : c;
}

// Copies a two-letter code (ISO 3166-1 country, continent) into `out`, upper case; leaves
// `out` empty when the value is missing or is not two letters.
void read_code(MMDB_entry_s& entry, const char* const* path, char (&out)[3]) noexcept {
  MMDB_entry_data_s data;
  if (MMDB_aget_value(&entry, &data, path) != MMDB_SUCCESS || !data.has_data ||
      data.type != MMDB_DATA_TYPE_UTF8_STRING || data.data_size != 2) {
    return;
  }
  const char a = data.utf8_string[0];
  const char b = data.utf8_string[1];
  if (!is_ascii_letter(a) || !is_ascii_letter(b)) return;
  out[0] = to_ascii_upper(a);
  out[1] = to_ascii_upper(b);
  out[2] = '\0';
}

// A coordinate (MaxMind writes doubles; a float from a hand-made database is accepted too).
bool read_degrees(MMDB_entry_s& entry, const char* const* path, double limit,
                  double& out) noexcept {
  MMDB_entry_data_s data;
  if (MMDB_aget_value(&entry, &data, path) != MMDB_SUCCESS || !data.has_data) return false;
  double v = 0;
  if (data.type == MMDB_DATA_TYPE_DOUBLE) {
    v = data.double_value;
  } else if (data.type == MMDB_DATA_TYPE_FLOAT) {
    v = static_cast<double>(data.float_value);
  } else {
    return false;
  }
  if (!std::isfinite(v) || v < -limit || v > limit) return false;
  out = v;
  return true;
}

}  // namespace

std::shared_ptr<const GeoLocator> GeoLocator::open(const std::string& path, std::string& error) {
  auto db = std::make_unique<MMDB_s>();
  errno = 0;
  const int status = MMDB_open(path.c_str(), MMDB_MODE_MMAP, db.get());
  if (status != MMDB_SUCCESS) {
    // MMDB_open releases what it acquired on failure (and keeps errno for the I/O cases):
    // no MMDB_close here.
    const int os_error = errno;
    error = "geoip: cannot open database \"" + path + "\": " + MMDB_strerror(status);
    if ((status == MMDB_FILE_OPEN_ERROR || status == MMDB_IO_ERROR) && os_error != 0) {
      error += " (" + std::generic_category().message(os_error) + ")";
    }
    return nullptr;
  }
  error.clear();
  return std::shared_ptr<const GeoLocator>(new GeoLocator(path, std::move(db)));
}

GeoLocator::GeoLocator(std::string path, std::unique_ptr<MMDB_s> db)
    : path_(std::move(path)), db_(std::move(db)) {
  const MMDB_metadata_s& m = db_->metadata;
  if (m.database_type != nullptr) metadata_.database_type = m.database_type;
  metadata_.build_epoch = m.build_epoch;
  metadata_.ip_version = m.ip_version;
  metadata_.binary_format_major = m.binary_format_major_version;
  metadata_.binary_format_minor = m.binary_format_minor_version;
  metadata_.node_count = m.node_count;
}

GeoLocator::~GeoLocator() {
  if (db_) MMDB_close(db_.get());
}

ClientLocation GeoLocator::lookup(const boost::asio::ip::address& a) const noexcept {
  ClientLocation out;

  // The sockaddr is built from the address bytes: no text round trip, no resolver.
  sockaddr_in v4{};
  sockaddr_in6 v6{};
  const sockaddr* sa = nullptr;
  if (a.is_v4()) {
    const auto bytes = a.to_v4().to_bytes();
    v4.sin_family = AF_INET;
    std::memcpy(&v4.sin_addr, bytes.data(), bytes.size());
    sa = reinterpret_cast<const sockaddr*>(&v4);
  } else {
    const auto a6 = a.to_v6();
    const auto bytes = a6.to_bytes();
    if (a6.is_v4_mapped()) {
      // ::ffff:a.b.c.d -> a.b.c.d, so IPv4-only databases answer too.
      v4.sin_family = AF_INET;
      std::memcpy(&v4.sin_addr, bytes.data() + 12, 4);
      sa = reinterpret_cast<const sockaddr*>(&v4);
    } else {
      v6.sin6_family = AF_INET6;
      std::memcpy(&v6.sin6_addr, bytes.data(), bytes.size());
      sa = reinterpret_cast<const sockaddr*>(&v6);
    }
  }

  int mmdb_error = MMDB_SUCCESS;
  MMDB_lookup_result_s result = MMDB_lookup_sockaddr(db_.get(), sa, &mmdb_error);
  // An IPv6 address against an IPv4-only database is an error here, not a miss; either way
  // nothing is known about the client.
  if (mmdb_error != MMDB_SUCCESS || !result.found_entry) return out;

  read_code(result.entry, kCountryPath, out.country);
  read_code(result.entry, kContinentPath, out.continent);
  double lat = 0;
  double lon = 0;
  if (read_degrees(result.entry, kLatitudePath, 90.0, lat) &&
      read_degrees(result.entry, kLongitudePath, 180.0, lon)) {
    out.has_coordinates = true;
    out.lat = lat;
    out.lon = lon;
  }
  return out;
}

}  // namespace meridian::geo
