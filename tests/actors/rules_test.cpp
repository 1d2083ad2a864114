// Verifies the pure rules of PROTOCOL.md's state table, precedence, confidence,
// heartbeat intervals, readiness, phases and momentum, one case per boundary.
#include "actors/rules.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

using namespace presence::actors;
using presence::config::presence_section;
using presence::config::rooms_section;

namespace {

constexpr int64_t t0 = 1'700'000'000'000;

presence_section defaults() {
  return presence_section{};
}

presence_section custom() {
  presence_section p;
  p.active_window_ms = 1000;
  p.idle_after_ms = 3000;
  p.stale_after_ms = 7000;
  p.offline_after_ms = 11000;
  p.grace_ms = 200;
  p.heartbeat_active_ms = 800;
  p.heartbeat_idle_ms = 2000;
  p.heartbeat_background_ms = 4000;
  return p;
}

struct decay_case {
  std::string name;
  int64_t at; // ms after one signal at t0
  state expected;
};

// One `active` signal at t0 and nothing more: each boundary, 1 ms before and at.
std::vector<decay_case> decay_table(const presence_section& p) {
  return {
    {"at signal", 0, state::active},
    {"before active window", p.active_window_ms - 1, state::active},
    {"at active window", p.active_window_ms, state::idle},
    {"before idle_after", p.idle_after_ms - 1, state::idle},
    {"at idle_after", p.idle_after_ms, state::away},
    {"before stale_after", p.stale_after_ms - 1, state::away},
    {"at stale_after", p.stale_after_ms, state::stale},
    {"before offline_after", p.offline_after_ms - 1, state::stale},
    {"at offline_after", p.offline_after_ms, state::offline},
    {"long after", p.offline_after_ms * 10, state::offline},
  };
}

void check_decay(const presence_section& p) {
  session_clock c;
  apply_signal(c, signal_kind::active, t0);
  for (auto& tc : decay_table(p))
    EXPECT_EQ(derive_state(c, t0 + tc.at, p), tc.expected)
      << tc.name << " (+" << tc.at << " ms)";
}

} // namespace

// Verifies the one-signal decay timeline at every boundary with defaults.
TEST(RulesTest, DecayTimelineWithDefaults) {
  check_decay(defaults());
}

// Verifies the same timeline with a custom configuration.
TEST(RulesTest, DecayTimelineWithCustomConfig) {
  check_decay(custom());
}

// Verifies the documented example: active 15 s, idle to 60 s, away to 180 s,
// stale to 240 s, then offline.
TEST(RulesTest, DefaultsMatchTheProtocolExample) {
  auto p = defaults();
  EXPECT_EQ(p.active_window_ms, 15000);
  EXPECT_EQ(p.idle_after_ms, 60000);
  EXPECT_EQ(p.stale_after_ms, 180000);
  EXPECT_EQ(p.offline_after_ms, 240000);
  EXPECT_EQ(p.grace_ms, 5000);
  EXPECT_EQ(p.heartbeat_active_ms, 10000);
  EXPECT_EQ(p.heartbeat_idle_ms, 30000);
  EXPECT_EQ(p.heartbeat_background_ms, 60000);
  EXPECT_EQ(p.offline_linger_ms, 0);
}

// Verifies rules 1-5 for each declared signal and the clocks each signal moves.
TEST(RulesTest, SignalsAndTheirClocks) {
  for (auto p : {defaults(), custom()}) {
    struct row {
      std::string name;
      std::vector<std::pair<int64_t, signal_kind>> signals;
      int64_t at;
      state expected;
    };
    auto aw = p.active_window_ms;
    auto ia = p.idle_after_ms;
    auto st = p.stale_after_ms;
    auto off = p.offline_after_ms;
    std::vector<row> rows = {
      {"background is away at once", {{0, signal_kind::background}}, 0, state::away},
      {"background holds while signalling",
       {{0, signal_kind::active}, {1, signal_kind::background}}, 2, state::away},
      {"background then active is active",
       {{0, signal_kind::background}, {5, signal_kind::active}}, 5, state::active},
      {"background then idle leaves background",
       {{0, signal_kind::active}, {1, signal_kind::background}, {2, signal_kind::idle}},
       3, state::active},
      {"background stale at stale_after", {{0, signal_kind::background}}, st,
       state::stale},
      {"background offline at offline_after", {{0, signal_kind::background}}, off,
       state::offline},
      {"idle signal does not refresh activity",
       {{0, signal_kind::active}, {aw - 10, signal_kind::idle}}, aw, state::idle},
      {"idle signal keeps the session from going stale",
       {{0, signal_kind::active}, {st - 1, signal_kind::idle}}, st, state::away},
      {"idle signals alone reach away at idle_after",
       {{0, signal_kind::active}, {ia - 1, signal_kind::idle}}, ia, state::away},
      {"active signal refreshes both clocks",
       {{0, signal_kind::active}, {ia, signal_kind::active}}, ia + aw - 1,
       state::active},
      {"stale recovers with any signal",
       {{0, signal_kind::active}, {st, signal_kind::idle}}, st, state::away},
    };
    for (auto& r : rows) {
      session_clock c;
      for (auto& [at, sig] : r.signals)
        apply_signal(c, sig, t0 + at);
      EXPECT_EQ(derive_state(c, t0 + r.at, p), r.expected) << r.name;
    }
  }
}

// Verifies an explicit leave is offline at once whatever the clocks say.
TEST(RulesTest, LeaveIsOfflineAtOnce) {
  session_clock c;
  apply_signal(c, signal_kind::active, t0);
  c.left = true;
  EXPECT_EQ(derive_state(c, t0, defaults()), state::offline);
  EXPECT_FALSE(next_transition_at(c, t0, defaults()).has_value());
}

// Verifies a session opened with idle or background starts idle or away and has
// never been active.
TEST(RulesTest, OpeningSignal) {
  auto p = defaults();
  auto a = open_session(signal_kind::active, t0, p);
  auto i = open_session(signal_kind::idle, t0, p);
  auto b = open_session(signal_kind::background, t0, p);
  EXPECT_EQ(derive_state(a, t0, p), state::active);
  EXPECT_EQ(derive_state(i, t0, p), state::idle);
  EXPECT_EQ(derive_state(b, t0, p), state::away);
  EXPECT_EQ(a.reported_last_active_at(), t0);
  EXPECT_EQ(i.reported_last_active_at(), 0);
  EXPECT_EQ(b.reported_last_active_at(), 0);
}

// Verifies the next transition is exactly the next boundary where the state
// changes, from every point of the timeline.
TEST(RulesTest, NextTransitionIsTheNextBoundary) {
  for (auto p : {defaults(), custom()}) {
    session_clock c;
    apply_signal(c, signal_kind::active, t0);
    struct row {
      int64_t now;
      int64_t next;
    };
    std::vector<row> rows = {
      {0, p.active_window_ms},
      {p.active_window_ms - 1, p.active_window_ms},
      {p.active_window_ms, p.idle_after_ms},
      {p.idle_after_ms, p.stale_after_ms},
      {p.stale_after_ms - 1, p.stale_after_ms},
      {p.stale_after_ms, p.offline_after_ms},
      {p.offline_after_ms - 1, p.offline_after_ms},
    };
    for (auto& r : rows) {
      auto next = next_transition_at(c, t0 + r.now, p);
      ASSERT_TRUE(next.has_value()) << "at +" << r.now;
      EXPECT_EQ(*next, t0 + r.next) << "at +" << r.now;
    }
    EXPECT_FALSE(next_transition_at(c, t0 + p.offline_after_ms, p).has_value());
    // Background skips the activity boundaries: next is stale_after.
    session_clock b;
    apply_signal(b, signal_kind::background, t0);
    EXPECT_EQ(*next_transition_at(b, t0, p), t0 + p.stale_after_ms);
  }
}

// Verifies precedence: active > idle > away > stale > offline.
TEST(RulesTest, Precedence) {
  std::vector<state> order = {state::offline, state::stale, state::away,
                              state::idle, state::active};
  for (size_t i = 0; i < order.size(); ++i)
    for (size_t j = 0; j < order.size(); ++j) {
      EXPECT_EQ(best_of(order[i], order[j]), order[std::max(i, j)]);
      EXPECT_EQ(best_of(order[j], order[i]), order[std::max(i, j)]);
    }
}

// Verifies the adaptive heartbeat interval per state.
TEST(RulesTest, HeartbeatInterval) {
  auto p = custom();
  EXPECT_EQ(heartbeat_interval_ms(state::active, p), 800);
  EXPECT_EQ(heartbeat_interval_ms(state::idle, p), 2000);
  EXPECT_EQ(heartbeat_interval_ms(state::away, p), 4000);
  EXPECT_EQ(heartbeat_interval_ms(state::stale, p), 800);
}

// Verifies confidence: 1 through interval + grace, linear to 0 at offline_after.
TEST(RulesTest, Confidence) {
  auto p = custom(); // grace 200, offline 11000
  struct row {
    int64_t since;
    int64_t interval;
    double expected;
  };
  std::vector<row> rows = {
    {0, 800, 1.0},
    {1000, 800, 1.0},         // interval + grace
    {1001, 800, 9999.0 / 10000.0},
    {6000, 800, 0.5},
    {10999, 800, 1.0 / 10000.0},
    {11000, 800, 0.0},
    {50000, 800, 0.0},
    {2200, 2000, 1.0},
    {6600, 2000, 0.5},
  };
  for (auto& r : rows)
    EXPECT_NEAR(confidence(r.since, r.interval, p), r.expected, 1e-9)
      << "since " << r.since << " interval " << r.interval;
}

// Verifies names round-trip and unknown names are refused.
TEST(RulesTest, Names) {
  for (auto s : {state::offline, state::stale, state::away, state::idle,
                 state::active})
    EXPECT_EQ(parse_state(to_string(s)), s);
  for (auto s : {signal_kind::active, signal_kind::idle, signal_kind::background})
    EXPECT_EQ(parse_signal(to_string(s)), s);
  EXPECT_FALSE(parse_signal("leave").has_value());
  EXPECT_FALSE(parse_signal("Active").has_value());
  EXPECT_FALSE(parse_signal("").has_value());
}

namespace {

state_counts counts(int64_t active, int64_t idle, int64_t away, int64_t stale,
                    int64_t offline = 0) {
  return {offline, stale, away, idle, active};
}

} // namespace

// Verifies the documented readiness formula on representative rooms.
TEST(RulesTest, Readiness) {
  rooms_section r; // weights 0.6 / 0.3 / 0.1, density target 2
  struct row {
    std::string name;
    state_counts c;
    int64_t intents;
    double expected;
  };
  std::vector<row> rows = {
    {"empty", counts(0, 0, 0, 0), 0, 0.0},
    {"only offline", counts(0, 0, 0, 0, 3), 0, 0.0},
    {"one active alone", counts(1, 0, 0, 0), 0, 0.5 * 0.9},
    {"two active", counts(2, 0, 0, 0), 0, 0.9},
    {"two active one intent", counts(2, 0, 0, 0), 1, 0.95},
    {"intents saturate", counts(2, 0, 0, 0), 10, 1.0},
    {"active and idle", counts(1, 1, 0, 0), 0, 0.6},
    {"active and away", counts(1, 0, 1, 0), 0, 0.45},
    {"two idle", counts(0, 2, 0, 0), 0, 0.3},
    {"stale count as present", counts(2, 0, 0, 2), 0, 0.45},
  };
  for (auto& x : rows)
    EXPECT_NEAR(readiness(x.c, x.intents, r), x.expected, 1e-9) << x.name;
}

// Verifies phases with hysteresis: enter ready at the threshold, leave it only
// below threshold - hysteresis, cool down, come back, empty.
TEST(RulesTest, PhaseWithHysteresis) {
  rooms_section r; // threshold 0.6, hysteresis 0.1
  struct row {
    room_phase prev;
    bool present;
    double readiness;
    room_phase expected;
  };
  std::vector<row> rows = {
    {room_phase::empty, false, 0.0, room_phase::empty},
    {room_phase::empty, true, 0.0, room_phase::gathering},
    {room_phase::empty, true, 0.59, room_phase::gathering},
    {room_phase::gathering, true, 0.5999, room_phase::gathering},
    {room_phase::gathering, true, 0.6, room_phase::ready},
    {room_phase::ready, true, 0.55, room_phase::ready},
    {room_phase::ready, true, 0.5, room_phase::ready},
    {room_phase::ready, true, 0.4999, room_phase::cooling},
    {room_phase::cooling, true, 0.55, room_phase::cooling},
    {room_phase::cooling, true, 0.6, room_phase::ready},
    {room_phase::cooling, false, 0.0, room_phase::empty},
    {room_phase::ready, false, 0.0, room_phase::empty},
    {room_phase::gathering, false, 0.0, room_phase::empty},
  };
  for (auto& x : rows)
    EXPECT_EQ(next_phase(x.prev, x.present, x.readiness, r), x.expected)
      << to_string(x.prev) << " r=" << x.readiness;
}

// Verifies momentum: a steady rate converges to joins per minute, leaves cancel
// joins, and it decays when nothing happens.
TEST(RulesTest, Momentum) {
  constexpr int64_t window = 60000;
  momentum m;
  // 10 joins per minute for 10 minutes.
  for (int i = 0; i < 100; ++i)
    m.add(t0 + i * 6000, +1, window);
  EXPECT_NEAR(m.value(t0 + 99 * 6000, window), 10.0, 0.6);
  momentum quiet;
  quiet.add(t0, +1, window);
  quiet.add(t0, -1, window);
  EXPECT_NEAR(quiet.value(t0, window), 0.0, 1e-9);
  momentum decaying;
  decaying.add(t0, +1, window);
  EXPECT_GT(decaying.value(t0, window), decaying.value(t0 + 60000, window));
  EXPECT_LT(decaying.value(t0 + 600000, window), 0.001);
}
