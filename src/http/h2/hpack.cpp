#include "meridian/http/h2/hpack.hpp"

#include <array>
#include <cstring>

#include "meridian/http/h2/codec.hpp"

namespace meridian::http::h2 {

namespace {

struct StaticField {
  std::string_view name, value;
};

// RFC 7541 Appendix A; index i + 1.
constexpr std::array<StaticField, 61> kStaticTable{{
    {":authority", ""},
    {":method", "GET"},
    {":method", "POST"},
    {":path", "/"},
    {":path", "/index.html"},
    {":scheme", "http"},
    {":scheme", "https"},
    {":status", "200"},
    {":status", "204"},
    {":status", "206"},
    {":status", "304"},
    {":status", "400"},
    {":status", "404"},
    {":status", "500"},
    {"accept-charset", ""},
    {"accept-encoding", "gzip, deflate"},
    {"accept-language", ""},
    {"accept-ranges", ""},
    {"accept", ""},
    {"access-control-allow-origin", ""},
    {"age", ""},
    {"allow", ""},
    {"authorization", ""},
    {"cache-control", ""},
    {"content-disposition", ""},
    {"content-encoding", ""},
    {"content-language", ""},
    {"content-length", ""},
    {"content-location", ""},
    {"content-range", ""},
    {"content-type", ""},
    {"cookie", ""},
    {"date", ""},
    {"etag", ""},
    {"expect", ""},
    {"expires", ""},
    {"from", ""},
    {"host", ""},
    {"if-match", ""},
    {"if-modified-since", ""},
    {"if-none-match", ""},
    {"if-range", ""},
    {"if-unmodified-since", ""},
    {"last-modified", ""},
    {"link", ""},
    {"location", ""},
    {"max-forwards", ""},
    {"proxy-authenticate", ""},
    {"proxy-authorization", ""},
    {"range", ""},
    {"referer", ""},
    {"refresh", ""},
    {"retry-after", ""},
    {"server", ""},
    {"set-cookie", ""},
    {"strict-transport-security", ""},
    {"transfer-encoding", ""},
    {"user-agent", ""},
    {"vary", ""},
    {"via", ""},
    {"www-authenticate", ""},
}};

// The Huffman code of RFC 7541 Appendix B is canonical (codes of one length are consecutive,
// in symbol order, and each length's first code follows the last of the shorter ones), so the
// code lengths alone define it. Symbol 256 is EOS.
constexpr std::array<std::uint8_t, 257> kCodeLength{
    13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 30, 28,
    28, 28, 28, 28, 28, 28, 28, 28, 6,  10, 10, 12, 13, 6,  8,  11, 10, 10, 8,  11, 8,  6,  6,  6,
    5,  5,  5,  6,  6,  6,  6,  6,  6,  6,  7,  8,  15, 6,  12, 10, 13, 6,  7,  7,  7,  7,  7,  7,
    7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  8,  7,  8,  13, 19, 13, 14, 6,
    15, 5,  6,  5,  6,  5,  6,  6,  6,  5,  7,  7,  6,  6,  6,  5,  6,  7,  6,  5,  5,  6,  7,  7,
    7,  7,  7,  15, 11, 14, 13, 28, 20, 22, 20, 20, 22, 22, 22, 23, 22, 23, 23, 23, 23, 23, 24, 23,
    24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24, 22, 21, 20, 22, 22, 23, 23, 21,
    23, 22, 22, 24, 21, 22, 23, 23, 21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22, 23, 22, 22, 23,
    26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25, 19, 21, 26, 27, 27, 26, 27, 24,
    21, 21, 26, 26, 28, 27, 27, 27, 20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23,
    26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26, 30};

constexpr int kShortestCode = 5;
constexpr int kLongestCode = 30;

// Canonical decoding: for each length, the first code and how many codes have it; the
// symbols in code order.
struct HuffmanTables {
  std::array<std::uint32_t, kLongestCode + 1> first{};
  std::array<std::uint32_t, kLongestCode + 1> count{};
  std::array<std::uint16_t, kLongestCode + 1> offset{};
  std::array<std::uint16_t, 257> symbols{};

  constexpr HuffmanTables() {
    std::uint16_t n = 0;
    std::uint32_t code = 0;
    for (int length = 1; length <= kLongestCode; ++length) {
      first[length] = code;
      offset[length] = n;
      for (int s = 0; s < 257; ++s) {
        if (kCodeLength[s] != length) continue;
        symbols[n++] = static_cast<std::uint16_t>(s);
        ++count[length];
      }
      code = (code + count[length]) << 1;
    }
  }
};

constexpr HuffmanTables kHuffman;
static_assert(kHuffman.first[kLongestCode] + kHuffman.count[kLongestCode] == (1u << 30),
              "the code lengths do not make a complete canonical code");

// An integer with an N-bit prefix (RFC 7541 5.1). Values past 2^35 are refused: nothing we
// accept is anywhere near that large.
bool read_integer(const std::uint8_t*& p, const std::uint8_t* end, int prefix_bits,
                  std::uint64_t& value) {
  const std::uint32_t mask = (1u << prefix_bits) - 1;
  value = *p++ & mask;
  if (value < mask) return true;
  for (int shift = 0; p < end && shift <= 28; shift += 7) {
    const std::uint8_t b = *p++;
    value += std::uint64_t{b & 0x7fu} << shift;
    if ((b & 0x80) == 0) return true;
  }
  return false;
}

void write_integer(std::string& out, std::uint8_t flags, int prefix_bits, std::uint64_t value) {
  const std::uint32_t mask = (1u << prefix_bits) - 1;
  if (value < mask) {
    out.push_back(static_cast<char>(flags | value));
    return;
  }
  out.push_back(static_cast<char>(flags | mask));
  value -= mask;
  while (value >= 128) {
    out.push_back(static_cast<char>((value & 0x7f) | 0x80));
    value >>= 7;
  }
  out.push_back(static_cast<char>(value));
}

void write_string(std::string& out, std::string_view s) {
  write_integer(out, 0x00, 7, s.size());
  out.append(s);
}

// A decoded string: in the input (or the table), or at `offset` in the scratch buffer, which
// may grow (and move) until every string of the field is read.
struct Piece {
  const char* data = nullptr;  // null: in scratch at offset
  std::size_t offset = 0;
  std::size_t length = 0;
  std::string_view view(const std::string& scratch) const {
    return data != nullptr ? std::string_view(data, length)
                           : std::string_view(scratch).substr(offset, length);
  }
};

bool read_string(const std::uint8_t*& p, const std::uint8_t* end, std::string& scratch,
                 Piece& piece) {
  if (p >= end) return false;
  const bool huffman = (*p & 0x80) != 0;
  std::uint64_t length = 0;
  if (!read_integer(p, end, 7, length) || length > static_cast<std::uint64_t>(end - p)) {
    return false;
  }
  if (huffman) {
    piece.data = nullptr;
    piece.offset = scratch.size();
    if (!huffman_decode(p, length, scratch)) return false;
    piece.length = scratch.size() - piece.offset;
  } else {
    piece.data = reinterpret_cast<const char*>(p);
    piece.length = length;
  }
  p += length;
  return true;
}

std::uint32_t name_hash(std::string_view name) {
  std::uint32_t h = 2166136261u;
  for (const char c : name)
    h = (h ^ static_cast<std::uint8_t>(c)) * 16777619u;
  return h;
}

// The static table's names, by hash (open addressing, linear probing): 128 slots for 52 names.
struct NameIndex {
  std::array<std::uint8_t, 128> slot{};
  NameIndex() {
    for (std::size_t i = 0; i < kStaticTable.size(); ++i) {
      if (i > 0 && kStaticTable[i].name == kStaticTable[i - 1].name) continue;
      std::uint32_t h = name_hash(kStaticTable[i].name) & 127;
      while (slot[h] != 0)
        h = (h + 1) & 127;
      slot[h] = static_cast<std::uint8_t>(i + 1);
    }
  }
};

// The static table's index of ":status: `value`" (8..14), or 0.
unsigned static_status_index(std::string_view value) {
  for (unsigned k = 8; k <= 14; ++k) {
    if (kStaticTable[k - 1].value == value) return k;
  }
  return 0;
}

}  // namespace

bool huffman_decode(const std::uint8_t* p, std::size_t n, std::string& out) {
  std::uint64_t bits = 0;  // the next bits, first one at the top
  int held = 0;
  std::size_t i = 0;
  while (true) {
    while (held <= 56 && i < n) {
      bits |= std::uint64_t{p[i++]} << (56 - held);
      held += 8;
    }
    if (held == 0) return true;
    int length = kShortestCode;
    // What is left may be padding: the most significant bits of EOS (all ones), under 8.
    const auto padding = [&] { return held < 8 && (bits >> (64 - held)) == (1u << held) - 1; };
    if (held < length) return padding();
    auto code = static_cast<std::uint32_t>(bits >> (64 - length));
    while (code - kHuffman.first[length] >= kHuffman.count[length]) {
      if (++length > held) return padding();
      code = static_cast<std::uint32_t>(bits >> (64 - length));
    }
    const auto symbol = kHuffman.symbols[kHuffman.offset[length] + code - kHuffman.first[length]];
    if (symbol == 256) return false;  // EOS inside a string (5.2)
    out.push_back(static_cast<char>(symbol));
    bits <<= length;
    held -= length;
  }
}

unsigned hpack_static_name_index(std::string_view name) {
  static const NameIndex index;
  for (std::uint32_t h = name_hash(name) & 127;; h = (h + 1) & 127) {
    const unsigned i = index.slot[h];
    if (i == 0) return 0;
    if (kStaticTable[i - 1].name == name) return i;
  }
}

void hpack_encode(const FieldBlock& fields, std::string& out) {
  for (std::size_t i = 0; i < fields.size(); ++i) {
    const auto name = fields.name(i);
    const auto value = fields.value(i);
    if (name == ":status") {
      if (const unsigned k = static_status_index(value); k != 0) {
        out.push_back(static_cast<char>(0x80 | k));  // the whole field indexed (6.1)
        continue;
      }
    }
    if (const unsigned k = hpack_static_name_index(name); k != 0) {
      write_integer(out, 0x00, 4, k);  // literal without indexing, indexed name (6.2.2)
    } else {
      out.push_back(0x00);  // ... new name
      write_string(out, name);
    }
    write_string(out, value);
  }
}

// ---------------------------------------------------------------------------------------
// Decoder

bool HpackDecoder::field(std::uint64_t index, std::string_view& name,
                         std::string_view& value) const {
  if (index == 0) return false;
  if (index <= kStaticTable.size()) {
    name = kStaticTable[index - 1].name;
    value = kStaticTable[index - 1].value;
    return true;
  }
  const std::uint64_t newest_first = index - kStaticTable.size() - 1;
  if (newest_first >= entries_.size() - first_) return false;
  const Entry& e = entries_[entries_.size() - 1 - newest_first];
  name = std::string_view(bytes_).substr(e.offset, e.name_length);
  value = std::string_view(bytes_).substr(e.offset + e.name_length, e.value_length);
  return true;
}

bool HpackDecoder::decode(const std::uint8_t* p, std::size_t n, FieldSink& sink) {
  const std::uint8_t* const end = p + n;
  bool fields_seen = false;
  while (p < end) {
    const std::uint8_t b = *p;
    std::string_view name, value;
    if ((b & 0x80) != 0) {  // indexed field (6.1)
      std::uint64_t index = 0;
      if (!read_integer(p, end, 7, index) || !field(index, name, value)) return false;
      sink.on_decoded(name, value);
      fields_seen = true;
      continue;
    }
    if ((b & 0xe0) == 0x20) {  // dynamic table size update (6.3): only before the fields
      std::uint64_t size = 0;
      if (fields_seen || !read_integer(p, end, 5, size) || size > limit_) return false;
      max_ = static_cast<std::uint32_t>(size);
      evict_to(max_);
      continue;
    }
    const bool index_it = (b & 0xc0) == 0x40;  // else without indexing or never indexed
    std::uint64_t index = 0;
    if (!read_integer(p, end, index_it ? 6 : 4, index)) return false;
    scratch_.clear();
    Piece name_piece, value_piece;
    if (index == 0) {
      if (!read_string(p, end, scratch_, name_piece)) return false;
    } else {
      if (!field(index, name, value)) return false;
      if (index > kStaticTable.size() && index_it) {
        // A name from the dynamic table, about to be inserted again: the insert may evict
        // or move what it points to.
        scratch_.append(name);
        name_piece = Piece{nullptr, 0, name.size()};
      } else {
        name_piece = Piece{name.data(), 0, name.size()};
      }
    }
    if (!read_string(p, end, scratch_, value_piece)) return false;
    name = name_piece.view(scratch_);
    value = value_piece.view(scratch_);
    sink.on_decoded(name, value);
    if (index_it) insert(name, value);
    fields_seen = true;
  }
  return true;
}

void HpackDecoder::evict_to(std::size_t target) {
  while (size_ > target && first_ < entries_.size()) {
    const Entry& e = entries_[first_++];
    size_ -= e.name_length + e.value_length + 32;
  }
  if (first_ == entries_.size()) {
    entries_.clear();
    bytes_.clear();
    first_ = 0;
    size_ = 0;
  }
}

void HpackDecoder::compact() {
  if (first_ == 0) return;
  const std::uint32_t start = entries_[first_].offset;
  bytes_.erase(0, start);
  entries_.erase(entries_.begin(), entries_.begin() + static_cast<std::ptrdiff_t>(first_));
  first_ = 0;
  for (auto& e : entries_)
    e.offset -= start;
}

void HpackDecoder::insert(std::string_view name, std::string_view value) {
  // `name` and `value` are in the input or in scratch_, never in bytes_ (see decode()).
  const std::size_t entry_size = name.size() + value.size() + 32;
  if (entry_size > max_) {
    evict_to(0);  // an entry larger than the table empties it and is not added (4.4)
    return;
  }
  evict_to(max_ - entry_size);
  // The evicted entries' bytes stay in front until they are as many as the live ones: each
  // byte is moved at most once per time it is inserted.
  if (first_ != 0 && entries_[first_].offset >= bytes_.size() - entries_[first_].offset) {
    compact();
  }
  entries_.push_back(Entry{static_cast<std::uint32_t>(bytes_.size()),
                           static_cast<std::uint32_t>(name.size()),
                           static_cast<std::uint32_t>(value.size())});
  bytes_.append(name);
  bytes_.append(value);
  size_ += entry_size;
}

void HpackDecoder::shrink() {
  compact();
  bytes_.shrink_to_fit();
  entries_.shrink_to_fit();
  std::string().swap(scratch_);
}

}  // namespace meridian::http::h2
