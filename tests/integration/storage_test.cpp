// Verifies durability from the outside: a real presenced on loopback with its
// own data directory is stopped (SIGTERM) or killed (SIGKILL, after its writer
// caught up) and started again on the same directory; a client then finds its
// session (resumable with its token over WebSocket), its room and its pending
// intent. After a downtime past stale_after_ms sessions come back stale, after
// offline_after_ms they are gone and the user shows the right last_active_at.
// A data directory locked by a running node, or unusable, stops the start with
// a message naming it. Every wait polls with a deadline.
#include "client.hpp"
#include "node_process.hpp"
#include "polling.hpp"

#include <gtest/gtest.h>

#include <fstream>
#include <thread>

using namespace presence::testing;

namespace {

// Waits until the wall clock reaches `t` (epoch ms): the downtime itself.
void wait_until(int64_t t) {
  eventually([t] { return now_ms() >= t; }, std::chrono::milliseconds{t - now_ms() + 1000});
}

// Thresholds far beyond a test's length: nothing decays on its own.
std::vector<std::string> steady() {
  return {"--presence.active_window_ms=60000", "--presence.idle_after_ms=120000",
          "--presence.stale_after_ms=180000", "--presence.offline_after_ms=240000",
          "--storage.flush_interval_ms=20"};
}

struct scene {
  std::string sid;
  std::string token;
  std::string intent_id;
  int64_t alice_seq = 0;
};

// alice opens a session in the lobby, attaches media, and wants to call carol
// (who is not there: the intent stays pending).
scene play(http_client& http) {
  scene sc;
  auto r = http.post("/v1/sessions", {{"device", "laptop"}, {"rooms", {"lobby"}}}, "alice");
  EXPECT_EQ(r.status, 201u) << r.raw;
  sc.sid = r.body.value("session_id", "");
  sc.token = r.body.value("resume_token", "");
  EXPECT_EQ(http.post("/v1/rooms/lobby/media", {{"attached", true}}, "alice").status, 200u);
  auto i = http.post("/v1/intents", {{"to_user", "carol"}, {"ttl_ms", 600000}}, "alice");
  EXPECT_EQ(i.status, 201u) << i.raw;
  sc.intent_id = i.body.value("intent_id", "");
  sc.alice_seq = http.get("/v1/users/alice/presence", "bob").body.value("seq", int64_t{-1});
  return sc;
}

// What a client finds after the restart: everything, and the session resumes.
// After a clean stop the user's seq is what it was (a restart is not a
// change); after a crash (`crashed`) the records may lag behind what was
// published, so seq starts the next generation (README "seq across failover").
void expect_back(uint16_t port, const scene& sc, bool crashed = false) {
  http_client http{port};
  auto s = http.get("/v1/sessions/" + sc.sid, "alice");
  ASSERT_EQ(s.status, 200u) << s.raw;
  EXPECT_EQ(s.body["state"], "active");
  EXPECT_EQ(s.body["device"], "laptop");
  EXPECT_EQ(s.body["rooms"], json::array({"lobby"}));
  auto u = http.get("/v1/users/alice/presence", "bob");
  EXPECT_EQ(u.body["state"], "active");
  if (crashed)
    EXPECT_EQ(u.body.value("seq", int64_t{-1}),
              ((sc.alice_seq >> 32) + 1) << 32) << "above anything published before";
  else
    EXPECT_EQ(u.body.value("seq", int64_t{-1}), sc.alice_seq) << "a restart is not a change";
  auto room = http.get("/v1/rooms/lobby", "bob");
  EXPECT_EQ(room.body["media_attached"], true) << room.raw;
  ASSERT_EQ(room.body["members"].size(), 1u) << room.raw;
  EXPECT_EQ(room.body["members"][0]["user_id"], "alice");
  auto i = http.get("/v1/intents/" + sc.intent_id, "alice");
  ASSERT_EQ(i.status, 200u) << i.raw;
  EXPECT_EQ(i.body["status"], "pending");
  // The session resumes over WebSocket with its token.
  ws_client ws{port, "alice"};
  ws.send({{"op", "hello"}, {"session_id", sc.sid}, {"resume_token", sc.token}});
  auto w = ws.read_op("welcome");
  ASSERT_TRUE(w);
  EXPECT_EQ((*w)["resumed"], true) << w->dump();
  EXPECT_EQ((*w)["session_id"], sc.sid);
  // The restored intent is delivered when carol comes.
  EXPECT_EQ(http.post("/v1/sessions", json::object(), "carol").status, 201u);
  EXPECT_TRUE(eventually([&] {
    return http.get("/v1/intents/" + sc.intent_id, "alice").body["status"] == "delivered";
  }));
}

} // namespace

// Verifies a SIGTERM restart: the stop flushes everything and the next start
// brings it back before /readyz answers 200.
TEST(StorageIntegrationTest, SigtermRestartKeepsEverything) {
  node_process node{steady()};
  scene sc;
  {
    http_client http{node.port()};
    sc = play(http);
  }
  ASSERT_EQ(node.stop(), 0) << node.log();
  EXPECT_NE(node.log().find("storage flushed"), std::string::npos) << node.log();
  node.restart();
  EXPECT_NE(node.log().find("1 sessions"), std::string::npos) << node.log();
  http_client http{node.port()};
  EXPECT_EQ(http.get("/readyz", "").status, 200u);
  expect_back(node.port(), sc);
}

// Verifies a SIGKILL restart once the writer caught up (one flush interval):
// nothing flushed at exit, and still everything comes back.
TEST(StorageIntegrationTest, SigkillAfterAFlushIntervalKeepsEverything) {
  node_process node{steady()};
  scene sc;
  {
    http_client http{node.port()};
    sc = play(http);
    EXPECT_TRUE(eventually([&] { return metric(http, "presence_storage_pending") == 0; }));
  }
  node.kill();
  node.restart();
  expect_back(node.port(), sc, true);
}

// Verifies that time spent down counts: after a downtime past stale_after_ms the
// session comes back stale (never active) and its user too, with seq + 1; after
// one past offline_after_ms it is gone (404) and the user is offline with the
// session's last_active_at.
TEST(StorageIntegrationTest, DowntimeDecidesTheRestoredState) {
  std::vector<std::string> args = {
    "--presence.active_window_ms=300",  "--presence.idle_after_ms=600",
    "--presence.stale_after_ms=1000",   "--presence.offline_after_ms=4000",
    "--presence.heartbeat_active_ms=100", "--presence.heartbeat_idle_ms=200",
    "--presence.heartbeat_background_ms=400", "--storage.flush_interval_ms=20",
    "--node.timer_tick_ms=5"};
  node_process node{args};
  std::string sid;
  int64_t last_active = 0;
  int64_t seq = 0;
  {
    http_client http{node.port()};
    auto r = http.post("/v1/sessions", {{"device", "laptop"}}, "alice");
    ASSERT_EQ(r.status, 201u);
    sid = r.body["session_id"];
    auto s = http.post("/v1/sessions/" + sid + "/signal", {{"signal", "active"}}, "alice");
    ASSERT_EQ(s.status, 200u);
    auto v = http.get("/v1/sessions/" + sid, "alice");
    last_active = v.body["last_active_at"];
    EXPECT_TRUE(eventually([&] { return metric(http, "presence_storage_pending") == 0; }));
  }
  ASSERT_EQ(node.stop(), 0);
  // Down for longer than stale_after_ms (1000), less than offline_after_ms (4000).
  wait_until(last_active + 1200);
  node.restart();
  {
    http_client http{node.port()};
    auto v = http.get("/v1/sessions/" + sid, "alice");
    ASSERT_EQ(v.status, 200u) << v.raw << node.log();
    EXPECT_EQ(v.body["state"], "stale");
    EXPECT_EQ(v.body["last_active_at"], last_active);
    auto u = http.get("/v1/users/alice/presence", "bob");
    EXPECT_EQ(u.body["state"], "stale");
    seq = u.body["seq"];
  }
  ASSERT_EQ(node.stop(), 0);
  // Now past offline_after_ms (4000) since the last signal.
  wait_until(last_active + 4300);
  node.restart();
  http_client http{node.port()};
  EXPECT_EQ(http.get("/v1/sessions/" + sid, "alice").status, 404u);
  auto u = http.get("/v1/users/alice/presence", "bob");
  EXPECT_EQ(u.body["state"], "offline") << u.raw;
  EXPECT_EQ(u.body["last_active_at"], last_active);
  EXPECT_EQ(u.body["seq"], seq + 1);
  EXPECT_EQ(u.body["sessions"].size(), 0u);
  EXPECT_NE(node.log().find("(1 expired while down)"), std::string::npos) << node.log();
}

// Verifies that a second node on a directory in use is refused with a message
// naming the directory, and so is a path that cannot be a directory; the running
// node is unharmed.
TEST(StorageIntegrationTest, UnusableDataDirectoriesAreRefused) {
  node_process node{steady()};
  auto [code, out] = node_process::run_to_exit(
    {"--node.http_port=0", "--node.data_dir=" + node.data_dir()});
  EXPECT_EQ(code, 1) << out;
  EXPECT_NE(out.find("is in use by another running node"), std::string::npos) << out;
  EXPECT_NE(out.find(node.data_dir()), std::string::npos) << out;
  auto file = node.data_dir() + "-file";
  std::ofstream{file} << "x";
  auto [code2, out2] = node_process::run_to_exit(
    {"--node.http_port=0", "--node.data_dir=" + file + "/db"});
  EXPECT_EQ(code2, 1) << out2;
  EXPECT_NE(out2.find("node.data_dir"), std::string::npos) << out2;
  EXPECT_NE(out2.find(file), std::string::npos) << out2;
  std::remove(file.c_str());
  http_client http{node.port()};
  EXPECT_EQ(http.get("/readyz", "").status, 200u);
}
