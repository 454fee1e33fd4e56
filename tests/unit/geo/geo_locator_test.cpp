#include "meridian/geo/geo_locator.hpp"

#include <atomic>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace meridian::geo {
namespace {

namespace ip = boost::asio::ip;

// The test databases of the repository (tests/data/geoip/README.md).
const std::string kGeoDir = MERIDIAN_SOURCE_DIR "/tests/data/geoip/";
const std::string kLoopbackCity = kGeoDir + "loopback-city.mmdb";
const std::string kGeoIp2City = kGeoDir + "maxmind/GeoIP2-City-Test.mmdb";
const std::string kGeoLite2Country = kGeoDir + "maxmind/GeoLite2-Country-Test.mmdb";

constexpr double kTolerance = 1e-4;

std::shared_ptr<const GeoLocator> open_or_fail(const std::string& path) {
  std::string error;
  auto locator = GeoLocator::open(path, error);
  EXPECT_NE(locator, nullptr) << error;
  EXPECT_EQ(error, "");
  return locator;
}

ClientLocation look(const GeoLocator& g, const char* address) {
  return g.lookup(ip::make_address(address));
}

struct Expected {
  const char* address;
  const char* country;
  const char* continent;
  double lat;
  double lon;
};

void expect_located(const GeoLocator& g, const Expected& e) {
  SCOPED_TRACE(e.address);
  const ClientLocation c = look(g, e.address);
  EXPECT_STREQ(c.country, e.country);
  EXPECT_STREQ(c.continent, e.continent);
  ASSERT_TRUE(c.has_coordinates);
  EXPECT_NEAR(c.lat, e.lat, kTolerance);
  EXPECT_NEAR(c.lon, e.lon, kTolerance);
}

void expect_unknown(const GeoLocator& g, const char* address) {
  SCOPED_TRACE(address);
  const ClientLocation c = look(g, address);
  EXPECT_FALSE(c.has_coordinates);
  EXPECT_EQ(c.lat, 0);
  EXPECT_EQ(c.lon, 0);
  EXPECT_STREQ(c.country, "");
  EXPECT_STREQ(c.continent, "");
}

// ---- loopback-city.mmdb: one client per continent on 127.0.N.0/24 ----

TEST(GeoLocatorLoopback, EveryContinentOnItsOwnLoopbackNetwork) {
  const auto g = open_or_fail(kLoopbackCity);
  ASSERT_NE(g, nullptr);
  const Expected table[] = {
      {"127.0.1.1", "US", "NA", 40.71, -74.00},   // New York
      {"127.0.2.1", "DE", "EU", 50.11, 8.68},     // Frankfurt
      {"127.0.3.1", "SG", "AS", 1.35, 103.82},    // Singapore
      {"127.0.4.1", "BR", "SA", -23.55, -46.63},  // Sao Paulo
      {"127.0.5.1", "AU", "OC", -33.87, 151.21},  // Sydney
      {"127.0.6.1", "ZA", "AF", -26.20, 28.05},   // Johannesburg
      {"127.0.2.254", "DE", "EU", 50.11, 8.68},   // anywhere in the /24
  };
  for (const Expected& e : table)
    expect_located(*g, e);
}

TEST(GeoLocatorLoopback, CountryWithoutLocationHasNoCoordinates) {
  const auto g = open_or_fail(kLoopbackCity);
  ASSERT_NE(g, nullptr);
  const ClientLocation c = look(*g, "127.0.9.1");
  EXPECT_STREQ(c.country, "JP");
  EXPECT_STREQ(c.continent, "AS");
  EXPECT_FALSE(c.has_coordinates);
  EXPECT_EQ(c.lat, 0);
  EXPECT_EQ(c.lon, 0);
}

TEST(GeoLocatorLoopback, AddressesNotInTheDatabaseAreUnknown) {
  const auto g = open_or_fail(kLoopbackCity);
  ASSERT_NE(g, nullptr);
  expect_unknown(*g, "127.0.0.1");
  expect_unknown(*g, "::1");
  expect_unknown(*g, "127.0.7.1");  // elsewhere in 127/8
  expect_unknown(*g, "127.1.2.1");
  expect_unknown(*g, "10.0.0.1");  // private
  expect_unknown(*g, "0.0.0.0");
  expect_unknown(*g, "::");
  expect_unknown(*g, "::ffff:127.0.0.1");
}

TEST(GeoLocatorLoopback, Ipv4MappedIpv6IsLookedUpAsIpv4) {
  const auto g = open_or_fail(kLoopbackCity);
  ASSERT_NE(g, nullptr);
  const auto mapped = ip::make_address("::ffff:127.0.2.1");
  ASSERT_TRUE(mapped.is_v6());
  ASSERT_TRUE(mapped.to_v6().is_v4_mapped());
  expect_located(*g, {"::ffff:127.0.2.1", "DE", "EU", 50.11, 8.68});
  expect_located(*g, {"::ffff:127.0.5.1", "AU", "OC", -33.87, 151.21});
  const ClientLocation jp = look(*g, "::ffff:127.0.9.1");
  EXPECT_STREQ(jp.country, "JP");
  EXPECT_FALSE(jp.has_coordinates);
}

TEST(GeoLocatorLoopback, Ipv6DocumentationNetworks) {
  const auto g = open_or_fail(kLoopbackCity);
  ASSERT_NE(g, nullptr);
  expect_located(*g, {"2001:db8:3::1", "SG", "AS", 1.35, 103.82});
  expect_located(*g, {"2001:db8:1::1", "US", "NA", 40.71, -74.00});
  expect_located(*g, {"2001:db8:6:ffff::1", "ZA", "AF", -26.20, 28.05});
  expect_unknown(*g, "2001:db8:7::1");
}

TEST(GeoLocatorLoopback, Ipv4DocumentationNetworks) {
  const auto g = open_or_fail(kLoopbackCity);
  ASSERT_NE(g, nullptr);
  expect_located(*g, {"192.0.2.10", "US", "NA", 40.71, -74.00});
  expect_located(*g, {"198.51.100.10", "DE", "EU", 50.11, 8.68});
  expect_located(*g, {"203.0.113.10", "SG", "AS", 1.35, 103.82});
}

TEST(GeoLocatorLoopback, PathAndMetadata) {
  const auto g = open_or_fail(kLoopbackCity);
  ASSERT_NE(g, nullptr);
  EXPECT_EQ(g->path(), kLoopbackCity);
  EXPECT_EQ(g->database_type(), "GLB-Test-City");
  EXPECT_EQ(g->metadata().database_type, "GLB-Test-City");
  EXPECT_EQ(g->metadata().ip_version, 6u);
  EXPECT_EQ(g->metadata().build_epoch, 1700000000u);  // SOURCE_DATE_EPOCH of the README
  EXPECT_EQ(g->metadata().binary_format_major, 2u);
  EXPECT_GT(g->metadata().node_count, 0u);
}

// ---- MaxMind's own test databases ----

TEST(GeoLocatorMaxMind, GeoIp2CityKnownEntries) {
  const auto g = open_or_fail(kGeoIp2City);
  ASSERT_NE(g, nullptr);
  EXPECT_EQ(g->database_type(), "GeoIP2-City");
  expect_located(*g, {"81.2.69.142", "GB", "EU", 51.5142, -0.0931});
  expect_located(*g, {"2a02:d180::1", "DE", "EU", 51.5, 10.5});
  expect_located(*g, {"214.0.1.1", "AU", "OC", -37.8159, 144.9669});
  expect_located(*g, {"::ffff:81.2.69.142", "GB", "EU", 51.5142, -0.0931});
  expect_located(*g, {"2001:218::1", "JP", "AS", 35.6854, 139.7531});
  expect_unknown(*g, "1.1.1.1");
  expect_unknown(*g, "127.0.0.1");
}

TEST(GeoLocatorMaxMind, CountryDatabaseHasNoCoordinates) {
  const auto g = open_or_fail(kGeoLite2Country);
  ASSERT_NE(g, nullptr);
  EXPECT_EQ(g->database_type(), "GeoLite2-Country");
  for (const char* address : {"81.2.69.142", "::ffff:81.2.69.142"}) {
    SCOPED_TRACE(address);
    const ClientLocation c = look(*g, address);
    EXPECT_STREQ(c.country, "GB");
    EXPECT_STREQ(c.continent, "EU");
    EXPECT_FALSE(c.has_coordinates);
    EXPECT_EQ(c.lat, 0);
    EXPECT_EQ(c.lon, 0);
  }
  const ClientLocation de = look(*g, "2a02:d180::1");
  EXPECT_STREQ(de.country, "DE");
  EXPECT_STREQ(de.continent, "EU");
  EXPECT_FALSE(de.has_coordinates);
  expect_unknown(*g, "1.1.1.1");
}

// ---- open failures ----

TEST(GeoLocatorOpen, MissingFileFailsNamingThePath) {
  const std::string path = kGeoDir + "no-such-database.mmdb";
  std::string error;
  const auto g = GeoLocator::open(path, error);
  EXPECT_EQ(g, nullptr);
  EXPECT_NE(error.find(path), std::string::npos) << error;
  // MMDB_strerror(MMDB_FILE_OPEN_ERROR), then the OS reason.
  EXPECT_NE(error.find("Error opening the specified MaxMind DB file"), std::string::npos) << error;
  EXPECT_NE(error.find("No such file or directory"), std::string::npos) << error;
}

TEST(GeoLocatorOpen, NonMmdbFileFailsNamingThePath) {
  const std::string path = kGeoDir + "README.md";
  std::string error;
  const auto g = GeoLocator::open(path, error);
  EXPECT_EQ(g, nullptr);
  EXPECT_NE(error.find(path), std::string::npos) << error;
  // MMDB_strerror(MMDB_INVALID_METADATA_ERROR)
  EXPECT_NE(error.find("invalid metadata"), std::string::npos) << error;
}

TEST(GeoLocatorOpen, EmptyFileFails) {
  const std::string path = testing::TempDir() + "meridian_geo_empty.mmdb";
  { std::ofstream(path, std::ios::trunc); }
  std::string error;
  EXPECT_EQ(GeoLocator::open(path, error), nullptr);
  EXPECT_NE(error.find(path), std::string::npos) << error;
  std::remove(path.c_str());
}

TEST(GeoLocatorOpen, ErrorIsClearedOnSuccess) {
  std::string error = "left over";
  const auto g = GeoLocator::open(kLoopbackCity, error);
  ASSERT_NE(g, nullptr) << error;
  EXPECT_EQ(error, "");
}

// ---- one shared instance, many threads ----

TEST(GeoLocatorConcurrency, SharedInstanceGivesConsistentAnswersAcrossThreads) {
  const auto g = open_or_fail(kLoopbackCity);
  ASSERT_NE(g, nullptr);
  const std::vector<ip::address> addresses = {
      ip::make_address("127.0.1.1"),     ip::make_address("127.0.2.1"),
      ip::make_address("127.0.3.1"),     ip::make_address("127.0.4.1"),
      ip::make_address("127.0.5.1"),     ip::make_address("127.0.6.1"),
      ip::make_address("127.0.9.1"),     ip::make_address("127.0.0.1"),
      ip::make_address("::1"),           ip::make_address("::ffff:127.0.2.1"),
      ip::make_address("2001:db8:3::1"), ip::make_address("198.51.100.7"),
  };
  // Answers from one thread are the reference.
  std::vector<ClientLocation> expected;
  for (const auto& a : addresses)
    expected.push_back(g->lookup(a));

  const auto same = [](const ClientLocation& x, const ClientLocation& y) {
    return x.has_coordinates == y.has_coordinates && x.lat == y.lat && x.lon == y.lon &&
           std::strcmp(x.country, y.country) == 0 && std::strcmp(x.continent, y.continent) == 0;
  };

  constexpr int kThreads = 4;
  constexpr int kRounds = 5000;
  std::atomic<int> mismatches{0};
  std::atomic<int> lookups{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int r = 0; r < kRounds; ++r) {
        // Each thread walks the list from a different start, so threads hit different
        // records at the same moment.
        const std::size_t i = static_cast<std::size_t>(r + t * 3) % addresses.size();
        if (!same(g->lookup(addresses[i]), expected[i])) mismatches.fetch_add(1);
        lookups.fetch_add(1, std::memory_order_relaxed);
      }
    });
  }
  for (auto& th : threads)
    th.join();
  EXPECT_EQ(mismatches.load(), 0);
  EXPECT_EQ(lookups.load(), kThreads * kRounds);
  // And the reference itself is right.
  EXPECT_STREQ(expected[1].country, "DE");
  EXPECT_STREQ(expected[9].country, "DE");
  EXPECT_STREQ(expected[10].country, "SG");
  EXPECT_STREQ(expected[7].country, "");
}

}  // namespace
}  // namespace meridian::geo
