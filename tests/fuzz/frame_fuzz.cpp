// Fuzzes WebSocket frame and request body decoding: parse_object and every field
// reader the gateway runs on a frame. Must never crash, throw or leak, whatever
// the bytes.
#include "gateway/json_codec.hpp"

#include <cstddef>
#include <cstdint>

using namespace presence::gateway;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text{reinterpret_cast<const char*>(data), size};
  api_error err;
  auto j = parse_object(text, size % 2 == 0, &err);
  if (!j)
    return 0;
  fields f{*j, &err};
  std::string s;
  bool b = false;
  int64_t n = 0;
  auto sig = presence::actors::signal_kind::active;
  std::vector<std::string> ids;
  f.only({"op", "signal", "users", "rooms", "room", "visible", "session_id",
          "resume_token", "device", "to_user", "to_room", "kind", "ttl_ms", "note",
          "intent_id", "accept"});
  f.string("op", s, false);
  f.signal("signal", sig, false);
  f.id_list("users", ids, 1000);
  f.id_list("rooms", ids, 1000);
  f.id("room", s, false);
  f.boolean("visible", b, false);
  f.id("session_id", s, false);
  f.string("resume_token", s, false);
  f.integer("ttl_ms", n, false, 1, 86400000);
  f.boolean("accept", b, true);
  return 0;
}
