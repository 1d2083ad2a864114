#include "cluster/routing.hpp"

#include "actors/errors.hpp"
#include "actors/ids.hpp"
#include "actors/messages.hpp"
#include "actors/node.hpp"

#include <caf/event_based_actor.hpp>
#include <caf/message_view.hpp>
#include <caf/scheduled_actor.hpp>

namespace presence::cluster {

namespace {

caf::behavior stub_actor(caf::event_based_actor* self,
                         std::shared_ptr<cluster_placement> where, std::string key) {
  self->set_default_handler(
    [where, key](caf::scheduled_actor* s, caf::message_view& x) -> caf::result<caf::message> {
      return where->route(s, key, where->epoch(), 0, x.move_content_to_message());
    });
  // A behavior that matches nothing keeps the actor alive; everything goes to
  // the default handler above.
  return {[](actors::route_atom, actors::route_atom) {}};
}

} // namespace

cluster_placement::cluster_placement(actors::node& n, std::string self_id, size_t vnodes)
  : node_(n), self_(std::move(self_id)), vnodes_(vnodes) {
  // An id is at most 128 bytes of [A-Za-z0-9_.:@-]: the node id must fit.
  pin_ = self_.size() <= 64 && self_.find('@') == std::string::npos
         && actors::valid_id(self_);
}

std::string_view cluster_placement::pinned_node(const std::string& key) {
  if (key.rfind("session:", 0) != 0 && key.rfind("intent:", 0) != 0)
    return {};
  auto at = key.rfind('@');
  return at == std::string::npos ? std::string_view{}
                                 : std::string_view{key}.substr(at + 1);
}

std::string cluster_placement::pinned_id(const std::string& random_part) const {
  return pin_ ? random_part + "@" + self_ : random_part;
}

bool cluster_placement::is_local(const std::string& key) const {
  if (auto pinned = pinned_node(key); !pinned.empty())
    return pinned == self_;
  auto t = load();
  // Alone (or not joined yet): everything is ours, without hashing.
  return t->r.nodes().size() <= 1 || t->r.owner(key) == self_;
}

caf::actor cluster_placement::make_stub(const std::string& key) {
  return node_.system().spawn(stub_actor, shared_from_this(), key);
}

void cluster_placement::update(const view& v) {
  auto t = std::make_shared<table>();
  t->epoch = v.epoch;
  t->r = ring{v.ids(), vnodes_};
  for (auto& m : v.members)
    t->handles[m.id] = m.handle;
  std::atomic_store(&table_, std::shared_ptr<const table>{std::move(t)});
}

caf::result<caf::message> cluster_placement::route(caf::scheduled_actor* self,
                                                  const std::string& key, uint64_t epoch,
                                                  uint8_t hops, caf::message content) {
  // Fenced by epoch (routing.hpp): routed by a view no newer than ours and not
  // ours in it, the message goes on to the owner of our view.
  if (epoch <= this->epoch() && hops < max_route_hops)
    if (auto owner = owner_handle(key))
      return self->delegate(owner, actors::route_atom::value, key, this->epoch(),
                            static_cast<uint8_t>(hops + 1), std::move(content));
  // Ours (or its owner left the view and the key moved here).
  if (auto local = node_.router().local(key))
    return self->delegate(local, std::move(content));
  // A session or intent that is not here is gone (with its node, if that left).
  if (key.rfind("intent:", 0) == 0)
    return caf::make_error(actors::errc::intent_not_found, std::string{"no such intent"});
  return caf::make_error(actors::errc::session_not_found,
                         std::string{"no such session: create a new one"});
}

caf::actor cluster_placement::owner_handle(const std::string& key) const {
  auto t = load();
  if (auto pinned = pinned_node(key); !pinned.empty()) {
    // Its node, if it is a member (else the entity is gone with it).
    if (pinned == self_)
      return {};
    auto i = t->handles.find(std::string{pinned});
    return i == t->handles.end() ? caf::actor{} : i->second;
  }
  if (t->r.empty())
    return {};
  auto& owner = t->r.owner(key);
  if (owner == self_)
    return {};
  auto i = t->handles.find(owner);
  return i == t->handles.end() ? caf::actor{} : i->second;
}

} // namespace presence::cluster
