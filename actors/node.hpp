// The presence model of one node: its configuration, clock, timer service,
// metrics and router, shared by every entity actor of the node. Create it after
// the actor system, call `start()`, and before destroying it call `shutdown()`
// and let the actors finish (`await_all_actors_done`, or the test coordinator's
// `run`): actors hold a reference to it until they terminate.
#pragma once

#include "actors/clock.hpp"
#include "actors/metrics.hpp"
#include "actors/router.hpp"
#include "actors/timer_service.hpp"
#include "config/settings.hpp"
#include "storage/writer.hpp"

#include <atomic>
#include <mutex>
#include <vector>

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>

namespace presence::actors {

class node {
public:
  /// `wall_start_ms` is the epoch time of the actor clock's current instant
  /// (`clock::system_now_ms()` in production, a fixed value in tests).
  node(caf::actor_system& sys, config::settings cfg, int64_t wall_start_ms);
  ~node();

  node(const node&) = delete;
  node& operator=(const node&) = delete;

  /// Starts the timer ticker.
  void start();

  /// Stops the ticker, drops pending timers and sends every entity an exit.
  void shutdown();

  caf::actor_system& system() { return sys_; }
  const config::settings& cfg() const { return cfg_; }
  const config::presence_section& presence() const { return cfg_.presence; }
  const config::rooms_section& rooms() const { return cfg_.rooms; }
  const actors::clock& clock() const { return clock_; }
  int64_t now_ms() const { return clock_.now_ms(); }
  timer_service& timers() { return timers_; }
  runtime_metrics& metrics() { return metrics_; }
  actors::router& router() { return router_; }

  /// The snapshot writer, or nullptr when storage is off. Set before `start()`
  /// and before any entity exists; it must outlive every entity actor.
  storage::snapshot_writer* writer() const { return writer_; }
  void set_writer(storage::snapshot_writer* w) { writer_ = w; }

  /// The node's store (for its size in /metrics), or nullptr.
  storage::store* store() const { return store_; }
  void set_store(storage::store* s) { store_ = s; }

  /// The cluster's membership actor (GET /v1/cluster), or invalid before the
  /// cluster part started. Set once, before the gateway serves requests.
  const caf::actor& cluster() const { return cluster_; }
  void set_cluster(caf::actor a) { cluster_ = std::move(a); }

  /// The cluster's traffic actor (cluster/traffic.hpp): where other nodes send
  /// this node's entity traffic, and the `via` of what it pulls. Invalid
  /// before the cluster part started. Set once, with `set_cluster`.
  const caf::actor& traffic() const { return traffic_; }
  void set_traffic(caf::actor a) { traffic_ = std::move(a); }

  /// The cluster's replicator (cluster/replication.hpp), or invalid when
  /// nothing is replicated. Set once, before the node serves requests.
  const caf::actor& replicator() const { return replicator_; }
  void set_replicator(caf::actor a) { replicator_ = std::move(a); }

  /// Actors told (announce_atom) when the cluster's view changes: owners may
  /// have moved (the gateway's fan-out shards subscribe again). Thread-safe.
  void add_view_listener(caf::actor a) {
    std::lock_guard<std::mutex> guard{listeners_mtx_};
    listeners_.push_back(std::move(a));
  }
  std::vector<caf::actor> view_listeners() const {
    std::lock_guard<std::mutex> guard{listeners_mtx_};
    return listeners_;
  }

  /// False while the node recovers (the gateway answers 503); true otherwise.
  bool ready() const { return ready_.load(std::memory_order_acquire); }
  void set_ready(bool x) { ready_.store(x, std::memory_order_release); }

private:
  caf::actor_system& sys_;
  config::settings cfg_;
  actors::clock clock_;
  timer_service timers_;
  runtime_metrics metrics_;
  actors::router router_;
  caf::actor ticker_;
  storage::snapshot_writer* writer_ = nullptr;
  storage::store* store_ = nullptr;
  caf::actor cluster_;
  caf::actor traffic_;
  caf::actor replicator_;
  mutable std::mutex listeners_mtx_;
  std::vector<caf::actor> listeners_; // guarded by listeners_mtx_
  std::atomic<bool> ready_{true};
};

} // namespace presence::actors
