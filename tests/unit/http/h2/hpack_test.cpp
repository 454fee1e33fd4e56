// HPACK (RFC 7541): the decoder against the RFC's own examples (Appendix C, with and without
// Huffman coding, and with evictions), against a model of the dynamic table over thousands of
// random fields, every decoding error the RFC names, the Huffman code over every octet, and
// the encoder's output read back.
#include "meridian/http/h2/hpack.hpp"

#include <deque>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "meridian/http/h2/codec.hpp"

namespace meridian::http::h2 {
namespace {

using Fields = std::vector<std::pair<std::string, std::string>>;

struct Collect final : FieldSink {
  Fields fields;
  void on_decoded(std::string_view n, std::string_view v) override {
    fields.emplace_back(std::string(n), std::string(v));
  }
};

std::string hex(std::string_view h) {
  std::string out;
  for (std::size_t i = 0; i + 1 < h.size(); i += 2) {
    out.push_back(static_cast<char>(std::stoi(std::string(h.substr(i, 2)), nullptr, 16)));
  }
  return out;
}

// An HPACK integer with an N-bit prefix after `flags` (RFC 7541 5.1).
std::string integer(std::uint8_t flags, int prefix_bits, std::size_t value) {
  const std::size_t mask = (std::size_t{1} << prefix_bits) - 1;
  if (value < mask) return std::string(1, static_cast<char>(flags | value));
  std::string out(1, static_cast<char>(flags | mask));
  value -= mask;
  for (; value >= 128; value >>= 7)
    out.push_back(static_cast<char>((value & 0x7f) | 0x80));
  out.push_back(static_cast<char>(value));
  return out;
}

bool decode(HpackDecoder& d, const std::string& block, Fields* out = nullptr) {
  Collect c;
  const bool ok = d.decode(reinterpret_cast<const std::uint8_t*>(block.data()), block.size(), c);
  if (out != nullptr) *out = c.fields;
  return ok;
}

const Fields kRequest1{
    {":method", "GET"}, {":scheme", "http"}, {":path", "/"}, {":authority", "www.example.com"}};
const Fields kRequest2{{":method", "GET"},
                       {":scheme", "http"},
                       {":path", "/"},
                       {":authority", "www.example.com"},
                       {"cache-control", "no-cache"}};
const Fields kRequest3{{":method", "GET"},
                       {":scheme", "https"},
                       {":path", "/index.html"},
                       {":authority", "www.example.com"},
                       {"custom-key", "custom-value"}};

TEST(Hpack, RequestExamplesWithoutHuffman) {  // RFC 7541 C.3
  HpackDecoder d;
  Fields f;
  ASSERT_TRUE(decode(d, hex("828684410f7777772e6578616d706c652e636f6d"), &f));
  EXPECT_EQ(f, kRequest1);
  EXPECT_EQ(d.table_size(), 57u);
  ASSERT_TRUE(decode(d, hex("828684be58086e6f2d6361636865"), &f));
  EXPECT_EQ(f, kRequest2);
  EXPECT_EQ(d.table_size(), 110u);
  ASSERT_TRUE(decode(d, hex("828785bf400a637573746f6d2d6b65790c637573746f6d2d76616c7565"), &f));
  EXPECT_EQ(f, kRequest3);
  EXPECT_EQ(d.table_size(), 164u);
  EXPECT_EQ(d.table_entries(), 3u);
}

TEST(Hpack, RequestExamplesWithHuffman) {  // RFC 7541 C.4
  HpackDecoder d;
  Fields f;
  ASSERT_TRUE(decode(d, hex("828684418cf1e3c2e5f23a6ba0ab90f4ff"), &f));
  EXPECT_EQ(f, kRequest1);
  ASSERT_TRUE(decode(d, hex("828684be5886a8eb10649cbf"), &f));
  EXPECT_EQ(f, kRequest2);
  ASSERT_TRUE(decode(d, hex("828785bf408825a849e95ba97d7f8925a849e95bb8e8b4bf"), &f));
  EXPECT_EQ(f, kRequest3);
  EXPECT_EQ(d.table_size(), 164u);
}

TEST(Hpack, ResponseExamplesEvictFromASmallTable) {  // RFC 7541 C.5, table size 256
  HpackDecoder d(256);
  Fields f;
  const std::string date = "611d4d6f6e2c203231204f637420323031332032303a31333a";  // ...13:
  ASSERT_TRUE(decode(d,
                     hex("4803333032580770726976617465" + date +
                         "323120474d546e1768747470733a2f2f7777772e6578616d706c652e636f6d"),
                     &f));
  EXPECT_EQ(f, (Fields{{":status", "302"},
                       {"cache-control", "private"},
                       {"date", "Mon, 21 Oct 2013 20:13:21 GMT"},
                       {"location", "https://www.example.com"}}));
  EXPECT_EQ(d.table_size(), 222u);
  ASSERT_TRUE(decode(d, hex("4803333037c1c0bf"), &f));  // evicts ":status: 302"
  EXPECT_EQ(f[0], (std::pair<std::string, std::string>{":status", "307"}));
  EXPECT_EQ(f[3], (std::pair<std::string, std::string>{"location", "https://www.example.com"}));
  EXPECT_EQ(d.table_size(), 222u);
  ASSERT_TRUE(decode(d,
                     hex("88c1" + date +
                         "323220474d54c05a04677a69707738666f6f3d4153444a4b48514b425a584f515745"
                         "4f"
                         "50495541585157454f49553b206d61782d6167653d333630303b2076657273696f6e"
                         "3d31"),
                     &f));
  EXPECT_EQ(f,
            (Fields{{":status", "200"},
                    {"cache-control", "private"},
                    {"date", "Mon, 21 Oct 2013 20:13:22 GMT"},
                    {"location", "https://www.example.com"},
                    {"content-encoding", "gzip"},
                    {"set-cookie", "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1"}}));
  EXPECT_EQ(d.table_size(), 215u);
  EXPECT_EQ(d.table_entries(), 3u);
}

// The canonical Huffman code, rebuilt here from RFC 7541 Appendix B's code lengths.
std::string huffman_encode(std::string_view s) {
  static const auto codes = [] {
    // Lengths of symbols 0..256 in the RFC's table; codes of one length are consecutive.
    const int lengths[257] = {
        13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28,
        30, 28, 28, 28, 28, 28, 28, 28, 28, 28, 6,  10, 10, 12, 13, 6,  8,  11, 10, 10, 8,  11,
        8,  6,  6,  6,  5,  5,  5,  6,  6,  6,  6,  6,  6,  6,  7,  8,  15, 6,  12, 10, 13, 6,
        7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,
        8,  7,  8,  13, 19, 13, 14, 6,  15, 5,  6,  5,  6,  5,  6,  6,  6,  5,  7,  7,  6,  6,
        6,  5,  6,  7,  6,  5,  5,  6,  7,  7,  7,  7,  7,  15, 11, 14, 13, 28, 20, 22, 20, 20,
        22, 22, 22, 23, 22, 23, 23, 23, 23, 23, 24, 23, 24, 24, 22, 23, 24, 23, 23, 23, 23, 21,
        22, 23, 22, 23, 23, 24, 22, 21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23,
        21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22, 23, 22, 22, 23, 26, 26, 20, 19, 22, 23,
        22, 25, 26, 26, 26, 27, 27, 26, 24, 25, 19, 21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26,
        28, 27, 27, 27, 20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23, 26, 27,
        26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26, 30};
    std::vector<std::pair<std::uint32_t, int>> c(257);
    std::uint32_t code = 0;
    for (int len = 1; len <= 30; ++len) {
      for (int sym = 0; sym < 257; ++sym) {
        if (lengths[sym] == len) c[static_cast<std::size_t>(sym)] = {code++, len};
      }
      code <<= 1;
    }
    return c;
  }();
  std::string out;
  std::uint64_t bits = 0;
  int n = 0;
  for (const char ch : s) {
    const auto [code, len] = codes[static_cast<std::uint8_t>(ch)];
    bits = bits << len | code;
    n += len;
    while (n >= 8) {
      out.push_back(static_cast<char>(bits >> (n - 8)));
      n -= 8;
    }
  }
  if (n > 0) out.push_back(static_cast<char>(bits << (8 - n) | ((1u << (8 - n)) - 1)));
  return out;
}

TEST(Hpack, HuffmanCodeRoundTripsEveryOctet) {
  // The RFC's example string first (C.4.1's authority), then every octet, alone and in a run.
  EXPECT_EQ(huffman_encode("www.example.com"), hex("f1e3c2e5f23a6ba0ab90f4ff"));
  std::string all;
  for (int c = 0; c < 256; ++c) {
    const std::string one(1, static_cast<char>(c));
    std::string decoded;
    const auto coded = huffman_encode(one);
    ASSERT_TRUE(
        huffman_decode(reinterpret_cast<const std::uint8_t*>(coded.data()), coded.size(), decoded))
        << c;
    EXPECT_EQ(decoded, one) << c;
    all += one;
  }
  const auto coded = huffman_encode(all + all);
  std::string decoded;
  ASSERT_TRUE(
      huffman_decode(reinterpret_cast<const std::uint8_t*>(coded.data()), coded.size(), decoded));
  EXPECT_EQ(decoded, all + all);
}

TEST(Hpack, HuffmanErrorsAreRefused) {  // RFC 7541 5.2
  const auto bad = [](const std::string& coded) {
    std::string out;
    return !huffman_decode(reinterpret_cast<const std::uint8_t*>(coded.data()), coded.size(), out);
  };
  EXPECT_TRUE(bad(hex("ffffffff")));                    // EOS (30 ones) inside the string
  EXPECT_TRUE(bad(hex("f1e3c2e5f23a6ba0ab90f4ffff")));  // padding of 8+ bits
  EXPECT_TRUE(bad(hex("00")));   // '0' (00000) then padding 000: not the EOS prefix
  EXPECT_FALSE(bad(hex("1f")));  // '0' then 111: valid padding
}

TEST(Hpack, DecodingErrorsAreCompressionErrors) {
  const auto fails = [](const std::string& block, std::uint32_t table = 4096) {
    HpackDecoder d(table);
    return !decode(d, block);
  };
  EXPECT_TRUE(fails(hex("80")));                // index 0 (6.1)
  EXPECT_TRUE(fails(hex("be")));                // index 62 with an empty dynamic table (2.3.3)
  EXPECT_TRUE(fails(hex("ff80808080808001")));  // an integer past 2^35
  EXPECT_TRUE(fails(hex("ff")));                // an integer cut short
  EXPECT_TRUE(fails(hex("4005") + "ab"));       // a string longer than the block
  EXPECT_TRUE(fails(hex("3fa13e")));            // size update to 8000 > SETTINGS (6.3)
  EXPECT_TRUE(fails(hex("823f01")));            // size update after a field (4.2)
  EXPECT_TRUE(fails(hex("3f01"), 0));           // size update past a SETTINGS of 0
  EXPECT_FALSE(fails(hex("3fa13e"), 8192));     // ... 8000 under a SETTINGS of 8192
  EXPECT_FALSE(fails(hex("2082")));             // size update to 0 first, then a field
}

TEST(Hpack, SizeUpdateEvictsAndLimitsLaterInserts) {
  HpackDecoder d;
  ASSERT_TRUE(decode(d, hex("828684410f7777772e6578616d706c652e636f6d")));
  EXPECT_EQ(d.table_entries(), 1u);
  ASSERT_TRUE(decode(d, hex("20")));  // size 0: everything goes
  EXPECT_EQ(d.table_entries(), 0u);
  EXPECT_FALSE(decode(d, hex("be")));  // the evicted entry is gone
  HpackDecoder e;
  ASSERT_TRUE(decode(e, hex("3f19") + hex("400a637573746f6d2d6b65790c637573746f6d2d76616c7565")));
  EXPECT_EQ(e.table_size(), 54u);                   // size 56 holds the 54-byte entry
  ASSERT_TRUE(decode(e, hex("4003616161026262")));  // a 37-byte entry evicts it
  EXPECT_EQ(e.table_entries(), 1u);
  EXPECT_EQ(e.table_size(), 37u);
}

// The dynamic table against a model: thousands of random inserts of random sizes (many
// evictions and compactions), each followed by a reference to a random live entry.
TEST(Hpack, DynamicTableMatchesAModelThroughEvictionsAndCompaction) {
  HpackDecoder d(1024);
  std::deque<std::pair<std::string, std::string>> model;  // newest first
  std::size_t model_size = 0;
  std::uint64_t rng = 12345;
  const auto next = [&rng] {
    rng = rng * 6364136223846793005ull + 1442695040888963407ull;
    return static_cast<std::uint32_t>(rng >> 33);
  };
  for (int round = 0; round < 5000; ++round) {
    std::string name = std::to_string(next() % 50);
    name.insert(0, 1, 'n');
    std::string value(next() % 120, static_cast<char>('a' + next() % 26));
    std::string block;
    if (next() % 4 == 0 && !model.empty()) {
      // Incremental indexing with a name taken from the dynamic table.
      const std::size_t i = next() % model.size();
      name = model[i].first;
      block = integer(0x40, 6, 62 + i);
    } else {
      block.push_back(0x40);
      block.push_back(static_cast<char>(name.size()));
      block += name;
    }
    block.push_back(static_cast<char>(value.size()));
    block += value;
    Fields f;
    ASSERT_TRUE(decode(d, block, &f)) << round;
    ASSERT_EQ(f.size(), 1u);
    EXPECT_EQ(f[0].first, name);
    const std::size_t size = name.size() + value.size() + 32;
    model.emplace_front(name, value);
    model_size += size;
    while (model_size > 1024) {
      model_size -= model.back().first.size() + model.back().second.size() + 32;
      model.pop_back();
    }
    ASSERT_EQ(d.table_size(), model_size) << round;
    ASSERT_EQ(d.table_entries(), model.size()) << round;
    const std::size_t i = next() % model.size();
    ASSERT_TRUE(decode(d, integer(0x80, 7, 62 + i), &f)) << round;
    ASSERT_EQ(f.size(), 1u);
    EXPECT_EQ(f[0], model[i]) << round;
    if (round % 1000 == 999) d.shrink();  // an idle connection's shrink keeps the entries
  }
}

TEST(Hpack, EncoderUsesTheStaticTableAndNeverIndexes) {
  FieldBlock b;
  b.add_status(200);
  b.add_status(503);
  b.add("content-type", "text/plain");
  b.add("x-request-id", std::string(200, 'r'));
  std::string out;
  hpack_encode(b, out);
  EXPECT_EQ(static_cast<std::uint8_t>(out[0]), 0x88);  // :status 200, fully indexed
  EXPECT_EQ(out.substr(1, 5), hex("0803") + "503");    // :status by name, literal value
  HpackDecoder d;
  Fields f;
  ASSERT_TRUE(decode(d, out, &f));
  EXPECT_EQ(f, (Fields{{":status", "200"},
                       {":status", "503"},
                       {"content-type", "text/plain"},
                       {"x-request-id", std::string(200, 'r')}}));
  EXPECT_EQ(d.table_entries(), 0u);  // nothing for the client to keep
}

TEST(Hpack, StaticNameIndex) {
  EXPECT_EQ(hpack_static_name_index(":authority"), 1u);
  EXPECT_EQ(hpack_static_name_index(":status"), 8u);  // the first of its entries
  EXPECT_EQ(hpack_static_name_index("content-type"), 31u);
  EXPECT_EQ(hpack_static_name_index("www-authenticate"), 61u);
  EXPECT_EQ(hpack_static_name_index("x-custom"), 0u);
  EXPECT_EQ(hpack_static_name_index(""), 0u);
}

}  // namespace
}  // namespace meridian::http::h2
