// Verifies entity traffic between nodes with several nodes in one process
// under the test scheduler (support/test_cluster.hpp): a user is reached on
// its owner from any node; a joiner pulls the users the ring moves to it,
// with their state; a dead owner's users start on the survivors from their
// replicas.
#include "cluster/membership.hpp"
#include "cluster/routing.hpp"
#include "cluster/view.hpp"

#include "actors/errors.hpp"
#include "actors/messages.hpp"

#include "support/test_cluster.hpp"

#include <gtest/gtest.h>

#include <caf/send.hpp>

#include <map>
#include <set>
#include <string>
#include <vector>

using namespace presence;
using presence::actors::state;
using presence::testing::test_cluster;

namespace {

using ids = std::vector<std::string>;

// How long a cluster started together takes to agree: the first seed founds
// after `found_after`, the others retry their joins every 500 ms.
constexpr int64_t settle_ms = 5000;

void expect_view(test_cluster& c, const ids& nodes) {
  for (auto& id : nodes)
    EXPECT_EQ(c.view_of(id).ids(), nodes) << "node " << id;
}

} // namespace

// Verifies routing between nodes: a user that the ring gives b, with a session
// opened on a, lives on b only (a holds a stub), and reads the same (active,
// one session) through a's stub, b itself and c's stub.
TEST(TrafficTest, AUserOnAnotherNodeIsReachedFromEveryNode) {
  test_cluster c;
  c.start_together({"a", "b", "c"});
  c.advance(settle_ms);
  expect_view(c, {"a", "b", "c"});
  auto u = c.user_owned_by("b", "a");
  for (auto id : {"a", "b", "c"})
    EXPECT_EQ(c.owner_of("user:" + u, id), "b") << "in the view of " << id;
  auto s = c.open("a", u);
  ASSERT_TRUE(s.handle);
  EXPECT_TRUE(c.node("a").router().session(s.session_id));
  EXPECT_TRUE(c.node("b").router().find_local("user:" + u));
  EXPECT_FALSE(c.node("a").router().find_local("user:" + u));
  EXPECT_FALSE(c.node("c").router().find_local("user:" + u));
  for (auto id : {"a", "b", "c"}) {
    auto v = c.user_via(id, u);
    ASSERT_TRUE(v) << id << ": " << c.at(id).sys->render(v.error());
    EXPECT_EQ(v->user_id, u) << id;
    EXPECT_EQ(v->current, state::active) << id;
    EXPECT_EQ(v->sessions.size(), 1u) << id;
  }
}

// Opens sessions for 40 users on a and c, adds a fourth node d, and checks
// that the users the ring now gives d live there with the state they had.
static void expect_users_move_to_a_joiner_with_their_state(int64_t factor) {
  test_cluster c{factor};
  c.start_together({"a", "b", "c"});
  c.advance(settle_ms);
  expect_view(c, {"a", "b", "c"});
  std::map<std::string, actors::opened_session> sessions;
  std::map<std::string, std::string> opened_on;
  for (int i = 0; i < 40; ++i) {
    auto u = "u" + std::to_string(i);
    opened_on[u] = i % 2 == 0 ? "a" : "c";
    sessions[u] = c.open(opened_on[u], u);
  }
  // Every user goes idle, then active again: a few changes each.
  c.advance(2500);
  for (auto& [u, s] : sessions)
    ASSERT_TRUE(c.ask<actors::signal_reply>(opened_on[u], s.handle, actors::signal_atom::value,
                                             actors::signal_kind::active));
  std::map<std::string, actors::user_view> before;
  for (auto& [u, s] : sessions) {
    auto v = c.user_via("a", u);
    ASSERT_TRUE(v) << u;
    before[u] = *v;
  }
  c.add_node("d", {"a", "b", "c"});
  c.start({"d"});
  c.advance(300); // joined and pulled, well before the users go idle
  expect_view(c, {"a", "b", "c", "d"});
  std::set<std::string> moved;
  for (auto& [u, s] : sessions)
    if (c.owner_of("user:" + u, "d") == "d")
      moved.insert(u);
  ASSERT_FALSE(moved.empty());
  for (auto& u : moved) {
    EXPECT_TRUE(c.node("d").router().find_local("user:" + u)) << u;
    for (auto id : {"a", "b", "c", "d"}) {
      auto v = c.user_via(id, u);
      ASSERT_TRUE(v) << u << " through " << id;
      EXPECT_EQ(v->current, state::active) << u << " through " << id;
      EXPECT_EQ(v->sessions.size(), 1u) << u << " through " << id;
      EXPECT_GE(v->seq, before[u].seq) << u << " through " << id;
      EXPECT_EQ(v->since, before[u].since) << u << " through " << id;
    }
  }
}

// Verifies the hand-off to a joiner: once a fourth node joins, the users the
// ring now gives it live there (pulled from their old owners, not started
// afresh: their sequence numbers and the time of their last change go on) and
// read the same through every node; without replicas and with them.
TEST(TrafficTest, UsersThatMoveToAJoinerKeepTheirState) {
  for (int64_t factor : {1, 2}) {
    SCOPED_TRACE("replication factor " + std::to_string(factor));
    expect_users_move_to_a_joiner_with_their_state(factor);
  }
}

// Verifies replication (factor 2): when the owner of a user is killed, the
// survivor the ring gives the user next starts it from its replica, so the
// user's state (sequence number, the time of its last change) survives, and
// every survivor reads it.
TEST(TrafficTest, ADeadOwnersUserStartsFromItsReplicaOnASurvivor) {
  test_cluster c{2};
  c.start_together({"a", "b", "c"});
  c.advance(settle_ms);
  expect_view(c, {"a", "b", "c"});
  auto u = c.user_owned_by("b", "a");
  auto s = c.open("a", u);
  c.advance(2500); // idle
  ASSERT_TRUE(
    c.ask<actors::signal_reply>("a", s.handle, actors::signal_atom::value, actors::signal_kind::active));
  c.advance(200); // replicated
  auto before = c.user_via("a", u);
  ASSERT_TRUE(before);
  ASSERT_EQ(before->current, state::active);
  c.kill("b");
  expect_view(c, {"a", "c"});
  auto owner = c.owner_of("user:" + u, "a");
  ASSERT_TRUE(owner == "a" || owner == "c") << owner;
  for (auto id : {"a", "c"}) {
    auto v = c.user_via(id, u);
    ASSERT_TRUE(v) << id;
    EXPECT_EQ(v->current, state::active) << id;
    EXPECT_GE(v->seq, before->seq) << id;
    EXPECT_EQ(v->since, before->since) << id;
    EXPECT_EQ(v->sessions.size(), 1u) << id;
  }
}

// Verifies replicas follow a hand-off (factor 2): the users a joiner pulled
// are replicated from it, so when the joiner is killed the survivors start
// them from their replicas, with the state they had.
TEST(TrafficTest, UsersThatMovedToAJoinerSurviveItsDeath) {
  test_cluster c{2};
  c.start_together({"a", "b", "c"});
  c.advance(settle_ms);
  std::map<std::string, actors::opened_session> sessions;
  for (int i = 0; i < 40; ++i) {
    auto u = "u" + std::to_string(i);
    sessions[u] = c.open("a", u);
  }
  c.advance(2500); // idle
  for (auto& [u, s] : sessions)
    ASSERT_TRUE(c.ask<actors::signal_reply>("a", s.handle, actors::signal_atom::value,
                                             actors::signal_kind::active));
  c.add_node("d", {"a", "b", "c"});
  c.start({"d"});
  c.advance(300); // joined, pulled and replicated
  expect_view(c, {"a", "b", "c", "d"});
  std::map<std::string, actors::user_view> before;
  for (auto& [u, s] : sessions)
    if (c.owner_of("user:" + u, "a") == "d") {
      auto v = c.user_via("a", u);
      ASSERT_TRUE(v) << u;
      before[u] = *v;
    }
  ASSERT_FALSE(before.empty());
  c.kill("d");
  expect_view(c, {"a", "b", "c"});
  for (auto& [u, was] : before)
    for (auto id : {"a", "b", "c"}) {
      auto v = c.user_via(id, u);
      ASSERT_TRUE(v) << u << " through " << id;
      EXPECT_EQ(v->current, state::active) << u << " through " << id;
      EXPECT_GE(v->seq, was.seq) << u << " through " << id;
      EXPECT_EQ(v->since, was.since) << u << " through " << id;
      EXPECT_EQ(v->sessions.size(), 1u) << u << " through " << id;
    }
}

// Verifies draining: once b drains (asked through another member), it stays
// in the view but owns no user; its users live on the others with the state
// they had, read the same through every node.
TEST(TrafficTest, ADrainedNodesUsersMoveToTheOthersWithTheirState) {
  test_cluster c;
  c.start_together({"a", "b", "c"});
  c.advance(settle_ms);
  std::map<std::string, actors::opened_session> sessions;
  for (int i = 0; i < 30; ++i) {
    auto u = "u" + std::to_string(i);
    sessions[u] = c.open("c", u);
  }
  c.advance(2500); // idle
  for (auto& [u, s] : sessions)
    ASSERT_TRUE(c.ask<actors::signal_reply>("c", s.handle, actors::signal_atom::value,
                                             actors::signal_kind::active));
  std::map<std::string, actors::user_view> before;
  for (auto& [u, s] : sessions)
    if (c.owner_of("user:" + u, "a") == "b") {
      auto v = c.user_via("a", u);
      ASSERT_TRUE(v) << u;
      before[u] = *v;
    }
  ASSERT_FALSE(before.empty());
  auto epoch = c.ask<uint64_t>("c", c.at("c").membership, cluster::drain_atom::value,
                               std::string{"b"});
  ASSERT_TRUE(epoch);
  c.advance(300);
  for (auto id : {"a", "b", "c"}) {
    auto v = c.view_of(id);
    EXPECT_EQ(v.epoch, *epoch) << id;
    ASSERT_NE(v.find(std::string{"b"}), nullptr) << id;
    EXPECT_TRUE(v.find(std::string{"b"})->draining) << id;
  }
  for (auto& [u, was] : before) {
    auto owner = c.owner_of("user:" + u, "b");
    EXPECT_TRUE(owner == "a" || owner == "c") << u << " on " << owner;
    EXPECT_FALSE(c.node("b").router().find_local("user:" + u)) << u;
    for (auto id : {"a", "b", "c"}) {
      auto v = c.user_via(id, u);
      ASSERT_TRUE(v) << u << " through " << id;
      EXPECT_EQ(v->current, state::active) << u << " through " << id;
      EXPECT_GE(v->seq, was.seq) << u << " through " << id;
      EXPECT_EQ(v->since, was.since) << u << " through " << id;
      EXPECT_EQ(v->sessions.size(), 1u) << u << " through " << id;
    }
  }
}

// Verifies a session on a node that is killed, without replicas, is awaited
// on the survivors (`unavailable`: its node may come back with it) and no
// longer once a silent session would be offline anyway (then it is gone).
TEST(TrafficTest, ASessionOnAKilledNodeIsAwaitedThenGone) {
  test_cluster c;
  c.start_together({"a", "b", "c"});
  c.advance(settle_ms);
  auto s = c.open("c", "u1");
  c.kill("c");
  expect_view(c, {"a", "b"});
  for (auto id : {"a", "b"}) {
    auto stub = c.node(id).router().session(s.session_id);
    ASSERT_TRUE(stub) << id;
    auto v = c.ask<actors::session_view>(id, stub, caf::get_atom::value);
    ASSERT_FALSE(v) << id;
    EXPECT_EQ(actors::code_of(v.error()), actors::errc::unavailable) << id;
  }
  c.advance(c.node("a").cfg().presence.offline_after_ms, 100);
  for (auto id : {"a", "b"}) {
    // The node that owns its key now has none; the other a stub to it.
    auto stub = c.node(id).router().session(s.session_id);
    if (!stub)
      continue;
    auto v = c.ask<actors::session_view>(id, stub, caf::get_atom::value);
    ASSERT_FALSE(v) << id;
    EXPECT_EQ(actors::code_of(v.error()), actors::errc::session_not_found) << id;
  }
}

// Verifies a session on a node that is killed comes back, with replicas
// (factor 2), on the survivor the ring gives its key: found there with its
// user and device, and listed again by its user.
TEST(TrafficTest, ASessionOnAKilledNodeStartsFromItsReplica) {
  test_cluster c{2};
  c.start_together({"a", "b", "c"});
  c.advance(settle_ms);
  auto s = c.open("c", "u1", actors::signal_kind::active, "phone");
  c.advance(200); // replicated
  c.kill("c");
  expect_view(c, {"a", "b"});
  for (auto id : {"a", "b"}) {
    auto handle = c.node(id).router().session(s.session_id);
    ASSERT_TRUE(handle) << id;
    auto v = c.ask<actors::session_view>(id, handle, caf::get_atom::value);
    ASSERT_TRUE(v) << id << ": " << c.at(id).sys->render(v.error());
    EXPECT_EQ(v->user_id, "u1") << id;
    EXPECT_EQ(v->device, "phone") << id;
    auto u = c.user_via(id, "u1");
    ASSERT_TRUE(u) << id;
    ASSERT_EQ(u->sessions.size(), 1u) << id;
    EXPECT_EQ(u->sessions.front().session_id, s.session_id) << id;
  }
}

// Kills and restarts a, b and c in turn (messages run in turn, or shuffled
// by `seed`), and checks each session answers signals throughout.
static void expect_a_rolling_restart_loses_nothing(uint64_t seed) {
  test_cluster c{2};
  c.shuffle(seed);
  ids nodes{"a", "b", "c"};
  c.start_together(nodes);
  c.advance(settle_ms);
  std::map<std::string, std::string> session_of; // by user
  for (size_t i = 0; i < 30; ++i) {
    auto u = "u" + std::to_string(i);
    session_of[u] = c.open(nodes[i % nodes.size()], u).session_id;
  }
  // Every session signals through node `via`, wherever it lives now.
  auto signal_all = [&](const std::string& via) {
    for (auto& [u, sid] : session_of) {
      auto handle = c.node(via).router().session(sid);
      ASSERT_TRUE(handle) << sid << " through " << via;
      auto r = c.ask<actors::signal_reply>(via, handle, actors::signal_atom::value,
                                           actors::signal_kind::active);
      ASSERT_TRUE(r) << sid << " of " << u << " through " << via << ": "
                     << c.at(via).sys->render(r.error());
    }
  };
  for (auto& victim : nodes) {
    SCOPED_TRACE("restarting " + victim);
    ids survivors;
    for (auto& id : nodes)
      if (id != victim)
        survivors.push_back(id);
    signal_all(survivors.front());
    c.advance(200); // replicated
    c.kill(victim);
    c.advance(100);
    expect_view(c, survivors);
    signal_all(survivors.back());
    c.restart(victim);
    c.advance(500);
    expect_view(c, nodes);
  }
  signal_all("a");
  c.advance(100);
  for (auto& [u, sid] : session_of) {
    std::vector<actors::user_view> seen;
    for (auto& id : nodes) {
      auto v = c.user_via(id, u);
      ASSERT_TRUE(v) << u << " through " << id;
      EXPECT_EQ(v->current, state::active) << u << " through " << id;
      ASSERT_EQ(v->sessions.size(), 1u) << u << " through " << id;
      EXPECT_EQ(v->sessions.front().session_id, sid) << u << " through " << id;
      seen.push_back(*v);
    }
    for (auto& v : seen) {
      EXPECT_EQ(v.seq, seen.front().seq) << u;
      EXPECT_EQ(v.since, seen.front().since) << u;
    }
  }
}

// Verifies a rolling restart with replicas (factor 2) loses no session and no
// user: each node in turn is killed (its sessions and users start on the
// survivors from their replicas and answer signals there) and comes back as a
// new incarnation (which takes its sessions back); at the end every user
// reads the same through every node, active with its one session. In turn,
// then under shuffled interleavings.
TEST(TrafficTest, ARollingRestartLosesNoSessionAndNoUser) {
  for (uint64_t seed = 0; seed <= 5; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    expect_a_rolling_restart_loses_nothing(seed);
  }
}

// Verifies users keep their state when two nodes join at once: every user
// then lives on one node only, with the sequence number and the time of its
// last change it had (nothing changed meanwhile), read the same through every
// node, active with its one session.
//
// FAILS (disabled until fixed; run it with --gtest_also_run_disabled_tests):
// 10 of the 40 users start afresh (seq 1 instead of 4). One join, or the two
// joins 300 ms apart, lose nothing. Traced for user:u11, which b holds (view
// 3), d owns in view 4 ([a, b, c, d]) and e in view 5 (+ e; views 6 to 9 are
// the joiners' joins through the other seeds, same members):
//  1. b adopts views 4 and 5 before its hand-off helpers run; they read the
//     placement then, so both hint e (epoch 5, source b). d is never asked.
//  2. e takes the first hint over: a pending user that pulls from b.
//  3. e gets the second hint while that pull is on its way: take_over finds
//     the key registered (the pending user) and tells b back that e holds it
//     already (reconcile_atom).
//  4. b's reconcile: b does not own u11, and did not own it in its previous
//     view (4: d did), so it takes its copy for one left behind and sends it
//     export_atom with no reply wanted: the state goes nowhere and the copy
//     becomes a forwarder.
//  5. e's pull reaches b after that and finds the forwarder instead of the
//     state: e's user starts afresh (no seq, no subscribers, no rooms). Every
//     node reads the fresh copy.
// Under shuffled interleavings other users go the same way, and some also
// leave a live second copy behind (the key moved b -> d -> e: d pulled from
// b, e was hinted by b before and pulled from b too, got "nothing to hand
// off", and d kept its copy on e's reconcile as one it owned before).
TEST(TrafficTest, DISABLED_UsersKeepTheirStateWhenTwoNodesJoinAtOnce) {
  for (uint64_t seed : {0, 1, 2, 3}) { // 0: in turn; then shuffled
    SCOPED_TRACE("seed " + std::to_string(seed));
    test_cluster c;
    c.shuffle(seed);
    c.start_together({"a", "b", "c"});
    c.advance(settle_ms);
    std::map<std::string, std::string> opened_on;
    std::map<std::string, actors::opened_session> sessions;
    for (int i = 0; i < 40; ++i) {
      auto u = "u" + std::to_string(i);
      opened_on[u] = i % 2 == 0 ? "a" : "c";
      sessions[u] = c.open(opened_on[u], u);
    }
    c.advance(2500); // idle
    for (auto& [u, s] : sessions)
      ASSERT_TRUE(c.ask<actors::signal_reply>(opened_on[u], s.handle, actors::signal_atom::value,
                                               actors::signal_kind::active));
    std::map<std::string, actors::user_view> before;
    for (auto& [u, s] : sessions) {
      auto v = c.user_via("b", u);
      ASSERT_TRUE(v) << u;
      before[u] = *v;
    }
    c.add_node("d", {"a", "b", "c"});
    c.add_node("e", {"a", "b", "c"});
    c.start({"d", "e"});
    c.advance(300);
    ids all{"a", "b", "c", "d", "e"};
    expect_view(c, all);
    for (auto& [u, s] : sessions) {
      for (auto& id : all) {
        auto v = c.user_via(id, u);
        ASSERT_TRUE(v) << u << " through " << id;
        EXPECT_EQ(v->current, state::active) << u << " through " << id;
        ASSERT_EQ(v->sessions.size(), 1u) << u << " through " << id;
        EXPECT_EQ(v->sessions.front().session_id, s.session_id) << u << " through " << id;
        EXPECT_EQ(v->seq, before[u].seq) << u << " through " << id;
        EXPECT_EQ(v->since, before[u].since) << u << " through " << id;
      }
      std::string copies;
      for (auto& id : all)
        if (auto local = c.node(id).router().find_local("user:" + u);
            local && !c.node(id).router().forwards("user:" + u, local.address()))
          copies += " " + id;
      EXPECT_EQ(copies, " " + c.owner_of("user:" + u, "a")) << u << ": live copies on";
    }
  }
}

// Verifies replicas leave no gap at a view change (factor 2): when the owner
// of users dies 20 ms after a node joined, every one of its users starts on a
// survivor from its replica, with the state it had.
//
// FAILS (disabled until fixed; run it with --gtest_also_run_disabled_tests):
// 8 of b's 14 users start afresh (seq 1, the time of their last change
// lost). 20 ms after d joined, no node holds
// a replica of them: on adopting the view with d, each node's hand-off helper
// drops at once the replicas it no longer holds for anyone (d is now their
// second holder), while d gets its copy only with the owner's next replica
// batch (one `replicate_interval`, 50 ms, later). 100 ms after the join
// nothing is lost. So a crash right after a view change loses whole entities,
// not only "the last interval's changes" (cluster/replication.hpp).
TEST(TrafficTest, DISABLED_UsersSurviveTheirOwnersDeathRightAfterAJoin) {
  test_cluster c{2};
  c.start_together({"a", "b", "c"});
  c.advance(settle_ms);
  std::map<std::string, actors::opened_session> sessions;
  for (int i = 0; i < 40; ++i) {
    auto u = "u" + std::to_string(i);
    sessions[u] = c.open("a", u);
  }
  c.advance(2500); // idle
  for (auto& [u, s] : sessions)
    ASSERT_TRUE(c.ask<actors::signal_reply>("a", s.handle, actors::signal_atom::value,
                                             actors::signal_kind::active));
  c.advance(200); // replicated
  std::map<std::string, actors::user_view> before;
  for (auto& [u, s] : sessions) {
    auto v = c.user_via("b", u);
    ASSERT_TRUE(v) << u;
    before[u] = *v;
  }
  c.add_node("d", {"a", "b", "c"});
  c.start({"d"});
  c.advance(20);
  std::set<std::string> on_b;
  for (auto& [u, s] : sessions)
    if (c.owner_of("user:" + u, "a") == "b")
      on_b.insert(u);
  ASSERT_FALSE(on_b.empty());
  c.kill("b");
  expect_view(c, {"a", "c", "d"});
  for (auto& u : on_b)
    for (auto id : {"a", "c", "d"}) {
      auto v = c.user_via(id, u);
      ASSERT_TRUE(v) << u << " through " << id;
      // (Promoted from a replica: a new seq generation, so greater.)
      EXPECT_GE(v->seq, before[u].seq) << u << " through " << id;
      EXPECT_EQ(v->since, before[u].since) << u << " through " << id;
      EXPECT_EQ(v->sessions.size(), 1u) << u << " through " << id;
    }
}
