// A message's trailer section as it arrives (RFC 9110 6.5), for either codec: fields are
// copied as they come (the input they were parsed from is gone by the message's end) and
// made views once the section is complete. Bounded like a head.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "meridian/core/release_storage.hpp"
#include "meridian/http/message_head.hpp"

namespace meridian::http {

class TrailerFields {
 public:
  void clear() {
    store_.clear();
    lengths_.clear();
    fields_.clear();
  }
  // Clears, and frees the storage of a section larger than `keep` bytes.
  void trim(std::size_t keep) {
    clear();
    release_storage_over(store_, keep);
    release_storage_over(lengths_, keep);
    release_storage_over(fields_, keep);
  }
  // False when the field would take the section past `max_bytes` or `max_fields` (it is not
  // kept then).
  bool add(std::string_view name, std::string_view value, std::uint64_t max_bytes,
           std::uint32_t max_fields) {
    if (store_.size() + name.size() + value.size() > max_bytes ||
        lengths_.size() / 2 >= max_fields) {
      return false;
    }
    store_.append(name);
    store_.append(value);
    lengths_.push_back(static_cast<std::uint32_t>(name.size()));
    lengths_.push_back(static_cast<std::uint32_t>(value.size()));
    return true;
  }
  // The section is complete: fields() holds it (views valid until clear()).
  void finish() {
    const std::string_view store = store_;
    std::size_t at = 0;
    fields_.clear();
    for (std::size_t i = 0; i + 1 < lengths_.size(); i += 2) {
      const auto name = store.substr(at, lengths_[i]);
      const auto value = store.substr(at + name.size(), lengths_[i + 1]);
      fields_.push_back({name, value});
      at += name.size() + value.size();
    }
  }
  const std::vector<Field>& fields() const { return fields_; }

 private:
  std::string store_;                   // names and values back to back
  std::vector<std::uint32_t> lengths_;  // name and value length per field
  std::vector<Field> fields_;
};

}  // namespace meridian::http
