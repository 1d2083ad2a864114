// Verifies the per-user intent outcomes (issue 14, part 2) under the test
// coordinator: a sender's and a target's counts by final status, delivered
// share and the times pending -> delivered -> answered, counted once however
// often a view is repeated, and kept across a restart (the user record, read
// from its dormant record) and a hand-off (the user transfer).
#include "support/test_node.hpp"

#include "actors/handoff.hpp"
#include "actors/user_actor.hpp"
#include "storage/store.hpp"

using namespace presence::actors;
using presence::testing::test_node;
namespace storage = presence::storage;

namespace {

constexpr int64_t t0 = test_node::t0;

analytics::user_intent_report outcomes(test_node& n, const std::string& uid) {
  auto r = n.ask<analytics::user_intent_report>(n.node().router().user(uid),
                                                analytics_atom::value, intent_atom::value);
  EXPECT_TRUE(r) << render(r.error());
  return r ? *r : analytics::user_intent_report{};
}

std::pair<intent_view, caf::actor> create(test_node& n, intent_spec spec) {
  auto r = n.node().router().create_intent(std::move(spec));
  EXPECT_TRUE(r) << render(r.error());
  n.run();
  return *r;
}

// The script (ms after t0): bob opens idle; alice -> bob (1) pending; alice ->
// carol (3, ttl 500; carol never comes) pending; 200 bob active: 1 delivered
// (200); 500: 3 expires; 600 bob accepts 1 (400); 700 alice -> bob (2)
// delivered at once; 1000 bob declines 2 (300); 1050 alice -> bob (4)
// delivered at once; 1100 alice cancels 4.
void play(test_node& n) {
  auto bob = n.open("bob", signal_kind::idle);
  auto one = create(n, {"alice", "bob", "", "call", "", 60000});
  create(n, {"alice", "carol", "", "call", "", 500});
  n.advance_to(200);
  ASSERT_TRUE(n.ask<signal_reply>(bob.handle, signal_atom::value, signal_kind::active));
  n.advance_to(600);
  ASSERT_TRUE(n.ask<intent_view>(one.second, accept_atom::value, std::string{"bob"}));
  n.advance_to(700);
  auto two = create(n, {"alice", "bob", "", "call", "", 60000});
  n.advance_to(1000);
  ASSERT_TRUE(n.ask<intent_view>(two.second, decline_atom::value, std::string{"bob"}));
  n.advance_to(1050);
  auto four = create(n, {"alice", "bob", "", "call", "", 60000});
  EXPECT_EQ(n.ask<intent_view>(four.second, caf::get_atom::value)->status,
            intent_status::delivered);
  n.advance_to(1100);
  ASSERT_TRUE(n.ask<intent_view>(four.second, cancel_atom::value, std::string{"alice"}));
}

void expect_alice(const analytics::user_intent_report& r) {
  EXPECT_EQ(r.user_id, "alice");
  EXPECT_EQ(r.outgoing.final, (std::array<int64_t, 4>{1, 1, 1, 1}));
  EXPECT_EQ(r.outgoing.final_delivered, 3) << "all but the expired one";
  EXPECT_EQ(r.outgoing.to_delivered.n, 3);
  EXPECT_EQ(r.outgoing.to_delivered.p50, 0);
  EXPECT_EQ(r.outgoing.to_delivered.p90, 200);
  EXPECT_EQ(r.outgoing.to_answer.n, 2);
  EXPECT_EQ(r.outgoing.to_answer.p50, 300);
  EXPECT_EQ(r.outgoing.to_answer.p90, 400);
  EXPECT_EQ(r.incoming.final, (std::array<int64_t, 4>{}));
  EXPECT_EQ(r.incoming.to_delivered.n, 0);
}

// Verifies every figure of the script for the sender and both targets, and
// that a repeated view counts nothing.
TEST(UserIntentAnalyticsTest, SenderAndTargetFigures) {
  test_node n;
  play(n);
  auto alice = outcomes(n, "alice");
  expect_alice(alice);
  EXPECT_EQ(alice.revision, 7u) << "three deliveries and four ends";
  EXPECT_EQ(alice.now, t0 + 1100);
  auto bob = outcomes(n, "bob");
  EXPECT_EQ(bob.incoming.final, (std::array<int64_t, 4>{1, 1, 0, 1}));
  EXPECT_EQ(bob.incoming.final_delivered, 3);
  EXPECT_EQ(bob.incoming.to_delivered.n, 3);
  EXPECT_EQ(bob.incoming.to_answer.n, 2);
  EXPECT_EQ(bob.incoming.to_answer.p90, 400);
  EXPECT_EQ(bob.outgoing.final, (std::array<int64_t, 4>{}));
  auto carol = outcomes(n, "carol");
  EXPECT_EQ(carol.incoming.final, (std::array<int64_t, 4>{0, 0, 1, 0}));
  EXPECT_EQ(carol.incoming.final_delivered, 0);
  // A final view sent again (a catch-up, a promoted copy) counts nothing.
  auto l = n.ask<intent_list>(n.node().router().user("alice"), list_atom::value,
                              intent_atom::value);
  ASSERT_TRUE(l);
  ASSERT_EQ(l->outgoing.size(), 4u);
  for (auto& v : l->outgoing)
    caf::anon_send(n.node().router().user("alice"), intent_atom::value, v);
  n.run();
  auto again = outcomes(n, "alice");
  EXPECT_EQ(again.revision, alice.revision);
  expect_alice(again);
}

// Verifies the outcomes survive a restart through the store (alice has no
// session: her record comes back dormant, or woken by her restored intents)
// and a hand-off.
TEST(UserIntentAnalyticsTest, SurviveARestartAndAHandOff) {
  auto store = storage::make_memory_store();
  {
    test_node n{test_node::default_settings(), store.get()};
    play(n);
    n.flush();
  }
  test_node m{test_node::default_settings(), store.get(), t0 + 2000};
  m.recover(*store);
  std::optional<storage::user_record> rest;
  if (!m.node().router().user_for_read("alice", &rest)) {
    ASSERT_TRUE(rest) << "alice is dormant";
    EXPECT_EQ(rest->intents.outgoing.final, (std::array<int64_t, 4>{1, 1, 1, 1}));
  }
  // (The finished intents restored for their retention announce themselves
  // to alice again: views of intents she does not know open count nothing.)
  expect_alice(outcomes(m, "alice"));
  auto exported = m.ask<user_transfer>(m.node().router().user("alice"), export_atom::value,
                                       caf::actor{}, uint64_t{0});
  ASSERT_TRUE(exported) << render(exported.error());
  test_node k{test_node::default_settings(), nullptr, t0 + 2100};
  auto promoted = k.sys().spawn(user_actor_promoted, &k.node(), *exported);
  k.run();
  auto r = k.ask<analytics::user_intent_report>(promoted, analytics_atom::value,
                                                intent_atom::value);
  ASSERT_TRUE(r);
  expect_alice(*r);
  caf::anon_send_exit(promoted, caf::exit_reason::user_shutdown);
  k.run();
}

} // namespace
