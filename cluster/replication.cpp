#include "cluster/replication.hpp"
#include "actors/census.hpp"
#include "actors/errors.hpp"

#include "cluster/routing.hpp"

#include "actors/node.hpp"

#include <caf/event_based_actor.hpp>
#include <caf/stateful_actor.hpp>

#include <algorithm>
#include <map>
#include <set>

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

/// A flush whose batches not every replica node has confirmed yet.
struct sent_flush {
  int64_t oldest_at = 0; ///< when its oldest change reached the replicator (ms)
  int64_t changes = 0;   ///< changes in it (counted in replication_pending)
  size_t open = 0;       ///< batches not yet confirmed
};

struct replicator_state {
  std::shared_ptr<cluster_placement> placement;
  size_t factor = 2;
  std::unordered_map<std::string, caf::message> pending; ///< latest per key, not sent
  int64_t pending_since = 0; ///< when the oldest of `pending` arrived (ms)
  bool scheduled = false;
  uint64_t next_flush = 1;
  std::map<uint64_t, sent_flush> in_flight; ///< by flush number: oldest first
  /// Batches each replica node has not confirmed yet, by flush number.
  std::map<caf::actor, std::map<uint64_t, size_t>> unconfirmed;
  std::set<caf::actor_addr> watched; ///< replica nodes monitored

  static inline const char* name = "presence.replicator";
};

using replicator_type = caf::stateful_actor<replicator_state>;

// The lag counts from the oldest change a replica node has not confirmed
// (sent or not).
void publish_oldest(replicator_type* self) {
  auto& st = self->state;
  int64_t oldest = st.pending.empty() ? 0 : st.pending_since;
  if (!st.in_flight.empty()) {
    auto sent = st.in_flight.begin()->second.oldest_at;
    oldest = oldest == 0 ? sent : std::min(oldest, sent);
  }
  st.placement->node().metrics().replication_oldest_pending_at.store(
    oldest, std::memory_order_relaxed);
}

// `batches` of flush `id` to `target` are done with: confirmed, failed (timed
// out, refused) or given up because the node went down.
void settled(replicator_type* self, const caf::actor& target, uint64_t id, size_t batches) {
  auto& st = self->state;
  auto t = st.unconfirmed.find(target);
  if (t == st.unconfirmed.end())
    return;
  auto b = t->second.find(id);
  if (b == t->second.end())
    return; // already given up (its node went down)
  batches = std::min(batches, b->second);
  if ((b->second -= batches) == 0)
    t->second.erase(b);
  if (t->second.empty())
    st.unconfirmed.erase(t);
  auto f = st.in_flight.find(id);
  if (f == st.in_flight.end())
    return;
  f->second.open -= std::min(batches, f->second.open);
  if (f->second.open == 0) {
    st.placement->node().metrics().replication_pending.fetch_sub(f->second.changes,
                                                                 std::memory_order_relaxed);
    st.in_flight.erase(f);
    publish_oldest(self);
  }
}

// Sends everything pending, one batch per replica node (split when large).
// Each batch is a request: the change counts as waiting (pending, lag) until
// the replica node has applied it, so a stuck or slow replica node shows.
void flush(replicator_type* self) {
  auto& st = self->state;
  st.scheduled = false;
  auto& m = st.placement->node().metrics();
  m.replicated.fetch_add(st.pending.size(), std::memory_order_relaxed);
  auto id = st.next_flush++;
  sent_flush rec{st.pending_since, static_cast<int64_t>(st.pending.size()), 0};
  auto send = [self, &st, &rec, id](const caf::actor& target, replica_batch&& b) {
    ++rec.open;
    ++st.unconfirmed[target][id];
    if (st.watched.insert(target.address()).second)
      self->monitor(target);
    self->request(target, replica_confirm_timeout, actors::replica_atom::value, std::move(b))
      .then([self, target, id] { settled(self, target, id, 1); },
            [self, target, id](caf::error&) { settled(self, target, id, 1); });
  };
  std::map<caf::actor, replica_batch> out;
  for (auto& [key, payload] : st.pending) {
    for (auto& target : st.placement->replica_targets(key, st.factor)) {
      auto& b = out[target];
      b.keys.push_back(key);
      b.payloads.push_back(payload);
      if (b.keys.size() >= max_replica_batch) {
        send(target, std::move(b));
        b = replica_batch{};
      }
    }
  }
  st.pending.clear();
  st.pending_since = 0;
  for (auto& [target, b] : out)
    if (!b.keys.empty())
      send(target, std::move(b));
  if (rec.open == 0) // no replica node (replication_factor 1, a lone node)
    m.replication_pending.fetch_sub(rec.changes, std::memory_order_relaxed);
  else
    st.in_flight.emplace(id, rec);
  publish_oldest(self);
}

caf::behavior replicator(replicator_type* self, std::shared_ptr<cluster_placement> placement,
                         size_t factor) {
  actors::keep_on_errors(self);
  actors::census::track(self, actors::census::kind::replicator);
  self->state.placement = std::move(placement);
  self->state.factor = factor;
  // A replica node that went down confirms nothing more: what it had not
  // confirmed stops waiting (the next view picks other replica nodes).
  self->set_down_handler([self](caf::down_msg& dm) {
    auto& st = self->state;
    st.watched.erase(dm.source);
    for (auto t = st.unconfirmed.begin(); t != st.unconfirmed.end(); ++t) {
      if (t->first.address() != dm.source)
        continue;
      auto target = t->first;
      auto open = t->second;
      for (auto& [id, n] : open)
        settled(self, target, id, n);
      break;
    }
  });
  return {
    [self](actors::replica_atom, std::string& key, caf::message& payload) {
      auto& st = self->state;
      auto& n = st.placement->node();
      if (st.pending.empty()) // the oldest change waiting: the lag counts from it
        st.pending_since = std::max<int64_t>(n.now_ms(), 1);
      if (st.pending.insert_or_assign(std::move(key), std::move(payload)).second)
        n.metrics().replication_pending.fetch_add(1, std::memory_order_relaxed);
      publish_oldest(self);
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
