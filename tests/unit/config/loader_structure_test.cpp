// File-level behaviour of the loader: unreadable and empty files, YAML syntax errors,
// unknown and duplicate keys at every level, wrong node types, error order and format.
#include <sys/stat.h>

#include "config_test_support.hpp"

namespace meridian::config::test {
namespace {

TEST(ConfigErrorFormat, WithPosition) {
  ConfigError e{"conf/x.yaml", 14, 7, "backends[0].regions[1].endpoints[0].address",
                "expected host:port, got \"10.0.0.1\""};
  EXPECT_EQ(e.to_string(),
            "conf/x.yaml:14:7: backends[0].regions[1].endpoints[0].address: expected host:port, "
            "got \"10.0.0.1\"");
}

TEST(ConfigErrorFormat, WithoutPosition) {
  ConfigError e{"conf/x.yaml", 0, 0, "", "cannot read file: No such file or directory"};
  EXPECT_EQ(e.to_string(), "conf/x.yaml: cannot read file: No such file or directory");
}

TEST(ConfigErrorFormat, WithoutKey) {
  ConfigError e{"a.yaml", 3, 1, "", "YAML syntax error: x"};
  EXPECT_EQ(e.to_string(), "a.yaml:3:1: YAML syntax error: x");
}

TEST(FileErrors, MissingFileIsOneErrorWithoutPosition) {
  auto result = load_config_file("/nonexistent/meridian.yaml");
  EXPECT_FALSE(result.config);
  ASSERT_EQ(result.errors.size(), 1u);
  EXPECT_EQ(result.errors[0].line, 0);
  EXPECT_EQ(result.errors[0].to_string(),
            "/nonexistent/meridian.yaml: cannot read file: No such file or directory");
}

TEST(FileErrors, DirectoryIsNotAConfigFile) {
  auto dir = std::filesystem::temp_directory_path().string();
  auto result = load_config_file(dir);
  ASSERT_EQ(result.errors.size(), 1u);
  EXPECT_EQ(result.errors[0].to_string(), dir + ": cannot read file: Is a directory");
}

TEST(FileErrors, UnreadableFile) {
  if (::geteuid() == 0) GTEST_SKIP() << "root can read any file";
  TempFile file("listeners: []\n", ".yaml");
  ASSERT_EQ(::chmod(file.path().c_str(), 0), 0);
  auto result = load_config_file(file.path());
  ASSERT_EQ(result.errors.size(), 1u);
  EXPECT_EQ(result.errors[0].to_string(), file.path() + ": cannot read file: Permission denied");
}

TEST(FileErrors, ErrorsNameTheFileAsGiven) {
  TempFile file("workers: many\n", ".yaml");
  auto result = load_config_file(file.path());
  ASSERT_FALSE(result.ok());
  EXPECT_TRUE(has_error(result, "workers", 1, 10, "expected a non-negative integer"));
  for (const auto& e : result.errors)
    EXPECT_EQ(e.file, file.path());
  EXPECT_EQ(result.errors.back().to_string(),
            file.path() + ":1:10: workers: expected a non-negative integer, got \"many\"");
}

TEST(FileErrors, EmptyFileNeedsListenersAndBackends) {
  for (std::string_view text : {"", "\n\n", "# nothing but a comment\n", "---\n"}) {
    auto result = load_config_string(text, kFile);
    ASSERT_EQ(result.errors.size(), 2u) << all_errors(result);
    EXPECT_EQ(result.errors[0].to_string(), "test.yaml: listeners: required key is missing");
    EXPECT_EQ(result.errors[1].to_string(), "test.yaml: backends: required key is missing");
  }
}

TEST(FileErrors, TopLevelKeysMissingReportedAtDocumentStart) {
  auto result = load("workers: 2\n");
  ASSERT_EQ(result.errors.size(), 2u) << all_errors(result);
  EXPECT_TRUE(has_error(result, "listeners", 1, 1, "required key is missing"));
  EXPECT_TRUE(has_error(result, "backends", 1, 1, "required key is missing"));
}

TEST(FileErrors, SyntaxErrorHasItsPosition) {
  auto result = load(R"(
workers: 1
listeners: [
backends: x
)");
  // "backends: x" is valid inside a flow sequence, so yaml-cpp gives up at the end of the
  // file, still looking for the "]".
  ASSERT_TRUE(
      has_only_error(result, "", 4, 1, "YAML syntax error: end of sequence flow not found"));
  EXPECT_EQ(result.errors[0].to_string(),
            "test.yaml:4:1: YAML syntax error: end of sequence flow not found");
}

TEST(FileErrors, BadIndentationIsASyntaxError) {
  auto result = load(R"(
admin:
  listen: 127.0.0.1:1
 workers: 2
)");
  ASSERT_EQ(result.errors.size(), 1u) << all_errors(result);
  EXPECT_EQ(result.errors[0].key, "");
  EXPECT_EQ(result.errors[0].line, 3);
  EXPECT_NE(result.errors[0].message.find("YAML syntax error"), std::string::npos);
}

TEST(FileErrors, TopLevelMustBeAMapping) {
  auto result = load("- listeners\n- backends\n");
  ASSERT_TRUE(has_only_error(result, "", 1, 1, "expected a mapping, got a sequence"));
}

TEST(FileErrors, OnlyOneDocument) {
  auto result = load(R"(
listeners: [{name: l, listen: "127.0.0.1:0", routes: [{name: r, backend: b}]}]
backends: [{name: b, steering: {policy: latency}, regions: [{name: r, endpoints: [{address: "1.2.3.4:5"}]}]}]
---
workers: 2
)");
  // Positioned at the start of the second document, just after its "---".
  EXPECT_TRUE(has_only_error(result, "", 4, 1, "expected a single YAML document, found 2"));
}

TEST(FileErrors, NeverThrowsOnGarbage) {
  std::string garbage = "\x01\x02: [\xff\xfe {{{ \"\n\t- ]]]: &a *b !!binary ???";
  auto result = load_config_string(garbage, kFile);
  EXPECT_FALSE(result.ok());
  EXPECT_FALSE(result.config);
}

TEST(FileErrors, InputYamlCppNeverFinishesIsRefused) {
  // yaml-cpp 0.7 allocates without end on these (found by the config fuzz target); the
  // loader stops it and names the place.
  const std::string message =
      "YAML syntax error: the parser does not terminate here (a ',' or another indicator out "
      "of place?)";
  for (const char* text : {",\n", "# comment\n  , listen: x\n", "a: 1\n--- ,\n", "!r#,",
                           "# - name: web\n        backend: web\n ,      timeout: 30s\n"}) {
    const auto result = load_config_string(text, kFile);
    ASSERT_EQ(result.errors.size(), 1u) << text;
    EXPECT_EQ(result.errors[0].message, message) << text;
    EXPECT_GT(result.errors[0].line, 0) << text;
  }
  // Commas that are YAML's business parse as before.
  for (const char* fine :
       {"a: [1,\n  2,\n  3]\n", "a: \"x\n  , y\"\n", "a: |\n  , literal\n", "a: b, c\n"}) {
    const auto result = load_config_string(fine, kFile);
    for (const auto& e : result.errors)
      EXPECT_EQ(e.message.find("does not terminate"), std::string::npos) << fine;
  }
}

TEST(UnknownKeys, TopLevelWithSuggestion) {
  auto result = load_with_both("listener: []\n");
  EXPECT_TRUE(has_only_error(result, "listener", 1, 1,
                             "unknown key \"listener\" (did you mean \"listeners\"?)"));
}

TEST(UnknownKeys, NoSuggestionWhenNothingIsClose) {
  auto result = load_with_both("frobnicate: 1\n");
  ASSERT_TRUE(has_only_error(result, "frobnicate", 1, 1, "unknown key \"frobnicate\""));
  EXPECT_EQ(result.errors[0].message, "unknown key \"frobnicate\"");
}

TEST(UnknownKeys, EveryLevelIsChecked) {
  auto result = load(R"(
node: {nmae: edge}
admin:
  lisen: 127.0.0.1:9901
geoip: {databse: ""}
client_ip: {trusted: []}
access_log: {fromat: json}
limits: {max_header_bytes: 1}
rate_limit_store: {rediss: "127.0.0.1:6379"}
listeners:
  - name: public
    lsten: 127.0.0.1:0
    tls: {certs: []}
    routes:
      - name: all
        backend: api
        match: {hots: a.example.com}
        rate_limit: {rate: 1/s, brust: 3}
        retrys: 1
backends:
  - name: api
    steering:
      polcy: geo
      rules:
        - {match: {contnent: EU}, regions: [eu]}
    keepalive: {idle: 1s}
    health_check: {pth: /}
    outlier_detection: {failures: 1}
    regions:
      - name: eu
        location: {lat: 1, lon: 2, alt: 3}
        endpoints:
          - adress: 127.0.0.1:9000
)");
  EXPECT_TRUE(
      has_error(result, "node.nmae", 1, 8, "unknown key \"nmae\" (did you mean \"name\"?)"));
  EXPECT_TRUE(has_error(result, "admin.lisen", 3, 3, "(did you mean \"listen\"?)"));
  EXPECT_TRUE(has_error(result, "geoip.databse", 4, 9, "(did you mean \"database\"?)"));
  EXPECT_TRUE(has_error(result, "client_ip.trusted", 5, 13, "unknown key \"trusted\""));
  EXPECT_TRUE(has_error(result, "access_log.fromat", 6, 14, "(did you mean \"format\"?)"));
  EXPECT_TRUE(has_error(result, "limits.max_header_bytes", 7, 10, "unknown key"));
  EXPECT_TRUE(has_error(result, "rate_limit_store.rediss", 8, 20, "(did you mean \"redis\"?)"));
  EXPECT_TRUE(has_error(result, "listeners[0].lsten", 11, 5, "(did you mean \"listen\"?)"));
  EXPECT_TRUE(has_error(result, "listeners[0].tls.certs", 12, 11, "unknown key \"certs\""));
  EXPECT_TRUE(
      has_error(result, "listeners[0].routes[0].match.hots", 16, 17, "(did you mean \"host\"?)"));
  EXPECT_TRUE(has_error(result, "listeners[0].routes[0].rate_limit.brust", 17, 33,
                        "(did you mean \"burst\"?)"));
  EXPECT_TRUE(
      has_error(result, "listeners[0].routes[0].retrys", 18, 9, "(did you mean \"retry\"?)"));
  EXPECT_TRUE(has_error(result, "backends[0].steering.polcy", 22, 7, "(did you mean \"policy\"?)"));
  EXPECT_TRUE(has_error(result, "backends[0].steering.rules[0].match.contnent", 24, 20,
                        "(did you mean \"continent\"?)"));
  EXPECT_TRUE(has_error(result, "backends[0].keepalive.idle", 25, 17, "unknown key \"idle\""));
  EXPECT_TRUE(
      has_error(result, "backends[0].health_check.pth", 26, 20, "(did you mean \"path\"?)"));
  EXPECT_TRUE(has_error(result, "backends[0].outlier_detection.failures", 27, 25,
                        "unknown key \"failures\""));
  EXPECT_TRUE(
      has_error(result, "backends[0].regions[0].location.alt", 30, 36, "unknown key \"alt\""));
  EXPECT_TRUE(has_error(result, "backends[0].regions[0].endpoints[0].adress", 32, 13,
                        "(did you mean \"address\"?)"));
  // The misspelt required keys are also missing.
  EXPECT_TRUE(has_error(result, "listeners[0].listen", 10, 5, "required key is missing"));
  EXPECT_TRUE(has_error(result, "backends[0].regions[0].endpoints[0].address", 32, 13,
                        "required key is missing"));
}

TEST(DuplicateKeys, SecondOccurrenceIsAnError) {
  auto result = load_with_both(R"(
workers: 1
drain_timeout: 5s
workers: 2
)");
  EXPECT_TRUE(
      has_only_error(result, "workers", 3, 1, "duplicate key \"workers\" (first at line 1)"));
}

TEST(DuplicateKeys, NestedMapping) {
  auto result = load_with_listeners(R"(
backends:
  - name: api
    name: api2
    regions: [{name: eu, location: {lat: 1, lon: 1}, endpoints: [{address: "127.0.0.1:1"}]}]
)");
  EXPECT_TRUE(has_only_error(result, "backends[0].name", 3, 5, "duplicate key \"name\""));
}

TEST(Types, MappingExpected) {
  auto result = load_with_both(R"(
node: edge-1
admin: [127.0.0.1:9901]
)");
  EXPECT_TRUE(has_error(result, "node", 1, 7, "expected a mapping, got \"edge-1\""));
  EXPECT_TRUE(has_error(result, "admin", 2, 8, "expected a mapping, got a sequence"));
  EXPECT_EQ(result.errors.size(), 2u) << all_errors(result);
}

TEST(Types, SequenceExpected) {
  auto result = load_with_backends(R"(
listeners: {name: public}
client_ip:
  trusted_proxies: 10.0.0.0/8
)");
  EXPECT_TRUE(has_error(result, "listeners", 1, 12, "expected a sequence, got a mapping"));
  EXPECT_TRUE(has_error(result, "client_ip.trusted_proxies", 3, 20,
                        "expected a sequence, got \"10.0.0.0/8\""));
  EXPECT_EQ(result.errors.size(), 2u) << all_errors(result);
}

TEST(Types, StringExpected) {
  auto result = load_with_backends(R"(
listeners:
  - name: {first: a}
    listen: [127.0.0.1, 80]
    routes:
      - name:
        backend: api
)");
  EXPECT_TRUE(has_error(result, "listeners[0].name", 2, 11, "expected a string, got a mapping"));
  EXPECT_TRUE(has_error(result, "listeners[0].listen", 3, 13, "expected a string, got a sequence"));
  // An empty value is null; its position is its key's.
  EXPECT_TRUE(
      has_error(result, "listeners[0].routes[0].name", 5, 9, "expected a string, got null"));
  EXPECT_EQ(result.errors.size(), 3u) << all_errors(result);
}

TEST(Types, NumbersAndBooleans) {
  auto result = load_with_both(R"(
workers: four
debug_headers: maybe
limits:
  max_request_headers: -5
  max_connections: 1.5
node:
  location: {lat: north, lon: 8}
)");
  EXPECT_TRUE(has_error(result, "workers", 1, 10, "expected a non-negative integer, got \"four\""));
  EXPECT_TRUE(has_error(result, "debug_headers", 2, 16, "expected true or false, got \"maybe\""));
  EXPECT_TRUE(has_error(result, "limits.max_request_headers", 4, 24,
                        "expected a non-negative integer, got \"-5\""));
  EXPECT_TRUE(has_error(result, "limits.max_connections", 5, 20,
                        "expected a non-negative integer, got \"1.5\""));
  EXPECT_TRUE(has_error(result, "node.location.lat", 7, 19, "expected a number, got \"north\""));
  EXPECT_EQ(result.errors.size(), 5u) << all_errors(result);
}

TEST(Types, IntegerRanges) {
  auto result = load_with_both(R"(
workers: 4294967296
limits:
  max_connections: 99999999999999999999999
)");
  EXPECT_TRUE(has_error(result, "workers", 1, 10, "must be at most 4294967295, got 4294967296"));
  EXPECT_TRUE(has_error(result, "limits.max_connections", 3, 20, "must be at most"));
  EXPECT_EQ(result.errors.size(), 2u) << all_errors(result);
}

TEST(Types, YamlBooleanSpellings) {
  auto result = load_with_both("debug_headers: yes\n");
  ASSERT_TRUE(is_ok(result));
  EXPECT_TRUE(result.config->debug_headers);
}

TEST(Types, EmptyListEntry) {
  auto result = load_with_listeners(R"(
backends:
  -
  - name: api
    regions: [{name: eu, location: {lat: 1, lon: 1}, endpoints: [{address: "127.0.0.1:1"}]}]
)");
  // yaml-cpp gives a bare "-" no position of its own; it reports the next entry's.
  ASSERT_EQ(result.errors.size(), 1u) << all_errors(result);
  EXPECT_EQ(result.errors[0].key, "backends[0]");
  EXPECT_EQ(result.errors[0].message, "empty list entry");
}

TEST(Aliases, AnchorsAreFollowed) {
  auto result = load(R"(
listeners:
  - name: public
    listen: 127.0.0.1:0
    routes:
      - &route {name: all, backend: api}
  - name: other
    listen: 127.0.0.1:0
    routes: [*route]
backends:
  - name: api
    regions: [{name: eu, location: {lat: 1, lon: 1}, endpoints: [{address: "127.0.0.1:1"}]}]
)");
  ASSERT_TRUE(is_ok(result));
  EXPECT_EQ(result.config->listeners.at(1).routes.at(0).name, "all");
}

TEST(ErrorOrder, AllErrorsInFileOrder) {
  // Errors found by later passes (unknown backend, location needed by the policy) sit
  // among the others by position, and nothing stops at the first error.
  auto result = load(R"(
backends:
  - name: api
    regions:
      - name: eu
        endpoints: [{address: 10.0.0.1}]
listeners:
  - name: public
    listen: 127.0.0.1:0
    routes:
      - {name: a, backend: nope}
workers: x
)");
  ASSERT_EQ(result.errors.size(), 4u) << all_errors(result);
  EXPECT_EQ(result.errors[0].to_string(),
            "test.yaml:4:9: backends[0].regions[0].location: required key is missing (steering "
            "policy nearest needs region locations)");
  EXPECT_EQ(result.errors[1].to_string(),
            "test.yaml:5:31: backends[0].regions[0].endpoints[0].address: expected host:port, "
            "got \"10.0.0.1\"");
  EXPECT_EQ(result.errors[2].to_string(),
            "test.yaml:10:28: listeners[0].routes[0].backend: backend \"nope\" does not exist");
  EXPECT_EQ(result.errors[3].to_string(),
            "test.yaml:11:10: workers: expected a non-negative integer, got \"x\"");
}

}  // namespace
}  // namespace meridian::config::test
