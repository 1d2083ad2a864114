// The durable records of each entity kind, as plain structs with no actor types
// in them (states and phases are their numeric values), and their conversion to
// and from the stored bytes (codec.hpp: a version byte, then MessagePack with
// short field names). Decoding checks every field's presence and type: a record
// that does not match is reported with a reason, never thrown. Pure and
// thread-safe.
#pragma once

#include "storage/store.hpp"

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace presence::storage {

/// A live session: its clocks, declared signal, device, resume-token hash and
/// the rooms it joined (with visibility). Key: the session id.
struct session_record {
  std::string session_id;
  std::string user_id;
  std::string device;
  std::string resume_hash; ///< SHA-256 of the resume token, 32 raw bytes
  int64_t last_signal_at = 0;
  int64_t last_active_at = 0;
  uint8_t declared = 0; ///< signal_kind
  bool ever_active = false;
  int64_t heartbeat_ms = 0; ///< the interval last issued
  std::vector<std::pair<std::string, bool>> rooms; ///< joined rooms, visible
};

/// A user: what must survive its sessions. Key: the user id.
struct user_record {
  std::string user_id;
  uint8_t published = 0; ///< state subscribers saw last
  uint64_t seq = 0;
  int64_t since = 0;
  int64_t last_active_at = 0;
  int64_t last_seen_at = 0;
};

/// A room's own attributes (its members are durable through the sessions that
/// joined it). Key: the room id.
struct room_record {
  std::string room_id;
  bool media_attached = false;
  uint8_t phase = 0; ///< room_phase, for hysteresis across a restart
  double momentum_rate = 0;
  int64_t momentum_at = 0;
};

/// One timeline sample of a room. Key: `timeline_key(room_id, t)`.
struct timeline_record {
  std::string room_id;
  int64_t t = 0;
  std::array<int64_t, 5> counts{};
  double readiness = 0;
  uint8_t phase = 0;
};

/// An intent, open or finished (kept readable until `retain_until`). Key: the
/// intent id.
struct intent_record {
  std::string intent_id;
  std::string from_user;
  std::string to_user;
  std::string to_room;
  std::string kind;
  std::string note;
  uint8_t status = 0; ///< intent_status
  int64_t created_at = 0;
  int64_t expires_at = 0;
  int64_t delivered_at = 0;
  int64_t ready_at = 0;
  int64_t retain_until = 0; ///< 0 while open
};

/// Any record; its kind and key follow from its type and fields.
using record = std::variant<session_record, user_record, room_record,
                            timeline_record, intent_record>;

kind kind_of(const record& r);
std::string key_of(const record& r);

/// The key of a timeline sample: room id, a zero byte, then `t` big-endian, so
/// that one room's samples are adjacent and in time order.
std::string timeline_key(std::string_view room_id, int64_t t);

/// The stored bytes of a record.
std::string encode_record(const record& r);

/// Decodes a record of kind `k`; on failure returns nothing and says why.
std::optional<record> decode_record(kind k, std::string_view bytes, std::string* why);

} // namespace presence::storage
