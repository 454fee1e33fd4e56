// The key paths a configuration file may contain, for tooling and for the test that keeps
// docs/configuration.md complete.
#pragma once

#include <string>
#include <vector>

namespace meridian::config {

// Every key the loader accepts, as a path from the top of the file with "[]" standing for
// any entry of a sequence: "workers", "listeners", "listeners[].routes[].rate_limit.burst".
// Keys that hold a mapping or a sequence are listed too, each before the keys inside it, in
// the order the loader's key lists give (depth first from the top level). Derived from the
// same per-mapping key lists the loader checks files against, so it cannot disagree with
// what a file may contain.
std::vector<std::string> accepted_key_paths();

}  // namespace meridian::config
