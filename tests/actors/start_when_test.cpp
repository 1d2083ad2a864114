// Verifies the start_when rules (actors/start_when.hpp) by table: validation
// at every bound, the conditions at and just below each threshold, and the
// debounce at its boundary (for_ms - 1, for_ms), when the conditions stop
// holding, and for a rule with no condition.
#include "actors/start_when.hpp"

#include <gtest/gtest.h>

#include <vector>

namespace sw = presence::actors::start_when;
using presence::storage::start_when_rule;
using presence::storage::start_when_state;

namespace {

// Verifies which rules a client may set, and that the problem is named.
TEST(StartWhenTest, CheckAtEveryBound) {
  struct row {
    start_when_rule rule;
    bool ok;
    const char* mentions;
  };
  std::vector<row> rows{
    {{0.7, 0, 3000}, true, ""},
    {{1.0, 0, 0}, true, ""},
    {{0.0001, 0, 0}, true, ""},
    {{0, 1, 0}, true, ""},
    {{0, sw::max_members, sw::max_for_ms}, true, ""},
    {{0.5, 3, 10}, true, ""},
    {{0, 0, 0}, false, "needs"},
    {{0, 0, 500}, false, "needs"},
    {{1.0001, 0, 0}, false, "readiness_at_least"},
    {{-0.1, 0, 0}, false, "readiness_at_least"},
    {{0, -1, 0}, false, "active_visible_members_at_least"},
    {{0, sw::max_members + 1, 0}, false, "active_visible_members_at_least"},
    {{0.5, 0, -1}, false, "for_ms"},
    {{0.5, 0, sw::max_for_ms + 1}, false, "for_ms"},
  };
  for (size_t i = 0; i < rows.size(); ++i) {
    auto problem = sw::check(rows[i].rule);
    EXPECT_EQ(!problem.has_value(), rows[i].ok) << "row " << i;
    if (problem) {
      EXPECT_NE(problem->find(rows[i].mentions), std::string::npos)
        << "row " << i << ": " << *problem;
    }
  }
}

// Verifies each condition at its threshold (inclusive) and just below, and
// that a rule with both needs both.
TEST(StartWhenTest, ConditionsAtTheirThresholds) {
  struct row {
    start_when_rule rule;
    double readiness;
    int64_t active;
    bool met;
  };
  std::vector<row> rows{
    {{0.7, 0, 0}, 0.7, 0, true},
    {{0.7, 0, 0}, 0.6999, 5, false},
    {{0.7, 0, 0}, 1.0, 0, true},
    {{0.9, 0, 0}, 0.6 + 0.3, 0, true}, // 0.8999999999999999: two active members
    {{0.9, 0, 0}, 0.9 - 1e-6, 0, false},
    {{0, 3, 0}, 0.0, 3, true},
    {{0, 3, 0}, 1.0, 2, false},
    {{0, 3, 0}, 0.0, 4, true},
    {{0.6, 2, 0}, 0.6, 2, true},
    {{0.6, 2, 0}, 0.59, 2, false},
    {{0.6, 2, 0}, 0.9, 1, false},
    {{0, 0, 0}, 1.0, 100, false}, // no condition: never
  };
  for (size_t i = 0; i < rows.size(); ++i)
    EXPECT_EQ(sw::met(rows[i].rule, rows[i].readiness, rows[i].active), rows[i].met)
      << "row " << i;
}

// Verifies the debounce step by step: met at 1000 with for_ms 500 holds from
// 1500 on (not at 1499), stamped 1500; stops at once when the conditions stop;
// a new crossing starts the debounce again.
TEST(StartWhenTest, DebounceAtItsBoundary) {
  start_when_state s;
  s.rule = {0.7, 0, 500};
  struct row {
    int64_t now;
    bool met;
    bool changed;
    bool holding;
    int64_t at;
    int64_t wake_at;
  };
  std::vector<row> rows{
    {900, false, false, false, 0, 0},
    {1000, true, false, false, 0, 1500},   // starts the debounce
    {1200, true, false, false, 0, 1500},   // still met: same end
    {1499, true, false, false, 0, 1500},
    {1500, true, true, true, 1500, 0},     // held for for_ms
    {1700, true, false, true, 0, 0},       // no repeat
    {1800, false, true, false, 1800, 0},   // stops at once
    {1900, false, false, false, 0, 0},
    {2000, true, false, false, 0, 2500},   // a new crossing
    {2400, false, false, false, 0, 0},     // dropped inside the debounce: no event
    {2600, true, false, false, 0, 3100},
    {3150, true, true, true, 3100, 0},     // a late wake is stamped with the boundary
  };
  for (size_t i = 0; i < rows.size(); ++i) {
    auto r = sw::step(s, rows[i].met, rows[i].now);
    EXPECT_EQ(r.changed, rows[i].changed) << "row " << i;
    EXPECT_EQ(s.holding, rows[i].holding) << "row " << i;
    EXPECT_EQ(r.at, rows[i].at) << "row " << i;
    EXPECT_EQ(r.wake_at, rows[i].wake_at) << "row " << i;
  }
}

// Verifies for_ms 0 holds at the crossing itself, and that a holding state
// whose rule was cleared stops holding.
TEST(StartWhenTest, NoDebounceAndClearedRule) {
  start_when_state s;
  s.rule = {0, 2, 0};
  auto r = sw::step(s, true, 100);
  EXPECT_TRUE(r.changed);
  EXPECT_TRUE(s.holding);
  EXPECT_EQ(r.at, 100);
  EXPECT_EQ(r.wake_at, 0);
  s.rule = {};
  r = sw::step(s, true, 200);
  EXPECT_TRUE(r.changed) << "no rule never holds";
  EXPECT_FALSE(s.holding);
  EXPECT_EQ(r.at, 200);
  r = sw::step(s, true, 300);
  EXPECT_FALSE(r.changed);
  EXPECT_EQ(s.met_since, 0);
}

} // namespace
