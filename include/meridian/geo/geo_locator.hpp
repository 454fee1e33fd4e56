// GeoIP (`geoip.database`): client address -> ClientLocation, read from a MaxMind DB
// (.mmdb) file with libmaxminddb. City databases (GeoLite2-City, GeoIP2-City) give
// coordinates, country and continent; Country databases give country and continent only
// (has_coordinates stays false).
//
// Thread-safety, the "shared read-only handle" decision: one GeoLocator is opened per
// database path on the main thread (config load / reload) and shared by every worker as
// shared_ptr<const GeoLocator>, with no lock. This is safe because after MMDB_open returns,
// libmaxminddb's lookup functions (MMDB_lookup_sockaddr, MMDB_aget_value) only read the
// MMDB_s (taken as const MMDB_s*) and the read-only mapping of the file: MMDB_open already
// precomputed everything lookups need (including the IPv4 start node of an IPv6 tree), and
// the lookups keep no state of their own. MMDB_open and MMDB_close run only in open() and
// in the destructor, i.e. before the object is shared and after the last holder let go.
// A reload that names a new file builds a new GeoLocator; requests that pinned the old
// snapshot keep the old one alive until they finish.
//
// Why MMDB_MODE_MMAP (libmaxminddb's only mode): the file is mapped read-only, not copied,
// so opening is O(1) in the file size, pages are faulted in on demand and shared through the
// page cache by every worker and every process on the host. The flip side: an .mmdb must be
// replaced by rename(2) (as geoipupdate does), never rewritten in place, or running lookups
// would read a file that changes (or shrinks: SIGBUS) under them.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include <boost/asio/ip/address.hpp>

#include "meridian/geo/client_location.hpp"

// libmaxminddb's database handle; the header stays out of ours.
struct MMDB_s;

namespace meridian::geo {

// What the database says about itself (its metadata section), for logs and the admin API.
struct DatabaseMetadata {
  std::string database_type;      // e.g. "GeoLite2-City", "GeoIP2-Country"
  std::uint64_t build_epoch = 0;  // seconds since the Unix epoch
  unsigned ip_version = 0;        // 4: IPv4 only; 6: IPv6 and IPv4
  unsigned binary_format_major = 0;
  unsigned binary_format_minor = 0;
  std::uint32_t node_count = 0;
};

class GeoLocator {
 public:
  // Opens (maps) the database once. On failure returns null and sets `error` to a message
  // naming the path and libmaxminddb's reason (and the OS reason when the file could not be
  // opened or read). Start-up / reload path only: may throw std::bad_alloc.
  static std::shared_ptr<const GeoLocator> open(const std::string& path, std::string& error);

  ~GeoLocator();  // MMDB_close: unmaps the file
  GeoLocator(const GeoLocator&) = delete;
  GeoLocator& operator=(const GeoLocator&) = delete;

  // What the database knows of `a`; a default ClientLocation (nothing known) when the
  // address is not in the database (private, loopback, unallocated), when the database has
  // no IPv6 data for an IPv6 address, or on a corrupt record. IPv4-mapped IPv6 addresses
  // (::ffff:a.b.c.d, as a dual-stack listener reports IPv4 peers) are looked up as IPv4.
  // Fields that are missing or malformed in the record stay unknown on their own: a country
  // code is kept only if it is two ASCII letters (stored upper case), coordinates only if
  // both are present and in range.
  //
  // Any thread, concurrently, on a shared instance; noexcept and allocation-free (the
  // sockaddr is built in place; values are read with MMDB_aget_value and static paths,
  // since MMDB_get_value calloc()s its path array on every call).
  // Complexity: one walk of the search tree, O(address bits) (at most 32 steps for IPv4,
  // 128 for IPv6), then 4 key lookups in the record, each linear in the keys of the maps
  // it passes through (a dozen or so in a City record). Nothing is cached.
  ClientLocation lookup(const boost::asio::ip::address& a) const noexcept;

  const std::string& path() const { return path_; }
  const DatabaseMetadata& metadata() const { return metadata_; }
  const std::string& database_type() const { return metadata_.database_type; }

 private:
  GeoLocator(std::string path, std::unique_ptr<MMDB_s> db);

  std::string path_;
  std::unique_ptr<MMDB_s> db_;  // opened by MMDB_open; immutable until the destructor
  DatabaseMetadata metadata_;
};

}  // namespace meridian::geo
