// libFuzzer target: the HTTP/2 codecs on bytes alone (http::h2::ServerCodec, our own, and
// http::h2::ClientCodec over nghttp2), either side. The first
// input byte picks the role and how the rest is cut into reads; a server's input follows
// the client preface. The owner behind the codec answers every request with a body and
// trailers, consumes what it receives, resets a stream now and then, and drains the output
// after each read -- so the frame inspector, the stream history and nghttp2's state machine
// all see hostile input. No crash, no leak, no sanitizer report.
#include <cstdint>
#include <cstring>
#include <map>
#include <string>
#include <string_view>
#include <type_traits>

#include "meridian/http/h2/codec.hpp"
#include "meridian/http/h2/server_codec.hpp"

using namespace meridian::http::h2;

namespace {

constexpr std::string_view kPreface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

struct Stream {
  std::int32_t id = 0;
  std::size_t body_left = 0;
  bool deferred_once = false;
};

template <class C>
class Owner final : public Events {
 public:
  Owner() : codec(*this, Settings{}) {}

  bool on_stream_open(std::int32_t id) override {
    if (streams.size() >= 8) return false;
    auto& s = streams[id];
    s.id = id;
    codec.set_user(id, &s);
    return true;
  }
  void on_field(void*, Block, std::string_view, std::string_view) override {}
  void on_block_end(void* user, Block block, bool end_stream) override {
    auto& s = *static_cast<Stream*>(user);
    if (block == Block::request && end_stream) answer(s);
  }
  void on_data(void* user, const std::uint8_t*, std::size_t n) override {
    auto& s = *static_cast<Stream*>(user);
    codec.consume(s.id, n);
    if (n % 7 == 3) codec.reset(s.id, kCancel);
    if (n % 11 == 5) codec.go_away(kNoError, true);
  }
  void on_end_stream(void* user) override { answer(*static_cast<Stream*>(user)); }
  void on_sent_end(void*) override {}
  void on_peer_reset(void*, std::uint32_t) override {}
  void on_stream_closed(void* user, std::uint32_t) override {
    streams.erase(static_cast<Stream*>(user)->id);
  }
  Pull pull(void* user, std::uint8_t* buffer, std::size_t max) override {
    auto& s = *static_cast<Stream*>(user);
    Pull p;
    if (!s.deferred_once && s.body_left > 1000) {
      s.deferred_once = true;  // nothing yet: resume() after the next read
      p.deferred = true;
      return p;
    }
    p.length = std::min(max, s.body_left);
    std::memset(buffer, 'b', p.length);
    s.body_left -= p.length;
    if (s.body_left == 0) {
      FieldBlock t;
      t.add("grpc-status", "0");
      codec.submit_trailers(s.id, t);
      p.end = true;
      p.trailers = true;
    }
    return p;
  }

  void answer(Stream& s) {
    if constexpr (std::is_same_v<C, ServerCodec>) {
      FieldBlock head;
      head.add_status(200);
      head.add("content-type", "text/plain");
      s.body_left = 100 + static_cast<std::size_t>(s.id % 5) * 7000;
      codec.submit_response(s.id, head, true);
    }
  }

  C codec;
  std::map<std::int32_t, Stream> streams;
};

template <class C>
void run(const std::uint8_t* data, std::size_t size, std::size_t cut) {
  constexpr bool client = std::is_same_v<C, ClientCodec>;
  Owner<C> owner;
  if (!owner.codec.ok()) return;
  Stream request;
  if constexpr (client) {
    FieldBlock fields;
    fields.add(":method", "GET");
    fields.add(":scheme", "https");
    fields.add(":authority", "fuzz.test");
    fields.add(":path", "/");
    request.id = owner.codec.submit_request(fields, false, &request);
  }
  std::string input = client ? std::string() : std::string(kPreface);
  input.append(reinterpret_cast<const char*>(data), size);
  std::string out;
  for (std::size_t at = 0; at < input.size(); at += cut) {
    const auto n = std::min(cut, input.size() - at);
    const auto r = owner.codec.feed(reinterpret_cast<const std::uint8_t*>(input.data() + at), n);
    out.clear();
    if (!owner.codec.produce(out, 1 << 20)) break;
    if (r != Feed::ok) break;
    // Between reads a connection with nothing open gives its buffers back (the codec does
    // nothing while a stream is open); it must stay usable. Deferred bodies go on.
    owner.codec.release_idle_memory();
    for (const auto& [id, stream] : owner.streams)
      owner.codec.resume(id);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const bool client = (data[0] & 1) != 0;
  const std::size_t cut = 1 + (data[0] >> 1);  // read size
  if (client) {
    run<ClientCodec>(data + 1, size - 1, cut);
  } else {
    run<ServerCodec>(data + 1, size - 1, cut);
  }
  return 0;
}
