#include "actors/passivation.hpp"
#include "actors/census.hpp"
#include "actors/errors.hpp"

#include "actors/messages.hpp"
#include "actors/node.hpp"

namespace presence::actors {

void arm_idle_check(caf::event_based_actor* self, node* n, timer_slot& slot) {
  slot.arm(caf::actor_cast<caf::actor>(self), n->now_ms() + n->cfg().node.passivate_after_ms);
}

void review_idle(caf::event_based_actor* self, node* n, timer_slot& slot, bool idle) {
  if (n == nullptr)
    return;
  if (!idle)
    slot.disarm();
  else if (!slot.armed())
    arm_idle_check(self, n, slot);
}

void become_passivated(caf::event_based_actor* self, node* n, std::string key) {
  n->metrics().passivated.fetch_add(1, std::memory_order_relaxed);
  n->router().stop_with_node(self->address());
  keep_on_errors(self);
  self->set_down_handler([](caf::down_msg&) {});
  self->set_default_handler(
    [n, key = std::move(key), role = std::make_shared<census::token>(census::kind::passivated)](
      caf::scheduled_actor* s,
                              caf::message_view& x) -> caf::result<caf::message> {
      auto next = n->router().entity(key);
      if (!next || next.address() == s->address())
        return caf::make_error(caf::sec::request_receiver_down);
      return s->delegate(next, x.move_content_to_message());
    });
  // Its own timers' wake-ups still in flight are dropped (forwarded, they would
  // start the entity again); the rest goes to the default handler above. The
  // behavior keeps the actor alive while it is held.
  self->become(caf::behavior{[](wake_atom, uint64_t) {}});
}

} // namespace presence::actors
