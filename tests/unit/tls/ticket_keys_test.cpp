#include "meridian/tls/ticket_keys.hpp"

#include <cstdio>
#include <fstream>
#include <string>
#include <unistd.h>

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

// A key file as `openssl rand 80` writes it, removed when the test ends.
class KeyFile {
 public:
  explicit KeyFile(const std::string& bytes) {
    char name[] = "/tmp/meridian-ticket-key-XXXXXX";
    const int fd = mkstemp(name);
    if (fd >= 0) ::close(fd);
    path_ = name;
    std::ofstream(path_, std::ios::binary) << bytes;
  }
  ~KeyFile() { std::remove(path_.c_str()); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

TEST(TicketKeyFile, ReadsNginxsLayoutNameThenHmacThenAes) {
  std::string bytes;
  for (int i = 0; i < 80; ++i)
    bytes += static_cast<char>(i);
  KeyFile file(bytes);
  const auto key = TicketKeys::read_file(file.path());
  for (int i = 0; i < 16; ++i)
    EXPECT_EQ(key.name[i], i);
  for (int i = 0; i < 32; ++i)
    EXPECT_EQ(key.mac_key[i], 16 + i);
  for (int i = 0; i < 32; ++i)
    EXPECT_EQ(key.cipher_key[i], 48 + i);
}

TEST(TicketKeyFile, AnythingButEightyBytesIsRefusedWithTheFileNamed) {
  for (const std::size_t size : {0u, 48u, 79u, 81u}) {
    KeyFile file(std::string(size, 'k'));
    try {
      TicketKeys::read_file(file.path());
      ADD_FAILURE() << size << " bytes were accepted";
    } catch (const TicketKeyFileError& e) {
      EXPECT_EQ(std::string(e.what()),
                "ticket key file " + file.path() + " holds " + std::to_string(size) +
                    " bytes, not 80 (openssl rand 80 > " + file.path() + ")");
    }
  }
  EXPECT_THROW(TicketKeys::read_file("/nonexistent/ticket.key"), TicketKeyFileError);
}

}  // namespace
}  // namespace meridian::tls
