// The WebSocket ops of PROTOCOL.md as typed values: one text frame in, one op (or
// the protocol error to answer) out. Pure and thread-safe; the socket
// (server.cpp) only dispatches what this file accepted, and the fuzz target
// `ws_op_fuzz` feeds it arbitrary bytes.
#pragma once

#include "actors/messages.hpp"
#include "actors/router.hpp"
#include "gateway/json_codec.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace presence::gateway {

/// `hello`: opens (no session_id) or resumes a session; `token` (1.1)
/// authenticates a socket upgraded without one.
struct ws_hello {
  std::string session_id;
  std::string resume_token;
  std::string device;
  std::string token;
  std::optional<actors::signal_kind> signal; ///< none: a resume claims nothing
};

struct ws_signal {
  actors::signal_kind signal = actors::signal_kind::active;
};

/// `subscribe` / `unsubscribe`.
struct ws_subscription {
  bool subscribe = true;
  std::vector<std::string> users;
  std::vector<std::string> rooms;
};

/// `join` / `leave_room`.
struct ws_room_op {
  bool join = true;
  std::string room;
  std::optional<bool> visible; ///< none: visible unless a guest
};

/// `intent`: the spec without its sender (the socket's user).
struct ws_intent {
  actors::intent_spec spec;
};

struct ws_intent_reply {
  std::string intent_id;
  bool accept = false;
};

/// `leave`: ends the session, `after_ms` later unless it is resumed first (1.1).
struct ws_leave {
  int64_t after_ms = 0;
};

using ws_op = std::variant<ws_hello, ws_signal, ws_subscription, ws_room_op, ws_intent,
                           ws_intent_reply, ws_leave>;

/// Parses one text frame. On failure fills `err` (`invalid_frame`,
/// `invalid_field`, `unknown_op`, ...) and returns nothing.
std::optional<ws_op> parse_ws_op(std::string_view text, api_error& err);

} // namespace presence::gateway
