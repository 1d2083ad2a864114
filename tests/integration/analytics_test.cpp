// Verifies GET /v1/rooms/{rid}/analytics from the outside: a real presenced on
// loopback (1 s analytics buckets, thresholds far beyond the test so nothing
// decays on its own), a room walked through gathering -> ready -> cooling ->
// empty by two users over HTTP, the JSON shape and its counts, bad parameters
// answered 400 like the other routes, and the same figures after a SIGTERM
// restart, after a SIGKILL once the writer caught up, and in a three-node
// cluster after the room's owner is killed (its replica is promoted). Every
// wait polls with a deadline.
#include "client.hpp"
#include "cluster/ring.hpp"
#include "gateway/auth.hpp"
#include "node_process.hpp"
#include "polling.hpp"

#include <gtest/gtest.h>

#include <map>

using namespace presence::testing;

namespace {

std::vector<std::string> args() {
  return {"--presence.active_window_ms=60000", "--presence.idle_after_ms=120000",
          "--presence.stale_after_ms=180000",  "--presence.offline_after_ms=240000",
          "--storage.flush_interval_ms=20",    "--rooms.analytics_bucket_ms=1000",
          "--rooms.drop_off_ms=600000"};
}

std::string open_in_room(http_client& http, const std::string& user) {
  auto r = http.post("/v1/sessions", {{"rooms", {"r"}}}, user);
  EXPECT_EQ(r.status, 201u) << r.raw;
  return r.body.value("session_id", "");
}

// The figures that must not change across a restart.
struct figures {
  int64_t joins = 0;
  int64_t leaves = 0;
  int64_t quickly = 0;
  int64_t before_ready = 0;
  json stay;
  json episode;
};

figures read(http_client& http) {
  auto r = http.get("/v1/rooms/r/analytics", "carol");
  EXPECT_EQ(r.status, 200u) << r.raw;
  figures f;
  for (auto& b : r.body["buckets"]) {
    f.joins += b["joins"].get<int64_t>();
    f.leaves += b["leaves"].get<int64_t>();
  }
  f.quickly = r.body["drop_off"]["quickly"].get<int64_t>();
  f.before_ready = r.body["drop_off"]["before_ready"].get<int64_t>();
  f.stay = r.body["stay_ms"];
  if (!r.body["episodes"].empty())
    f.episode = r.body["episodes"][0];
  return f;
}

// alice joins (gathering), bob joins (ready), bob leaves (cooling), alice
// leaves (empty). Returns the figures read at the end.
figures play(http_client& http) {
  auto a = open_in_room(http, "alice");
  auto b = open_in_room(http, "bob");
  EXPECT_TRUE(eventually([&] { return http.get("/v1/rooms/r", "carol").body["phase"] == "ready"; }));
  // Ready for at least a millisecond, so that the curve shows it.
  EXPECT_TRUE(eventually([&] {
    auto r = http.get("/v1/rooms/r/analytics", "carol");
    for (auto& x : r.body["buckets"])
      if (x["readiness"].is_object() && x["readiness"]["max"].get<double>() > 0.89)
        return true;
    return false;
  }));
  EXPECT_EQ(http.del("/v1/sessions/" + b, "bob").status, 204u);
  EXPECT_EQ(http.del("/v1/sessions/" + a, "alice").status, 204u);
  EXPECT_TRUE(eventually([&] { return http.get("/v1/rooms/r", "carol").body["phase"] == "empty"; }));
  return read(http);
}

void expect_script(const figures& f) {
  EXPECT_EQ(f.joins, 2);
  EXPECT_EQ(f.leaves, 2);
  EXPECT_EQ(f.quickly, 2) << "both left within drop_off_ms";
  EXPECT_EQ(f.before_ready, 0) << "both saw the room ready";
  EXPECT_EQ(f.stay["n"], 2);
  ASSERT_TRUE(f.episode.is_object());
  EXPECT_TRUE(f.episode["started_at"].is_number());
  EXPECT_TRUE(f.episode["ready_at"].is_number());
  EXPECT_TRUE(f.episode["ended_at"].is_number());
  EXPECT_TRUE(f.episode["cooling_at"].is_number()) << "bob's leave: 0.45, below 0.6 - 0.1";
  EXPECT_EQ(f.episode["at_cooling"]["present"], 1);
  EXPECT_NEAR(f.episode["at_cooling"]["readiness"].get<double>(), 0.45, 1e-9);
  EXPECT_GE(f.episode["time_to_ready_ms"].get<int64_t>(), 0);
  EXPECT_EQ(f.episode["at_ready"]["present"], 2);
  EXPECT_NEAR(f.episode["at_ready"]["readiness"].get<double>(), 0.9, 1e-9);
}

} // namespace

// Verifies the JSON shape of a room's analytics and its counts.
TEST(AnalyticsIntegrationTest, ShapeAndCounts) {
  node_process node{args()};
  http_client http{node.port()};
  auto started = now_ms();
  auto f = play(http);
  expect_script(f);
  auto r = http.get("/v1/rooms/r/analytics?bucket_ms=2000", "carol");
  ASSERT_EQ(r.status, 200u) << r.raw;
  auto& j = r.body;
  for (auto key : {"room_id", "now", "since", "bucket_ms", "base_bucket_ms", "kept_from",
                   "revision", "phase", "readiness", "buckets", "stay_ms", "drop_off",
                   "attention_decay", "episodes", "intents"})
    EXPECT_TRUE(j.contains(key)) << key;
  EXPECT_TRUE(j["intents"]["delivered_share"].is_null()) << "no intent into the room";
  EXPECT_EQ(j["room_id"], "r");
  EXPECT_EQ(j["bucket_ms"], 2000);
  EXPECT_EQ(j["base_bucket_ms"], 1000);
  EXPECT_EQ(j["phase"], "empty");
  EXPECT_EQ(j["drop_off"]["quickly_ms"], 600000);
  EXPECT_EQ(j["attention_decay"]["to_idle"]["n"], 0);
  EXPECT_TRUE(j["attention_decay"]["to_idle"]["p50"].is_null());
  EXPECT_TRUE(j["attention_decay"]["after_media"].contains("window_ms"));
  ASSERT_FALSE(j["buckets"].empty());
  double max_readiness = 0;
  for (auto& b : j["buckets"]) {
    EXPECT_EQ(b["t"].get<int64_t>() % 2000, 0);
    EXPECT_GE(b["t"].get<int64_t>(), started - 2000);
    double share = 0;
    for (auto p : {"empty", "gathering", "ready", "cooling"})
      share += b["phase_share"][p].get<double>();
    if (b["span_ms"].get<int64_t>() > 0) {
      EXPECT_NEAR(share, 1.0, 1e-9) << b.dump();
    }
    if (!b["readiness"].is_null())
      max_readiness = std::max(max_readiness, b["readiness"]["max"].get<double>());
    for (auto key : {"present_ms", "phase_ms", "joins", "leaves", "drop_off",
                     "attention_decay"})
      EXPECT_TRUE(b.contains(key)) << key;
  }
  EXPECT_NEAR(max_readiness, 0.9, 1e-9);
  // since after everything: no buckets, no episode.
  auto later = http.get("/v1/rooms/r/analytics?since=" + std::to_string(now_ms() + 10000),
                        "carol");
  ASSERT_EQ(later.status, 200u);
  EXPECT_TRUE(later.body["buckets"].empty());
  EXPECT_TRUE(later.body["episodes"].empty());
  // A room that never held anything answers with no figures.
  auto none = http.get("/v1/rooms/nobody-here/analytics", "carol");
  ASSERT_EQ(none.status, 200u) << none.raw;
  EXPECT_TRUE(none.body["buckets"].empty());
  EXPECT_EQ(none.body["stay_ms"]["n"], 0);
}

// Verifies bad parameters are answered 400 invalid_field with a message naming
// the parameter, a wrong method 405, a bad room id 400 invalid_id.
TEST(AnalyticsIntegrationTest, BadParameters) {
  node_process node{args()};
  http_client http{node.port()};
  struct row {
    std::string query;
    std::string message; // a part of it
  };
  for (auto& r : std::vector<row>{{"since=soon", "since must be an integer"},
                                  {"since=-1", "since must be"},
                                  {"bucket_ms=abc", "bucket_ms must be an integer"},
                                  {"bucket_ms=0", "positive multiple of 1000"},
                                  {"bucket_ms=1500", "positive multiple of 1000"},
                                  {"bucket_ms=-1000", "positive multiple of 1000"},
                                  {"bucket_ms=1441000", "at most 1440000"},
                                  {"bucket_ms=", "bucket_ms must be an integer"}}) {
    auto res = http.get("/v1/rooms/r/analytics?" + r.query, "carol");
    EXPECT_EQ(res.status, 400u) << r.query << ": " << res.raw;
    EXPECT_EQ(res.body["error"]["code"], "invalid_field") << r.query;
    EXPECT_NE(res.body["error"]["message"].get<std::string>().find(r.message),
              std::string::npos)
      << r.query << ": " << res.raw;
  }
  EXPECT_EQ(http.get("/v1/rooms/r/analytics?bucket_ms=1440000", "carol").status, 200u);
  EXPECT_EQ(http.post("/v1/rooms/r/analytics", json::object(), "carol").status, 405u);
  auto bad_id = http.get("/v1/rooms/bad%20id/analytics", "carol");
  EXPECT_EQ(bad_id.status, 400u) << bad_id.raw;
}

// Verifies the figures are the same after a SIGTERM restart and after a SIGKILL
// once the writer caught up.
TEST(AnalyticsIntegrationTest, SurviveRestartAndKill) {
  node_process node{args()};
  figures before;
  {
    http_client http{node.port()};
    before = play(http);
    expect_script(before);
  }
  ASSERT_EQ(node.stop(), 0) << node.log();
  node.restart();
  {
    http_client http{node.port()};
    auto after = read(http);
    expect_script(after);
    EXPECT_EQ(after.stay, before.stay);
    EXPECT_EQ(after.episode, before.episode);
    EXPECT_TRUE(eventually([&] { return metric(http, "presence_storage_pending") == 0; }));
  }
  node.kill();
  node.restart();
  http_client http{node.port()};
  auto after = read(http);
  expect_script(after);
  EXPECT_EQ(after.stay, before.stay);
  EXPECT_EQ(after.episode, before.episode);
}

namespace {

constexpr const char* secret = "analytics-test-secret-0123456789";

std::string token_of(const std::string& user,
                     presence::gateway::role r = presence::gateway::role::user) {
  presence::config::auth_section cfg;
  cfg.mode = "jwt";
  cfg.secret = secret;
  auto now_s = std::chrono::duration_cast<std::chrono::seconds>(
                 std::chrono::system_clock::now().time_since_epoch())
                 .count();
  return presence::gateway::authenticator{cfg}.issue(user, r, now_s, 3600);
}

http_result call(node_process& n, http::verb v, const std::string& target,
                 const json& body, const std::string& user) {
  http_client http{n.port()};
  return http.request(v, target, body.is_null() ? std::string{} : body.dump(), {},
                      token_of(user));
}

std::vector<std::string> cluster_args(const std::string& id,
                                      std::vector<std::string> more = {}) {
  auto out = args();
  out.insert(out.end(), {"--node.id=" + id, "--auth.mode=jwt",
                         std::string{"--auth.secret="} + secret,
                         "--cluster.failure_timeout_ms=1500"});
  out.insert(out.end(), more.begin(), more.end());
  return out;
}

} // namespace

// Verifies the analytics survive the loss of the room's owner: two users on
// the other nodes make the room ready, the owner is SIGKILLed once replicas
// are sent, and a survivor reports the same joins and episode from the
// promoted replica.
TEST(AnalyticsIntegrationTest, SurviveTheOwnersDeath) {
  node_process a{cluster_args("a")};
  auto seed = "--node.seeds=127.0.0.1:" + std::to_string(a.cluster_port());
  node_process b{cluster_args("b", {seed})};
  node_process c{cluster_args("c", {seed})};
  std::map<std::string, node_process*> by_id{{"a", &a}, {"b", &b}, {"c", &c}};
  // Every node holds the view of three (epoch 3) before the traffic starts.
  ASSERT_TRUE(eventually(
    [&] {
      for (auto& [id, p] : by_id) {
        http_client http{p->port()};
        auto r = http.request(http::verb::get, "/v1/cluster", {}, {},
                              token_of("operator", presence::gateway::role::admin));
        if (r.status != 200u || r.body["epoch"] != 3)
          return false;
      }
      return true;
    },
    std::chrono::seconds{15}));
  auto owner_id = presence::cluster::ring{{"a", "b", "c"}}.owner("room:r");
  std::vector<node_process*> survivors;
  for (auto& [id, p] : by_id)
    if (id != owner_id)
      survivors.push_back(p);
  auto& s1 = *survivors[0];
  auto& s2 = *survivors[1];
  ASSERT_EQ(call(s1, http::verb::post, "/v1/sessions", {{"rooms", {"r"}}}, "alice").status,
            201u);
  ASSERT_EQ(call(s2, http::verb::post, "/v1/sessions", {{"rooms", {"r"}}}, "bob").status,
            201u);
  json before;
  ASSERT_TRUE(eventually([&] {
    before = call(s1, http::verb::get, "/v1/rooms/r/analytics", nullptr, "carol").body;
    return before.contains("episodes") && before["episodes"].size() == 1u
           && before["episodes"][0]["ready_at"].is_number();
  })) << before.dump();
  // Replicas are streamed every 50 ms: sent once no node has any left to send.
  ASSERT_TRUE(eventually([&] {
    for (auto& [id, p] : by_id) {
      http_client http{p->port()};
      if (metric(http, "presence_replication_pending") != 0)
        return false;
    }
    return true;
  }));
  by_id[owner_id]->kill();
  json after;
  bool same = eventually(
    [&] {
      auto r = call(s1, http::verb::get, "/v1/rooms/r/analytics", nullptr, "carol");
      after = r.body;
      if (r.status != 200u || !after.contains("episodes") || after["episodes"].empty())
        return false;
      int64_t joins = 0;
      for (auto& x : after["buckets"])
        joins += x["joins"].get<int64_t>();
      return joins == 2 && after["episodes"][0]["ready_at"] == before["episodes"][0]["ready_at"];
    },
    std::chrono::seconds{15});
  EXPECT_TRUE(same) << "before: " << before.dump() << "\nafter: " << after.dump();
  EXPECT_EQ(after["episodes"][0]["at_ready"], before["episodes"][0]["at_ready"]);
  EXPECT_EQ(after["episodes"][0]["started_at"], before["episodes"][0]["started_at"]);
}

// Verifies the start_when rule over HTTP and WebSocket: bad rules are answered
// 400 with the field named, a guest 403; a rule of two active visible members
// held for 300 ms reaches a subscribed socket as `room {event: "threshold",
// holding: true}` no earlier than 300 ms after the second join, and `holding:
// false` when a member leaves; the room view and the analytics show the rule.
TEST(AnalyticsIntegrationTest, StartWhenThresholdOverWebSocket) {
  node_process node{args()};
  http_client http{node.port()};
  struct bad_rule {
    json body;
    std::string message; // a part of it
  };
  for (auto& b : std::vector<bad_rule>{
         {json::object(), "needs"},
         {{{"for_ms", 100}}, "needs"},
         {{{"readiness_at_least", 1.5}}, "readiness_at_least"},
         {{{"readiness_at_least", 0}}, "readiness_at_least"},
         {{{"readiness_at_least", "high"}}, "readiness_at_least"},
         {{{"active_visible_members_at_least", 0}}, "active_visible_members_at_least"},
         {{{"active_visible_members_at_least", 2.5}}, "active_visible_members_at_least"},
         {{{"active_visible_members_at_least", 2}, {"for_ms", -1}}, "for_ms"},
         {{{"active_visible_members_at_least", 2}, {"for_ms", 3600001}}, "for_ms"},
         {{{"active_visible_members_at_least", 2}, {"hold_ms", 10}}, "hold_ms"}}) {
    auto r = http.post("/v1/rooms/r/start_when", b.body, "carol");
    EXPECT_EQ(r.status, 400u) << b.body.dump() << ": " << r.raw;
    EXPECT_NE(r.raw.find(b.message), std::string::npos) << b.body.dump() << ": " << r.raw;
  }
  auto guest = http.post("/v1/guests", json::object(), "");
  ASSERT_EQ(guest.status, 201u) << guest.raw;
  auto as_guest = http.request("POST", "/v1/rooms/r/start_when",
                               R"({"active_visible_members_at_least": 2})", "",
                               guest.body["token"].get<std::string>());
  EXPECT_EQ(as_guest.status, 403u) << as_guest.raw;
  EXPECT_EQ(http.get("/v1/rooms/r/start_when", "carol").status, 405u);

  auto set = http.post("/v1/rooms/r/start_when",
                       {{"active_visible_members_at_least", 2}, {"for_ms", 300}}, "carol");
  ASSERT_EQ(set.status, 200u) << set.raw;
  EXPECT_EQ(set.body["start_when"]["active_visible_members_at_least"], 2);
  EXPECT_EQ(set.body["start_when"]["for_ms"], 300);
  EXPECT_EQ(set.body["threshold_holding"], false);

  ws_client ws{node.port(), "carol"};
  ws.send({{"op", "hello"}});
  ASSERT_TRUE(ws.read_op("welcome"));
  ws.send({{"op", "subscribe"}, {"rooms", {"r"}}});
  ASSERT_TRUE(ws.read_op("subscribed"));
  auto a = open_in_room(http, "alice");
  // Bob's session opens (server_time, the node's clock) before his join makes
  // two active members: the rule holds no earlier than 300 ms after that.
  auto opened = http.post("/v1/sessions", {{"rooms", {"r"}}}, "bob");
  ASSERT_EQ(opened.status, 201u) << opened.raw;
  auto b = opened.body.value("session_id", "");
  auto joined_at = opened.body["server_time"].get<int64_t>();
  // The threshold event, skipping the joins before it.
  auto read_threshold = [&]() -> std::optional<json> {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds{10};
    while (std::chrono::steady_clock::now() < deadline) {
      auto f = ws.read_op("room", std::chrono::seconds{10});
      if (!f)
        return std::nullopt;
      if ((*f)["event"] == "threshold")
        return f;
    }
    return std::nullopt;
  };
  auto up = read_threshold();
  ASSERT_TRUE(up) << node.log();
  EXPECT_EQ((*up)["room_id"], "r");
  EXPECT_EQ((*up)["holding"], true);
  EXPECT_GE((*up)["at"].get<int64_t>(), joined_at + 300) << "after the debounce";
  EXPECT_EQ((*up)["counts"]["active"], 2);
  auto view = http.get("/v1/rooms/r", "carol");
  EXPECT_EQ(view.body["threshold_holding"], true) << view.raw;
  auto an = http.get("/v1/rooms/r/analytics", "carol");
  EXPECT_EQ(an.body["start_when"]["active_visible_members_at_least"], 2) << an.raw;
  EXPECT_EQ(an.body["threshold_holding"], true);
  EXPECT_NEAR(an.body["thresholds"]["ready"].get<double>(), 0.6, 1e-9);
  EXPECT_NEAR(an.body["thresholds"]["cooling_below"].get<double>(), 0.5, 1e-9);

  EXPECT_EQ(http.del("/v1/sessions/" + b, "bob").status, 204u);
  auto down = read_threshold();
  ASSERT_TRUE(down) << node.log();
  EXPECT_EQ((*down)["holding"], false);
  EXPECT_EQ((*down)["counts"]["active"], 1);
  EXPECT_EQ(http.del("/v1/sessions/" + a, "alice").status, 204u);
  // The rule is durable: the same after a SIGTERM restart; then cleared.
  ASSERT_EQ(node.stop(), 0) << node.log();
  node.restart();
  http_client again{node.port()};
  auto kept = again.get("/v1/rooms/r", "carol");
  ASSERT_EQ(kept.status, 200u) << kept.raw;
  EXPECT_EQ(kept.body["start_when"]["active_visible_members_at_least"], 2) << kept.raw;
  EXPECT_EQ(kept.body["threshold_holding"], false);
  auto cleared = again.del("/v1/rooms/r/start_when", "carol");
  ASSERT_EQ(cleared.status, 200u) << cleared.raw;
  EXPECT_TRUE(cleared.body["start_when"].is_null());
}

// Verifies per-user intent outcomes over HTTP: alice's intent to bob,
// delivered once bob is active and accepted by him, shows in alice's
// `outgoing` and bob's `incoming`; another user's read is 403; /metrics counts
// the answer time.
TEST(AnalyticsIntegrationTest, UserIntentOutcomes) {
  node_process node{args()};
  http_client http{node.port()};
  auto before = metric(http, "presence_intent_answer_seconds_count{status=\"accepted\"}");
  EXPECT_EQ(before, 0) << "the series is there from the start";
  auto empty = http.get("/v1/users/alice/intents/analytics", "alice");
  ASSERT_EQ(empty.status, 200u) << empty.raw;
  EXPECT_EQ(empty.body["outgoing"]["final"]["accepted"], 0);
  EXPECT_TRUE(empty.body["outgoing"]["delivered_share"].is_null());
  auto s = http.post("/v1/sessions", json::object(), "bob");
  ASSERT_EQ(s.status, 201u) << s.raw;
  auto created = http.post("/v1/intents", {{"to_user", "bob"}}, "alice");
  ASSERT_EQ(created.status, 201u) << created.raw;
  auto id = created.body["intent_id"].get<std::string>();
  ASSERT_TRUE(eventually(
    [&] { return http.get("/v1/intents/" + id, "alice").body["status"] == "delivered"; }));
  auto accepted = http.post("/v1/intents/" + id + "/accept", json::object(), "bob");
  ASSERT_EQ(accepted.status, 200u) << accepted.raw;
  json mine;
  ASSERT_TRUE(eventually([&] {
    mine = http.get("/v1/users/alice/intents/analytics", "alice").body;
    return mine["outgoing"]["final"]["accepted"] == 1;
  })) << mine.dump();
  EXPECT_EQ(mine["user_id"], "alice");
  EXPECT_EQ(mine["outgoing"]["delivered_share"], 1.0);
  EXPECT_EQ(mine["outgoing"]["to_delivered_ms"]["n"], 1);
  EXPECT_EQ(mine["outgoing"]["to_answer_ms"]["n"], 1);
  EXPECT_GE(mine["outgoing"]["to_answer_ms"]["p50"].get<int64_t>(), 0);
  EXPECT_EQ(mine["incoming"]["final"]["accepted"], 0);
  json bobs;
  ASSERT_TRUE(eventually([&] {
    bobs = http.get("/v1/users/bob/intents/analytics", "bob").body;
    return bobs["incoming"]["final"]["accepted"] == 1;
  })) << bobs.dump();
  auto other = http.get("/v1/users/alice/intents/analytics", "bob");
  EXPECT_EQ(other.status, 403u) << other.raw;
  EXPECT_EQ(other.body["error"]["code"], "forbidden");
  EXPECT_EQ(metric(http, "presence_intent_answer_seconds_count{status=\"accepted\"}"), 1);
  // Durable: the same figures after a SIGTERM restart.
  ASSERT_EQ(node.stop(), 0) << node.log();
  node.restart();
  http_client again{node.port()};
  auto kept = again.get("/v1/users/alice/intents/analytics", "alice");
  ASSERT_EQ(kept.status, 200u) << kept.raw;
  EXPECT_EQ(kept.body["outgoing"], mine["outgoing"]) << kept.raw;
}
