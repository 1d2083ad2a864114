#include "actors/session_actor.hpp"

#include "actors/errors.hpp"
#include "actors/node.hpp"

#include <caf/event_based_actor.hpp>

#include <algorithm>

namespace presence::actors {

session_state::~session_state() {
  // Every way out (offline, exit at shutdown) leaves the gauge right.
  if (owner != nullptr)
    owner->metrics().sessions_by_state[static_cast<size_t>(current)].fetch_sub(
      1, std::memory_order_relaxed);
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

// The session is offline: tell the user, unregister, stop.
void finish(session_actor_type* self) {
  auto& st = self->state;
  st.timer.disarm();
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
    self->send(st.user, session_atom::value, make_update(self, changed_at));
  }
  return st.current == state::offline;
}

} // namespace

caf::behavior session_actor(session_actor_type* self, node* owner,
                            std::string session_id, std::string user_id,
                            std::string device, token_hash resume_hash,
                            session_clock clk) {
  auto& st = self->state;
  st.owner = owner;
  st.session_id = std::move(session_id);
  st.user_id = std::move(user_id);
  st.device = std::move(device);
  st.resume_hash = resume_hash;
  st.clk = clk;
  st.timer.bind(owner->timers());
  auto now = owner->now_ms();
  st.current = derive_state(st.clk, now, owner->presence());
  st.heartbeat_ms = heartbeat_interval_ms(st.current, owner->presence());
  owner->metrics().sessions_by_state[static_cast<size_t>(st.current)].fetch_add(
    1, std::memory_order_relaxed);
  st.user = owner->router().user(st.user_id);
  self->send(st.user, session_atom::value, make_update(self, now));
  rearm(self, now);
  return {
    [self](signal_atom, signal_kind sig) -> signal_reply {
      auto& st = self->state;
      auto now = st.owner->now_ms();
      st.owner->metrics().signals.fetch_add(1, std::memory_order_relaxed);
      auto before_state = st.current;
      auto before_hb = st.heartbeat_ms;
      apply_signal(st.clk, sig, now);
      // The interval issued in this reply; timer transitions never change it.
      st.heartbeat_ms = heartbeat_interval_ms(
        derive_state(st.clk, now, st.owner->presence()), st.owner->presence());
      update_state(self, now, now);
      rearm(self, now);
      return {st.current, st.heartbeat_ms, now,
              st.current != before_state || st.heartbeat_ms != before_hb};
    },
    [self](leave_atom) {
      auto& st = self->state;
      auto now = st.owner->now_ms();
      st.clk.left = true;
      update_state(self, now, now);
      finish(self);
    },
    [self](caf::get_atom) { return make_view(self); },
    [self](wake_atom, uint64_t generation) {
      auto& st = self->state;
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
      auto& st = self->state;
      if (std::find(st.rooms.begin(), st.rooms.end(), room_id) == st.rooms.end())
        st.rooms.push_back(room_id);
      return self->delegate(st.user, join_atom::value, room_id, st.session_id,
                            visible);
    },
    [self](leave_room_atom, const std::string& room_id) {
      auto& st = self->state;
      st.rooms.erase(std::remove(st.rooms.begin(), st.rooms.end(), room_id),
                     st.rooms.end());
      return self->delegate(st.user, leave_room_atom::value, room_id,
                            st.session_id);
    },
  };
}

} // namespace presence::actors
