// The traffic actor: each node's door for entity traffic from other nodes.
// The membership actor only agrees on views; everything that moves entities
// or their messages between nodes comes here instead, so that a burst of
// routed requests, hand-off pulls or replica batches never queues in front of
// a view change, a join or a suspicion (before, one actor did both, and a
// burst delayed the view the burst was waiting for).
//
// Other nodes reach it through `member_info::traffic` (the placement's
// handles); local entities name it as the `via` of a hand-off.
//
// Messages (traffic actor):
//   (route_atom, key, epoch, hops, content)   another node -> the entity's
//                                             reply (routing.hpp); routed by a
//                                             view newer than this node's, it
//                                             waits for that view (at most
//                                             `deferred_route_limit`)
//   (handoff_atom, key, epoch, via)           a new owner's pending entity ->
//                                             reply its transfer (handoff.hpp)
//   (handoff_atom, keys, source, epoch)       an old owner -> no reply; pull
//                                             these (those held here already
//                                             are told back to `source`)
//   (handoff_atom, reconcile_atom, keys, epoch)
//                                             an owner with live copies of
//                                             these -> no reply; ours are
//                                             stale and forward there
//   (replica_atom, replica_batch)             an owner's replicator -> reply
//                                             (empty) once applied
//   (view_atom, uint64_t epoch)               the membership actor, after it
//                                             adopted a view -> no reply;
//                                             replays what waited for it
#pragma once

#include "cluster/routing.hpp"

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>
#include <caf/atom.hpp>

#include <chrono>
#include <memory>

namespace presence::actors {
class node;
}

namespace presence::cluster {

/// How long a message routed by a newer view waits for this node to adopt it
/// before it is applied anyway.
inline constexpr auto deferred_route_limit = std::chrono::seconds{1};

/// Spawns the node's traffic actor over `placement` (which the membership
/// actor keeps up to date).
caf::actor spawn_traffic(caf::actor_system& sys, actors::node& n,
                         std::shared_ptr<cluster_placement> placement);

} // namespace presence::cluster
