#include "actors/user_actor.hpp"

#include "actors/errors.hpp"
#include "actors/handoff.hpp"
#include "actors/node.hpp"
#include "actors/passivation.hpp"
#include "actors/session_actor.hpp"

#include <caf/event_based_actor.hpp>

#include <algorithm>
#include <chrono>
#include <memory>

namespace presence::actors {

user_state::~user_state() {
  if (owner != nullptr)
    owner->metrics().users_by_state[static_cast<size_t>(published)].fetch_sub(
      1, std::memory_order_relaxed);
}

storage::user_record to_record(const user_state& st) {
  return storage::user_record{st.user_id,        static_cast<uint8_t>(st.published),
                              st.seq,            st.since,
                              st.last_active_at, st.last_seen_at,
                              st.intent_analytics};
}

namespace {

void save(user_actor_type* self) {
  auto& st = self->state;
  if (auto* w = st.owner->writer())
    w->put(to_record(st));
  replicate_soon(self, st.owner, st.replicate_scheduled);
}

// How long the user waits for its sessions' fresh views when asked for its own.
constexpr auto session_view_timeout = std::chrono::seconds{2};

state aggregate(const user_state& st) {
  auto best = state::offline;
  for (auto& [id, s] : st.sessions)
    best = best_of(best, s.current);
  return best;
}

member_update make_member_update(const user_state& st, bool visible,
                                  bool member) {
  return member_update{st.user_id, st.published, visible, member,
                       st.last_active_at};
}

user_view base_view(user_actor_type* self) {
  auto& st = self->state;
  user_view v;
  v.user_id = st.user_id;
  v.current = st.published;
  v.since = st.since;
  v.seq = st.seq;
  v.last_active_at = st.last_active_at;
  v.last_seen_at = st.last_seen_at;
  v.server_time = st.owner->now_ms();
  auto& cfg = st.owner->presence();
  for (auto& [id, s] : st.sessions) {
    auto c = confidence(v.server_time - s.last_signal_at, s.heartbeat_ms, cfg);
    v.confidence = std::max(v.confidence, c);
    v.sessions.push_back(session_view{id, st.user_id, s.device, s.current,
                                      s.last_signal_at, s.last_active_at,
                                      s.heartbeat_ms, c, {}});
  }
  return v;
}

void send_all(user_actor_type* self, const std::vector<caf::actor>& to,
              const caf::message& msg) {
  for (auto& a : to)
    self->send(a, msg);
  self->state.owner->metrics().events_sent.fetch_add(to.size(),
                                                      std::memory_order_relaxed);
}

// Makes `next` the published state: seq + 1, subscribers and rooms told.
void publish(user_actor_type* self, state next, int64_t at) {
  auto& st = self->state;
  auto prev = st.published;
  if (next == prev)
    return;
  auto& m = st.owner->metrics();
  runtime_metrics::move(m.users_by_state, prev, next);
  m.user_transitions.fetch_add(1, std::memory_order_relaxed);
  st.published = next;
  st.seq += 1;
  st.since = std::max(st.since, at);
  send_all(self, st.subscribers,
           caf::make_message(presence_event{st.user_id, next, prev, st.seq,
                                            st.since, st.last_active_at}));
  for (auto& [room_id, mem] : st.rooms)
    self->send(mem.room, member_atom::value,
               make_member_update(st, mem.visible, true));
}

// Re-derives the aggregate after a change of the sessions; honours linger.
void reaggregate(user_actor_type* self, int64_t at) {
  auto& st = self->state;
  auto next = aggregate(st);
  auto linger_ms = st.owner->presence().offline_linger_ms;
  if (next == state::offline && st.published != state::offline && linger_ms > 0) {
    if (!st.linger.armed())
      st.linger.arm(caf::actor_cast<caf::actor>(self), at + linger_ms);
    return;
  }
  st.linger.disarm();
  publish(self, next, at);
}

// Removes `session_id` from every membership; a room left without any of this
// user's sessions loses the user.
void drop_session_from_rooms(user_actor_type* self,
                             const std::string& session_id) {
  auto& st = self->state;
  for (auto i = st.rooms.begin(); i != st.rooms.end();) {
    auto& mem = i->second;
    if (mem.sessions.erase(session_id) > 0 && mem.sessions.empty()) {
      self->send(mem.room, member_atom::value,
                 make_member_update(st, mem.visible, false));
      i = st.rooms.erase(i);
    } else {
      ++i;
    }
  }
}

void remember_intent(user_state& st, const intent_view& v) {
  st.intents[v.intent_id] = v;
  // Bound the index: drop the oldest finished intents beyond the limit.
  size_t finished = 0;
  for (auto& [id, x] : st.intents)
    finished += is_final(x.status) ? 1 : 0;
  while (finished > max_finished_intents_per_user) {
    auto oldest = st.intents.end();
    for (auto i = st.intents.begin(); i != st.intents.end(); ++i)
      if (is_final(i->second.status)
          && (oldest == st.intents.end()
              || i->second.created_at < oldest->second.created_at))
        oldest = i;
    st.intents.erase(oldest);
    --finished;
  }
}

// The outcomes of the user's own intents (sent, and sent to it) from a view
// at a later stage than the one known (`st.intents` still holds the earlier).
// Returns whether anything was recorded.
bool note_outcome(user_state& st, const intent_view& v) {
  auto known = st.intents.find(v.intent_id);
  auto known_open = known != st.intents.end() && !is_final(known->second.status);
  auto was_pending = known_open && known->second.status == intent_status::pending;
  auto outcome = is_final(v.status) ? static_cast<int>(v.status)
                                        - static_cast<int>(intent_status::accepted)
                                    : -1;
  auto delivered_now = v.status == intent_status::delivered;
  bool changed = false;
  auto now = st.owner->now_ms();
  if (v.from_user == st.user_id)
    changed |= analytics::note_user_intent(st.intent_analytics.outgoing, now, known_open,
                                           was_pending, delivered_now, outcome,
                                           v.created_at, v.delivered_at);
  if (v.to_user == st.user_id)
    changed |= analytics::note_user_intent(st.intent_analytics.incoming, now, known_open,
                                           was_pending, delivered_now, outcome,
                                           v.created_at, v.delivered_at);
  if (changed)
    ++st.intent_analytics.revision;
  return changed;
}

void remove_actor(std::vector<caf::actor>& xs, const caf::actor_addr& who) {
  xs.erase(std::remove_if(xs.begin(), xs.end(),
                          [&](const caf::actor& a) { return a.address() == who; }),
           xs.end());
}

void add_actor(user_actor_type* self, std::vector<caf::actor>& xs,
               const caf::actor& who) {
  // A handle from a replica whose actor was gone when it arrived is null:
  // monitoring it crashed (SIGSEGV when users were promoted at a restart).
  if (!who)
    return;
  if (std::find(xs.begin(), xs.end(), who) == xs.end()) {
    xs.push_back(who);
    if (self->state.owner != nullptr && self->state.owner->router().watchable(who.node()))
      self->monitor(who);
  }
}

caf::behavior user_behavior(user_actor_type* self);
user_transfer hand_over(user_actor_type* self, const caf::actor& via, uint64_t epoch);

int64_t lost_grace(const node& n) {
  return std::max(lost_session_grace_ms, n.cfg().cluster.failure_timeout_ms);
}

// Stops counting the sessions whose node died and that did not come back
// within the grace; the others wait for their own grace.
void drop_lost(user_actor_type* self) {
  auto& st = self->state;
  auto now = st.owner->now_ms();
  int64_t next = 0;
  std::vector<std::string> gone;
  for (auto& [id, e] : st.sessions) {
    if (e.lost_at == 0)
      continue;
    if (e.lost_at + lost_grace(*st.owner) <= now)
      gone.push_back(id);
    else if (next == 0 || e.lost_at + lost_grace(*st.owner) < next)
      next = e.lost_at + lost_grace(*st.owner);
  }
  for (auto& id : gone) {
    st.sessions.erase(id);
    drop_session_from_rooms(self, id);
  }
  if (next != 0)
    st.lost.arm(caf::actor_cast<caf::actor>(self), next);
  if (!gone.empty()) {
    reaggregate(self, now);
    save(self);
  }
}

} // namespace

namespace {

// What every user actor starts with, fresh (offline) or restored.
void start_user(user_actor_type* self, node* owner, std::string user_id, state published) {
  keep_on_errors(self);
  auto& st = self->state;
  st.owner = owner;
  st.user_id = std::move(user_id);
  st.linger.bind(owner->timers());
  st.lost.bind(owner->timers(), 1);
  st.idle.bind(owner->timers(), 2);
  st.published = published;
  owner->metrics().users_by_state[static_cast<size_t>(published)].fetch_add(
    1, std::memory_order_relaxed);
}

} // namespace

caf::behavior user_actor(user_actor_type* self, node* owner, std::string user_id) {
  start_user(self, owner, std::move(user_id), state::offline);
  return user_behavior(self);
}

namespace {

// A restored user acts: it publishes the state derived from its sessions and
// tells its rooms of its memberships, as a restored member.
void act_restored(user_actor_type* self, std::map<std::string, user_state::membership> rooms) {
  auto& st = self->state;
  auto* owner = st.owner;
  // Time spent down counts: the stored state is replaced by the derived one
  // (before the rooms are attached: they learn the result as a restored member).
  publish(self, aggregate(st), owner->now_ms());
  st.rooms = std::move(rooms);
  for (auto& [room_id, mem] : st.rooms) {
    mem.room = owner->router().room(room_id);
    auto u = make_member_update(st, mem.visible, true);
    u.restored = true;
    self->send(mem.room, member_atom::value, u);
  }
  save(self);
}

} // namespace

caf::behavior user_actor_restored(user_actor_type* self, node* owner,
                                  user_restore restore) {
  auto& rec = restore.rec;
  start_user(self, owner, std::move(rec.user_id), static_cast<state>(rec.published));
  auto& st = self->state;
  st.seq = rec.seq;
  st.since = rec.since;
  st.last_active_at = rec.last_active_at;
  st.last_seen_at = rec.last_seen_at;
  st.intent_analytics = std::move(rec.intents);
  auto now = owner->now_ms();
  auto& cfg = owner->presence();
  std::map<std::string, user_state::membership> rooms;
  for (auto& s : restore.sessions) {
    auto clk = clock_of(s);
    auto& e = st.sessions[s.session_id];
    e.device = s.device;
    e.current = derive_state(clk, now, cfg);
    e.last_signal_at = s.last_signal_at;
    e.last_active_at = clk.reported_last_active_at();
    e.heartbeat_ms = s.heartbeat_ms;
    st.last_active_at = std::max(st.last_active_at, e.last_active_at);
    st.last_seen_at = std::max(st.last_seen_at, e.last_signal_at);
    for (auto& [room_id, visible] : s.rooms) {
      auto& mem = rooms[room_id];
      mem.sessions.insert(s.session_id);
      mem.visible = visible;
    }
  }
  if (!restore.held) {
    act_restored(self, std::move(rooms));
    return user_behavior(self);
  }
  // Held: everything but the release and the hand-over waits in the mailbox.
  self->set_default_handler(caf::skip);
  return {
    [self, rooms](release_atom) mutable {
      self->set_default_handler(caf::print_and_drop);
      act_restored(self, std::move(rooms));
      self->become(user_behavior(self));
    },
    [self](export_atom, const caf::actor& via, uint64_t epoch) {
      // The cluster's copy replaces this one: it never acted.
      self->set_default_handler(caf::print_and_drop);
      return hand_over(self, via, epoch);
    },
  };
}

namespace {

// The state handed to the user's next owner.
user_transfer export_user(const user_state& st) {
  user_transfer t;
  t.rec = to_record(st);
  for (auto& [id, s] : st.sessions)
    t.sessions.push_back(handoff_session{id, s.device, s.current, s.last_signal_at,
                                         s.last_active_at, s.heartbeat_ms, s.ref});
  t.subscribers = st.subscribers;
  t.inbox = st.inbox;
  for (auto& [room_id, mem] : st.rooms)
    t.rooms.push_back(handoff_membership{
      room_id, std::vector<std::string>(mem.sessions.begin(), mem.sessions.end()),
      mem.visible});
  for (auto& [id, v] : st.intents)
    t.intents.push_back(v);
  return t;
}

// The user as its old owner handed it over: same seq, since and sessions; its
// subscribers, sockets and rooms carry on without a leave or a join.
caf::behavior user_from_transfer(user_actor_type* self, node* owner, user_transfer& t,
                                 bool promoted = false) {
  start_user(self, owner, t.rec.user_id, static_cast<state>(t.rec.published));
  auto& st = self->state;
  st.seq = t.rec.seq;
  st.since = t.rec.since;
  st.last_active_at = t.rec.last_active_at;
  st.last_seen_at = t.rec.last_seen_at;
  st.intent_analytics = std::move(t.rec.intents);
  for (auto& s : t.sessions) {
    auto& e = st.sessions[s.session_id];
    e.device = std::move(s.device);
    e.current = s.current;
    e.last_signal_at = s.last_signal_at;
    e.last_active_at = s.last_active_at;
    e.heartbeat_ms = s.heartbeat_ms;
    e.ref = s.ref;
    if (e.ref && e.ref.node() != self->node()) {
      e.monitored = true;
      // A replica's references may name actors of nodes that are gone, and
      // monitoring such a proxy crashed inside CAF (also while the node
      // stops): a promoted user watches none of them. The view change that
      // promoted it makes every live session announce itself, which ends the
      // grace below and watches the session afresh.
      auto alive = !promoted && owner->router().watchable(e.ref.node())
                     ? caf::actor_cast<caf::actor>(e.ref)
                     : caf::actor{};
      if (alive) {
        self->monitor(alive);
      } else {
        // Its node is gone (or unknown here): it has the grace to come back.
        e.lost_at = owner->now_ms();
        if (!st.lost.armed())
          st.lost.arm(caf::actor_cast<caf::actor>(self), e.lost_at + lost_grace(*owner));
      }
    }
  }
  for (auto& a : t.subscribers)
    add_actor(self, st.subscribers, a);
  for (auto& a : t.inbox)
    add_actor(self, st.inbox, a);
  for (auto& m : t.rooms) {
    auto& mem = st.rooms[m.room_id];
    mem.room = owner->router().room(m.room_id);
    mem.sessions.insert(m.sessions.begin(), m.sessions.end());
    mem.visible = m.visible;
  }
  for (auto& v : t.intents)
    st.intents[v.intent_id] = v;
  auto b = user_behavior(self);
  reaggregate(self, owner->now_ms()); // arms linger again, if it was running
  save(self);
  return b;
}

} // namespace

caf::behavior user_actor_promoted(user_actor_type* self, node* owner, user_transfer t) {
  // The replica may be one interval behind what the dead owner published.
  t.rec.seq = next_seq_generation(t.rec.seq);
  return user_from_transfer(self, owner, t, true);
}

caf::behavior user_actor_handoff(user_actor_type* self, node* owner, std::string user_id,
                                 caf::actor source, uint64_t epoch,
                                 std::optional<storage::user_record> dormant) {
  auto key = "user:" + user_id;
  auto fresh = [self, owner, user_id, dormant]() mutable {
    if (dormant)
      return user_actor_restored(self, owner, user_restore{std::move(*dormant), {}});
    return user_actor(self, owner, user_id);
  };
  return await_handoff<user_transfer>(
    self, std::move(key), std::move(source), owner->traffic(), epoch, owner->router(),
    owner->metrics().handoffs_pending,
    [self, owner](user_transfer& t) { return user_from_transfer(self, owner, t); }, fresh,
    [self, owner](user_transfer& t) { return user_actor_promoted(self, owner, t); });
}

namespace {

// Nothing needs the user to run: no live session, subscriber, socket, room,
// open intent or pending timer.
bool is_idle(const user_state& st) {
  if (!st.sessions.empty() || !st.subscribers.empty() || !st.inbox.empty()
      || !st.rooms.empty() || st.linger.armed() || st.lost.armed())
    return false;
  for (auto& [id, v] : st.intents)
    if (!is_final(v.status))
      return false;
  return true;
}

// Arms the passivation check when the user became idle, disarms it when busy.
void review_idle(user_actor_type* self) {
  auto& st = self->state;
  actors::review_idle(self, st.owner, st.idle, is_idle(st));
}

// The passivation check: an idle user stops (its record stays dormant), a
// busy one looks again later.
void check_idle(user_actor_type* self) {
  auto& st = self->state;
  auto* n = st.owner;
  auto again = [&] { arm_idle_check(self, n, st.idle); };
  if (!is_idle(st))
    return again();
  std::optional<storage::user_record> rec;
  if (st.seq > 0 || st.last_active_at > 0 || st.last_seen_at > 0
      || st.intent_analytics.revision != 0)
    rec = to_record(st);
  auto key = "user:" + st.user_id;
  if (!n->router().passivate(key, self->address(), std::move(rec), std::nullopt))
    return again();
  n->metrics().users_by_state[static_cast<size_t>(st.published)].fetch_sub(
    1, std::memory_order_relaxed);
  st.owner = nullptr;
  become_passivated(self, n, std::move(key));
}

// The user's view with its sessions' current clocks: a heartbeat that changed
// no state never reached the user, so `last_active_at`, `last_seen_at` and the
// confidence are read from the sessions when the view is asked for.
caf::result<user_view> fresh_view(user_actor_type* self) {
  auto& st = self->state;
  auto view = std::make_shared<user_view>(base_view(self));
  if (st.sessions.empty())
    return *view;
  auto rp = self->make_response_promise<user_view>();
  auto pending = std::make_shared<size_t>(st.sessions.size());
  auto done = [self, view, pending, rp]() mutable {
    if (--*pending > 0)
      return;
    auto& st = self->state;
    // What the user published meanwhile (a subscriber's events up to here
    // were not its own yet: the snapshot must include them).
    view->current = st.published;
    view->since = st.since;
    view->seq = st.seq;
    for (auto& s : view->sessions) {
      view->last_seen_at = std::max(view->last_seen_at, s.last_signal_at);
      view->last_active_at = std::max(view->last_active_at, s.last_active_at);
      view->confidence = std::max(view->confidence, s.confidence);
      if (auto i = st.sessions.find(s.session_id); i != st.sessions.end()) {
        i->second.last_active_at = std::max(i->second.last_active_at, s.last_active_at);
        i->second.last_signal_at = std::max(i->second.last_signal_at, s.last_signal_at);
      }
    }
    // Kept (it is durable) without a save: the sessions' own records have it,
    // and the next change of the user writes it.
    st.last_active_at = std::max(st.last_active_at, view->last_active_at);
    st.last_seen_at = std::max(st.last_seen_at, view->last_seen_at);
    rp.deliver(*view);
  };
  for (auto& sv : view->sessions) {
    auto& entry = st.sessions[sv.session_id];
    auto ref = caf::actor_cast<caf::actor>(entry.ref);
    if (!ref) {
      // A restored session does not announce itself: find it once.
      ref = st.owner->router().session(sv.session_id);
      entry.ref = ref.address();
    }
    if (!ref) {
      done();
      continue;
    }
    auto* slot = &sv;
    self->request(ref, session_view_timeout, caf::get_atom::value)
      .then([slot, done](session_view& fresh) mutable {
              *slot = std::move(fresh);
              done();
            },
            [done](caf::error&) mutable { done(); });
  }
  return rp;
}

// Handed to the next owner: from now on this actor only forwards.
user_transfer hand_over(user_actor_type* self, const caf::actor& via, uint64_t epoch) {
  auto& st = self->state;
  auto t = export_user(st);
  auto* n = st.owner;
  replicate_fired(n, st.replicate_scheduled);
  st.linger.disarm();
  st.idle.disarm();
  n->metrics().users_by_state[static_cast<size_t>(st.published)].fetch_sub(
    1, std::memory_order_relaxed);
  st.owner = nullptr;
  if (auto* w = n->writer())
    w->erase(storage::kind::users, st.user_id);
  auto key = "user:" + st.user_id;
  become_forwarder(self, n, std::move(key), via, epoch);
  return t;
}

caf::behavior user_behavior(user_actor_type* self) {
  self->set_down_handler([self](caf::down_msg& dm) {
    auto& st = self->state;
    remove_actor(st.subscribers, dm.source);
    remove_actor(st.inbox, dm.source);
    // A session on another node is gone without telling (its node died). Its
    // replica may bring it back on another node within the grace (it then
    // tells its new address); if not, the user stops counting it.
    for (auto& [id, e] : st.sessions) {
      if (e.monitored && e.ref == dm.source && e.lost_at == 0) {
        auto now = st.owner->now_ms();
        e.lost_at = now;
        if (!st.lost.armed())
          st.lost.arm(caf::actor_cast<caf::actor>(self), now + lost_grace(*st.owner));
        break;
      }
    }
    review_idle(self);
  });
  caf::behavior b{
    [self](session_atom, const session_update& u) {
      auto& st = self->state;
      st.last_active_at = std::max(st.last_active_at, u.last_active_at);
      st.last_seen_at = std::max(st.last_seen_at, u.last_signal_at);
      if (u.current == state::offline) {
        st.sessions.erase(u.session_id);
        drop_session_from_rooms(self, u.session_id);
      } else {
        auto& e = st.sessions[u.session_id];
        e.device = u.device;
        e.current = u.current;
        e.last_signal_at = u.last_signal_at;
        e.last_active_at = u.last_active_at;
        e.heartbeat_ms = u.heartbeat_ms;
        bool was_lost = e.lost_at != 0;
        e.lost_at = 0;
        if (u.ref && (e.ref != u.ref || was_lost)) {
          // A new session, the same one moved to another node (hand-off), or
          // one back within its grace (watched again).
          e.ref = u.ref;
          e.monitored = u.ref.node() != self->node();
          // (a live session's fresh address: watched unless the node stops;
          // its node may be one this node's view does not list yet)
          if (e.monitored && !st.owner->router().closed())
            if (auto alive = caf::actor_cast<caf::actor>(u.ref))
              self->monitor(alive);
        }
      }
      reaggregate(self, u.changed_at);
      save(self);
      review_idle(self);
    },
    [self](wake_atom, uint64_t generation) {
      auto& st = self->state;
      if (st.idle.is_current(generation))
        return check_idle(self);
      if (st.lost.is_current(generation)) {
        drop_lost(self);
        return review_idle(self);
      }
      if (!st.linger.is_current(generation))
        return;
      if (aggregate(st) == state::offline) {
        publish(self, state::offline, st.linger.due_ms());
        save(self);
      }
      review_idle(self);
    },
    [self](caf::get_atom) -> caf::result<user_view> { return fresh_view(self); },
    [self](subscribe_atom, const caf::actor& who) -> caf::result<user_view> {
      auto& st = self->state;
      add_actor(self, st.subscribers, who);
      replicate_soon(self, st.owner, st.replicate_scheduled);
      review_idle(self);
      return fresh_view(self);
    },
    [self](unsubscribe_atom, const caf::actor& who) {
      auto& st = self->state;
      remove_actor(st.subscribers, who.address());
      replicate_soon(self, st.owner, st.replicate_scheduled);
      review_idle(self);
    },
    [self](inbox_atom, const caf::actor& who) {
      auto& st = self->state;
      add_actor(self, st.inbox, who);
      replicate_soon(self, st.owner, st.replicate_scheduled);
      review_idle(self);
    },
    [self](unsubscribe_atom, inbox_atom, const caf::actor& who) {
      auto& st = self->state;
      remove_actor(st.inbox, who.address());
      replicate_soon(self, st.owner, st.replicate_scheduled);
      review_idle(self);
    },
    [self](join_atom, const std::string& room_id, const std::string& session_id,
           bool visible) -> caf::result<caf::message> {
      auto& st = self->state;
      auto& mem = st.rooms[room_id];
      if (!mem.room)
        mem.room = st.owner->router().room(room_id);
      if (!mem.room) {
        // The node stops (its router hands out nothing): delegating to no
        // one crashed it.
        st.rooms.erase(room_id);
        return caf::make_error(caf::sec::request_receiver_down);
      }
      mem.sessions.insert(session_id);
      mem.visible = visible; // the latest join decides
      review_idle(self);
      return self->delegate(mem.room, join_atom::value,
                            make_member_update(st, visible, true));
    },
    [self](leave_room_atom, const std::string& room_id,
           const std::string& session_id) -> caf::result<caf::message> {
      auto& st = self->state;
      auto i = st.rooms.find(room_id);
      if (i == st.rooms.end()) {
        auto room = st.owner->router().room(room_id);
        if (!room)
          return caf::make_error(caf::sec::request_receiver_down);
        return self->delegate(room, caf::get_atom::value, room_query{});
      }
      auto room = i->second.room;
      i->second.sessions.erase(session_id);
      if (!i->second.sessions.empty())
        return self->delegate(room, caf::get_atom::value, room_query{});
      auto update = make_member_update(st, i->second.visible, false);
      st.rooms.erase(i);
      review_idle(self);
      return self->delegate(room, join_atom::value, update);
    },
    [self](intent_atom, const intent_view& v) {
      auto& st = self->state;
      // Only a later stage is news: a copy that lags behind (a replica
      // promoted, a record recovered) or a repeat reaches no socket.
      if (auto i = st.intents.find(v.intent_id);
          i != st.intents.end() && stage(v.status) <= stage(i->second.status))
        return;
      if (note_outcome(st, v))
        save(self);
      remember_intent(st, v);
      replicate_soon(self, st.owner, st.replicate_scheduled);
      send_all(self, st.inbox, caf::make_message(intent_event{v}));
      review_idle(self);
    },
    [self](export_atom, const caf::actor& via, uint64_t epoch) {
      return hand_over(self, via, epoch);
    },
    [self](replicate_atom) {
      auto& st = self->state;
      replicate_fired(st.owner, st.replicate_scheduled);
      replicate(st.owner, "user:" + st.user_id, caf::make_message(export_user(st)));
    },
    [self](caf::get_atom, intent_atom, const std::string& intent_id) -> caf::result<intent_view> {
      auto& st = self->state;
      if (auto i = st.intents.find(intent_id); i != st.intents.end())
        return i->second;
      return caf::make_error(errc::intent_not_found, std::string{"not known here"});
    },
    [self](analytics_atom, intent_atom) {
      auto& st = self->state;
      auto r = analytics::summarize_user(st.intent_analytics, st.owner->now_ms());
      r.user_id = st.user_id;
      return r;
    },
    [self](list_atom, intent_atom) {
      auto& st = self->state;
      intent_list out;
      for (auto& [id, v] : st.intents) {
        if (v.from_user == st.user_id)
          out.outgoing.push_back(v);
        if (v.to_user == st.user_id)
          out.incoming.push_back(v);
      }
      auto newest_first = [](const intent_view& a, const intent_view& b) {
        return a.created_at > b.created_at;
      };
      std::sort(out.incoming.begin(), out.incoming.end(), newest_first);
      std::sort(out.outgoing.begin(), out.outgoing.end(), newest_first);
      return out;
    },
  };
  review_idle(self);
  return b;
}

} // namespace

} // namespace presence::actors
