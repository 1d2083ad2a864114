// Verifies the user actor: aggregation by precedence, seq, change-only events,
// linger, last_active_at kept, and fresh views.
#include "support/test_node.hpp"

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
  EXPECT_EQ(v.last_active_at, test_node::t0); // the change-time copy
  EXPECT_EQ(v.sessions[0].last_active_at, test_node::t0 + 400);
  EXPECT_DOUBLE_EQ(v.confidence, 1.0);
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
