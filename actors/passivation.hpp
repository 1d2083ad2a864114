// Passivation: a user or room that nothing needs (no live session, member,
// subscriber, socket or open intent) stops after `node.passivate_after_ms`, as
// Orleans deactivates idle grains and Akka passivates idle entities. Its
// durable record stays with the router (dormant) and in storage; the next use
// starts it again from there. Messages that still reach the stopped actor
// (sent through a handle taken before it stopped) go on to the new one; it
// lives as long as someone holds such a handle (as a hand-off's forwarder).
#pragma once

#include "actors/timer_service.hpp"

#include <caf/event_based_actor.hpp>

#include <string>

namespace presence::actors {

class node;

/// Arms `slot` for the next passivation check, `node.passivate_after_ms` from now.
void arm_idle_check(caf::event_based_actor* self, node* n, timer_slot& slot);

/// Keeps `slot` armed while the entity is `idle` and disarmed while it is busy
/// (a busy entity is never woken by it). Does nothing once passivated (`n` null).
void review_idle(caf::event_based_actor* self, node* n, timer_slot& slot, bool idle);

/// Makes `self` (already unregistered from the router under `key`) forward
/// every message to the entity the router gives for `key` from now on.
void become_passivated(caf::event_based_actor* self, node* n, std::string key);

} // namespace presence::actors
