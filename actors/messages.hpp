// The message contract between the presence actors: atoms, the plain structs they
// exchange, and, for each message, who sends it and what the reply is. Every struct
// has an `inspect` so that the cluster can ship it between nodes.
//
// Entity keys: "session:<id>", "user:<id>", "room:<id>", "intent:<id>".
//
// Session actor (spawned by `router::create_session`):
//   (signal_atom, signal_kind)            gateway -> reply signal_reply
//   (leave_atom)                          gateway -> reply unit; offline at once
//   (locate_atom)                         gateway -> reply actor: the session
//                                         itself (behind a stub: its real handle)
//   (get_atom)                            anyone  -> reply session_view
//   (join_atom, room_id, visible)         gateway -> reply room_view
//   (leave_room_atom, room_id)            gateway -> reply room_view
//   (wake_atom, generation)               timer service; no reply
//   The four gateway operations above also exist with a trailing acting user id
//   (std::string): the session answers `forbidden` unless it belongs to that
//   user (or the caller is `admin_caller`).
//   (signal_atom, signal_kind, quiet_atom) a socket -> no reply; the session sends
//                                         the sender a signal_reply only when the
//                                         state or the interval changed (the
//                                         WebSocket hot path: one message per
//                                         signal that changes nothing)
//   (resume_atom, std::string token)      gateway -> reply session_view, or
//                                         forbidden if the token is wrong; cancels
//                                         a pending leave
//   (leave_atom, int64_t after_ms)        the session's socket -> reply unit; ends
//                                         the session after_ms from now unless it
//                                         is resumed first (0: at once). From a
//                                         socket that no longer holds the session
//                                         (see attach_atom): error taken_over,
//                                         and the session goes on
//   (attach_atom, actor socket)           a socket's actor, when it binds the
//                                         session (hello) -> no reply; `socket`
//                                         holds the session from now on. The
//                                         previous holder, if another, gets
//                                         (superseded_atom, session_id): one
//                                         session, one socket. Quiet signals and
//                                         the socket leave above from any other
//                                         sender are refused while a holder is
//                                         known (the quiet signal's sender is
//                                         told superseded again). Requests that
//                                         carry no socket (HTTP) are unaffected.
//                                         Not carried by a hand-off: the next
//                                         attach records the holder there
//   (leave_atom, resume_atom, token, after_ms) gateway (a page unloading) -> reply
//                                         unit, or forbidden if the token is wrong
//   (identify_atom, new_user, acting)     gateway -> reply session_view; moves the
//                                         session (and its rooms) to new_user
//   (announce_atom)                       cluster, after a view change -> no reply;
//                                         tells its user (wherever it now lives)
//                                         of itself and of its rooms again
//   (release_atom)                        cluster -> no reply; a recovered session
//                                         held until the cluster reconciled it
//                                         tells its user of itself (announce)
// Socket actor (gateway, one per WebSocket):
//   (superseded_atom, session_id)         session -> no reply; another socket
//                                         resumed the session: this one closes
//                                         (error session_taken_over, close 4409)
// User actor (spawned on first use):
//   (session_atom, session_update)        session -> no reply
//   (get_atom)                            anyone  -> reply user_view
//   (subscribe_atom, actor)               anyone  -> reply user_view; then
//                                         presence_event on every change
//   (unsubscribe_atom, actor)             anyone  -> no reply
//   (inbox_atom, actor) / (unsubscribe_atom, inbox_atom, actor)
//                                         a socket of the user's own sessions ->
//                                         receives intent_event for this user
//   (join_atom, room_id, session_id, visible)     session -> reply room_view
//   (leave_room_atom, room_id, session_id)        session -> reply room_view
//   (intent_atom, intent_view)            intent actor -> no reply; forwarded to
//                                         the inbox as intent_event when it is a
//                                         later stage than the user knew
//   (get_atom, intent_atom, intent_id)    intent actor (catching up) -> reply the
//                                         intent_view this user knows
//   (list_atom, intent_atom)              gateway -> reply intent_list
//   (analytics_atom, intent_atom)         gateway -> reply analytics::user_intent_report
// Room actor (spawned on first use):
//   (member_atom, member_update)          user -> no reply (state changes, and
//                                         leaves when its sessions expired)
//   (join_atom, member_update)            user (delegating a session's join or
//                                         leave_room) -> reply room_view
//   (get_atom, room_query)                anyone -> reply room_view
//   (subscribe_atom, actor)               anyone -> reply room_view; then room_event
//                                         (or room_delta once the room is big)
//   (unsubscribe_atom, actor)             anyone -> no reply
//   (media_atom, bool)                    gateway -> reply room_view
//   (start_when_atom, start_when_rule)    gateway -> reply room_view (sets the
//                                         rule; one with no condition clears it)
//   (timeline_atom, since_ms)             anyone -> reply std::vector<timeline_sample>
//   (intent_atom, intent_view)            intent actor -> no reply (counts pending
//                                         intents; delivers to present members)
//   (analytics_atom, since_ms, bucket_ms) gateway -> reply analytics::report
//                                         (the query checked by the caller:
//                                         analytics::check_query)
// Intent actor (spawned by `router::create_intent`):
//   (get_atom)                            anyone -> reply intent_view
//   (accept_atom | decline_atom | cancel_atom, acting_user) gateway -> intent_view
//   (announce_atom)                       cluster, after a view change -> no reply;
//                                         a pending one subscribes to its target again
//   receives presence_event / room_event of its target while pending.
#pragma once

#include "actors/analytics.hpp"
#include "actors/rules.hpp"

#include <caf/atom.hpp>
#include <caf/actor_addr.hpp>
#include <caf/fwd.hpp>
#include <caf/meta/type_name.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace presence::actors {

using signal_atom = caf::atom_constant<caf::atom("signal")>;
using leave_atom = caf::atom_constant<caf::atom("leave")>;
using wake_atom = caf::atom_constant<caf::atom("wake")>;
using tick_atom = caf::atom_constant<caf::atom("tick")>;
using subscribe_atom = caf::atom_constant<caf::atom("subscribe")>;
using unsubscribe_atom = caf::atom_constant<caf::atom("unsub")>;
using inbox_atom = caf::atom_constant<caf::atom("inbox")>;
using join_atom = caf::atom_constant<caf::atom("join")>;
using leave_room_atom = caf::atom_constant<caf::atom("leaveroom")>;
using session_atom = caf::atom_constant<caf::atom("session")>;
using member_atom = caf::atom_constant<caf::atom("member")>;
using media_atom = caf::atom_constant<caf::atom("media")>;
using timeline_atom = caf::atom_constant<caf::atom("timeline")>;
using intent_atom = caf::atom_constant<caf::atom("intent")>;
using accept_atom = caf::atom_constant<caf::atom("accept")>;
using decline_atom = caf::atom_constant<caf::atom("decline")>;
using cancel_atom = caf::atom_constant<caf::atom("cancel")>;
using list_atom = caf::atom_constant<caf::atom("list")>;
using resume_atom = caf::atom_constant<caf::atom("resume")>;
using quiet_atom = caf::atom_constant<caf::atom("quiet")>;
using identify_atom = caf::atom_constant<caf::atom("identify")>;
using announce_atom = caf::atom_constant<caf::atom("announce")>;
using route_atom = caf::atom_constant<caf::atom("route")>;
using passivate_atom = caf::atom_constant<caf::atom("passivate")>;
using locate_atom = caf::atom_constant<caf::atom("locate")>;
using release_atom = caf::atom_constant<caf::atom("release")>;
using analytics_atom = caf::atom_constant<caf::atom("analytics")>;
using start_when_atom = caf::atom_constant<caf::atom("startwhen")>;
using attach_atom = caf::atom_constant<caf::atom("attach")>;
using superseded_atom = caf::atom_constant<caf::atom("superseded")>;

/// The acting user of a request that may touch any session (operators).
inline const std::string admin_caller = "\x01" "admin";

/// Reply to a signal.
struct signal_reply {
  state current = state::offline;
  int64_t heartbeat_ms = 0;
  int64_t server_time = 0;
  bool changed = false; ///< the state or the interval changed (WebSocket `ack`)
};

/// A session as clients see it.
struct session_view {
  std::string session_id;
  std::string user_id;
  std::string device;
  state current = state::offline;
  int64_t last_signal_at = 0;
  int64_t last_active_at = 0; ///< 0 when never active
  int64_t heartbeat_ms = 0;
  double confidence = 0;
  std::vector<std::string> rooms;
};

/// Session -> user: the session's state changed (or it opened).
struct session_update {
  std::string session_id;
  std::string device;
  state current = state::offline;
  int64_t changed_at = 0;     ///< the boundary or signal time of the change
  int64_t last_signal_at = 0;
  int64_t last_active_at = 0; ///< 0 when never active
  int64_t heartbeat_ms = 0;   ///< the interval last issued
  caf::actor_addr ref;        ///< the session actor, for fetching views
};

/// User -> subscribers: the user's state changed.
struct presence_event {
  std::string user_id;
  state current = state::offline;
  state prev = state::offline;
  uint64_t seq = 0;
  int64_t since = 0;
  int64_t last_active_at = 0;
};

/// A user as clients see it.
struct user_view {
  std::string user_id;
  state current = state::offline;
  int64_t since = 0;
  uint64_t seq = 0;
  int64_t last_active_at = 0;
  int64_t last_seen_at = 0;
  double confidence = 0;
  int64_t server_time = 0; ///< for last_active_ago_ms
  std::vector<session_view> sessions;
};

/// User -> room: membership or state of a member changed.
struct member_update {
  std::string user_id;
  state current = state::offline;
  bool visible = true;
  bool member = true; ///< false: the user leaves the room
  int64_t last_active_at = 0;
  bool restored = false; ///< a membership restored at start: not a join
};

/// One member in a room view.
struct member_info {
  std::string user_id;
  state current = state::offline;
  bool visible = true;
};

/// Paging of a room view's member list.
struct room_query {
  int64_t limit = 1000;
  std::string after; ///< members with ids greater than this
  bool counts_only = false;
};

/// A room as clients see it.
struct room_view {
  std::string room_id;
  room_phase phase = room_phase::empty;
  double readiness = 0;
  state_counts counts{}; ///< visible members per state
  int64_t observers = 0; ///< invisible members that are present
  int64_t member_count = 0;
  double momentum = 0;
  bool media_attached = false;
  int64_t pending_intents = 0;
  std::vector<member_info> members; ///< sorted by id; a page of them
  std::string next_after;           ///< non-empty when more members follow
  storage::start_when_rule start_when; ///< unset (set() false): no rule
  bool threshold_holding = false;      ///< the rule holds (room event "threshold")
};

/// Room -> subscribers.
struct room_event {
  std::string room_id;
  std::string event; ///< join, leave, member, phase or threshold
  std::string user_id;
  state current = state::offline;
  state_counts counts{};
  double readiness = 0;
  room_phase phase = room_phase::empty;
  bool holding = false; ///< threshold: the start_when rule holds (or stopped)
  int64_t at = 0;       ///< threshold: when it crossed (the debounce's end)
};

/// Room -> subscribers of a big room (more than rooms.announce_max members):
/// at most one every rooms.delta_interval_ms, instead of one event per change.
struct room_delta {
  std::string room_id;
  state_counts counts{};
  double readiness = 0;
  room_phase phase = room_phase::empty;
  std::vector<member_info> changed; ///< members whose state changed (or joined,
                                    ///< with their state; left: offline)
  bool truncated = false; ///< more than rooms.delta_max_members changed: only counts
};

/// One sample of a room's timeline.
struct timeline_sample {
  int64_t t = 0;
  state_counts counts{};
  double readiness = 0;
  room_phase phase = room_phase::empty;
};

enum class intent_status : uint8_t {
  pending = 0,
  delivered,
  accepted,
  declined,
  expired,
  cancelled,
};

std::string_view to_string(intent_status x);

/// True for accepted, declined, expired and cancelled.
constexpr bool is_final(intent_status x) {
  return x != intent_status::pending && x != intent_status::delivered;
}

/// The stage of a status in the life cycle: pending, delivered, final. An
/// intent never goes back a stage (a copy behind what its owner published is
/// not believed).
constexpr int stage(intent_status x) {
  return is_final(x) ? 2 : x == intent_status::delivered ? 1 : 0;
}

/// An intent as clients see it.
struct intent_view {
  std::string intent_id;
  std::string from_user;
  std::string to_user; ///< exactly one of to_user and to_room is set
  std::string to_room;
  std::string kind;
  std::string note;
  intent_status status = intent_status::pending;
  int64_t created_at = 0;
  int64_t expires_at = 0;
  int64_t delivered_at = 0; ///< 0 until delivered
  int64_t ready_at = 0;     ///< when the target became ready; 0 until then
};

/// User or room -> its sockets: an intent changed.
struct intent_event {
  intent_view intent;
};

/// A user's intents.
struct intent_list {
  std::vector<intent_view> incoming;
  std::vector<intent_view> outgoing;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, signal_reply& x) {
  return f(caf::meta::type_name("signal_reply"), x.current, x.heartbeat_ms,
           x.server_time, x.changed);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, session_view& x) {
  return f(caf::meta::type_name("session_view"), x.session_id, x.user_id,
           x.device, x.current, x.last_signal_at, x.last_active_at,
           x.heartbeat_ms, x.confidence, x.rooms);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, session_update& x) {
  return f(caf::meta::type_name("session_update"), x.session_id, x.device,
           x.current, x.changed_at, x.last_signal_at, x.last_active_at,
           x.heartbeat_ms, x.ref);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, presence_event& x) {
  return f(caf::meta::type_name("presence_event"), x.user_id, x.current, x.prev,
           x.seq, x.since, x.last_active_at);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, user_view& x) {
  return f(caf::meta::type_name("user_view"), x.user_id, x.current, x.since,
           x.seq, x.last_active_at, x.last_seen_at, x.confidence, x.server_time,
           x.sessions);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, member_update& x) {
  return f(caf::meta::type_name("member_update"), x.user_id, x.current,
           x.visible, x.member, x.last_active_at, x.restored);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, member_info& x) {
  return f(caf::meta::type_name("member_info"), x.user_id, x.current, x.visible);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, room_query& x) {
  return f(caf::meta::type_name("room_query"), x.limit, x.after, x.counts_only);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, room_view& x) {
  return f(caf::meta::type_name("room_view"), x.room_id, x.phase, x.readiness,
           x.counts, x.observers, x.member_count, x.momentum, x.media_attached,
           x.pending_intents, x.members, x.next_after, x.start_when,
           x.threshold_holding);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, room_event& x) {
  return f(caf::meta::type_name("room_event"), x.room_id, x.event, x.user_id,
           x.current, x.counts, x.readiness, x.phase, x.holding, x.at);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, room_delta& x) {
  return f(caf::meta::type_name("room_delta"), x.room_id, x.counts, x.readiness,
           x.phase, x.changed, x.truncated);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, timeline_sample& x) {
  return f(caf::meta::type_name("timeline_sample"), x.t, x.counts, x.readiness,
           x.phase);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, intent_view& x) {
  return f(caf::meta::type_name("intent_view"), x.intent_id, x.from_user,
           x.to_user, x.to_room, x.kind, x.note, x.status, x.created_at,
           x.expires_at, x.delivered_at, x.ready_at);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, intent_event& x) {
  return f(caf::meta::type_name("intent_event"), x.intent);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, intent_list& x) {
  return f(caf::meta::type_name("intent_list"), x.incoming, x.outgoing);
}

namespace analytics {

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, percentiles& x) {
  return f(caf::meta::type_name("percentiles"), x.n, x.p50, x.p90);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, report_bucket& x) {
  return f(caf::meta::type_name("report_bucket"), x.t, x.span_ms, x.present_ms,
           x.readiness_min, x.readiness_mean, x.readiness_max, x.phase_ms, x.joins,
           x.leaves, x.left_before_ready, x.left_quickly, x.left_before_ready_quickly,
           x.to_idle, x.to_away);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, report& x) {
  return f(caf::meta::type_name("analytics_report"), x.room_id, x.now, x.since,
           x.bucket_ms, x.base_bucket_ms, x.kept_from, x.revision, x.phase,
           x.readiness, x.buckets, x.stay, x.leaves, x.left_before_ready,
           x.left_quickly, x.left_before_ready_quickly, x.drop_off_ms, x.to_idle,
           x.to_away, x.to_idle_after_media, x.to_away_after_media,
           x.media_decay_window_ms, x.episodes, x.intents, x.ready_threshold,
           x.ready_hysteresis, x.start_when);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, intent_report& x) {
  return f(caf::meta::type_name("intent_report"), x.final, x.final_delivered,
           x.to_delivered, x.to_answer);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, user_intent_report& x) {
  return f(caf::meta::type_name("user_intent_report"), x.user_id, x.now, x.revision,
           x.outgoing, x.incoming);
}

} // namespace analytics

} // namespace presence::actors

namespace presence::storage {

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, analytics_bucket& x) {
  return f(caf::meta::type_name("analytics_bucket"), x.t, x.readiness_min,
           x.readiness_max, x.readiness_ms, x.phase_ms, x.joins, x.leaves,
           x.left_before_ready, x.left_quickly, x.left_before_ready_quickly,
           x.intents_final, x.intents_final_delivered);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, analytics_sample& x) {
  return f(caf::meta::type_name("analytics_sample"), x.t, x.ms, x.kind);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, analytics_episode& x) {
  return f(caf::meta::type_name("analytics_episode"), x.started_at, x.ready_at,
           x.cooling_at, x.ended_at, x.present_at_ready, x.readiness_at_ready,
           x.present_at_cooling, x.readiness_at_cooling);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, room_analytics& x) {
  return f(caf::meta::type_name("room_analytics"), x.seg_at, x.seg_readiness,
           x.seg_phase, x.media_off_at, x.revision, x.buckets, x.stays, x.decays,
           x.episodes, x.intent_times);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, intent_outcomes& x) {
  return f(caf::meta::type_name("intent_outcomes"), x.final, x.final_delivered, x.times);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, user_intent_analytics& x) {
  return f(caf::meta::type_name("user_intent_analytics"), x.revision, x.outgoing,
           x.incoming);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, start_when_rule& x) {
  return f(caf::meta::type_name("start_when_rule"), x.readiness_at_least,
           x.active_at_least, x.for_ms);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, start_when_state& x) {
  return f(caf::meta::type_name("start_when_state"), x.rule, x.met_since, x.holding);
}

} // namespace presence::storage
