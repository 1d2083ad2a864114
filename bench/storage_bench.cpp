// Storage figures, printed (asserts nothing):
//   1. snapshot write throughput while N sessions signal, and the signal path's
//      throughput with storage on against storage off (same node, same load);
//   2. recovery of a store holding 1M sessions, 100k users and 10k rooms: time
//      to ready and resident memory (in a fresh child process);
//   3. database size after a churn of 1M short sessions (open, signal, leave).
//
//   storage_bench [--sessions N] [--rounds R] [--recover-sessions M] [--churn C]
//                 [--skip signal,recover,churn]
#include "in_process.hpp"

#include "actors/clock.hpp"
#include "actors/messages.hpp"
#include "actors/node.hpp"
#include "actors/recovery.hpp"
#include "actors/rules.hpp"
#include "actors/system_config.hpp"
#include "storage/records.hpp"
#include "storage/store.hpp"
#include "storage/writer.hpp"

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/send.hpp>

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

using namespace presence;
using namespace std::chrono;

using bench::cpu_seconds;
using bench::live_sessions;
using bench::rss_mib;
using bench::seconds_since;
using bench::wait_for;

namespace {

struct options {
  size_t sessions = 100000;
  size_t rounds = 10;
  size_t recover_sessions = 1000000;
  size_t churn = 1000000;
  std::string skip;
  std::string self;
};

std::string temp_dir(const char* name) {
  auto dir = std::filesystem::temp_directory_path()
             / (std::string{"presence-bench-"} + name + "-" + std::to_string(getpid()));
  std::filesystem::remove_all(dir);
  return dir.string();
}

config::settings bench_settings() {
  config::settings s;
  // Long enough that no timer fires during a phase.
  s.presence.active_window_ms = 600000;
  s.presence.idle_after_ms = 1200000;
  s.presence.stale_after_ms = 1800000;
  s.presence.offline_after_ms = 2400000;
  s.presence.heartbeat_active_ms = 10000;
  auto errors = config::validate(s);
  if (!errors.empty()) {
    std::fprintf(stderr, "bad bench settings: %s\n", errors.front().c_str());
    std::exit(1);
  }
  return s;
}

std::unique_ptr<storage::store> open_or_die(const std::string& dir) {
  storage::status why;
  auto st = storage::open_rocksdb(dir, &why);
  if (!st) {
    std::fprintf(stderr, "%s\n", why->c_str());
    std::exit(1);
  }
  return st;
}

struct phase_result {
  double signals_per_s = 0;
  double cpu_us_per_signal = 0; // the whole process: actors, writer, RocksDB
  uint64_t written = 0;
  double written_per_s = 0;
};

// One node's signal phase: n sessions (10 per user), `rounds` rounds in which
// every session signals once. Unpaced, rounds follow each other as fast as one
// thread sends (several rounds fall into one flush interval and coalesce).
// Paced, each round starts 150 ms after the previous one, so that every signal
// hands in a snapshot (a heartbeat per session per interval: the worst case).
phase_result signal_phase(size_t n, size_t rounds, storage::snapshot_writer* w, bool paced) {
  auto s = bench_settings();
  caf::actor_system_config cfg;
  actors::configure(cfg, s);
  caf::actor_system sys{cfg};
  phase_result out;
  {
    actors::node node{sys, s, actors::clock::system_now_ms()};
    node.set_writer(w);
    node.start();
    auto& m = node.metrics();
    std::vector<caf::actor> handles;
    handles.reserve(n);
    for (size_t i = 0; i < n; ++i)
      handles.push_back(node.router()
                          .open_session({"user-" + std::to_string(i / 10), "bench",
                                         actors::signal_kind::active, {}, {}})
                          .handle);
    wait_for([&] { return live_sessions(m) == static_cast<int64_t>(n); }, 120);
    if (w != nullptr)
      wait_for([&] { return w->unwritten() == 0; }, 60);
    std::this_thread::sleep_for(milliseconds{200}); // the open snapshots are older
    auto written0 = w != nullptr ? w->stats().records_written.load() : 0;
    auto sig0 = m.signals.load();
    auto cpu0 = cpu_seconds();
    auto start = steady_clock::now();
    double busy_s = 0;
    for (size_t r = 0; r < rounds; ++r) {
      auto round_start = steady_clock::now();
      for (size_t i = 0; i < n; ++i)
        caf::anon_send(handles[i], actors::signal_atom::value, actors::signal_kind::active);
      if (paced) {
        wait_for([&] { return m.signals.load() - sig0 >= n * (r + 1); }, 300);
        busy_s += seconds_since(round_start);
        std::this_thread::sleep_until(round_start + milliseconds{150});
      }
    }
    wait_for([&] { return m.signals.load() - sig0 >= n * rounds; }, 300);
    if (!paced)
      busy_s = seconds_since(start);
    if (w != nullptr)
      wait_for([&] { return w->unwritten() == 0; }, 120);
    auto all_s = seconds_since(start);
    out.signals_per_s = static_cast<double>(n * rounds) / busy_s;
    out.cpu_us_per_signal = (cpu_seconds() - cpu0) * 1e6 / static_cast<double>(n * rounds);
    if (w != nullptr) {
      out.written = w->stats().records_written.load() - written0;
      out.written_per_s = static_cast<double>(out.written) / all_s;
    }
    handles.clear();
    node.shutdown();
    sys.await_all_actors_done();
  }
  return out;
}

void bench_signals(const options& opt) {
  std::printf("\n== snapshots while %zu sessions signal (%zu rounds, 10 sessions per "
              "user, flush every 100 ms, RocksDB) ==\n",
              opt.sessions, opt.rounds);
  auto dir = temp_dir("signal");
  auto st = open_or_die(dir);
  storage::snapshot_writer w{*st, 100};
  w.start();
  for (bool paced : {false, true}) {
    // Best of three for each, alternating, so that both see the same machine.
    phase_result off, on;
    for (int k = 0; k < 3; ++k) {
      auto a = signal_phase(opt.sessions, opt.rounds, nullptr, paced);
      auto b = signal_phase(opt.sessions, opt.rounds, &w, paced);
      if (a.signals_per_s > off.signals_per_s)
        off = a;
      if (b.signals_per_s > on.signals_per_s)
        on = b;
    }
    std::printf("  %s: storage off %.0f signals/s (%.2f us CPU each), storage on %.0f "
                "signals/s (%.2f us CPU each): %.1f%% of the throughput; %llu snapshot "
                "records written (%.0f%% of the signals), %.0f entities/s\n",
                paced ? "paced (every signal snapshotted)" : "unpaced (rounds coalesce)",
                off.signals_per_s, off.cpu_us_per_signal, on.signals_per_s,
                on.cpu_us_per_signal, 100.0 * on.signals_per_s / off.signals_per_s,
                static_cast<unsigned long long>(on.written),
                100.0 * static_cast<double>(on.written)
                  / static_cast<double>(opt.sessions * opt.rounds),
                on.written_per_s);
  }
  w.stop();
  st.reset();
  std::filesystem::remove_all(dir);
}

// Writes a store as a node with m sessions (10 per user) in m/100 rooms (each
// user in one room) would leave it, all of them signalled just now.
void fill_store(const std::string& dir, size_t m) {
  auto st = open_or_die(dir);
  auto now = actors::clock::system_now_ms();
  std::vector<storage::mutation> batch;
  auto push = [&](const storage::record& r) {
    batch.push_back({storage::kind_of(r), storage::key_of(r), storage::encode_record(r)});
    if (batch.size() >= 10000) {
      st->write(batch);
      batch.clear();
    }
  };
  auto users = m / 10;
  auto rooms = std::max<size_t>(1, m / 100);
  for (size_t r = 0; r < rooms; ++r)
    push(storage::room_record{"room-" + std::to_string(r), false, 1, 0, now, {}, {}});
  for (size_t u = 0; u < users; ++u)
    push(storage::user_record{"user-" + std::to_string(u), 4, 3, now, now, now, {}});
  for (size_t i = 0; i < m; ++i) {
    storage::session_record s;
    s.session_id = "s_" + std::to_string(1000000000 + i);
    auto u = i / 10;
    s.user_id = "user-" + std::to_string(u);
    s.device = "bench";
    s.resume_hash = std::string(32, static_cast<char>(i & 0x7f));
    s.last_signal_at = now;
    s.last_active_at = now;
    s.ever_active = true;
    s.heartbeat_ms = 10000;
    s.rooms = {{"room-" + std::to_string(u % rooms), true}};
    push(s);
  }
  if (!batch.empty())
    st->write(batch);
  st->compact();
  std::printf("  store written: %zu sessions, %zu users, %zu rooms, %.1f MiB on disk\n", m,
              users, rooms, static_cast<double>(st->size_bytes()) / (1024.0 * 1024.0));
}

// In a fresh process: open, recover, wait until every restored entity started.
int recover_child(const std::string& dir) {
  auto rss0 = rss_mib();
  auto start = steady_clock::now();
  auto st = open_or_die(dir);
  auto opened_s = seconds_since(start);
  storage::snapshot_writer w{*st, 100};
  auto s = bench_settings();
  caf::actor_system_config cfg;
  actors::configure(cfg, s);
  caf::actor_system sys{cfg};
  {
    actors::node node{sys, s, actors::clock::system_now_ms()};
    node.set_writer(&w);
    node.start();
    w.start();
    auto report = actors::recover(node, *st, {});
    auto spawned_s = seconds_since(start);
    // Every session arms its timer when it starts, every user its aggregate.
    wait_for([&] { return node.timers().armed() >= report.sessions; }, 300);
    auto& m = node.metrics();
    wait_for([&] {
      return m.users_by_state[static_cast<size_t>(actors::state::active)].load()
             >= static_cast<int64_t>(report.users);
    }, 300);
    auto ready_s = seconds_since(start);
    auto rss = rss_mib() - rss0;
    std::printf("  recovery: %zu sessions, %zu users, %zu rooms: store opened in %.2f s, "
                "read and decoded in %.2f s, spawned by %.2f s, all started (ready) in "
                "%.2f s\n",
                report.sessions, report.users, report.rooms, opened_s,
                static_cast<double>(report.read_ms) / 1000.0, spawned_s, ready_s);
    std::printf("  memory after recovery: %.0f MiB RSS (%.0f bytes per session, users, "
                "rooms and RocksDB included)\n",
                rss, rss * 1024 * 1024 / static_cast<double>(std::max<size_t>(1, report.sessions)));
    node.shutdown();
    sys.await_all_actors_done();
  }
  w.stop();
  return 0;
}

void bench_recovery(const options& opt) {
  std::printf("\n== recovery of %zu sessions, %zu users, %zu rooms ==\n",
              opt.recover_sessions, opt.recover_sessions / 10, opt.recover_sessions / 100);
  auto dir = temp_dir("recover");
  fill_store(dir, opt.recover_sessions);
  std::fflush(stdout);
  auto pid = fork();
  if (pid == 0) {
    execl(opt.self.c_str(), opt.self.c_str(), "--recover-only", dir.c_str(),
          static_cast<char*>(nullptr));
    _exit(127);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  std::filesystem::remove_all(dir);
}

void bench_churn(const options& opt) {
  std::printf("\n== churn of %zu short sessions (open, signal, leave; 10k live at a "
              "time, 1000 users) ==\n",
              opt.churn);
  auto dir = temp_dir("churn");
  auto st = open_or_die(dir);
  storage::snapshot_writer w{*st, 100};
  w.start();
  auto s = bench_settings();
  caf::actor_system_config cfg;
  actors::configure(cfg, s);
  caf::actor_system sys{cfg};
  auto start = steady_clock::now();
  {
    actors::node node{sys, s, actors::clock::system_now_ms()};
    node.set_writer(&w);
    node.start();
    auto& m = node.metrics();
    constexpr size_t wave = 10000;
    std::vector<caf::actor> handles;
    for (size_t done = 0; done < opt.churn; done += wave) {
      handles.clear();
      for (size_t i = 0; i < wave; ++i)
        handles.push_back(node.router()
                            .open_session({"user-" + std::to_string((done + i) % 1000),
                                           "bench", actors::signal_kind::active, {}, {}})
                            .handle);
      for (auto& h : handles)
        caf::anon_send(h, actors::signal_atom::value, actors::signal_kind::background);
      for (auto& h : handles)
        caf::anon_send(h, actors::leave_atom::value);
      wait_for([&] { return live_sessions(m) == 0; }, 120);
    }
    handles.clear();
    node.shutdown();
    sys.await_all_actors_done();
  }
  w.stop();
  auto churn_s = seconds_since(start);
  auto before = st->size_bytes();
  size_t left = 0;
  st->scan(storage::kind::sessions, [&](std::string_view, std::string_view) { ++left; });
  st->compact();
  std::printf("  %.1f s; %llu records written; %zu session records left; database %.2f "
              "MiB before compaction, %.2f MiB after\n",
              churn_s, static_cast<unsigned long long>(w.stats().records_written.load()),
              left, static_cast<double>(before) / (1024.0 * 1024.0),
              static_cast<double>(st->size_bytes()) / (1024.0 * 1024.0));
  st.reset();
  std::filesystem::remove_all(dir);
}

} // namespace

int main(int argc, char** argv) {
  options opt;
  opt.self = argv[0];
  for (int i = 1; i < argc; ++i) {
    auto next = [&]() -> const char* {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "%s needs a value\n", argv[i]);
        std::exit(2);
      }
      return argv[++i];
    };
    if (std::strcmp(argv[i], "--recover-only") == 0)
      return recover_child(next());
    if (std::strcmp(argv[i], "--sessions") == 0)
      opt.sessions = std::strtoull(next(), nullptr, 10);
    else if (std::strcmp(argv[i], "--rounds") == 0)
      opt.rounds = std::strtoull(next(), nullptr, 10);
    else if (std::strcmp(argv[i], "--recover-sessions") == 0)
      opt.recover_sessions = std::strtoull(next(), nullptr, 10);
    else if (std::strcmp(argv[i], "--churn") == 0)
      opt.churn = std::strtoull(next(), nullptr, 10);
    else if (std::strcmp(argv[i], "--skip") == 0)
      opt.skip = next();
    else {
      std::fprintf(stderr, "unknown argument %s\n", argv[i]);
      return 2;
    }
  }
  if (opt.skip.find("signal") == std::string::npos)
    bench_signals(opt);
  if (opt.skip.find("recover") == std::string::npos)
    bench_recovery(opt);
  if (opt.skip.find("churn") == std::string::npos)
    bench_churn(opt);
  return 0;
}
