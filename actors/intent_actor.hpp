// An intent actor: one user's recorded wish to connect with another user or a
// room. Pending until the target is ready (the user `active`, or the room in phase
// `ready`), then delivered (pushed to the target's sockets; the sender is told);
// then accepted or declined by the target, cancelled by the sender, or expired at
// `expires_at`. Every change is sent to both users' actors (and to the room for a
// room intent). A finished intent stays readable for
// `finished_intent_retention_ms`, then the actor stops. Messages: messages.hpp.
#pragma once

#include "actors/census.hpp"
#include "actors/messages.hpp"
#include "actors/timer_service.hpp"
#include "storage/records.hpp"

#include <caf/event_based_actor.hpp>
#include <caf/stateful_actor.hpp>

#include <chrono>

namespace presence::actors {

class node;

struct intent_state {
  intent_state() = default;
  ~intent_state();
  intent_state(const intent_state&) = delete;
  intent_state& operator=(const intent_state&) = delete;

  node* owner = nullptr;
  intent_view view;
  caf::actor sender; ///< the from_user's actor
  caf::actor target; ///< the to_user's or to_room's actor
  timer_slot timer;  ///< expiry while open, then the end of retention
  int64_t retain_until = 0; ///< when a finished intent is forgotten

  census::token live{census::kind::intent};


  static inline const char* name = "presence.intent";
};

using intent_actor_type = caf::stateful_actor<intent_state>;

/// `retain_until` is 0 for a new intent; a restored finished intent passes the
/// end of its retention (a restored open one passes 0 and expires on time, at
/// once if `expires_at` passed while the node was down).
caf::behavior intent_actor(intent_actor_type* self, node* owner, intent_view view,
                           int64_t retain_until);

struct intent_transfer;

/// How long a pending intent waits for its target's answer when it subscribes
/// (again at each view change) or asks what its users know of it.
inline constexpr auto watch_timeout = std::chrono::seconds{10};

/// An intent whose node died, started from its replica on the key's new owner
/// (cluster/replication.hpp): delivered when its target is ready; it catches
/// up with the furthest stage its sender and target were told (the replica
/// may lag behind), so it never goes back.
caf::behavior intent_actor_promoted(intent_actor_type* self, node* owner,
                                    intent_transfer t);

/// An intent recovered from disk at start, catching up as a promoted one does.
caf::behavior intent_actor_restored(intent_actor_type* self, node* owner, intent_view view,
                                    int64_t retain_until);

/// An intent that moved here (its node drains): pulled from `source` (that
/// node's traffic actor; handoff.hpp). If that node has nothing, it stops.
caf::behavior intent_actor_handoff(intent_actor_type* self, node* owner,
                                   std::string intent_id, caf::actor source,
                                   uint64_t epoch);

/// The durable record of an intent.
storage::intent_record to_record(const intent_state& st);

/// The view of a stored intent.
intent_view to_view(const storage::intent_record& r);

} // namespace presence::actors
