// How many actors of each kind this process runs. A node that does not stop
// names what it waits for, and /metrics shows what a node holds (a leak of
// forwarders or requests shows as a count that only grows).
#pragma once

#include <cstdint>
#include <string>

#include <caf/scheduled_actor.hpp>

namespace presence::actors::census {

enum class kind : uint8_t {
  user,
  room,
  session,
  intent,
  forwarder,  ///< an entity that moved and forwards to its new place
  passivated, ///< an idle entity that stopped and forwards to its successor
  stub,       ///< the local address of an entity another node owns
  handoff,    ///< a source a hand-off pulls through
  request,    ///< one gateway request waiting for its answer
  socket,     ///< the actor side of one WebSocket
  fanout,
  membership,
  traffic, ///< the door for entity traffic from other nodes
  replicator,
  ticker,
  helper, ///< short-lived work of the membership actor
};

inline constexpr size_t kind_count = static_cast<size_t>(kind::helper) + 1;

/// The kind's name, e.g. "user".
const char* name(kind k);

/// Counts one `k` while it lives: a member of an entity's state, or captured
/// by the handlers of a role an actor takes (forwarder, passivated, handoff),
/// which go when the actor takes another behavior or terminates.
class token {
public:
  explicit token(kind k);
  ~token();
  token(const token&) = delete;
  token& operator=(const token&) = delete;

private:
  kind kind_;
};

/// Counts `self` as one `k` until it terminates (for actors without state).
void track(caf::scheduled_actor* self, kind k);

/// The actors of kind `k` that are running in this process.
int64_t live(kind k);

/// The kinds that have live actors, as "3 user, 1 stub" ("none" when none).
std::string summary();

} // namespace presence::actors::census
