// Cluster figures for 3 nodes on this machine, printed (asserts nothing):
//   1. signals/s through the gateways when the sessions live on another node
//      (remote), against the same load on the sessions' own node (local);
//   2. time from a signal to the presence event at a watcher on the sessions'
//      node and at a watcher on another node (the remote hop's cost);
//   3. after SIGKILL of a node, time until the survivors' view drops it and
//      until the users it owned are served again by their new owners.
// Client and nodes share the machine's cores.
//
//   cluster_bench [--sessions N] [--seconds S] [--connections K] [--changes C]
#include "cluster/ring.hpp"
#include "launch.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <thread>

namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
namespace net = boost::asio;
using tcp = net::ip::tcp;
using json = nlohmann::json;
using namespace presence::bench;

namespace {

double ms_since(clk::time_point t) {
  return std::chrono::duration<double, std::milli>(clk::now() - t).count();
}

class http_conn {
public:
  explicit http_conn(uint16_t port) : stream_(ioc_) {
    stream_.connect(tcp::endpoint{net::ip::make_address("127.0.0.1"), port});
  }
  std::pair<unsigned, json> call(http::verb v, const std::string& target,
                                 const std::string& user, const std::string& body = {}) {
    http::request<http::string_body> req{v, target, 11};
    req.set(http::field::host, "127.0.0.1");
    req.set("X-User", user);
    if (user == "op")
      req.set("X-Role", "admin");
    req.body() = body;
    req.prepare_payload();
    http::write(stream_, req);
    beast::flat_buffer buf;
    http::response<http::string_body> res;
    http::read(stream_, buf, res);
    return {res.result_int(), json::parse(res.body(), nullptr, false)};
  }

private:
  net::io_context ioc_;
  beast::tcp_stream stream_;
};

// A subscribed WebSocket whose reader thread stamps every presence event.
class watcher {
public:
  watcher(uint16_t port, const std::vector<std::string>& users) : ws_(ioc_) {
    beast::get_lowest_layer(ws_).connect(
      tcp::endpoint{net::ip::make_address("127.0.0.1"), port});
    ws_.set_option(websocket::stream_base::decorator(
      [](websocket::request_type& r) { r.set("X-User", "watcher"); }));
    ws_.handshake("127.0.0.1", "/v1/ws");
    ws_.write(net::buffer(json{{"op", "hello"}}.dump()));
    ws_.write(net::buffer(json{{"op", "subscribe"}, {"users", users}}.dump()));
    reader_ = std::thread{[this] {
      beast::flat_buffer buf;
      beast::error_code ec;
      while (!ec) {
        ws_.read(buf, ec);
        if (ec)
          break;
        auto j = json::parse(beast::buffers_to_string(buf.data()), nullptr, false);
        buf.clear();
        if (j.is_object() && j.value("op", "") == "presence") {
          std::lock_guard<std::mutex> guard{mtx_};
          seen_[j["user_id"].get<std::string>() + "/" + j["state"].get<std::string>()] =
            clk::now();
        } else if (j.is_object() && j.value("op", "") == "subscribed") {
          subscribed_ = true;
        }
      }
    }};
  }
  ~watcher() {
    beast::error_code ec;
    beast::get_lowest_layer(ws_).socket().shutdown(tcp::socket::shutdown_both, ec);
    beast::get_lowest_layer(ws_).socket().close(ec);
    reader_.join();
  }
  bool subscribed() const { return subscribed_.load(); }
  // When `user` was last seen in `state` (after `after`), if it was.
  std::optional<clk::time_point> seen(const std::string& user, const std::string& state,
                                      clk::time_point after) {
    std::lock_guard<std::mutex> guard{mtx_};
    auto i = seen_.find(user + "/" + state);
    if (i == seen_.end() || i->second < after)
      return std::nullopt;
    return i->second;
  }

private:
  net::io_context ioc_;
  websocket::stream<beast::tcp_stream> ws_;
  std::thread reader_;
  std::mutex mtx_;
  std::map<std::string, clk::time_point> seen_; // guarded by mtx_
  std::atomic<bool> subscribed_{false};
};

uint16_t cluster_port(const child& c) {
  auto pos = c.log.find("cluster listening on ");
  auto colon = c.log.find(':', pos + 21);
  return static_cast<uint16_t>(std::stoi(c.log.substr(colon + 1)));
}

double quantile(std::vector<double> xs, double q) {
  if (xs.empty())
    return 0;
  std::sort(xs.begin(), xs.end());
  return xs[std::min(xs.size() - 1, static_cast<size_t>(q * static_cast<double>(xs.size())))];
}

} // namespace

int main(int argc, char** argv) {
  size_t sessions = 2000;
  double seconds = 4;
  size_t changes = 400;
  size_t connections = 8;
  size_t drain_sessions = 100000;
  std::string replication = "2";
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--sessions") == 0)
      sessions = std::strtoull(argv[i + 1], nullptr, 10);
    else if (std::strcmp(argv[i], "--seconds") == 0)
      seconds = std::strtod(argv[i + 1], nullptr);
    else if (std::strcmp(argv[i], "--connections") == 0)
      connections = std::strtoull(argv[i + 1], nullptr, 10);
    else if (std::strcmp(argv[i], "--changes") == 0)
      changes = std::strtoull(argv[i + 1], nullptr, 10);
    else if (std::strcmp(argv[i], "--drain-sessions") == 0)
      drain_sessions = std::strtoull(argv[i + 1], nullptr, 10);
    else if (std::strcmp(argv[i], "--replication-factor") == 0)
      replication = argv[i + 1];
  }
  auto dir = std::filesystem::temp_directory_path() / ("cluster-bench-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  std::vector<std::string> common = {
    "--auth.mode=dev", "--node.http_port=0", "--node.cluster_port=0",
    "--presence.active_window_ms=600000", "--presence.idle_after_ms=1200000",
    "--presence.stale_after_ms=1800000", "--presence.offline_after_ms=2400000",
    "--presence.heartbeat_active_ms=10000", "--cluster.failure_timeout_ms=3000",
    "--limits.signals_per_second=1000000", "--cluster.replication_factor=" + replication};
  auto start_node = [&](const std::string& id, const std::string& seeds) {
    std::vector<std::string> args = {PRESENCED_BINARY, "--node.id=" + id,
                                     "--node.data_dir=" + (dir / id).string()};
    args.insert(args.end(), common.begin(), common.end());
    if (!seeds.empty())
      args.push_back("--node.seeds=" + seeds);
    return spawn(args, "http listening on 127.0.0.1", "] ready");
  };
  auto a = start_node("a", "");
  auto seed = "127.0.0.1:" + std::to_string(cluster_port(a));
  auto b = start_node("b", seed);
  auto c = start_node("c", seed);
  std::printf("== 3 nodes on loopback (a, b, c), %zu sessions opened through a, "
              "cluster.replication_factor %s ==\n",
              sessions, replication.c_str());

  // The sessions live on a, the node their client talks to.
  std::vector<std::string> sids(sessions);
  {
    http_conn conn{a.port};
    for (size_t i = 0; i < sessions; ++i)
      sids[i] = conn.call(http::verb::post, "/v1/sessions", "u" + std::to_string(i), "{}")
                  .second["session_id"];
  }

  // 1. Throughput: two client threads, keep-alive connections.
  auto load = [&](uint16_t p1, uint16_t p2) {
    std::atomic<size_t> ok{0};
    auto until = clk::now() + std::chrono::duration<double>(seconds);
    auto worker = [&](uint16_t port, size_t offset) {
      http_conn conn{port};
      for (size_t i = offset; clk::now() < until; i += connections) {
        auto k = i % sessions;
        if (conn.call(http::verb::post, "/v1/sessions/" + sids[k] + "/signal",
                      "u" + std::to_string(k), R"({"signal":"active"})")
              .first == 200)
          ++ok;
      }
    };
    auto t0 = clk::now();
    std::vector<std::thread> threads;
    for (size_t k = 0; k < connections; ++k)
      threads.emplace_back(worker, k % 2 == 0 ? p1 : p2, k);
    for (auto& t : threads)
      t.join();
    return static_cast<double>(ok.load()) / (ms_since(t0) / 1000.0);
  };
  auto remote = load(b.port, c.port);
  auto local = load(a.port, a.port);
  std::printf("signals over HTTP, %zu client connections: %.0f/s through b and c (every "
              "session on a: one remote hop), %.0f/s through a (local)\n",
              connections, remote, local);

  // 2. Latency: a watcher on a (the sessions' node) and one on c, both
  //    subscribed to 50 users; one change at a time through a.
  std::vector<std::string> users;
  for (size_t i = 0; i < std::min<size_t>(50, sessions); ++i)
    users.push_back("u" + std::to_string(i));
  {
    watcher on_a{a.port, users}, on_c{c.port, users};
    while (!on_a.subscribed() || !on_c.subscribed())
      std::this_thread::sleep_for(std::chrono::milliseconds{5});
    std::this_thread::sleep_for(std::chrono::milliseconds{200});
    http_conn conn{a.port};
    std::vector<double> lat_a, lat_c;
    for (size_t n = 0; n < changes; ++n) {
      auto k = n % users.size();
      auto state = (n / users.size()) % 2 == 0 ? "away" : "active";
      auto signal = (n / users.size()) % 2 == 0 ? "background" : "active";
      auto sent = clk::now();
      conn.call(http::verb::post, "/v1/sessions/" + sids[k] + "/signal", users[k],
                json{{"signal", signal}}.dump());
      std::optional<clk::time_point> ta, tc;
      while ((!ta || !tc) && ms_since(sent) < 2000) {
        ta = ta ? ta : on_a.seen(users[k], state, sent);
        tc = tc ? tc : on_c.seen(users[k], state, sent);
        if (!ta || !tc)
          std::this_thread::sleep_for(std::chrono::microseconds{50});
      }
      if (ta)
        lat_a.push_back(std::chrono::duration<double, std::milli>(*ta - sent).count());
      if (tc)
        lat_c.push_back(std::chrono::duration<double, std::milli>(*tc - sent).count());
      std::this_thread::sleep_for(std::chrono::milliseconds{5});
    }
    std::printf("signal -> presence event, %zu changes (p50 / p99 ms): watcher on a "
                "(sessions' node) %.2f / %.2f; watcher on c %.2f / %.2f; the hop to "
                "another node adds %.2f ms at p99\n",
                changes, quantile(lat_a, 0.5), quantile(lat_a, 0.99), quantile(lat_c, 0.5),
                quantile(lat_c, 0.99), quantile(lat_c, 0.99) - quantile(lat_a, 0.99));
  }

  // 3. Failover: SIGKILL b; its users are served again once the survivors'
  //    view drops it and its successors promote their replicas.
  presence::cluster::ring ring{{"a", "b", "c"}};
  std::vector<size_t> owned_by_b;
  for (size_t i = 0; i < sessions && owned_by_b.size() < 20; ++i)
    if (ring.owner("user:u" + std::to_string(i)) == "b")
      owned_by_b.push_back(i);
  http_conn conn{a.port};
  kill(b.pid, SIGKILL);
  auto killed = clk::now();
  waitpid(b.pid, nullptr, 0);
  double view_ms = -1, served_ms = -1;
  while (ms_since(killed) < 15000 && (view_ms < 0 || served_ms < 0)) {
    if (view_ms < 0) {
      auto v = conn.call(http::verb::get, "/v1/cluster", "op").second;
      if (v.is_object() && v["nodes"].size() == 2)
        view_ms = ms_since(killed);
    }
    if (served_ms < 0) {
      bool all = true;
      for (auto i : owned_by_b) {
        auto u = conn.call(http::verb::get, "/v1/users/u" + std::to_string(i) + "/presence",
                           "op")
                   .second;
        all = all && u.is_object() && u.value("state", "") != "offline"
              && u["sessions"].size() == 1;
        if (!all)
          break;
      }
      if (all)
        served_ms = ms_since(killed);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds{5});
  }
  std::printf("SIGKILL of b (cluster.failure_timeout_ms = 3000): view without b after "
              "%.0f ms; the %zu sampled users b owned served with their sessions again "
              "after %.0f ms\n",
              view_ms, owned_by_b.size(), served_ms);

  // 4. Drain: a fourth node d joins a and c; its clients open sessions through
  //    it (they live on d), then an operator drains d while a client keeps
  //    signalling a sample of them through a.
  auto d = start_node("d", seed);
  {
    std::vector<std::string> dsids(drain_sessions);
    auto t0 = clk::now();
    std::vector<std::thread> openers;
    for (size_t k = 0; k < 4; ++k)
      openers.emplace_back([&, k] {
        http_conn conn{d.port};
        for (size_t i = k; i < drain_sessions; i += 4)
          dsids[i] = conn.call(http::verb::post, "/v1/sessions", "d" + std::to_string(i), "{}")
                       .second.value("session_id", "");
      });
    for (auto& t : openers)
      t.join();
    auto open_ms = ms_since(t0);
    auto actors_of = [](const json& v, const std::string& id) -> int64_t {
      for (auto& n : v["nodes"])
        if (n.value("id", "") == id)
          return n.value("actors", int64_t{-1});
      return -1;
    };
    http_conn ops{a.port};
    auto before = actors_of(ops.call(http::verb::get, "/v1/cluster", "op").second, "d");
    std::atomic<bool> draining{true};
    std::atomic<size_t> ok{0}, failed{0};
    std::mutex fail_mtx;
    std::string fail_example;
    std::thread client{[&] {
      http_conn conn{a.port};
      for (size_t i = 0; draining.load(); i = (i + 7919) % drain_sessions) {
        auto r = conn.call(http::verb::post, "/v1/sessions/" + dsids[i] + "/signal",
                           "d" + std::to_string(i), R"({"signal":"active"})");
        ++(r.first == 200 ? ok : failed);
        if (r.first != 200) {
          std::lock_guard<std::mutex> guard{fail_mtx};
          fail_example = std::to_string(r.first) + " " + r.second.dump();
        }
      }
    }};
    auto started = clk::now();
    auto accepted = ops.call(http::verb::post, "/v1/cluster/nodes/d/drain", "op").first;
    double drained_ms = -1;
    while (accepted == 202 && ms_since(started) < 120000) {
      if (actors_of(ops.call(http::verb::get, "/v1/cluster", "op").second, "d") == 0) {
        drained_ms = ms_since(started);
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds{20});
    }
    draining = false;
    client.join();
    // Every session is still there, served by a or c.
    size_t found = 0;
    for (size_t i = 0; i < drain_sessions; i += std::max<size_t>(1, drain_sessions / 1000))
      found += ops.call(http::verb::get, "/v1/sessions/" + dsids[i], "d" + std::to_string(i))
                   .first == 200
                 ? 1
                 : 0;
    std::printf("drain of d holding %lld entities (%zu sessions opened through it in "
                "%.0f ms): all moved to a and c in %.0f ms; meanwhile %zu signals through a "
                "answered 200, %zu did not; %zu of %zu sampled sessions found afterwards\n",
                static_cast<long long>(before), drain_sessions, open_ms, drained_ms, ok.load(),
                failed.load(), found,
                (drain_sessions + std::max<size_t>(1, drain_sessions / 1000) - 1)
                  / std::max<size_t>(1, drain_sessions / 1000));
    if (!fail_example.empty())
      std::printf("  a signal that failed: %s\n", fail_example.c_str());
  }
  stop(d);
  stop(a);
  stop(c);
  close(b.out);
  std::filesystem::remove_all(dir);
  return 0;
}
