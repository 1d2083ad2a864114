#include "actors/room_actor.hpp"
#include "actors/errors.hpp"

#include "actors/handoff.hpp"
#include "actors/node.hpp"
#include "actors/passivation.hpp"
#include "actors/start_when.hpp"

#include <caf/event_based_actor.hpp>

#include <algorithm>
#include <atomic>

namespace presence::actors {

namespace {

// A room counts in `rooms` and `rooms_by_phase` while it has an owner.
void count_room(node& n, room_phase p) {
  auto& m = n.metrics();
  m.rooms.fetch_add(1, std::memory_order_relaxed);
  m.rooms_by_phase[static_cast<size_t>(p)].fetch_add(1, std::memory_order_relaxed);
}

void uncount_room(node& n, room_phase p) {
  auto& m = n.metrics();
  m.rooms.fetch_sub(1, std::memory_order_relaxed);
  m.rooms_by_phase[static_cast<size_t>(p)].fetch_sub(1, std::memory_order_relaxed);
}

std::atomic<int64_t> deferred_writes{0};

} // namespace

int64_t deferred_room_writes() {
  return deferred_writes.load(std::memory_order_relaxed);
}

room_state::~room_state() {
  if (save_deferred) {
    // A stopping node: what waited is handed in before the writer stops.
    if (owner != nullptr)
      if (auto* w = owner->writer())
        w->put(to_record(*this));
    deferred_writes.fetch_sub(1, std::memory_order_relaxed);
  }
  if (owner != nullptr)
    uncount_room(*owner, phase);
}

bool room_state::big() const {
  return static_cast<int64_t>(members.size()) > owner->rooms().announce_max;
}

storage::room_record to_record(const room_state& st) {
  return storage::room_record{st.room_id,         st.media_attached,
                              static_cast<uint8_t>(st.phase), st.joins.rate_per_min,
                              st.joins.at,        st.analytics,
                              st.start_when};
}

namespace {

// Every change of a counted room's phase passes here (rooms_by_phase follows).
void set_phase(room_state& st, room_phase p) {
  runtime_metrics::move(st.owner->metrics().rooms_by_phase, static_cast<size_t>(st.phase),
                        static_cast<size_t>(p));
  st.phase = p;
}

// Hands the record to the writer now (and cancels a deferred write).
void write_now(room_state& st, storage::snapshot_writer& w) {
  w.put(to_record(st));
  st.saved_at = st.owner->now_ms();
  if (st.save_deferred) {
    st.save_deferred = false;
    st.save_timer.disarm();
    deferred_writes.fetch_sub(1, std::memory_order_relaxed);
  }
}

// Forgets a deferred write (the record goes elsewhere, or is written by the
// caller).
void cancel_deferred(room_state& st) {
  if (!st.save_deferred)
    return;
  st.save_deferred = false;
  st.save_timer.disarm();
  deferred_writes.fetch_sub(1, std::memory_order_relaxed);
}

// The record changed: written now if the last write is one flush interval old,
// otherwise once at the end of that interval (deferred_room_writes).
void save(room_actor_type* self) {
  auto& st = self->state;
  if (auto* w = st.owner->writer()) {
    auto now = st.owner->now_ms();
    auto interval = w->flush_interval_ms();
    if (st.save_deferred) {
      // written when save_timer fires, with this change
    } else if (st.saved_at == 0 || now - st.saved_at >= interval) {
      write_now(st, *w);
    } else {
      st.save_deferred = true;
      deferred_writes.fetch_add(1, std::memory_order_relaxed);
      st.save_timer.arm(caf::actor_cast<caf::actor>(self), st.saved_at + interval);
    }
  }
  replicate_soon(self, st.owner, st.replicate_scheduled);
}

// Replies to join, leave, media and subscribe carry the first members only (with
// next_after to page through GET): a join storm must not rebuild the whole list
// for every member.
const room_query reply_query{reply_members, "", false};

void count(room_state& st, const room_state::member& m, int delta) {
  if (m.visible)
    st.counts[static_cast<size_t>(m.current)] += delta;
  else if (m.current != state::offline)
    st.observers += delta;
}

room_view make_view(room_actor_type* self, const room_query& q) {
  auto& st = self->state;
  room_view v;
  v.room_id = st.room_id;
  v.phase = st.phase;
  v.readiness = st.readiness;
  v.counts = st.counts;
  v.observers = st.observers;
  v.member_count = static_cast<int64_t>(st.members.size());
  v.momentum = st.joins.value(st.owner->now_ms(), st.owner->rooms().momentum_window_ms);
  v.media_attached = st.media_attached;
  v.pending_intents = static_cast<int64_t>(st.intents.size());
  v.start_when = st.start_when.rule;
  v.threshold_holding = st.start_when.holding;
  if (q.counts_only)
    return v;
  auto i = q.after.empty() ? st.members.begin() : st.members.upper_bound(q.after);
  for (; i != st.members.end(); ++i) {
    if (static_cast<int64_t>(v.members.size()) >= q.limit) {
      v.next_after = v.members.back().user_id;
      break;
    }
    v.members.push_back(member_info{i->first, i->second.current, i->second.visible});
  }
  return v;
}

void emit(room_actor_type* self, std::string event, const std::string& user_id,
          state current) {
  auto& st = self->state;
  auto msg = caf::make_message(room_event{st.room_id, std::move(event), user_id,
                                          current, st.counts, st.readiness,
                                          st.phase, false, 0});
  for (auto& s : st.subscribers)
    self->send(s, msg);
  st.owner->metrics().events_sent.fetch_add(st.subscribers.size(),
                                            std::memory_order_relaxed);
}

// Tells subscribers that the start_when rule started (or stopped) holding at
// `at`; sent at once even in a big room, like a phase change.
void emit_threshold(room_actor_type* self, int64_t at) {
  auto& st = self->state;
  room_event e{st.room_id, "threshold", "", state::offline, st.counts, st.readiness,
               st.phase, st.start_when.holding, at};
  auto msg = caf::make_message(std::move(e));
  for (auto& s : st.subscribers)
    self->send(s, msg);
  st.owner->metrics().events_sent.fetch_add(st.subscribers.size(),
                                            std::memory_order_relaxed);
}

// Re-evaluates the start_when rule at the room's current level: arms the
// debounce timer while the conditions hold but not yet for `for_ms`, and tells
// subscribers (and the record) when the rule starts or stops holding.
void review_threshold(room_actor_type* self) {
  auto& st = self->state;
  auto& sw = st.start_when;
  if (!sw.rule.set() && !sw.holding) {
    st.threshold_timer.disarm();
    return;
  }
  auto now = st.owner->now_ms();
  auto met = start_when::met(sw.rule, st.readiness,
                             st.counts[static_cast<size_t>(state::active)]);
  auto r = start_when::step(sw, met, now);
  if (r.wake_at == 0)
    st.threshold_timer.disarm();
  else if (!st.threshold_timer.armed() || st.threshold_timer.due_ms() != r.wake_at)
    st.threshold_timer.arm(caf::actor_cast<caf::actor>(self), r.wake_at);
  if (r.changed) {
    emit_threshold(self, r.at);
    save(self);
  }
}

bool anyone_present(const room_state& st) {
  return present(st.counts) + st.observers > 0;
}

void sample(room_actor_type* self, int64_t now) {
  auto& st = self->state;
  auto* w = st.owner->writer();
  if (!st.timeline.empty() && st.timeline.back().t == now)
    st.timeline.pop_back(); // same millisecond, same stored key: the later wins
  st.timeline.push_back(timeline_sample{now, st.counts, st.readiness, st.phase});
  if (w != nullptr)
    w->put(storage::timeline_record{st.room_id, now, st.counts, st.readiness,
                                    static_cast<uint8_t>(st.phase)});
  auto max = static_cast<size_t>(st.owner->rooms().timeline_max_samples);
  while (st.timeline.size() > max) {
    if (w != nullptr)
      w->erase(storage::kind::timeline,
               storage::timeline_key(st.room_id, st.timeline.front().t));
    st.timeline.pop_front();
  }
}

// Samples now and keeps sampling while anyone is present.
void ensure_sampling(room_actor_type* self, int64_t now) {
  auto& st = self->state;
  if (st.timer.armed() || !anyone_present(st))
    return;
  sample(self, now);
  st.timer.arm(caf::actor_cast<caf::actor>(self),
               now + st.owner->rooms().timeline_interval_ms);
}

// Recomputes readiness and phase; then sends `event` (unless empty) about
// `user_id`, and a `phase` event if the phase changed, both carrying the new
// counts, readiness and phase.
void reevaluate(room_actor_type* self, const char* event = "",
                const std::string& user_id = {}, state current = state::offline) {
  auto& st = self->state;
  auto& cfg = st.owner->rooms();
  st.readiness = readiness(st.counts, static_cast<int64_t>(st.intents.size()), cfg);
  auto prev = st.phase;
  set_phase(st, next_phase(st.phase, anyone_present(st), st.readiness, cfg));
  auto now = st.owner->now_ms();
  analytics::note_level(st.analytics, now, st.phase, st.readiness, st.analytics_limits);
  if (st.phase != prev) {
    analytics::note_phase(st.analytics, prev, st.phase, now, present(st.counts),
                          st.readiness);
    if (st.phase == room_phase::ready)
      for (auto& [user_id, m] : st.members)
        m.saw_ready = true;
  }
  if (*event != '\0') {
    if (st.big()) {
      // Gathered into the next room_delta: a join storm costs one message per
      // subscriber per interval, not one per member.
      if (!st.delta_truncated) {
        st.delta[user_id] = std::string_view{event} == "leave" ? state::offline : current;
        if (static_cast<int64_t>(st.delta.size()) > cfg.delta_max_members) {
          st.delta.clear();
          st.delta_truncated = true;
        }
      }
      if (!st.delta_timer.armed())
        st.delta_timer.arm(caf::actor_cast<caf::actor>(self),
                           st.owner->now_ms() + cfg.delta_interval_ms);
    } else {
      emit(self, event, user_id, current);
    }
  }
  if (st.phase != prev) {
    emit(self, "phase", "", state::offline);
    if (st.phase == room_phase::empty)
      sample(self, st.owner->now_ms()); // the moment it emptied
    save(self);
  }
  review_threshold(self);
}

// Applies a membership change or a member's new state.
void apply_member(room_actor_type* self, const member_update& u) {
  auto& st = self->state;
  auto now = st.owner->now_ms();
  auto window = st.owner->rooms().momentum_window_ms;
  auto& lim = st.analytics_limits;
  auto i = st.members.find(u.user_id);
  if (!u.member) {
    if (i == st.members.end())
      return;
    analytics::note_leave(st.analytics, now, i->second.joined_at, i->second.saw_ready, lim);
    count(st, i->second, -1);
    st.members.erase(i);
    st.joins.add(now, -1, window);
    reevaluate(self, "leave", u.user_id, u.current);
    save(self);
  } else if (i == st.members.end()) {
    room_state::member m{u.current, u.visible, u.last_active_at, u.restored ? 0 : now,
                         false};
    count(st, m, +1);
    auto at = st.members.emplace(u.user_id, m).first;
    if (u.restored) {
      // Back after a restart: not a join (momentum and subscribers unchanged).
      // The phase is re-derived once every restored member is back.
      if (st.awaiting_restored > 0 && --st.awaiting_restored > 0)
        return;
      reevaluate(self);
    } else {
      st.joins.add(now, +1, window);
      analytics::note_join(st.analytics, now, lim);
      reevaluate(self, "join", u.user_id, u.current);
      if (st.phase == room_phase::ready)
        at->second.saw_ready = true;
      save(self);
    }
  } else if (i->second.current != u.current || i->second.visible != u.visible) {
    auto revision = st.analytics.revision;
    if (u.visible && i->second.visible)
      if (auto d = analytics::attention_decay(i->second.current, u.current,
                                              u.last_active_at, now, st.media_attached,
                                              st.analytics.media_off_at, lim))
        analytics::note_decay(st.analytics, *d, lim);
    count(st, i->second, -1);
    i->second.current = u.current;
    i->second.visible = u.visible;
    i->second.last_active_at = u.last_active_at;
    count(st, i->second, +1);
    reevaluate(self, "member", u.user_id, u.current);
    if (st.analytics.revision != revision)
      save(self);
  } else {
    i->second.last_active_at = u.last_active_at;
  }
  replicate_soon(self, st.owner, st.replicate_scheduled);
  ensure_sampling(self, now);
}

caf::behavior room_behavior(room_actor_type* self);

// Sends the changes gathered since the last room_delta.
void flush_delta(room_actor_type* self) {
  auto& st = self->state;
  room_delta d{st.room_id, st.counts, st.readiness, st.phase, {}, st.delta_truncated};
  for (auto& [user_id, s] : st.delta) {
    auto i = st.members.find(user_id);
    d.changed.push_back(member_info{user_id, s, i == st.members.end() || i->second.visible});
  }
  st.delta.clear();
  st.delta_truncated = false;
  auto msg = caf::make_message(std::move(d));
  for (auto& sub : st.subscribers)
    self->send(sub, msg);
  st.owner->metrics().events_sent.fetch_add(st.subscribers.size(),
                                            std::memory_order_relaxed);
}

room_transfer export_room(const room_state& st) {
  room_transfer t;
  t.rec = to_record(st);
  t.readiness = st.readiness;
  for (auto& [user_id, m] : st.members)
    t.members.push_back(handoff_member{user_id, m.current, m.visible, m.last_active_at,
                                       m.joined_at, m.saw_ready});
  t.timeline.assign(st.timeline.begin(), st.timeline.end());
  t.subscribers = st.subscribers;
  for (auto& [id, v] : st.intents)
    t.intents.push_back(v);
  return t;
}

} // namespace

namespace {

// Analytics kept under a larger rooms.analytics_max_buckets than this node's
// (its configuration changed, or the previous owner's differs): the oldest go.
void trim_buckets(room_state& st) {
  auto& xs = st.analytics.buckets;
  auto max = static_cast<size_t>(std::max<int64_t>(1, st.analytics_limits.max_buckets));
  if (xs.size() > max)
    xs.erase(xs.begin(), xs.begin() + static_cast<ptrdiff_t>(xs.size() - max));
}

// What every room actor starts with, fresh or restored.
void start_room(room_actor_type* self, node* owner, std::string room_id) {
  keep_on_errors(self);
  auto& st = self->state;
  st.owner = owner;
  st.room_id = std::move(room_id);
  st.timer.bind(owner->timers(), 0);
  st.delta_timer.bind(owner->timers(), 1);
  st.idle.bind(owner->timers(), 2);
  count_room(*owner, st.phase);
  st.save_timer.bind(owner->timers(), 3);
  st.threshold_timer.bind(owner->timers(), 4);
  st.analytics_limits = analytics::limits_of(owner->rooms());
}

} // namespace

caf::behavior room_actor(room_actor_type* self, node* owner, std::string room_id) {
  start_room(self, owner, std::move(room_id));
  return room_behavior(self);
}

caf::behavior room_actor_restored(room_actor_type* self, node* owner,
                                  room_restore restore) {
  auto& rec = restore.rec;
  start_room(self, owner, std::move(rec.room_id));
  auto& st = self->state;
  st.media_attached = rec.media_attached;
  set_phase(st, static_cast<room_phase>(rec.phase));
  st.joins.rate_per_min = rec.momentum_rate;
  st.joins.at = rec.momentum_at;
  st.analytics = std::move(rec.analytics);
  trim_buckets(st);
  // The debounce starts again with the restored members (the room was not
  // watched while down); `holding` stays what subscribers were last told.
  st.start_when = rec.start_when;
  st.start_when.met_since = 0;
  // The time the node was down (and since the last write) is not counted: the
  // open segment starts again now.
  if (st.analytics.seg_at != 0)
    st.analytics.seg_at = owner->now_ms();
  for (auto& t : restore.timeline)
    st.timeline.push_back(
      timeline_sample{t.t, t.counts, t.readiness, static_cast<room_phase>(t.phase)});
  // Members come back as their restored users tell; the phase is re-derived
  // when the last of them is back (at once for a room nobody returns to).
  st.awaiting_restored = restore.members;
  if (st.awaiting_restored == 0)
    reevaluate(self);
  return room_behavior(self);
}

namespace {

// The room as its old owner handed it over: same members, momentum, phase,
// timeline and subscribers; no join or leave is seen.
caf::behavior room_from_transfer(room_actor_type* self, node* owner, room_transfer& t) {
  auto& rec = t.rec;
  start_room(self, owner, rec.room_id);
  auto& st = self->state;
  st.media_attached = rec.media_attached;
  set_phase(st, static_cast<room_phase>(rec.phase));
  st.joins.rate_per_min = rec.momentum_rate;
  st.joins.at = rec.momentum_at;
  st.readiness = t.readiness;
  st.analytics = std::move(rec.analytics);
  trim_buckets(st);
  st.start_when = rec.start_when; // the debounce goes on where it was
  for (auto& m : t.members) {
    room_state::member x{m.current, m.visible, m.last_active_at, m.joined_at, m.saw_ready};
    count(st, x, +1);
    st.members.emplace(m.user_id, x);
  }
  for (auto& v : t.intents)
    st.intents[v.intent_id] = v;
  auto* w = owner->writer();
  for (auto& sample : t.timeline) {
    st.timeline.push_back(sample);
    if (w != nullptr)
      w->put(storage::timeline_record{st.room_id, sample.t, sample.counts, sample.readiness,
                                      static_cast<uint8_t>(sample.phase)});
  }
  for (auto& a : t.subscribers)
    if (a && std::find(st.subscribers.begin(), st.subscribers.end(), a) == st.subscribers.end()) {
      st.subscribers.push_back(a);
      if (owner->router().watchable(a.node()))
        self->monitor(a);
    }
  auto b = room_behavior(self);
  auto now = owner->now_ms();
  if (anyone_present(st)) {
    // Sampling goes on at its pace (the next sample one interval after the last).
    auto next = st.timeline.empty()
                  ? now
                  : std::max(now, st.timeline.back().t + owner->rooms().timeline_interval_ms);
    st.timer.arm(caf::actor_cast<caf::actor>(self), next);
  }
  reevaluate(self);
  save(self);
  return b;
}

} // namespace

caf::behavior room_actor_promoted(room_actor_type* self, node* owner, room_transfer t) {
  return room_from_transfer(self, owner, t);
}

caf::behavior room_actor_handoff(room_actor_type* self, node* owner, std::string room_id,
                                 caf::actor source, uint64_t epoch) {
  auto key = "room:" + room_id;
  auto fresh = [self, owner, room_id]() { return room_actor(self, owner, room_id); };
  return await_handoff<room_transfer>(
    self, std::move(key), std::move(source), owner->traffic(), epoch, owner->router(),
    owner->metrics().handoffs_pending,
    [self, owner](room_transfer& t) { return room_from_transfer(self, owner, t); }, fresh,
    [self, owner](room_transfer& t) { return room_actor_promoted(self, owner, t); });
}

namespace {

// Nothing needs the room to run: no member, subscriber, open intent, pending
// delta or restored member still on its way.
bool is_idle(const room_state& st) {
  return st.members.empty() && st.subscribers.empty() && st.intents.empty()
         && st.delta.empty() && !st.delta_truncated && !st.delta_timer.armed()
         && st.awaiting_restored == 0;
}

// Arms the passivation check when the room became idle, disarms it when busy.
void review_idle(room_actor_type* self) {
  auto& st = self->state;
  actors::review_idle(self, st.owner, st.idle, is_idle(st));
}

// The passivation check: an idle room stops (what it keeps stays dormant: its
// media flag, momentum and timeline), a busy one looks again later.
void check_idle(room_actor_type* self) {
  auto& st = self->state;
  auto* n = st.owner;
  if (!is_idle(st))
    return arm_idle_check(self, n, st.idle);
  std::optional<dormant_room> rest;
  if (st.media_attached || !st.timeline.empty() || st.joins.at != 0
      || st.analytics.revision != 0 || st.start_when.rule.set()) {
    rest.emplace();
    rest->rec = to_record(st);
    for (auto& x : st.timeline)
      rest->timeline.push_back(storage::timeline_record{
        st.room_id, x.t, x.counts, x.readiness, static_cast<uint8_t>(x.phase)});
  }
  auto key = "room:" + st.room_id;
  if (!n->router().passivate(key, self->address(), std::nullopt, std::move(rest)))
    return arm_idle_check(self, n, st.idle);
  if (st.save_deferred)
    if (auto* w = n->writer())
      write_now(st, *w);
  cancel_deferred(st);
  st.timer.disarm();
  st.threshold_timer.disarm();
  uncount_room(*n, st.phase);
  st.owner = nullptr;
  become_passivated(self, n, std::move(key));
}

caf::behavior room_behavior(room_actor_type* self) {
  self->set_down_handler([self](caf::down_msg& dm) {
    auto& subs = self->state.subscribers;
    subs.erase(std::remove_if(subs.begin(), subs.end(),
                              [&](const caf::actor& a) {
                                return a.address() == dm.source;
                              }),
               subs.end());
    review_idle(self);
  });
  review_idle(self);
  return {
    [self](member_atom, const member_update& u) {
      apply_member(self, u);
      review_idle(self);
    },
    [self](join_atom, const member_update& u) {
      apply_member(self, u);
      review_idle(self);
      return make_view(self, reply_query);
    },
    [self](caf::get_atom, const room_query& q) { return make_view(self, q); },
    [self](subscribe_atom, const caf::actor& who) {
      auto& subs = self->state.subscribers;
      if (std::find(subs.begin(), subs.end(), who) == subs.end()) {
        subs.push_back(who);
        self->monitor(who);
        replicate_soon(self, self->state.owner, self->state.replicate_scheduled);
      }
      review_idle(self);
      return make_view(self, reply_query);
    },
    [self](unsubscribe_atom, const caf::actor& who) {
      auto& subs = self->state.subscribers;
      subs.erase(std::remove(subs.begin(), subs.end(), who), subs.end());
      review_idle(self);
    },
    [self](media_atom, bool attached) {
      auto& st = self->state;
      if (st.media_attached && !attached) {
        st.analytics.media_off_at = st.owner->now_ms();
        ++st.analytics.revision;
      }
      st.media_attached = attached;
      save(self);
      return make_view(self, reply_query);
    },
    [self](start_when_atom, const storage::start_when_rule& rule) -> caf::result<room_view> {
      auto& st = self->state;
      if (rule.set())
        if (auto problem = start_when::check(rule))
          return caf::make_error(errc::invalid_argument, *problem);
      if (!(rule == st.start_when.rule)) {
        // A new rule starts its debounce afresh; `holding` stays until the
        // new rule is evaluated (below): a rule that holds at once keeps it.
        st.start_when.rule = rule.set() ? rule : storage::start_when_rule{};
        st.start_when.met_since = 0;
        save(self);
        review_threshold(self);
      }
      review_idle(self);
      return make_view(self, reply_query);
    },
    [self](analytics_atom, int64_t since,
           int64_t bucket_ms) -> caf::result<analytics::report> {
      auto& st = self->state;
      if (auto problem = analytics::check_query(since, bucket_ms, st.analytics_limits))
        return caf::make_error(errc::invalid_argument, *problem);
      auto r = analytics::summarize(st.analytics, st.owner->now_ms(), since, bucket_ms,
                                    st.analytics_limits);
      r.room_id = st.room_id;
      r.phase = st.phase;
      r.readiness = st.readiness;
      r.ready_threshold = st.owner->rooms().ready_threshold;
      r.ready_hysteresis = st.owner->rooms().ready_hysteresis;
      r.start_when = st.start_when;
      return r;
    },
    [self](timeline_atom, int64_t since) {
      std::vector<timeline_sample> out;
      for (auto& s : self->state.timeline)
        if (s.t >= since)
          out.push_back(s);
      return out;
    },
    [self](wake_atom, uint64_t generation) {
      auto& st = self->state;
      if (st.save_timer.is_current(generation)) {
        if (auto* w = st.owner->writer(); w != nullptr && st.save_deferred)
          write_now(st, *w);
        return cancel_deferred(st);
      }
      if (st.idle.is_current(generation))
        return check_idle(self);
      if (st.threshold_timer.is_current(generation))
        return review_threshold(self);
      if (st.delta_timer.is_current(generation)) {
        flush_delta(self);
        return review_idle(self);
      }
      if (!st.timer.is_current(generation))
        return;
      auto now = st.owner->now_ms();
      if (!anyone_present(st))
        return; // stop sampling an empty room (its last sample is taken)
      sample(self, now);
      st.timer.arm(caf::actor_cast<caf::actor>(self),
                   st.timer.due_ms() + st.owner->rooms().timeline_interval_ms);
    },
    [self](export_atom, const caf::actor& via, uint64_t epoch) {
      // Handed to the next owner: from now on this actor only forwards.
      auto& st = self->state;
      if (!st.delta.empty() || st.delta_truncated)
        flush_delta(self);
      auto t = export_room(st);
      auto* n = st.owner;
      replicate_fired(n, st.replicate_scheduled);
      st.timer.disarm();
      st.delta_timer.disarm();
      st.idle.disarm();
      st.threshold_timer.disarm();
      cancel_deferred(st); // its record is erased here, written by the next owner
      uncount_room(*n, st.phase);
      st.owner = nullptr;
      if (auto* w = n->writer()) {
        w->erase(storage::kind::rooms, st.room_id);
        for (auto& sample : st.timeline)
          w->erase(storage::kind::timeline, storage::timeline_key(st.room_id, sample.t));
      }
      auto key = "room:" + st.room_id;
      become_forwarder(self, n, std::move(key), via, epoch);
      return t;
    },
    [self](replicate_atom) {
      auto& st = self->state;
      replicate_fired(st.owner, st.replicate_scheduled);
      replicate(st.owner, "room:" + st.room_id, caf::make_message(export_room(st)));
    },
    [self](intent_atom, const intent_view& v) {
      auto& st = self->state;
      auto revision = st.analytics.revision;
      // Outcomes of the intents into this room: a delivery seen for the first
      // time, and the end of one that was open here (a repeated view counts
      // once).
      auto known = st.intents.find(v.intent_id);
      auto now = st.owner->now_ms();
      if (v.status == intent_status::delivered && v.delivered_at > 0
          && (known == st.intents.end() || known->second.status == intent_status::pending))
        analytics::note_intent_delivered(st.analytics, now, v.created_at, v.delivered_at,
                                         st.analytics_limits);
      if (is_final(v.status) && known != st.intents.end())
        analytics::note_intent_final(st.analytics, now,
                                     static_cast<int>(v.status)
                                       - static_cast<int>(intent_status::accepted),
                                     v.delivered_at, st.analytics_limits);
      if (is_final(v.status))
        st.intents.erase(v.intent_id);
      else
        st.intents[v.intent_id] = v;
      replicate_soon(self, st.owner, st.replicate_scheduled);
      if (v.status == intent_status::delivered) {
        // Push to every present member's own sockets.
        for (auto& [user_id, m] : st.members)
          if (m.current != state::offline && user_id != v.from_user)
            self->send(st.owner->router().user(user_id), intent_atom::value, v);
      }
      reevaluate(self);
      if (st.analytics.revision != revision)
        save(self);
      review_idle(self);
    },
  };
}

} // namespace

} // namespace presence::actors
