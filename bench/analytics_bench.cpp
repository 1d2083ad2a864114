// Room analytics figures (issue 14), printed (asserts nothing):
//   1. bytes per room for a day of one-minute buckets at every cap, in memory
//      and encoded in the room's record;
//   2. the cost of the analytics rules per join/leave (what the room actor adds
//      to a membership change), and per member state change;
//   3. the cost of the durable write that follows a change (the room record
//      copied and encoded with its analytics), at a day of buckets and at one;
//   4. the cost of a report (GET /v1/rooms/{rid}/analytics) over a full day.
// A heartbeat that changes no state costs nothing here: it never reaches the
// room (tests/actors/room_analytics_test.cpp, QuietHeartbeatTouchesNoAnalytics).
//
//   analytics_bench [--iterations N]
#include "actors/analytics.hpp"
#include "storage/records.hpp"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

using namespace presence;
using namespace presence::actors;
using namespace std::chrono;

namespace {

constexpr int64_t t0 = 1'700'000'040'000;
constexpr int64_t minute = 60000;

// A room with a day of one-minute buckets and every cap full.
storage::room_analytics full_day(const analytics::limits& l) {
  storage::room_analytics a;
  double r = 0.3;
  for (int64_t m = 0; m < 1440; ++m) {
    auto t = t0 + m * minute;
    analytics::note_join(a, t, l);
    analytics::note_level(a, t + 1000, room_phase::ready, r, l);
    r = r > 0.8 ? 0.3 : r + 0.05;
    analytics::note_leave(a, t + 30000, t - 5 * minute, m % 2 == 0, l);
    analytics::note_decay(a, storage::analytics_sample{t + 40000, 15000, 1}, l);
    if (m % 20 == 0) {
      analytics::note_phase(a, room_phase::empty, room_phase::gathering, t, 1, 0.45);
      analytics::note_phase(a, room_phase::gathering, room_phase::ready, t + 1000, 2, 0.9);
      analytics::note_phase(a, room_phase::ready, room_phase::empty, t + 50000, 0, 0);
    }
  }
  return a;
}

size_t memory_bytes(const storage::room_analytics& a) {
  return sizeof(a) + a.buckets.capacity() * sizeof(storage::analytics_bucket)
         + (a.stays.capacity() + a.decays.capacity()) * sizeof(storage::analytics_sample)
         + a.episodes.capacity() * sizeof(storage::analytics_episode);
}

template <class F>
double ns_per(size_t n, F f) {
  auto start = steady_clock::now();
  for (size_t i = 0; i < n; ++i)
    f(i);
  return static_cast<double>(duration_cast<nanoseconds>(steady_clock::now() - start).count())
         / static_cast<double>(n);
}

} // namespace

int main(int argc, char** argv) {
  size_t iterations = 200000;
  for (int i = 1; i + 1 < argc; ++i)
    if (std::strcmp(argv[i], "--iterations") == 0)
      iterations = static_cast<size_t>(std::strtoull(argv[i + 1], nullptr, 10));
  analytics::limits l; // the defaults: 60 s buckets, 1440 of them, 30 s drop-off
  auto day = full_day(l);
  storage::room_record rec{"room-1", false, 2, 0.5, t0, day, {}};
  auto encoded = storage::encode_record(storage::record{rec});
  std::printf("1. a day of one-minute buckets (%zu buckets, %zu stays, %zu decays, "
              "%zu episodes):\n   %zu bytes in memory, %zu bytes encoded in the room record\n",
              day.buckets.size(), day.stays.size(), day.decays.size(), day.episodes.size(),
              memory_bytes(day), encoded.size());

  // 2. The rules per join and leave, on a room that already holds a day.
  auto work = day;
  auto now = t0 + 1440 * minute;
  volatile uint64_t sink = 0;
  auto join_leave = ns_per(iterations, [&](size_t i) {
    auto t = now + static_cast<int64_t>(i) * 10;
    analytics::note_join(work, t, l);
    analytics::note_level(work, t, room_phase::ready, (i % 2) != 0 ? 0.9 : 0.7, l);
    analytics::note_leave(work, t + 5, t - 1000, true, l);
    analytics::note_level(work, t + 5, room_phase::ready, (i % 2) != 0 ? 0.7 : 0.9, l);
    sink = sink + work.revision;
  });
  std::printf("2. rules per join + leave (with two level changes): %.0f ns\n", join_leave);
  auto state_change = ns_per(iterations, [&](size_t i) {
    auto t = now + static_cast<int64_t>(iterations + i) * 10;
    if (auto d = analytics::attention_decay(state::active, state::idle, t - 15000, t, false,
                                            0, l))
      analytics::note_decay(work, *d, l);
    analytics::note_level(work, t, room_phase::ready, (i % 2) != 0 ? 0.8 : 0.6, l);
    sink = sink + work.revision;
  });
  std::printf("   rules per member state change (decay sample + level): %.0f ns\n",
              state_change);

  // 3. The durable write after a change: copy and encode the record.
  auto write_n = std::max<size_t>(1, iterations / 200);
  auto full_write = ns_per(write_n, [&](size_t) {
    storage::room_record r{"room-1", false, 2, 0.5, t0, day, {}};
    sink = sink + storage::encode_record(storage::record{std::move(r)}).size();
  });
  storage::room_analytics small;
  analytics::note_join(small, t0, l);
  analytics::note_level(small, t0, room_phase::gathering, 0.45, l);
  auto small_write = ns_per(iterations / 10, [&](size_t) {
    storage::room_record r{"room-1", false, 2, 0.5, t0, small, {}};
    sink = sink + storage::encode_record(storage::record{std::move(r)}).size();
  });
  std::printf("3. room record copy + encode per change: %.1f us with a day of buckets, "
              "%.2f us with one bucket\n",
              full_write / 1000, small_write / 1000);

  // 4. A report over the whole day, in 1-minute and 1-hour buckets.
  auto report_minutes = ns_per(std::max<size_t>(1, iterations / 1000), [&](size_t) {
    sink = sink + analytics::summarize(day, now, 0, minute, l).buckets.size();
  });
  auto report_hours = ns_per(std::max<size_t>(1, iterations / 1000), [&](size_t) {
    sink = sink + analytics::summarize(day, now, 0, 60 * minute, l).buckets.size();
  });
  std::printf("4. a report over a day: %.0f us in minutes, %.0f us in hours\n",
              report_minutes / 1000, report_hours / 1000);
  return sink == 42 ? 1 : 0;
}
