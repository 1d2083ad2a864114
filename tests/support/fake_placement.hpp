// A placement for tests of one node: every key is local except the ones a test
// routes elsewhere, which the node then reaches through a stub (a forwarder, as
// the cluster's stubs are) to the actor the test named: a live one stands for an
// entity on another node, a dead one for an owner that cannot be reached.
// Thread-safe. Call `stop()` before the node shuts down: the stubs live until then.
#pragma once

#include "actors/router.hpp"

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>

#include <atomic>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace presence::testing {

/// An actor that has already terminated (an owner that is gone): a request
/// sent to it, or delegated to it, is answered with an error.
inline caf::actor dead_actor(caf::actor_system& sys) {
  auto gone = sys.spawn([](caf::event_based_actor* self, int) -> caf::behavior {
    self->quit();
    return {[](int) {}};
  }, 0);
  caf::scoped_actor waiter{sys};
  waiter->monitor(gone);
  waiter->receive([](const caf::down_msg&) {});
  return gone;
}

class fake_placement : public actors::placement {
public:
  explicit fake_placement(caf::actor_system& sys) : sys_(sys) {
  }

  /// From now on the node reaches `key` through a stub to `to`.
  void route(const std::string& key, caf::actor to) {
    std::lock_guard<std::mutex> guard{mtx_};
    routes_[key] = std::move(to);
  }

  /// Stops every stub handed out.
  void stop() {
    std::lock_guard<std::mutex> guard{mtx_};
    for (auto& s : stubs_)
      caf::anon_send_exit(s, caf::exit_reason::user_shutdown);
    stubs_.clear();
  }

  bool is_local(const std::string& key) const override {
    std::lock_guard<std::mutex> guard{mtx_};
    return routes_.count(key) == 0;
  }

  caf::actor make_stub(const std::string& key) override {
    std::lock_guard<std::mutex> guard{mtx_};
    auto to = routes_.at(key);
    auto stub = sys_.spawn(
      [](caf::event_based_actor* self, caf::actor dest) -> caf::behavior {
        self->set_default_handler(
          [dest](caf::scheduled_actor* s,
                 caf::message_view& x) -> caf::result<caf::message> {
            return s->delegate(dest, x.move_content_to_message());
          });
        // Matches nothing: everything goes to the default handler.
        return {[](actors::route_atom, actors::route_atom) {}};
      },
      std::move(to));
    stubs_.push_back(stub);
    return stub;
  }

  std::string pinned_id(const std::string& random_part) const override {
    return random_part;
  }
  /// The view's epoch the node reports (0: not a member of a cluster yet).
  void set_epoch(uint64_t e) { epoch_.store(e); }

  uint64_t epoch() const override { return epoch_.load(); }
  caf::actor handoff_source(const std::string&) const override { return {}; }
  std::optional<caf::message> take_replica(const std::string&) override {
    return std::nullopt;
  }
  std::optional<caf::message> take_lost_replica(const std::string&) override {
    return std::nullopt;
  }
  void hand_off(const std::string&) override {}
  bool watchable(const caf::node_id&) const override { return true; }
  caf::result<caf::message> forward(caf::scheduled_actor*, const std::string&,
                                    const caf::actor&, uint64_t, caf::message,
                                    uint8_t) override {
    return caf::make_error(caf::sec::request_receiver_down);
  }

private:
  caf::actor_system& sys_;
  mutable std::mutex mtx_;
  std::map<std::string, caf::actor> routes_; // guarded by mtx_
  std::vector<caf::actor> stubs_;            // guarded by mtx_
  std::atomic<uint64_t> epoch_{1};
};

} // namespace presence::testing
