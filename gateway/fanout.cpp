#include "gateway/fanout.hpp"
#include "actors/census.hpp"
#include "actors/errors.hpp"

#include <chrono>
#include <optional>

#include "gateway/json_codec.hpp"

#include <caf/event_based_actor.hpp>
#include <caf/send.hpp>
#include <caf/scheduler/abstract_coordinator.hpp>
#include <caf/stateful_actor.hpp>

#include <algorithm>

#include <functional>
#include <unordered_map>

namespace presence::gateway {

using namespace presence::actors;

namespace {

struct shard_state {
  struct topic {
    caf::actor entity;
    std::vector<sink_ref> sinks; ///< receiving events
    bool subscribed = false;     ///< this shard is a subscriber of the entity
    std::optional<presence_event> last; ///< the user's latest event delivered
  };
  node* owner = nullptr;
  std::unordered_map<std::string, topic> topics; ///< "user:<id>" / "room:<id>"
  static inline const char* name = "presence.fanout";
};

/// How long a subscription waits for the entity's snapshot.
constexpr auto subscribe_timeout = std::chrono::seconds{10};
/// After a view change, when to compare the new owner's state with the last event.
constexpr auto settle_delay = std::chrono::seconds{1};

// True if `seq` is newer than the last event (or snapshot) the topic's
// sockets saw.
bool newer(const std::optional<presence_event>& last, uint64_t seq) {
  return !last || seq > last->seq;
}

presence_event as_event(const user_view& v, state prev) {
  return presence_event{v.user_id, v.current, prev, v.seq, v.since, v.last_active_at};
}

// `coalesce_as`: the topic the sockets coalesce this frame under, when not `key`.
void deliver(caf::stateful_actor<shard_state>* self, const std::string& key,
             const json& j, const std::string& coalesce_as = {}) {
  auto& st = self->state;
  auto i = st.topics.find(key);
  if (i == st.topics.end())
    return;
  auto frame = std::make_shared<const std::string>(j.dump());
  auto topic = std::make_shared<const std::string>(coalesce_as.empty() ? key : coalesce_as);
  auto& sinks = i->second.sinks;
  size_t kept = 0;
  for (auto& s : sinks) {
    if (auto p = s.sink.lock()) {
      p->deliver(frame, topic);
      sinks[kept++] = s;
    }
  }
  sinks.resize(kept);
  st.owner->metrics().events_sent.fetch_add(kept, std::memory_order_relaxed);
  if (sinks.empty() && i->second.subscribed) {
    // Every socket went away: stop the entity's events to this node.
    self->send(i->second.entity, unsubscribe_atom::value,
               caf::actor_cast<caf::actor>(self));
    st.topics.erase(i);
  }
}

caf::behavior shard_actor(caf::stateful_actor<shard_state>* self, node* owner) {
  keep_on_errors(self);
  census::track(self, census::kind::fanout);
  self->state.owner = owner;
  auto self_handle = [self] { return caf::actor_cast<caf::actor>(self); };
  return {
    [self](const presence_event& e) {
      auto key = "user:" + e.user_id;
      auto i = self->state.topics.find(key);
      if (i == self->state.topics.end())
        return;
      // seq only increases on this node's sockets: an event no newer than
      // what they have (a stale copy's, or one that crossed a failover) is
      // dropped.
      if (!newer(i->second.last, e.seq))
        return;
      i->second.last = e;
      deliver(self, key, to_json(e));
    },
    [self](const room_event& e) {
      // A threshold signal is what an application acts on: a later member
      // event must not replace it before it is sent, only a later threshold.
      // A member change (join, leave, member) is a delta without a `seq`:
      // never replaced, and the room's later events queue behind it.
      auto key = "room:" + e.room_id;
      if (e.event == "threshold")
        deliver(self, key, to_json(e), key + "#threshold");
      else if (e.event == "phase")
        deliver(self, key, to_json(e));
      else
        deliver(self, key, to_json(e), barrier_prefix + key);
    },
    [self](const room_delta& d) {
      auto key = "room:" + d.room_id;
      deliver(self, key, to_json(d), barrier_prefix + key);
    },
    // The cluster's view changed: an entity may now live on another node.
    // Subscribe again (through the router, which reaches the current owner).
    // The new owner's events follow as they happen; a second look a moment
    // later (when the sessions have told the new owner of themselves) sends one
    // event if the user's state is not what this node's sockets saw last.
    [self, self_handle](announce_atom) {
      auto& st = self->state;
      for (auto& [key, t] : st.topics) {
        if (!t.subscribed)
          continue;
        bool room = key.rfind("room:", 0) == 0;
        auto id = key.substr(5);
        t.entity = room ? st.owner->router().room(id) : st.owner->router().user(id);
        if (room) {
          self->request(t.entity, subscribe_timeout, subscribe_atom::value, self_handle())
            .then([](const room_view&) {}, [](caf::error&) {});
          continue;
        }
        self->request(t.entity, subscribe_timeout, subscribe_atom::value, self_handle())
          .then([](const user_view&) {}, [](caf::error&) {});
        self->delayed_send(self, settle_delay, announce_atom::value, key);
      }
    },
    [self, self_handle](announce_atom, const std::string& key) {
      auto i = self->state.topics.find(key);
      if (i == self->state.topics.end())
        return;
      self->request(i->second.entity, subscribe_timeout, subscribe_atom::value, self_handle())
        .then(
          [self, key](const user_view& v) {
            auto i = self->state.topics.find(key);
            if (i == self->state.topics.end())
              return;
            auto& last = i->second.last;
            if (!newer(last, v.seq))
              return;
            if (!last || last->current == v.current) {
              // No change to tell: what the sockets saw stays true (the
              // next event's seq shows the gap).
              last = as_event(v, v.current);
              return;
            }
            auto e = as_event(v, last->current);
            last = e;
            deliver(self, key, to_json(e));
          },
          [](caf::error&) {});
    },
    [self, self_handle](subscribe_atom, bool room, const std::string& id, sink_ref s,
                        std::function<void(std::string)> on_snapshot) {
      auto& st = self->state;
      auto key = (room ? "room:" : "user:") + id;
      auto& t = st.topics[key];
      if (!t.entity)
        t.entity = room ? st.owner->router().room(id) : st.owner->router().user(id);
      // Subscribing again is idempotent at the entity and returns a snapshot;
      // the reply travels the same path as events, so the sink is added at the
      // exact point of the stream that the snapshot describes.
      auto add = [self, key, s, on_snapshot](json snapshot) {
        auto i = self->state.topics.find(key);
        if (i == self->state.topics.end())
          return;
        i->second.subscribed = true;
        auto& sinks = i->second.sinks;
        bool present = false;
        for (auto& x : sinks)
          present = present || x.id == s.id;
        if (!present)
          sinks.push_back(s);
        on_snapshot(snapshot.dump());
      };
      // Bounded: the entity may live on a node that dies before it answers.
      // A failure is answered too (the socket tells its client), and a topic
      // nobody receives is not kept.
      auto failed = [self, key, on_snapshot](caf::error&) {
        auto i = self->state.topics.find(key);
        if (i != self->state.topics.end() && i->second.sinks.empty()
            && !i->second.subscribed)
          self->state.topics.erase(i);
        on_snapshot(std::string{});
      };
      if (!t.entity) {
        caf::error none;
        return failed(none);
      }
      if (room)
        self->request(t.entity, subscribe_timeout, subscribe_atom::value, self_handle())
          .then([add](const room_view& v) mutable { add(to_json(v)); }, failed);
      else
        self->request(t.entity, subscribe_timeout, subscribe_atom::value, self_handle())
          .then(
            [self, key, add](const user_view& v) mutable {
              // The snapshot is part of the stream the sockets see.
              if (auto i = self->state.topics.find(key); i != self->state.topics.end())
                if (newer(i->second.last, v.seq))
                  i->second.last = as_event(v, v.current);
              add(to_json(v));
            },
            failed);
    },
    [self, self_handle](unsubscribe_atom, bool room, const std::string& id,
                        uintptr_t sink_id) {
      auto& st = self->state;
      auto key = (room ? "room:" : "user:") + id;
      auto i = st.topics.find(key);
      if (i == st.topics.end())
        return;
      auto& sinks = i->second.sinks;
      sinks.erase(std::remove_if(sinks.begin(), sinks.end(),
                                 [&](const sink_ref& s) {
                                   return s.id == sink_id || s.sink.expired();
                                 }),
                  sinks.end());
      if (sinks.empty()) {
        self->send(i->second.entity, unsubscribe_atom::value, self_handle());
        st.topics.erase(i);
      }
    },
  };
}

} // namespace

fanout::fanout(actors::node& n, size_t shards) {
  if (shards == 0) // as many as the scheduler has workers
    shards = std::max<size_t>(2, n.system().scheduler().num_workers());
  for (size_t i = 0; i < shards; ++i) {
    shards_.push_back(n.system().spawn(shard_actor, &n));
    n.add_view_listener(shards_.back());
  }
}

fanout::~fanout() {
  stop();
}

void fanout::stop() {
  if (stopped_.exchange(true))
    return;
  for (auto& s : shards_)
    caf::anon_send_exit(s, caf::exit_reason::user_shutdown);
}

const caf::actor* fanout::shard_of(const topic_ref& t) const {
  if (stopped_.load(std::memory_order_acquire) || shards_.empty())
    return nullptr; // stopped: sockets destroyed after the stop unsubscribe here
  auto h = std::hash<std::string>{}(t.id) ^ (t.room ? 0x9e3779b97f4a7c15ULL : 0);
  return &shards_[h % shards_.size()];
}

void fanout::subscribe(const topic_ref& t, const std::shared_ptr<event_sink>& sink,
                       std::function<void(std::string)> on_snapshot) {
  auto* shard = shard_of(t);
  if (shard == nullptr)
    return on_snapshot(std::string{});
  caf::anon_send(*shard, subscribe_atom::value, t.room, t.id,
                 sink_ref{sink, reinterpret_cast<uintptr_t>(sink.get())},
                 std::move(on_snapshot));
}

void fanout::unsubscribe(const topic_ref& t, const event_sink* sink) {
  if (auto* shard = shard_of(t))
    caf::anon_send(*shard, unsubscribe_atom::value, t.room, t.id,
                   reinterpret_cast<uintptr_t>(sink));
}

} // namespace presence::gateway
