// Verifies the pure analytics rules (actors/analytics.hpp): bucketing, the time
// split of segments across buckets, episode detection, drop-off classification,
// attention decay, nearest-rank percentiles, query checks, the report and the
// caps, one case per boundary.
#include "actors/analytics.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

using namespace presence::actors;
using namespace presence::actors::analytics;
using presence::storage::analytics_bucket;
using presence::storage::analytics_episode;
using presence::storage::analytics_sample;
using presence::storage::room_analytics;

namespace {

constexpr int64_t t0 = 1'700'000'040'000; // a multiple of 60000
constexpr int64_t B = 1000;               // bucket width in these tests

limits small() {
  limits l;
  l.bucket_ms = B;
  l.max_buckets = 5;
  l.drop_off_ms = 1500;
  l.media_decay_window_ms = 3000;
  return l;
}

} // namespace

// Verifies buckets are aligned to the epoch, also for times before it.
TEST(AnalyticsRules, BucketStartAtBoundaries) {
  struct row {
    int64_t t, width, expected;
  };
  for (auto [t, width, expected] : std::vector<row>{{0, 1000, 0},
                                                    {999, 1000, 0},
                                                    {1000, 1000, 1000},
                                                    {1001, 1000, 1000},
                                                    {-1, 1000, -1000},
                                                    {-1000, 1000, -1000},
                                                    {-1001, 1000, -2000},
                                                    {t0 + 59999, 60000, t0}})
    EXPECT_EQ(bucket_start(t, width), expected) << t << " / " << width;
}

// Verifies the bucket of a time is appended when newer, reused when it exists,
// inserted in order when older, the oldest dropped beyond the cap, and the
// oldest kept one taken for a time older than all at the cap.
TEST(AnalyticsRules, BucketAtAppendsReusesInsertsAndCaps) {
  auto l = small();
  room_analytics a;
  bucket_at(a, t0 + 10, l).joins = 1;
  bucket_at(a, t0 + 999, l).joins += 1;
  ASSERT_EQ(a.buckets.size(), 1u);
  EXPECT_EQ(a.buckets[0].joins, 2);
  bucket_at(a, t0 + 1000, l).joins = 7;
  ASSERT_EQ(a.buckets.size(), 2u);
  EXPECT_EQ(a.buckets[1].t, t0 + 1000);
  bucket_at(a, t0 - 5000, l).leaves = 1; // an older clock: in order
  ASSERT_EQ(a.buckets.size(), 3u);
  EXPECT_EQ(a.buckets[0].t, t0 - 5000);
  EXPECT_EQ(a.buckets[0].leaves, 1);
  EXPECT_EQ(a.buckets[2].joins, 7);
  for (int64_t i = 9; i >= 2; --i) // newest first: inserted before each other
    bucket_at(a, t0 + i * 1000, l);
  ASSERT_EQ(a.buckets.size(), 5u);
  for (size_t i = 0; i < 5; ++i)
    EXPECT_EQ(a.buckets[i].t, t0 + 5000 + static_cast<int64_t>(i) * 1000);
  bucket_at(a, t0 + 7500, l).joins = 3;
  EXPECT_EQ(a.buckets[2].joins, 3);
  bucket_at(a, t0, l).leaves = 4; // older than all kept, at the cap
  ASSERT_EQ(a.buckets.size(), 5u);
  EXPECT_EQ(a.buckets[0].t, t0 + 5000);
  EXPECT_EQ(a.buckets[0].leaves, 4);
}

// Verifies a segment is split exactly at bucket boundaries, empty time and
// empty intervals add nothing, and a span beyond the kept buckets fills only
// the last max_buckets of them.
TEST(AnalyticsRules, AccumulateSplitsAtBoundaries) {
  auto l = small();
  room_analytics a;
  accumulate(a, t0 + 200, t0 + 2300, room_phase::ready, 0.5, l);
  ASSERT_EQ(a.buckets.size(), 3u);
  EXPECT_EQ(a.buckets[0].phase_ms[2], 800);
  EXPECT_EQ(a.buckets[1].phase_ms[2], 1000);
  EXPECT_EQ(a.buckets[2].phase_ms[2], 300);
  EXPECT_DOUBLE_EQ(a.buckets[1].readiness_ms, 500.0);
  accumulate(a, t0 + 2300, t0 + 2500, room_phase::empty, 0.0, l);
  accumulate(a, t0 + 2500, t0 + 2500, room_phase::gathering, 0.1, l);
  EXPECT_EQ(a.buckets[2].present_ms(), 300);
  EXPECT_DOUBLE_EQ(a.buckets[2].readiness_min, 0.5) << "0 ms held adds no extreme";
  accumulate(a, t0 + 2500, t0 + 2600, room_phase::gathering, 0.1, l);
  EXPECT_DOUBLE_EQ(a.buckets[2].readiness_min, 0.1);
  EXPECT_DOUBLE_EQ(a.buckets[2].readiness_max, 0.5);
  EXPECT_EQ(a.buckets[2].phase_ms[1], 100);

  room_analytics b;
  accumulate(b, t0, t0 + 100 * B + 1, room_phase::cooling, 0.2, l);
  ASSERT_EQ(b.buckets.size(), 5u);
  EXPECT_EQ(b.buckets.front().t, t0 + 96 * B);
  EXPECT_EQ(b.buckets.front().phase_ms[3], B);
  EXPECT_EQ(b.buckets.back().t, t0 + 100 * B);
  EXPECT_EQ(b.buckets.back().phase_ms[3], 1);
}

// Verifies levels: an unchanged level changes nothing, leaving empty opens a
// segment, a change closes it into the buckets, entering empty closes it.
TEST(AnalyticsRules, NoteLevelOpensClosesAndIgnoresRepeats) {
  auto l = small();
  room_analytics a;
  EXPECT_FALSE(note_level(a, t0, room_phase::empty, 0, l));
  EXPECT_EQ(a.revision, 0u);
  EXPECT_TRUE(note_level(a, t0 + 100, room_phase::gathering, 0.45, l));
  EXPECT_EQ(a.seg_at, t0 + 100);
  EXPECT_TRUE(a.buckets.empty());
  EXPECT_FALSE(note_level(a, t0 + 400, room_phase::gathering, 0.45, l));
  EXPECT_EQ(a.revision, 1u);
  EXPECT_TRUE(note_level(a, t0 + 600, room_phase::ready, 0.9, l));
  ASSERT_EQ(a.buckets.size(), 1u);
  EXPECT_EQ(a.buckets[0].phase_ms[1], 500);
  EXPECT_TRUE(note_level(a, t0 + 1600, room_phase::empty, 0, l));
  EXPECT_EQ(a.seg_at, 0);
  ASSERT_EQ(a.buckets.size(), 2u);
  EXPECT_EQ(a.buckets[0].phase_ms[2], 400);
  EXPECT_EQ(a.buckets[1].phase_ms[2], 600);
  EXPECT_DOUBLE_EQ(a.buckets[0].readiness_min, 0.45);
  EXPECT_DOUBLE_EQ(a.buckets[0].readiness_max, 0.9);
  EXPECT_DOUBLE_EQ(a.buckets[0].readiness_ms, 0.45 * 500 + 0.9 * 400);
  EXPECT_EQ(a.revision, 3u);
}

// Verifies episode detection over phase walks.
TEST(AnalyticsRules, EpisodesFromPhaseChanges) {
  using P = room_phase;
  struct step {
    P prev, next;
    int64_t at, present;
    double readiness;
  };
  struct row {
    std::string name;
    std::vector<step> steps;
    std::vector<analytics_episode> expected;
  };
  std::vector<row> rows{
    {"full walk",
     {{P::empty, P::gathering, 100, 1, 0.45},
      {P::gathering, P::ready, 300, 2, 0.9},
      {P::ready, P::cooling, 900, 2, 0.4},
      {P::cooling, P::ready, 1000, 2, 0.9},
      {P::ready, P::cooling, 1200, 3, 0.3},
      {P::cooling, P::empty, 2000, 0, 0}},
     {{100, 300, 900, 2000, 2, 0.9, 2, 0.4}}},
    {"never ready",
     {{P::empty, P::gathering, 0, 1, 0.3}, {P::gathering, P::empty, 50, 0, 0}},
     {{0 + 0, 0, 0, 50, 0, 0, 0, 0}}},
    {"two episodes, the second open",
     {{P::empty, P::gathering, 10, 1, 0.3},
      {P::gathering, P::empty, 20, 0, 0},
      {P::empty, P::ready, 30, 2, 0.9}},
     {{10, 0, 0, 20, 0, 0, 0, 0}, {30, 30, 0, 0, 2, 0.9, 0, 0}}},
    {"history lost: unknown start",
     {{P::ready, P::cooling, 40, 1, 0.2}},
     {{0, 0, 40, 0, 0, 0, 1, 0.2}}},
    {"no change", {{P::ready, P::ready, 40, 1, 0.2}}, {}},
    {"empty with nothing open", {{P::cooling, P::empty, 40, 0, 0}}, {}},
  };
  for (auto& r : rows) {
    room_analytics a;
    for (auto& s : r.steps)
      note_phase(a, s.prev, s.next, t0 + s.at, s.present, s.readiness);
    ASSERT_EQ(a.episodes.size(), r.expected.size()) << r.name;
    for (size_t i = 0; i < r.expected.size(); ++i) {
      auto& got = a.episodes[i];
      auto& want = r.expected[i];
      auto at = [](int64_t x, bool known) { return known ? t0 + x : 0; };
      EXPECT_EQ(got.started_at, at(want.started_at, r.name != "history lost: unknown start"))
        << r.name;
      EXPECT_EQ(got.ready_at, at(want.ready_at, want.ready_at != 0 || want.present_at_ready != 0))
        << r.name;
      EXPECT_EQ(got.cooling_at, at(want.cooling_at, want.cooling_at != 0)) << r.name;
      EXPECT_EQ(got.ended_at, at(want.ended_at, want.ended_at != 0)) << r.name;
      EXPECT_EQ(got.present_at_ready, want.present_at_ready) << r.name;
      EXPECT_DOUBLE_EQ(got.readiness_at_ready, want.readiness_at_ready) << r.name;
      EXPECT_EQ(got.present_at_cooling, want.present_at_cooling) << r.name;
      EXPECT_DOUBLE_EQ(got.readiness_at_cooling, want.readiness_at_cooling) << r.name;
    }
  }
}

// Verifies that no more than max_episodes episodes are kept, the oldest going.
TEST(AnalyticsRules, EpisodesAreCapped) {
  room_analytics a;
  for (int64_t i = 0; i < static_cast<int64_t>(max_episodes) + 3; ++i) {
    note_phase(a, room_phase::empty, room_phase::gathering, t0 + 10 * i, 1, 0.3);
    note_phase(a, room_phase::gathering, room_phase::empty, t0 + 10 * i + 5, 0, 0);
  }
  ASSERT_EQ(a.episodes.size(), max_episodes);
  EXPECT_EQ(a.episodes.front().started_at, t0 + 30);
}

// Verifies the drop-off classes at the drop_off_ms boundary.
TEST(AnalyticsRules, DropOffClassification) {
  struct row {
    int64_t joined, left;
    bool saw_ready, before_ready, quickly;
  };
  for (auto r : std::vector<row>{{t0, t0 + 1499, false, true, true},
                                 {t0, t0 + 1500, false, true, true},
                                 {t0, t0 + 1501, false, true, false},
                                 {t0, t0 + 1500, true, false, true},
                                 {t0, t0 + 1501, true, false, false},
                                 {0, t0, false, false, false}}) {
    auto d = classify_leave(r.joined, r.left, r.saw_ready, 1500);
    EXPECT_EQ(d.before_ready, r.before_ready) << r.left - r.joined << " " << r.saw_ready;
    EXPECT_EQ(d.quickly, r.quickly) << r.left - r.joined << " " << r.saw_ready;
  }
}

// Verifies leaves: counted per bucket, classified, their stays sampled (not for
// an unknown join time), and stays capped at max_samples.
TEST(AnalyticsRules, LeavesAndStays) {
  auto l = small();
  room_analytics a;
  note_join(a, t0 + 10, l);
  note_leave(a, t0 + 900, t0 + 10, false, l);
  note_leave(a, t0 + 950, t0 - 5000, true, l);
  note_leave(a, t0 + 960, 0, false, l);
  ASSERT_EQ(a.buckets.size(), 1u);
  auto& b = a.buckets[0];
  EXPECT_EQ(b.joins, 1);
  EXPECT_EQ(b.leaves, 3);
  EXPECT_EQ(b.left_before_ready, 1);
  EXPECT_EQ(b.left_quickly, 1);
  EXPECT_EQ(b.left_before_ready_quickly, 1);
  ASSERT_EQ(a.stays.size(), 2u);
  EXPECT_EQ(a.stays[0].ms, 890);
  EXPECT_EQ(a.stays[1].ms, 5950);
  for (size_t i = 0; i < max_samples; ++i)
    note_leave(a, t0 + 1000, t0 + 999, true, l);
  EXPECT_EQ(a.stays.size(), max_samples);
  EXPECT_EQ(a.stays.front().ms, 1);
}

// Verifies which transitions are attention decay, and the after-media window
// at its boundary.
TEST(AnalyticsRules, AttentionDecay) {
  auto l = small(); // media window 3000
  using S = state;
  struct row {
    std::string name;
    S prev, next;
    int64_t last_active, now;
    bool media;
    int64_t media_off;
    std::optional<analytics_sample> expected;
  };
  using K = analytics_sample;
  std::vector<row> rows{
    {"active->idle", S::active, S::idle, t0, t0 + 1000, false, 0,
     analytics_sample{t0 + 1000, 1000, K::to_idle}},
    {"active->away", S::active, S::away, t0, t0 + 200, false, 0,
     analytics_sample{t0 + 200, 200, K::to_away}},
    {"idle->away", S::idle, S::away, t0, t0 + 2000, false, 0,
     analytics_sample{t0 + 2000, 2000, K::to_away}},
    {"away->stale", S::away, S::stale, t0, t0 + 5000, false, 0, std::nullopt},
    {"idle->active", S::idle, S::active, t0, t0 + 5000, false, 0, std::nullopt},
    {"never active", S::active, S::idle, 0, t0 + 5000, false, 0, std::nullopt},
    {"media off at the window", S::active, S::idle, t0, t0 + 4000, false, t0 + 1000,
     analytics_sample{t0 + 4000, 4000, K::to_idle_after_media}},
    {"media off past the window", S::active, S::idle, t0, t0 + 4001, false, t0 + 1000,
     analytics_sample{t0 + 4001, 4001, K::to_idle}},
    {"media on again", S::idle, S::away, t0, t0 + 2000, true, t0 + 1000,
     analytics_sample{t0 + 2000, 2000, K::to_away}},
    {"away after media", S::idle, S::away, t0, t0 + 2000, false, t0 + 1000,
     analytics_sample{t0 + 2000, 2000, K::to_away_after_media}},
  };
  for (auto& r : rows) {
    auto got = attention_decay(r.prev, r.next, r.last_active, r.now, r.media, r.media_off, l);
    ASSERT_EQ(got.has_value(), r.expected.has_value()) << r.name;
    if (got) {
      EXPECT_EQ(got->t, r.expected->t) << r.name;
      EXPECT_EQ(got->ms, r.expected->ms) << r.name;
      EXPECT_EQ(got->kind, r.expected->kind) << r.name;
    }
  }
}

// Verifies nearest-rank percentiles at the rank boundaries.
TEST(AnalyticsRules, NearestRankPercentiles) {
  struct row {
    std::vector<int64_t> xs;
    int64_t n, p50, p90;
  };
  std::vector<int64_t> ten{10, 20, 30, 40, 50, 60, 70, 80, 90, 100};
  auto eleven = ten;
  eleven.push_back(110);
  for (auto& r : std::vector<row>{{{}, 0, 0, 0},
                                  {{7}, 1, 7, 7},
                                  {{9, 3}, 2, 3, 9},
                                  {{5, 1, 3}, 3, 3, 5},
                                  {ten, 10, 50, 90},
                                  {eleven, 11, 60, 100}}) {
    auto p = percentiles_of(r.xs);
    EXPECT_EQ(p.n, r.n);
    EXPECT_EQ(p.p50, r.p50) << r.n;
    EXPECT_EQ(p.p90, r.p90) << r.n;
  }
  std::vector<int64_t> xs{4, 1, 3, 2};
  EXPECT_EQ(percentile(xs, 100), 4);
  EXPECT_EQ(percentile(xs, 1), 1);
  EXPECT_EQ(percentile(xs, 25), 1);
  EXPECT_EQ(percentile(xs, 26), 2);
}

// Verifies query checks at their boundaries.
TEST(AnalyticsRules, CheckQuery) {
  auto l = small(); // 1000 ms x 5
  EXPECT_FALSE(check_query(0, 1000, l));
  EXPECT_FALSE(check_query(t0, 5000, l));
  EXPECT_TRUE(check_query(-1, 1000, l));
  EXPECT_TRUE(check_query(0, 0, l));
  EXPECT_TRUE(check_query(0, -1000, l));
  EXPECT_TRUE(check_query(0, 1500, l));
  EXPECT_TRUE(check_query(0, 6000, l));
  EXPECT_EQ(*check_query(0, 999, l), "bucket_ms must be a positive multiple of 1000");
}

// Verifies the report: base buckets merged into wider ones (min of mins, max of
// maxes, time-weighted mean), the open segment counted up to now, the current
// bucket's span up to now, empty time as the rest, per-bucket and overall
// decay percentiles, drop-off totals, `since` and the episodes kept.
TEST(AnalyticsRules, SummarizeMergesAndCountsTheOpenSegment) {
  auto l = small();
  l.max_buckets = 10;
  room_analytics a;
  // t0+0.5 s: gathering 0.45; +1.5 s: ready 0.9; +3.2 s: cooling 0.4 (open).
  note_phase(a, room_phase::empty, room_phase::gathering, t0 + 500, 1, 0.45);
  note_level(a, t0 + 500, room_phase::gathering, 0.45, l);
  note_join(a, t0 + 500, l);
  note_join(a, t0 + 1500, l);
  note_level(a, t0 + 1500, room_phase::ready, 0.9, l);
  note_phase(a, room_phase::gathering, room_phase::ready, t0 + 1500, 2, 0.9);
  note_decay(a, analytics_sample{t0 + 2100, 1000, analytics_sample::to_idle}, l);
  note_decay(a, analytics_sample{t0 + 3100, 3000, analytics_sample::to_idle_after_media}, l);
  note_decay(a, analytics_sample{t0 + 3150, 2000, analytics_sample::to_away}, l);
  note_leave(a, t0 + 3200, t0 + 1500, true, l);
  note_level(a, t0 + 3200, room_phase::cooling, 0.4, l);
  note_phase(a, room_phase::ready, room_phase::cooling, t0 + 3200, 1, 0.4);

  auto r = summarize(a, t0 + 3700, 0, 2000, l);
  EXPECT_EQ(r.bucket_ms, 2000);
  EXPECT_EQ(r.since, 0);
  EXPECT_EQ(r.kept_from, t0);
  EXPECT_EQ(r.phase, room_phase::cooling);
  EXPECT_DOUBLE_EQ(r.readiness, 0.4);
  ASSERT_EQ(r.buckets.size(), 2u);
  auto& x = r.buckets[0]; // [t0, t0+2000)
  EXPECT_EQ(x.t, t0);
  EXPECT_EQ(x.span_ms, 2000);
  EXPECT_EQ(x.present_ms, 1500);
  EXPECT_EQ(x.phase_ms, (std::array<int64_t, 4>{500, 1000, 500, 0}));
  EXPECT_DOUBLE_EQ(x.readiness_min, 0.45);
  EXPECT_DOUBLE_EQ(x.readiness_max, 0.9);
  EXPECT_DOUBLE_EQ(x.readiness_mean, (0.45 * 1000 + 0.9 * 500) / 1500);
  EXPECT_EQ(x.joins, 2);
  EXPECT_EQ(x.to_idle.n, 0);
  auto& y = r.buckets[1]; // [t0+2000, t0+4000), now at t0+3700
  EXPECT_EQ(y.span_ms, 1700);
  EXPECT_EQ(y.phase_ms, (std::array<int64_t, 4>{0, 0, 1200, 500}));
  EXPECT_DOUBLE_EQ(y.readiness_min, 0.4);
  EXPECT_DOUBLE_EQ(y.readiness_max, 0.9);
  EXPECT_DOUBLE_EQ(y.readiness_mean, (0.9 * 1200 + 0.4 * 500) / 1700);
  EXPECT_EQ(y.leaves, 1);
  EXPECT_EQ(y.to_idle.n, 2);
  EXPECT_EQ(y.to_idle.p50, 1000);
  EXPECT_EQ(y.to_idle.p90, 3000);
  EXPECT_EQ(y.to_away.n, 1);
  EXPECT_EQ(y.to_away.p50, 2000);
  EXPECT_EQ(r.to_idle.n, 2);
  EXPECT_EQ(r.to_idle_after_media.n, 1);
  EXPECT_EQ(r.to_idle_after_media.p50, 3000);
  EXPECT_EQ(r.to_away_after_media.n, 0);
  EXPECT_EQ(r.stay.n, 1);
  EXPECT_EQ(r.stay.p50, 1700);
  EXPECT_EQ(r.leaves, 1);
  EXPECT_EQ(r.left_before_ready, 0);
  EXPECT_EQ(r.left_quickly, 0);
  ASSERT_EQ(r.episodes.size(), 1u);
  EXPECT_EQ(r.episodes[0].ready_at - r.episodes[0].started_at, 1000);
  EXPECT_EQ(r.episodes[0].present_at_cooling, 1);

  // since in the second 2 s bucket: only it, and only its samples.
  auto s = summarize(a, t0 + 3700, t0 + 2500, 2000, l);
  EXPECT_EQ(s.since, t0 + 2000);
  ASSERT_EQ(s.buckets.size(), 1u);
  EXPECT_EQ(s.buckets[0].t, t0 + 2000);
  EXPECT_EQ(s.stay.n, 1);
  EXPECT_EQ(s.to_idle.n, 2);
  // The state itself is unchanged by a report.
  auto again = summarize(a, t0 + 3700, 0, 2000, l);
  EXPECT_EQ(again.buckets[1].phase_ms, y.phase_ms);
}

// Verifies that a report leaves out episodes that ended before since, and
// samples older than the oldest kept bucket.
TEST(AnalyticsRules, SummarizeSinceAndKeptFrom) {
  auto l = small(); // 5 buckets kept
  room_analytics a;
  note_phase(a, room_phase::empty, room_phase::gathering, t0, 1, 0.3);
  note_leave(a, t0 + 100, t0, false, l);
  note_phase(a, room_phase::gathering, room_phase::empty, t0 + 100, 0, 0);
  note_phase(a, room_phase::empty, room_phase::gathering, t0 + 8000, 1, 0.3);
  note_join(a, t0 + 8000, l);
  for (int64_t i = 4; i <= 8; ++i)
    bucket_at(a, t0 + i * B, l);
  auto r = summarize(a, t0 + 8500, 0, B, l);
  EXPECT_EQ(r.kept_from, t0 + 4000);
  EXPECT_EQ(r.stay.n, 0) << "its bucket rolled off";
  EXPECT_EQ(r.leaves, 0);
  ASSERT_EQ(r.episodes.size(), 2u);
  auto s = summarize(a, t0 + 8500, t0 + 1000, B, l);
  ASSERT_EQ(s.episodes.size(), 1u);
  EXPECT_EQ(s.episodes[0].started_at, t0 + 8000);
}

// Verifies intent outcomes: counts per final status and how many had been
// delivered, created -> delivered and delivered -> answer times, an outcome out
// of range ignored, and `since`.
TEST(AnalyticsRules, IntentOutcomes) {
  auto l = small();
  l.max_buckets = 10;
  room_analytics a;
  note_intent_delivered(a, t0 + 500, t0 + 100, t0 + 500, l);  // 400
  note_intent_final(a, t0 + 900, 0, t0 + 500, l);             // accepted after 400
  note_intent_delivered(a, t0 + 1200, t0 + 1000, t0 + 1200, l); // 200
  note_intent_final(a, t0 + 1900, 1, t0 + 1200, l);           // declined after 700
  note_intent_final(a, t0 + 1950, 2, 0, l);                   // expired, never delivered
  note_intent_final(a, t0 + 1960, 3, t0 + 1950, l);           // cancelled once delivered
  auto revision = a.revision;
  note_intent_final(a, t0 + 1970, 4, 0, l);
  EXPECT_EQ(a.revision, revision) << "no such outcome";
  auto r = summarize(a, t0 + 2000, 0, B, l);
  EXPECT_EQ(r.intents.final, (std::array<int64_t, 4>{1, 1, 1, 1}));
  EXPECT_EQ(r.intents.final_delivered, 3);
  EXPECT_EQ(r.intents.to_delivered.n, 2);
  EXPECT_EQ(r.intents.to_delivered.p50, 200);
  EXPECT_EQ(r.intents.to_delivered.p90, 400);
  EXPECT_EQ(r.intents.to_answer.n, 2);
  EXPECT_EQ(r.intents.to_answer.p50, 400);
  EXPECT_EQ(r.intents.to_answer.p90, 700);
  EXPECT_EQ(r.stay.n, 0) << "intent times are not stays";
  auto s = summarize(a, t0 + 2000, t0 + 1000, B, l);
  EXPECT_EQ(s.intents.final, (std::array<int64_t, 4>{0, 1, 1, 1}));
  EXPECT_EQ(s.intents.final_delivered, 2);
  EXPECT_EQ(s.intents.to_delivered.n, 1);
  EXPECT_EQ(s.intents.to_answer.p50, 700);
}

// Verifies one direction of a user's intent outcomes by table: a delivery is
// sampled when first seen (unknown, or known pending), not when the user knew
// it delivered already; a final status counts only for an intent known open;
// an answer after a delivery samples delivered -> now; expired and cancelled
// ones count without an answer time.
TEST(UserIntentOutcomesTest, NoteByTable) {
  struct row {
    bool known_open, was_pending, delivered_now;
    int outcome;
    int64_t created_at, delivered_at, now;
    bool changed;
    std::array<int64_t, 4> final;
    int64_t final_delivered;
    size_t times;
  };
  // Cumulative over one direction.
  std::vector<row> rows{
    {true, true, false, -1, 100, 0, 150, false, {0, 0, 0, 0}, 0, 0},  // pending again
    {true, true, true, -1, 100, 300, 300, true, {0, 0, 0, 0}, 0, 1},   // delivered 200
    {true, false, true, -1, 100, 300, 350, false, {0, 0, 0, 0}, 0, 1}, // known delivered
    {false, false, true, -1, 400, 400, 400, true, {0, 0, 0, 0}, 0, 2}, // unknown: sampled
    {true, false, false, 0, 100, 300, 700, true, {1, 0, 0, 0}, 1, 3},  // accepted after 400
    {true, false, false, 1, 400, 400, 1100, true, {1, 1, 0, 0}, 2, 4}, // declined after 700
    {true, true, false, 2, 500, 0, 1200, true, {1, 1, 1, 0}, 2, 4},    // expired, never delivered
    {true, false, false, 3, 600, 650, 1300, true, {1, 1, 1, 1}, 3, 4}, // cancelled once delivered
    {false, false, false, 0, 700, 800, 1400, false, {1, 1, 1, 1}, 3, 4}, // not known open
    {true, true, false, 4, 700, 0, 1500, false, {1, 1, 1, 1}, 3, 4},   // no such outcome
  };
  presence::storage::intent_outcomes d;
  for (size_t i = 0; i < rows.size(); ++i) {
    auto& x = rows[i];
    EXPECT_EQ(note_user_intent(d, t0 + x.now, x.known_open, x.was_pending, x.delivered_now,
                               x.outcome, t0 + x.created_at,
                               x.delivered_at == 0 ? 0 : t0 + x.delivered_at),
              x.changed)
      << "row " << i;
    EXPECT_EQ(d.final, x.final) << "row " << i;
    EXPECT_EQ(d.final_delivered, x.final_delivered) << "row " << i;
    EXPECT_EQ(d.times.size(), x.times) << "row " << i;
  }
  auto r = intent_report_of(d.final, d.final_delivered, d.times, 0);
  EXPECT_EQ(r.to_delivered.n, 2);
  EXPECT_EQ(r.to_delivered.p50, 0);
  EXPECT_EQ(r.to_delivered.p90, 200);
  EXPECT_EQ(r.to_answer.n, 2);
  EXPECT_EQ(r.to_answer.p50, 400);
  EXPECT_EQ(r.to_answer.p90, 700);
  auto later = intent_report_of(d.final, d.final_delivered, d.times, t0 + 700);
  EXPECT_EQ(later.to_delivered.n, 0) << "samples before `from` are left out";
  EXPECT_EQ(later.to_answer.n, 2);
}

// Verifies a user keeps at most max_user_intent_samples durations per
// direction, the newest.
TEST(UserIntentOutcomesTest, SamplesAreBounded) {
  presence::storage::intent_outcomes d;
  auto n = static_cast<int64_t>(max_user_intent_samples) + 10;
  for (int64_t i = 0; i < n; ++i)
    note_user_intent(d, t0 + i, false, false, true, -1, t0, t0 + i);
  ASSERT_EQ(d.times.size(), max_user_intent_samples);
  EXPECT_EQ(d.times.front().ms, 10);
  EXPECT_EQ(d.times.back().ms, n - 1);
}
