// Verifies a room's start_when rule under the test coordinator: subscribers get
// a room event "threshold" when the rule starts holding (after its for_ms
// debounce, run by the room's timer) and when it stops; a crossing that drops
// inside the debounce sends nothing; the rule and whether it holds are in the
// room view, survive a restart (through the store) and a promotion, and a
// cleared rule stops holding.
#include "actors/room_actor.hpp"
#include "support/test_node.hpp"

#include "actors/errors.hpp"
#include "actors/handoff.hpp"
#include "storage/store.hpp"

using namespace presence::actors;
using presence::testing::recorded;
using presence::testing::test_node;
namespace storage = presence::storage;

namespace {

constexpr int64_t t0 = test_node::t0;

void join(test_node& n, const opened_session& s) {
  ASSERT_TRUE(n.ask<room_view>(s.handle, join_atom::value, std::string{"r"}, true));
}

void signal(test_node& n, const opened_session& s, signal_kind k = signal_kind::active) {
  ASSERT_TRUE(n.ask<signal_reply>(s.handle, signal_atom::value, k));
}

caf::expected<room_view> set_rule(test_node& n, const caf::actor& room,
                                  storage::start_when_rule rule) {
  return n.ask<room_view>(room, start_when_atom::value, rule);
}

std::vector<room_event> thresholds(const recorded& log) {
  std::vector<room_event> out;
  for (auto& e : log.rooms)
    if (e.event == "threshold")
      out.push_back(e);
  return out;
}

// Moves to `at` in 50 ms steps; `a` signals active every 400 ms on the way
// (its state stays active; the test's active window is 1000 ms).
void walk(test_node& n, const opened_session& a, int64_t at) {
  while (n.now() < at) {
    n.advance(50);
    if (n.now() % 400 == 0)
      signal(n, a);
  }
}

// Verifies the debounce under the room's timer (readiness >= 0.9 for 300 ms):
// two active members from 100 hold it from exactly 400 (nothing at 350); b
// turning idle at 1100 (readiness 0.6) stops it at once; b active again at 1200
// and away at 1300 (inside the debounce) sends nothing.
TEST(RoomThresholdTest, HoldsAfterForMsAndStopsAtOnce) {
  test_node n;
  auto room = n.node().router().room("r");
  recorded log;
  ASSERT_TRUE(n.ask<room_view>(room, subscribe_atom::value, n.recorder(log)));
  auto v = set_rule(n, room, {0.9, 0, 300});
  ASSERT_TRUE(v) << render(v.error());
  EXPECT_EQ(v->start_when.readiness_at_least, 0.9);
  EXPECT_EQ(v->start_when.for_ms, 300);
  EXPECT_FALSE(v->threshold_holding);
  auto a = n.open("a");
  join(n, a);
  n.advance_to(100);
  auto b = n.open("b");
  join(n, b);
  EXPECT_DOUBLE_EQ(n.ask<room_view>(room, caf::get_atom::value, room_query{})->readiness, 0.9);
  walk(n, a, 350);
  EXPECT_TRUE(thresholds(log).empty()) << "inside the debounce";
  walk(n, a, 400);
  auto got = thresholds(log);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_TRUE(got[0].holding);
  EXPECT_EQ(got[0].at, t0 + 400);
  EXPECT_EQ(got[0].room_id, "r");
  EXPECT_DOUBLE_EQ(got[0].readiness, 0.9);
  EXPECT_EQ(got[0].phase, room_phase::ready);
  EXPECT_TRUE(n.ask<room_view>(room, caf::get_atom::value, room_query{})->threshold_holding);
  walk(n, a, 1050);
  EXPECT_EQ(thresholds(log).size(), 1u) << "no repeat while it holds";
  walk(n, a, 1100); // b's active window ends: readiness 0.6
  got = thresholds(log);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_FALSE(got[1].holding);
  EXPECT_EQ(got[1].at, t0 + 1100);
  EXPECT_DOUBLE_EQ(got[1].readiness, 0.6);
  walk(n, a, 1200);
  signal(n, b); // 0.9 again: the debounce runs until 1500
  walk(n, a, 1300);
  signal(n, b, signal_kind::background); // away: 0.45
  walk(n, a, 1800);
  EXPECT_EQ(thresholds(log).size(), 2u) << "dropped inside the debounce";
  EXPECT_FALSE(n.ask<room_view>(room, caf::get_atom::value, room_query{})->threshold_holding);
}

// Verifies a member-count rule without debounce holds at the join that makes
// it true and stops at the leave that makes it false; clearing the rule while
// it holds sends holding false; a rule with a bad value is refused.
TEST(RoomThresholdTest, MemberCountRuleAndClearing) {
  test_node n;
  auto room = n.node().router().room("r");
  recorded log;
  ASSERT_TRUE(n.ask<room_view>(room, subscribe_atom::value, n.recorder(log)));
  auto bad = set_rule(n, room, {1.5, 0, 0});
  ASSERT_FALSE(bad);
  EXPECT_EQ(code_of(bad.error()), errc::invalid_argument);
  ASSERT_TRUE(set_rule(n, room, {0, 2, 0}));
  auto a = n.open("a");
  join(n, a);
  n.advance_to(10);
  EXPECT_TRUE(thresholds(log).empty());
  auto b = n.open("b");
  join(n, b);
  auto got = thresholds(log);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_TRUE(got[0].holding);
  EXPECT_EQ(got[0].at, t0 + 10);
  EXPECT_EQ(got[0].counts[static_cast<size_t>(state::active)], 2);
  // The threshold event comes after the join that caused it.
  ASSERT_GE(log.rooms.size(), 2u);
  EXPECT_EQ(log.rooms.back().event, "threshold");
  n.advance_to(20);
  ASSERT_FALSE(n.tell(b.handle, leave_atom::value));
  got = thresholds(log);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_FALSE(got[1].holding);
  EXPECT_EQ(got[1].at, t0 + 20);
  auto c = n.open("c");
  join(n, c);
  ASSERT_EQ(thresholds(log).size(), 3u);
  EXPECT_TRUE(thresholds(log)[2].holding);
  n.advance_to(30);
  auto v = set_rule(n, room, {});
  ASSERT_TRUE(v);
  EXPECT_FALSE(v->start_when.set());
  EXPECT_FALSE(v->threshold_holding);
  got = thresholds(log);
  ASSERT_EQ(got.size(), 4u);
  EXPECT_FALSE(got[3].holding) << "a cleared rule stops holding";
  EXPECT_EQ(got[3].at, t0 + 30);
}

// Verifies the rule and its state are durable: after a restart through the
// store the room view still carries the rule and holds it (its members came
// back active); after a promotion from a transfer the same; and the restored
// room tells no one "holding" again.
TEST(RoomThresholdTest, SurvivesRestartAndPromotion) {
  auto store = storage::make_memory_store();
  {
    test_node n{test_node::default_settings(), store.get()};
    auto room = n.node().router().room("r");
    ASSERT_TRUE(set_rule(n, room, {0, 2, 100}));
    auto a = n.open("a");
    join(n, a);
    auto b = n.open("b");
    join(n, b);
    n.advance_to(100);
    ASSERT_TRUE(n.ask<room_view>(room, caf::get_atom::value, room_query{})->threshold_holding);
    signal(n, a);
    signal(n, b);
    n.flush();
  }
  room_transfer t;
  {
    test_node m{test_node::default_settings(), store.get(), t0 + 300};
    m.recover(*store);
    auto room = m.node().router().room("r");
    recorded log;
    auto v = m.ask<room_view>(room, subscribe_atom::value, m.recorder(log));
    ASSERT_TRUE(v);
    EXPECT_EQ(v->start_when.active_at_least, 2);
    EXPECT_EQ(v->start_when.for_ms, 100);
    EXPECT_EQ(v->counts[static_cast<size_t>(state::active)], 2);
    EXPECT_TRUE(v->threshold_holding);
    m.advance_to(600);
    EXPECT_TRUE(thresholds(log).empty()) << "still holding: nothing to tell";
    auto exported = m.ask<room_transfer>(room, export_atom::value, caf::actor{}, uint64_t{0});
    ASSERT_TRUE(exported) << render(exported.error());
    t = *exported;
  }
  EXPECT_TRUE(t.rec.start_when.holding);
  test_node k{test_node::default_settings(), nullptr, t0 + 700};
  auto promoted = k.sys().spawn(room_actor_promoted, &k.node(), t);
  k.run();
  auto v = k.ask<room_view>(promoted, caf::get_atom::value, room_query{});
  ASSERT_TRUE(v);
  EXPECT_EQ(v->start_when.active_at_least, 2);
  EXPECT_TRUE(v->threshold_holding);
  caf::anon_send_exit(promoted, caf::exit_reason::user_shutdown);
  k.run();
}

} // namespace
