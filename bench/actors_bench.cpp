// Drives the actor path in process and prints its figures: sessions created per
// second, signals per second on the configured scheduler threads, resident memory
// per live session, timer lateness (p50/p99/max) with every session's timer armed,
// and the timer service's cost per arm. Not a test: it asserts nothing.
//
//   actors_bench [--sessions N]... [--sessions-per-user K] [--signals-per-session S]
//                [--threads T]
#include "in_process.hpp"

#include "actors/clock.hpp"
#include "actors/messages.hpp"
#include "actors/node.hpp"
#include "actors/system_config.hpp"
#include "actors/timer_service.hpp"

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/send.hpp>

#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
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
  std::vector<size_t> sessions;
  size_t sessions_per_user = 4;
  size_t signals_per_session = 5;
  int64_t threads = 0; // 0: the node's automatic choice
  std::string policy = "sharing";
};

// The timer service alone: re-arming already-armed slots (a signal that moves a
// session's boundary), single-threaded, no actor system work involved.
void bench_timer_service(size_t slots) {
  actors::timer_service svc{10, 0};
  std::vector<actors::timer_slot> xs(slots);
  for (auto& s : xs)
    s.bind(svc);
  caf::actor none;
  auto start = steady_clock::now();
  for (size_t i = 0; i < slots; ++i)
    xs[i].arm(none, 15000 + static_cast<int64_t>(i % 1000));
  auto first = seconds_since(start);
  start = steady_clock::now();
  constexpr int rounds = 5;
  for (int r = 1; r <= rounds; ++r)
    for (size_t i = 0; i < slots; ++i)
      xs[i].arm(none, 15000 + r * 10000 + static_cast<int64_t>(i % 1000));
  auto rearm = seconds_since(start);
  std::printf("timer service: %zu slots armed at %.0f ns/arm, re-armed at "
              "%.0f ns/arm (one thread)\n",
              slots, first * 1e9 / static_cast<double>(slots),
              rearm * 1e9 / static_cast<double>(slots * rounds));
  for (auto& s : xs)
    s.disarm();
}

// Waits until every session has decayed to idle (or away) and prints how late
// the timers fired, with the rate they were due at.
void report_lateness(const char* label, actors::node& node, size_t n,
                     double spread_s, double timeout_s) {
  auto& m = node.metrics();
  auto fires0 = m.timer_fires.load();
  auto armed = node.timers().armed();
  wait_for(
    [&] {
      return m.sessions_by_state[static_cast<size_t>(actors::state::idle)].load()
               + m.sessions_by_state[static_cast<size_t>(actors::state::away)].load()
             >= static_cast<int64_t>(n);
    },
    timeout_s);
  auto fired = m.timer_fires.load() - fires0;
  std::printf("timers:   %-6s %zu armed, %llu fired at ~%.0f/s: lateness p50 %lld ms, "
              "p99 %lld ms, max %lld ms\n",
              label, armed, static_cast<unsigned long long>(fired),
              static_cast<double>(fired) / std::max(spread_s, 0.001),
              static_cast<long long>(m.timer_lateness.quantile(0.5)),
              static_cast<long long>(m.timer_lateness.quantile(0.99)),
              static_cast<long long>(m.timer_lateness.quantile(1.0)));
  m.timer_lateness.reset();
}

void bench_sessions(const options& opt, size_t n) {
  config::settings s;
  s.node.worker_threads = opt.threads;
  // Long enough that no timer fires while the sessions are being created.
  s.presence.active_window_ms = 30000;
  s.presence.idle_after_ms = 600000;
  s.presence.stale_after_ms = 1200000;
  s.presence.offline_after_ms = 1800000;
  s.presence.heartbeat_active_ms = 10000;
  auto errors = config::validate(s);
  if (!errors.empty()) {
    std::fprintf(stderr, "bad bench settings: %s\n", errors.front().c_str());
    std::exit(1);
  }
  caf::actor_system_config cfg;
  actors::configure(cfg, s);
  cfg.set("scheduler.policy", caf::atom_from_string(opt.policy));
  caf::actor_system sys{cfg};
  auto rss0 = rss_mib();
  {
    actors::node node{sys, s, actors::clock::system_now_ms()};
    node.start();
    auto& m = node.metrics();
    auto users = n / opt.sessions_per_user;
    std::printf("\n== %zu sessions over %zu users, %zu scheduler threads (%s), "
                "timer tick %lld ms ==\n",
                n, users, actors::worker_threads(s), opt.policy.c_str(),
                static_cast<long long>(s.node.timer_tick_ms));

    // 1. Create: every session arms its timer for active -> idle in 30 s.
    std::vector<caf::actor> handles;
    handles.reserve(n);
    auto cpu0 = cpu_seconds();
    auto start = steady_clock::now();
    for (size_t i = 0; i < n; ++i) {
      auto user = "user-" + std::to_string(i / opt.sessions_per_user);
      handles.push_back(node.router()
                          .open_session({user, "bench", actors::signal_kind::active,
                                         {}, {}})
                          .handle);
    }
    if (!wait_for([&] { return live_sessions(m) == static_cast<int64_t>(n); }, 120))
      std::printf("!! sessions did not all start\n");
    auto created_s = seconds_since(start);
    std::printf("create:   %8.0f sessions/s (%.2f s, %.1f us CPU each)\n",
                static_cast<double>(n) / created_s, created_s,
                (cpu_seconds() - cpu0) * 1e6 / static_cast<double>(n));
    auto rss1 = rss_mib();
    std::printf("memory:   %8.0f bytes RSS per live session (%.0f MiB for %zu "
                "sessions and %zu users, router and timers included)\n",
                (rss1 - rss0) * 1024 * 1024 / static_cast<double>(n), rss1 - rss0, n,
                users);

    // 2. Signal as fast as one thread can send: 9 in 10 `active` (no change:
    // they stop at the session), whole users flipping between background and
    // active in turn (changes for session and user).
    auto total = n * opt.signals_per_session;
    auto sig0 = m.signals.load();
    auto tr0 = m.user_transitions.load();
    cpu0 = cpu_seconds();
    start = steady_clock::now();
    for (size_t r = 0; r < opt.signals_per_session; ++r)
      for (size_t i = 0; i < n; ++i) {
        auto k = ((i / opt.sessions_per_user) % 10 == r % 10)
                   ? actors::signal_kind::background
                   : actors::signal_kind::active;
        caf::anon_send(handles[i], actors::signal_atom::value, k);
      }
    if (!wait_for([&] { return m.signals.load() - sig0 >= total; }, 300))
      std::printf("!! signals did not all arrive\n");
    auto signal_s = seconds_since(start);
    std::printf("signal:   %8.0f signals/s (%zu signals in %.2f s, %.2f us CPU "
                "each incl. the sending thread; %llu user changes)\n",
                static_cast<double>(total) / signal_s, total, signal_s,
                (cpu_seconds() - cpu0) * 1e6 / static_cast<double>(total),
                static_cast<unsigned long long>(m.user_transitions.load() - tr0));

    // 3. Timers: one `active` signal per session, paced evenly over 10 s, moves
    // every session's one timer to 30 s later; with all of them armed, they come
    // due at n / 10 per second while the paced signals still run.
    constexpr double pace_s = 10.0;
    constexpr int steps = 1000;
    m.timer_lateness.reset();
    start = steady_clock::now();
    for (int k = 0; k < steps; ++k) {
      for (size_t i = n * k / steps; i < n * (k + 1) / steps; ++i)
        caf::anon_send(handles[i], actors::signal_atom::value,
                       actors::signal_kind::active);
      std::this_thread::sleep_until(start + duration<double>(pace_s * (k + 1) / steps));
    }
    report_lateness("armed", node, n, pace_s, 120);
    handles.clear();
    node.shutdown();
    sys.await_all_actors_done();
  }
}

} // namespace

int main(int argc, char** argv) {
  options opt;
  for (int i = 1; i < argc; ++i) {
    auto next = [&]() -> const char* {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "%s needs a value\n", argv[i]);
        std::exit(2);
      }
      return argv[++i];
    };
    if (std::strcmp(argv[i], "--sessions") == 0)
      opt.sessions.push_back(std::strtoull(next(), nullptr, 10));
    else if (std::strcmp(argv[i], "--sessions-per-user") == 0)
      opt.sessions_per_user = std::strtoull(next(), nullptr, 10);
    else if (std::strcmp(argv[i], "--signals-per-session") == 0)
      opt.signals_per_session = std::strtoull(next(), nullptr, 10);
    else if (std::strcmp(argv[i], "--policy") == 0)
      opt.policy = next();
    else if (std::strcmp(argv[i], "--threads") == 0)
      opt.threads = std::strtoll(next(), nullptr, 10);
    else {
      std::fprintf(stderr, "unknown argument %s\n", argv[i]);
      return 2;
    }
  }
  if (opt.sessions.empty())
    opt.sessions = {100000, 1000000};
  bench_timer_service(1000000);
  for (auto n : opt.sessions)
    bench_sessions(opt, n);
  return 0;
}
