// Verifies the configuration: embedded defaults, TOML file, flags over file,
// environment, and a clear error naming the key for each kind of bad input.
#include "config/settings.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <string>
#include <vector>

using namespace presence::config;

namespace {

// The error message `load` throws, or "" if it succeeds.
std::string load_error(const std::string& toml,
                       const std::map<std::string, std::string>& flags = {}) {
  try {
    load(toml, "test.toml", flags);
  } catch (const config_error& e) {
    return e.what();
  }
  return {};
}

command_line parse(std::vector<const char*> args) {
  args.insert(args.begin(), "presenced");
  return parse_command_line(static_cast<int>(args.size()), args.data());
}

} // namespace

// Verifies a node starts on embedded defaults: one node in dev mode on 8080.
TEST(SettingsTest, EmbeddedDefaults) {
  auto s = load("", "(none)", {});
  EXPECT_EQ(s.node.bind, "127.0.0.1");
  EXPECT_EQ(s.node.advertise, "127.0.0.1") << "node.advertise defaults to node.bind";
  EXPECT_EQ(s.node.http_port, 8080);
  EXPECT_EQ(s.node.cluster_port, 7400);
  EXPECT_EQ(s.node.data_dir, "./data");
  EXPECT_FALSE(s.node.id.empty());
  EXPECT_EQ(s.auth.mode, "dev");
  EXPECT_TRUE(s.auth.allow_guests);
  EXPECT_EQ(s.presence.active_window_ms, 15000);
  EXPECT_DOUBLE_EQ(s.rooms.ready_threshold, 0.6);
  EXPECT_DOUBLE_EQ(s.rooms.ready_hysteresis, 0.1);
  EXPECT_EQ(s.rooms.timeline_interval_ms, 5000);
  EXPECT_EQ(s.rooms.announce_max, 200);
  EXPECT_EQ(s.rooms.delta_interval_ms, 1000);
  EXPECT_EQ(s.rooms.delta_max_members, 100);
  EXPECT_EQ(s.cluster.vnodes, 128);
  EXPECT_EQ(s.cluster.replication_factor, 2);
  EXPECT_EQ(s.cluster.failure_timeout_ms, 3000);
  EXPECT_EQ(s.limits.max_body_bytes, 65536);
  EXPECT_EQ(s.limits.signals_per_second, 20);
  EXPECT_TRUE(s.storage.enabled);
  EXPECT_EQ(s.storage.flush_interval_ms, 100);
}

// Verifies values from a TOML file, and flags winning over the file.
TEST(SettingsTest, FileThenFlags) {
  auto toml = R"(
[node]
id = "n1"
http_port = 9000
seeds = ["127.0.0.1:7401", "127.0.0.1:7402"]
[presence]
active_window_ms = 2000
idle_after_ms = 5000
[auth]
mode = "jwt"
secret = "0123456789abcdef0123"
[rooms]
ready_threshold = 0.7
)";
  auto s = load(toml, "test.toml",
                {{"node.http_port", "9100"}, {"presence.idle_after_ms", "6000"}});
  EXPECT_EQ(s.node.id, "n1");
  EXPECT_EQ(s.node.http_port, 9100);
  EXPECT_EQ(s.node.seeds, (std::vector<std::string>{"127.0.0.1:7401",
                                                    "127.0.0.1:7402"}));
  EXPECT_EQ(s.presence.active_window_ms, 2000);
  EXPECT_EQ(s.presence.idle_after_ms, 6000);
  EXPECT_EQ(s.auth.mode, "jwt");
  EXPECT_DOUBLE_EQ(s.rooms.ready_threshold, 0.7);
}

// Verifies the command line: --config, --<section>.<key>=<value>, lists, and
// environment variables below flags.
TEST(SettingsTest, CommandLineAndEnvironment) {
  setenv("PRESENCED_NODE_HTTP_PORT", "9300", 1);
  setenv("PRESENCED_PRESENCE_GRACE_MS", "700", 1);
  auto cl = parse({"--config", "/tmp/x.toml", "--presence.grace_ms=900",
                   "--node.seeds=a:1, b:2", "--auth.allow_guests", "false",
                   "--auth.mode=dev"});
  unsetenv("PRESENCED_NODE_HTTP_PORT");
  unsetenv("PRESENCED_PRESENCE_GRACE_MS");
  EXPECT_EQ(cl.config_file, "/tmp/x.toml");
  EXPECT_EQ(cl.overrides.at("presence.grace_ms"), "900");
  EXPECT_EQ(cl.overrides.at("node.http_port"), "9300");
  auto s = load("", "(none)", cl.overrides);
  EXPECT_EQ(s.presence.grace_ms, 900);
  EXPECT_EQ(s.node.http_port, 9300);
  EXPECT_EQ(s.node.seeds, (std::vector<std::string>{"a:1", "b:2"}));
  EXPECT_FALSE(s.auth.allow_guests);
}

// Verifies an unknown flag is refused with its name.
TEST(SettingsTest, UnknownFlag) {
  try {
    parse({"--presence.idle_aftr_ms=5"});
    FAIL() << "accepted an unknown flag";
  } catch (const config_error& e) {
    EXPECT_NE(std::string{e.what()}.find("--presence.idle_aftr_ms"),
              std::string::npos)
      << e.what();
  }
}

// Verifies each kind of bad input is refused with a message naming the key.
TEST(SettingsTest, ErrorsNameTheKey) {
  struct row {
    std::string name;
    std::string toml;
    std::map<std::string, std::string> flags;
    std::vector<std::string> expected; // substrings of the message
  };
  std::vector<row> rows = {
    {"unknown key in file", "[presence]\nidle_aftr_ms = 1\n", {},
     {"presence.idle_aftr_ms", "unknown key"}},
    {"unknown section", "[bogus]\nx = 1\n", {}, {"bogus.x", "unknown key"}},
    {"top-level value", "x = 1\n", {}, {"x: unknown key"}},
    {"wrong type in file", "[presence]\nidle_after_ms = \"soon\"\n", {},
     {"presence.idle_after_ms", "expected an integer", "'soon'"}},
    {"float for integer", "[node]\nhttp_port = 80.5\n", {},
     {"node.http_port", "expected an integer"}},
    {"wrong type in flag", "", {{"presence.grace_ms", "5s"}},
     {"presence.grace_ms", "expected an integer", "'5s'"}},
    {"bad boolean", "", {{"auth.allow_guests", "yes"}},
     {"auth.allow_guests", "true or false"}},
    {"list of non-strings", "[node]\nseeds = [1, 2]\n", {},
     {"node.seeds", "list of strings"}},
    {"malformed TOML", "[presence\nx=1", {}, {"test.toml:1"}},
    {"thresholds not increasing", "",
     {{"presence.idle_after_ms", "15000"}},
     {"presence.active_window_ms < presence.idle_after_ms"}},
    {"stale before idle", "",
     {{"presence.stale_after_ms", "50000"}},
     {"presence.idle_after_ms < presence.stale_after_ms"}},
    {"offline equal to stale", "",
     {{"presence.offline_after_ms", "180000"}},
     {"presence.stale_after_ms < presence.offline_after_ms"}},
    {"heartbeat not below stale", "",
     {{"presence.heartbeat_background_ms", "180000"}},
     {"presence.heartbeat_background_ms", "below presence.stale_after_ms"}},
    {"port out of range", "", {{"node.http_port", "70000"}},
     {"node.http_port", "0..65535"}},
    {"negative port", "", {{"node.cluster_port", "-1"}}, {"node.cluster_port"}},
    {"bad seed", "", {{"node.seeds", "localhost"}}, {"node.seeds", "host:port"}},
    {"advertise with a port", "", {{"node.advertise", "pod-0.peers:7400"}},
     {"node.advertise", "without a port"}},
    {"advertise with a space", "", {{"node.advertise", "pod 0"}}, {"node.advertise"}},
    {"flush interval zero", "", {{"storage.flush_interval_ms", "0"}},
     {"storage.flush_interval_ms", "1..60000"}},
    {"storage switch not a boolean", "", {{"storage.enabled", "yes"}},
     {"storage.enabled", "true or false"}},
    {"threshold above one", "", {{"rooms.ready_threshold", "1.5"}},
     {"rooms.ready_threshold"}},
    {"hysteresis too big", "", {{"rooms.ready_hysteresis", "0.7"}},
     {"rooms.ready_hysteresis"}},
    {"bad auth mode", "", {{"auth.mode", "open"}}, {"auth.mode"}},
    {"jwt without secret", "", {{"auth.mode", "jwt"}}, {"auth.secret"}},
    {"zero grace", "", {{"presence.grace_ms", "0"}}, {"presence.grace_ms"}},
    {"negative linger", "", {{"presence.offline_linger_ms", "-5"}},
     {"presence.offline_linger_ms"}},
    {"tick too coarse", "", {{"node.timer_tick_ms", "500"}},
     {"node.timer_tick_ms"}},
    {"weights not adding up", "", {{"rooms.weight_active", "0.9"}},
     {"must add up to 1"}},
  };
  for (auto& r : rows) {
    auto msg = load_error(r.toml, r.flags);
    ASSERT_FALSE(msg.empty()) << r.name << ": accepted";
    for (auto& want : r.expected)
      EXPECT_NE(msg.find(want), std::string::npos)
        << r.name << ": '" << want << "' not in: " << msg;
  }
}

// Verifies every problem is reported at once, not only the first.
TEST(SettingsTest, AllErrorsReported) {
  auto msg = load_error("[presence]\nbogus = 1\n[node]\nhttp_port = \"x\"\n");
  EXPECT_NE(msg.find("presence.bogus"), std::string::npos) << msg;
  EXPECT_NE(msg.find("node.http_port"), std::string::npos) << msg;
}

// Verifies a multi-node configuration does not default to dev mode.
TEST(SettingsTest, SeedsDefaultToJwt) {
  auto msg = load_error("", {{"node.seeds", "127.0.0.1:7401"}});
  EXPECT_NE(msg.find("auth.secret"), std::string::npos) << msg;
  auto s = load("", "x", {{"node.seeds", "127.0.0.1:7401"},
                          {"auth.secret", "0123456789abcdef"}});
  EXPECT_EQ(s.auth.mode, "jwt");
}

// Verifies the effective configuration renders as TOML that loads back the
// same, with the secret redacted.
TEST(SettingsTest, RendersAsToml) {
  auto s = load("", "x", {{"presence.grace_ms", "1234"},
                          {"auth.secret", "topsecretvalue1234"}});
  auto text = to_toml(s);
  EXPECT_NE(text.find("grace_ms = 1234"), std::string::npos) << text;
  EXPECT_EQ(text.find("topsecretvalue1234"), std::string::npos) << text;
  // 46, node.stop_timeout_ms, node.advertise, and the four rooms.analytics_* / drop_off
  // / media keys.
  EXPECT_EQ(key_names().size(), 52u);
}

// Verifies node.log_format: "text" by default, "json" accepted, anything else
// refused with the key's name.
TEST(SettingsTest, LogFormat) {
  EXPECT_EQ(load("", "x", {}).node.log_format, "text");
  EXPECT_EQ(load("[node]\nlog_format = \"json\"\n", "x", {}).node.log_format, "json");
  EXPECT_EQ(load("", "x", {{"node.log_format", "json"}}).node.log_format, "json");
  auto msg = load_error("", {{"node.log_format", "xml"}});
  EXPECT_NE(msg.find("node.log_format"), std::string::npos) << msg;
  EXPECT_NE(msg.find("xml"), std::string::npos) << msg;
}

// Verifies --check-config is a flag of its own, not a key override.
TEST(SettingsTest, CheckConfigFlag) {
  EXPECT_FALSE(parse({}).check_config);
  auto cl = parse({"--check-config", "--node.log_format=json"});
  EXPECT_TRUE(cl.check_config);
  EXPECT_EQ(cl.overrides.at("node.log_format"), "json");
  EXPECT_EQ(cl.overrides.count("check-config"), 0u);
}
