#include "cluster/traffic.hpp"

#include "actors/census.hpp"
#include "actors/errors.hpp"
#include "actors/handoff.hpp"
#include "actors/messages.hpp"
#include "actors/node.hpp"
#include "cluster/replication.hpp"
#include "storage/writer.hpp"

#include <caf/event_based_actor.hpp>
#include <caf/send.hpp>
#include <caf/stateful_actor.hpp>

#include <algorithm>
#include <vector>

namespace presence::cluster {

namespace {

using replay_atom = caf::atom_constant<caf::atom("replay")>;

struct traffic_state {
  actors::node* node = nullptr;
  std::shared_ptr<cluster_placement> placement;
  /// Messages routed by a view newer than this node's: applied once it adopts
  /// that view (the key's state may have to be pulled from its old owner first).
  struct deferred_route {
    std::string key;
    uint64_t epoch = 0;
    uint8_t hops = 0;
    caf::message content;
    caf::response_promise rp;
  };
  std::vector<deferred_route> deferred;

  static inline const char* name = "presence.traffic";
};

using traffic_actor_type = caf::stateful_actor<traffic_state>;

// Routes again the deferred messages that the current view covers (all of
// them when `all`).
void replay_deferred(traffic_actor_type* self, bool all) {
  auto& st = self->state;
  auto epoch = st.placement->epoch();
  auto me = caf::actor_cast<caf::actor>(self);
  std::vector<traffic_state::deferred_route> later;
  for (auto& d : st.deferred) {
    if (all || d.epoch <= epoch)
      d.rp.delegate(me, actors::route_atom::value, std::move(d.key), std::min(d.epoch, epoch),
                    d.hops, std::move(d.content));
    else
      later.push_back(std::move(d));
  }
  st.deferred = std::move(later);
}

// (Arguments, not captures: CAF 0.17 dereferences an empty argument tuple when
// an actor is spawned without any.)
caf::behavior traffic_actor(traffic_actor_type* self, actors::node* n,
                            std::shared_ptr<cluster_placement> placement) {
  auto& st = self->state;
  st.node = n;
  st.placement = std::move(placement);
  // A stray reply or unknown message is logged, never fatal.
  self->set_default_handler(caf::print_and_drop);
  actors::keep_on_errors(self);
  actors::census::track(self, actors::census::kind::traffic);
  return {
    [self](actors::route_atom, std::string& key, uint64_t epoch, uint8_t hops,
           caf::message& content) -> caf::result<caf::message> {
      auto& st = self->state;
      if (epoch > st.placement->epoch()) {
        // Routed by a view this node has not adopted yet: it waits for it.
        auto rp = self->make_response_promise<caf::message>();
        if (st.deferred.empty())
          self->delayed_send(self, deferred_route_limit, replay_atom::value);
        st.deferred.push_back({std::move(key), epoch, hops, std::move(content), rp});
        return rp;
      }
      return st.placement->route(self, key, epoch, hops, std::move(content));
    },
    [self](view_atom, uint64_t) {
      if (!self->state.deferred.empty())
        replay_deferred(self, false);
    },
    [self](replay_atom) { replay_deferred(self, true); },
    [self](actors::handoff_atom, const std::string& key, uint64_t epoch,
           const caf::actor& via) -> caf::result<caf::message> {
      // A new owner pulls an entity this node holds: it exports its state and
      // forwards from then on.
      auto& r = self->state.node->router();
      if (auto sender = self->current_sender(); sender && r.pulls_from(key, sender->node()))
        // Each node pulls the key from the other (their views crossed): the
        // two pulls would wait for each other until the hand-off timeout,
        // with every request to the entity. Refused: the puller there starts
        // from its replica, and this node's pull then gets its state.
        return caf::make_error(actors::errc::unavailable,
                               std::string{"pulling it from you: "} + key);
      if (auto local = r.find_local(key))
        return self->delegate(local, actors::export_atom::value, via, epoch);
      if (auto rec = r.take_dormant(key)) {
        if (auto* w = self->state.node->writer())
          w->erase(storage::kind::users, rec->user_id);
        actors::user_transfer t;
        t.rec = std::move(*rec);
        return caf::make_message(std::move(t));
      }
      return caf::make_error(actors::errc::session_not_found,
                             std::string{"nothing to hand off: "} + key);
    },
    [self](actors::handoff_atom, const std::vector<std::string>& keys,
           const caf::actor& source, uint64_t epoch) {
      // The old owner hands these off: pull each that is ours (or will be,
      // when the sender's view is newer). Keys held here already are told
      // back: the sender's copies are stale and forward here from then on.
      auto& st = self->state;
      auto& r = st.node->router();
      auto current = st.placement->epoch();
      std::vector<std::string> kept;
      for (auto& key : keys)
        if (epoch > current || r.owns(key))
          if (!r.take_over(key, source, epoch))
            kept.push_back(key);
      if (!kept.empty())
        self->send(source, actors::handoff_atom::value, reconcile_atom::value,
                   std::move(kept), current);
    },
    [self](actors::handoff_atom, reconcile_atom, const std::vector<std::string>& keys,
           uint64_t epoch) {
      // The owner of these keys has entities of its own: ours are stale
      // (recovered from disk while the cluster carried on, or a copy that a
      // fault left behind: a second live copy of a user went on publishing
      // to its subscribers) and forward there.
      auto& st = self->state;
      auto& r = st.node->router();
      auto owner = caf::actor_cast<caf::actor>(self->current_sender());
      for (auto& key : keys) {
        if (r.owns(key))
          continue;
        auto a = r.take_recovered(key);
        // A copy this node owned in the previous view is the one the owner
        // pulls (its pull may still be on its way): only a copy left behind
        // from before that is retired here.
        if (!a && !st.placement->owned_before(key))
          a = r.find_local(key);
        if (a)
          caf::anon_send(a, actors::export_atom::value, owner, epoch); // no reply wanted
      }
    },
    [self](actors::replica_atom, replica_batch& b) {
      auto& replicas = self->state.placement->replicas();
      replicas.apply(b);
      self->state.node->metrics().replicas_held.store(static_cast<int64_t>(replicas.size()),
                                                     std::memory_order_relaxed);
    },
  };
}

} // namespace

caf::actor spawn_traffic(caf::actor_system& sys, actors::node& n,
                         std::shared_ptr<cluster_placement> placement) {
  return sys.spawn(traffic_actor, &n, std::move(placement));
}

} // namespace presence::cluster
