// A room actor: a persistent coordination space. Keeps its members (visible or
// not) with their users' published states, per-state counts of visible members,
// observers, momentum, readiness and phase (with hysteresis), a bounded timeline
// sampled every `timeline_interval_ms` while anyone is present, the media flag
// and the intents declared into it. Sends a room_event to subscribers on each
// change of membership, of a member's state, or of phase. Keeps the room's
// analytics (actors/analytics.hpp) in its durable record, so that they survive
// a restart, a hand-off and a promotion; only membership, member-state, media,
// intent and phase changes touch them. An optional start_when rule
// (actors/start_when.hpp) is re-evaluated at each of the same changes; its
// subscribers get a room_event "threshold" when it starts or stops holding (the
// debounce runs on the room's timer). Messages: messages.hpp.
#pragma once

#include "actors/census.hpp"
#include "actors/messages.hpp"
#include "actors/timer_service.hpp"
#include "storage/records.hpp"

#include <caf/actor.hpp>

#include <caf/event_based_actor.hpp>
#include <caf/stateful_actor.hpp>

#include <deque>
#include <map>
#include <string>
#include <vector>

namespace presence::actors {

class node;

struct room_state {
  room_state() = default;
  ~room_state();
  room_state(const room_state&) = delete;
  room_state& operator=(const room_state&) = delete;

  struct member {
    state current = state::offline;
    bool visible = true;
    int64_t last_active_at = 0;
    int64_t joined_at = 0;  ///< 0: unknown (restored at start)
    bool saw_ready = false; ///< the room was ready during this visit
  };

  node* owner = nullptr;
  std::string room_id;
  std::map<std::string, member> members; ///< sorted by user id, for paging
  state_counts counts{};                 ///< visible members per state
  int64_t observers = 0;                 ///< invisible members present
  room_phase phase = room_phase::empty;
  double readiness = 0;
  struct momentum joins;
  bool media_attached = false;
  std::map<std::string, intent_view> intents; ///< open intents into the room
  std::deque<timeline_sample> timeline;
  storage::room_analytics analytics; ///< bounded: actors/analytics.hpp
  analytics::limits analytics_limits;
  std::vector<caf::actor> subscribers;
  timer_slot timer;       ///< the next timeline sample (tag 0)
  timer_slot delta_timer; ///< the next room_delta of a big room (tag 1)
  timer_slot idle;        ///< the next passivation check (tag 2): passivation.hpp
  timer_slot save_timer;  ///< a deferred write of the record (tag 3)
  timer_slot threshold_timer; ///< the end of the start_when debounce (tag 4)
  storage::start_when_state start_when; ///< durable, in the record
  int64_t saved_at = 0;   ///< when the record was last handed to the writer
  bool save_deferred = false; ///< a write waits for save_timer
  std::map<std::string, state> delta; ///< changes since the last room_delta
  bool delta_truncated = false;
  int64_t awaiting_restored = 0; ///< restored members not yet back
  bool replicate_scheduled = false;

  /// More members than rooms.announce_max: changes go out as room_delta.
  bool big() const;

  census::token live{census::kind::room};


  static inline const char* name = "presence.room";
};

/// Members listed in the room view that answers a join, leave, media change or
/// subscription (the rest are paged with GET /v1/rooms/{id}?after=).
inline constexpr int64_t reply_members = 100;

using room_actor_type = caf::stateful_actor<room_state>;

caf::behavior room_actor(room_actor_type* self, node* owner, std::string room_id);

/// A room restored at start: its record and its timeline (oldest first). Its
/// members come back as their restored users tell it (member_update.restored).
struct room_restore {
  storage::room_record rec;
  std::vector<storage::timeline_record> timeline;
  int64_t members = 0; ///< restored members that will tell the room
};

caf::behavior room_actor_restored(room_actor_type* self, node* owner,
                                  room_restore restore);

/// A room that moved here from another node: pulled from `source` (the old
/// owner's traffic actor; handoff.hpp), or fresh if that node has nothing.
caf::behavior room_actor_handoff(room_actor_type* self, node* owner, std::string room_id,
                                 caf::actor source, uint64_t epoch);

struct room_transfer;

/// A room whose owner died, started from its replica (cluster/replication.hpp).
caf::behavior room_actor_promoted(room_actor_type* self, node* owner, room_transfer t);

/// The durable record of a room's own attributes.
storage::room_record to_record(const room_state& st);

/// Room records whose write waits (process-wide). A room's record carries its
/// analytics (up to ~90 KiB encoded), so a room hands it to the writer at most
/// once per storage.flush_interval_ms: the first change at once, later ones
/// together at the end of the interval (and at a stop, a passivation). Counted
/// in presence_storage_pending, so that 0 there still means "all on disk".
int64_t deferred_room_writes();

} // namespace presence::actors
