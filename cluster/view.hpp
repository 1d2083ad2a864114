// Epoch-numbered membership views and the pure rules that change them. A view is
// the sorted member list every node agrees on; only its leader (the member with
// the smallest id) makes the next one, so two nodes never issue different views
// of the same epoch while they agree on the current one. A node adopts a view
// only if its epoch is greater than the one it holds. Pure; no CAF here except
// the members' actor handles, carried along for monitoring and traffic.
#pragma once

#include <caf/actor.hpp>
#include <caf/actor_addr.hpp>
#include <caf/atom.hpp>
#include <caf/meta/type_name.hpp>

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace presence::cluster {

using view_atom = caf::atom_constant<caf::atom("view")>;
using reconcile_atom = caf::atom_constant<caf::atom("reconcile")>;

/// One node as the cluster knows it.
struct member_info {
  std::string id;
  std::string cluster_address; ///< host:port of its cluster (CAF) endpoint
  std::string http_address;    ///< host:port of its gateway
  caf::actor handle;           ///< its membership actor (views, joins)
  caf::actor traffic;          ///< its traffic actor (entity traffic: cluster/traffic.hpp)
  bool draining = false;       ///< drained: in the view, but the ring gives it no keys
};

/// The cluster's membership at one epoch.
struct view {
  uint64_t epoch = 0;
  std::vector<member_info> members; ///< sorted by id, unique ids

  /// The member that issues the next view: the smallest id.
  const member_info* leader() const;
  const member_info* find(const std::string& id) const;
  /// The member whose membership actor is `who`, if any.
  const member_info* find(const caf::actor_addr& who) const;
  std::vector<std::string> ids() const;
  /// The members the ring places keys on (the ones not draining), sorted.
  std::vector<std::string> owner_ids() const;
};

/// The next view with `m` in it (a restarted node with the same id replaces its
/// earlier incarnation).
view with_member(const view& v, member_info m);

/// The next view without member `id` (nothing if it is not a member).
std::optional<view> without_member(const view& v, const std::string& id);

/// True if the members of `after` that `before` also lists (those a node still
/// reaches) may go on as the cluster: more than half of `before`, or exactly
/// half with its smallest id among them (Akka's keep-majority). The other side
/// stops, so the cluster never splits into two that both serve.
bool keeps_majority(const view& before, const view& after);

/// The next view with member `id` draining (nothing if it is not a member or
/// drains already).
std::optional<view> with_draining(const view& v, const std::string& id);

/// The next view with the same members (a rebalance: every node moves what it
/// holds and does not own to its owner).
view renumbered(const view& v);

/// Members of a view by status, as one node sees them (presence_cluster_members).
struct member_counts {
  int64_t up = 0;
  int64_t draining = 0;
  int64_t unreachable = 0; ///< seen down, not yet out of the view
};

/// Counts the members of `v`: those in `down` are unreachable (whether they
/// drain or not), the others draining or up.
member_counts count_members(const view& v, const std::set<std::string>& down);

/// True if `next` should replace `current`.
inline bool newer(const view& next, const view& current) {
  return next.epoch > current.epoch;
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, member_info& x) {
  return f(caf::meta::type_name("member_info"), x.id, x.cluster_address, x.http_address,
           x.handle, x.traffic, x.draining);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, view& x) {
  return f(caf::meta::type_name("cluster_view"), x.epoch, x.members);
}

} // namespace presence::cluster
