// docs/configuration.md is the configuration reference operators read. These tests keep it in
// step with the loader: every key the loader accepts has a row in one of its key tables, and
// no row names a key the loader would reject. The accepted keys come from
// accepted_key_paths(), which is built from the key lists the loader checks files against;
// the last test checks those paths against what the loader really reads.
#include <algorithm>
#include <fstream>
#include <set>
#include <sstream>

#include <yaml-cpp/yaml.h>

#include "meridian/config/schema.hpp"

#include "config_test_support.hpp"

namespace meridian::config::test {
namespace {

constexpr const char* kReference = MERIDIAN_SOURCE_DIR "/docs/configuration.md";

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

std::string trim(std::string_view text) {
  const auto begin = text.find_first_not_of(" \t");
  if (begin == std::string_view::npos) return "";
  const auto end = text.find_last_not_of(" \t");
  return std::string(text.substr(begin, end - begin + 1));
}

// The cells of a Markdown table row ("| a | b |" -> {"a", "b"}). Cells in the reference
// hold code spans and prose, never an escaped '|', so a plain split is enough.
std::vector<std::string> cells(std::string_view line) {
  std::vector<std::string> out;
  line.remove_prefix(1);  // the leading '|'
  std::size_t start = 0;
  for (std::size_t i = 0; i <= line.size(); ++i) {
    if (i == line.size() || line[i] == '|') {
      out.push_back(trim(line.substr(start, i - start)));
      start = i + 1;
    }
  }
  if (!out.empty() && out.back().empty()) out.pop_back();  // after the trailing '|'
  return out;
}

// The text of each `code span` in `text`.
std::vector<std::string> code_spans(std::string_view text) {
  std::vector<std::string> out;
  for (auto open = text.find('`'); open != std::string_view::npos;) {
    const auto close = text.find('`', open + 1);
    if (close == std::string_view::npos) break;
    out.emplace_back(text.substr(open + 1, close - open - 1));
    open = text.find('`', close + 1);
  }
  return out;
}

struct DocumentedKey {
  std::string path;
  int line;  // 1-based, for messages
};

// The keys the reference documents: the code spans in the first cell of the rows of every
// table whose header's first cell is "key". Other tables (value syntax, examples) and the
// prose do not count, so a key mentioned only in passing is not documented.
std::vector<DocumentedKey> documented_keys(const std::string& markdown) {
  std::vector<DocumentedKey> out;
  std::istringstream in(markdown);
  std::string line;
  int number = 0;
  enum { outside, header_seen, in_key_table, in_other_table } state = outside;
  while (std::getline(in, line)) {
    ++number;
    if (!line.starts_with('|')) {
      state = outside;
      continue;
    }
    const auto row = cells(line);
    switch (state) {
      case outside:
        state = !row.empty() && row[0] == "key" ? header_seen : in_other_table;
        break;
      case header_seen:  // the |---|---| line
        state = in_key_table;
        break;
      case in_key_table:
        if (!row.empty()) {
          for (auto& span : code_spans(row[0]))
            out.push_back({std::move(span), number});
        }
        break;
      case in_other_table:
        break;
    }
  }
  return out;
}

class ConfigReference : public ::testing::Test {
 protected:
  void SetUp() override {
    text_ = read_file(kReference);
    ASSERT_FALSE(text_.empty()) << "cannot read " << kReference;
    for (auto& key : documented_keys(text_))
      documented_.push_back(std::move(key));
    ASSERT_FALSE(documented_.empty()) << kReference << " has no table whose header is \"key\"";
  }

  std::string text_;
  std::vector<DocumentedKey> documented_;
};

TEST_F(ConfigReference, DocumentsEveryAcceptedKey) {
  std::set<std::string> documented;
  for (const auto& key : documented_)
    documented.insert(key.path);
  std::string missing;
  for (const auto& path : accepted_key_paths()) {
    if (!documented.contains(path)) missing += "\n  " + path;
  }
  EXPECT_TRUE(missing.empty())
      << "docs/configuration.md does not document these keys the loader accepts (give each a "
         "row in a table whose first column is \"key\", the full path in a code span, e.g. `"
         "listeners[].routes[].rate_limit.burst`):"
      << missing;
}

TEST_F(ConfigReference, DocumentsOnlyAcceptedKeys) {
  const auto accepted = accepted_key_paths();
  std::string unknown;
  for (const auto& key : documented_) {
    if (std::find(accepted.begin(), accepted.end(), key.path) == accepted.end()) {
      unknown += "\n  line " + std::to_string(key.line) + ": " + key.path;
    }
  }
  EXPECT_TRUE(unknown.empty())
      << "docs/configuration.md documents keys the loader does not accept (a file using them "
         "would be rejected as \"unknown key\"; planned keys belong outside the key tables):"
      << unknown;
}

TEST(AcceptedKeyPaths, ListsNestedKeysAfterTheKeyThatHoldsThem) {
  const auto paths = accepted_key_paths();
  const std::set<std::string> unique(paths.begin(), paths.end());
  EXPECT_EQ(unique.size(), paths.size()) << "a path is listed twice";
  for (std::string_view expected :
       {"workers", "node.location.lat", "listeners", "listeners[].tls.certificates[].key",
        "listeners[].routes[].rate_limit.burst", "limits.max_rate_limit_keys",
        "backends[].steering.rules[].match.country", "backends[].tls.server_name",
        "backends[].regions[].endpoints[].weight"}) {
    EXPECT_TRUE(unique.contains(std::string(expected))) << expected;
  }
  for (std::size_t i = 0; i < paths.size(); ++i) {
    // The parent of "a[].b" is "a", of "a.b" is "a".
    auto dot = paths[i].rfind('.');
    if (dot == std::string::npos) continue;
    std::string parent = paths[i].substr(0, dot);
    if (parent.ends_with("[]")) parent.resize(parent.size() - 2);
    const auto at = std::find(paths.begin(), paths.end(), parent);
    ASSERT_NE(at, paths.end()) << paths[i] << " has no parent " << parent;
    EXPECT_LT(at - paths.begin(), static_cast<std::ptrdiff_t>(i)) << paths[i];
  }
}

// A file that uses every key there is (path and path_prefix on two routes, as they exclude
// each other; the mapping form of backends[].tls).
constexpr std::string_view kEveryKey = R"(
node:
  name: edge-1
  location: {lat: 50.1, lon: 8.7}
workers: 2
drain_timeout: 10s
drain_grace: 5s
debug_headers: true
admin:
  listen: 127.0.0.1:0
  shared_state: redis
dns:
  servers: ["127.0.0.1:5353"]
geoip:
  database: ""
client_ip:
  trusted_proxies: [10.0.0.0/8]
access_log:
  path: off
  format: combined
limits:
  max_request_header_bytes: 32KiB
  max_request_headers: 50
  max_request_body_bytes: 1MiB
  header_timeout: 5s
  idle_timeout: 30s
  max_connections: 100
  max_rate_limit_keys: 1000
listeners:
  - name: public
    listen: 127.0.0.1:0
    proxy_protocol: v2
    tls:
      certificates:
        - {cert: {CERT}, key: {KEY}}
      min_version: "1.3"
      alpn: [http/1.1]
      ticket_keys: [{TICKET_KEY}]
    routes:
      - name: api
        match: {host: api.example.com, path_prefix: /api/, methods: [GET]}
        backend: api
        timeout: 5s
        retries: 1
        retry: {on: [connect, 503], per_try_timeout: 1s, budget: 25%, backoff: 10ms}
        rate_limit: {rate: 10/s, burst: 20, key: client_ip, scope: global}
      - name: exact
        match: {path: /exact, headers: {x-canary: "1"}, query: {debug: "1"}}
        backends: [{name: api, weight: 95}]
        mirror: {backend: cache, percent: 5%}
        headers:
          request: {set: {x-env: prod}, remove: [x-debug]}
          response: {set: {strict-transport-security: max-age=60}, remove: [server]}
      - name: to-https
        redirect: {scheme: https, host: "", path: /new, code: 308}
rate_limit_store:
  redis: 127.0.0.1:6379
  timeout: 50ms
  on_error: deny
backends:
  - name: api
    protocol: h2
    balance: random
    steering:
      policy: nearest
      geo_weight: 2
      latency_weight: 0.5
      rules:
        - match: {continent: EU, country: [DE]}
          regions: [eu]
          strict: true
    connect_timeout: 1s
    max_connections_per_endpoint: 10
    keepalive: {max_idle_per_endpoint: 8, idle_timeout: 30s}
    health_check:
      path: /health
      host: api.internal
      interval: 1s
      timeout: 500ms
      healthy_threshold: 1
      unhealthy_threshold: 2
      expected_status: 200-299
    outlier_detection: {consecutive_failures: 3, ejection_time: 10s}
    slow_start: 30s
    tls: {verify: false, ca: {CERT}, server_name: api.internal}
    regions:
      - name: eu
        location: {lat: 53.3, lon: -6.3}
        capacity: 100
        traffic_dial: 50%
        endpoints:
          - {address: 127.0.0.1:9000, weight: 2}
          - {address: "localhost:9001", resolve: {every: 30s}}
  - name: cache
    balance: maglev
    hash_key: header:x-user
    affinity: {cookie: aff, ttl: 30m}
    regions:
      - name: eu
        location: {lat: 53.3, lon: -6.3}
        endpoints: [{address: 127.0.0.1:9002}]
tracing:
  propagate: w3c
)";

// Mappings whose keys are the operator's own (header names, query parameters), not schema keys.
constexpr std::string_view kFreeMaps[] = {
    "listeners[].routes[].match.headers", "listeners[].routes[].match.query",
    "listeners[].routes[].headers.request.set", "listeners[].routes[].headers.response.set"};

// Every key path in `node` and below, with "[]" for sequence entries, as accepted_key_paths()
// writes them.
void collect_paths(const YAML::Node& node, const std::string& path, std::set<std::string>& out) {
  if (node.IsMap()) {
    for (const auto& entry : node) {
      const std::string child = (path.empty() ? "" : path + ".") + entry.first.Scalar();
      out.insert(child);
      if (std::find(std::begin(kFreeMaps), std::end(kFreeMaps), child) != std::end(kFreeMaps)) {
        continue;
      }
      collect_paths(entry.second, child, out);
    }
  } else if (node.IsSequence()) {
    for (const auto& item : node)
      collect_paths(item, path + "[]", out);
  }
}

// accepted_key_paths() comes from the schema table; this checks the table's paths against
// the loader itself. The file above loads, so the loader accepts each of its keys where it
// stands; and it uses exactly the keys accepted_key_paths() lists, so a path in the table
// that is not where the loader reads that mapping (or a key accepted but not listed) fails.
TEST(AcceptedKeyPaths, AreTheKeysTheLoaderReads) {
  TempFile cert("not parsed by the loader", ".pem");
  TempFile ticket_key(std::string(80, 'k'), ".key");  // a ticket key file is 80 bytes
  std::string text = substitute(yaml(kEveryKey), "CERT", cert.path());
  text = substitute(text, "KEY", cert.path());
  text = substitute(text, "TICKET_KEY", ticket_key.path());
  ASSERT_TRUE(is_ok(load_config_string(text, kFile)));

  std::set<std::string> used;
  collect_paths(YAML::Load(text), "", used);
  const auto paths = accepted_key_paths();
  const std::set<std::string> accepted(paths.begin(), paths.end());
  std::string only_used, only_listed;
  for (const auto& p : used) {
    if (!accepted.contains(p)) only_used += "\n  " + p;
  }
  for (const auto& p : accepted) {
    if (!used.contains(p)) only_listed += "\n  " + p;
  }
  EXPECT_TRUE(only_used.empty()) << "the loader accepts keys accepted_key_paths() does not list:"
                                 << only_used;
  EXPECT_TRUE(only_listed.empty())
      << "accepted_key_paths() lists keys the test file does not use (add them to kEveryKey):"
      << only_listed;
}

}  // namespace
}  // namespace meridian::config::test
