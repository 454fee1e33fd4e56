// Access log lines and their writer: the JSON object and the combined line, escaping, lines
// reaching a file in order, drops counted instead of waiting, and a reopen.
#include "meridian/accesslog/access_log.hpp"

#include <chrono>
#include <cstdio>
#include <fcntl.h>
#include <fstream>
#include <sstream>
#include <string>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>

#include <gtest/gtest.h>

#include "meridian/accesslog/format.hpp"

namespace meridian::accesslog {
namespace {

Entry sample() {
  Entry e;
  // 2026-11-27T14:39:01.698Z
  e.time = std::chrono::system_clock::time_point(std::chrono::milliseconds(1'795'790'341'698));
  e.client = "203.0.113.7";
  e.method = "GET";
  e.host = "shop.example";
  e.target = "/items?page=2";
  e.path = "/items";
  e.status = 200;
  e.bytes_out = 1234;
  e.duration_ms = 1.5;
  e.listener = "public";
  e.route = "api";
  e.backend = "b";
  e.region = "eu-west";
  e.endpoint = "10.0.1.10:8080";
  e.request_id = "abc";
  e.user_agent = "curl/8 \"quoted\"";
  e.referer = "";
  return e;
}

TEST(Format, Json) {
  TimeCache cache;
  std::string out;
  format(config::AccessLogFormat::json, sample(), cache, out);
  EXPECT_EQ(out,
            "{\"time\":\"2026-11-27T14:39:01.698Z\",\"client\":\"203.0.113.7\",\"method\":\"GET\","
            "\"host\":\"shop.example\",\"path\":\"/items\",\"status\":200,\"bytes_out\":1234,"
            "\"duration_ms\":1.500,\"listener\":\"public\",\"route\":\"api\",\"backend\":\"b\","
            "\"region\":\"eu-west\",\"endpoint\":\"10.0.1.10:8080\",\"request_id\":\"abc\","
            "\"user_agent\":\"curl/8 \\\"quoted\\\"\"}\n");
}

TEST(Format, JsonEscapesControlAndQuote) {
  TimeCache cache;
  std::string out;
  Entry e = sample();
  e.path = std::string_view("/a\"b\\c\x01", 7);
  format(config::AccessLogFormat::json, e, cache, out);
  EXPECT_NE(out.find("\"path\":\"/a\\\"b\\\\c\\u0001\""), std::string::npos) << out;
}

TEST(Format, Combined) {
  TimeCache cache;
  std::string out;
  format(config::AccessLogFormat::combined, sample(), cache, out);
  EXPECT_EQ(out,
            "203.0.113.7 - - [27/Nov/2026:14:39:01 +0000] \"GET /items?page=2 HTTP/1.1\" 200 1234 "
            "\"-\" \"curl/8 \\\"quoted\\\"\"\n");
}

TEST(Format, CombinedTargetCannotForgeFields) {
  TimeCache cache;
  std::string out;
  Entry e = sample();
  e.target = "/x\" 200 1 \"-";
  format(config::AccessLogFormat::combined, e, cache, out);
  EXPECT_NE(out.find("\"GET /x\\\" 200 1 \\\"- HTTP/1.1\" 200 1234"), std::string::npos) << out;
}

TEST(Format, CombinedWithoutARequestLine) {
  TimeCache cache;
  std::string out;
  Entry e = sample();
  e.method = "";
  e.status = 400;
  format(config::AccessLogFormat::combined, e, cache, out);
  EXPECT_NE(out.find("] \"-\" 400 "), std::string::npos) << out;
}

std::string read_all(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string temp_path(const char* name) {
  return ::testing::TempDir() + name + std::to_string(::getpid());
}

TEST(Writer, LinesReachTheFileInOrder) {
  const std::string path = temp_path("meridian-access-");
  std::remove(path.c_str());
  {
    AccessLog log(path, 2);
    for (int i = 0; i < 1000; ++i)
      ASSERT_TRUE(log.push(0, "line " + std::to_string(i) + "\n"));
    EXPECT_TRUE(log.push(1, "other\n"));
  }  // the destructor writes what is queued
  const std::string text = read_all(path);
  EXPECT_NE(text.find("line 0\nline 1\n"), std::string::npos);
  EXPECT_NE(text.find("line 999\n"), std::string::npos);
  EXPECT_NE(text.find("other\n"), std::string::npos);
  EXPECT_LT(text.find("line 10\n"), text.find("line 11\n"));
  std::remove(path.c_str());
}

TEST(Writer, StuckDestinationDropsAndCounts) {
  // A FIFO whose reader never reads: the pipe fills, the writer waits, the ring fills, and
  // further lines are dropped and counted instead of waiting.
  const std::string fifo = temp_path("meridian-fifo-");
  std::remove(fifo.c_str());
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  const int reader = ::open(fifo.c_str(), O_RDONLY | O_NONBLOCK);
  ASSERT_GE(reader, 0);
  std::size_t dropped = 0;
  {
    AccessLog log(fifo, 1);
    const std::string line(999, 'x');
    for (std::size_t i = 0; i < 4 * AccessLog::kRingBytes / 1000; ++i) {
      if (!log.push(0, line + "\n")) ++dropped;
    }
    EXPECT_GT(dropped, 0u);
    EXPECT_GE(log.dropped(), dropped);
  }  // stops within its bounded wait although the FIFO is still full
  ::close(reader);
  std::remove(fifo.c_str());
}

TEST(Writer, ReopenFollowsARename) {
  const std::string path = temp_path("meridian-rotate-");
  std::remove(path.c_str());
  std::remove((path + ".1").c_str());
  AccessLog log(path, 1);
  log.push(0, "before\n");
  for (int i = 0; i < 200 && read_all(path).empty(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));  // the writer's poll
  ASSERT_EQ(read_all(path), "before\n");
  std::rename(path.c_str(), (path + ".1").c_str());
  log.reopen();
  for (int i = 0; i < 200 && ::access(path.c_str(), F_OK) != 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  log.push(0, "after\n");
  for (int i = 0; i < 200 && read_all(path).empty(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  EXPECT_EQ(read_all(path), "after\n");
  EXPECT_EQ(read_all(path + ".1"), "before\n");
  std::remove(path.c_str());
  std::remove((path + ".1").c_str());
}

}  // namespace
}  // namespace meridian::accesslog
