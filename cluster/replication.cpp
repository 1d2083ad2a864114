#include "cluster/replication.hpp"
#include "actors/census.hpp"
#include "actors/errors.hpp"

#include "cluster/routing.hpp"

#include "actors/node.hpp"

#include <caf/event_based_actor.hpp>
#include <caf/stateful_actor.hpp>

#include <algorithm>
#include <map>

namespace presence::cluster {

void replica_store::apply(replica_batch& b) {
  std::lock_guard<std::mutex> guard{mtx_};
  for (size_t i = 0; i < b.keys.size() && i < b.payloads.size(); ++i) {
    if (b.payloads[i].empty())
      replicas_.erase(b.keys[i]);
    else
      replicas_.insert_or_assign(std::move(b.keys[i]), std::move(b.payloads[i]));
  }
}

std::optional<caf::message> replica_store::take(const std::string& key) {
  std::lock_guard<std::mutex> guard{mtx_};
  auto i = replicas_.find(key);
  if (i == replicas_.end())
    return std::nullopt;
  auto out = std::move(i->second);
  replicas_.erase(i);
  return out;
}

std::vector<std::string> replica_store::keys() const {
  std::lock_guard<std::mutex> guard{mtx_};
  std::vector<std::string> out;
  out.reserve(replicas_.size());
  for (auto& [key, payload] : replicas_)
    out.push_back(key);
  return out;
}

void replica_store::drop(const std::vector<std::string>& keys) {
  std::lock_guard<std::mutex> guard{mtx_};
  for (auto& key : keys)
    replicas_.erase(key);
}

size_t replica_store::size() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return replicas_.size();
}

namespace {

struct replicator_state {
  std::shared_ptr<cluster_placement> placement;
  size_t factor = 2;
  std::unordered_map<std::string, caf::message> pending; ///< latest per key
  bool scheduled = false;

  static inline const char* name = "presence.replicator";
};

using replicator_type = caf::stateful_actor<replicator_state>;

// Sends everything pending, one batch per replica node (split when large).
void flush(replicator_type* self) {
  auto& st = self->state;
  st.scheduled = false;
  auto& m = st.placement->node().metrics();
  m.replication_pending.fetch_sub(static_cast<int64_t>(st.pending.size()),
                                  std::memory_order_relaxed);
  m.replicated.fetch_add(st.pending.size(), std::memory_order_relaxed);
  m.replication_oldest_pending_at.store(0, std::memory_order_relaxed);
  std::map<caf::actor, replica_batch> out;
  for (auto& [key, payload] : st.pending) {
    for (auto& target : st.placement->replica_targets(key, st.factor)) {
      auto& b = out[target];
      b.keys.push_back(key);
      b.payloads.push_back(payload);
      if (b.keys.size() >= max_replica_batch) {
        self->send(target, actors::replica_atom::value, std::move(b));
        b = replica_batch{};
      }
    }
  }
  st.pending.clear();
  for (auto& [target, b] : out)
    if (!b.keys.empty())
      self->send(target, actors::replica_atom::value, std::move(b));
}

caf::behavior replicator(replicator_type* self, std::shared_ptr<cluster_placement> placement,
                         size_t factor) {
  actors::keep_on_errors(self);
  actors::census::track(self, actors::census::kind::replicator);
  self->state.placement = std::move(placement);
  self->state.factor = factor;
  return {
    [self](actors::replica_atom, std::string& key, caf::message& payload) {
      auto& st = self->state;
      auto& n = st.placement->node();
      if (st.pending.empty()) // the oldest change waiting: the lag counts from it
        n.metrics().replication_oldest_pending_at.store(std::max<int64_t>(n.now_ms(), 1),
                                                        std::memory_order_relaxed);
      if (st.pending.insert_or_assign(std::move(key), std::move(payload)).second)
        n.metrics().replication_pending.fetch_add(1, std::memory_order_relaxed);
      if (!st.scheduled) {
        st.scheduled = true;
        self->delayed_send(self, replicate_interval, actors::tick_atom::value);
      }
    },
    [self](actors::tick_atom) { flush(self); },
  };
}

} // namespace

caf::actor spawn_replicator(caf::actor_system& sys,
                            std::shared_ptr<cluster_placement> placement, size_t factor) {
  return sys.spawn(replicator, std::move(placement), factor);
}

} // namespace presence::cluster
