// Verifies the ring: the same owners from the same membership in any order;
// balance (each node's share of keys within ±10% of 1/N for 3 to 10 nodes at the
// default virtual nodes); minimal movement (adding a node moves keys only to it,
// about 1/(N+1) of them; removing one moves only its own keys); replicas are
// distinct and start with the owner.
#include "cluster/ring.hpp"

#include <gtest/gtest.h>

#include <map>

using presence::cluster::ring;

namespace {

std::vector<std::string> names(size_t n) {
  std::vector<std::string> out;
  for (size_t i = 1; i <= n; ++i)
    out.push_back("node-" + std::to_string(i));
  return out;
}

constexpr size_t sample_keys = 200000;

std::string key(size_t i) {
  return (i % 2 == 0 ? "user:u" : "session:s_") + std::to_string(i * 2654435761u);
}

} // namespace

TEST(RingTest, DeterministicWhateverTheOrder) {
  ring a{{"b", "a", "c"}};
  ring b{{"c", "b", "a", "a"}};
  EXPECT_EQ(a.nodes(), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(b.nodes(), a.nodes());
  for (size_t i = 0; i < 10000; ++i)
    ASSERT_EQ(a.owner(key(i)), b.owner(key(i))) << key(i);
  EXPECT_EQ(ring{}.owner("user:x"), "");
  EXPECT_TRUE(ring{}.owners("user:x", 2).empty());
  EXPECT_TRUE(a.contains("b"));
  EXPECT_FALSE(a.contains("d"));
}

TEST(RingTest, BalancedForThreeToTenNodes) {
  for (size_t n = 3; n <= 10; ++n) {
    ring r{names(n)};
    std::map<std::string, size_t> count;
    for (size_t i = 0; i < sample_keys; ++i)
      ++count[r.owner(key(i))];
    ASSERT_EQ(count.size(), n);
    auto ideal = static_cast<double>(sample_keys) / static_cast<double>(n);
    for (auto& [node, c] : count)
      EXPECT_NEAR(static_cast<double>(c) / ideal, 1.0, 0.10)
        << node << " of " << n << " nodes holds " << c << " keys";
  }
}

TEST(RingTest, AddingANodeMovesKeysOnlyToIt) {
  for (size_t n = 3; n <= 9; ++n) {
    ring before{names(n)};
    ring after{names(n + 1)};
    auto added = "node-" + std::to_string(n + 1);
    size_t moved = 0;
    for (size_t i = 0; i < sample_keys; ++i) {
      auto& a = before.owner(key(i));
      auto& b = after.owner(key(i));
      if (a != b) {
        ++moved;
        ASSERT_EQ(b, added) << key(i) << " moved between old nodes";
      }
    }
    auto share = static_cast<double>(moved) / sample_keys;
    EXPECT_NEAR(share * static_cast<double>(n + 1), 1.0, 0.10) << n << " -> " << n + 1;
  }
}

TEST(RingTest, RemovingANodeMovesOnlyItsKeys) {
  ring before{names(5)};
  auto rest = names(5);
  rest.erase(rest.begin() + 2); // node-3 leaves
  ring after{rest};
  size_t moved = 0;
  for (size_t i = 0; i < sample_keys; ++i) {
    auto& a = before.owner(key(i));
    auto& b = after.owner(key(i));
    if (a != b) {
      ++moved;
      ASSERT_EQ(a, "node-3") << key(i) << " moved though its owner stayed";
    }
  }
  EXPECT_NEAR(static_cast<double>(moved) / sample_keys * 5, 1.0, 0.10);
}

TEST(RingTest, ReplicasAreWhoWouldOwnWithoutTheOwner) {
  ring r{names(4)};
  for (size_t i = 0; i < 1000; ++i) {
    auto o = r.owners(key(i), 3);
    ASSERT_EQ(o.size(), 3u);
    EXPECT_EQ(o[0], r.owner(key(i)));
    EXPECT_NE(o[0], o[1]);
    EXPECT_NE(o[1], o[2]);
    EXPECT_NE(o[0], o[2]);
  }
  EXPECT_EQ(r.owners("user:x", 10).size(), 4u); // never more than the members
  // When the owner leaves, its first replica takes over the key.
  for (size_t i = 0; i < 1000; ++i) {
    auto o = r.owners(key(i), 2);
    auto rest = names(4);
    rest.erase(std::find(rest.begin(), rest.end(), o[0]));
    EXPECT_EQ(ring{rest}.owner(key(i)), o[1]) << key(i);
  }
}
