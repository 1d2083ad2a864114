// Verifies the census of live actors by kind: an entity counts while it runs
// and stops counting when it ends, and a role counts while it is held.
#include "support/test_node.hpp"

#include "actors/census.hpp"

#include <caf/send.hpp>

using namespace presence::actors;
using presence::testing::test_node;

// Verifies a user counts from its start to its end.
TEST(CensusTest, AUserCountsWhileItRuns) {
  test_node n;
  auto before = census::live(census::kind::user);
  auto u = n.node().router().user("census-u1");
  n.run();
  EXPECT_EQ(census::live(census::kind::user), before + 1);
  caf::anon_send_exit(u, caf::exit_reason::user_shutdown);
  n.run();
  EXPECT_EQ(census::live(census::kind::user), before);
}

// Verifies a role token counts while held and the summary names the kind.
TEST(CensusTest, ARoleCountsWhileHeld) {
  auto before = census::live(census::kind::forwarder);
  {
    census::token t{census::kind::forwarder};
    EXPECT_EQ(census::live(census::kind::forwarder), before + 1);
    EXPECT_NE(census::summary().find("forwarder"), std::string::npos);
  }
  EXPECT_EQ(census::live(census::kind::forwarder), before);
  EXPECT_STREQ(census::name(census::kind::helper), "helper");
  EXPECT_STREQ(census::name(census::kind::user), "user");
}
