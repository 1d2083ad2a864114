// Verifies the room actor's analytics under the test coordinator: scripted
// members walk a room through gathering -> ready -> cooling -> empty and every
// figure of the report is checked exactly (readiness curve, phase time, joins
// and leaves, drop-off, stays, attention decay with and without media, the
// episode); quiet heartbeats touch nothing; the analytics survive a restart
// (through the store), a promotion from a transfer, and passivation.
#include "actors/room_actor.hpp"
#include "support/test_node.hpp"

#include "actors/handoff.hpp"
#include "storage/store.hpp"

using namespace presence::actors;
using presence::testing::test_node;
namespace storage = presence::storage;

namespace {

constexpr int64_t t0 = test_node::t0; // a multiple of 1000

// 1 s buckets, quick drop-off within 1.5 s, "after media" for 3 s.
presence::config::settings analytics_settings() {
  auto s = test_node::default_settings();
  s.rooms.analytics_bucket_ms = 1000;
  s.rooms.drop_off_ms = 1500;
  s.rooms.media_decay_window_ms = 3000;
  EXPECT_TRUE(presence::config::validate(s).empty());
  return s;
}

analytics::report report_of(test_node& n, const caf::actor& room, int64_t since = 0,
                            int64_t bucket_ms = 1000) {
  auto r = n.ask<analytics::report>(room, analytics_atom::value, since, bucket_ms);
  EXPECT_TRUE(r) << render(r.error());
  return r ? *r : analytics::report{};
}

void join(test_node& n, const opened_session& s, bool visible = true) {
  ASSERT_TRUE(n.ask<room_view>(s.handle, join_atom::value, std::string{"r"}, visible));
}

void signal(test_node& n, const opened_session& s, signal_kind k = signal_kind::active) {
  ASSERT_TRUE(n.ask<signal_reply>(s.handle, signal_atom::value, k));
}

void leave(test_node& n, const opened_session& s) {
  ASSERT_FALSE(n.tell(s.handle, leave_atom::value));
}

// Moves to `at` in 50 ms steps; `a` signals active every 400 ms on the way
// (quiet heartbeats: its state stays active).
void walk(test_node& n, const opened_session& a, int64_t at) {
  while (n.now() < at) {
    n.advance(50);
    if (n.now() % 400 == 0)
      signal(n, a);
  }
}

struct members {
  opened_session a, x, b, c;
};

// The script (ms after t0; all times multiples of 50, so the 50 ms walk meets
// every boundary exactly):
//      0  a joins (active)                     gathering 0.45, episode starts
//    100  x joins invisibly; media attached    (observers do not count)
//    200  x leaves: before ready, quickly      stay 100
//    300  b joins (active)                     ready 0.9 (2 present)
//    500  c joins (active)                     ready 0.9, c saw ready
//   1300  b idle (its active window ends)      ready 0.7; b to_idle 1000
//   1500  c idle                               ready 0.5 (in the hysteresis band);
//                                              c to_idle 1000 (an idle signal would
//                                              not end the active window)
//   1900  media detached
//   2000  b signals background: away          cooling 0.4 (3 present);
//                                              b to_away 1700, after media
//   2500  c away (idle_after_ms ends)          cooling 0.3; c to_away 2000, after media
//   2600  c leaves                             cooling 0.45; stay 2100
//   3000  a leaves                             cooling 0; stay 3000
//   3100  b leaves                             empty, episode ends; stay 2800
members play(test_node& n, const caf::actor& room, bool to_the_end = true) {
  members m;
  m.a = n.open("a");
  join(n, m.a);
  n.advance_to(100);
  m.x = n.open("x");
  join(n, m.x, false);
  EXPECT_TRUE(n.ask<room_view>(room, media_atom::value, true));
  walk(n, m.a, 200);
  leave(n, m.x);
  walk(n, m.a, 300);
  m.b = n.open("b");
  join(n, m.b);
  walk(n, m.a, 500);
  m.c = n.open("c");
  join(n, m.c);
  walk(n, m.a, 1900);
  EXPECT_TRUE(n.ask<room_view>(room, media_atom::value, false));
  walk(n, m.a, 2000);
  signal(n, m.b, signal_kind::background);
  walk(n, m.a, 2600);
  leave(n, m.c);
  if (!to_the_end)
    return m;
  walk(n, m.a, 3000);
  leave(n, m.a);
  walk(n, m.a, 3100);
  leave(n, m.b);
  return m;
}

// Checks every figure of the report of the full script, read at 3500 in 1 s
// buckets.
void expect_full_script(const analytics::report& r) {
  EXPECT_EQ(r.room_id, "r");
  EXPECT_EQ(r.phase, room_phase::empty);
  EXPECT_EQ(r.base_bucket_ms, 1000);
  EXPECT_EQ(r.kept_from, t0);
  ASSERT_EQ(r.buckets.size(), 4u);
  struct want {
    int64_t span, present;
    double min, mean, max;
    std::array<int64_t, 4> phase_ms;
    int64_t joins, leaves, before_ready, quickly, both;
    int64_t idle_n, idle_p50, idle_p90, away_n, away_p50, away_p90;
  };
  std::vector<want> rows{
    // [0, 1000): gathering 300 at 0.45, ready 700 at 0.9
    {1000, 1000, 0.45, (0.45 * 300 + 0.9 * 700) / 1000, 0.9, {0, 300, 700, 0}, 4, 1, 1, 1,
     1, 0, 0, 0, 0, 0, 0},
    // [1000, 2000): ready 300 at 0.9, 200 at 0.7, 500 at 0.5
    {1000, 1000, 0.5, (0.9 * 300 + 0.7 * 200 + 0.5 * 500) / 1000, 0.9, {0, 0, 1000, 0}, 0,
     0, 0, 0, 0, 2, 1000, 1000, 0, 0, 0},
    // [2000, 3000): cooling 500 at 0.4, 100 at 0.3, 400 at 0.45
    {1000, 1000, 0.3, (0.4 * 500 + 0.3 * 100 + 0.45 * 400) / 1000, 0.45, {0, 0, 0, 1000}, 0,
     1, 0, 0, 0, 0, 0, 0, 2, 1700, 2000},
    // [3000, 3500): cooling 100 at 0, then empty
    {500, 100, 0, 0, 0, {400, 0, 0, 100}, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0},
  };
  for (size_t i = 0; i < rows.size(); ++i) {
    auto& b = r.buckets[i];
    auto& w = rows[i];
    SCOPED_TRACE("bucket " + std::to_string(i));
    EXPECT_EQ(b.t, t0 + static_cast<int64_t>(i) * 1000);
    EXPECT_EQ(b.span_ms, w.span);
    EXPECT_EQ(b.present_ms, w.present);
    EXPECT_NEAR(b.readiness_min, w.min, 1e-9);
    EXPECT_NEAR(b.readiness_mean, w.mean, 1e-9);
    EXPECT_NEAR(b.readiness_max, w.max, 1e-9);
    EXPECT_EQ(b.phase_ms, w.phase_ms);
    EXPECT_EQ(b.joins, w.joins);
    EXPECT_EQ(b.leaves, w.leaves);
    EXPECT_EQ(b.left_before_ready, w.before_ready);
    EXPECT_EQ(b.left_quickly, w.quickly);
    EXPECT_EQ(b.left_before_ready_quickly, w.both);
    EXPECT_EQ(b.to_idle.n, w.idle_n);
    EXPECT_EQ(b.to_idle.p50, w.idle_p50);
    EXPECT_EQ(b.to_idle.p90, w.idle_p90);
    EXPECT_EQ(b.to_away.n, w.away_n);
    EXPECT_EQ(b.to_away.p50, w.away_p50);
    EXPECT_EQ(b.to_away.p90, w.away_p90);
  }
  // Stays 100, 2100, 2800, 3000.
  EXPECT_EQ(r.stay.n, 4);
  EXPECT_EQ(r.stay.p50, 2100);
  EXPECT_EQ(r.stay.p90, 3000);
  EXPECT_EQ(r.leaves, 4);
  EXPECT_EQ(r.left_before_ready, 1);
  EXPECT_EQ(r.left_quickly, 1);
  EXPECT_EQ(r.left_before_ready_quickly, 1);
  EXPECT_EQ(r.drop_off_ms, 1500);
  EXPECT_EQ(r.to_idle.n, 2);
  EXPECT_EQ(r.to_idle.p50, 1000);
  EXPECT_EQ(r.to_idle.p90, 1000);
  EXPECT_EQ(r.to_away.n, 2);
  EXPECT_EQ(r.to_away.p50, 1700);
  EXPECT_EQ(r.to_away.p90, 2000);
  EXPECT_EQ(r.to_idle_after_media.n, 0);
  EXPECT_EQ(r.to_away_after_media.n, 2);
  EXPECT_EQ(r.to_away_after_media.p50, 1700);
  EXPECT_EQ(r.to_away_after_media.p90, 2000);
  ASSERT_EQ(r.episodes.size(), 1u);
  auto& e = r.episodes[0];
  EXPECT_EQ(e.started_at, t0);
  EXPECT_EQ(e.ready_at, t0 + 300);
  EXPECT_EQ(e.present_at_ready, 2);
  EXPECT_NEAR(e.readiness_at_ready, 0.9, 1e-9);
  EXPECT_EQ(e.cooling_at, t0 + 2000);
  EXPECT_EQ(e.present_at_cooling, 3);
  EXPECT_NEAR(e.readiness_at_cooling, 0.4, 1e-9);
  EXPECT_EQ(e.ended_at, t0 + 3100);
}

} // namespace

// Verifies every figure of a room walked through gathering -> ready -> cooling
// -> empty, in 1 s buckets and merged into 2 s buckets.
TEST(RoomAnalyticsTest, WalkThroughAnEpisodeGivesExactFigures) {
  test_node n{analytics_settings()};
  auto room = n.node().router().room("r");
  play(n, room);
  n.advance_to(3500);
  expect_full_script(report_of(n, room));
  auto wide = report_of(n, room, 0, 2000);
  ASSERT_EQ(wide.buckets.size(), 2u);
  EXPECT_EQ(wide.buckets[0].t, t0);
  EXPECT_EQ(wide.buckets[0].joins, 4);
  EXPECT_EQ(wide.buckets[0].phase_ms, (std::array<int64_t, 4>{0, 300, 1700, 0}));
  EXPECT_NEAR(wide.buckets[0].readiness_min, 0.45, 1e-9);
  EXPECT_NEAR(wide.buckets[0].readiness_max, 0.9, 1e-9);
  EXPECT_NEAR(wide.buckets[0].readiness_mean,
              (0.45 * 300 + 0.9 * 1000 + 0.7 * 200 + 0.5 * 500) / 2000, 1e-9);
  EXPECT_EQ(wide.buckets[0].to_idle.n, 2);
  EXPECT_EQ(wide.buckets[1].span_ms, 1500);
  EXPECT_EQ(wide.buckets[1].leaves, 3);
  // since 2500 in 1 s buckets: from the bucket at 2000.
  auto late = report_of(n, room, t0 + 2500);
  EXPECT_EQ(late.since, t0 + 2000);
  ASSERT_EQ(late.buckets.size(), 2u);
  EXPECT_EQ(late.stay.n, 3) << "x left at 200";
  EXPECT_EQ(late.to_idle.n, 0);
  EXPECT_EQ(late.episodes.size(), 1u) << "it ended after since";
  EXPECT_EQ(report_of(n, room, t0 + 4000).episodes.size(), 0u);
}

// Verifies that the open segment counts up to the read, while the room is
// present, and that reading changes nothing.
TEST(RoomAnalyticsTest, OpenSegmentCountsUpToTheRead) {
  test_node n{analytics_settings()};
  auto room = n.node().router().room("r");
  auto a = n.open("a");
  join(n, a);
  n.advance_to(700);
  auto r = report_of(n, room);
  EXPECT_EQ(r.phase, room_phase::gathering);
  ASSERT_EQ(r.buckets.size(), 1u);
  EXPECT_EQ(r.buckets[0].span_ms, 700);
  EXPECT_EQ(r.buckets[0].phase_ms, (std::array<int64_t, 4>{0, 700, 0, 0}));
  ASSERT_EQ(r.episodes.size(), 1u);
  EXPECT_EQ(r.episodes[0].ended_at, 0);
  EXPECT_EQ(r.episodes[0].ready_at, 0);
  auto again = report_of(n, room);
  EXPECT_EQ(again.revision, r.revision);
  EXPECT_EQ(again.buckets[0].phase_ms, r.buckets[0].phase_ms);
}

// Verifies that heartbeats that change no state touch no analytics: not through
// the user (nothing reaches the room) and not when a member update with the
// same state reaches it (only last_active_at moves).
TEST(RoomAnalyticsTest, QuietHeartbeatTouchesNoAnalytics) {
  test_node n{analytics_settings()};
  auto room = n.node().router().room("r");
  auto a = n.open("a");
  auto b = n.open("b");
  join(n, a);
  join(n, b);
  auto before = report_of(n, room);
  ASSERT_GT(before.revision, 0u);
  for (int i = 1; i <= 20; ++i) {
    n.advance(100);
    signal(n, a);
    signal(n, b);
  }
  caf::anon_send(room, member_atom::value,
                 member_update{"a", state::active, true, true, n.node().now_ms(), false});
  n.run();
  auto after = report_of(n, room);
  EXPECT_EQ(after.revision, before.revision);
  ASSERT_EQ(after.buckets.size(), 2u) << "the open stretch reaches into the next second";
  EXPECT_EQ(after.buckets[0].joins, 2);
  EXPECT_EQ(after.buckets[1].joins, 0);
  EXPECT_EQ(after.buckets[1].phase_ms[2], 1000) << "ready all along, one segment";
  // A real change does count.
  signal(n, b, signal_kind::background);
  EXPECT_GT(report_of(n, room).revision, after.revision);
}

// Verifies bad queries are refused by the room with invalid_argument.
TEST(RoomAnalyticsTest, BadQueriesAreRefused) {
  test_node n{analytics_settings()};
  auto room = n.node().router().room("r");
  for (auto [since, bucket] : std::vector<std::pair<int64_t, int64_t>>{
         {-1, 1000}, {0, 0}, {0, 1500}, {0, 1000 * 1440 + 1000}}) {
    auto r = n.ask<analytics::report>(room, analytics_atom::value, since, bucket);
    ASSERT_FALSE(r) << since << " " << bucket;
    EXPECT_EQ(code_of(r.error()), errc::invalid_argument);
  }
  EXPECT_TRUE(n.ask<analytics::report>(room, analytics_atom::value, int64_t{0},
                                       int64_t{1000 * 1440}));
}

// Verifies the analytics survive a restart through the store: the second node
// reports the same figures; members restored mid-visit count their leave but
// no stay (their join time is not durable).
TEST(RoomAnalyticsTest, SurviveARestart) {
  auto store = storage::make_memory_store();
  {
    test_node n{analytics_settings(), store.get()};
    play(n, n.node().router().room("r"));
    n.flush();
  }
  test_node m{analytics_settings(), store.get(), t0 + 3200};
  m.recover(*store);
  m.advance_to(3500);
  expect_full_script(report_of(m, m.node().router().room("r")));
}

// Verifies a restart in the middle of a visit: the open segment starts again
// at the restart (downtime is not counted), and members restored count their
// leave without a stay.
TEST(RoomAnalyticsTest, RestartMidVisit) {
  auto store = storage::make_memory_store();
  std::string a_session;
  {
    test_node n{analytics_settings(), store.get()};
    // a and b are still in at 2600. (Only ids leave this scope: handles die
    // with their node.)
    a_session = play(n, n.node().router().room("r"), false).a.session_id;
    n.flush();
  }
  test_node k{analytics_settings(), store.get(), t0 + 2800};
  k.recover(*store);
  auto room = k.node().router().room("r");
  auto r = report_of(k, room);
  EXPECT_EQ(r.stay.n, 2) << "x and c";
  // [2600, 2800) was down: bucket 2 holds 500 + 100 of cooling before c left.
  ASSERT_EQ(r.buckets.size(), 3u);
  EXPECT_EQ(r.buckets[2].phase_ms[3], 600);
  EXPECT_EQ(r.buckets[2].leaves, 1);
  auto a = k.node().router().session(a_session);
  ASSERT_TRUE(a);
  ASSERT_FALSE(k.tell(a, leave_atom::value));
  r = report_of(k, room);
  EXPECT_EQ(r.leaves, 3);
  EXPECT_EQ(r.stay.n, 2) << "a's join time did not survive";
  EXPECT_EQ(r.episodes.size(), 1u);
}

// Verifies a room promoted from its transfer (hand-off or replica) on another
// node keeps its analytics, and that its members keep their join times.
TEST(RoomAnalyticsTest, SurviveAPromotion) {
  room_transfer t;
  {
    test_node n{analytics_settings()};
    auto room = n.node().router().room("r");
    play(n, room, false);
    auto exported = n.ask<room_transfer>(room, export_atom::value, caf::actor{}, uint64_t{0});
    ASSERT_TRUE(exported) << render(exported.error());
    t = *exported;
  }
  ASSERT_EQ(t.members.size(), 2u);
  EXPECT_EQ(t.members[0].joined_at, t0);       // a
  EXPECT_TRUE(t.members[0].saw_ready);
  EXPECT_EQ(t.members[1].joined_at, t0 + 300); // b
  test_node k{analytics_settings(), nullptr, t0 + 2600};
  auto promoted = k.sys().spawn(room_actor_promoted, &k.node(), t);
  k.run();
  k.advance_to(2700);
  auto r = report_of(k, promoted);
  EXPECT_EQ(r.stay.n, 2);
  EXPECT_EQ(r.leaves, 2);
  ASSERT_EQ(r.buckets.size(), 3u);
  EXPECT_EQ(r.buckets[2].phase_ms[3], 700) << "the segment goes on across the move";
  ASSERT_EQ(r.episodes.size(), 1u);
  EXPECT_EQ(r.episodes[0].ready_at, t0 + 300);
  EXPECT_EQ(r.episodes[0].cooling_at, t0 + 2000);
  caf::anon_send_exit(promoted, caf::exit_reason::user_shutdown);
  k.run();
}

// Verifies an idle room passivated after its episode keeps its analytics in
// its dormant record and reports them when it is read again.
TEST(RoomAnalyticsTest, SurvivePassivation) {
  test_node n{analytics_settings()};
  auto& router = n.node().router();
  play(n, router.room("r"));
  n.advance_to(3500);
  auto before = report_of(n, router.room("r"));
  n.advance(n.node().cfg().node.passivate_after_ms + 100);
  ASSERT_FALSE(router.find_local("room:r")) << "passivated";
  ASSERT_EQ(router.dormant_rooms(), 1u);
  auto back = router.room_for_read("r");
  ASSERT_TRUE(back);
  auto after = report_of(n, back);
  EXPECT_EQ(after.revision, before.revision);
  ASSERT_EQ(after.buckets.size(), before.buckets.size());
  for (size_t i = 0; i < after.buckets.size(); ++i) {
    EXPECT_EQ(after.buckets[i].present_ms, before.buckets[i].present_ms) << i;
    EXPECT_EQ(after.buckets[i].joins, before.buckets[i].joins) << i;
    EXPECT_EQ(after.buckets[i].leaves, before.buckets[i].leaves) << i;
    EXPECT_DOUBLE_EQ(after.buckets[i].readiness_mean, before.buckets[i].readiness_mean) << i;
  }
  EXPECT_EQ(after.buckets.back().span_ms, 1000) << "the last bucket is complete by now";
  EXPECT_EQ(after.stay.p50, 2100);
  EXPECT_EQ(after.to_away_after_media.n, 2);
  ASSERT_EQ(after.episodes.size(), 1u);
  EXPECT_EQ(after.episodes[0].ended_at, t0 + 3100);
}

// Verifies a room's record (which carries its analytics) is handed to the
// writer at most once per flush interval: the first change at once, the next
// ones together at the end of the interval, counted as deferred meanwhile.
TEST(RoomAnalyticsTest, RecordWritesAreThrottled) {
  auto store = storage::make_memory_store();
  test_node n{analytics_settings(), store.get()};
  n.node().router().room("r");
  auto stored_joins = [&]() -> int64_t {
    auto bytes = store->get(storage::kind::rooms, "r");
    if (!bytes)
      return -1;
    std::string why;
    auto rec = storage::decode_record(storage::kind::rooms, *bytes, &why);
    EXPECT_TRUE(rec) << why;
    if (!rec)
      return -1;
    int64_t joins = 0;
    for (auto& b : std::get<storage::room_record>(*rec).analytics.buckets)
      joins += b.joins;
    return joins;
  };
  auto base = deferred_room_writes();
  auto a = n.open("a");
  join(n, a); // two saves: the phase change (at once, with the join), the join
  n.flush();
  EXPECT_EQ(stored_joins(), 1) << "the first change is written at once";
  EXPECT_EQ(deferred_room_writes(), base + 1);
  auto b = n.open("b");
  join(n, b);
  auto c = n.open("c");
  join(n, c);
  EXPECT_EQ(deferred_room_writes(), base + 1) << "one deferred write per room";
  n.flush();
  EXPECT_EQ(stored_joins(), 1);
  n.advance(n.node().cfg().storage.flush_interval_ms);
  EXPECT_EQ(deferred_room_writes(), base);
  n.flush();
  EXPECT_EQ(stored_joins(), 3);
}

// Verifies a node restarted with fewer rooms.analytics_max_buckets keeps only
// the newest buckets of what it restores.
TEST(RoomAnalyticsTest, FewerBucketsAfterARestartKeepTheNewest) {
  auto store = storage::make_memory_store();
  {
    test_node n{analytics_settings(), store.get()};
    play(n, n.node().router().room("r"));
  }
  auto fewer = analytics_settings();
  fewer.rooms.analytics_max_buckets = 2;
  test_node m{fewer, store.get(), t0 + 3200};
  m.recover(*store);
  m.advance_to(3500);
  auto r = report_of(m, m.node().router().room("r"));
  ASSERT_EQ(r.buckets.size(), 2u);
  EXPECT_EQ(r.kept_from, t0 + 2000);
  EXPECT_EQ(r.buckets[1].leaves, 2);
  EXPECT_EQ(r.leaves, 3) << "c, a and b left in the buckets kept";
  EXPECT_EQ(r.stay.n, 3) << "samples count from the oldest bucket kept";
}

// Verifies the outcomes of intents into the room: one pending until the room
// is ready (delivered 200 ms after it was made), accepted 400 ms later; one made
// while ready (delivered at once) and cancelled; repeated views count once.
TEST(RoomAnalyticsTest, IntentOutcomes) {
  test_node n{analytics_settings()};
  auto& router = n.node().router();
  auto room = router.room("r");
  auto a = n.open("a");
  join(n, a);
  n.advance_to(100);
  auto first = router.create_intent({"z", "", "r", "call", "", 60000});
  ASSERT_TRUE(first);
  n.run();
  auto first_id = first->first.intent_id;
  EXPECT_EQ(n.ask<intent_view>(first->second, caf::get_atom::value)->status,
            intent_status::pending);
  n.advance_to(300);
  auto b = n.open("b");
  join(n, b);
  auto v = n.ask<intent_view>(first->second, caf::get_atom::value);
  ASSERT_TRUE(v);
  EXPECT_EQ(v->status, intent_status::delivered);
  EXPECT_EQ(v->delivered_at, t0 + 300);
  // The same view again (a catch-up) counts nothing.
  auto before = report_of(n, room).revision;
  caf::anon_send(room, intent_atom::value, *v);
  n.run();
  EXPECT_EQ(report_of(n, room).revision, before);
  n.advance_to(700);
  ASSERT_TRUE(n.ask<intent_view>(first->second, accept_atom::value, std::string{"a"}));
  n.advance_to(800);
  auto second = router.create_intent({"z", "", "r", "call", "", 60000});
  ASSERT_TRUE(second);
  n.run();
  n.advance_to(900);
  ASSERT_TRUE(n.ask<intent_view>(second->second, cancel_atom::value, std::string{"z"}));
  auto r = report_of(n, room);
  EXPECT_EQ(r.intents.final, (std::array<int64_t, 4>{1, 0, 0, 1}));
  EXPECT_EQ(r.intents.final_delivered, 2);
  EXPECT_EQ(r.intents.to_delivered.n, 2);
  EXPECT_EQ(r.intents.to_delivered.p50, 0);
  EXPECT_EQ(r.intents.to_delivered.p90, 200);
  EXPECT_EQ(r.intents.to_answer.n, 1);
  EXPECT_EQ(r.intents.to_answer.p50, 400);
}
