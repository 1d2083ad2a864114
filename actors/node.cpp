#include "actors/node.hpp"

#include <caf/send.hpp>

namespace presence::actors {

node::node(caf::actor_system& sys, config::settings cfg, int64_t wall_start_ms)
  : sys_(sys),
    cfg_(std::move(cfg)),
    clock_(sys.clock(), wall_start_ms),
    timers_(cfg_.node.timer_tick_ms, clock_.now_ms()),
    router_(*this) {
}

node::~node() {
  shutdown();
}

void node::start() {
  if (!ticker_)
    ticker_ = timers_.spawn_ticker(sys_, clock_);
}

void node::shutdown() {
  if (ticker_) {
    caf::anon_send_exit(ticker_, caf::exit_reason::user_shutdown);
    ticker_ = nullptr;
  }
  for (auto& a : router_.all())
    caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
  router_.clear();
  timers_.clear();
  cluster_ = nullptr;
  // The handle stays (entities that are still stopping may read it; what they
  // send to a stopped actor is dropped).
  if (replicator_)
    caf::anon_send_exit(replicator_, caf::exit_reason::user_shutdown);
  std::lock_guard<std::mutex> guard{listeners_mtx_};
  listeners_.clear();
}

} // namespace presence::actors
