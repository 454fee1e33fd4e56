// Consistent hashing (balance ring_hash / maglev): shares follow weights, a key keeps its
// endpoint, one endpoint of N leaving moves about 1/N of the keys (its own, and no others),
// and the picker walks on from an endpoint that cannot serve.
#include "meridian/balancing/consistent_hash.hpp"

#include <map>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "meridian/balancing/endpoint_picker.hpp"

namespace meridian::balancing {
namespace {

std::vector<std::string> names(int n, int first = 0) {
  std::vector<std::string> out;
  for (int i = first; i < first + n; ++i)
    out.push_back("10.0.0." + std::to_string(i) + ":8080");
  return out;
}

std::vector<HashedEndpoint> placed(const std::vector<std::string>& names,
                                   const std::vector<std::uint32_t>& weights = {}) {
  std::vector<HashedEndpoint> out;
  for (std::size_t i = 0; i < names.size(); ++i) {
    out.push_back({names[i], weights.empty() ? 1u : weights[i]});
  }
  return out;
}

constexpr int kKeys = 20'000;

std::uint64_t key(int i) {
  return hash_bytes("user-" + std::to_string(i));
}

// The endpoint name each key maps to.
template <typename Table>
std::vector<std::string> owners(const Table& t, const std::vector<std::string>& n) {
  std::vector<std::string> out;
  out.reserve(kKeys);
  for (int i = 0; i < kKeys; ++i) {
    if constexpr (std::is_same_v<Table, MaglevTable>) {
      out.push_back(n[t.lookup(key(i))]);
    } else {
      out.push_back(n[t.endpoint_at(t.find(key(i)))]);
    }
  }
  return out;
}

double moved(const std::vector<std::string>& a, const std::vector<std::string>& b) {
  int count = 0;
  for (std::size_t i = 0; i < a.size(); ++i)
    count += a[i] != b[i];
  return static_cast<double>(count) / static_cast<double>(a.size());
}

template <typename Table>
class ConsistentHash : public ::testing::Test {};
using Tables = ::testing::Types<MaglevTable, HashRing>;
TYPED_TEST_SUITE(ConsistentHash, Tables);

TYPED_TEST(ConsistentHash, SharesFollowWeights) {
  const auto n = names(4);
  const TypeParam t(placed(n, {1, 1, 2, 4}));
  std::map<std::string, int> count;
  for (const auto& owner : owners(t, n))
    ++count[owner];
  const double unit = kKeys / 8.0;
  // Maglev within 1% of the table; a ring of 160 points a weight within about 15%.
  const double tolerance = std::is_same_v<TypeParam, MaglevTable> ? 0.05 : 0.2;
  EXPECT_NEAR(count[n[0]], unit, unit * tolerance);
  EXPECT_NEAR(count[n[1]], unit, unit * tolerance);
  EXPECT_NEAR(count[n[2]], 2 * unit, 2 * unit * tolerance);
  EXPECT_NEAR(count[n[3]], 4 * unit, 4 * unit * tolerance);
}

TYPED_TEST(ConsistentHash, OneOfTenLeavingMovesAboutATenthAndOnlyItsOwn) {
  const auto ten = names(10);
  const auto nine = std::vector<std::string>(ten.begin(), ten.begin() + 9);
  const TypeParam before(placed(ten));
  const TypeParam after(placed(nine));
  const auto a = owners(before, ten);
  const auto b = owners(after, nine);
  EXPECT_NEAR(moved(a, b), 0.10, 0.03);
  // Ring: exactly the keys of the one that left move. Maglev: nearly (its table is rebuilt;
  // a few entries of others change too).
  int others_moved = 0;
  for (int i = 0; i < kKeys; ++i)
    others_moved += a[i] != ten[9] && a[i] != b[i];
  if (std::is_same_v<TypeParam, HashRing>) {
    EXPECT_EQ(others_moved, 0);
  } else {
    EXPECT_LT(others_moved, kKeys / 50);
  }
}

TYPED_TEST(ConsistentHash, OrderOfTheListDoesNotMatter) {
  const auto n = names(6);
  std::vector<std::string> reversed(n.rbegin(), n.rend());
  const TypeParam a(placed(n));
  const TypeParam b(placed(reversed));
  EXPECT_EQ(moved(owners(a, n), owners(b, reversed)), 0.0);
}

TEST(MaglevTable, EveryEntryFilledAndTheSizeIsPrime) {
  const auto n = names(3);
  const MaglevTable t(placed(n, {1, 1000, 1}));
  std::vector<int> count(3, 0);
  for (std::uint64_t h = 0; h < MaglevTable::kSize; ++h)
    ++count[t.lookup(h)];
  EXPECT_GT(count[0], 0);  // a light endpoint still owns entries
  EXPECT_GT(count[2], 0);
  EXPECT_EQ(count[0] + count[1] + count[2], static_cast<int>(MaglevTable::kSize));
  for (std::uint32_t d = 2; d * d <= MaglevTable::kSize; ++d) {
    EXPECT_NE(MaglevTable::kSize % d, 0u) << d;
  }
}

TEST(HashBytes, OfThreePartsIsTheHashOfTheirConcatenation) {
  EXPECT_EQ(hash_bytes("web", "/", "10.0.0.1:8080"), hash_bytes("web/10.0.0.1:8080"));
  EXPECT_EQ(hash_bytes("", "", ""), hash_bytes(""));
  EXPECT_NE(hash_bytes("ab", "", "c"), hash_bytes("a", "", "bd"));
}

TEST(HashRing, WrapsAround) {
  const auto n = names(3);
  const HashRing r(placed(n));
  EXPECT_EQ(r.find(~std::uint64_t{0}), 0u);  // past the last point: the first
  EXPECT_EQ(r.points(), 3u * HashRing::kPointsPerWeight);
}

// ---------------------------------------------------------------------------------------
// The picker with a region's table: a key keeps its endpoint; an endpoint that cannot
// serve passes its keys on, and gets them back.

std::shared_ptr<EndpointState> endpoint(const std::string& name) {
  return std::make_shared<EndpointState>("b", "r", name, boost::asio::ip::tcp::endpoint(), 1);
}

RegionRuntime hashed_region(config::Balance balance, int n) {
  RegionRuntime r;
  const auto nn = names(n);
  for (const auto& name : nn)
    r.endpoints.push_back(endpoint(name));
  if (balance == config::Balance::maglev) {
    r.maglev = std::make_shared<const MaglevTable>(placed(nn));
  } else {
    r.ring = std::make_shared<const HashRing>(placed(nn));
  }
  return r;
}

int pick_index(const RegionRuntime& r, config::Balance b, std::uint64_t k,
               const TriedEndpoints& tried = {}) {
  std::uint64_t rotation = 0;
  const auto* e = pick_endpoint(r, b, 0, tried, rotation, 0, true, 0, k);
  return e == nullptr ? -1 : static_cast<int>(e - r.endpoints.data());
}

class HashedPick : public ::testing::TestWithParam<config::Balance> {};

TEST_P(HashedPick, UnusableEndpointPassesOnlyItsKeysAndGetsThemBack) {
  const RegionRuntime r = hashed_region(GetParam(), 10);
  std::vector<int> first(kKeys);
  for (int i = 0; i < kKeys; ++i)
    first[static_cast<std::size_t>(i)] = pick_index(r, GetParam(), key(i));
  r.endpoints[3]->healthy = false;
  int moved_keys = 0;
  for (int i = 0; i < kKeys; ++i) {
    const int now = pick_index(r, GetParam(), key(i));
    ASSERT_NE(now, 3);
    ASSERT_GE(now, 0);
    if (first[static_cast<std::size_t>(i)] != 3) {
      ASSERT_EQ(now, first[static_cast<std::size_t>(i)]) << "a key of another endpoint moved";
    } else {
      ++moved_keys;
    }
  }
  EXPECT_NEAR(static_cast<double>(moved_keys) / kKeys, 0.10, 0.03);
  r.endpoints[3]->healthy = true;
  for (int i = 0; i < kKeys; ++i) {
    ASSERT_EQ(pick_index(r, GetParam(), key(i)), first[static_cast<std::size_t>(i)]);
  }
}

TEST_P(HashedPick, TriedEndpointIsSkippedAndNoneLeftIsNull) {
  const RegionRuntime r = hashed_region(GetParam(), 3);
  const int owner = pick_index(r, GetParam(), key(1));
  TriedEndpoints tried;
  tried.add(r.endpoints[static_cast<std::size_t>(owner)].get());
  const int next = pick_index(r, GetParam(), key(1), tried);
  EXPECT_GE(next, 0);
  EXPECT_NE(next, owner);
  for (const auto& e : r.endpoints)
    tried.add(e.get());
  EXPECT_EQ(pick_index(r, GetParam(), key(1), tried), -1);
}

TEST_P(HashedPick, SlowStartBringsKeysBackOneByOne) {
  const RegionRuntime r = hashed_region(GetParam(), 10);
  std::vector<int> owner(kKeys);
  for (int i = 0; i < kKeys; ++i)
    owner[static_cast<std::size_t>(i)] = pick_index(r, GetParam(), key(i));
  // Endpoint 3 recovered half-way through a 10 s slow start: ramp 0.1 + 0.9 * 0.5 = 0.55.
  const std::int64_t slow_start_ns = 10'000'000'000;
  const std::int64_t now_ns = 100'000'000'000;
  r.endpoints[3]->recovered_at_ns = now_ns - slow_start_ns / 2;
  auto pick_now = [&](int k) {
    std::uint64_t rotation = 0;
    const auto* e =
        pick_endpoint(r, GetParam(), 0, {}, rotation, now_ns, true, slow_start_ns, key(k));
    return static_cast<int>(e - r.endpoints.data());
  };
  int own = 0;
  int kept = 0;
  for (int k = 0; k < kKeys; ++k) {
    const int now = pick_now(k);
    ASSERT_EQ(pick_now(k), now) << "a key's place in the ramp is fixed";
    if (owner[static_cast<std::size_t>(k)] != 3) {
      ASSERT_EQ(now, owner[static_cast<std::size_t>(k)]) << "another endpoint's key moved";
      continue;
    }
    ++own;
    kept += now == 3;
  }
  // Each key of the ramping endpoint stays with the probability of the ramp (not all or
  // none, as a draw that ignored the key would give).
  EXPECT_NEAR(static_cast<double>(kept) / own, 0.55, 0.1) << kept << " of " << own;
}

INSTANTIATE_TEST_SUITE_P(Balance, HashedPick,
                         ::testing::Values(config::Balance::ring_hash, config::Balance::maglev),
                         [](const ::testing::TestParamInfo<config::Balance>& param_info) {
                           return std::string(param_info.param == config::Balance::maglev
                                                  ? "maglev"
                                                  : "ring_hash");
                         });

}  // namespace
}  // namespace meridian::balancing
