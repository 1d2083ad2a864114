// Recovery at start: reads every snapshot from the store and brings the node's
// entities back before the node is ready. Derived state is computed from the
// node's clock, so time spent down counts: a session silent for
// `offline_after_ms` or more is dropped (and its record deleted), one inside the
// window comes back in the state the rules give at `now` (stale after a long
// outage, never active by mistake) and can be resumed with its token. Users keep
// `seq` and `last_active_at` (folded in from every session record, even the
// dropped ones); a user with no live session is kept as a dormant record; rooms
// get back their media flag, phase, momentum, timeline and the members whose
// sessions are live; open and recently finished intents come back, expiring at
// once if their time passed. Unreadable records are logged, counted, skipped.
//
// Called once on the main thread, after `node` exists and its writer is set,
// before the gateway serves requests. Spawns actors; never waits for them.
#pragma once

#include "storage/store.hpp"

#include <cstddef>
#include <functional>
#include <string>

namespace presence::actors {

class node;

/// What recovery found and did.
struct recovery_report {
  size_t sessions = 0;          ///< restored
  size_t sessions_dropped = 0;  ///< silent past offline_after_ms
  size_t users = 0;             ///< with an actor (a live session)
  size_t users_dormant = 0;     ///< kept as records
  size_t rooms = 0;
  size_t timeline_samples = 0;  ///< kept
  size_t timeline_dropped = 0;  ///< beyond rooms.timeline_max_samples
  size_t intents = 0;
  size_t intents_dropped = 0;   ///< finished and past retention
  size_t skipped = 0;           ///< unreadable records
  int64_t read_ms = 0;          ///< reading and decoding the store
  int64_t elapsed_ms = 0;       ///< reading, decoding and spawning
  /// Why a scan of the store failed (empty: it did not). Then nothing was
  /// restored and nothing rewritten: the node must not start on half its state.
  std::string failed;
};

/// Logs one line of recovery (progress, a skipped record).
using recovery_log = std::function<void(const std::string&)>;

/// Restores every entity of `s` into `n`. Records to delete (dropped sessions,
/// intents past retention, surplus samples) go through `n.writer()`.
/// `after_crash`: the node did not stop cleanly last time, so its records may
/// be behind what it published; users then resume at the next seq generation
/// (user_actor.hpp).
/// `hold`: the node has peers, which may hold newer copies; its sessions are
/// held (session_init::held) until the cluster releases them.
recovery_report recover(node& n, storage::store& s, const recovery_log& log,
                        bool after_crash = false, bool hold = false);

} // namespace presence::actors
