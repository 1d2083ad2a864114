// Replication: every entity's state is streamed, asynchronously, to the next
// `cluster.replication_factor - 1` distinct nodes on the ring after its owner
// (the nodes that would own its key, in order, if the owner died). Entities
// hand their transfer (actors/handoff.hpp: the same state a hand-off moves) to
// the node's replicator whenever they save; the replicator keeps the latest per
// key and, every `replicate_interval`, sends one batch per replica node, which
// confirms it once applied (until then its changes count as not replicated:
// presence_replication_pending and _lag_seconds show a slow or stuck replica
// node). Each node keeps what it receives in its `replica_store`. When a member leaves the
// view without handing off (it died), every key it owned that this node now
// owns is promoted: the entity starts here from its replica (users keep seq,
// sessions and subscribers; rooms their members; intents stay pending; sessions
// resume with their token) instead of afresh. A crash loses at most the last
// interval's changes.
//
// Messages (replicator actor):
//   (replica_atom, key, caf::message payload)  an entity -> no reply; an empty
//                                               payload deletes the replica
//   (tick_atom)                                 itself -> flush
// Membership actors receive (replica_atom, replica_batch) from other nodes
// -> () once applied.
#pragma once

#include "actors/handoff.hpp"

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>
#include <caf/message.hpp>
#include <caf/meta/type_name.hpp>

#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace presence::cluster {

class cluster_placement;

/// How often the replicator sends what changed.
inline constexpr auto replicate_interval = std::chrono::milliseconds{50};

/// How long a replica node may take to confirm a batch. Until then its
/// changes count as waiting (presence_replication_pending, _lag_seconds); a
/// node that goes down stops counting at once.
inline constexpr auto replica_confirm_timeout = std::chrono::seconds{60};

/// Changes per batch message at most.
inline constexpr size_t max_replica_batch = 1000;

/// What one node sends another: payloads by key (an empty payload: deleted).
struct replica_batch {
  std::vector<std::string> keys;
  std::vector<caf::message> payloads;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, replica_batch& x) {
  return f(caf::meta::type_name("replica_batch"), x.keys, x.payloads);
}

/// The replicas this node holds for others. Thread-safe.
class replica_store {
public:
  void apply(replica_batch& b);

  /// Removes and returns the replica of `key`, if any.
  std::optional<caf::message> take(const std::string& key);

  /// Every key held.
  std::vector<std::string> keys() const;

  /// Drops the replicas of `keys`.
  void drop(const std::vector<std::string>& keys);

  size_t size() const;

private:
  mutable std::mutex mtx_;
  std::unordered_map<std::string, caf::message> replicas_; // guarded by mtx_
};

/// Spawns the node's replicator (`factor` copies of each entity in all, this
/// node's included).
caf::actor spawn_replicator(caf::actor_system& sys,
                            std::shared_ptr<cluster_placement> placement, size_t factor);

} // namespace presence::cluster
