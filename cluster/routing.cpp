#include "cluster/routing.hpp"

#include "actors/census.hpp"
#include "actors/errors.hpp"
#include "actors/handoff.hpp"
#include "actors/ids.hpp"
#include "actors/messages.hpp"
#include "actors/node.hpp"

#include <caf/event_based_actor.hpp>
#include <caf/message_view.hpp>
#include <caf/scheduled_actor.hpp>
#include <caf/send.hpp>

#include <algorithm>

namespace presence::cluster {

namespace {

caf::behavior stub_actor(caf::event_based_actor* self,
                         std::shared_ptr<cluster_placement> where, std::string key) {
  actors::keep_on_errors(self);
  actors::census::track(self, actors::census::kind::stub);
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

std::shared_ptr<cluster_placement::table> cluster_placement::make_table(const view& v,
                                                                      size_t vnodes) {
  auto t = std::make_shared<table>();
  t->epoch = v.epoch;
  auto owners = v.owner_ids();
  t->r = ring{owners, vnodes};
  t->owners.insert(owners.begin(), owners.end());
  for (auto& m : v.members)
    t->handles[m.id] = m.traffic;
  return t;
}

std::string cluster_placement::owner_in(const table& t, const std::string& key) {
  if (auto pinned = pinned_node(key); !pinned.empty()) {
    std::string node{pinned};
    if (t.owners.count(node) > 0)
      return node;
  }
  return t.r.empty() ? std::string{} : t.r.owner(key);
}

bool cluster_placement::is_local(const std::string& key) const {
  auto t = load();
  // Not joined yet: everything is ours.
  if (t->owners.empty())
    return true;
  auto pinned = pinned_node(key);
  if (!pinned.empty() && pinned == self_ && t->owners.count(self_) > 0)
    return true; // the common case, without hashing
  // Alone: everything is ours, without hashing.
  if (t->owners.size() == 1 && t->owners.count(self_) > 0)
    return true;
  return owner_in(*t, key) == self_;
}

caf::actor cluster_placement::make_stub(const std::string& key) {
  return node_.system().spawn(stub_actor, shared_from_this(), key);
}

void cluster_placement::update(const view& v) {
  auto old = load();
  auto t = make_table(v, vnodes_);
  {
    // A member that is gone without draining failed: its pinned sessions and
    // intents may come back with it.
    std::lock_guard<std::mutex> guard{failed_mtx_};
    auto now = node_.now_ms();
    for (auto& [id, h] : old->handles)
      if (t->handles.count(id) == 0 && old->owners.count(id) > 0 && id != self_)
        failed_[id] = now;
    for (auto& [id, h] : t->handles)
      failed_.erase(id);
  }
  if (old->handles.count(self_) > 0 && old->owners == t->owners && old->previous) {
    // A view that moves nothing (renumbered, a member's new incarnation): the
    // view before stays the one the keys moved from, so a pull after it still
    // finds the old owner.
    t->previous = old->previous;
  } else if (old->handles.count(self_) > 0) {
    auto before = std::make_shared<table>(*old);
    before->previous = nullptr;
    t->previous = std::move(before);
  } else {
    // Just joined: before this node, the others owned everything.
    view others{v.epoch, {}};
    for (auto& m : v.members)
      if (m.id != self_)
        others.members.push_back(m);
    t->previous = make_table(others, vnodes_);
  }
  std::atomic_store(&table_, std::shared_ptr<const table>{std::move(t)});
}

caf::actor cluster_placement::handoff_source(const std::string& key) const {
  auto t = load();
  if (!t->previous || owner_in(*t, key) != self_)
    return {};
  auto was = owner_in(*t->previous, key);
  if (was.empty() || was == self_)
    return {};
  auto i = t->handles.find(was);
  return i == t->handles.end() ? caf::actor{} : i->second;
}

bool cluster_placement::watchable(const caf::node_id& n) const {
  auto t = load();
  for (auto& [id, h] : t->handles)
    if (h && h.node() == n)
      return true;
  return n == node_.system().node();
}

bool cluster_placement::awaited(const std::string& key) const {
  auto pinned = pinned_node(key);
  if (pinned.empty() || pinned == self_)
    return false;
  std::lock_guard<std::mutex> guard{failed_mtx_};
  auto i = failed_.find(std::string{pinned});
  // Not past a minute (a supervisor restarts a node well within it; a node
  // lost for good must not keep its clients waiting), nor past the time a
  // silent session is offline wherever it is.
  auto wait = std::min<int64_t>(failed_node_wait_ms, node_.cfg().presence.offline_after_ms);
  return i != failed_.end() && node_.now_ms() - i->second < wait;
}

void cluster_placement::await_nodes(const std::vector<std::string>& ids) {
  auto t = load();
  std::lock_guard<std::mutex> guard{failed_mtx_};
  auto now = node_.now_ms();
  for (auto& id : ids)
    if (id != self_ && t->handles.count(id) == 0)
      failed_.emplace(id, now);
}

bool cluster_placement::owned_before(const std::string& key) const {
  auto t = load();
  return t->previous && owner_in(*t->previous, key) == self_;
}

std::vector<std::string> cluster_placement::holders_in(const table& t, const std::string& key,
                                                      size_t factor) {
  std::vector<std::string> out;
  auto owner = owner_in(t, key);
  if (owner.empty())
    return out;
  out.push_back(owner);
  for (auto& id : t.r.owners(key, factor + 1))
    if (out.size() < factor && id != owner)
      out.push_back(id);
  return out;
}

std::vector<caf::actor> cluster_placement::replica_targets(const std::string& key,
                                                           size_t factor) const {
  std::vector<caf::actor> out;
  auto t = load();
  for (auto& id : holders_in(*t, key, factor))
    if (id != self_)
      if (auto i = t->handles.find(id); i != t->handles.end() && i->second)
        out.push_back(i->second);
  return out;
}

bool cluster_placement::holds_replica(const std::string& key, size_t factor) const {
  auto t = load();
  auto ids = holders_in(*t, key, factor);
  return std::find(ids.begin(), ids.end(), self_) != ids.end();
}

bool cluster_placement::promotes(const std::string& key) const {
  auto t = load();
  if (!t->previous || owner_in(*t, key) != self_)
    return false;
  auto was = owner_in(*t->previous, key);
  return !was.empty() && was != self_ && t->handles.count(was) == 0;
}

std::optional<caf::message> cluster_placement::take_lost_replica(const std::string& key) {
  return replicas_.take(key);
}

std::optional<caf::message> cluster_placement::take_replica(const std::string& key) {
  if (!promotes(key))
    return std::nullopt;
  return replicas_.take(key);
}

void cluster_placement::hand_off(const std::string& key) {
  if (auto owner = owner_handle(key))
    caf::anon_send(owner, actors::handoff_atom::value, std::vector<std::string>{key},
                   node_.traffic(), epoch());
}

caf::result<caf::message> cluster_placement::forward(caf::scheduled_actor* self,
                                                    const std::string& key,
                                                    const caf::actor& via, uint64_t epoch,
                                                    caf::message content, uint8_t hops) {
  // While this node's view is older, or still gives it the key (the forwarder
  // itself is registered here then), the message goes to the new owner. The
  // hops go on counting: two nodes whose views each send the key to the
  // other's forwarder must not pass a message back and forth for ever (that
  // kept every worker busy, and the whole cluster wedged).
  auto next = static_cast<uint8_t>(hops + 1);
  if (via && (this->epoch() < epoch || !owner_handle(key)))
    return self->delegate(via, actors::route_atom::value, key, std::max(epoch, this->epoch()),
                          next, std::move(content));
  return route(self, key, this->epoch(), next, std::move(content));
}

std::vector<double> cluster_placement::shares(const std::vector<std::string>& ids) const {
  constexpr size_t samples = 4096;
  std::vector<double> out(ids.size(), 0.0);
  auto t = load();
  if (t->r.empty())
    return out;
  for (size_t i = 0; i < samples; ++i) {
    auto& owner = t->r.owner("sample:" + std::to_string(i));
    for (size_t j = 0; j < ids.size(); ++j)
      if (ids[j] == owner)
        out[j] += 1.0 / samples;
  }
  return out;
}

std::map<caf::actor, std::vector<std::string>>
cluster_placement::owners_elsewhere(const std::vector<std::string>& keys) const {
  std::map<caf::actor, std::vector<std::string>> out;
  for (auto& key : keys)
    if (auto owner = owner_handle(key))
      out[owner].push_back(key);
  return out;
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
  if (auto local = node_.router().local(key)) {
    if (!node_.router().forwards(key, local.address()))
      return self->delegate(local, std::move(content));
    // A forwarder registered here (its new owner's view is newer than ours):
    // it goes on with the hops counted, up to a bound.
    if (hops >= max_forward_hops)
      return caf::make_error(actors::errc::unavailable,
                             std::string{"the entity is moving between nodes: try again"});
    return self->delegate(local, actors::route_atom::value, hops, std::move(content));
  }
  // A stopping node hands out nothing: the key is not gone, it is about to
  // move (the client retries elsewhere).
  if (node_.router().closed())
    return caf::make_error(actors::errc::unavailable,
                           std::string{"the node is stopping: try again"});
  // Its node failed a moment ago and may bring it back (a restart recovers it).
  if (awaited(key))
    return caf::make_error(actors::errc::unavailable,
                           std::string{"its node is down and may come back with it: try again"});
  // A session or intent that is not here is gone (with its node, if that left).
  if (key.rfind("intent:", 0) == 0)
    return caf::make_error(actors::errc::intent_not_found, std::string{"no such intent"});
  return caf::make_error(actors::errc::session_not_found,
                         std::string{"no such session: create a new one"});
}

caf::actor cluster_placement::owner_handle(const std::string& key) const {
  auto t = load();
  auto owner = owner_in(*t, key);
  if (owner.empty() || owner == self_)
    return {};
  auto i = t->handles.find(owner);
  return i == t->handles.end() ? caf::actor{} : i->second;
}

} // namespace presence::cluster
