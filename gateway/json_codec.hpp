// The JSON shapes of PROTOCOL.md: views and events to JSON, and strict readers of
// request bodies and WebSocket frames that turn every malformed input into a
// protocol error (never an exception past this file). Pure and thread-safe.
#pragma once

#include "actors/messages.hpp"
#include "actors/router.hpp"
#include "cluster/membership.hpp"

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace presence::gateway {

using json = nlohmann::json;

/// The longest a pending leave (`after_ms` of a leave, 1.1) waits for a resume.
inline constexpr int64_t max_leave_after_ms = 10000;

/// A protocol error: HTTP status, `code` and `message`.
struct api_error {
  unsigned status = 400;
  std::string code;
  std::string message;
};

/// `{"error": {"code", "message"}}`.
json error_body(const api_error& e);

/// The protocol error for an actor's error (session_not_found -> 404, ...).
api_error from_actor_error(const caf::error& e);

json to_json(const actors::session_view& v);
json to_json(const actors::user_view& v);
json to_json(const actors::room_view& v);
json to_json(const actors::intent_view& v);
json to_json(const actors::timeline_sample& v);
json to_json(const actors::presence_event& e);
json to_json(const actors::room_event& e);
json to_json(const actors::room_delta& d);
json to_json(const actors::state_counts& c);
json to_json(const cluster::cluster_status& s);

/// GET /v1/rooms/{rid}/analytics (README "Room analytics").
json to_json(const actors::analytics::report& r);
/// GET /v1/users/{uid}/intents/analytics (README "Room analytics").
json to_json(const actors::analytics::user_intent_report& r);
/// A start_when rule as clients write it; null when no rule is set.
json to_json(const storage::start_when_rule& r);
json session_created(const actors::opened_session& s);
json signal_answer(const actors::signal_reply& r);

/// Parses a JSON object; an empty body is `{}` when `empty_ok`.
std::optional<json> parse_object(std::string_view body, bool empty_ok, api_error* err);

/// Strict field readers over a parsed object. Each returns false and fills `err`
/// when the field is present with a wrong type or value, or missing but required.
class fields {
public:
  fields(const json& obj, api_error* err) : obj_(obj), err_(err) {}

  bool string(const char* name, std::string& out, bool required);
  bool id(const char* name, std::string& out, bool required);
  bool boolean(const char* name, bool& out, bool required);
  bool integer(const char* name, int64_t& out, bool required, int64_t min,
               int64_t max);
  bool number(const char* name, double& out, bool required, double min, double max);
  bool signal(const char* name, actors::signal_kind& out, bool required);
  bool id_list(const char* name, std::vector<std::string>& out, size_t max);

  /// True if the field is present and not null.
  bool has(const char* name) const;

  /// Refuses fields other than `allowed`.
  bool only(std::initializer_list<const char*> allowed);

  /// Fails with an `invalid_field` error (for checks beyond the readers).
  bool fail(std::string code, std::string message);

private:
  const json& obj_;
  api_error* err_;
};

/// Reads the fields of an intent (to_user, to_room, kind, ttl_ms, note) into
/// `spec`, with their bounds; shared by `POST /v1/intents` and the `intent` op.
bool read_intent_spec(fields& f, actors::intent_spec& spec);

/// Reads a start_when rule (`readiness_at_least` in (0, 1],
/// `active_visible_members_at_least` in 1..1000000, at least one of them, and
/// `for_ms` in 0..3600000); unknown fields are refused. Shared by
/// `POST /v1/rooms/{rid}/start_when` and its tests.
bool read_start_when(fields& f, storage::start_when_rule& rule);

} // namespace presence::gateway
