// Pooled and reused objects keep their containers' capacity from one use to the next; one
// unusually large use must not pin that much memory for good. release_storage_over frees a
// string's or vector's storage when it holds more than `keep_bytes`, and leaves it otherwise.
#pragma once

#include <cstddef>

namespace meridian {

template <typename Container>
void release_storage_over(Container& c, std::size_t keep_bytes) {
  if (c.capacity() * sizeof(typename Container::value_type) > keep_bytes) Container().swap(c);
}

}  // namespace meridian
