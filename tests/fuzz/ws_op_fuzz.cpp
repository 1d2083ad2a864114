// Fuzzes the WebSocket op interpreter (gateway/ws_ops.cpp): any bytes a client
// sends as a text frame become an op or a protocol error, never a crash, a throw
// or a leak.
#include "gateway/ws_ops.hpp"

#include <cstddef>
#include <cstdint>

using namespace presence::gateway;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text{reinterpret_cast<const char*>(data), size};
  api_error err;
  auto op = parse_ws_op(text, err);
  if (!op && (err.code.empty() || err.message.empty()))
    __builtin_trap(); // every refusal names its reason
  return 0;
}
