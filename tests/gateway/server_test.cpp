// Verifies the gateway in one process, against a node whose placement the test
// controls (tests/support/fake_placement.hpp): an owner that cannot be reached
// and an entity that lives "on another node" behind a stub are made on purpose,
// which real processes show only under faults. Real threads and sockets on
// 127.0.0.1 (port 0); every wait has a deadline, nothing asserts on timing.
#include "gateway/server.hpp"

#include "actors/clock.hpp"
#include "actors/messages.hpp"
#include "actors/system_config.hpp"
#include "config/settings.hpp"
#include "integration/client.hpp"
#include "integration/polling.hpp"
#include "support/fake_placement.hpp"

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/send.hpp>

#include <gtest/gtest.h>

#include <thread>

#include <algorithm>
#include <memory>
#include <set>
#include <string>

using namespace presence;
using namespace presence::testing;

namespace {

config::settings test_settings(int64_t worker_threads = 2) {
  config::settings s;
  s.node.http_port = 0;
  s.node.cluster_port = 0;
  s.node.worker_threads = worker_threads;
  s.storage.enabled = false;
  auto errors = config::validate(s);
  EXPECT_TRUE(errors.empty());
  return s;
}

// A node and its gateway in this process, stopped as presenced stops them.
// `scheduler_threads` > 0 overrides the workers the scheduler runs (what
// `node.worker_threads = 0` picks on a machine with that many cores).
struct live_gateway {
  explicit live_gateway(config::settings settings = test_settings(),
                        size_t scheduler_threads = 0, bool listen = true)
    : s(std::move(settings)) {
    actors::configure(cfg, s);
    if (scheduler_threads > 0)
      cfg.set("scheduler.max-threads", scheduler_threads);
    sys = std::make_unique<caf::actor_system>(cfg);
    node = std::make_unique<actors::node>(*sys, s, actors::clock::system_now_ms());
    where = std::make_shared<fake_placement>(*sys);
    node->router().set_placement(where);
    node->start();
    server = std::make_unique<gateway::server>(*node, s);
    if (listen)
      port = server->start();
  }

  ~live_gateway() {
    server->stop();
    where->stop();
    node->shutdown();
    sys->await_all_actors_done();
    server.reset();
    node.reset();
    sys.reset();
  }

  config::settings s;
  caf::actor_system_config cfg;
  std::unique_ptr<caf::actor_system> sys;
  std::unique_ptr<actors::node> node;
  std::shared_ptr<fake_placement> where;
  std::unique_ptr<gateway::server> server;
  uint16_t port = 0;
};

// A socket of `user` that said hello and got its welcome.
std::unique_ptr<ws_client> welcomed(uint16_t port, const std::string& user,
                                    const json& hello = {{"op", "hello"}}) {
  auto ws = std::make_unique<ws_client>(port, user);
  ws->send(hello);
  auto w = ws->read_op("welcome");
  EXPECT_TRUE(w) << "no welcome for " << user;
  return ws;
}

std::set<std::string> dumps(const json& list) {
  std::set<std::string> out;
  for (auto& x : list)
    out.insert(x.dump());
  return out;
}

} // namespace

// Verifies that a subscription naming topics whose owner cannot be reached is
// still answered: `subscribed` with the topics that could be subscribed to,
// then `error unavailable` listing the failed ones; and that the socket goes on
// working.
TEST(GatewayServerTest, SubscriptionToAnUnreachableOwnerIsAnswered) {
  live_gateway g;
  g.where->route("user:ghost", dead_actor(*g.sys));
  g.where->route("room:lost", dead_actor(*g.sys));
  auto ws = welcomed(g.port, "alice");
  ws->send({{"op", "subscribe"}, {"users", {"bob", "ghost"}}, {"rooms", {"lost"}}});
  auto sub = ws->read_op("subscribed");
  ASSERT_TRUE(sub) << "a subscription whose owner cannot be reached was never answered";
  ASSERT_EQ((*sub)["users"].size(), 1u) << sub->dump();
  EXPECT_EQ((*sub)["users"][0]["user_id"], "bob");
  EXPECT_TRUE((*sub)["rooms"].empty()) << sub->dump();
  auto err = ws->read_op("error");
  ASSERT_TRUE(err) << "the failed topics were not named";
  EXPECT_EQ((*err)["code"], "unavailable");
  EXPECT_EQ(dumps((*err)["topics"]),
            (std::set<std::string>{json{{"user", "ghost"}}.dump(),
                                   json{{"room", "lost"}}.dump()}))
    << err->dump();
  // The reachable topic is live: bob's presence reaches the socket.
  http_client http{g.port};
  ASSERT_EQ(http.post("/v1/sessions", {{"device", "web"}}, "bob").status, 201u);
  auto e = ws->read_op("presence");
  ASSERT_TRUE(e);
  EXPECT_EQ((*e)["user_id"], "bob");
}

// Verifies that POST /v1/sessions with `rooms` answers a failed join with the
// join's error (not 201) and ends the session it opened: no session stays on
// the node, the user is offline again and has left the room it did join.
TEST(GatewayServerTest, SessionWhoseRoomCannotBeJoinedIsRefusedAndEnded) {
  live_gateway g;
  g.where->route("room:lost", dead_actor(*g.sys));
  http_client http{g.port};
  auto r = http.post("/v1/sessions", {{"device", "web"}, {"rooms", {"lobby", "lost"}}},
                     "alice");
  EXPECT_EQ(r.status, 503u) << r.raw;
  EXPECT_EQ(r.body["error"]["code"], "unavailable") << r.raw;
  EXPECT_TRUE(eventually([&] { return g.node->router().local_sessions().empty(); }))
    << "the session opened for the request is still there";
  std::string state;
  EXPECT_TRUE(eventually([&] {
    auto p = http.get("/v1/users/alice/presence", "bob");
    state = p.body.value("state", "");
    return state == "offline" && p.body["sessions"].empty();
  })) << "alice is " << state;
  json lobby;
  EXPECT_TRUE(eventually([&] {
    lobby = http.get("/v1/rooms/lobby", "bob").body;
    return lobby["member_count"] == 0;
  })) << lobby.dump();
  // Joins that succeed still answer 201.
  auto ok = http.post("/v1/sessions", {{"device", "web"}, {"rooms", {"lobby"}}}, "alice");
  EXPECT_EQ(ok.status, 201u) << ok.raw;
}

// Verifies that the event fan-out has one shard per worker the scheduler really
// runs, not per `node.worker_threads` as configured: also when that is 0
// (automatic), where the scheduler picks the count.
TEST(GatewayServerTest, FanoutHasAShardPerSchedulerWorker) {
  {
    live_gateway g{test_settings(3), 0, false};
    ASSERT_EQ(g.sys->scheduler().num_workers(), 3u);
    EXPECT_EQ(g.server->fanout_shards(), 3u);
  }
  {
    // Automatic on a machine of 5 cores: the configuration still says 0.
    live_gateway g{test_settings(0), 5, false};
    ASSERT_EQ(g.sys->scheduler().num_workers(), 5u);
    EXPECT_EQ(g.server->fanout_shards(), 5u);
  }
  {
    // Automatic on this machine.
    live_gateway g{test_settings(0), 0, false};
    EXPECT_EQ(g.server->fanout_shards(),
              std::max<size_t>(2, g.sys->scheduler().num_workers()));
  }
}

// Verifies that a socket whose session lives on another node (reached through
// a stub, which never goes down) watches the session itself: when the session
// ends there, the socket gets `session_not_found` and accepts a new hello.
TEST(GatewayServerTest, SocketWatchesTheSessionBehindAStub) {
  live_gateway g;
  http_client http{g.port};
  auto opened = http.post("/v1/sessions", {{"device", "phone"}}, "alice");
  ASSERT_EQ(opened.status, 201u) << opened.raw;
  auto sid = opened.body["session_id"].get<std::string>();
  auto real = g.node->router().session(sid);
  ASSERT_TRUE(real);
  // From now on this node reaches the session through a stub, as a node
  // reaches a session that lives on another.
  g.where->route("session:" + sid, real);
  ASSERT_NE(g.node->router().session(sid), real);
  auto ws = welcomed(g.port, "alice",
                     {{"op", "hello"},
                      {"session_id", sid},
                      {"resume_token", opened.body["resume_token"]}});
  // A signal through the stub: its ack comes after the socket's look-up of
  // the session (both pass the stub in order, and both answers come back from
  // the session in order), so the socket watches by now.
  ws->send({{"op", "signal"}, {"signal", "background"}});
  ASSERT_TRUE(ws->read_op("ack"));
  // The session ends on "its node"; the stub stays.
  caf::anon_send(real, actors::leave_atom::value);
  auto e = ws->read_op("error");
  ASSERT_TRUE(e) << "the socket never noticed that its session ended";
  EXPECT_EQ((*e)["code"], "session_not_found");
  ws->send({{"op", "hello"}});
  auto again = ws->read_op("welcome");
  ASSERT_TRUE(again) << "a new hello was refused";
  EXPECT_EQ((*again)["resumed"], false);
}

// Verifies a socket whose session's copy goes down without ending (its node
// stops or fails; the session lives on, moved or recovered elsewhere) keeps
// the session: it finds the session again through the stub and watches the
// new copy, and only a real end is told as one. (The socket told
// `session_not_found` whenever the watched copy went down: a tab that
// resumed on another node while its session's node stopped in a rolling
// restart was refused, and opened a new session.)
TEST(GatewayServerTest, SocketKeepsItsSessionWhenTheCopyItWatchesGoesDown) {
  live_gateway g;
  http_client http{g.port};
  auto opened = http.post("/v1/sessions", {{"device", "phone"}}, "alice");
  ASSERT_EQ(opened.status, 201u) << opened.raw;
  auto sid = opened.body["session_id"].get<std::string>();
  auto first = g.node->router().session(sid);
  // Where the session lives later: another session's actor stands for it.
  auto other = http.post("/v1/sessions", {{"device", "laptop"}}, "alice");
  ASSERT_EQ(other.status, 201u) << other.raw;
  auto second = g.node->router().session(other.body["session_id"].get<std::string>());
  ASSERT_TRUE(first && second);
  // The stub reaches the session's current copy through a relay the test moves.
  auto current = std::make_shared<caf::actor>(first);
  auto relay = g.sys->spawn(
    [](caf::event_based_actor* self, std::shared_ptr<caf::actor> to) -> caf::behavior {
      self->set_default_handler(
        [to](caf::scheduled_actor* s, caf::message_view& x) -> caf::result<caf::message> {
          return s->delegate(*to, x.move_content_to_message());
        });
      return {[](actors::route_atom, actors::route_atom) {}};
    },
    current);
  struct stop_relay {
    caf::actor a;
    ~stop_relay() { caf::anon_send_exit(a, caf::exit_reason::user_shutdown); }
  } stop{relay};
  g.where->route("session:" + sid, relay);
  auto ws = welcomed(g.port, "alice",
                     {{"op", "hello"},
                      {"session_id", sid},
                      {"resume_token", opened.body["resume_token"]}});
  ws->send({{"op", "signal"}, {"signal", "background"}});
  ASSERT_TRUE(ws->read_op("ack")); // the socket watches `first` by now
  // The session moves on, and the copy the socket watched goes down with its node.
  *current = second;
  caf::anon_send_exit(first, caf::exit_reason::user_shutdown);
  // (A false end is told at once; the look-up again takes a quarter second.)
  std::this_thread::sleep_for(std::chrono::milliseconds{600});
  ws->send({{"op", "signal"}, {"signal", "background"}});
  auto next = ws->read(std::chrono::seconds{5});
  ASSERT_TRUE(next);
  EXPECT_EQ((*next)["op"], "ack") << "told " << next->dump();
  // A real end of the copy it watches now is told.
  caf::anon_send(second, actors::leave_atom::value);
  auto e = ws->read_op("error");
  ASSERT_TRUE(e) << "the socket no longer watches its session";
  EXPECT_EQ((*e)["code"], "session_not_found");
}

// Verifies one session, one socket when the session lives on another node
// (reached through a stub, as by two gateways of a cluster): a second socket
// resuming it takes it over, the first is told (`session_taken_over`, close
// 4409) through the session's own message to its socket, and the session lives
// on with the second, also after the first one is gone.
TEST(GatewayServerTest, ResumeBehindAStubTakesTheSessionOver) {
  live_gateway g;
  http_client http{g.port};
  auto opened = http.post("/v1/sessions", {{"device", "phone"}}, "alice");
  ASSERT_EQ(opened.status, 201u) << opened.raw;
  auto sid = opened.body["session_id"].get<std::string>();
  auto real = g.node->router().session(sid);
  ASSERT_TRUE(real);
  g.where->route("session:" + sid, real);
  json resume = {{"op", "hello"}, {"session_id", sid}, {"resume_token", opened.body["resume_token"]}};
  auto a = welcomed(g.port, "alice", resume);
  a->send({{"op", "signal"}, {"signal", "background"}});
  ASSERT_TRUE(a->read_op("ack")) << "the first socket does not hold the session";
  auto b = welcomed(g.port, "alice", resume);
  auto e = a->read_op("error");
  ASSERT_TRUE(e) << "the first socket was not told";
  EXPECT_EQ((*e)["code"], "session_taken_over");
  while (a->read(std::chrono::seconds{3})) {
  }
  EXPECT_EQ(a->close_code(), 4409u);
  a.reset();
  b->send({{"op", "signal"}, {"signal", "active"}});
  auto ack = b->read_op("ack");
  ASSERT_TRUE(ack) << "the second socket lost the session";
  EXPECT_EQ((*ack)["state"], "active");
  EXPECT_EQ(http.get("/v1/sessions/" + sid).status, 200u);
}
