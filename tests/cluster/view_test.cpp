// Verifies the view rules: a member added or replaced (a restarted node keeps its
// place under its id) or removed gives the next epoch, ids stay sorted and
// unique, the leader is the smallest id, and only a greater epoch is newer.
#include "cluster/membership.hpp"
#include "cluster/view.hpp"

#include <gtest/gtest.h>

using namespace presence::cluster;

namespace {

member_info m(const std::string& id, const std::string& http = "h") {
  return member_info{id, id + ":7400", http, {}, {}};
}

} // namespace

TEST(ViewTest, AddingKeepsIdsSortedAndCountsEpochs) {
  view v{1, {m("b")}};
  auto v2 = with_member(v, m("c"));
  auto v3 = with_member(v2, m("a"));
  EXPECT_EQ(v2.epoch, 2u);
  EXPECT_EQ(v3.epoch, 3u);
  EXPECT_EQ(v3.ids(), (std::vector<std::string>{"a", "b", "c"}));
  ASSERT_NE(v3.leader(), nullptr);
  EXPECT_EQ(v3.leader()->id, "a");
  EXPECT_TRUE(newer(v3, v2));
  EXPECT_FALSE(newer(v2, v3));
  EXPECT_FALSE(newer(v3, v3));
}

TEST(ViewTest, ARestartedNodeReplacesItsEarlierIncarnation) {
  view v{4, {m("a"), m("b", "old")}};
  auto next = with_member(v, m("b", "new"));
  EXPECT_EQ(next.epoch, 5u);
  ASSERT_EQ(next.members.size(), 2u);
  EXPECT_EQ(next.find("b")->http_address, "new");
}

TEST(ViewTest, RemovingAMemberMovesTheLeadership) {
  view v{7, {m("a"), m("b"), m("c")}};
  EXPECT_FALSE(without_member(v, "zz")); // not a member: no new view
  auto next = without_member(v, "a");
  ASSERT_TRUE(next);
  EXPECT_EQ(next->epoch, 8u);
  EXPECT_EQ(next->ids(), (std::vector<std::string>{"b", "c"}));
  EXPECT_EQ(next->leader()->id, "b");
  auto last = without_member(*without_member(*next, "b"), "c");
  ASSERT_TRUE(last);
  EXPECT_EQ(last->leader(), nullptr);
  EXPECT_TRUE(last->members.empty());
}

// Verifies draining: the next epoch keeps the member but gives it no keys
// (owner_ids), draining twice or a stranger changes nothing, and a node that
// restarts under its id joins undrained.
TEST(ViewTest, ADrainedMemberStaysButOwnsNothing) {
  view v{3, {m("a"), m("b"), m("c")}};
  auto d = with_draining(v, "b");
  ASSERT_TRUE(d);
  EXPECT_EQ(d->epoch, 4u);
  EXPECT_EQ(d->ids(), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(d->owner_ids(), (std::vector<std::string>{"a", "c"}));
  EXPECT_TRUE(d->find("b")->draining);
  EXPECT_FALSE(with_draining(*d, "b"));
  EXPECT_FALSE(with_draining(v, "zz"));
  auto back = with_member(*d, m("b"));
  EXPECT_EQ(back.owner_ids(), (std::vector<std::string>{"a", "b", "c"}));
  auto gone = without_member(*d, "b");
  ASSERT_TRUE(gone);
  EXPECT_EQ(gone->owner_ids(), (std::vector<std::string>{"a", "c"}));
}

// Verifies that a rebalance renumbers the view and keeps everything else.
TEST(ViewTest, ARebalanceIsTheSameMembersUnderTheNextEpoch) {
  view v{7, {m("a"), m("b")}};
  v.members[1].draining = true;
  auto r = renumbered(v);
  EXPECT_EQ(r.epoch, 8u);
  EXPECT_EQ(r.ids(), v.ids());
  EXPECT_EQ(r.owner_ids(), v.owner_ids());
  EXPECT_TRUE(newer(r, v));
}

// Verifies the first seed is the same whatever a node's own list holds: the
// smallest address by host, then by port as a number (not as text).
TEST(FirstSeedTest, SameFounderForEveryNode) {
  using presence::cluster::first_seed;
  const std::string a = "127.0.0.1:7401", b = "127.0.0.1:7402", c = "127.0.0.1:10000";
  EXPECT_EQ(first_seed({b, c}, a), a);
  EXPECT_EQ(first_seed({a, c}, b), a);
  EXPECT_EQ(first_seed({a, b}, c), a);
  EXPECT_EQ(first_seed({a, b, c}, c), a) << "a list that names the node itself";
  EXPECT_EQ(first_seed({}, c), c) << "alone";
  EXPECT_EQ(first_seed({"127.0.0.1:9999"}, c), "127.0.0.1:9999") << "9999 < 10000";
  EXPECT_EQ(first_seed({"10.0.0.2:7400"}, "10.0.0.10:7400"), "10.0.0.10:7400")
    << "hosts compare as text";
}

// Verifies the keep-majority rule at each boundary: more than half goes on,
// less than half stops, exactly half goes on only with the smallest id.
TEST(KeepsMajorityTest, MoreThanHalfOrHalfWithTheSmallestId) {
  auto of = [](std::initializer_list<const char*> ids) {
    view v{7, {}};
    for (auto* id : ids)
      v = with_member(v, m(id));
    return v;
  };
  struct row {
    view before;
    view after;
    bool keeps;
  };
  const row rows[] = {
    {of({"a", "b", "c"}), of({"a", "b", "c"}), true},
    {of({"a", "b", "c"}), of({"a", "b"}), true},
    {of({"a", "b", "c"}), of({"b", "c"}), true},
    {of({"a", "b", "c"}), of({"c"}), false},   // the hung node, alone
    {of({"a", "b", "c"}), of({"a"}), false},
    {of({"a", "b"}), of({"a"}), true},         // half, with the smallest id
    {of({"a", "b"}), of({"b"}), false},        // half, without it
    {of({"a", "b", "c", "d"}), of({"a", "d"}), true},
    {of({"a", "b", "c", "d"}), of({"b", "c"}), false},
    {of({"a", "b", "c", "d", "e"}), of({"c", "d", "e"}), true},
    {of({"a", "b", "c", "d", "e"}), of({"a", "b"}), false},
    {of({"a"}), of({"a"}), true},
    {of({"a", "b", "c"}), of({"a", "x", "y"}), false}, // only members of before count
  };
  for (auto& r : rows)
    EXPECT_EQ(presence::cluster::keeps_majority(r.before, r.after), r.keeps)
      << r.before.members.size() << " -> " << r.after.members.size();
}

// Verifies presence_cluster_members' counts: members seen down are unreachable
// whether they drain or not, the others draining or up, and ids that are no
// members are not counted.
TEST(ViewTest, MembersAreCountedByStatus) {
  auto v = with_member(with_member(with_member(view{1, {m("a")}}, m("b")), m("c")), m("d"));
  v = *with_draining(v, "b");
  v = *with_draining(v, "c");
  auto c = count_members(v, {"c", "d", "zz"});
  EXPECT_EQ(c.up, 1);
  EXPECT_EQ(c.draining, 1);
  EXPECT_EQ(c.unreachable, 2);
  auto none = count_members(v, {});
  EXPECT_EQ(none.up, 2);
  EXPECT_EQ(none.draining, 2);
  EXPECT_EQ(none.unreachable, 0);
}

// Verifies the first-seed rule in a StatefulSet: seeds are the pods' DNS names
// and node.bind the pod IP. A pod that advertises its own name compares like
// with like, so only presenced-0 founds the cluster; compared by its IP (no
// node.advertise) every pod took itself for the first seed ("10..." sorts
// before "presenced-...").
TEST(FirstSeedTest, PodsAdvertisingTheirNamesAgreeOnTheFounder) {
  using presence::cluster::advertised_address;
  using presence::cluster::first_seed;
  auto pod = [](int i) {
    return "presenced-" + std::to_string(i) + ".presenced-peers.prod.svc.cluster.local";
  };
  for (int me = 0; me < 3; ++me) {
    presence::config::settings s;
    s.node.bind = "10.0.0." + std::to_string(20 - me);
    s.node.advertise = pod(me);
    for (int i = 0; i < 3; ++i)
      if (i != me)
        s.node.seeds.push_back(pod(i) + ":7400");
    auto self = advertised_address(s, 7400);
    EXPECT_EQ(self, pod(me) + ":7400");
    EXPECT_EQ(first_seed(s.node.seeds, self), pod(0) + ":7400") << "pod " << me;
    s.node.advertise.clear();
    EXPECT_EQ(advertised_address(s, 7400), s.node.bind + ":7400")
      << "without node.advertise: node.bind";
  }
}

// Verifies join nonces at their boundaries: one member issues, any member with
// the same secret accepts it until it expires (a nonce kept only by the node
// that issued it refused nodes holding the secret when another member, or a
// leader elected meanwhile, checked it); a wrong secret, a changed byte, an
// expired nonce or one from a clock far ahead is refused.
TEST(JoinNonceTest, AnyMemberWithTheSecretChecksIt) {
  using presence::cluster::issue_join_nonce;
  using presence::cluster::join_nonce_ttl_ms;
  using presence::cluster::join_nonce_valid;
  const int64_t t = 1'800'000'000'000;
  auto nonce = issue_join_nonce("s3cret", t, "0123456789abcdef");
  struct row {
    std::string secret;
    std::string nonce;
    int64_t now;
    bool valid;
  };
  auto tampered = nonce;
  tampered[tampered.size() / 2] = tampered[tampered.size() / 2] == 'a' ? 'b' : 'a';
  auto ahead = issue_join_nonce("s3cret", t + 1, "0123456789abcdef");
  for (auto& r : std::vector<row>{
         {"s3cret", nonce, t, true},
         {"s3cret", nonce, t + join_nonce_ttl_ms, true},
         {"s3cret", nonce, t + join_nonce_ttl_ms + 1, false},
         {"s3cret", ahead, t, false},  // expires past a lifetime from now
         {"other", nonce, t, false},
         {"s3cret", tampered, t, false},
         {"s3cret", "", t, false},
         {"s3cret", "..", t, false},
         {"s3cret", "x.0123.ab", t, false},
       })
    EXPECT_EQ(join_nonce_valid(r.secret, r.nonce, r.now), r.valid)
      << r.secret << " " << r.nonce << " at " << r.now;
  EXPECT_NE(issue_join_nonce("s3cret", t, "a"), issue_join_nonce("s3cret", t, "b"));
}

// Verifies when a node rewrites the ids it awaits after a restart (MEMBERS):
// on joins and replacements, not when members only leave (a full stop shrinks
// every view to the node itself, which then awaited nobody after the restart).
TEST(RewriteMembersTest, NotWhenMembersOnlyLeave) {
  using presence::cluster::rewrite_members;
  using ids = std::vector<std::string>;
  struct row {
    ids before;
    ids after;
    bool rewrite;
  };
  for (auto& r : std::vector<row>{
         {{}, {"n1"}, true},                       // the first view
         {{"n1"}, {"n1", "n2"}, true},             // a join
         {{"n1", "n2", "n3"}, {"n2", "n3"}, false}, // a leave
         {{"n2", "n3"}, {"n2"}, false},             // the last leave of a full stop
         {{"n1", "n2"}, {"n1", "n3"}, true},       // one left, another joined
         {{"n2", "n1"}, {"n1", "n2"}, false},      // renumbered: the same members
         {{"n1", "n2"}, {"n1", "n2"}, false},
       })
    EXPECT_EQ(rewrite_members(r.before, r.after), r.rewrite)
      << ::testing::PrintToString(r.before) << " -> " << ::testing::PrintToString(r.after);
}
