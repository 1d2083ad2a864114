// Verifies the room actor: membership through sessions, counts and observers,
// the phase walk empty -> gathering -> ready -> cooling -> empty with hysteresis,
// timeline sampling, paging and momentum.
#include "actors/room_actor.hpp"
#include "support/test_node.hpp"

#include <algorithm>

using namespace presence::actors;
using presence::testing::recorded;
using presence::testing::test_node;

namespace {

class RoomActorTest : public ::testing::Test {
protected:
  test_node n;

  caf::actor room(const std::string& id) { return n.node().router().room(id); }

  room_view join(const opened_session& s, const std::string& rid,
                 bool visible = true) {
    auto v = n.ask<room_view>(s.handle, join_atom::value, rid, visible);
    EXPECT_TRUE(v) << render(v.error());
    return v ? *v : room_view{};
  }

  room_view view(const std::string& rid, room_query q = {}) {
    auto v = n.ask<room_view>(room(rid), caf::get_atom::value, q);
    EXPECT_TRUE(v);
    return v ? *v : room_view{};
  }

  void signal(const opened_session& s, signal_kind k = signal_kind::active) {
    ASSERT_TRUE(n.ask<signal_reply>(s.handle, signal_atom::value, k));
  }

  void leave(const opened_session& s) {
    ASSERT_FALSE(n.tell(s.handle, leave_atom::value));
  }

  static int64_t count(const room_view& v, state s) {
    return v.counts[static_cast<size_t>(s)];
  }
};

std::vector<room_phase> phases(const recorded& log) {
  std::vector<room_phase> out;
  for (auto& e : log.rooms)
    if (e.event == "phase")
      out.push_back(e.phase);
  return out;
}

} // namespace

// Verifies a new room is empty.
TEST_F(RoomActorTest, NewRoomIsEmpty) {
  auto v = view("r1");
  EXPECT_EQ(v.phase, room_phase::empty);
  EXPECT_EQ(v.member_count, 0);
  EXPECT_DOUBLE_EQ(v.readiness, 0.0);
}

// Verifies the phase walk with hysteresis: ready is kept at readiness 0.5 (inside
// the hysteresis band) and left for cooling at 0.4; everyone leaving empties it.
TEST_F(RoomActorTest, PhaseWalkWithHysteresis) {
  recorded log;
  ASSERT_TRUE(n.ask<room_view>(room("r"), subscribe_atom::value, n.recorder(log)));
  auto a = n.open("a");
  auto v = join(a, "r");
  EXPECT_EQ(v.phase, room_phase::gathering);
  EXPECT_NEAR(v.readiness, 0.45, 1e-9);
  auto b = n.open("b");
  v = join(b, "r");
  EXPECT_EQ(v.phase, room_phase::ready);
  EXPECT_NEAR(v.readiness, 0.9, 1e-9);
  n.advance_to(500);
  auto c = n.open("c");
  join(c, "r");
  // a keeps signalling; b goes idle at 1000, c at 1500, b away at 2000.
  for (int64_t t = 400; t <= 1600; t += 400) {
    n.advance_to(t);
    signal(a);
  }
  n.advance_to(1600);
  v = view("r");
  EXPECT_EQ(count(v, state::active), 1);
  EXPECT_EQ(count(v, state::idle), 2);
  EXPECT_NEAR(v.readiness, 0.5, 1e-9);
  EXPECT_EQ(v.phase, room_phase::ready) << "inside the hysteresis band";
  n.advance_to(2000);
  signal(a);
  v = view("r");
  EXPECT_EQ(count(v, state::away), 1);
  EXPECT_NEAR(v.readiness, 0.4, 1e-9);
  EXPECT_EQ(v.phase, room_phase::cooling);
  leave(a);
  leave(b);
  leave(c);
  v = view("r");
  EXPECT_EQ(v.phase, room_phase::empty);
  EXPECT_EQ(v.member_count, 0);
  EXPECT_EQ(phases(log),
            (std::vector<room_phase>{room_phase::gathering, room_phase::ready,
                                     room_phase::cooling, room_phase::empty}));
}

// Verifies cooling returns to ready when readiness reaches the threshold again.
TEST_F(RoomActorTest, CoolingBackToReady) {
  auto a = n.open("a");
  auto b = n.open("b");
  join(a, "r");
  join(b, "r");
  n.advance_to(2000); // both away
  EXPECT_EQ(view("r").phase, room_phase::cooling);
  signal(a);
  signal(b);
  EXPECT_EQ(view("r").phase, room_phase::ready);
}

// Verifies invisible members are observers, not counted, and do not make the
// room ready; the room is not empty while they are present.
TEST_F(RoomActorTest, Observers) {
  auto a = n.open("a");
  auto g = n.open("guest:1");
  join(a, "r");
  auto v = join(g, "r", false);
  EXPECT_EQ(v.observers, 1);
  EXPECT_EQ(count(v, state::active), 1);
  EXPECT_EQ(v.member_count, 2);
  EXPECT_EQ(v.phase, room_phase::gathering);
  leave(a);
  v = view("r");
  EXPECT_EQ(v.phase, room_phase::gathering) << "an observer is present";
  EXPECT_DOUBLE_EQ(v.readiness, 0.0);
}

// Verifies a member stays while one of its sessions that joined is live, and
// leaves when the last one goes offline (expiry, not only explicit leave).
TEST_F(RoomActorTest, MemberLeavesWithItsLastSession) {
  recorded log;
  ASSERT_TRUE(n.ask<room_view>(room("r"), subscribe_atom::value, n.recorder(log)));
  auto t1 = n.open("a");
  auto t2 = n.open("a");
  join(t1, "r");
  join(t2, "r");
  leave(t1);
  EXPECT_EQ(view("r").member_count, 1);
  n.advance_to(8000); // t2 expires
  EXPECT_EQ(view("r").member_count, 0);
  auto leaves = std::count_if(log.rooms.begin(), log.rooms.end(),
                              [](auto& e) { return e.event == "leave"; });
  auto joins = std::count_if(log.rooms.begin(), log.rooms.end(),
                             [](auto& e) { return e.event == "join"; });
  EXPECT_EQ(joins, 1);
  EXPECT_EQ(leaves, 1);
}

// Verifies explicit leave_room by one session keeps the user while another of
// its sessions is in the room.
TEST_F(RoomActorTest, LeaveRoomPerSession) {
  auto t1 = n.open("a");
  auto t2 = n.open("a");
  join(t1, "r");
  join(t2, "r");
  auto v = n.ask<room_view>(t1.handle, leave_room_atom::value, std::string{"r"});
  ASSERT_TRUE(v);
  EXPECT_EQ(v->member_count, 1);
  v = n.ask<room_view>(t2.handle, leave_room_atom::value, std::string{"r"});
  ASSERT_TRUE(v);
  EXPECT_EQ(v->member_count, 0);
  EXPECT_EQ(v->phase, room_phase::empty);
}

// Verifies member events carry the user's state changes.
TEST_F(RoomActorTest, MemberStateEvents) {
  recorded log;
  auto a = n.open("a");
  join(a, "r");
  ASSERT_TRUE(n.ask<room_view>(room("r"), subscribe_atom::value, n.recorder(log)));
  n.advance_to(1000);
  ASSERT_FALSE(log.rooms.empty());
  EXPECT_EQ(log.rooms[0].event, "member");
  EXPECT_EQ(log.rooms[0].user_id, "a");
  EXPECT_EQ(log.rooms[0].current, state::idle);
  EXPECT_EQ(log.rooms[0].counts[static_cast<size_t>(state::idle)], 1);
}

// Verifies the timeline samples every interval while someone is present, and
// stops sampling an empty room.
TEST_F(RoomActorTest, Timeline) {
  auto a = n.open("a");
  join(a, "r");
  n.walk_to(3500);
  auto samples = n.ask<std::vector<timeline_sample>>(room("r"), timeline_atom::value,
                                                     int64_t{0});
  ASSERT_TRUE(samples);
  ASSERT_EQ(samples->size(), 4u); // 0, 1000, 2000, 3000
  EXPECT_EQ(samples->at(0).t, test_node::t0);
  EXPECT_EQ(samples->at(3).t, test_node::t0 + 3000);
  EXPECT_EQ(samples->at(0).phase, room_phase::gathering);
  leave(a);
  n.advance_to(10000);
  samples = n.ask<std::vector<timeline_sample>>(room("r"), timeline_atom::value,
                                                test_node::t0 + 3001);
  ASSERT_TRUE(samples);
  ASSERT_EQ(samples->size(), 1u); // the moment it emptied
  EXPECT_EQ(samples->at(0).phase, room_phase::empty);
}

// Verifies the member list pages by id and counts_only skips it.
TEST_F(RoomActorTest, Paging) {
  std::vector<opened_session> ss;
  for (auto id : {"e", "a", "d", "b", "c"}) {
    ss.push_back(n.open(id));
    join(ss.back(), "r");
  }
  auto v = view("r", room_query{2, "", false});
  ASSERT_EQ(v.members.size(), 2u);
  EXPECT_EQ(v.members[0].user_id, "a");
  EXPECT_EQ(v.members[1].user_id, "b");
  EXPECT_EQ(v.next_after, "b");
  v = view("r", room_query{2, "b", false});
  ASSERT_EQ(v.members.size(), 2u);
  EXPECT_EQ(v.members[0].user_id, "c");
  v = view("r", room_query{2, "d", false});
  ASSERT_EQ(v.members.size(), 1u);
  EXPECT_EQ(v.next_after, "");
  v = view("r", room_query{2, "", true});
  EXPECT_TRUE(v.members.empty());
  EXPECT_EQ(v.member_count, 5);
}

// Verifies momentum rises with joins and falls back with time.
TEST_F(RoomActorTest, Momentum) {
  for (int i = 0; i < 5; ++i)
    join(n.open("u" + std::to_string(i)), "r");
  auto v = view("r");
  EXPECT_NEAR(v.momentum, 5.0, 1e-9);
  n.advance_to(7000);
  EXPECT_LT(view("r").momentum, 5.0);
}

// Verifies the media flag is kept and does not end the room.
TEST_F(RoomActorTest, MediaFlag) {
  auto a = n.open("a");
  join(a, "r");
  auto v = n.ask<room_view>(room("r"), media_atom::value, true);
  ASSERT_TRUE(v);
  EXPECT_TRUE(v->media_attached);
  v = n.ask<room_view>(room("r"), media_atom::value, false);
  ASSERT_TRUE(v);
  EXPECT_FALSE(v->media_attached);
  EXPECT_EQ(v->member_count, 1);
}

namespace {

class BigRoomTest : public ::testing::Test {
protected:
  static presence::config::settings settings() {
    auto s = test_node::default_settings();
    s.rooms.announce_max = 5;
    s.rooms.delta_interval_ms = 100;
    s.rooms.delta_max_members = 3;
    return s;
  }
  test_node n{settings()};
};

} // namespace

// Verifies a join storm into a big room costs one room_delta per interval per
// subscriber, not one event per member: the first announce_max joins are
// announced, the rest arrive as counts only.
TEST_F(BigRoomTest, JoinStormIsBatched) {
  recorded log;
  ASSERT_TRUE(n.ask<room_view>(n.node().router().room("hall"), subscribe_atom::value,
                               n.recorder(log)));
  for (int i = 0; i < 1000; ++i) {
    auto s = n.open("u" + std::to_string(i));
    ASSERT_TRUE(n.ask<room_view>(s.handle, join_atom::value, std::string{"hall"}, true));
  }
  auto joins = std::count_if(log.rooms.begin(), log.rooms.end(),
                             [](auto& e) { return e.event == "join"; });
  EXPECT_EQ(joins, 5) << "members beyond announce_max are not announced one by one";
  EXPECT_TRUE(log.deltas.empty());
  n.advance(100);
  ASSERT_EQ(log.deltas.size(), 1u);
  EXPECT_TRUE(log.deltas[0].truncated);
  EXPECT_TRUE(log.deltas[0].changed.empty());
  EXPECT_EQ(log.deltas[0].counts[static_cast<size_t>(state::active)], 1000);
  EXPECT_LE(log.rooms.size(), 10u) << "only the first joins and phase changes";
}

// Verifies a few changes in a big room are listed in the delta.
TEST_F(BigRoomTest, SmallDeltaListsMembers) {
  std::vector<opened_session> ss;
  for (int i = 0; i < 10; ++i) {
    ss.push_back(n.open("u" + std::to_string(i)));
    ASSERT_TRUE(n.ask<room_view>(ss.back().handle, join_atom::value, std::string{"hall"}, true));
  }
  recorded log;
  ASSERT_TRUE(n.ask<room_view>(n.node().router().room("hall"), subscribe_atom::value,
                               n.recorder(log)));
  n.advance(150); // the storm's delta goes out
  log.deltas.clear();
  ASSERT_TRUE(n.ask<signal_reply>(ss[0].handle, signal_atom::value, signal_kind::background));
  ASSERT_FALSE(n.tell(ss[1].handle, leave_atom::value));
  n.advance(100);
  ASSERT_EQ(log.deltas.size(), 1u);
  EXPECT_FALSE(log.deltas[0].truncated);
  ASSERT_EQ(log.deltas[0].changed.size(), 2u);
  EXPECT_EQ(log.deltas[0].changed[0].user_id, "u0");
  EXPECT_EQ(log.deltas[0].changed[0].current, state::away);
  EXPECT_EQ(log.deltas[0].changed[1].user_id, "u1");
  EXPECT_EQ(log.deltas[0].changed[1].current, state::offline);
  EXPECT_EQ(log.deltas[0].counts[static_cast<size_t>(state::away)], 1);
}

// Verifies replies to joins list the first members only and point to the rest.
TEST_F(BigRoomTest, JoinRepliesArePaged) {
  room_view last;
  for (int i = 0; i < 150; ++i) {
    auto s = n.open("u" + std::to_string(1000 + i));
    auto v = n.ask<room_view>(s.handle, join_atom::value, std::string{"hall"}, true);
    ASSERT_TRUE(v);
    last = *v;
  }
  EXPECT_EQ(last.member_count, 150);
  EXPECT_EQ(last.members.size(), static_cast<size_t>(reply_members));
  EXPECT_EQ(last.next_after, last.members.back().user_id);
  auto all = n.ask<room_view>(n.node().router().room("hall"), caf::get_atom::value,
                              room_query{1000, "", false});
  ASSERT_TRUE(all);
  EXPECT_EQ(all->members.size(), 150u);
}

namespace {

std::vector<int64_t> by_phase(test_node& n) {
  std::vector<int64_t> out;
  for (auto& x : n.node().metrics().rooms_by_phase)
    out.push_back(x.load());
  return out;
}

} // namespace

// Verifies presence_rooms_by_phase follows each room's phase (empty, gathering,
// ready, cooling, in that order) and still sums to presence_rooms once idle rooms
// are passivated.
TEST_F(RoomActorTest, RoomsByPhaseFollowThePhases) {
  auto& m = n.node().metrics();
  view("r1");
  view("r2");
  EXPECT_EQ(by_phase(n), (std::vector<int64_t>{2, 0, 0, 0}));
  auto a = n.open("a");
  join(a, "r1");
  EXPECT_EQ(by_phase(n), (std::vector<int64_t>{1, 1, 0, 0}));
  auto b = n.open("b");
  join(b, "r1");
  join(b, "r2");
  EXPECT_EQ(view("r1").phase, room_phase::ready);
  EXPECT_EQ(by_phase(n), (std::vector<int64_t>{0, 1, 1, 0}));
  // b goes away (2 s), a keeps signalling: r1 cools, r2 keeps b as present.
  for (int64_t t = 400; t <= 2000; t += 400) {
    n.advance_to(t);
    signal(a);
  }
  ASSERT_EQ(view("r1").phase, room_phase::cooling);
  EXPECT_EQ(by_phase(n), (std::vector<int64_t>{0, 1, 0, 1}));
  leave(a);
  leave(b);
  EXPECT_EQ(by_phase(n), (std::vector<int64_t>{2, 0, 0, 0}));
  EXPECT_EQ(m.rooms.load(), 2);
  n.advance(n.node().cfg().node.passivate_after_ms + 100);
  EXPECT_EQ(m.rooms.load(), 0) << "both rooms are passivated";
  EXPECT_EQ(by_phase(n), (std::vector<int64_t>{0, 0, 0, 0}));
}
