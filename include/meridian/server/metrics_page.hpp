// GET /metrics: every metric of docs/metrics.md in the Prometheus text format. The
// request-path counters come from the per-worker counters (metrics::Registry, summed here);
// gauges of endpoints and regions are read from the current snapshot's shared state; the
// process counters from the server. prometheus-cpp's TextSerializer writes the text, so the
// escaping and layout are the reference client's. Built on the main thread per scrape.
#pragma once

#include <cstdint>
#include <string>

#include "meridian/metrics/registry.hpp"
#include "meridian/proxy/snapshot.hpp"

namespace meridian::server {

struct ProcessCounters {
  std::uint64_t reloads_succeeded = 0;
  std::uint64_t reloads_failed = 0;
  std::uint64_t generation = 0;
  std::uint64_t access_log_dropped = 0;
  std::uint64_t dns_succeeded = 0;  // meridian_dns_resolutions_total{result}
  std::uint64_t dns_failed = 0;
};

std::string metrics_text(const proxy::Snapshot& snapshot, const metrics::Registry& registry,
                         const ProcessCounters& process);

}  // namespace meridian::server
