// Verifies the census of live actors by kind: an entity counts while it runs
// and stops counting when it ends, and a role counts while it is held.
#include "support/test_node.hpp"

#include "actors/census.hpp"
#include "actors/handoff.hpp"
#include "actors/session_actor.hpp"

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

// Verifies an entity that is handed over while its node stops (the router has
// closed; the view that moved it arrived during the stop) ends: it used to live
// on as a forwarder nobody told to exit, and the node's stop waited for it
// forever.
TEST(CensusTest, AnEntityHandedOverDuringTheStopEnds) {
  test_node n;
  auto before = census::live(census::kind::session);
  auto opened = n.open("u-late");
  auto s = opened.handle;
  ASSERT_EQ(census::live(census::kind::session), before + 1);
  // Moved out of the router's table (as a view change does) before the stop.
  n.node().router().forget("session:" + opened.session_id, s.address());
  n.node().router().clear();
  auto t = n.ask<session_transfer>(s, export_atom::value, caf::actor{}, uint64_t{1});
  ASSERT_TRUE(t);
  n.run();
  EXPECT_EQ(census::live(census::kind::session), before);
  EXPECT_EQ(census::live(census::kind::forwarder), 0);
}

// Verifies a passivated entity that someone still holds is told to exit when
// its node stops: one lived on (held, never told), and the stop waited for it.
TEST(CensusTest, APassivatedEntityEndsWithItsNode) {
  test_node n;
  auto before = census::live(census::kind::user);
  auto held = n.node().router().user("census-idle");
  n.run();
  ASSERT_EQ(census::live(census::kind::user), before + 1);
  n.advance(n.node().cfg().node.passivate_after_ms * 2 + 100);
  ASSERT_EQ(n.node().metrics().passivated.load(), 1u);
  ASSERT_EQ(census::live(census::kind::passivated), 1);
  n.node().shutdown();
  n.run();
  EXPECT_EQ(census::live(census::kind::user), before);
  EXPECT_EQ(census::live(census::kind::passivated), 0);
}
