// Where the copying of a body's pieces (BodySlices) into frames stands: HTTP/2 DATA frames are
// filled from the pieces an exchange or a request hands over, a frame at a time, in both
// directions (H2Stream's response, an HTTP/2 upstream stream's request body).
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "meridian/http/h1/parser.hpp"

namespace meridian::http {

struct SliceCursor {
  std::size_t slice = 0;   // the piece being copied
  std::size_t offset = 0;  // ... and how far

  void rewind() { slice = offset = 0; }
  bool at_end(const BodySlices& pieces) const { return slice >= pieces.size(); }
  // Copies up to `max` bytes from where the cursor stands into `out`; returns how many.
  std::size_t copy(const BodySlices& pieces, std::uint8_t* out, std::size_t max) {
    std::size_t n = 0;
    while (slice < pieces.size() && n < max) {
      const auto piece = pieces[slice].substr(offset);
      const auto take = std::min(piece.size(), max - n);
      if (take != 0) std::memcpy(out + n, piece.data(), take);
      n += take;
      offset += take;
      if (offset == pieces[slice].size()) {
        ++slice;
        offset = 0;
      }
    }
    return n;
  }
};

}  // namespace meridian::http
