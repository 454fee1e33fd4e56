// A FieldBlock as (name, value) pairs, for comparing whole blocks in tests.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "meridian/http/h2/codec.hpp"

namespace meridian::http::testing {

inline std::vector<std::pair<std::string, std::string>> fields_of(const h2::FieldBlock& b) {
  std::vector<std::pair<std::string, std::string>> v;
  for (std::size_t i = 0; i < b.size(); ++i)
    v.emplace_back(b.name(i), b.value(i));
  return v;
}

}  // namespace meridian::http::testing
