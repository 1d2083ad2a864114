// presencectl: operator tooling. `token` prints a signed JWT for a user.
// (status, drain and rebalance come with the cluster.)
#include "actors/ids.hpp"
#include "gateway/auth.hpp"

#include <CLI/CLI.hpp>

#include <chrono>
#include <iostream>

int main(int argc, char** argv) {
  CLI::App app{"presencectl: operate a presence cluster"};
  app.require_subcommand(1);
  auto* token = app.add_subcommand("token", "Print a signed token (JWT HS256)");
  std::string secret, user, role_name = "user";
  int64_t ttl_s = 3600;
  token->add_option("--secret", secret, "The cluster secret (auth.secret)")->required();
  token->add_option("--user", user, "The user id (claim sub)")->required();
  token->add_option("--role", role_name, "user, guest or admin")
    ->check(CLI::IsMember({"user", "guest", "admin"}));
  token->add_option("--ttl-s", ttl_s, "Seconds until it expires")
    ->check(CLI::Range(int64_t{1}, int64_t{31536000}));
  CLI11_PARSE(app, argc, argv);
  if (secret.size() < 16) {
    std::cerr << "presencectl: --secret must be at least 16 bytes (as auth.secret)\n";
    return 2;
  }
  if (!presence::actors::valid_id(user)) {
    std::cerr << "presencectl: --user must be 1 to 128 bytes of [A-Za-z0-9_.:@-]\n";
    return 2;
  }
  presence::config::auth_section cfg;
  cfg.mode = "jwt";
  cfg.secret = secret;
  presence::gateway::authenticator auth{cfg};
  auto now_s = std::chrono::duration_cast<std::chrono::seconds>(
                 std::chrono::system_clock::now().time_since_epoch())
                 .count();
  std::cout << auth.issue(user, *presence::gateway::parse_role(role_name), now_s, ttl_s)
            << "\n";
  return 0;
}
