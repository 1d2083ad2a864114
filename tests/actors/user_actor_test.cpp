// Verifies the user actor: aggregation by precedence, seq, change-only events,
// linger, last_active_at kept, and fresh views.
#include "support/test_node.hpp"

#include "actors/handoff.hpp"
#include "actors/user_actor.hpp"

using namespace presence::actors;
using presence::testing::recorded;
using presence::testing::test_node;

namespace {

// The user fixture, with `LingerMs` as presence.offline_linger_ms.
template <int64_t LingerMs>
class UserFixture : public ::testing::Test {
protected:
  static presence::config::settings settings() {
    auto s = test_node::default_settings();
    s.presence.offline_linger_ms = LingerMs;
    return s;
  }

  test_node n{settings()};

  caf::actor user(const std::string& id) { return n.node().router().user(id); }

  void subscribe(const std::string& id, recorded& log) {
    ASSERT_TRUE(n.ask<user_view>(user(id), subscribe_atom::value, n.recorder(log)));
  }

  void signal(const std::string& sid, signal_kind k) {
    ASSERT_TRUE(n.ask<signal_reply>(n.node().router().session(sid),
                                    signal_atom::value, k));
  }

  void leave(const std::string& sid) {
    ASSERT_FALSE(n.tell(n.node().router().session(sid), leave_atom::value));
  }

  user_view view(const std::string& id) {
    auto v = n.ask<user_view>(user(id), caf::get_atom::value);
    EXPECT_TRUE(v);
    return v ? *v : user_view{};
  }
};

std::vector<state> states(const recorded& log) {
  std::vector<state> out;
  for (auto& e : log.presence)
    out.push_back(e.current);
  return out;
}

using UserActorTest = UserFixture<0>;
using LingerTest = UserFixture<500>;

} // namespace

// Verifies a user with no session is offline with seq 0.
TEST_F(UserActorTest, NoSessionIsOffline) {
  auto v = view("nobody");
  EXPECT_EQ(v.current, state::offline);
  EXPECT_EQ(v.seq, 0u);
  EXPECT_TRUE(v.sessions.empty());
}

// Verifies an error that arrives as a message (the answer to a plain send that
// failed on its way, e.g. through a forwarder that found no owner) leaves
// every kind of entity running: CAF's default stops the actor with the error,
// which once took a node's membership actor down in the middle of a fault.
TEST_F(UserActorTest, AnErrorMessageStopsNoEntity) {
  auto tab = n.open("alice");
  auto& r = n.node().router();
  std::vector<caf::actor> entities{user("alice"), r.room("lobby"), tab.handle};
  for (auto& a : entities)
    caf::anon_send(a, caf::make_error(errc::session_not_found, std::string{"gone"}));
  n.run();
  EXPECT_EQ(view("alice").current, state::active);
  EXPECT_TRUE(n.ask<session_view>(tab.handle, caf::get_atom::value));
  EXPECT_TRUE(n.ask<room_view>(r.room("lobby"), caf::get_atom::value, room_query{}));
  EXPECT_EQ(user("alice"), entities[0]) << "the same actor, not a new one";
}

// Verifies a promoted user whose replica names subscribers and sockets that were
// gone when it arrived (null handles) starts and answers: monitoring a null
// handle crashed nodes that promoted users during a full restart.
TEST_F(UserActorTest, PromotedUserSkipsHandlesThatAreGone) {
  user_transfer t;
  t.rec.user_id = "ghosted";
  t.rec.seq = 3;
  t.subscribers = {caf::actor{}};
  t.inbox = {caf::actor{}};
  auto u = n.sys().spawn(user_actor_promoted, &n.node(), t);
  n.run();
  auto v = n.ask<user_view>(u, caf::get_atom::value);
  ASSERT_TRUE(v);
  EXPECT_EQ(v->seq, uint64_t{1} << 32);
}

// Verifies two sessions, one active and one idle, make the user active; when the
// active one leaves the user is idle, never offline in between.
TEST_F(UserActorTest, ActiveLeavesThenIdleNeverOffline) {
  recorded log;
  auto tab1 = n.open("u1", signal_kind::active);
  auto tab2 = n.open("u1", signal_kind::idle);
  subscribe("u1", log);
  auto v = view("u1");
  EXPECT_EQ(v.current, state::active);
  EXPECT_EQ(v.sessions.size(), 2u);
  leave(tab1.session_id);
  EXPECT_EQ(states(log), std::vector<state>{state::idle});
  EXPECT_EQ(view("u1").current, state::idle);
}

// Verifies closing one tab while another is active changes nothing a subscriber
// sees.
TEST_F(UserActorTest, ClosingOneOfTwoActiveTabsIsSilent) {
  recorded log;
  auto tab1 = n.open("u1");
  auto tab2 = n.open("u1");
  subscribe("u1", log);
  leave(tab1.session_id);
  EXPECT_TRUE(log.presence.empty());
  EXPECT_EQ(view("u1").sessions.size(), 1u);
}

// Verifies seq increases by exactly one per change and events carry it.
TEST_F(UserActorTest, SeqIncreasesByOnePerChange) {
  recorded log;
  subscribe("u1", log);
  auto s = n.open("u1"); // offline -> active: seq 1
  n.advance_to(1000);    // idle: 2
  signal(s.session_id, signal_kind::active); // active: 3
  signal(s.session_id, signal_kind::active); // nothing
  signal(s.session_id, signal_kind::background); // away: 4
  signal(s.session_id, signal_kind::background); // nothing
  n.advance_to(6000);    // stale: 5
  n.advance_to(9000);    // offline: 6
  ASSERT_EQ(log.presence.size(), 6u);
  for (size_t i = 0; i < log.presence.size(); ++i) {
    EXPECT_EQ(log.presence[i].seq, i + 1);
    if (i > 0) {
      EXPECT_EQ(log.presence[i].prev, log.presence[i - 1].current);
    }
  }
  EXPECT_EQ(states(log),
            (std::vector<state>{state::active, state::idle, state::active,
                                state::away, state::stale, state::offline}));
  EXPECT_EQ(view("u1").seq, 6u);
}

// Verifies last_active_at is the latest of any session, kept after they expire.
TEST_F(UserActorTest, LastActiveAtIsKept) {
  auto a = n.open("u1");
  n.advance(300);
  auto b = n.open("u1");
  n.advance_to(20000); // both expired
  auto v = view("u1");
  EXPECT_EQ(v.current, state::offline);
  EXPECT_EQ(v.last_active_at, test_node::t0 + 300);
  EXPECT_TRUE(v.sessions.empty());
}

// Verifies the view shows the latest heartbeat even though heartbeats that
// change nothing never reach the user actor.
TEST_F(UserActorTest, ViewFetchesFreshSessionClocks) {
  auto s = n.open("u1");
  n.advance(400);
  signal(s.session_id, signal_kind::active);
  auto v = view("u1");
  ASSERT_EQ(v.sessions.size(), 1u);
  EXPECT_EQ(v.sessions[0].last_signal_at, test_node::t0 + 400);
  EXPECT_EQ(v.last_seen_at, test_node::t0 + 400);
  // The user's last_active_at follows its sessions' latest active signal,
  // although the quiet signal never reached the user actor.
  EXPECT_EQ(v.last_active_at, test_node::t0 + 400);
  EXPECT_EQ(v.sessions[0].last_active_at, test_node::t0 + 400);
  EXPECT_DOUBLE_EQ(v.confidence, 1.0);
}

// Verifies a subscriber's snapshot carries the latest active signal too, and an
// active user's last_active_at keeps up with signals second by second.
TEST_F(UserActorTest, LastActiveAtFollowsActiveSignals) {
  recorded log;
  auto s = n.open("u1");
  for (int i = 1; i <= 6; ++i) {
    n.advance(1000);
    signal(s.session_id, signal_kind::active);
    EXPECT_EQ(view("u1").last_active_at, test_node::t0 + 1000 * i) << i;
  }
  auto snap = n.ask<user_view>(user("u1"), subscribe_atom::value, n.recorder(log));
  ASSERT_TRUE(snap);
  EXPECT_EQ(snap->last_active_at, test_node::t0 + 6000);
  EXPECT_TRUE(log.presence.empty()) << "quiet signals send no event";
}

// Verifies an idle user (no session, subscriber or socket) is passivated after
// node.passivate_after_ms: its actor goes, its record stays dormant, and the
// next use starts it again with the same seq and last_active_at.
TEST_F(UserActorTest, IdleUserIsPassivatedAndComesBack) {
  auto s = n.open("u1");
  n.advance(500);
  leave(s.session_id);
  auto before = view("u1");
  EXPECT_EQ(before.current, state::offline);
  EXPECT_GT(before.seq, 0u);
  auto& r = n.node().router();
  EXPECT_TRUE(r.find_local("user:u1"));
  auto passivate_ms = n.node().cfg().node.passivate_after_ms;
  n.advance(passivate_ms + 100);
  EXPECT_FALSE(r.find_local("user:u1")) << "an idle user is passivated";
  EXPECT_EQ(r.dormant(), 1u);
  EXPECT_EQ(n.node().metrics().passivated.load(), 1u);
  std::optional<presence::storage::user_record> rest;
  EXPECT_FALSE(r.user_for_read("u1", &rest)) << "a read starts no actor";
  ASSERT_TRUE(rest);
  EXPECT_EQ(rest->seq, before.seq);
  EXPECT_EQ(rest->last_active_at, before.last_active_at);
  // Back on next use, with its seq going on from where it was.
  recorded log;
  auto t2 = n.open("u1");
  ASSERT_TRUE(n.ask<user_view>(user("u1"), subscribe_atom::value, n.recorder(log)));
  auto after = view("u1");
  EXPECT_EQ(after.current, state::active);
  EXPECT_EQ(after.seq, before.seq + 1);
  EXPECT_EQ(r.dormant(), 0u);
  // A subscribed user is never passivated.
  leave(t2.session_id);
  n.advance(passivate_ms * 3);
  EXPECT_TRUE(r.find_local("user:u1"));
}

// Verifies a read of an id that never had a session starts no actor.
TEST_F(UserActorTest, ReadOfUnknownIdStartsNoActor) {
  std::optional<presence::storage::user_record> rest;
  EXPECT_FALSE(n.node().router().user_for_read("nobody", &rest));
  EXPECT_FALSE(rest);
  EXPECT_EQ(n.node().router().size(), 0u);
  // One started by a use that leaves nothing behind goes without a record.
  ASSERT_TRUE(n.ask<intent_list>(user("ghost"), list_atom::value, intent_atom::value));
  EXPECT_EQ(n.node().router().size(), 1u);
  n.advance(n.node().cfg().node.passivate_after_ms + 100);
  EXPECT_EQ(n.node().router().size(), 0u);
  EXPECT_EQ(n.node().router().dormant(), 0u);
}

// Verifies offline_linger_ms delays the move to offline.
TEST_F(LingerTest, OfflineIsDelayed) {
  recorded log;
  auto s = n.open("u1");
  subscribe("u1", log);
  leave(s.session_id);
  n.advance(499);
  EXPECT_TRUE(log.presence.empty());
  EXPECT_EQ(view("u1").current, state::active);
  n.advance(1);
  ASSERT_EQ(states(log), std::vector<state>{state::offline});
  EXPECT_EQ(log.presence[0].since, test_node::t0 + 500);
}

// Verifies closing a tab and opening another within the linger does not flap.
TEST_F(LingerTest, TabSwitchDoesNotFlap) {
  recorded log;
  auto s = n.open("u1");
  subscribe("u1", log);
  leave(s.session_id);
  n.advance(200);
  auto s2 = n.open("u1");
  n.advance(400); // past the end of the linger, tab 2 still active
  EXPECT_TRUE(log.presence.empty()) << "saw " << log.presence.size() << " events";
  EXPECT_EQ(view("u1").current, state::active);
}

// Verifies linger without a new session ends in one offline event, not two.
TEST_F(LingerTest, ExpiryWithLinger) {
  recorded log;
  subscribe("u1", log);
  n.open("u1");
  n.walk_to(8000); // session offline, linger starts
  EXPECT_EQ(states(log), (std::vector<state>{state::active, state::idle,
                                             state::away, state::stale}));
  n.advance_to(8500);
  EXPECT_EQ(log.presence.back().current, state::offline);
  EXPECT_EQ(log.presence.back().since, test_node::t0 + 8500);
}

// Verifies an idle room is passivated: one that never held anything leaves no
// record; one with a timeline keeps it dormant and comes back with it.
TEST_F(UserActorTest, IdleRoomIsPassivatedWithItsTimeline) {
  auto& r = n.node().router();
  auto passivate_ms = n.node().cfg().node.passivate_after_ms;
  EXPECT_FALSE(r.room_for_read("never")) << "a read of an unknown room starts nothing";
  ASSERT_TRUE(n.ask<room_view>(r.room("never"), caf::get_atom::value, room_query{}));
  auto s = n.open("u1");
  ASSERT_TRUE(n.ask<room_view>(r.session(s.session_id), join_atom::value,
                               std::string{"r1"}, true));
  n.advance(n.node().rooms().timeline_interval_ms * 2 + 10);
  leave(s.session_id);
  auto samples = n.ask<std::vector<timeline_sample>>(r.room("r1"), timeline_atom::value,
                                                     int64_t{0});
  ASSERT_TRUE(samples);
  ASSERT_FALSE(samples->empty());
  n.advance(passivate_ms + 100);
  EXPECT_FALSE(r.find_local("room:never"));
  EXPECT_FALSE(r.find_local("room:r1"));
  EXPECT_EQ(r.dormant_rooms(), 1u);
  auto back = r.room_for_read("r1");
  ASSERT_TRUE(back) << "a dormant room starts again when read";
  auto again = n.ask<std::vector<timeline_sample>>(back, timeline_atom::value, int64_t{0});
  ASSERT_TRUE(again);
  EXPECT_EQ(again->size(), samples->size());
  EXPECT_EQ(r.dormant_rooms(), 0u);
}
