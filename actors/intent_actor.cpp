#include "actors/intent_actor.hpp"

#include "actors/errors.hpp"
#include "actors/handoff.hpp"
#include "actors/node.hpp"

#include <caf/event_based_actor.hpp>

namespace presence::actors {

static_assert(static_cast<size_t>(intent_status::cancelled) + 1 == intent_status_count);
static_assert(static_cast<size_t>(intent_status::accepted) == first_final_intent_status);

namespace {

// An intent counts in `intents` and `intents_by_status` while it has an owner.
void count_intent(node& n, intent_status s, int64_t delta) {
  auto& m = n.metrics();
  m.intents.fetch_add(delta, std::memory_order_relaxed);
  m.intents_by_status[static_cast<size_t>(s)].fetch_add(delta, std::memory_order_relaxed);
}

} // namespace

intent_state::~intent_state() {
  if (owner != nullptr)
    count_intent(*owner, view.status, -1);
}

storage::intent_record to_record(const intent_state& st) {
  auto& v = st.view;
  return storage::intent_record{v.intent_id,  v.from_user,   v.to_user,
                                v.to_room,    v.kind,        v.note,
                                static_cast<uint8_t>(v.status), v.created_at,
                                v.expires_at, v.delivered_at, v.ready_at,
                                st.retain_until};
}

intent_view to_view(const storage::intent_record& r) {
  return intent_view{r.intent_id,  r.from_user,  r.to_user,
                     r.to_room,    r.kind,       r.note,
                     static_cast<intent_status>(r.status), r.created_at,
                     r.expires_at, r.delivered_at, r.ready_at};
}

namespace {

// Looks up the sender and the target where they live now. Returns true if
// either handle changed. A handle kept from before a view change may name a
// copy that no longer acts for its key: a node that restarts recovers its
// intents before it rejoins, and the users they name then start here; once the
// view gives those users to other nodes, these copies are never told anything
// again, and an intent watching one stayed pending for ever.
bool resolve(intent_actor_type* self) {
  auto& st = self->state;
  auto& r = st.owner->router();
  auto sender = r.user(st.view.from_user);
  auto target = st.view.to_user.empty() ? r.room(st.view.to_room) : r.user(st.view.to_user);
  bool changed = sender != st.sender || target != st.target;
  st.sender = std::move(sender);
  st.target = std::move(target);
  return changed;
}

// Tells both sides (and the room) of the intent's view.
void tell_parties(intent_actor_type* self) {
  auto& st = self->state;
  self->send(st.sender, intent_atom::value, st.view);
  if (!st.view.to_user.empty() && st.view.to_user != st.view.from_user)
    self->send(st.target, intent_atom::value, st.view);
  if (!st.view.to_room.empty())
    self->send(st.target, intent_atom::value, st.view);
}

// Tells both sides (and the room) of the intent's view, and snapshots it: every
// change of an intent passes here.
void announce(intent_actor_type* self) {
  auto& st = self->state;
  auto* w = st.owner->writer();
  if (w != nullptr || st.owner->replicator()) {
    auto rec = to_record(st);
    if (st.owner->replicator())
      replicate(st.owner, "intent:" + st.view.intent_id, caf::make_message(intent_transfer{rec}));
    if (w != nullptr)
      w->put(std::move(rec));
  }
  tell_parties(self);
}

// Every change of a counted intent's status passes here (intents_by_status
// follows).
void set_status(intent_state& st, intent_status to) {
  runtime_metrics::move(st.owner->metrics().intents_by_status,
                        static_cast<size_t>(st.view.status), static_cast<size_t>(to));
  st.view.status = to;
}

void stop_watching(intent_actor_type* self) {
  auto& st = self->state;
  self->send(st.target, unsubscribe_atom::value, caf::actor_cast<caf::actor>(self));
}

void deliver(intent_actor_type* self) {
  auto& st = self->state;
  // An answer to its watch may arrive after it moved on (exported: it only
  // forwards, its owner is gone).
  if (st.owner == nullptr || st.view.status != intent_status::pending)
    return;
  auto now = st.owner->now_ms();
  set_status(st, intent_status::delivered);
  st.view.delivered_at = now;
  st.owner->metrics().intent_delivery.record(now - st.view.created_at);
  st.view.ready_at = now;
  stop_watching(self);
  announce(self);
}

// Moves to a final status, tells everyone, and keeps the view for a while.
void finish(intent_actor_type* self, intent_status final_status) {
  auto& st = self->state;
  if (st.view.status == intent_status::pending)
    stop_watching(self);
  // Counted where it finishes: a copy that only catches up with a final
  // status (catch_up) was counted by the node that finished it.
  bool delivered = st.view.status == intent_status::delivered || st.view.delivered_at != 0;
  auto& m = st.owner->metrics();
  m.intent_finished(static_cast<size_t>(final_status), delivered);
  if (delivered && st.view.delivered_at != 0) {
    auto answered = st.owner->now_ms() - st.view.delivered_at;
    if (final_status == intent_status::accepted)
      m.intent_answer_accepted.record(answered);
    else if (final_status == intent_status::declined)
      m.intent_answer_declined.record(answered);
  }
  set_status(st, final_status);
  st.retain_until = st.owner->now_ms() + finished_intent_retention_ms;
  announce(self);
  st.timer.arm(caf::actor_cast<caf::actor>(self), st.retain_until);
}

caf::result<intent_view> reply(intent_actor_type* self, const std::string& acting,
                               intent_status to) {
  auto& st = self->state;
  auto& v = st.view;
  if (is_final(v.status))
    return caf::make_error(errc::conflict,
                           std::string{"the intent is already "}
                             + std::string{to_string(v.status)});
  bool by_sender = acting == v.from_user;
  if (to == intent_status::cancelled ? !by_sender
                                     : (by_sender || (!v.to_user.empty()
                                                      && acting != v.to_user)))
    return caf::make_error(errc::forbidden,
                           to == intent_status::cancelled
                             ? std::string{"only the sender may cancel"}
                             : std::string{"only the target may accept or decline"});
  finish(self, to);
  return v;
}

// A pending intent subscribes to its target and is delivered once the target
// is active (a user) or ready (a room). Subscribing again is harmless (the
// target keeps one entry), so a view change re-watches: the target may have
// moved or been promoted from a replica that did not know this subscriber.
void watch_target(intent_actor_type* self) {
  auto& st = self->state;
  if (st.view.status != intent_status::pending)
    return;
  auto me = caf::actor_cast<caf::actor>(self);
  if (!st.view.to_user.empty())
    self->request(st.target, watch_timeout, subscribe_atom::value, me)
      .then(
        [self](const user_view& v) {
          if (v.current == state::active)
            deliver(self);
        },
        [](caf::error&) {}); // the next view change (or event) tries again
  else
    self->request(st.target, watch_timeout, subscribe_atom::value, me)
      .then(
        [self](const room_view& v) {
          if (v.phase == room_phase::ready)
            deliver(self);
        },
        [](caf::error&) {});
}

// A copy that took over without its owner's word (a promoted replica, a
// record recovered after a crash) may lag behind what the owner published:
// the sender and the target remember every stage they were told, so the copy
// catches up with the furthest of them.
void catch_up(intent_actor_type* self) {
  auto& st = self->state;
  if (is_final(st.view.status))
    return;
  std::vector<caf::actor> users{st.sender};
  if (!st.view.to_user.empty() && st.view.to_user != st.view.from_user)
    users.push_back(st.target);
  for (auto& u : users)
    self->request(u, watch_timeout, caf::get_atom::value, intent_atom::value, st.view.intent_id)
      .then(
        [self](const intent_view& known) {
          auto& st = self->state;
          if (st.owner == nullptr || stage(known.status) <= stage(st.view.status))
            return;
          if (st.view.status == intent_status::pending)
            stop_watching(self);
          set_status(st, known.status);
          st.view = known;
          if (is_final(known.status)) {
            st.retain_until = st.owner->now_ms() + finished_intent_retention_ms;
            st.timer.arm(caf::actor_cast<caf::actor>(self), st.retain_until);
          }
          announce(self);
        },
        [](caf::error&) {});
}

} // namespace

caf::behavior intent_actor(intent_actor_type* self, node* owner, intent_view view,
                           int64_t retain_until) {
  keep_on_errors(self);
  auto& st = self->state;
  st.owner = owner;
  st.view = std::move(view);
  st.retain_until = retain_until;
  st.timer.bind(owner->timers());
  count_intent(*owner, st.view.status, +1);
  resolve(self);
  announce(self);
  if (is_final(st.view.status)) {
    // Restored after it finished: readable until its retention ends.
    st.timer.arm(caf::actor_cast<caf::actor>(self), st.retain_until);
  } else {
    st.timer.arm(caf::actor_cast<caf::actor>(self), st.view.expires_at);
  }
  watch_target(self);
  return {
    [self](const presence_event& e) {
      if (e.current == state::active)
        deliver(self);
    },
    [self](const room_event& e) {
      if (e.phase == room_phase::ready)
        deliver(self);
    },
    [self](caf::get_atom) { return self->state.view; },
    [self](announce_atom) {
      // The view changed: the sides may live elsewhere now, and a side that
      // moved (or was promoted from a replica) may not know this intent. An
      // open one tells them again even through the same handle: a telling
      // sent while a side's owner could not answer was dropped (a repeat is
      // no news to a side that has it: no socket sees it twice).
      if (resolve(self) || !is_final(self->state.view.status))
        tell_parties(self);
      watch_target(self);
    },
    [self](accept_atom, const std::string& acting) {
      return reply(self, acting, intent_status::accepted);
    },
    [self](decline_atom, const std::string& acting) {
      return reply(self, acting, intent_status::declined);
    },
    [self](cancel_atom, const std::string& acting) {
      return reply(self, acting, intent_status::cancelled);
    },
    [self](replicate_atom) {
      auto& st = self->state;
      replicate(st.owner, "intent:" + st.view.intent_id,
                caf::make_message(intent_transfer{to_record(st)}));
    },
    [self](export_atom, const caf::actor& via, uint64_t epoch) {
      // Handed to the next owner: from now on this actor only forwards.
      auto& st = self->state;
      intent_transfer t{to_record(st)};
      if (st.view.status == intent_status::pending)
        stop_watching(self); // the next owner watches the target itself
      auto* n = st.owner;
      st.timer.disarm();
      count_intent(*n, st.view.status, -1);
      st.owner = nullptr;
      if (auto* w = n->writer())
        w->erase(storage::kind::intents, st.view.intent_id);
      auto key = "intent:" + st.view.intent_id;
      become_forwarder(self, n, std::move(key), via, epoch);
      return t;
    },
    [self](wake_atom, uint64_t generation) {
      auto& st = self->state;
      if (!st.timer.is_current(generation))
        return;
      if (!is_final(st.view.status)) {
        finish(self, intent_status::expired);
        return;
      }
      // Retention is over.
      if (auto* w = st.owner->writer())
        w->erase(storage::kind::intents, st.view.intent_id);
      replicate(st.owner, "intent:" + st.view.intent_id, caf::message{});
      st.owner->router().forget("intent:" + st.view.intent_id, self->address());
      self->quit();
    },
  };
}

caf::behavior intent_actor_promoted(intent_actor_type* self, node* owner,
                                    intent_transfer t) {
  auto b = intent_actor(self, owner, to_view(t.rec), t.rec.retain_until);
  catch_up(self);
  return b;
}

caf::behavior intent_actor_restored(intent_actor_type* self, node* owner, intent_view view,
                                    int64_t retain_until) {
  auto b = intent_actor(self, owner, std::move(view), retain_until);
  catch_up(self);
  return b;
}

caf::behavior intent_actor_handoff(intent_actor_type* self, node* owner,
                                   std::string intent_id, caf::actor source,
                                   uint64_t epoch) {
  auto key = "intent:" + intent_id;
  auto fresh = [self, owner, key]() {
    return gone_after_pull(self, owner->router(), key, errc::intent_not_found,
                           std::string{"no such intent"});
  };
  return await_handoff<intent_transfer>(
    self, std::move(key), std::move(source), owner->traffic(), epoch, owner->router(),
    owner->metrics().handoffs_pending,
    [self, owner](intent_transfer& t) {
      return intent_actor(self, owner, to_view(t.rec), t.rec.retain_until);
    },
    fresh, [self, owner](intent_transfer& t) { return intent_actor_promoted(self, owner, t); });
}

} // namespace presence::actors
