// Verifies the lock-free histogram behind /metrics' duration histograms: a
// sample lands in the first bucket whose bound is >= it (Prometheus' `le`), past
// the last bound in the overflow bucket, negative samples count as 0.
#include "actors/metrics.hpp"

#include <gtest/gtest.h>

using presence::actors::duration_histogram;

TEST(DurationHistogramTest, SamplesLandInTheFirstBucketAtOrAboveThem) {
  duration_histogram h{0, 100, 1000};
  ASSERT_EQ(h.bounds(), 3u);
  for (int64_t ms : {-5, 0, 1, 100, 101, 1000, 1001, 50000})
    h.record(ms);
  EXPECT_EQ(h.bucket(0), 2u) << "-5 and 0";
  EXPECT_EQ(h.bucket(1), 2u) << "1 and 100";
  EXPECT_EQ(h.bucket(2), 2u) << "101 and 1000";
  EXPECT_EQ(h.bucket(3), 2u) << "the overflow: 1001 and 50000";
  EXPECT_EQ(h.count(), 8u);
  EXPECT_EQ(h.sum_ms(), 0 + 0 + 1 + 100 + 101 + 1000 + 1001 + 50000);
}

// Verifies that more bounds than the histogram holds are cut, not written past
// its arrays.
TEST(DurationHistogramTest, ExtraBoundsAreCut) {
  duration_histogram h{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18};
  EXPECT_EQ(h.bounds(), duration_histogram::max_bounds);
  h.record(17);
  EXPECT_EQ(h.bucket(duration_histogram::max_bounds), 1u);
}
