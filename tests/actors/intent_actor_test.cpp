// Verifies intents through every status: pending until the target is ready,
// delivered to the target's sockets with the sender told, accepted, declined,
// cancelled, expired; and who may do what.
#include "support/test_node.hpp"

#include "actors/handoff.hpp"
#include "actors/intent_actor.hpp"
#include "support/fake_placement.hpp"

using namespace presence::actors;
using presence::testing::recorded;
using presence::testing::test_node;

namespace {

class IntentActorTest : public ::testing::Test {
protected:
  test_node n;

  caf::actor user(const std::string& id) { return n.node().router().user(id); }

  void inbox(const std::string& uid, recorded& log) {
    ASSERT_FALSE(n.tell(user(uid), inbox_atom::value, n.recorder(log)));
  }

  std::pair<intent_view, caf::actor> create(intent_spec spec) {
    auto r = n.node().router().create_intent(std::move(spec));
    EXPECT_TRUE(r) << render(r.error());
    n.run();
    return *r;
  }

  intent_view get(const caf::actor& a) {
    auto v = n.ask<intent_view>(a, caf::get_atom::value);
    EXPECT_TRUE(v);
    return v ? *v : intent_view{};
  }

  caf::expected<intent_view> act(const caf::actor& a, caf::atom_value op,
                                 const std::string& who) {
    if (op == accept_atom::value)
      return n.ask<intent_view>(a, accept_atom::value, who);
    if (op == decline_atom::value)
      return n.ask<intent_view>(a, decline_atom::value, who);
    return n.ask<intent_view>(a, cancel_atom::value, who);
  }

  static std::vector<intent_status> statuses(const recorded& log) {
    std::vector<intent_status> out;
    for (auto& e : log.intents)
      out.push_back(e.intent.status);
    return out;
  }
};

} // namespace

// Verifies an intent waits while the target is idle, is delivered when it becomes
// active (both sides told), and is accepted by the target.
TEST_F(IntentActorTest, PendingDeliveredAccepted) {
  recorded alice, bob;
  inbox("alice", alice);
  inbox("bob", bob);
  auto bob_tab = n.open("bob", signal_kind::idle);
  n.advance(10);
  auto [v, h] = create({"alice", "bob", "", "call", "lunch?", 5000});
  EXPECT_EQ(v.status, intent_status::pending);
  EXPECT_EQ(v.expires_at, test_node::t0 + 10 + 5000);
  n.advance(100);
  EXPECT_EQ(get(h).status, intent_status::pending);
  ASSERT_TRUE(n.ask<signal_reply>(bob_tab.handle, signal_atom::value,
                                  signal_kind::active));
  auto d = get(h);
  EXPECT_EQ(d.status, intent_status::delivered);
  EXPECT_EQ(d.delivered_at, test_node::t0 + 110);
  auto r = act(h, accept_atom::value, "bob");
  ASSERT_TRUE(r) << render(r.error());
  EXPECT_EQ(r->status, intent_status::accepted);
  auto want = std::vector<intent_status>{intent_status::pending,
                                         intent_status::delivered,
                                         intent_status::accepted};
  EXPECT_EQ(statuses(alice), want) << "the sender is told of each change";
  EXPECT_EQ(statuses(bob), want);
  EXPECT_EQ(bob.intents[0].intent.note, "lunch?");
}

// Verifies an intent to a user who is already active is delivered at once.
TEST_F(IntentActorTest, DeliveredAtOnceWhenTargetActive) {
  n.open("bob");
  auto [v, h] = create({"alice", "bob", "", "call", "", 0});
  EXPECT_EQ(get(h).status, intent_status::delivered);
  EXPECT_EQ(get(h).expires_at, v.created_at + default_intent_ttl_ms);
}

// Verifies decline by the target.
TEST_F(IntentActorTest, Declined) {
  n.open("bob");
  auto [v, h] = create({"alice", "bob", "", "call", "", 0});
  auto r = act(h, decline_atom::value, "bob");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, intent_status::declined);
}

// Verifies only the sender may cancel, only the target may accept, and nothing
// changes a finished intent.
TEST_F(IntentActorTest, WhoMayDoWhat) {
  auto [v, h] = create({"alice", "bob", "", "call", "", 0});
  auto r = act(h, cancel_atom::value, "bob");
  ASSERT_FALSE(r);
  EXPECT_EQ(code_of(r.error()), errc::forbidden);
  r = act(h, accept_atom::value, "alice");
  ASSERT_FALSE(r);
  EXPECT_EQ(code_of(r.error()), errc::forbidden);
  r = act(h, accept_atom::value, "mallory");
  ASSERT_FALSE(r);
  EXPECT_EQ(code_of(r.error()), errc::forbidden);
  r = act(h, cancel_atom::value, "alice");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, intent_status::cancelled);
  r = act(h, accept_atom::value, "bob");
  ASSERT_FALSE(r);
  EXPECT_EQ(code_of(r.error()), errc::conflict);
}

// Verifies an intent whose target never becomes ready expires at its ttl, and is
// forgotten after the retention time.
TEST_F(IntentActorTest, ExpiresAtTtl) {
  recorded alice;
  inbox("alice", alice);
  auto [v, h] = create({"alice", "bob", "", "call", "", 3000});
  n.advance_to(2999);
  EXPECT_EQ(get(h).status, intent_status::pending);
  n.advance_to(3000);
  EXPECT_EQ(get(h).status, intent_status::expired);
  EXPECT_EQ(statuses(alice).back(), intent_status::expired);
  EXPECT_TRUE(n.node().router().intent(v.intent_id));
  n.advance_to(3000 + finished_intent_retention_ms);
  EXPECT_FALSE(n.node().router().intent(v.intent_id));
}

// Verifies an intent into a room waits for the room to be ready, raises its
// readiness while open, and is pushed to the present members.
TEST_F(IntentActorTest, IntoARoom) {
  recorded b_inbox;
  inbox("b", b_inbox);
  auto b = n.open("b");
  ASSERT_TRUE(n.ask<room_view>(b.handle, join_atom::value, std::string{"r"}, true));
  auto [v, h] = create({"a", "", "r", "join", "", 0});
  EXPECT_EQ(get(h).status, intent_status::pending);
  auto rv = n.ask<room_view>(n.node().router().room("r"), caf::get_atom::value,
                             room_query{});
  ASSERT_TRUE(rv);
  EXPECT_EQ(rv->pending_intents, 1);
  EXPECT_NEAR(rv->readiness, 0.5 * (0.9 + 0.1), 1e-9);
  auto c = n.open("c");
  ASSERT_TRUE(n.ask<room_view>(c.handle, join_atom::value, std::string{"r"}, true));
  EXPECT_EQ(get(h).status, intent_status::delivered);
  ASSERT_FALSE(b_inbox.intents.empty());
  EXPECT_EQ(b_inbox.intents.back().intent.status, intent_status::delivered);
  auto r = act(h, accept_atom::value, "c");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, intent_status::accepted);
}

// Verifies a user's intent lists: incoming and outgoing, newest first.
TEST_F(IntentActorTest, Lists) {
  create({"alice", "bob", "", "call", "", 0});
  n.advance(5);
  create({"carol", "alice", "", "call", "", 0});
  auto l = n.ask<intent_list>(user("alice"), list_atom::value, intent_atom::value);
  ASSERT_TRUE(l);
  ASSERT_EQ(l->outgoing.size(), 1u);
  ASSERT_EQ(l->incoming.size(), 1u);
  EXPECT_EQ(l->outgoing[0].to_user, "bob");
  EXPECT_EQ(l->incoming[0].from_user, "carol");
}

// Verifies bad specs are refused.
TEST_F(IntentActorTest, BadSpecs) {
  auto& r = n.node().router();
  EXPECT_FALSE(r.create_intent({"a", "", "", "call", "", 0}));
  EXPECT_FALSE(r.create_intent({"a", "b", "r", "call", "", 0}));
  EXPECT_FALSE(r.create_intent({"a", "a", "", "call", "", 0}));
  EXPECT_FALSE(r.create_intent({"a", "b c", "", "call", "", 0}));
  EXPECT_FALSE(r.create_intent({"a", "b", "", "call", "", -1}));
  EXPECT_FALSE(r.create_intent({"a", "b", "", "call", "", max_intent_ttl_ms + 1}));
}

// Verifies an intent never goes back (cluster trust: a replica promoted after
// its owner died may lag behind what the owner published). A copy that starts
// from an older stage catches up with what its sender and target were told,
// and the users pass no older or repeated stage on to their sockets.
TEST_F(IntentActorTest, PromotedCopyBehindTheUsersCatchesUpAndNeverGoesBack) {
  recorded alice, bob;
  inbox("alice", alice);
  inbox("bob", bob);
  auto bob_tab = n.open("bob", signal_kind::active);
  auto [v, h] = create({"alice", "bob", "", "call", "", 60000});
  ASSERT_EQ(get(h).status, intent_status::delivered);
  auto stale = get(h); // the replica's copy: delivered, not yet accepted
  ASSERT_TRUE(act(h, accept_atom::value, "bob"));
  // The owner dies; its replica (delivered) is promoted elsewhere.
  presence::storage::intent_record rec{stale.intent_id, stale.from_user, stale.to_user,
                             stale.to_room,   stale.kind,      stale.note,
                             static_cast<uint8_t>(stale.status), stale.created_at,
                             stale.expires_at, stale.delivered_at, stale.ready_at, 0};
  caf::anon_send_exit(h, caf::exit_reason::kill);
  auto promoted = n.sys().spawn(intent_actor_promoted, &n.node(), intent_transfer{rec});
  n.run();
  EXPECT_EQ(get(promoted).status, intent_status::accepted);
  auto want = std::vector<intent_status>{intent_status::pending, intent_status::delivered,
                                         intent_status::accepted};
  EXPECT_EQ(statuses(alice), want) << "no stage twice, none going back";
  EXPECT_EQ(statuses(bob), want);
  // A pending copy of an intent whose target is active already is delivered
  // at once (a promoted copy watches its target itself).
  auto [p, ph] = create({"bob", "alice", "", "call", "", 60000});
  EXPECT_EQ(get(ph).status, intent_status::pending);
  auto pending = get(ph);
  caf::anon_send_exit(ph, caf::exit_reason::kill);
  auto alice_tab = n.open("alice", signal_kind::active);
  rec = {pending.intent_id, pending.from_user, pending.to_user, pending.to_room,
         pending.kind, pending.note, static_cast<uint8_t>(pending.status),
         pending.created_at, pending.expires_at, 0, 0, 0};
  auto copy = n.sys().spawn(intent_actor_promoted, &n.node(), intent_transfer{rec});
  n.run();
  EXPECT_EQ(get(copy).status, intent_status::delivered);
  (void)bob_tab;
  (void)alice_tab;
  (void)v;
  (void)p;
}

// Verifies a pending intent follows its target to where it lives after a view
// change. A node that restarts recovers its intents before it rejoins, and the
// users they name start on it then; once the view gives such a user to another
// node, the copy here is never told anything again. An intent that kept its
// handle of that copy stayed pending for ever while its target was active
// (and the target's real copy never listed it).
TEST_F(IntentActorTest, PendingIntentFollowsItsTargetAfterAViewChange) {
  auto [v, h] = create({"alice", "bob", "", "call", "", 60000});
  ASSERT_EQ(get(h).status, intent_status::pending);
  // The view moves bob: the router forgets the copy the intent watches, which
  // lives on unused, and bob's sessions reach a new copy.
  auto stale = user("bob");
  n.node().router().forget("user:bob", stale.address());
  auto bob_tab = n.open("bob", signal_kind::active);
  ASSERT_NE(user("bob"), stale);
  EXPECT_EQ(get(h).status, intent_status::pending) << "no view change yet";
  ASSERT_FALSE(n.tell(h, announce_atom::value));
  EXPECT_EQ(get(h).status, intent_status::delivered);
  auto l = n.ask<intent_list>(user("bob"), list_atom::value, intent_atom::value);
  ASSERT_TRUE(l);
  ASSERT_EQ(l->incoming.size(), 1u) << "bob's copy lists the intent";
  EXPECT_EQ(l->incoming[0].status, intent_status::delivered);
  (void)bob_tab;
  (void)v;
}

// Verifies an open intent tells its sides again on every view change, even
// when their handles did not change: a side reached through a stub (on
// another node) may have missed the telling while its owner moved (a send
// to an owner that cannot answer is dropped). The target then never saw an
// intent delivered to it, which nobody accepted (chaos: "GET incoming of
// u00: not listed" while every node read it delivered).
TEST_F(IntentActorTest, OpenIntentTellsItsSidesAgainAfterAViewChange) {
  auto placement = std::make_shared<presence::testing::fake_placement>(n.sys());
  n.node().router().set_placement(placement);
  // bob lives on another node, and the first tellings do not reach him.
  struct target {
    bool reachable = false;
    std::vector<intent_view> told;
  };
  target bob;
  auto remote_bob = n.sys().spawn(
    [](caf::event_based_actor*, target* t) -> caf::behavior {
      return {
        [t](subscribe_atom, const caf::actor&) {
          user_view v;
          v.user_id = "bob";
          v.current = state::active;
          return v;
        },
        [t](intent_atom, const intent_view& v) {
          if (t->reachable)
            t->told.push_back(v);
        },
        [](unsubscribe_atom, const caf::actor&) {},
      };
    },
    &bob);
  placement->route("user:bob", remote_bob);
  auto [v, h] = create({"alice", "bob", "", "call", "", 60000});
  ASSERT_EQ(get(h).status, intent_status::delivered);
  EXPECT_TRUE(bob.told.empty());
  bob.reachable = true;
  ASSERT_FALSE(n.tell(h, announce_atom::value)); // a view change
  ASSERT_FALSE(bob.told.empty()) << "bob never learns of the intent";
  EXPECT_EQ(bob.told.back().status, intent_status::delivered);
  EXPECT_EQ(bob.told.back().intent_id, v.intent_id);
  caf::anon_send_exit(remote_bob, caf::exit_reason::user_shutdown);
  placement->stop();
}

namespace {

uint64_t finished(test_node& n, intent_status s, bool delivered) {
  auto i = (static_cast<size_t>(s) - first_final_intent_status) * 2 + (delivered ? 1 : 0);
  return n.node().metrics().intents_finished[i].load();
}

int64_t by_status(test_node& n, intent_status s) {
  return n.node().metrics().intents_by_status[static_cast<size_t>(s)].load();
}

} // namespace

// Verifies the intent metrics: an intent that expires undelivered counts under
// presence_intents_finished_total{status="expired",delivered="false"}, one
// delivered and then accepted under accepted/true with its delivery time in the
// histogram, and presence_intents_by_status follows each intent until its
// retention ends.
TEST_F(IntentActorTest, FinishedIntentsAreCountedByStatusAndDelivery) {
  auto& m = n.node().metrics();
  auto bob_tab = n.open("bob", signal_kind::idle);
  auto [lost, lost_h] = create({"alice", "carol", "", "call", "", 3000});
  auto [v, h] = create({"alice", "bob", "", "call", "", 60000});
  EXPECT_EQ(by_status(n, intent_status::pending), 2);
  n.advance_to(1200);
  ASSERT_TRUE(n.ask<signal_reply>(bob_tab.handle, signal_atom::value, signal_kind::active));
  ASSERT_EQ(get(h).status, intent_status::delivered);
  EXPECT_EQ(by_status(n, intent_status::pending), 1);
  EXPECT_EQ(by_status(n, intent_status::delivered), 1);
  EXPECT_EQ(m.intent_delivery.count(), 1u);
  EXPECT_EQ(m.intent_delivery.sum_ms(), 1200);
  EXPECT_EQ(m.intent_delivery.bucket(3), 1u) << "1.2 s is in the (1, 5] s bucket";
  n.advance_to(3000);
  ASSERT_EQ(get(lost_h).status, intent_status::expired);
  EXPECT_EQ(finished(n, intent_status::expired, false), 1u);
  EXPECT_EQ(finished(n, intent_status::expired, true), 0u);
  ASSERT_TRUE(act(h, accept_atom::value, "bob"));
  EXPECT_EQ(finished(n, intent_status::accepted, true), 1u);
  EXPECT_EQ(finished(n, intent_status::accepted, false), 0u);
  EXPECT_EQ(by_status(n, intent_status::expired), 1);
  EXPECT_EQ(by_status(n, intent_status::accepted), 1);
  EXPECT_EQ(by_status(n, intent_status::pending) + by_status(n, intent_status::delivered), 0);
  EXPECT_EQ(m.intents.load(), 2);
  // A cancel of a pending intent: cancelled, not delivered.
  auto [c, ch] = create({"alice", "dave", "", "call", "", 60000});
  ASSERT_TRUE(act(ch, cancel_atom::value, "alice"));
  EXPECT_EQ(finished(n, intent_status::cancelled, false), 1u);
  n.advance(finished_intent_retention_ms + 10);
  for (size_t i = 0; i < intent_status_count; ++i)
    EXPECT_EQ(m.intents_by_status[i].load(), 0) << "status " << i;
  EXPECT_EQ(m.intents.load(), 0);
  EXPECT_EQ(m.intent_delivery.count(), 1u) << "only the one delivery";
  (void)lost;
  (void)v;
  (void)c;
}
