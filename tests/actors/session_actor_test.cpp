// Verifies the session actor under controlled time: its one timer fires at each
// boundary of the state table, signals re-arm it, identical signals emit nothing,
// and it stops when offline.
#include "support/test_node.hpp"

using namespace presence::actors;
using presence::testing::recorded;
using presence::testing::test_node;

namespace {

class SessionActorTest : public ::testing::Test {
protected:
  test_node n;

  caf::expected<signal_reply> signal(const std::string& sid, signal_kind k) {
    return n.ask<signal_reply>(n.node().router().session(sid), signal_atom::value, k);
  }

  state session_state(const std::string& sid) {
    auto h = n.node().router().session(sid);
    if (!h)
      return state::offline;
    auto v = n.ask<session_view>(h, caf::get_atom::value);
    EXPECT_TRUE(v) << presence::actors::render(v.error());
    return v ? v->current : state::offline;
  }
};

} // namespace

// Verifies the decay timeline of one active signal fires at each boundary
// (1 ms before: old state; at the boundary: new state) and that each user event
// is stamped with the boundary time.
TEST_F(SessionActorTest, DecaysAtEachBoundary) {
  recorded log;
  auto s = n.open("u1");
  ASSERT_TRUE(n.ask<user_view>(n.node().router().user("u1"), subscribe_atom::value,
                               n.recorder(log)));
  EXPECT_EQ(s.current, state::active);
  EXPECT_EQ(s.heartbeat_ms, 500);
  struct step {
    int64_t at;
    state expected;
  };
  std::vector<step> steps = {{999, state::active}, {1000, state::idle},
                             {1999, state::idle},  {2000, state::away},
                             {4999, state::away},  {5000, state::stale},
                             {7999, state::stale}};
  for (auto& st : steps) {
    n.advance_to(st.at);
    EXPECT_EQ(session_state(s.session_id), st.expected) << "at +" << st.at;
  }
  n.advance_to(8000);
  EXPECT_FALSE(n.node().router().session(s.session_id)) << "still registered";
  ASSERT_EQ(log.presence.size(), 4u);
  std::vector<std::pair<state, int64_t>> expected = {
    {state::idle, 1000}, {state::away, 2000}, {state::stale, 5000},
    {state::offline, 8000}};
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(log.presence[i].current, expected[i].first) << i;
    EXPECT_EQ(log.presence[i].since, test_node::t0 + expected[i].second) << i;
  }
  // Every firing landed within the tick of its due time.
  EXPECT_EQ(n.node().metrics().timer_fires.load(), 4u);
  EXPECT_LE(n.node().metrics().timer_lateness.quantile(1.0), 1);
}

// Verifies background moves the session to away at once, with an ack.
TEST_F(SessionActorTest, BackgroundIsAwayAtOnce) {
  auto s = n.open("u1");
  n.advance(100);
  auto r = signal(s.session_id, signal_kind::background);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->current, state::away);
  EXPECT_EQ(r->heartbeat_ms, 2000);
  EXPECT_TRUE(r->changed);
  EXPECT_EQ(r->server_time, test_node::t0 + 100);
  r = signal(s.session_id, signal_kind::active);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->current, state::active);
  EXPECT_TRUE(r->changed);
}

// Verifies 100 identical signals change nothing, send no event and fire no timer.
TEST_F(SessionActorTest, IdenticalSignalsProduceNoEvents) {
  recorded log;
  auto s = n.open("u1");
  ASSERT_TRUE(n.ask<user_view>(n.node().router().user("u1"), subscribe_atom::value,
                               n.recorder(log)));
  for (int i = 0; i < 100; ++i) {
    n.advance(50);
    auto r = signal(s.session_id, signal_kind::active);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->current, state::active);
    EXPECT_FALSE(r->changed) << i;
  }
  EXPECT_TRUE(log.presence.empty());
  EXPECT_EQ(n.node().metrics().timer_fires.load(), 0u)
    << "a session that keeps signalling must never be woken";
  EXPECT_EQ(n.node().timers().armed(), 1u) << "exactly one pending wake-up";
}

// Verifies a signal moves the pending wake-up to the new boundary.
TEST_F(SessionActorTest, SignalRearmsTheTimer) {
  auto s = n.open("u1");
  n.advance_to(900);
  ASSERT_TRUE(signal(s.session_id, signal_kind::active));
  n.advance_to(1899);
  EXPECT_EQ(session_state(s.session_id), state::active);
  n.advance_to(1900);
  EXPECT_EQ(session_state(s.session_id), state::idle);
}

// Verifies an explicit leave is offline at once and the session is gone.
TEST_F(SessionActorTest, LeaveIsOfflineAtOnce) {
  recorded log;
  auto s = n.open("u1");
  ASSERT_TRUE(n.ask<user_view>(n.node().router().user("u1"), subscribe_atom::value,
                               n.recorder(log)));
  EXPECT_FALSE(n.tell(n.node().router().session(s.session_id), leave_atom::value));
  EXPECT_FALSE(n.node().router().session(s.session_id));
  ASSERT_EQ(log.presence.size(), 1u);
  EXPECT_EQ(log.presence[0].current, state::offline);
  EXPECT_EQ(log.presence[0].since, test_node::t0);
  EXPECT_EQ(n.node().timers().armed(), 0u);
  EXPECT_EQ(n.node().metrics().sessions_by_state[0].load(), 0);
}

// Verifies the session view: clocks, device, interval, confidence.
TEST_F(SessionActorTest, View) {
  auto s = n.open("u1", signal_kind::active, "phone");
  n.advance(300);
  auto v = n.ask<session_view>(s.handle, caf::get_atom::value);
  ASSERT_TRUE(v);
  EXPECT_EQ(v->session_id, s.session_id);
  EXPECT_EQ(v->user_id, "u1");
  EXPECT_EQ(v->device, "phone");
  EXPECT_EQ(v->last_signal_at, test_node::t0);
  EXPECT_EQ(v->last_active_at, test_node::t0);
  EXPECT_EQ(v->heartbeat_ms, 500);
  EXPECT_DOUBLE_EQ(v->confidence, 1.0);
  n.advance_to(5000); // stale; issued 500 + grace 100: (8000 - 5000) / (8000 - 600)
  v = n.ask<session_view>(s.handle, caf::get_atom::value);
  ASSERT_TRUE(v);
  EXPECT_EQ(v->heartbeat_ms, 500) << "timer transitions issue nothing";
  EXPECT_NEAR(v->confidence, 3000.0 / 7400.0, 1e-9);
}

// Verifies a session opened idle never reports activity and decays from idle.
TEST_F(SessionActorTest, OpenedIdle) {
  auto s = n.open("u1", signal_kind::idle);
  EXPECT_EQ(s.current, state::idle);
  EXPECT_EQ(s.heartbeat_ms, 1000);
  auto v = n.ask<session_view>(s.handle, caf::get_atom::value);
  ASSERT_TRUE(v);
  EXPECT_EQ(v->last_active_at, 0);
}

// Verifies operations carrying an acting user are refused for another user's
// session and allowed for its owner and for operators.
TEST_F(SessionActorTest, OwnershipIsChecked) {
  auto s = n.open("u1");
  auto r = n.ask<signal_reply>(s.handle, signal_atom::value, signal_kind::active,
                               std::string{"u2"});
  ASSERT_FALSE(r);
  EXPECT_EQ(code_of(r.error()), errc::forbidden);
  EXPECT_TRUE(n.ask<signal_reply>(s.handle, signal_atom::value, signal_kind::idle,
                                  std::string{"u1"}));
  auto j = n.ask<room_view>(s.handle, join_atom::value, std::string{"r"}, true,
                            std::string{"u2"});
  ASSERT_FALSE(j);
  EXPECT_EQ(code_of(j.error()), errc::forbidden);
  EXPECT_EQ(code_of(n.tell(s.handle, leave_atom::value, std::string{"u2"})),
            errc::forbidden);
  EXPECT_FALSE(n.tell(s.handle, leave_atom::value, admin_caller));
  EXPECT_FALSE(n.node().router().session(s.session_id));
}

// Verifies resume checks the token.
TEST_F(SessionActorTest, ResumeChecksTheToken) {
  auto s = n.open("u1");
  auto ok = n.ask<session_view>(s.handle, resume_atom::value, s.resume_token);
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->session_id, s.session_id);
  auto bad = n.ask<session_view>(s.handle, resume_atom::value, std::string{"nope"});
  ASSERT_FALSE(bad);
  EXPECT_EQ(code_of(bad.error()), errc::forbidden);
}

// Verifies identify moves a guest's session, and its rooms, to a user without
// the user or the room seeing a gap.
TEST_F(SessionActorTest, IdentifyMovesTheSession) {
  recorded user_log, room_log;
  auto s = n.open("guest:g1");
  ASSERT_TRUE(n.ask<room_view>(s.handle, join_atom::value, std::string{"r"}, true));
  ASSERT_TRUE(n.ask<user_view>(n.node().router().user("alice"), subscribe_atom::value,
                               n.recorder(user_log)));
  ASSERT_TRUE(n.ask<room_view>(n.node().router().room("r"), subscribe_atom::value,
                               n.recorder(room_log)));
  auto v = n.ask<session_view>(s.handle, identify_atom::value, std::string{"alice"},
                               std::string{"guest:g1"});
  ASSERT_TRUE(v) << render(v.error());
  EXPECT_EQ(v->user_id, "alice");
  ASSERT_EQ(user_log.presence.size(), 1u);
  EXPECT_EQ(user_log.presence[0].current, state::active);
  auto guest = n.ask<user_view>(n.node().router().user("guest:g1"), caf::get_atom::value);
  ASSERT_TRUE(guest);
  EXPECT_EQ(guest->current, state::offline);
  auto room = n.ask<room_view>(n.node().router().room("r"), caf::get_atom::value,
                               room_query{});
  ASSERT_TRUE(room);
  ASSERT_EQ(room->members.size(), 1u);
  EXPECT_EQ(room->members[0].user_id, "alice");
  // The room saw alice join before the guest left: never empty in between.
  for (auto& e : room_log.rooms)
    EXPECT_NE(e.phase, room_phase::empty) << e.event;
}

// Verifies a quiet signal answers the sender only when something changed.
TEST_F(SessionActorTest, QuietSignalsAnswerOnlyChanges) {
  recorded log;
  auto s = n.open("u1");
  std::vector<signal_reply> replies;
  auto fn = [](caf::event_based_actor*, std::vector<signal_reply>* out) -> caf::behavior {
    return {[out](const signal_reply& r) { out->push_back(r); }};
  };
  auto socket = n.sys().spawn(fn, &replies);
  for (int i = 0; i < 10; ++i)
    caf::send_as(socket, s.handle, signal_atom::value, signal_kind::active,
                 quiet_atom::value);
  caf::send_as(socket, s.handle, signal_atom::value, signal_kind::background,
               quiet_atom::value);
  n.run();
  ASSERT_EQ(replies.size(), 1u);
  EXPECT_EQ(replies[0].current, state::away);
  EXPECT_TRUE(replies[0].changed);
  caf::anon_send_exit(socket, caf::exit_reason::user_shutdown);
  n.run();
}

// Verifies a session is counted in the gauges as soon as it is opened, before
// its actor has run, in the state the client was told.
TEST_F(SessionActorTest, CountedWhenOpened) {
  auto& gauge = n.node().metrics().sessions_by_state;
  auto s = n.node().router().open_session({"u1", "web", signal_kind::idle, {}, {}});
  EXPECT_EQ(s.current, state::idle);
  EXPECT_EQ(gauge[static_cast<size_t>(state::idle)].load(), 1) << "before any run";
  n.run();
  EXPECT_EQ(gauge[static_cast<size_t>(state::idle)].load(), 1);
  n.advance(1000); // idle -> away after idle_after - active_window
  EXPECT_EQ(gauge[static_cast<size_t>(state::idle)].load(), 0);
  EXPECT_EQ(gauge[static_cast<size_t>(state::away)].load(), 1);
}

// Verifies a pending leave (1.1 `after_ms`): the session stays until after_ms
// passes, then goes offline at that moment.
TEST_F(SessionActorTest, PendingLeaveEndsTheSessionAfterItsDelay) {
  recorded log;
  auto s = n.open("u1");
  ASSERT_TRUE(n.ask<user_view>(n.node().router().user("u1"), subscribe_atom::value,
                               n.recorder(log)));
  EXPECT_FALSE(n.tell(s.handle, leave_atom::value, int64_t{300}));
  n.advance_to(299);
  EXPECT_EQ(session_state(s.session_id), state::active);
  n.advance_to(300);
  EXPECT_FALSE(n.node().router().session(s.session_id));
  ASSERT_EQ(log.presence.size(), 1u);
  EXPECT_EQ(log.presence[0].current, state::offline);
}

// Verifies a resume cancels a pending leave (a reload), and the session then
// decays by its clocks as before.
TEST_F(SessionActorTest, ResumeCancelsAPendingLeave) {
  auto s = n.open("u1");
  EXPECT_FALSE(n.tell(s.handle, leave_atom::value, int64_t{300}));
  n.advance_to(200);
  ASSERT_TRUE(n.ask<session_view>(s.handle, resume_atom::value, s.resume_token));
  n.advance_to(900);
  EXPECT_EQ(session_state(s.session_id), state::active);
  n.advance_to(1000);
  EXPECT_EQ(session_state(s.session_id), state::idle);
}

// Verifies the unloading page's leave checks the resume token: a wrong one is
// forbidden and changes nothing; the right one with 0 ends the session at once.
TEST_F(SessionActorTest, LeaveWithTokenChecksIt) {
  auto s = n.open("u1");
  auto bad = n.tell(s.handle, leave_atom::value, resume_atom::value, std::string{"nope"},
                    int64_t{0});
  ASSERT_TRUE(bad);
  EXPECT_EQ(code_of(bad), errc::forbidden);
  EXPECT_EQ(session_state(s.session_id), state::active);
  EXPECT_FALSE(n.tell(s.handle, leave_atom::value, resume_atom::value, s.resume_token,
                      int64_t{0}));
  EXPECT_FALSE(n.node().router().session(s.session_id));
}

// Verifies presence_heartbeat_lateness_seconds: a signal within the interval
// issued to the client counts as on time (0), one that comes 700 ms after its
// 500 ms interval ran out counts 700 ms late.
TEST_F(SessionActorTest, HeartbeatLatenessIsMeasuredAgainstTheIssuedInterval) {
  auto& h = n.node().metrics().heartbeat_lateness;
  auto s = n.open("u1");
  ASSERT_EQ(s.heartbeat_ms, 500);
  EXPECT_EQ(h.count(), 0u) << "opening is no heartbeat";
  n.advance_to(300);
  ASSERT_TRUE(signal(s.session_id, signal_kind::active));
  n.advance_to(1500);
  auto r = signal(s.session_id, signal_kind::active);
  ASSERT_TRUE(r);
  ASSERT_EQ(r->heartbeat_ms, 500);
  n.advance_to(2000);
  ASSERT_TRUE(signal(s.session_id, signal_kind::active));
  EXPECT_EQ(h.count(), 3u);
  EXPECT_EQ(h.bucket(0), 2u) << "two on time";
  EXPECT_EQ(h.bound_ms(3), 1000);
  EXPECT_EQ(h.bucket(3), 1u) << "700 ms late is in the (0.5, 1] s bucket";
  EXPECT_EQ(h.sum_ms(), 700);
}

namespace {

/// What a fake socket actor received from its session.
struct socket_log {
  std::vector<std::string> superseded; ///< session ids it was told of
  std::vector<signal_reply> replies;
  std::vector<errc> errors;
};

caf::actor fake_socket(test_node& n, socket_log& out) {
  auto fn = [](caf::event_based_actor* self, socket_log* log) -> caf::behavior {
    presence::actors::keep_on_errors(self);
    self->set_error_handler(
      [log](caf::scheduled_actor*, caf::error& e) { log->errors.push_back(code_of(e)); });
    return {
      [log](superseded_atom, const std::string& sid) { log->superseded.push_back(sid); },
      [log](const signal_reply& r) { log->replies.push_back(r); },
      [log](caf::error& e) { log->errors.push_back(code_of(e)); },
      [] {}, // the empty reply to an accepted leave
    };
  };
  return n.sys().spawn(fn, &out);
}

} // namespace

// Verifies one session, one socket: the socket that attached last holds the
// session, the one before is told (once); a superseded socket's quiet signals
// and leave do not act (it is told again, the leave is refused), the holder's
// do; requests that carry no socket (HTTP) still act.
TEST_F(SessionActorTest, TheLastSocketToAttachHoldsTheSession) {
  socket_log a_log, b_log;
  auto s = n.open("u1");
  auto a = fake_socket(n, a_log);
  auto b = fake_socket(n, b_log);
  caf::send_as(a, s.handle, attach_atom::value, a);
  n.run();
  caf::send_as(a, s.handle, attach_atom::value, a); // again: nothing happens
  n.run();
  EXPECT_TRUE(a_log.superseded.empty());
  caf::send_as(b, s.handle, attach_atom::value, b);
  n.run();
  EXPECT_EQ(a_log.superseded, std::vector<std::string>{s.session_id});
  EXPECT_TRUE(b_log.superseded.empty());
  EXPECT_EQ(n.node().metrics().sessions_taken_over.load(), 1u);
  // The old socket's signal does not count; it is told again.
  caf::send_as(a, s.handle, signal_atom::value, signal_kind::background, quiet_atom::value);
  n.run();
  EXPECT_EQ(session_state(s.session_id), state::active);
  EXPECT_TRUE(a_log.replies.empty());
  EXPECT_EQ(a_log.superseded.size(), 2u);
  // Its leave is refused: the session goes on.
  caf::send_as(a, s.handle, leave_atom::value, int64_t{0});
  n.run();
  ASSERT_TRUE(n.node().router().session(s.session_id)) << "the old socket's leave ended it";
  EXPECT_EQ(a_log.errors, std::vector<errc>{errc::taken_over});
  // The holder's signal counts.
  caf::send_as(b, s.handle, signal_atom::value, signal_kind::background, quiet_atom::value);
  n.run();
  ASSERT_EQ(b_log.replies.size(), 1u);
  EXPECT_EQ(b_log.replies[0].current, state::away);
  // A request without a socket (HTTP) is not a socket's: it acts.
  auto r = signal(s.session_id, signal_kind::active);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->current, state::active);
  // The holder's leave ends the session.
  caf::send_as(b, s.handle, leave_atom::value, int64_t{0});
  n.run();
  EXPECT_FALSE(n.node().router().session(s.session_id));
  EXPECT_TRUE(b_log.errors.empty());
  for (auto& x : {a, b})
    caf::anon_send_exit(x, caf::exit_reason::user_shutdown);
  n.run();
}

// Verifies a holder that is gone is simply replaced: the next socket to attach
// holds the session, and nothing else changes.
TEST_F(SessionActorTest, AGoneHolderIsReplaced) {
  socket_log a_log, b_log;
  auto s = n.open("u1");
  auto a = fake_socket(n, a_log);
  caf::send_as(a, s.handle, attach_atom::value, a);
  n.run();
  caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
  n.run();
  auto b = fake_socket(n, b_log);
  caf::send_as(b, s.handle, attach_atom::value, b);
  n.run();
  EXPECT_TRUE(b_log.superseded.empty());
  caf::send_as(b, s.handle, signal_atom::value, signal_kind::background, quiet_atom::value);
  n.run();
  ASSERT_EQ(b_log.replies.size(), 1u);
  EXPECT_EQ(b_log.replies[0].current, state::away);
  caf::anon_send_exit(b, caf::exit_reason::user_shutdown);
  n.run();
}
