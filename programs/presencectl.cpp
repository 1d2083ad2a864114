// presencectl: operator tooling.
//   presencectl token --secret S --user U [--role R] [--ttl-s N]
//   presencectl --node HOST:PORT [--secret S | --token T | --dev] status
//   presencectl --node HOST:PORT [...] drain NODE [--wait [--wait-s N]]
//   presencectl --node HOST:PORT [...] rebalance
// The cluster commands talk to any node's gateway over HTTP as an admin: with a
// token, one minted from the cluster secret, or (dev mode nodes) X-User/X-Role.
#include "actors/ids.hpp"
#include "gateway/auth.hpp"

#include <CLI/CLI.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <thread>

namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using json = nlohmann::json;

int64_t now_s() {
  return std::chrono::duration_cast<std::chrono::seconds>(
           std::chrono::system_clock::now().time_since_epoch())
    .count();
}

std::string mint(const std::string& secret, const std::string& user,
                 presence::gateway::role r, int64_t ttl_s) {
  presence::config::auth_section cfg;
  cfg.mode = "jwt";
  cfg.secret = secret;
  return presence::gateway::authenticator{cfg}.issue(user, r, now_s(), ttl_s);
}

struct answer {
  unsigned status = 0;
  json body;
  std::string raw;
};

// One request to the gateway at host:port; throws on network errors.
answer call(const std::string& node, http::verb verb, const std::string& target,
            const std::string& token, bool dev) {
  auto colon = node.rfind(':');
  if (colon == std::string::npos)
    throw std::runtime_error("--node must be HOST:PORT, got '" + node + "'");
  net::io_context ioc;
  net::ip::tcp::resolver resolver{ioc};
  beast::tcp_stream stream{ioc};
  stream.expires_after(std::chrono::seconds{10});
  stream.connect(resolver.resolve(node.substr(0, colon), node.substr(colon + 1)));
  http::request<http::string_body> req{verb, target, 11};
  req.set(http::field::host, node);
  if (dev) {
    req.set("X-User", "presencectl");
    req.set("X-Role", "admin");
  } else {
    req.set(http::field::authorization, "Bearer " + token);
  }
  req.prepare_payload();
  http::write(stream, req);
  beast::flat_buffer buf;
  http::response<http::string_body> res;
  http::read(stream, buf, res);
  answer a;
  a.status = res.result_int();
  a.raw = res.body();
  a.body = json::parse(a.raw, nullptr, false);
  return a;
}

int report(const answer& a) {
  if (a.status >= 200 && a.status < 300) {
    std::cout << (a.raw.empty() ? std::string{"accepted"} : a.body.dump(2)) << "\n";
    return 0;
  }
  std::string msg = a.raw;
  if (a.body.is_object() && a.body.contains("error"))
    msg = a.body["error"].value("code", "") + ": " + a.body["error"].value("message", "");
  std::cerr << "presencectl: HTTP " << a.status << ": " << msg << "\n";
  return 1;
}

void print_status(const json& s) {
  std::printf("epoch %llu, leader %s\n",
              static_cast<unsigned long long>(s.value("epoch", uint64_t{0})),
              s.value("leader", std::string{"-"}).c_str());
  std::printf("%-20s %-22s %-22s %-12s %7s %9s\n", "NODE", "ADDRESS", "CLUSTER", "STATUS",
              "SHARE", "ACTORS");
  for (auto& n : s["nodes"])
    std::printf("%-20s %-22s %-22s %-12s %6.1f%% %9lld\n", n.value("id", "").c_str(),
                n.value("address", "").c_str(), n.value("cluster_address", "").c_str(),
                n.value("status", "").c_str(), 100.0 * n.value("share", 0.0),
                static_cast<long long>(n.value("actors", int64_t{-1})));
}

} // namespace

int main(int argc, char** argv) {
  CLI::App app{"presencectl: operate a presence cluster"};
  app.require_subcommand(1);
  std::string node = "127.0.0.1:8080", secret, token;
  bool dev = false;
  app.add_option("--node", node, "Any node's gateway, HOST:PORT (default 127.0.0.1:8080)");
  app.add_option("--secret", secret, "The cluster secret: mints an admin token");
  app.add_option("--token", token, "An admin token");
  app.add_flag("--dev", dev, "The node runs auth.mode = \"dev\" (X-User/X-Role)");

  auto* tok = app.add_subcommand("token", "Print a signed token (JWT HS256)");
  std::string user, role_name = "user";
  int64_t ttl_s = 3600;
  tok->add_option("--secret", secret, "The cluster secret (auth.secret)")->required();
  tok->add_option("--user", user, "The user id (claim sub)")->required();
  tok->add_option("--role", role_name, "user, guest or admin")
    ->check(CLI::IsMember({"user", "guest", "admin"}));
  tok->add_option("--ttl-s", ttl_s, "Seconds until it expires")
    ->check(CLI::Range(int64_t{1}, int64_t{31536000}));

  auto* status = app.add_subcommand("status", "The cluster's view: nodes, shares, actors");
  auto* drain = app.add_subcommand("drain", "Move all of a node's share away");
  std::string drain_node;
  drain->add_option("NODE", drain_node, "The node id")->required();
  bool wait = false;
  int64_t wait_s = 300;
  drain->add_flag("--wait", wait, "Wait until the node holds no entity, showing progress");
  drain->add_option("--wait-s", wait_s, "Give up waiting after this many seconds (default 300)")
    ->check(CLI::Range(int64_t{1}, int64_t{86400}));
  auto* rebalance = app.add_subcommand("rebalance", "Move entities to their ring owners");
  CLI11_PARSE(app, argc, argv);

  if (tok->parsed()) {
    if (secret.size() < 16) {
      std::cerr << "presencectl: --secret must be at least 16 bytes (as auth.secret)\n";
      return 2;
    }
    if (!presence::actors::valid_id(user)) {
      std::cerr << "presencectl: --user must be 1 to 128 bytes of [A-Za-z0-9_.:@-]\n";
      return 2;
    }
    std::cout << mint(secret, user, *presence::gateway::parse_role(role_name), ttl_s) << "\n";
    return 0;
  }
  if (token.empty() && !secret.empty()) {
    if (secret.size() < 16) {
      std::cerr << "presencectl: --secret must be at least 16 bytes (as auth.secret)\n";
      return 2;
    }
    token = mint(secret, "presencectl", presence::gateway::role::admin, 300);
  }
  if (token.empty() && !dev) {
    std::cerr << "presencectl: give --secret, --token or --dev to act as an admin\n";
    return 2;
  }
  try {
    if (status->parsed()) {
      auto a = call(node, http::verb::get, "/v1/cluster", token, dev);
      if (a.status != 200)
        return report(a);
      print_status(a.body);
      return 0;
    }
    if (drain->parsed()) {
      if (!presence::actors::valid_id(drain_node)) {
        std::cerr << "presencectl: NODE must be a node id\n";
        return 2;
      }
      auto a = call(node, http::verb::post, "/v1/cluster/nodes/" + drain_node + "/drain",
                    token, dev);
      if (report(a) != 0 || !wait)
        return a.status >= 200 && a.status < 300 ? 0 : 1;
      // Polls the view until the node owns nothing and holds no entity.
      auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds{wait_s};
      int64_t last = -2;
      while (std::chrono::steady_clock::now() < deadline) {
        auto s = call(node, http::verb::get, "/v1/cluster", token, dev);
        if (s.status != 200)
          return report(s);
        for (auto& n : s.body["nodes"]) {
          if (n.value("id", "") != drain_node)
            continue;
          auto actors = n.value("actors", int64_t{-1});
          if (actors != last)
            std::cout << drain_node << ": " << actors << " entities left\n" << std::flush;
          last = actors;
          if (actors == 0 && n.value("share", 1.0) == 0.0) {
            std::cout << drain_node << " is drained: it can stop now\n";
            return 0;
          }
        }
        std::this_thread::sleep_for(std::chrono::milliseconds{200});
      }
      std::cerr << "presencectl: " << drain_node << " still holds " << last
                << " entities after " << wait_s << " s\n";
      return 1;
    }
    if (rebalance->parsed())
      return report(call(node, http::verb::post, "/v1/cluster/rebalance", token, dev));
  } catch (const std::exception& e) {
    std::cerr << "presencectl: " << node << ": " << e.what() << "\n";
    return 1;
  }
  return 2;
}
