// HPACK (RFC 7541) for the server side of HTTP/2: a decoder for the client's header blocks,
// with the dynamic table the client's encoder fills, and an encoder for our responses.
//
// The decoder keeps its dynamic table as compactly as the fields in it: names and values back
// to back in one buffer that grows with what the client indexes (a browser's few hundred
// bytes, not the 4 KiB the table may hold), so an idle connection keeps only that.
//
// The encoder uses the static table and never indexes: a field whose name is in the static
// table is sent as that index and a literal value, any other as two literals, neither Huffman
// coded. That is what HAProxy's encoder does; it costs a few bytes per response against
// indexing, saves the CPU of Huffman coding and a second table per connection, and the
// client's decoder never has to evict for us.
//
// Thread: one owner.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace meridian::http::h2 {

class FieldBlock;

// Where decoded fields go. The views are valid during the call only.
class FieldSink {
 public:
  virtual void on_decoded(std::string_view name, std::string_view value) = 0;

 protected:
  ~FieldSink() = default;
};

class HpackDecoder {
 public:
  // `max_table`: SETTINGS_HEADER_TABLE_SIZE as we announced it (RFC 7541 4.2: the client's
  // size updates may not exceed it).
  explicit HpackDecoder(std::uint32_t max_table = 4096) : limit_(max_table), max_(max_table) {}

  // Decodes one complete header block. False: a decoding error (the connection's
  // COMPRESSION_ERROR), after which the decoder is unusable.
  bool decode(const std::uint8_t* p, std::size_t n, FieldSink& sink);

  // Gives back the storage the table does not use (an idle connection).
  void shrink();

  // For tests.
  std::size_t table_size() const { return size_; }
  std::size_t table_entries() const { return entries_.size() - first_; }

 private:
  struct Entry {
    std::uint32_t offset;  // into bytes_
    std::uint32_t name_length;
    std::uint32_t value_length;
  };
  bool field(std::uint64_t index, std::string_view& name, std::string_view& value) const;
  void insert(std::string_view name, std::string_view value);
  void evict_to(std::size_t target);
  void compact();

  std::uint32_t limit_;   // the largest size the client may choose
  std::uint32_t max_;     // the size the client chose
  std::size_t size_ = 0;  // RFC 7541 4.1: name + value + 32 per entry
  std::string bytes_;     // entries' names and values, oldest first from entries_[first_]
  std::vector<Entry> entries_;
  std::size_t first_ = 0;  // entries_[first_] is the oldest entry still in the table
  std::string scratch_;    // Huffman-decoded strings, a name copied before an insert
};

// Decodes a Huffman-coded string (RFC 7541 5.2, Appendix B), appending to `out`. False: the
// code is invalid (EOS, or padding longer than 7 bits or not all ones).
bool huffman_decode(const std::uint8_t* p, std::size_t n, std::string& out);

// Appends the block in HPACK to `out` (see the header for how it is encoded).
void hpack_encode(const FieldBlock& fields, std::string& out);

// The static table's index of a field with this name (RFC 7541 Appendix A), or 0.
unsigned hpack_static_name_index(std::string_view name);

}  // namespace meridian::http::h2
