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

/// One bucket of a room's analytics: `rooms.analytics_bucket_ms` wide, aligned
/// to the epoch. Time is counted only while someone is present (empty time is
/// the rest of the bucket); readiness min and max are over values the room held
/// for at least 1 ms.
struct analytics_bucket {
  int64_t t = 0;              ///< start
  double readiness_min = 0;
  double readiness_max = 0;
  double readiness_ms = 0;    ///< readiness integrated over present time (x ms)
  std::array<int64_t, 4> phase_ms{}; ///< ms per room_phase (empty stays 0)
  int64_t joins = 0;
  int64_t leaves = 0;
  int64_t left_before_ready = 0; ///< leaves that never saw the room ready
  int64_t left_quickly = 0;      ///< leaves within rooms.drop_off_ms of the join
  int64_t left_before_ready_quickly = 0; ///< both of the above
  /// Intents into the room that ended here, per final status (accepted,
  /// declined, expired, cancelled), and how many of them had been delivered.
  std::array<int64_t, 4> intents_final{};
  int64_t intents_final_delivered = 0;

  int64_t present_ms() const { return phase_ms[1] + phase_ms[2] + phase_ms[3]; }
};

/// A duration observed at `t` (a stay, or an attention decay).
struct analytics_sample {
  /// What was measured. Decays: a visible member's last `active` to its move
  /// into idle or away; the `_after_media` kinds are those within
  /// rooms.media_decay_window_ms after media_attached went false.
  enum kind_t : uint8_t {
    stay = 0,
    to_idle = 1,
    to_away = 2,
    to_idle_after_media = 3,
    to_away_after_media = 4,
    intent_to_delivered = 5, ///< an intent into the room: created -> delivered
    intent_to_answer = 6,    ///< delivered -> accepted or declined
  };
  int64_t t = 0;
  int64_t ms = 0;
  uint8_t kind = 0;
};

/// The outcomes of one direction of a user's intents (those it sent, or those
/// sent to it): how many ended per final status, how many of those had been
/// delivered, and the latest durations (kinds intent_to_delivered and
/// intent_to_answer; bounded by actors/analytics.hpp).
struct intent_outcomes {
  std::array<int64_t, 4> final{}; ///< accepted, declined, expired, cancelled
  int64_t final_delivered = 0;    ///< of those, delivered before they ended
  std::vector<analytics_sample> times; ///< oldest first
};

/// A user's intent outcomes (issue 14: "per user, own only"), kept in its
/// record so that they survive a restart, a hand-off and a promotion.
struct user_intent_analytics {
  uint64_t revision = 0; ///< changes recorded; 0: nothing (field not written)
  intent_outcomes outgoing; ///< intents the user sent
  intent_outcomes incoming; ///< intents to the user (to_user)
};

/// A user: what must survive its sessions. Key: the user id.
struct user_record {
  std::string user_id;
  uint8_t published = 0; ///< state subscribers saw last
  uint64_t seq = 0;
  int64_t since = 0;
  int64_t last_active_at = 0;
  int64_t last_seen_at = 0;
  user_intent_analytics intents; ///< field "io", absent when revision is 0
};

/// A room's `start_when` rule (README "Room analytics"): it holds while every
/// condition it sets holds, once they held for `for_ms`. Unset conditions are 0;
/// a rule with none is no rule.
struct start_when_rule {
  double readiness_at_least = 0; ///< in (0, 1]; 0: no readiness condition
  int64_t active_at_least = 0;   ///< active visible members; 0: no condition
  int64_t for_ms = 0;            ///< debounce of the crossing

  bool set() const { return readiness_at_least > 0 || active_at_least > 0; }
  friend bool operator==(const start_when_rule& a, const start_when_rule& b) {
    return a.readiness_at_least == b.readiness_at_least
           && a.active_at_least == b.active_at_least && a.for_ms == b.for_ms;
  }
};

/// A room's start_when rule and where its debounce stands.
struct start_when_state {
  start_when_rule rule;
  int64_t met_since = 0; ///< the conditions hold since then; 0: they do not
  bool holding = false;  ///< subscribers were last told "holding: true"
};

/// One episode of a room: from the join that ended `empty` to the next `empty`.
struct analytics_episode {
  int64_t started_at = 0;   ///< empty -> gathering
  int64_t ready_at = 0;     ///< first ready; 0: not (yet)
  int64_t cooling_at = 0;   ///< first ready -> cooling; 0: not (yet)
  int64_t ended_at = 0;     ///< -> empty; 0: still open
  int64_t present_at_ready = 0;   ///< visible present members at ready_at
  double readiness_at_ready = 0;
  int64_t present_at_cooling = 0; ///< visible present members at cooling_at
  double readiness_at_cooling = 0;
};

/// A room's analytics: bounded (actors/analytics.hpp says the caps), kept in
/// its record so that it survives a restart, a hand-off and a promotion.
struct room_analytics {
  int64_t seg_at = 0;       ///< start of the open segment; 0: none (empty)
  double seg_readiness = 0; ///< readiness since seg_at
  uint8_t seg_phase = 0;    ///< room_phase since seg_at
  int64_t media_off_at = 0; ///< media_attached last went false; 0: never
  uint64_t revision = 0;    ///< changes recorded (a quiet heartbeat makes none)
  std::vector<analytics_bucket> buckets; ///< oldest first
  std::vector<analytics_sample> stays;   ///< oldest first
  std::vector<analytics_sample> decays;  ///< oldest first
  std::vector<analytics_episode> episodes; ///< oldest first
  std::vector<analytics_sample> intent_times; ///< oldest first
};

/// A room's own attributes (its members are durable through the sessions that
/// joined it). Key: the room id.
struct room_record {
  std::string room_id;
  bool media_attached = false;
  uint8_t phase = 0; ///< room_phase, for hysteresis across a restart
  double momentum_rate = 0;
  int64_t momentum_at = 0;
  room_analytics analytics; ///< field "an", absent in records before it
  start_when_state start_when; ///< field "sw", absent when no rule is set
};

/// Caps on a decoded room_analytics, whatever the stored bytes say (the room
/// actor keeps far fewer; actors/analytics.hpp).
inline constexpr uint32_t max_stored_analytics_items = 10080;

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
