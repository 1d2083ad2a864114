// Verifies the token bucket under controlled time: a full burst of `rate`, then
// one token per 1/rate seconds, never more than `rate` saved up.
#include "gateway/token_bucket.hpp"

#include <gtest/gtest.h>

using presence::gateway::token_bucket;
using namespace std::chrono_literals;

TEST(TokenBucketTest, BurstThenRefill) {
  auto t0 = token_bucket::clock::time_point{} + 1h;
  token_bucket b{20, t0};
  struct step {
    std::chrono::milliseconds at;
    int takes;
    int granted;
  };
  std::vector<step> steps = {
    {0ms, 25, 20},    // the burst: 20, then refused
    {49ms, 1, 0},     // 0.98 tokens
    {50ms, 1, 1},     // one token per 50 ms
    {100ms, 2, 1},
    {10000ms, 30, 20}, // 10 s idle saves up at most 20
  };
  for (auto& s : steps) {
    int granted = 0;
    for (int i = 0; i < s.takes; ++i)
      granted += b.take(t0 + s.at) ? 1 : 0;
    EXPECT_EQ(granted, s.granted) << "at " << s.at.count() << " ms";
  }
}

TEST(TokenBucketTest, TimeGoingBackwardsGrantsNothingExtra) {
  auto t0 = token_bucket::clock::time_point{} + 1h;
  token_bucket b{1, t0};
  EXPECT_TRUE(b.take(t0));
  EXPECT_FALSE(b.take(t0 - 5s));
  EXPECT_FALSE(b.take(t0 + 999ms));
  EXPECT_TRUE(b.take(t0 + 1s));
}
