// A user actor: derived from its sessions, never written directly. Aggregates its
// live sessions' states by precedence, increments `seq` on each change of the
// aggregate and only then notifies subscribers and the rooms it is a member of;
// keeps the latest `last_active_at` of any session it ever had; delays the move to
// offline by `offline_linger_ms`. Holds the user's room memberships (a member
// leaves a room when none of its sessions that joined it is left) and an index of
// its intents, and the outcomes of its own intents (sent and received; durable
// in its record, bounded: actors/analytics.hpp). Messages: see messages.hpp.
#pragma once

#include "actors/census.hpp"
#include "actors/messages.hpp"
#include "actors/timer_service.hpp"
#include "storage/records.hpp"

#include <caf/actor.hpp>
#include <optional>

#include <caf/event_based_actor.hpp>
#include <caf/stateful_actor.hpp>

#include <map>
#include <set>
#include <string>
#include <vector>

namespace presence::actors {

class node;

struct user_state {
  user_state() = default;
  ~user_state();
  user_state(const user_state&) = delete;
  user_state& operator=(const user_state&) = delete;

  struct session_entry {
    std::string device;
    state current = state::offline;
    int64_t last_signal_at = 0;
    int64_t last_active_at = 0;
    int64_t heartbeat_ms = 0;
    caf::actor_addr ref;
    bool monitored = false; ///< a session on another node: watched for its death
    int64_t lost_at = 0;    ///< its node died then (0: it did not); dropped
                            ///< unless promoted elsewhere within the grace
  };
  struct membership {
    caf::actor room;
    std::set<std::string> sessions; ///< this user's sessions that joined
    bool visible = true;
  };

  node* owner = nullptr;
  std::string user_id;
  std::map<std::string, session_entry> sessions; ///< live sessions by id
  state published = state::offline;             ///< what subscribers saw last
  uint64_t seq = 0;
  int64_t since = 0;
  int64_t last_active_at = 0;
  int64_t last_seen_at = 0;
  std::vector<caf::actor> subscribers;
  std::vector<caf::actor> inbox;
  std::map<std::string, membership> rooms;
  std::map<std::string, intent_view> intents;
  storage::user_intent_analytics intent_analytics; ///< durable, in the record
  timer_slot linger;
  timer_slot lost;  ///< the end of a lost session's grace (tag 1)
  timer_slot idle;  ///< the next passivation check (tag 2): passivation.hpp
  bool replicate_scheduled = false;

  census::token live{census::kind::user};


  static inline const char* name = "presence.user";
};

/// How long a user keeps counting a session whose node died, waiting for the
/// session to come back from its replica on another node (cluster failover):
/// this, or `cluster.failure_timeout_ms` if longer.
inline constexpr int64_t lost_session_grace_ms = 2000;

/// Finished intents a user keeps listing (the oldest are dropped beyond this).
inline constexpr size_t max_finished_intents_per_user = 100;

using user_actor_type = caf::stateful_actor<user_state>;

caf::behavior user_actor(user_actor_type* self, node* owner, std::string user_id);

/// The user's `seq` when a copy of it takes over without its last owner's
/// word (a replica promoted after its owner died, a record recovered after a
/// crash): the next generation in the high 32 bits, above every seq the last
/// owner may have published after the copy was made. A hand-off keeps seq as
/// it is (the old owner stops before the new one starts). Clients see a gap.
constexpr uint64_t next_seq_generation(uint64_t seq) {
  return ((seq >> 32) + 1) << 32;
}

/// A user restored at start: its record and its sessions that are still inside
/// their window (each with its rooms).
struct user_restore {
  storage::user_record rec;
  std::vector<storage::session_record> sessions;
  /// Held: a copy this node read from its disk (or started before it joined
  /// its cluster) while the cluster may hold a newer one. It publishes
  /// nothing, tells its rooms nothing and answers nothing (every message
  /// waits) until it is released (`release_atom`: it then acts as below) or
  /// replaced (`export_atom`: what waited goes on to the newer copy).
  bool held = false;
};

/// A restored user: the aggregate of the restored sessions is derived at the
/// node's clock (a change from the stored state counts as one, seq + 1), and
/// each membership is told to its room as a restored one.
caf::behavior user_actor_restored(user_actor_type* self, node* owner,
                                  user_restore restore);

/// A user that moved here from another node: pulled from `source` (the old
/// owner's traffic actor; handoff.hpp). It starts from `dormant` (or fresh)
/// when the old owner has nothing.
caf::behavior user_actor_handoff(user_actor_type* self, node* owner, std::string user_id,
                                 caf::actor source, uint64_t epoch,
                                 std::optional<storage::user_record> dormant);

struct user_transfer;

/// A user whose owner died, started from its replica (cluster/replication.hpp).
caf::behavior user_actor_promoted(user_actor_type* self, node* owner, user_transfer t);

/// The durable record of a user's state.
storage::user_record to_record(const user_state& st);

} // namespace presence::actors
