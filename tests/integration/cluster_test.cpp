// Verifies membership from the outside: real presenced processes on loopback
// form a cluster through their seeds, every gateway reports the same view in
// GET /v1/cluster, a SIGKILLed node leaves the view of the survivors within
// cluster.failure_timeout_ms + 1 s (the leader too: the next smallest id takes
// over), and a restarted node joins again. Every wait polls with a deadline.
#include "client.hpp"
#include "gateway/auth.hpp"
#include "node_process.hpp"

#include <gtest/gtest.h>

#include <thread>

using namespace presence::testing;
using presence::gateway::authenticator;
using presence::gateway::role;

namespace {

constexpr const char* secret = "cluster-test-secret-0123456789";

std::vector<std::string> node_args(const std::string& id, std::vector<std::string> more = {}) {
  std::vector<std::string> args = {"--node.id=" + id, "--auth.mode=jwt",
                                   std::string{"--auth.secret="} + secret,
                                   "--cluster.failure_timeout_ms=1500"};
  args.insert(args.end(), more.begin(), more.end());
  return args;
}

std::string admin_token() {
  presence::config::auth_section cfg;
  cfg.mode = "jwt";
  cfg.secret = secret;
  auto now_s = std::chrono::duration_cast<std::chrono::seconds>(
                 std::chrono::system_clock::now().time_since_epoch())
                 .count();
  return authenticator{cfg}.issue("operator", role::admin, now_s, 3600);
}

json cluster_of(node_process& n) {
  http_client http{n.port()};
  auto r = http.request(http::verb::get, "/v1/cluster", {}, {}, admin_token());
  EXPECT_EQ(r.status, 200u) << r.raw;
  return r.body;
}

std::vector<std::string> ids(const json& c) {
  std::vector<std::string> out;
  for (auto& n : c["nodes"])
    out.push_back(n["id"]);
  return out;
}

template <class F>
bool eventually(F f, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (f())
      return true;
    std::this_thread::sleep_for(std::chrono::milliseconds{20});
  }
  return f();
}

std::string seed_of(node_process& n) {
  return "--node.seeds=127.0.0.1:" + std::to_string(n.cluster_port());
}

} // namespace

// Verifies that three nodes form one view that every gateway reports, with each
// node up, the ring's shares adding up to 1, and the smallest id leading.
TEST(ClusterIntegrationTest, ThreeNodesFormOneView) {
  node_process a{node_args("a")};
  node_process b{node_args("b", {seed_of(a)})};
  node_process c{node_args("c", {seed_of(b)})}; // through a member that is not the leader
  for (auto* n : {&a, &b, &c}) {
    auto view = cluster_of(*n);
    EXPECT_EQ(ids(view), (std::vector<std::string>{"a", "b", "c"})) << view.dump();
    EXPECT_EQ(view["epoch"], 3);
    EXPECT_EQ(view["leader"], "a");
    double total = 0;
    for (auto& x : view["nodes"]) {
      EXPECT_EQ(x["status"], "up") << x.dump();
      EXPECT_NEAR(x["share"].get<double>(), 1.0 / 3, 0.05) << x.dump();
      total += x["share"].get<double>();
    }
    EXPECT_NEAR(total, 1.0, 1e-9);
  }
  // Only admins see the cluster; drain and rebalance say plainly they move nothing yet.
  http_client http{a.port()};
  EXPECT_EQ(http.get("/v1/cluster", "").status, 401u);
  auto drain = http.request(http::verb::post, "/v1/cluster/nodes/b/drain", {}, {},
                            admin_token());
  EXPECT_EQ(drain.status, 501u) << drain.raw;
}

// Verifies failure detection and rejoining: a SIGKILLed member is out of the
// survivors' view within failure_timeout_ms + 1 s; restarted, it is back; when
// the leader is killed, the next smallest id leads the survivors.
TEST(ClusterIntegrationTest, KilledNodesLeaveAndRestartedNodesRejoin) {
  node_process a{node_args("a")};
  node_process b{node_args("b", {seed_of(a)})};
  node_process c{node_args("c", {seed_of(a)})};
  ASSERT_EQ(ids(cluster_of(c)), (std::vector<std::string>{"a", "b", "c"}));
  auto epoch = cluster_of(a)["epoch"].get<int>();

  b.kill();
  auto limit = std::chrono::milliseconds{1500 + 1000};
  auto without_b = std::vector<std::string>{"a", "c"};
  EXPECT_TRUE(eventually([&] { return ids(cluster_of(a)) == without_b; }, limit));
  EXPECT_TRUE(eventually([&] { return ids(cluster_of(c)) == without_b; }, limit));
  EXPECT_GT(cluster_of(c)["epoch"].get<int>(), epoch);

  b.restart(); // same id, same data directory, seeds: a
  EXPECT_EQ(ids(cluster_of(b)), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_TRUE(eventually(
    [&] { return ids(cluster_of(c)) == std::vector<std::string>{"a", "b", "c"}; }, limit));

  a.kill(); // the leader
  auto without_a = std::vector<std::string>{"b", "c"};
  EXPECT_TRUE(eventually([&] { return ids(cluster_of(b)) == without_a; }, limit));
  EXPECT_TRUE(eventually([&] { return ids(cluster_of(c)) == without_a; }, limit));
  EXPECT_EQ(cluster_of(c)["leader"], "b");

  a.restart({seed_of(c)}); // a node that had no seeds rejoins through one
  EXPECT_EQ(ids(cluster_of(a)), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(cluster_of(a)["leader"], "a");
}
