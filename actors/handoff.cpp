#include "actors/handoff.hpp"
#include "actors/census.hpp"
#include "actors/errors.hpp"

#include "actors/node.hpp"

#include <caf/message_view.hpp>
#include <caf/sec.hpp>
#include <caf/send.hpp>

namespace presence::actors {

void become_forwarder(caf::event_based_actor* self, node* n, std::string key,
                      caf::actor via, uint64_t epoch) {
  n->router().retire(key, self->address());
  keep_on_errors(self);
  self->set_down_handler([](caf::down_msg&) {});
  self->set_default_handler(
    [n, key, via, epoch, role = std::make_shared<census::token>(census::kind::forwarder)](
      caf::scheduled_actor* s, caf::message_view& x) -> caf::result<caf::message> {
      auto* where = n->router().where();
      if (where == nullptr)
        return caf::make_error(caf::sec::request_receiver_down);
      return where->forward(s, key, via, epoch, x.move_content_to_message());
    });
  // Routed here with its hops counted (cluster/routing.cpp); everything else
  // goes to the default handler above.
  self->become(caf::behavior{
    // An export is meant for the copy it is sent to, which has moved on: it
    // is answered, never passed on (the owner it reached exported itself to
    // its own node, a forwarder to itself that every request for the key then
    // went round until the hop bound).
    [key](export_atom, const caf::actor&, uint64_t) -> caf::result<caf::message> {
      return caf::make_error(errc::unavailable, "it moved on: " + key);
    },
    [self, n, key, via, epoch](route_atom, uint8_t hops,
                               caf::message& content) -> caf::result<caf::message> {
      auto* where = n->router().where();
      if (where == nullptr)
        return caf::make_error(caf::sec::request_receiver_down);
      return where->forward(self, key, via, epoch, std::move(content), hops);
    }});
}

void replicate_fired(node* n, bool& scheduled) {
  if (scheduled)
    n->metrics().replication_pending.fetch_sub(1, std::memory_order_relaxed);
  scheduled = false;
}

void replicate(node* n, std::string key, caf::message payload) {
  if (auto& r = n->replicator())
    caf::anon_send(r, replica_atom::value, std::move(key), std::move(payload));
}

void replicate_soon(caf::event_based_actor* self, node* n, bool& scheduled) {
  if (scheduled || !n->replicator())
    return;
  scheduled = true;
  n->metrics().replication_pending.fetch_add(1, std::memory_order_relaxed);
  self->delayed_send(self, replicate_interval, replicate_atom::value);
}

} // namespace presence::actors
