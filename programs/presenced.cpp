// presenced: one node of the presence cluster. Reads the configuration (embedded
// defaults, optional TOML file, environment, flags), starts the actor system and
// the presence model, and runs until SIGTERM or SIGINT, then shuts down cleanly.
#include "actors/clock.hpp"
#include "actors/node.hpp"
#include "actors/system_config.hpp"
#include "config/settings.hpp"
#include "gateway/server.hpp"

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>

#include <spdlog/spdlog.h>

#include <csignal>
#include <iostream>
#include <pthread.h>
#include <sys/resource.h>

namespace {

constexpr const char* version = "0.1.0";

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

int run(const presence::config::settings& s, sigset_t& stop_signals) {
  raise_fd_limit();
  caf::actor_system_config cfg;
  presence::actors::configure(cfg, s);
  caf::actor_system sys{cfg};
  {
    presence::actors::node node{sys, s, presence::actors::clock::system_now_ms()};
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
    spdlog::info("http listening on {}:{}", s.node.bind, port);
    int sig = 0;
    sigwait(&stop_signals, &sig);
    spdlog::info("received {}, shutting down", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    gateway.stop();
    node.shutdown();
    sys.await_all_actors_done();
  }
  spdlog::info("stopped");
  return 0;
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
  } catch (const presence::config::config_error& e) {
    std::cerr << "presenced: configuration error:\n" << e.what() << "\n";
    return 2;
  }
  return run(s, stop_signals);
}
