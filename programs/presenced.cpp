// presenced: one node of the presence cluster. Reads the configuration (embedded
// defaults, optional TOML file, environment, flags), starts the actor system and
// the presence model, and runs until SIGTERM or SIGINT, then shuts down cleanly.
#include "actors/census.hpp"
#include "actors/clock.hpp"
#include "actors/node.hpp"
#include "actors/handoff.hpp"
#include "actors/recovery.hpp"
#include "actors/system_config.hpp"
#include "cluster/membership.hpp"
#include "config/settings.hpp"
#include "gateway/server.hpp"
#include "storage/store.hpp"
#include "storage/writer.hpp"

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>

#include <nlohmann/json.hpp>
#include <spdlog/formatter.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <iostream>
#include <pthread.h>
#include <sys/resource.h>
#include <thread>

namespace {

constexpr const char* version = "0.1.0";

// Waits for the node's actors to end, naming every 2 s the kinds still
// running; false if some still run after `limit`.
bool await_actors(caf::actor_system& sys, std::chrono::milliseconds limit) {
  using clock = std::chrono::steady_clock;
  auto start = clock::now();
  auto next_note = start + std::chrono::seconds{2};
  while (sys.registry().running() > 0) {
    auto now = clock::now();
    if (now - start >= limit)
      return false;
    if (now >= next_note) {
      spdlog::warn("stopping: waiting for {} actors ({})", sys.registry().running(),
                   presence::actors::census::summary());
      next_note += std::chrono::seconds{2};
    }
    std::this_thread::sleep_for(std::chrono::milliseconds{20});
  }
  return true;
}

// node.log_format = "json": one JSON object per line, for log shippers
// (journald, Kubernetes, Loki): {"ts", "level", "node", "msg"}. Time is UTC
// with milliseconds; bytes of a message that are not UTF-8 become U+FFFD.
class json_formatter final : public spdlog::formatter {
public:
  explicit json_formatter(std::string node) : node_(std::move(node)) {}

  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    using namespace std::chrono;
    auto since = msg.time.time_since_epoch();
    auto secs = duration_cast<seconds>(since);
    auto ms = duration_cast<milliseconds>(since - secs).count();
    std::time_t tt = static_cast<std::time_t>(secs.count());
    std::tm tm{};
    gmtime_r(&tt, &tm);
    char ts[40];
    auto n = std::strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
    std::snprintf(ts + n, sizeof(ts) - n, ".%03dZ", static_cast<int>(ms));
    nlohmann::ordered_json line = {
      {"ts", ts},
      {"level", std::string(spdlog::level::to_string_view(msg.level).data(),
                            spdlog::level::to_string_view(msg.level).size())},
      {"node", node_},
      {"msg", std::string(msg.payload.data(), msg.payload.size())},
    };
    auto text = line.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
    text += '\n';
    dest.append(text.data(), text.data() + text.size());
  }

  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<json_formatter>(node_);
  }

private:
  std::string node_;
};

// Every socket is a file descriptor: raise the soft limit to the hard one.
void raise_fd_limit() {
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < lim.rlim_max) {
    lim.rlim_cur = lim.rlim_max;
    setrlimit(RLIMIT_NOFILE, &lim);
  }
  if (getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < 65536)
    spdlog::warn("open file limit is {}: raise it (ulimit -n) for many sockets",
                 lim.rlim_cur);
}

// Logs a failed batch at most once per second (a broken disk fails every flush).
void log_write_error(const std::string& why) {
  using namespace std::chrono;
  static std::atomic<int64_t> last{0};
  auto now = duration_cast<milliseconds>(steady_clock::now().time_since_epoch()).count();
  auto prev = last.load();
  if (now - prev >= 1000 && last.compare_exchange_strong(prev, now))
    spdlog::error("storage: {} (kept, retried at the next flush)", why);
}

// A file beside the database that says the last run stopped cleanly, with
// every record written. Taken (removed) at start.
std::string clean_stop_path(const std::string& data_dir) {
  return data_dir + "/CLEAN_STOP";
}

bool take_clean_stop_marker(const std::string& data_dir) {
  return std::remove(clean_stop_path(data_dir).c_str()) == 0;
}

void put_clean_stop_marker(const std::string& data_dir) {
  if (auto* f = std::fopen(clean_stop_path(data_dir).c_str(), "w"))
    std::fclose(f);
}

int run(const presence::config::settings& s, sigset_t& stop_signals) {
  raise_fd_limit();
  // The data directory first: a locked or unusable one stops the start at once.
  std::unique_ptr<presence::storage::store> store;
  if (s.storage.enabled) {
    presence::storage::status why;
    store = presence::storage::open_rocksdb(s.node.data_dir, &why);
    if (!store) {
      spdlog::error("{}", *why);
      return 1;
    }
  } else {
    spdlog::warn("storage.enabled = false: nothing survives a restart");
  }
  std::unique_ptr<presence::storage::snapshot_writer> writer;
  if (store)
    writer = std::make_unique<presence::storage::snapshot_writer>(
      *store, s.storage.flush_interval_ms, log_write_error);
  int exit_code = 0;
  caf::actor_system_config cfg;
  presence::actors::configure(cfg, s);
  presence::cluster::configure(cfg, s);
  caf::actor_system sys{cfg};
  {
    presence::actors::node node{sys, s, presence::actors::clock::system_now_ms()};
    node.set_writer(writer.get());
    node.set_store(store.get());
    node.set_ready(false);
    node.start();
    presence::gateway::server gateway{node, s};
    uint16_t port = 0;
    try {
      port = gateway.start();
    } catch (const std::exception& e) {
      spdlog::error("{}", e.what());
      node.shutdown();
      sys.await_all_actors_done();
      return 1;
    }
    spdlog::info("presenced {} node '{}' started: {} scheduler threads (sharing), "
                 "{} I/O threads, timer tick {} ms",
                 version, s.node.id, presence::actors::worker_threads(s), s.node.io_threads,
                 s.node.timer_tick_ms);
    if (s.auth.mode == "dev")
      spdlog::warn("auth.mode = \"dev\": requests are trusted by their X-User header. "
                   "For local trials only; never expose this node.");
    // Tests and launchers read this line for the port.
    spdlog::info("http listening on {}:{} (live demo: http://{}:{}/demo/)", s.node.bind, port,
                 s.node.bind, port);
    presence::cluster::cluster_node cluster{sys, node, s, [](const std::string& line) {
                                              spdlog::info("{}", line);
                                            }};
    try {
      auto cport = cluster.start(port);
      node.set_cluster(cluster.actor());
      node.set_traffic(cluster.traffic());
      spdlog::info("cluster listening on {}:{}{}", s.node.bind, cport,
                   s.node.seeds.empty() ? " (no seeds: a cluster of its own)" : "");
    } catch (const std::exception& e) {
      spdlog::error("{}", e.what());
      gateway.stop();
      node.shutdown();
      sys.await_all_actors_done();
      return 1;
    }
    if (store) {
      // The marker of a clean stop: without it, the last run may have
      // published changes its records do not have yet.
      bool after_crash = !take_clean_stop_marker(s.node.data_dir);
      spdlog::info("recovering from {}{}", s.node.data_dir,
                   after_crash ? " (the last run did not stop cleanly)" : "");
      writer->start();
      auto r = presence::actors::recover(
        node, *store, [](const std::string& line) { spdlog::info("{}", line); },
        after_crash, !s.node.seeds.empty());
      if (!r.failed.empty()) {
        // Serving on half the state would answer wrong presence and overwrite
        // what could not be read: the node stops, naming the problem.
        spdlog::error("recovery failed, the node does not start: cannot read {} in {}",
                      r.failed, s.node.data_dir);
        gateway.stop();
        cluster.stop();
        node.shutdown();
        sys.await_all_actors_done();
        writer->stop();
        return 1;
      }
      spdlog::info("recovered in {} ms: {} sessions ({} expired while down), {} users "
                   "({} without a live session), {} rooms, {} timeline samples, {} "
                   "intents ({} past retention), {} unreadable records skipped",
                   r.elapsed_ms, r.sessions, r.sessions_dropped, r.users + r.users_dormant,
                   r.users_dormant, r.rooms, r.timeline_samples, r.intents,
                   r.intents_dropped, r.skipped);
      // What it recovered and another node owns (or holds newer) goes there.
      caf::anon_send(cluster.actor(), presence::actors::handoff_atom::value);
    }
    // Ready once recovered and a member of a view (a node with seeds waits for
    // one of them), unless it is told to stop first.
    int sig = 0;
    timespec poll_interval{0, 50 * 1000 * 1000};
    auto last_note = std::chrono::steady_clock::now();
    while (!cluster.joined()) {
      sig = sigtimedwait(&stop_signals, nullptr, &poll_interval);
      if (sig > 0)
        break;
      auto now = std::chrono::steady_clock::now();
      if (now - last_note > std::chrono::seconds{5}) {
        last_note = now;
        spdlog::warn("not ready: still joining the cluster through node.seeds");
      }
    }
    if (sig <= 0) {
      node.set_ready(true);
      spdlog::info("ready");
      sigwait(&stop_signals, &sig);
    }
    spdlog::info("received {}, shutting down", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    exit_code = cluster.minority() ? presence::cluster::cluster_node::minority_exit_code : 0;
    gateway.stop();
    cluster.stop();
    node.shutdown();
    if (!await_actors(sys, std::chrono::milliseconds{s.node.stop_timeout_ms})) {
      // A stop is bounded: what the actors handed in is flushed, and the next
      // start treats this one as a crash (no clean-stop marker).
      spdlog::error("stop took longer than node.stop_timeout_ms ({} ms): {} actors still "
                    "running ({}); flushing storage and exiting",
                    s.node.stop_timeout_ms, sys.registry().running(),
                    presence::actors::census::summary());
      if (writer) {
        writer->stop();
        spdlog::info("storage flushed: {} records written in {} batches",
                     writer->stats().records_written.load(), writer->stats().batches.load());
      }
      spdlog::shutdown();
      std::_Exit(1);
    }
  }
  if (writer) {
    writer->stop(); // everything the actors handed in, their last signals too
    spdlog::info("storage flushed: {} records written in {} batches",
                 writer->stats().records_written.load(), writer->stats().batches.load());
    if (writer->unwritten() == 0)
      put_clean_stop_marker(s.node.data_dir);
  }
  writer.reset();
  store.reset();
  spdlog::info("stopped{}", exit_code != 0 ? " (on the minority side: restart to rejoin)" : "");
  return exit_code;
}

} // namespace

int main(int argc, char** argv) {
  // Block the stop signals in every thread; main waits for them with sigwait.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  presence::config::settings s;
  try {
    auto cl = presence::config::parse_command_line(argc, argv);
    if (cl.show_help) {
      std::cout << cl.help_text;
      return 0;
    }
    if (cl.show_version) {
      std::cout << "presenced " << version << "\n";
      return 0;
    }
    s = presence::config::load(cl);
    if (cl.check_config) {
      // Nothing is bound or opened: the settings alone are checked.
      std::cout << "presenced: configuration OK ("
                << (cl.config_file.empty() ? std::string{"no file"} : cl.config_file)
                << "): node '" << s.node.id << "', http " << s.node.bind << ":"
                << s.node.http_port
                << (s.node.advertise != s.node.bind ? " (advertised as " + s.node.advertise + ")"
                                                    : std::string{})
                << ", cluster port " << s.node.cluster_port << ", "
                << s.node.seeds.size() << " seeds, auth.mode " << s.auth.mode
                << ", data_dir " << s.node.data_dir
                << (s.storage.enabled ? "" : " (storage disabled)") << ", log_format "
                << s.node.log_format << "\n";
      return 0;
    }
  } catch (const presence::config::config_error& e) {
    std::cerr << "presenced: configuration error:\n" << e.what() << "\n";
    return 2;
  }
  if (s.node.log_format == "json")
    spdlog::set_formatter(std::make_unique<json_formatter>(s.node.id));
  return run(s, stop_signals);
}
