// Routing of entity keys to their owner node. `cluster_placement` is the
// router's placement in a cluster. Users and rooms belong to the node the
// current view's ring gives their key. Sessions and intents are pinned to the
// node that created them: their ids end in "@<node id>", so they are found
// there whatever the view. A key that is not local gets a stub, a small local
// actor that forwards every message it receives to the owner. The owner's
// traffic actor (cluster/traffic.hpp) resolves the key to its local entity (spawning users and
// rooms on first use) and delegates the message to it, so the entity's reply
// goes straight back to the original sender. Stubs look the owner up for each
// message, so a view change never leaves one pointing at a dead node.
//
// Threading: `update` is called by the membership actor; every other member
// may be called from any thread (the table is swapped atomically).
#pragma once

#include "actors/router.hpp"
#include "cluster/replication.hpp"
#include "cluster/ring.hpp"
#include "cluster/view.hpp"

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>
#include <caf/message.hpp>
#include <caf/result.hpp>
#include <caf/scheduled_actor.hpp>

#include <map>
#include <set>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

namespace presence::actors {
class node;
}

namespace presence::cluster {

/// At most this many forwards between nodes for one message (views that
/// disagree for a moment must not bounce a message for ever).
inline constexpr uint8_t max_route_hops = 3;
/// Hops after which a message that keeps meeting forwarders is answered
/// `unavailable` (the client retries once the views agree).
inline constexpr uint8_t max_forward_hops = 8;

// Routed messages carry the epoch of the view they were routed by. The owner
// fences with it: a message routed by a newer view than its own is applied
// here (that view gives the key to this node, and this node will adopt it in a
// moment); one routed by an older or equal view goes on to the owner of this
// node's view (redirected, not applied by a node that no longer owns the key).

/// How long the sessions and intents pinned to a failed node are awaited
/// (`unavailable`, not "no such session") at most.
inline constexpr int64_t failed_node_wait_ms = 60'000;

class cluster_placement : public actors::placement,
                          public std::enable_shared_from_this<cluster_placement> {
public:
  cluster_placement(actors::node& n, std::string self_id, size_t vnodes);

  bool is_local(const std::string& key) const override;
  caf::actor make_stub(const std::string& key) override;
  std::string pinned_id(const std::string& random_part) const override;
  uint64_t epoch() const override { return load()->epoch; }
  caf::actor handoff_source(const std::string& key) const override;
  bool watchable(const caf::node_id& n) const override;
  bool awaited(const std::string& key) const override;

  /// Awaits the sessions and intents of `ids` (node ids) as if those nodes had
  /// just failed: the members of this node's last view before it restarted,
  /// which may come back after it (a full restart).
  void await_nodes(const std::vector<std::string>& ids);

  /// True if this node owned `key` in the previous view (its copy is the one
  /// the new owner pulls).
  bool owned_before(const std::string& key) const;
  std::optional<caf::message> take_replica(const std::string& key) override;
  std::optional<caf::message> take_lost_replica(const std::string& key) override;
  void hand_off(const std::string& key) override;
  caf::result<caf::message> forward(caf::scheduled_actor* self, const std::string& key,
                                    const caf::actor& via, uint64_t epoch,
                                    caf::message content, uint8_t hops = 0) override;

  /// Installs the ring and member handles of `v`; the view before it stays
  /// known (where entities that moved here are pulled from).
  void update(const view& v);

  /// The traffic actors of the nodes that hold replicas of `key` (`factor`
  /// copies in all, the owner's included), without this node.
  std::vector<caf::actor> replica_targets(const std::string& key, size_t factor) const;

  /// True if this node is among the `factor` holders of `key` (owner or replica).
  bool holds_replica(const std::string& key, size_t factor) const;

  /// True if `key`'s previous owner left the view and this node owns it now
  /// (its replica here is promoted).
  bool promotes(const std::string& key) const;

  /// The replicas this node holds for others.
  replica_store& replicas() { return replicas_; }

  /// The share of keys the ring gives each of `ids` (sampled).
  std::vector<double> shares(const std::vector<std::string>& ids) const;

  /// The keys of `keys` this node does not own, by the traffic actor of
  /// their owner (hand-off hints after a view change).
  std::map<caf::actor, std::vector<std::string>>
  owners_elsewhere(const std::vector<std::string>& keys) const;

  /// Sends `content` for `key` on from `self` (a stub, hops 0, or the
  /// traffic actor receiving a routed message): to the owner's traffic
  /// actor, or to the local entity; replies go to the original sender.
  caf::result<caf::message> route(caf::scheduled_actor* self, const std::string& key,
                                  uint64_t epoch, uint8_t hops, caf::message content);

  /// The traffic actor of the owner of `key`, or an invalid handle when this
  /// node owns it (or knows no other member).
  caf::actor owner_handle(const std::string& key) const;

  actors::node& node() { return node_; }

private:
  struct table {
    uint64_t epoch = 0;
    ring r;                                    // over the members not draining
    std::map<std::string, caf::actor> handles; // every member, by node id
    std::set<std::string> owners;              // the members not draining
    std::shared_ptr<const table> previous;     // the view before (not chained)
  };

  std::shared_ptr<const table> load() const { return std::atomic_load(&table_); }
  // The nodes that failed (left the view without draining) by id, with the
  // node's clock (ms) when they left; forgotten once they are back.
  mutable std::mutex failed_mtx_;
  std::map<std::string, int64_t> failed_;
  static std::shared_ptr<table> make_table(const view& v, size_t vnodes);
  // The node that owns `key` in `t` (empty if none): a pinned key's node while
  // it is an owner, else the ring's choice.
  static std::string owner_in(const table& t, const std::string& key);
  // The `factor` nodes that hold `key` in `t`: its owner, then its replicas.
  static std::vector<std::string> holders_in(const table& t, const std::string& key,
                                             size_t factor);

  // The node a pinned key ("session:" or "intent:" with "@<node>") names, or
  // empty for a key the ring places.
  static std::string_view pinned_node(const std::string& key);

  actors::node& node_;
  std::string self_;
  bool pin_ = false; // self_ can be part of an id
  size_t vnodes_;
  std::shared_ptr<const table> table_ = std::make_shared<const table>();
  replica_store replicas_;
};

} // namespace presence::cluster
