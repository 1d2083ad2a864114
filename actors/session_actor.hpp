// A session actor: one tab, device or SDK instance. Holds the session's two clocks
// and exactly one pending wake-up at its next state boundary (re-armed on each
// signal that moves it); tells its user actor only when its derived state changes;
// terminates when it goes offline (explicit leave or expiry). Messages: see
// messages.hpp.
#pragma once

#include "actors/census.hpp"
#include "actors/ids.hpp"
#include "actors/messages.hpp"
#include "actors/timer_service.hpp"
#include "storage/records.hpp"

#include <caf/event_based_actor.hpp>
#include <caf/stateful_actor.hpp>

#include <map>
#include <string>
#include <vector>

namespace presence::actors {

class node;

struct session_state {
  session_state() = default;
  ~session_state();
  session_state(const session_state&) = delete;
  session_state& operator=(const session_state&) = delete;

  node* owner = nullptr;
  std::string session_id;
  std::string user_id;
  std::string device;
  token_hash resume_hash{}; ///< SHA-256 of the resume token
  session_clock clk;
  state current = state::offline;
  int64_t heartbeat_ms = 0; ///< the interval last issued to the client
                            ///< (changes only when answering a signal)
  caf::actor user;
  /// The socket (its actor) that carries the session (attach_atom); none
  /// while no socket attached here (HTTP only, or since a hand-off). A
  /// holder that is gone is simply replaced by the next attach.
  caf::actor holder;
  std::vector<std::string> rooms;
  std::map<std::string, bool> visible; ///< per joined room
  timer_slot timer;
  timer_slot leave_timer; ///< a pending leave (`after_ms`), cancelled by a resume
  int64_t saved_at = 0;       ///< when the latest snapshot was handed in
  signal_kind saved_declared = signal_kind::active;
  bool dirty = false;         ///< a signal since then was not handed in
  bool ended = false;         ///< went offline: its record is deleted
  bool held = false;          ///< session_init::held, until released

  census::token live{census::kind::session};


  static inline const char* name = "presence.session";
};

/// What a session actor starts from: a fresh session (from the router) or one
/// restored from its snapshot at start.
struct session_init {
  std::string session_id;
  std::string user_id;
  std::string device;
  token_hash resume_hash{}; ///< SHA-256 of the resume token
  session_clock clk;        ///< the opening signal's clock, or the restored one
  state initial = state::offline; ///< derived by the caller, already counted
  int64_t heartbeat_ms = 0; ///< restored interval; 0: the one for `initial`
  std::vector<std::pair<std::string, bool>> rooms; ///< restored memberships
  bool restored = false;    ///< its user already knows it (and its rooms)
  /// Recovered on a node with peers: a newer copy may live elsewhere, so it
  /// tells its user nothing (no transition, no announce, no end) until it is
  /// released (release_atom, or a signal of its own) or handed over.
  bool held = false;
};

/// The durable record of a session's state.
storage::session_record to_record(const session_state& st);

/// The clocks a stored session resumes with.
session_clock clock_of(const storage::session_record& r);

using session_actor_type = caf::stateful_actor<session_state>;

/// The actor's behavior. `init.initial` is the state the caller derived,
/// counted in the metrics and told to the client.
caf::behavior session_actor(session_actor_type* self, node* owner, session_init init);

struct session_transfer;

/// A session whose node died, started from its replica on the key's new owner
/// (cluster/replication.hpp): it tells its user and rooms where it is now.
caf::behavior session_actor_promoted(session_actor_type* self, node* owner,
                                     session_transfer t);

/// A session that moved here (its node drains): pulled from `source` (that
/// node's traffic actor; handoff.hpp). Its timers keep their due times (they
/// follow from its clocks). If that node has nothing, the actor stops.
caf::behavior session_actor_handoff(session_actor_type* self, node* owner,
                                    std::string session_id, caf::actor source,
                                    uint64_t epoch);

} // namespace presence::actors
