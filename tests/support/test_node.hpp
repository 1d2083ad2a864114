// A node under CAF's deterministic test coordinator: no thread runs actors, time
// moves only when a test calls `advance`, and the timer ticker is driven by that
// same clock. Tests read epoch times relative to `t0`.
#pragma once

#include "actors/errors.hpp"
#include "actors/messages.hpp"
#include "actors/node.hpp"
#include "actors/recovery.hpp"
#include "storage/writer.hpp"
#include "actors/system_config.hpp"
#include "config/settings.hpp"

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/scheduler/test_coordinator.hpp>
#include <caf/scoped_actor.hpp>

#include <gtest/gtest.h>

#include <memory>
#include <vector>

namespace presence::testing {

/// What a recorder actor has received.
struct recorded {
  std::vector<actors::presence_event> presence;
  std::vector<actors::room_event> rooms;
  std::vector<actors::intent_event> intents;
  std::vector<actors::room_delta> deltas;
};

class test_node {
public:
  static constexpr int64_t t0 = 1'700'000'000'000;

  /// With `store`, the node snapshots into it through a writer that writes only
  /// when the test calls `flush()` (and at the end, as a stopping node does).
  /// `start_ms` is the epoch time the node starts at.
  explicit test_node(config::settings s = default_settings(),
                     storage::store* store = nullptr, int64_t start_ms = t0) {
    actors::configure(cfg_, s);
    cfg_.set("scheduler.policy", caf::atom("testing"));
    sys_ = std::make_unique<caf::actor_system>(cfg_);
    sched_ = &dynamic_cast<caf::scheduler::test_coordinator&>(sys_->scheduler());
    node_ = std::make_unique<actors::node>(*sys_, s, start_ms);
    if (store != nullptr) {
      writer_ = std::make_unique<storage::snapshot_writer>(*store, s.storage.flush_interval_ms);
      node_->set_writer(writer_.get());
    }
    node_->start();
    self_ = std::make_unique<caf::scoped_actor>(*sys_, true);
    run();
  }

  ~test_node() {
    self_.reset();
    node_->shutdown();
    for (auto& r : recorders_)
      caf::anon_send_exit(r, caf::exit_reason::user_shutdown);
    recorders_.clear();
    run();
    sched_->clock().cancel_all();
    run();
    node_.reset();
    if (writer_)
      writer_->stop(); // what a stopping node writes
  }

  /// Writes what the actors handed to the writer (a flush interval passing).
  size_t flush() { return writer_ ? writer_->flush() : 0; }

  storage::snapshot_writer* writer() { return writer_.get(); }

  /// Restores the node from `store` (as at start) and runs the actors.
  actors::recovery_report recover(storage::store& store,
                                  std::vector<std::string>* lines = nullptr,
                                  bool after_crash = false, bool hold = false) {
    auto report = actors::recover(
      *node_, store,
      [lines](const std::string& line) {
        if (lines != nullptr)
          lines->push_back(line);
      },
      after_crash, hold);
    run();
    return report;
  }

  /// Thresholds small enough to read: 1 s active, 2 s idle, 5 s stale, 8 s
  /// offline; heartbeats 500/1000/2000 ms, grace 100 ms, tick 1 ms.
  static config::settings default_settings() {
    config::settings s;
    s.presence.active_window_ms = 1000;
    s.presence.idle_after_ms = 2000;
    s.presence.stale_after_ms = 5000;
    s.presence.offline_after_ms = 8000;
    s.presence.grace_ms = 100;
    s.presence.heartbeat_active_ms = 500;
    s.presence.heartbeat_idle_ms = 1000;
    s.presence.heartbeat_background_ms = 2000;
    s.rooms.timeline_interval_ms = 1000;
    s.node.timer_tick_ms = 1;
    auto errors = config::validate(s);
    EXPECT_TRUE(errors.empty());
    return s;
  }

  /// Runs every ready message.
  void run() { sched_->run(); }

  /// Runs every ready message, the latest first: actors that a message makes
  /// ready together run in the reverse of the usual order (races between
  /// them show).
  void run_lifo() {
    while (sched_->try_run_once_lifo()) {
    }
  }

  /// Moves time forward by `ms`, firing due timers, and runs.
  void advance(int64_t ms) {
    sched_->advance_time(std::chrono::milliseconds{ms});
    run();
  }

  /// Moves time to `t0 + at_ms` (never backwards).
  void advance_to(int64_t at_ms) {
    auto now = node_->now_ms() - t0;
    if (at_ms > now)
      advance(at_ms - now);
  }

  /// Moves time to `t0 + at_ms` in steps of `step_ms`, as a real clock would
  /// (a single large jump wakes each entity once, at the end of the jump).
  void walk_to(int64_t at_ms, int64_t step_ms = 50) {
    while (now() + step_ms < at_ms)
      advance(step_ms);
    advance_to(at_ms);
  }

  /// Milliseconds since `t0` (so a node started later reads later times).
  int64_t now() const { return node_->now_ms() - t0; }

  actors::node& node() { return *node_; }
  caf::actor_system& sys() { return *sys_; }

  /// Sends a request and returns the reply the actors produced after running.
  template <class T, class... Ts>
  caf::expected<T> ask(const caf::actor& dest, Ts&&... xs) {
    auto& self = *self_;
    auto handle = self->request(dest, caf::infinite, std::forward<Ts>(xs)...);
    run();
    if (self->mailbox().empty())
      return caf::make_error(caf::sec::request_timeout);
    caf::expected<T> result{caf::make_error(caf::sec::unexpected_response)};
    std::move(handle).receive([&](T& x) { result = std::move(x); },
                              [&](caf::error& e) { result = std::move(e); });
    return result;
  }

  /// Sends a request whose reply is empty; returns its error, if any.
  template <class... Ts>
  caf::error tell(const caf::actor& dest, Ts&&... xs) {
    auto& self = *self_;
    auto handle = self->request(dest, caf::infinite, std::forward<Ts>(xs)...);
    run();
    if (self->mailbox().empty())
      return caf::make_error(caf::sec::request_timeout);
    caf::error result;
    std::move(handle).receive([] {}, [&](caf::error& e) { result = std::move(e); });
    return result;
  }

  /// An actor that records every event it receives into `out`.
  caf::actor recorder(recorded& out) {
    // `out` is an argument, not a capture: CAF 0.17 trips UBSan when a function
    // actor is spawned without arguments.
    auto fn = [](caf::event_based_actor*, recorded* log) -> caf::behavior {
      return {
        [log](const actors::presence_event& e) { log->presence.push_back(e); },
        [log](const actors::room_event& e) { log->rooms.push_back(e); },
        [log](const actors::intent_event& e) { log->intents.push_back(e); },
        [log](const actors::room_delta& d) { log->deltas.push_back(d); },
      };
    };
    auto a = sys_->spawn(fn, &out);
    recorders_.push_back(a);
    return a;
  }

  /// Opens a session for `user` with an opening signal.
  actors::opened_session open(const std::string& user,
                              actors::signal_kind sig = actors::signal_kind::active,
                              const std::string& device = "web") {
    auto out = node_->router().open_session({user, device, sig, {}, {}});
    run();
    return out;
  }

private:
  caf::actor_system_config cfg_;
  std::unique_ptr<caf::actor_system> sys_;
  caf::scheduler::test_coordinator* sched_ = nullptr;
  std::unique_ptr<actors::node> node_;
  std::unique_ptr<caf::scoped_actor> self_;
  std::vector<caf::actor> recorders_;
  std::unique_ptr<storage::snapshot_writer> writer_;
};

} // namespace presence::testing
