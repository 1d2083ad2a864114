// Per-node fan-out of events to local sockets. A user's or room's actor sends each
// event once per node (to the fan-out shard that owns its topic), and the shard
// renders it to JSON once and hands the same text to every local socket
// subscribed to it. Shards are actors, chosen by a hash of the topic, so one
// entity's events stay in order; a new subscriber gets its snapshot through the
// same shard, before any later event.
#pragma once

#include "actors/node.hpp"

#include <caf/actor.hpp>
#include <caf/allowed_unsafe_message_type.hpp>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace presence::gateway {

/// A topic that starts with this marks a frame that is never coalesced and
/// that the rest of the topic's events queue behind ("!room:<id>": a member
/// change, a delta without a `seq`, which a later `phase` must not replace).
inline constexpr char barrier_prefix = '!';

/// Something that takes rendered frames: a WebSocket session. Thread-safe.
class event_sink {
public:
  virtual ~event_sink() = default;
  /// Queues one text frame of `topic` ("user:<id>" or "room:<id>"; both shared by
  /// all sinks of an event). A frame not yet sent may be replaced by a later
  /// one of the same topic (PROTOCOL.md 1.1: bursts are coalesced), unless
  /// the topic starts with `barrier_prefix`.
  virtual void deliver(std::shared_ptr<const std::string> frame,
                       std::shared_ptr<const std::string> topic) = 0;
};

/// A weak reference to a sink, as carried in messages (local only).
struct sink_ref {
  std::weak_ptr<event_sink> sink;
  uintptr_t id = 0; ///< identity of the sink, valid after it expired
};

/// A topic: "user:<id>" or "room:<id>".
struct topic_ref {
  bool room = false;
  std::string id;
};

class fanout {
public:
  /// Spawns `shards` fan-out actors for the node; 0: one per worker of the
  /// node's scheduler (as many as it really runs, at least 2).
  explicit fanout(actors::node& n, size_t shards = 0);
  ~fanout();

  /// Subscribes `sink` to the topic; `on_snapshot` receives the snapshot JSON
  /// (a user or room view) on a CAF worker, before any event of the topic is
  /// delivered to the sink; or, when the entity could not answer, an empty
  /// string (the sink is not subscribed).
  void subscribe(const topic_ref& t, const std::shared_ptr<event_sink>& sink,
                 std::function<void(std::string)> on_snapshot);

  /// Stops delivering the topic to `sink`.
  void unsubscribe(const topic_ref& t, const event_sink* sink);

  /// Stops the shards (shutdown); later calls do nothing.
  void stop();

  /// The number of shards (fixed at construction).
  size_t shard_count() const { return shards_.size(); }

private:
  // The shard of `t`, or nullptr once stopped.
  const caf::actor* shard_of(const topic_ref& t) const;

  std::vector<caf::actor> shards_; // written only by the constructor
  std::atomic<bool> stopped_{false};
};

} // namespace presence::gateway

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(presence::gateway::sink_ref)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::function<void(std::string)>)
