// A room's coordination analytics (issue 14) as pure rules over its durable,
// bounded state (storage::room_analytics): time-weighted readiness and phase time
// per bucket, joins and leaves, drop-off, stays, attention decay and episodes
// (empty -> gathering -> ready -> cooling -> empty), and the report that answers
// GET /v1/rooms/{rid}/analytics. No actor system and no clock of their own: the
// room actor calls them on membership, member-state and phase changes only (a
// heartbeat that changes nothing never reaches the room). Thread-safe: no shared
// state.
//
// Bounds, whatever the input: at most `rooms.analytics_max_buckets` buckets
// (hard cap 10080), `max_samples` stays, `max_samples` decays, `max_samples`
// intent times, and `max_episodes` episodes per room; the oldest go first.
//
// Percentiles use the nearest-rank method: p of n sorted values is the value at
// rank ceil(p * n / 100) (1-based); no interpolation, so every figure is one that
// was observed.
#pragma once

#include "actors/rules.hpp"
#include "config/settings.hpp"
#include "storage/records.hpp"

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace presence::actors::analytics {

/// Stays kept per room, and decays kept per room.
inline constexpr size_t max_samples = 512;

/// Episodes kept per room.
inline constexpr size_t max_episodes = 64;

/// Intent durations a user keeps per direction (sent, received): its record is
/// written on every change of its state, so it stays small (about 2 KiB at most).
inline constexpr size_t max_user_intent_samples = 64;

/// The widths and bounds the rules work with (from `[rooms]`).
struct limits {
  int64_t bucket_ms = 60000;
  int64_t max_buckets = 1440;
  int64_t drop_off_ms = 30000;
  int64_t media_decay_window_ms = 300000;
};

limits limits_of(const config::rooms_section& cfg);

/// The start of the `bucket_ms` bucket holding `t` (aligned to the epoch).
int64_t bucket_start(int64_t t, int64_t bucket_ms);

/// The bucket holding `now`, inserted in time order when missing (buckets are
/// sparse: none while the room is empty), dropping the oldest beyond
/// `max_buckets`; when `now` is older than every kept bucket and there is no
/// room, the oldest kept one.
storage::analytics_bucket& bucket_at(storage::room_analytics& a, int64_t now,
                                     const limits& l);

/// Adds [from, to) spent in `phase` at `readiness` to the buckets it covers
/// (nothing for `empty` or an empty interval). A span longer than the kept
/// buckets only fills the last `max_buckets` of them.
void accumulate(storage::room_analytics& a, int64_t from, int64_t to, room_phase phase,
                double readiness, const limits& l);

/// The room's level at `now`: closes the open segment (adding it to the
/// buckets) and opens one at the new level, unless phase and readiness are what
/// they were. Returns whether anything changed.
bool note_level(storage::room_analytics& a, int64_t now, room_phase phase,
                double readiness, const limits& l);

/// Episode detection from a phase change at `now`, with `present` visible
/// members present and `readiness`: leaving empty opens an episode, the first
/// ready and the first ready -> cooling are stamped, entering empty closes it.
/// A change with no open episode (history lost) opens one with an unknown start
/// (started_at 0). Returns whether anything changed.
bool note_phase(storage::room_analytics& a, room_phase prev, room_phase next,
                int64_t now, int64_t present, double readiness);

/// How a leave is classified.
struct drop_off {
  bool before_ready = false; ///< the room never was ready during the visit
  bool quickly = false;      ///< within drop_off_ms of the join (inclusive)
};

drop_off classify_leave(int64_t joined_at, int64_t left_at, bool saw_ready,
                        int64_t drop_off_ms);

/// A join at `now`.
void note_join(storage::room_analytics& a, int64_t now, const limits& l);

/// A leave at `now` of a member that joined at `joined_at` (0: unknown, as for
/// members restored at start: counted as a leave, without stay or drop-off).
void note_leave(storage::room_analytics& a, int64_t now, int64_t joined_at,
                bool saw_ready, const limits& l);

/// The attention decay of a visible member moving from `prev` to `next` at
/// `now`, last active at `last_active_at` (0: never): active -> idle gives a
/// `to_idle` sample, active or idle -> away a `to_away` one (the `_after_media`
/// kind when media is off and went off at most media_decay_window_ms ago);
/// anything else none.
std::optional<storage::analytics_sample>
attention_decay(state prev, state next, int64_t last_active_at, int64_t now,
                bool media_attached, int64_t media_off_at, const limits& l);

/// Records a decay sample (capped at max_samples).
void note_decay(storage::room_analytics& a, const storage::analytics_sample& s,
                const limits& l);

/// An intent into the room seen delivered for the first time at `now`:
/// samples created_at -> delivered_at.
void note_intent_delivered(storage::room_analytics& a, int64_t now, int64_t created_at,
                           int64_t delivered_at, const limits& l);

/// An intent into the room that was open here ended at `now` with `outcome`
/// (0 accepted, 1 declined, 2 expired, 3 cancelled), delivered at
/// `delivered_at` (0: never). An accepted or declined one samples
/// delivered_at -> now.
void note_intent_final(storage::room_analytics& a, int64_t now, int outcome,
                       int64_t delivered_at, const limits& l);

/// One direction of a user's intents seen at a later stage (the user actor
/// passes only news: a stage after the one it knew). `known_open`: the user knew
/// the intent before, not finished. A delivery seen for the first time samples
/// created -> delivered; the end of an intent it knew open counts its final
/// status (0 accepted .. 3 cancelled, -1: not final) and, when it had been
/// delivered and was answered, samples delivered -> now. Returns whether
/// anything was recorded.
bool note_user_intent(storage::intent_outcomes& d, int64_t now, bool known_open,
                      bool was_pending, bool delivered_now, int outcome,
                      int64_t created_at, int64_t delivered_at);

/// Nearest-rank percentiles of some durations.
struct percentiles {
  int64_t n = 0;   ///< values; p50 and p90 mean nothing when 0
  int64_t p50 = 0;
  int64_t p90 = 0;
};

/// The outcome figures of some intents: a room's (intents into it) or one
/// direction of a user's.
struct intent_report {
  std::array<int64_t, 4> final{}; ///< accepted, declined, expired, cancelled
  int64_t final_delivered = 0;    ///< of those, delivered before they ended
  percentiles to_delivered;       ///< created -> delivered
  percentiles to_answer;          ///< delivered -> accepted or declined
};

/// The figures of the intent samples in `times` observed at or after `from`,
/// with the given final counts.
intent_report intent_report_of(const std::array<int64_t, 4>& final, int64_t delivered,
                               const std::vector<storage::analytics_sample>& times,
                               int64_t from);

/// What GET /v1/users/{uid}/intents/analytics answers.
struct user_intent_report {
  std::string user_id;
  int64_t now = 0;
  uint64_t revision = 0;
  intent_report outgoing; ///< intents the user sent
  intent_report incoming; ///< intents sent to the user
};

user_intent_report summarize_user(const storage::user_intent_analytics& a, int64_t now);

/// The nearest-rank `p`-th percentile (1..100) of `xs` (sorted in place);
/// 0 for no values.
int64_t percentile(std::vector<int64_t>& xs, int p);

percentiles percentiles_of(std::vector<int64_t> xs);

/// One bucket of a report (`bucket_ms` wide).
struct report_bucket {
  int64_t t = 0;
  int64_t span_ms = 0;      ///< bucket_ms, or up to now for the current one
  int64_t present_ms = 0;   ///< time anyone was present
  double readiness_min = 0; ///< these three mean nothing when present_ms is 0
  double readiness_mean = 0;
  double readiness_max = 0;
  std::array<int64_t, 4> phase_ms{}; ///< per room_phase; empty: the rest of span
  int64_t joins = 0;
  int64_t leaves = 0;
  int64_t left_before_ready = 0;
  int64_t left_quickly = 0;
  int64_t left_before_ready_quickly = 0;
  percentiles to_idle;
  percentiles to_away;
};

/// What GET /v1/rooms/{rid}/analytics answers.
struct report {
  std::string room_id;
  int64_t now = 0;
  int64_t since = 0;         ///< as asked, rounded down to the bucket grid
  int64_t bucket_ms = 0;
  int64_t base_bucket_ms = 0; ///< the width kept (rooms.analytics_bucket_ms)
  int64_t kept_from = 0;     ///< start of the oldest bucket kept; 0: none
  uint64_t revision = 0;
  room_phase phase = room_phase::empty;
  double readiness = 0;
  std::vector<report_bucket> buckets; ///< only buckets with data, oldest first
  percentiles stay;
  int64_t leaves = 0;
  int64_t left_before_ready = 0;
  int64_t left_quickly = 0;
  int64_t left_before_ready_quickly = 0;
  int64_t drop_off_ms = 0;
  percentiles to_idle;
  percentiles to_away;
  percentiles to_idle_after_media;
  percentiles to_away_after_media;
  int64_t media_decay_window_ms = 0;
  std::vector<storage::analytics_episode> episodes; ///< ended at or after since
  intent_report intents; ///< intents into the room
  double ready_threshold = 0;  ///< rooms.ready_threshold (for the curve's lines)
  double ready_hysteresis = 0; ///< rooms.ready_hysteresis
  storage::start_when_state start_when; ///< the room's rule, if set
};

/// Checks a query: `since` >= 0 and `bucket_ms` a positive multiple of the
/// kept width, at most the kept span. Returns the problem, or nothing.
std::optional<std::string> check_query(int64_t since, int64_t bucket_ms, const limits& l);

/// The report at `now` of a room (whose open segment counts up to `now`) for a
/// checked query. Samples count from max(since, kept_from).
report summarize(storage::room_analytics a, int64_t now, int64_t since,
                 int64_t bucket_ms, const limits& l);

} // namespace presence::actors::analytics
