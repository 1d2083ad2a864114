#include "actors/session_actor.hpp"

#include "actors/errors.hpp"
#include "actors/handoff.hpp"
#include "actors/node.hpp"

#include <caf/event_based_actor.hpp>

#include <algorithm>
#include <cstring>

namespace presence::actors {

session_state::~session_state() {
  // Every way out (offline, exit at shutdown) leaves the gauge right.
  if (owner == nullptr)
    return;
  owner->metrics().sessions_by_state[static_cast<size_t>(current)].fetch_sub(
    1, std::memory_order_relaxed);
  // Stopped with the node: the last signals reach the disk too.
  if (dirty && !ended)
    if (auto* w = owner->writer())
      w->put(to_record(*this));
}

session_clock clock_of(const storage::session_record& r) {
  return session_clock{r.last_signal_at, r.last_active_at,
                       static_cast<signal_kind>(r.declared), false, r.ever_active};
}

storage::session_record to_record(const session_state& st) {
  storage::session_record r;
  r.session_id = st.session_id;
  r.user_id = st.user_id;
  r.device = st.device;
  r.resume_hash.assign(reinterpret_cast<const char*>(st.resume_hash.data()),
                       st.resume_hash.size());
  r.last_signal_at = st.clk.last_signal_at;
  r.last_active_at = st.clk.last_active_at;
  r.declared = static_cast<uint8_t>(st.clk.declared);
  r.ever_active = st.clk.ever_active;
  r.heartbeat_ms = st.heartbeat_ms;
  r.rooms.reserve(st.rooms.size());
  for (auto& room_id : st.rooms) {
    auto i = st.visible.find(room_id);
    r.rooms.emplace_back(room_id, i == st.visible.end() || i->second);
  }
  return r;
}

namespace {

session_update make_update(session_actor_type* self, int64_t changed_at) {
  auto& st = self->state;
  return session_update{st.session_id,
                        st.device,
                        st.current,
                        changed_at,
                        st.clk.last_signal_at,
                        st.clk.reported_last_active_at(),
                        st.heartbeat_ms,
                        self->address()};
}

session_view make_view(session_actor_type* self) {
  auto& st = self->state;
  auto now = st.owner->now_ms();
  return session_view{st.session_id,
                      st.user_id,
                      st.device,
                      st.current,
                      st.clk.last_signal_at,
                      st.clk.reported_last_active_at(),
                      st.heartbeat_ms,
                      confidence(now - st.clk.last_signal_at, st.heartbeat_ms,
                                 st.owner->presence()),
                      st.rooms};
}

// Arms the one timer for the next boundary, unless it is already due then.
void rearm(session_actor_type* self, int64_t now) {
  auto& st = self->state;
  auto next = next_transition_at(st.clk, now, st.owner->presence());
  if (!next) {
    st.timer.disarm();
    return;
  }
  if (!st.timer.armed() || st.timer.due_ms() != *next)
    st.timer.arm(caf::actor_cast<caf::actor>(self), *next);
}

// Hands the session's snapshot to the writer.
void save(session_actor_type* self, int64_t now) {
  auto& st = self->state;
  auto* w = st.owner->writer();
  bool replicated = static_cast<bool>(st.owner->replicator());
  if (w == nullptr && !replicated)
    return;
  auto rec = to_record(st);
  if (replicated)
    replicate(st.owner, "session:" + st.session_id,
              caf::make_message(session_transfer{rec}));
  if (w != nullptr)
    w->put(std::move(rec));
  st.saved_at = now;
  st.saved_declared = st.clk.declared;
  st.dirty = false;
}

// After a signal: a snapshot when something a client sees changed or one flush
// interval passed since the last one. Signals in between only move the clocks by
// less than that interval, which is all a crash may lose anyway.
void save_after_signal(session_actor_type* self, int64_t now, bool changed) {
  auto& st = self->state;
  auto* w = st.owner->writer();
  if (w == nullptr && !st.owner->replicator())
    return;
  auto interval = w != nullptr ? w->flush_interval_ms()
                               : static_cast<int64_t>(replicate_interval.count());
  if (changed || st.clk.declared != st.saved_declared || now - st.saved_at >= interval)
    save(self, now);
  else
    st.dirty = true;
}

// The session is offline: tell the user, unregister, stop.
void finish(session_actor_type* self) {
  auto& st = self->state;
  st.timer.disarm();
  st.ended = true;
  if (auto* w = st.owner->writer())
    w->erase(storage::kind::sessions, st.session_id);
  replicate(st.owner, "session:" + st.session_id, caf::message{});
  st.owner->router().forget("session:" + st.session_id, self->address());
  self->quit();
}

// Recomputes the state at `now`; tells the user if it changed. Returns true if
// the session is now offline.
bool update_state(session_actor_type* self, int64_t now, int64_t changed_at) {
  auto& st = self->state;
  auto& cfg = st.owner->presence();
  auto next = derive_state(st.clk, now, cfg);
  if (next != st.current) {
    auto& m = st.owner->metrics();
    runtime_metrics::move(m.sessions_by_state, st.current, next);
    m.session_transitions.fetch_add(1, std::memory_order_relaxed);
    st.current = next;
    if (!st.held)
      self->send(st.user, session_atom::value, make_update(self, changed_at));
  }
  // A held session that decayed to offline ends once released (its user has
  // to learn it), not before.
  return st.current == state::offline && !st.held;
}

// Tells its user (wherever it lives now) of itself and of its rooms.
void announce(session_actor_type* self) {
  auto& st = self->state;
  auto now = st.owner->now_ms();
  st.user = st.owner->router().user(st.user_id);
  self->send(st.user, session_atom::value, make_update(self, now));
  for (auto& room_id : st.rooms)
    self->send(st.user, join_atom::value, room_id, st.session_id, st.visible[room_id]);
}

// A held session acts from now on: its user learns of it as it is (an ended
// one ends now). Returns true if it ended.
bool release(session_actor_type* self) {
  auto& st = self->state;
  if (!st.held)
    return false;
  st.held = false;
  announce(self);
  if (st.current != state::offline)
    return false;
  finish(self);
  return true;
}

bool allowed(session_actor_type* self, const std::string& acting) {
  return acting == self->state.user_id || acting == admin_caller;
}

// The resume token is the credential of a resume and of a page's leave.
caf::error check_token(session_actor_type* self, const std::string& token) {
  if (hash_token(token) != self->state.resume_hash)
    return caf::make_error(errc::forbidden, std::string{"the resume token does not match"});
  return caf::error{};
}

caf::error forbidden() {
  return caf::make_error(errc::forbidden,
                         std::string{"the session belongs to another user"});
}

signal_reply on_signal(session_actor_type* self, signal_kind sig) {
  auto& st = self->state;
  auto now = st.owner->now_ms();
  auto& m = st.owner->metrics();
  m.signals.fetch_add(1, std::memory_order_relaxed);
  if (st.held && st.current == state::offline) {
    // It expired while held: it ends as it would have, the signal too late.
    release(self);
    return {state::offline, st.heartbeat_ms, now, true};
  }
  // How much later than the interval issued to the client this signal came.
  if (st.heartbeat_ms > 0 && st.clk.last_signal_at > 0)
    m.heartbeat_lateness.record(now - st.clk.last_signal_at - st.heartbeat_ms);
  auto before_state = st.current;
  auto before_hb = st.heartbeat_ms;
  apply_signal(st.clk, sig, now);
  // The interval issued in this reply; timer transitions never change it.
  st.heartbeat_ms = heartbeat_interval_ms(
    derive_state(st.clk, now, st.owner->presence()), st.owner->presence());
  update_state(self, now, now);
  // Its client is here: a held session is the live one now.
  release(self);
  rearm(self, now);
  bool changed = st.current != before_state || st.heartbeat_ms != before_hb;
  if (st.current != state::offline)
    save_after_signal(self, now, changed);
  return {st.current, st.heartbeat_ms, now, changed};
}

void on_leave(session_actor_type* self) {
  auto& st = self->state;
  st.held = false; // its user learns of the end below
  st.leave_timer.disarm();
  auto now = st.owner->now_ms();
  st.clk.left = true;
  update_state(self, now, now);
  finish(self);
}

// A leave that waits `after_ms` for a resume (a page reload fires `pagehide`
// too): the session goes on decaying by its clocks meanwhile.
void on_pending_leave(session_actor_type* self, int64_t after_ms) {
  auto& st = self->state;
  if (after_ms <= 0)
    return on_leave(self);
  st.leave_timer.arm(caf::actor_cast<caf::actor>(self), st.owner->now_ms() + after_ms);
}

// One session, one socket: the socket that bound the session last holds it,
// and the one before is told (it closes; its client opens a session of its
// own). An attach from the holder itself changes nothing.
void on_attach(session_actor_type* self, const caf::actor& socket) {
  auto& st = self->state;
  if (!socket || st.holder == socket)
    return;
  if (st.holder) {
    self->send(st.holder, superseded_atom::value, st.session_id);
    st.owner->metrics().sessions_taken_over.fetch_add(1, std::memory_order_relaxed);
  }
  st.holder = socket;
}

// Whether the current message may act for the session's socket: it comes from
// the holder, or no socket holds the session (nothing attached here).
bool from_holder(session_actor_type* self) {
  auto& holder = self->state.holder;
  return !holder
         || caf::actor_cast<caf::actor_addr>(self->current_sender()) == holder.address();
}

caf::error taken_over() {
  return caf::make_error(errc::taken_over,
                         std::string{"this session was resumed on another connection"});
}

caf::delegated<caf::message> on_join(session_actor_type* self,
                                  const std::string& room_id, bool visible) {
  auto& st = self->state;
  if (std::find(st.rooms.begin(), st.rooms.end(), room_id) == st.rooms.end())
    st.rooms.push_back(room_id);
  st.visible[room_id] = visible;
  save(self, st.owner->now_ms());
  return self->delegate(st.user, join_atom::value, room_id, st.session_id, visible);
}

caf::delegated<caf::message> on_leave_room(session_actor_type* self,
                                        const std::string& room_id) {
  auto& st = self->state;
  st.rooms.erase(std::remove(st.rooms.begin(), st.rooms.end(), room_id),
                 st.rooms.end());
  st.visible.erase(room_id);
  save(self, st.owner->now_ms());
  return self->delegate(st.user, leave_room_atom::value, room_id, st.session_id);
}

// Moves the session to another user without a gap: the new user learns of it
// (and of its rooms) before the old one lets it go.
void on_identify(session_actor_type* self, const std::string& new_user) {
  auto& st = self->state;
  if (new_user == st.user_id)
    return;
  st.held = false; // both users learn of it below
  auto now = st.owner->now_ms();
  auto old_user = st.user;
  st.user_id = new_user;
  st.user = st.owner->router().user(new_user);
  self->send(st.user, session_atom::value, make_update(self, now));
  for (auto& room_id : st.rooms)
    self->send(st.user, join_atom::value, room_id, st.session_id,
               st.visible[room_id]);
  auto gone = make_update(self, now);
  gone.current = state::offline;
  self->send(old_user, session_atom::value, gone);
  save(self, now);
}

} // namespace

caf::behavior session_actor(session_actor_type* self, node* owner, session_init init) {
  keep_on_errors(self);
  auto& st = self->state;
  st.owner = owner; // from here on, the destructor uncounts `current`
  st.session_id = std::move(init.session_id);
  st.user_id = std::move(init.user_id);
  st.device = std::move(init.device);
  st.resume_hash = init.resume_hash;
  st.held = init.held;
  st.clk = init.clk;
  st.timer.bind(owner->timers());
  st.leave_timer.bind(owner->timers(), 1);
  // The caller counted the session in `initial` (and told the client so).
  st.current = init.initial;
  st.heartbeat_ms = init.heartbeat_ms > 0
                      ? init.heartbeat_ms
                      : heartbeat_interval_ms(init.initial, owner->presence());
  for (auto& [room_id, visible] : init.rooms) {
    st.rooms.push_back(room_id);
    st.visible[room_id] = visible;
  }
  auto now = owner->now_ms();
  st.user = owner->router().user(st.user_id);
  st.saved_declared = st.clk.declared;
  // A restored session's user already holds it (derived at the same clock) and
  // its record is on disk (saved_at stays 0, so its next signal saves).
  if (!init.restored) {
    self->send(st.user, session_atom::value, make_update(self, now));
    save(self, now);
  }
  if (update_state(self, now, now)) // a boundary passed since the caller derived it
    finish(self);
  else
    rearm(self, now);
  return {
    [self](signal_atom, signal_kind sig) { return on_signal(self, sig); },
    [self](signal_atom, signal_kind sig, quiet_atom) {
      auto to = caf::actor_cast<caf::actor>(self->current_sender());
      if (!from_holder(self)) {
        // A socket that was superseded and has not closed yet: its signal
        // does not count, and it is told again.
        if (to)
          self->send(to, superseded_atom::value, self->state.session_id);
        return;
      }
      auto r = on_signal(self, sig);
      if (r.changed && to)
        self->send(to, r);
    },
    [self](attach_atom, const caf::actor& socket) { on_attach(self, socket); },
    [self](signal_atom, signal_kind sig,
           const std::string& acting) -> caf::result<signal_reply> {
      if (!allowed(self, acting))
        return forbidden();
      return on_signal(self, sig);
    },
    [self](leave_atom) { on_leave(self); },
    [self](leave_atom, const std::string& acting) -> caf::result<void> {
      if (!allowed(self, acting))
        return forbidden();
      on_leave(self);
      return caf::unit;
    },
    [self](leave_atom, int64_t after_ms) -> caf::result<void> {
      if (!from_holder(self))
        return taken_over();
      on_pending_leave(self, after_ms);
      return caf::unit;
    },
    [self](leave_atom, resume_atom, const std::string& token,
           int64_t after_ms) -> caf::result<void> {
      if (auto e = check_token(self, token))
        return e;
      on_pending_leave(self, after_ms);
      return caf::unit;
    },
    [self](caf::get_atom) { return make_view(self); },
    [self](locate_atom) { return caf::actor_cast<caf::actor>(self); },
    [self](wake_atom, uint64_t generation) {
      auto& st = self->state;
      if (st.leave_timer.is_current(generation))
        return on_leave(self);
      if (!st.timer.is_current(generation))
        return; // re-armed or disarmed since this wake was sent
      auto due = st.timer.due_ms();
      auto now = st.owner->now_ms();
      auto& m = st.owner->metrics();
      m.timer_fires.fetch_add(1, std::memory_order_relaxed);
      m.timer_lateness.record(now - due);
      auto& cfg = st.owner->presence();
      // Stamp the change with the boundary it crossed when woken on time.
      auto at = derive_state(st.clk, due, cfg) == derive_state(st.clk, now, cfg)
                  ? due
                  : now;
      if (update_state(self, now, at))
        finish(self);
      else
        rearm(self, now);
    },
    [self](join_atom, const std::string& room_id, bool visible) {
      return on_join(self, room_id, visible);
    },
    [self](join_atom, const std::string& room_id, bool visible,
           const std::string& acting) -> caf::result<caf::message> {
      if (!allowed(self, acting))
        return forbidden();
      return on_join(self, room_id, visible);
    },
    [self](leave_room_atom, const std::string& room_id) {
      return on_leave_room(self, room_id);
    },
    [self](leave_room_atom, const std::string& room_id,
           const std::string& acting) -> caf::result<caf::message> {
      if (!allowed(self, acting))
        return forbidden();
      return on_leave_room(self, room_id);
    },
    [self](announce_atom) {
      if (!self->state.held)
        announce(self);
    },
    [self](release_atom) {
      if (!release(self))
        rearm(self, self->state.owner->now_ms());
    },
    // The room's answer to a re-join sent by `on_identify` or `announce_atom`.
    [](const room_view&) {},
    [self](resume_atom, const std::string& token) -> caf::result<session_view> {
      if (auto e = check_token(self, token))
        return e;
      self->state.leave_timer.disarm(); // the page came back
      if (release(self))
        return caf::make_error(errc::session_not_found,
                               std::string{"the session has gone offline"});
      self->state.owner->metrics().sessions_resumed.fetch_add(1, std::memory_order_relaxed);
      return make_view(self);
    },
    [self](export_atom, const caf::actor& via, uint64_t epoch) {
      // Handed to the next owner: from now on this actor only forwards.
      auto& st = self->state;
      session_transfer t{to_record(st)};
      auto* n = st.owner;
      st.timer.disarm();
      st.leave_timer.disarm();
      n->metrics().sessions_by_state[static_cast<size_t>(st.current)].fetch_sub(
        1, std::memory_order_relaxed);
      st.owner = nullptr; // nothing more to count or to save here
      if (auto* w = n->writer())
        w->erase(storage::kind::sessions, st.session_id);
      auto key = "session:" + st.session_id;
      become_forwarder(self, n, std::move(key), via, epoch);
      return t;
    },
    [self](replicate_atom) {
      auto& st = self->state;
      replicate(st.owner, "session:" + st.session_id,
                caf::make_message(session_transfer{to_record(st)}));
    },
    [self](identify_atom, const std::string& new_user,
           const std::string& acting) -> caf::result<session_view> {
      if (!allowed(self, acting))
        return forbidden();
      on_identify(self, new_user);
      return make_view(self);
    },
  };
}

namespace {

// A session as another node held it: its clocks, rooms and token; its timers
// keep their due times (they follow from the clocks).
caf::behavior session_from_transfer(session_actor_type* self, node* owner,
                                    session_transfer& t) {
  auto& r = t.rec;
  session_init init;
  init.session_id = std::move(r.session_id);
  init.user_id = std::move(r.user_id);
  init.device = std::move(r.device);
  if (r.resume_hash.size() == init.resume_hash.size())
    std::memcpy(init.resume_hash.data(), r.resume_hash.data(), init.resume_hash.size());
  init.clk = clock_of(r);
  init.initial = derive_state(init.clk, owner->now_ms(), owner->presence());
  init.heartbeat_ms = r.heartbeat_ms;
  init.rooms = std::move(r.rooms);
  // Not `restored`: the session tells its user of its new address.
  owner->metrics().sessions_by_state[static_cast<size_t>(init.initial)].fetch_add(
    1, std::memory_order_relaxed);
  return session_actor(self, owner, std::move(init));
}

} // namespace

caf::behavior session_actor_promoted(session_actor_type* self, node* owner,
                                     session_transfer t) {
  auto b = session_from_transfer(self, owner, t);
  // Its user and rooms may be new too (promoted, or started afresh): tell them.
  self->send(self, announce_atom::value);
  return b;
}

caf::behavior session_actor_handoff(session_actor_type* self, node* owner,
                                    std::string session_id, caf::actor source,
                                    uint64_t epoch) {
  auto key = "session:" + session_id;
  auto fresh = [self, owner, key]() {
    return gone_after_pull(self, owner->router(), key, errc::session_not_found,
                           std::string{"no such session: create a new one"});
  };
  return await_handoff<session_transfer>(
    self, std::move(key), std::move(source), owner->traffic(), epoch, owner->router(),
    owner->metrics().handoffs_pending,
    // Pulled or promoted alike, it tells its user of itself and of each of
    // its rooms: the user copy it reaches may not know the membership (a
    // stale copy dropped for another, or one started afresh), and members
    // went missing from their rooms after a full restart.
    [self, owner](session_transfer& t) { return session_actor_promoted(self, owner, t); },
    fresh, [self, owner](session_transfer& t) { return session_actor_promoted(self, owner, t); });
}

} // namespace presence::actors
