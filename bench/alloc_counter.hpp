// Heap allocations per benchmark iteration: a global operator new that counts (defined once,
// in alloc_counter.cpp, for the whole benchmark binary). Direct malloc calls from C libraries
// (libmaxminddb, hiredis) are not seen; the C++ data path allocates through new.
#pragma once

#include <cstdint>

#include <benchmark/benchmark.h>

namespace meridian::bench {

std::uint64_t allocations();

// Reports allocs/op for the iterations since it was made; construct it just before the
// benchmark loop and call done() after it.
class AllocationCounter {
 public:
  explicit AllocationCounter(benchmark::State& state) : state_(state), start_(allocations()) {}
  void done() {
    state_.counters["allocs/op"] = benchmark::Counter(static_cast<double>(allocations() - start_) /
                                                      static_cast<double>(state_.iterations()));
  }

 private:
  benchmark::State& state_;
  std::uint64_t start_;
};

}  // namespace meridian::bench
