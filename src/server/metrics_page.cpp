#include "meridian/server/metrics_page.hpp"

#include <sstream>
#include <utility>
#include <vector>

#include <prometheus/metric_family.h>
#include <prometheus/text_serializer.h>

#include "meridian/balancing/steering.hpp"
#include "meridian/proxy/mirror.hpp"

namespace meridian::server {

namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

using Labels = std::vector<ClientMetric::Label>;

MetricFamily family(std::string name, std::string help, MetricType type) {
  MetricFamily f;
  f.name = std::move(name);
  f.help = std::move(help);
  f.type = type;
  return f;
}

void add_counter(MetricFamily& f, Labels labels, double value) {
  ClientMetric m;
  m.label = std::move(labels);
  m.counter.value = value;
  f.metric.push_back(std::move(m));
}

void add_gauge(MetricFamily& f, Labels labels, double value) {
  ClientMetric m;
  m.label = std::move(labels);
  m.gauge.value = value;
  f.metric.push_back(std::move(m));
}

}  // namespace

std::string metrics_text(const proxy::Snapshot& snapshot, const metrics::Registry& registry,
                         const ProcessCounters& process) {
  const auto now = balancing::steady_now_ns();
  std::vector<MetricFamily> out;

  // Requests: every label set that has counted something, in any configuration generation
  // (a counter does not vanish with a reload).
  auto requests =
      family("meridian_http_requests_total",
             "Requests answered, by the status code sent to the client.", MetricType::Counter);
  auto durations = family("meridian_http_request_duration_seconds",
                          "Time from the first byte of the request to the last of the response.",
                          MetricType::Histogram);
  const auto& request_labels = registry.request_labels();
  for (std::size_t id = 0; id < request_labels.size(); ++id) {
    const auto totals = registry.request_totals(static_cast<metrics::SeriesId>(id));
    if (totals.count == 0) continue;
    const auto& l = request_labels[id];
    Labels base{
        {"listener", l.listener}, {"route", l.route}, {"backend", l.backend}, {"region", l.region}};
    for (const auto& [code, count] : totals.codes) {
      Labels labels = base;
      labels.push_back({"code", std::to_string(code)});
      add_counter(requests, std::move(labels), static_cast<double>(count));
    }
    ClientMetric m;
    m.label = base;
    m.histogram.sample_count = totals.count;
    m.histogram.sample_sum = totals.sum_seconds;
    std::uint64_t cumulative = 0;
    for (std::size_t b = 0; b < metrics::kDurationBuckets.size(); ++b) {
      cumulative += totals.buckets[b];
      m.histogram.bucket.push_back({cumulative, metrics::kDurationBuckets[b]});
    }
    m.histogram.bucket.push_back({totals.count, std::numeric_limits<double>::infinity()});
    durations.metric.push_back(std::move(m));
  }
  out.push_back(std::move(requests));
  out.push_back(std::move(durations));

  auto connections = family("meridian_downstream_connections_active", "Open client connections.",
                            MetricType::Gauge);
  const auto& listeners = registry.listener_labels();
  for (std::size_t id = 0; id < listeners.size(); ++id) {
    add_gauge(connections, {{"listener", listeners[id]}},
              static_cast<double>(registry.connections(static_cast<metrics::SeriesId>(id))));
  }
  out.push_back(std::move(connections));

  // TLS handshakes of the TLS listeners in force (counted since start, across reloads).
  auto handshakes = family("meridian_tls_handshakes_total",
                           "Client TLS handshakes: full, resumed (a ticket or session ID), or "
                           "failed (not completed).",
                           MetricType::Counter);
  for (const auto& l : snapshot.listeners) {
    if (!l.config->tls) continue;
    for (std::size_t r = 0; r < metrics::kTlsHandshakeResults; ++r) {
      const auto result = static_cast<metrics::TlsHandshake>(r);
      add_counter(handshakes,
                  {{"listener", l.config->name}, {"result", metrics::kTlsHandshakeNames[r]}},
                  static_cast<double>(registry.tls_handshakes(l.connections_series, result)));
    }
  }
  out.push_back(std::move(handshakes));

  // Endpoints and regions of the configuration in force.
  auto active = family("meridian_upstream_requests_active",
                       "Requests in flight to the endpoint, all workers.", MetricType::Gauge);
  auto healthy =
      family("meridian_endpoint_healthy",
             "1 when active health checks pass (or there are none), else 0.", MetricType::Gauge);
  auto latency = family("meridian_region_latency_seconds",
                        "Measured latency to the region: mean health-check RTT EWMA of its "
                        "healthy endpoints.",
                        MetricType::Gauge);
  auto checks = family("meridian_health_checks_total", "Active health check probes, by result.",
                       MetricType::Counter);
  auto admin_state = family("meridian_endpoint_admin_state",
                            "1 for the runtime state in force for the endpoint (POST /state on "
                            "it or its region): active, drain or disabled; 0 for the others.",
                            MetricType::Gauge);
  for (const auto& b : snapshot.backends) {
    for (const auto& r : b.regions) {
      const std::string& backend = b.config->name;
      const std::string& region = r.config->name;
      add_gauge(latency, {{"backend", backend}, {"region", region}},
                balancing::region_measured_ms(r, now) / 1000.0);
      for (const auto& e : r.endpoints) {
        Labels labels{{"backend", backend}, {"region", region}, {"endpoint", e->address}};
        add_gauge(active, labels,
                  static_cast<double>(e->in_flight.load(std::memory_order_relaxed)));
        add_gauge(healthy, labels, e->healthy.load(std::memory_order_relaxed) ? 1 : 0);
        const auto in_force = e->admin_state.load(std::memory_order_relaxed);
        for (const auto state : {balancing::AdminState::active, balancing::AdminState::drain,
                                 balancing::AdminState::disabled}) {
          Labels with_state = labels;
          with_state.push_back({"state", std::string(balancing::admin_state_name(state))});
          add_gauge(admin_state, std::move(with_state), state == in_force ? 1 : 0);
        }
        if (!b.config->health_check) continue;
        Labels ok = labels;
        ok.push_back({"result", "success"});
        add_counter(checks, std::move(ok),
                    static_cast<double>(e->checks_succeeded.load(std::memory_order_relaxed)));
        labels.push_back({"result", "failure"});
        add_counter(checks, std::move(labels),
                    static_cast<double>(e->checks_failed.load(std::memory_order_relaxed)));
      }
    }
  }
  out.push_back(std::move(active));
  out.push_back(std::move(healthy));
  out.push_back(std::move(latency));
  out.push_back(std::move(checks));
  out.push_back(std::move(admin_state));

  auto selected = family("meridian_region_selected_total",
                         "Requests steered to a region first, by reason.", MetricType::Counter);
  auto retries =
      family("meridian_upstream_retries_total",
             "Retries after a failed attempt in the region, by what failed.", MetricType::Counter);
  const auto& regions = registry.region_labels();
  for (std::size_t id = 0; id < regions.size(); ++id) {
    const auto sid = static_cast<metrics::SeriesId>(id);
    const auto& l = regions[id];
    for (std::size_t reason = 0; reason < metrics::kSelectReasons; ++reason) {
      add_counter(selected,
                  {{"backend", l.backend},
                   {"region", l.region},
                   {"reason", metrics::kSelectReasonNames[reason]}},
                  static_cast<double>(registry.selected(sid, reason)));
    }
    for (std::size_t reason = 0; reason < metrics::kRetryReasons; ++reason) {
      add_counter(
          retries,
          {{"backend", l.backend},
           {"region", l.region},
           {"reason", metrics::kRetryReasonNames[reason]}},
          static_cast<double>(registry.retries(sid, static_cast<metrics::RetryReason>(reason))));
    }
  }
  out.push_back(std::move(selected));
  out.push_back(std::move(retries));

  auto exhausted =
      family("meridian_upstream_retry_budget_exhausted_total",
             "Retries not made because the backend's retry budget was spent.", MetricType::Counter);
  for (const auto& b : snapshot.backends) {
    add_counter(exhausted, {{"backend", b.config->name}},
                static_cast<double>(b.retry_budget->exhausted.load(std::memory_order_relaxed)));
  }
  out.push_back(std::move(exhausted));

  auto dns = family("meridian_dns_resolutions_total",
                    "Lookups of endpoint names with `resolve`, by result.", MetricType::Counter);
  add_counter(dns, {{"result", "success"}}, static_cast<double>(process.dns_succeeded));
  add_counter(dns, {{"result", "failure"}}, static_cast<double>(process.dns_failed));
  out.push_back(std::move(dns));

  auto limited = family("meridian_rate_limited_total",
                        "Requests answered 429 by a route's rate limit.", MetricType::Counter);
  for (const auto& l : snapshot.listeners) {
    for (std::size_t i = 0; i < l.limits.size(); ++i) {
      if (!l.limits[i]) continue;
      add_counter(limited, {{"listener", l.config->name}, {"route", l.config->routes[i].name}},
                  static_cast<double>(l.limits[i]->limited.load(std::memory_order_relaxed)));
    }
  }
  out.push_back(std::move(limited));

  auto mirrors =
      family("meridian_mirror_requests_total",
             "Copies of requests for routes' mirror backends, by result.", MetricType::Counter);
  const auto& mirrored = proxy::mirror_counters();
  for (const auto& [result, counter] :
       {std::pair{"answered", &mirrored.answered}, std::pair{"failed", &mirrored.failed},
        std::pair{"too_large", &mirrored.too_large}, std::pair{"overflow", &mirrored.overflow}}) {
    add_counter(mirrors, {{"result", result}},
                static_cast<double>(counter->load(std::memory_order_relaxed)));
  }
  out.push_back(std::move(mirrors));

  auto reloads = family("meridian_config_reloads_total", "Configuration reloads, by result.",
                        MetricType::Counter);
  add_counter(reloads, {{"result", "success"}}, static_cast<double>(process.reloads_succeeded));
  add_counter(reloads, {{"result", "failure"}}, static_cast<double>(process.reloads_failed));
  out.push_back(std::move(reloads));
  auto generation =
      family("meridian_config_generation",
             "Generation of the configuration in force (1 at start-up).", MetricType::Gauge);
  add_gauge(generation, {}, static_cast<double>(process.generation));
  out.push_back(std::move(generation));
  auto dropped =
      family("meridian_access_log_dropped_total",
             "Access log lines dropped because the writer fell behind.", MetricType::Counter);
  add_counter(dropped, {}, static_cast<double>(process.access_log_dropped));
  out.push_back(std::move(dropped));
  auto build =
      family("meridian_build_info", "Always 1; the version is in the label.", MetricType::Gauge);
  add_gauge(build, {{"version", MERIDIAN_VERSION}}, 1);
  out.push_back(std::move(build));

  std::ostringstream text;
  prometheus::TextSerializer().Serialize(text, out);
  return text.str();
}

}  // namespace meridian::server
