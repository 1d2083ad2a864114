#include "gateway/ws_ops.hpp"

namespace presence::gateway {

std::optional<ws_op> parse_ws_op(std::string_view text, api_error& err) {
  auto j = parse_object(text, false, &err);
  if (!j) {
    err.code = "invalid_frame"; // a frame that is no JSON object
    return std::nullopt;
  }
  auto op_it = j->find("op");
  if (op_it == j->end() || !op_it->is_string()) {
    err = {400, "invalid_frame", "every frame needs a string field 'op'"};
    return std::nullopt;
  }
  const auto op = op_it->get<std::string>();
  fields f{*j, &err};
  if (op == "hello") {
    ws_hello h;
    auto sig = actors::signal_kind::active;
    if (!f.only({"op", "session_id", "resume_token", "device", "signal", "token"})
        || !f.id("session_id", h.session_id, false)
        || !f.string("resume_token", h.resume_token, false)
        || !f.string("device", h.device, false) || !f.string("token", h.token, false)
        || !f.signal("signal", sig, false))
      return std::nullopt;
    if (h.device.size() > 128) {
      f.fail("invalid_field", "'device' is at most 128 bytes");
      return std::nullopt;
    }
    if (f.has("signal"))
      h.signal = sig;
    return h;
  }
  if (op == "signal") {
    ws_signal s;
    if (!f.only({"op", "signal"}) || !f.signal("signal", s.signal, true))
      return std::nullopt;
    return s;
  }
  if (op == "subscribe" || op == "unsubscribe") {
    ws_subscription s;
    s.subscribe = op == "subscribe";
    if (!f.only({"op", "users", "rooms"}) || !f.id_list("users", s.users, 1000)
        || !f.id_list("rooms", s.rooms, 1000))
      return std::nullopt;
    return s;
  }
  if (op == "join" || op == "leave_room") {
    ws_room_op r;
    r.join = op == "join";
    bool visible = true;
    if (!f.only({"op", "room", "visible"}) || !f.id("room", r.room, true)
        || !f.boolean("visible", visible, false))
      return std::nullopt;
    if (f.has("visible"))
      r.visible = visible;
    return r;
  }
  if (op == "intent") {
    ws_intent i;
    if (!f.only({"op", "to_user", "to_room", "kind", "ttl_ms", "note"})
        || !read_intent_spec(f, i.spec))
      return std::nullopt;
    return i;
  }
  if (op == "intent_reply") {
    ws_intent_reply r;
    if (!f.only({"op", "intent_id", "accept"}) || !f.id("intent_id", r.intent_id, true)
        || !f.boolean("accept", r.accept, true))
      return std::nullopt;
    return r;
  }
  if (op == "leave") {
    ws_leave l;
    if (!f.only({"op", "after_ms"})
        || !f.integer("after_ms", l.after_ms, false, 0, max_leave_after_ms))
      return std::nullopt;
    return l;
  }
  err = {400, "unknown_op", "unknown op '" + op + "'"};
  return std::nullopt;
}

} // namespace presence::gateway
