#include "meridian/tls/ticket_keys.hpp"

#include <gtest/gtest.h>

namespace meridian::tls {
namespace {

using Clock = TicketKeys::Clock;
using std::chrono::minutes;

Clock::time_point fake_now;
Clock::time_point now() {
  return fake_now;
}

class TicketKeysTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fake_now = Clock::time_point{} + std::chrono::hours(1000);
    keys_.set_clock(&now);
  }
  TicketKeys keys_;
};

TEST_F(TicketKeysTest, IssuesUnderOneKeyUntilTheRotationIsDue) {
  const auto first = keys_.current();
  fake_now += minutes(59);
  EXPECT_EQ(keys_.current().name, first.name);
  fake_now += minutes(1);
  const auto second = keys_.current();
  EXPECT_NE(second.name, first.name);
  EXPECT_NE(second.cipher_key, first.cipher_key);
  EXPECT_NE(second.mac_key, first.mac_key);
}

TEST_F(TicketKeysTest, OlderKeysAreAcceptedForTwoRotationsAndAskForRenewal) {
  const auto first = keys_.current();
  TicketKeys::Key found;
  EXPECT_EQ(keys_.find(first.name.data(), found), TicketKeys::Lookup::current);
  EXPECT_EQ(found.cipher_key, first.cipher_key);
  fake_now += minutes(60);
  keys_.current();  // rotates
  EXPECT_EQ(keys_.find(first.name.data(), found), TicketKeys::Lookup::previous);
  fake_now += minutes(60);
  EXPECT_EQ(keys_.find(first.name.data(), found), TicketKeys::Lookup::previous);
  EXPECT_EQ(keys_.size(), 3u);
  fake_now += minutes(60);
  EXPECT_EQ(keys_.find(first.name.data(), found), TicketKeys::Lookup::unknown);
  EXPECT_EQ(keys_.size(), 3u);
}

TEST_F(TicketKeysTest, AQuietProcessDropsKeysThatAreTooOld) {
  const auto first = keys_.current();
  fake_now += std::chrono::hours(5);
  TicketKeys::Key found;
  EXPECT_EQ(keys_.find(first.name.data(), found), TicketKeys::Lookup::unknown);
  EXPECT_EQ(keys_.size(), 1u);
}

TEST_F(TicketKeysTest, UnknownNamesAreNotFound) {
  keys_.current();
  const unsigned char name[16] = {};
  TicketKeys::Key found;
  EXPECT_EQ(keys_.find(name, found), TicketKeys::Lookup::unknown);
}

}  // namespace
}  // namespace meridian::tls
