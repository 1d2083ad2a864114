// The node's one typed configuration: embedded defaults, an optional TOML file,
// environment variables and `--<section>.<key>=<value>` flags (flags win over the
// environment, which wins over the file), validated at start with messages that name
// the offending key. Loading happens once at start-up, before any thread exists;
// afterwards a `settings` value is immutable and shared read-only by every thread.
#pragma once

#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace presence::config {

/// Thrown by the loaders; `what()` holds every problem found, one per line, each
/// naming its key.
class config_error : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

/// `[node]`: identity, addresses and threads of this process.
struct node_section {
  std::string id;                  ///< defaults to the host name
  std::string bind = "127.0.0.1";  ///< address the HTTP and cluster ports bind to
  /// The host other nodes reach this one at (a DNS name or an address, no
  /// port), spelled as they list it in their seeds; empty: `bind`.
  std::string advertise;
  int64_t http_port = 8080;        ///< 0 picks a free port (tests)
  int64_t cluster_port = 7400;     ///< 0 picks a free port (tests)
  std::string data_dir = "./data"; ///< RocksDB directory
  std::vector<std::string> seeds;  ///< "host:port" of other nodes' cluster ports
  int64_t worker_threads = 0;      ///< CAF scheduler threads; 0: one per core
  int64_t io_threads = 1;          ///< Asio threads of the gateway
  int64_t timer_tick_ms = 10;      ///< resolution of the decay timer wheel
  int64_t passivate_after_ms = 60000; ///< idle users and rooms stop after this
  int64_t stop_timeout_ms = 10000;    ///< a stop waits this long for the actors
  std::string log_format = "text"; ///< "text" (human) or "json" (one object per line)
};

/// `[presence]`: the session state table's thresholds (PROTOCOL.md).
struct presence_section {
  int64_t active_window_ms = 15000;
  int64_t idle_after_ms = 60000;
  int64_t stale_after_ms = 180000;
  int64_t offline_after_ms = 240000;
  int64_t grace_ms = 5000;
  int64_t heartbeat_active_ms = 10000;
  int64_t heartbeat_idle_ms = 30000;
  int64_t heartbeat_background_ms = 60000;
  int64_t offline_linger_ms = 0;
};

/// `[rooms]`: readiness, phases, timeline and big-room settings.
struct rooms_section {
  double ready_threshold = 0.6;
  double ready_hysteresis = 0.1;
  int64_t timeline_interval_ms = 5000;
  int64_t timeline_max_samples = 720; ///< one hour at the default interval
  int64_t announce_max = 200;
  int64_t delta_interval_ms = 1000;
  int64_t delta_max_members = 100;
  double density_target = 2;          ///< present visible members for full density
  double weight_active = 0.6;         ///< readiness weight of the active share
  double weight_recent = 0.3;         ///< readiness weight of active-or-idle share
  double weight_intent = 0.1;         ///< readiness weight of pending intents
  int64_t momentum_window_ms = 60000; ///< smoothing time constant of momentum
  int64_t analytics_bucket_ms = 60000;   ///< width of a stored analytics bucket
  int64_t analytics_max_buckets = 1440;  ///< buckets kept per room (a day of minutes)
  int64_t drop_off_ms = 30000;           ///< a leave this soon after the join is quick
  int64_t media_decay_window_ms = 300000; ///< decay counted "after media" this long
};

/// `[auth]`: how requests are authenticated.
struct auth_section {
  std::string mode;  ///< "jwt" or "dev"; empty = dev alone, jwt with seeds
  std::string secret;
  bool allow_guests = true;
};

/// `[cluster]`: ring and failure detection.
struct cluster_section {
  int64_t vnodes = 128;
  int64_t replication_factor = 2;
  int64_t failure_timeout_ms = 3000;
  std::string secret; ///< members prove it to join; empty: auth.secret
};

/// `[storage]`: write-behind snapshots to RocksDB under `node.data_dir`.
struct storage_section {
  bool enabled = true;             ///< false: nothing is written or recovered
  int64_t flush_interval_ms = 100; ///< at most this long between batches
};

/// `[limits]`: protection of the gateway.
struct limits_section {
  int64_t max_body_bytes = 65536;
  int64_t signals_per_second = 20;
  int64_t max_connections = 10000;
  int64_t ws_ping_interval_ms = 25000; ///< a silent socket is pinged after this
  int64_t slow_reader_ms = 10000;      ///< a socket behind this long is closed (1013)
};

/// The whole configuration.
struct settings {
  node_section node;
  presence_section presence;
  rooms_section rooms;
  auth_section auth;
  cluster_section cluster;
  storage_section storage;
  limits_section limits;
};

/// What the command line asked for, before the file is read.
struct command_line {
  std::string config_file;                      ///< empty: no file
  std::map<std::string, std::string> overrides; ///< "section.key" -> raw value
  bool show_help = false;
  bool show_version = false;
  bool check_config = false; ///< --check-config: validate, print one line, exit
  std::string help_text;
};

/// Parses `argv` (CLI11). Environment variables `PRESENCED_<SECTION>_<KEY>` count
/// as flags given with lower precedence than the real ones. Throws `config_error`.
command_line parse_command_line(int argc, const char* const* argv);

/// Defaults, then `toml_text` (may be empty; `origin` names it in messages), then
/// `overrides`, then validation. Throws `config_error` listing every problem.
settings load(const std::string& toml_text, const std::string& origin,
              const std::map<std::string, std::string>& overrides);

/// Reads the file named by `cl` (if any) and calls `load`.
settings load(const command_line& cl);

/// Every problem of `s` as "key: reason" lines; empty when valid. Also fills
/// derived defaults (node.id, auth.mode).
std::vector<std::string> validate(settings& s);

/// Names of all keys, "section.key", in declaration order.
std::vector<std::string> key_names();

/// The configuration as TOML text (effective values, for logs and `--help`).
std::string to_toml(const settings& s);

} // namespace presence::config
