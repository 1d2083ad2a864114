// Verifies the hashed timing wheel: entries fire at or after their due time and
// never before, cancel and re-schedule are exact, and large jumps of time fire
// everything due once.
#include "actors/timer_wheel.hpp"

#include <gtest/gtest.h>

#include <vector>

using presence::actors::timer_wheel;
using presence::actors::wheel_entry;

namespace {

struct item : wheel_entry {
  int id = 0;
};

std::vector<int> advance(timer_wheel& w, int64_t to) {
  std::vector<int> fired;
  w.advance(to, [&](wheel_entry& e) { fired.push_back(static_cast<item&>(e).id); });
  return fired;
}

} // namespace

// Verifies an entry fires on the first advance at or after its due time.
TEST(TimerWheelTest, FiresAtDueTimeNotBefore) {
  timer_wheel w{10, 64, 1000};
  item a;
  a.id = 1;
  w.schedule(a, 1055);
  EXPECT_TRUE(advance(w, 1054).empty());
  EXPECT_EQ(advance(w, 1060), std::vector<int>{1});
  EXPECT_EQ(w.size(), 0u);
  EXPECT_FALSE(a.linked);
}

// Verifies due times rounded to ticks never fire early.
TEST(TimerWheelTest, RoundsUpToTheTick) {
  timer_wheel w{10, 64, 0};
  item a;
  a.id = 1;
  w.schedule(a, 51);
  EXPECT_TRUE(advance(w, 55).empty()); // tick 5 < due tick 6
  EXPECT_EQ(advance(w, 60), std::vector<int>{1});
}

// Verifies entries due beyond one revolution wait for their round.
TEST(TimerWheelTest, LongTimersWaitForTheirRound) {
  timer_wheel w{1, 8, 0};
  item a;
  a.id = 7;
  w.schedule(a, 100);
  for (int64_t t = 1; t < 100; ++t)
    ASSERT_TRUE(advance(w, t).empty()) << t;
  EXPECT_EQ(advance(w, 100), std::vector<int>{7});
}

// Verifies cancel and re-schedule: the old due time never fires.
TEST(TimerWheelTest, CancelAndReschedule) {
  timer_wheel w{1, 16, 0};
  item a, b;
  a.id = 1;
  b.id = 2;
  w.schedule(a, 10);
  w.schedule(b, 10);
  w.cancel(a);
  w.schedule(b, 30);
  EXPECT_EQ(w.size(), 1u);
  EXPECT_TRUE(advance(w, 29).empty());
  EXPECT_EQ(advance(w, 30), std::vector<int>{2});
  w.cancel(a); // cancelling an unlinked entry is a no-op
  EXPECT_EQ(w.size(), 0u);
}

// Verifies a jump of many revolutions fires everything due exactly once and
// keeps what is not due.
TEST(TimerWheelTest, LargeJumpFiresEachDueEntryOnce) {
  timer_wheel w{1, 32, 0};
  std::vector<item> items(200);
  for (int i = 0; i < 200; ++i) {
    items[i].id = i;
    w.schedule(items[i], 1 + i * 10); // due 1 .. 1991
  }
  auto fired = advance(w, 1000);
  EXPECT_EQ(fired.size(), 100u);
  for (int id : fired)
    EXPECT_LE(1 + id * 10, 1000);
  fired = advance(w, 5000);
  EXPECT_EQ(fired.size(), 100u);
  EXPECT_EQ(w.size(), 0u);
}

// Verifies a due time in the past fires on the next advance.
TEST(TimerWheelTest, PastDueFiresNext) {
  timer_wheel w{10, 8, 1000};
  item a;
  a.id = 3;
  w.schedule(a, 500);
  EXPECT_EQ(advance(w, 1010), std::vector<int>{3});
}

// Verifies an entry re-scheduled from the fire callback is not fired twice in
// the same advance.
TEST(TimerWheelTest, RescheduleFromCallback) {
  timer_wheel w{1, 8, 0};
  item a;
  a.id = 1;
  w.schedule(a, 5);
  int fired = 0;
  w.advance(100, [&](wheel_entry& e) {
    ++fired;
    w.schedule(e, 50); // in the past by now: next advance
  });
  EXPECT_EQ(fired, 1);
  EXPECT_EQ(w.size(), 1u);
  EXPECT_EQ(advance(w, 101), std::vector<int>{1});
}

// Verifies drain unlinks everything.
TEST(TimerWheelTest, Drain) {
  timer_wheel w{1, 8, 0};
  std::vector<item> items(20);
  for (int i = 0; i < 20; ++i)
    w.schedule(items[i], i * 3);
  int n = 0;
  w.drain([&](wheel_entry&) { ++n; });
  EXPECT_EQ(n, 20);
  EXPECT_EQ(w.size(), 0u);
}
