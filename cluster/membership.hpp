// Membership over CAF's network layer (BASP): each node runs one membership
// actor, published on `node.cluster_port`. A node without seeds starts a view of
// its own (epoch 1); a node with seeds connects to the first one it reaches and
// asks to join; the view's leader (smallest id) adds it, numbers the next view
// and sends it to every member. Every member monitors every other member's
// membership actor: when one goes down (a closed connection is seen at once, a
// hung peer after `cluster.failure_timeout_ms` through the middleman's
// heartbeat), the leader of the remaining members issues the view without it. A
// node that restarts joins again under its id and replaces its old incarnation.
//
// Messages (membership actor):
//   (seed_atom, actor)                 connector thread -> no reply; join through it
//   (found_atom)                       itself, on the first seed -> no reply; a
//                                      view of its own unless it joined one
//   (challenge_atom)                   a joining node -> reply a join nonce
//                                      (issue_join_nonce; any member answers)
//   (join_atom, member_info, nonce, proof, joiner_nonce)
//                                      a joining node -> reply (view, view proof)
//                                      if `proof` is join_proof(secret, nonce,
//                                      ...), else errc::forbidden (delegated to
//                                      the leader by other members)
//   (leave_atom, std::string id)       a stopping node -> no reply
//   (view_atom, view)                  the leader -> no reply; adopted if newer
//   (caf::get_atom)                    anyone -> reply view
//   (caf::get_atom, stats_atom)        other members -> reply node_stats
//   (caf::get_atom, status_atom)       the gateway -> reply cluster_status
//   (drain_atom, std::string id)       the gateway -> reply the epoch of the
//                                      view where `id` drains (via the leader)
//   (rebalance_atom)                   the gateway -> reply the epoch of the
//                                      renumbered view (via the leader)
//   (handoff_atom)                     the node, once recovery is done -> no
//                                      reply; hands off what it recovered
//   (release_atom)                     itself -> no reply; recovered copies
//                                      act from then on
//
// It carries views only. Entity traffic between nodes (routed messages,
// hand-off pulls and hints, replica batches) goes to each node's traffic
// actor (cluster/traffic.hpp), whose handle each member_info carries, so a
// burst of it never delays a view change.
//
// After each view, the node hands off what it holds and no longer owns: it
// tells each new owner the keys to pull (a spawned helper computes them).
#pragma once

#include "cluster/ring.hpp"
#include "cluster/view.hpp"
#include "config/settings.hpp"

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/atom.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace presence::actors {
class node;
}

namespace presence::cluster {

using seed_atom = caf::atom_constant<caf::atom("seed")>;
using stats_atom = caf::atom_constant<caf::atom("stats")>;
using status_atom = caf::atom_constant<caf::atom("status")>;
using leave_atom = caf::atom_constant<caf::atom("mleave")>;
using drain_atom = caf::atom_constant<caf::atom("drain")>;
using rebalance_atom = caf::atom_constant<caf::atom("rebalance")>;
using found_atom = caf::atom_constant<caf::atom("found")>;
using challenge_atom = caf::atom_constant<caf::atom("challenge")>;
/// (paused_atom, int64_t gap_ms): the pause watcher -> no reply; the whole
/// process stood still for `gap_ms`, past cluster.failure_timeout_ms.
using paused_atom = caf::atom_constant<caf::atom("paused")>;

class cluster_placement;

/// The proof a joining node sends: HMAC-SHA256 (hex) keyed by the cluster
/// secret over the leader's nonce, the node's id and its cluster address.
std::string join_proof(const std::string& secret, const std::string& nonce,
                       const std::string& id, const std::string& address);

/// A join challenge any member can issue and any member holding the same
/// secret can check: `<expiry>.<random>.<mac>`, the expiry in Unix ms, the mac
/// an HMAC-SHA256 keyed by the secret over the first two. (Kept only by the
/// node that issued it, a nonce asked through one member and checked by
/// another, or by a leader elected meanwhile, refused a node holding the
/// secret.)
std::string issue_join_nonce(const std::string& secret, int64_t now_unix_ms,
                             const std::string& random);

/// True if `nonce` was issued with `secret` and is still valid at `now_unix_ms`
/// (an expiry further ahead than one nonce lifetime is not: a clock far ahead).
bool join_nonce_valid(const std::string& secret, const std::string& nonce,
                      int64_t now_unix_ms);

/// How long a join nonce stays valid.
inline constexpr int64_t join_nonce_ttl_ms = 30'000;

/// The proof the leader answers with: the same HMAC over the joiner's nonce and
/// the view it is given (epoch and member ids), so a node only adopts a view
/// from a cluster that holds its secret.
std::string view_proof(const std::string& secret, const std::string& nonce,
                       uint64_t epoch, const std::vector<std::string>& ids);

/// Whether the MEMBERS file (the ids a restarted node awaits) is rewritten
/// when this node's view goes from `before` to `after`: not when members only
/// left. A full stop shrinks every node's view to itself before it exits, and
/// the file then named that node alone: after the restart the others'
/// sessions were "not found" instead of awaited (resumes refused).
bool rewrite_members(std::vector<std::string> before, std::vector<std::string> after);

/// How long the first seed tries to join an existing cluster before it founds
/// one (Akka Cluster's first-seed rule: only that node may start a cluster).
inline constexpr auto found_after = std::chrono::seconds{2};

/// The founder among `seeds` and `self` ("host:port" cluster addresses): the
/// smallest by host, then by port as a number. Every node started with the
/// same seed list (listing itself or not) picks the same one.
std::string first_seed(const std::vector<std::string>& seeds, const std::string& self);

/// "host:port" at which other nodes reach this node's `port`: `node.advertise`
/// (else `node.bind`), the spelling its seeds' lists use for it, so that the
/// first-seed rule compares like with like.
std::string advertised_address(const config::settings& s, uint16_t port);

/// One node's own figures, for GET /v1/cluster.
struct node_stats {
  std::string id;
  int64_t actors = 0;
};

/// One row of GET /v1/cluster.
struct node_status {
  std::string id;
  std::string address;         ///< the gateway's host:port
  std::string cluster_address; ///< the CAF endpoint's host:port
  std::string status;          ///< "up", "draining", or "unreachable" when it did not answer
  double share = 0;            ///< fraction of keys the ring gives it
  int64_t actors = -1;         ///< entities it holds; -1 if it did not answer
};

/// GET /v1/cluster.
struct cluster_status {
  uint64_t epoch = 0;
  std::string leader;
  std::vector<node_status> nodes;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, node_stats& x) {
  return f(caf::meta::type_name("node_stats"), x.id, x.actors);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, node_status& x) {
  return f(caf::meta::type_name("node_status"), x.id, x.address, x.cluster_address,
           x.status, x.share, x.actors);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, cluster_status& x) {
  return f(caf::meta::type_name("cluster_status"), x.epoch, x.leader, x.nodes);
}

/// Loads CAF's middleman and registers the cluster's message types; sets the
/// middleman's heartbeat so that a hung peer is noticed within
/// `cluster.failure_timeout_ms`. Call before creating the actor system.
void configure(caf::actor_system_config& cfg, const config::settings& s);

/// What the membership actor shares with the process around it: flags it sets
/// and callbacks it calls. `cluster_node` wires them to its threads; tests
/// (tests/support/test_cluster.hpp) to a deterministic harness. The flags are
/// atomics: threads outside the actor read them (and write `watcher_tick`).
struct membership_hooks {
  using log_fn = std::function<void(const std::string&)>;
  /// True while this node is a member of a view (connected to every member).
  std::shared_ptr<std::atomic<bool>> joined = std::make_shared<std::atomic<bool>>(false);
  /// Set once this node stepped down (the minority side, or back from a pause).
  std::shared_ptr<std::atomic<bool>> minority = std::make_shared<std::atomic<bool>>(false);
  /// When the pause watcher last looked (steady ms, std::chrono::steady_clock):
  /// long ago (more than 150 ms), a member seen down is acted on only after
  /// 300 ms of actor time (the watcher may report a pause of its own meanwhile).
  std::shared_ptr<std::atomic<int64_t>> watcher_tick =
    std::make_shared<std::atomic<int64_t>>(0);
  /// Where the actor's lines go (may be empty).
  log_fn log;
  /// Connects directly to the members at these addresses, then sends the
  /// actor (caf::ok_atom): the node counts as joined from then on. Empty: the
  /// node counts as joined as soon as it is in a view.
  std::function<void(std::vector<std::string>, caf::actor)> dial;
  /// Stops the process once this node stepped down (after `minority` is set);
  /// empty: SIGTERM to itself, so it exits with `minority_exit_code` and comes
  /// back as a new incarnation.
  std::function<void()> stop;
  size_t vnodes = ring::default_vnodes;
};

/// Spawns the membership actor of node `n` (messages above) as member `me`
/// (`me.handle` is set to the actor; `me.traffic` should be the node's traffic
/// actor). With `bootstrap`, it starts a view of its own (epoch 1); else it
/// waits for `seed_atom`s, and `found_atom` on the first seed. It keeps
/// `placement` on its current view.
caf::actor spawn_membership(caf::actor_system& sys, actors::node& n,
                            std::shared_ptr<cluster_placement> placement, member_info me,
                            bool bootstrap, membership_hooks hooks);

/// This node's part of the cluster: the membership actor, its published port
/// and the thread that reaches a seed. Thread-safe accessors.
class cluster_node {
public:
  using log_fn = membership_hooks::log_fn;

  cluster_node(caf::actor_system& sys, actors::node& n, const config::settings& s,
               log_fn log);
  ~cluster_node();

  cluster_node(const cluster_node&) = delete;
  cluster_node& operator=(const cluster_node&) = delete;

  /// Publishes the membership actor on node.cluster_port and starts joining.
  /// Returns the port; throws std::runtime_error naming node.cluster_port when it
  /// cannot listen. `http_port` is what other nodes report as this gateway.
  uint16_t start(uint16_t http_port);

  /// True once this node is a member of a view.
  bool joined() const { return joined_->load(std::memory_order_acquire); }

  /// True once this node found itself on the minority side of a partition (or
  /// resumed from a hang to find the others gone): it then stops the process
  /// (SIGTERM to itself), which exits with `minority_exit_code` so that its
  /// supervisor starts it again as a new incarnation that rejoins.
  bool minority() const { return minority_->load(std::memory_order_acquire); }

  static constexpr int minority_exit_code = 3;

  /// Tells the leader this node leaves, stops joining and the actor.
  void stop();

  caf::actor actor() const { return actor_; }

  /// The traffic actor (cluster/traffic.hpp); valid after `start`.
  caf::actor traffic() const { return traffic_; }

private:
  /// Connects a node that just joined to every member (direct connections
  /// instead of routes through the node that introduced them).
  void dial_loop();

  /// Watches for pauses of the whole process (SIGSTOP, a stalled VM) longer
  /// than cluster.failure_timeout_ms, and tells the membership actor.
  void pause_loop(caf::actor membership);

  caf::actor_system& sys_;
  actors::node& node_;
  const config::settings& cfg_;
  log_fn log_;
  caf::actor actor_;
  caf::actor traffic_;
  std::shared_ptr<std::atomic<bool>> joined_ = std::make_shared<std::atomic<bool>>(false);
  std::shared_ptr<std::atomic<bool>> minority_ = std::make_shared<std::atomic<bool>>(false);
  /// When the pause watcher last looked (steady ms).
  std::shared_ptr<std::atomic<int64_t>> watcher_tick_ =
    std::make_shared<std::atomic<int64_t>>(0);
  std::atomic<bool> stopping_{false};
  std::thread connector_;
  struct dial_queue {
    struct job {
      std::vector<std::string> addresses;
      caf::actor done;
    };
    std::mutex mtx;
    std::condition_variable cv;
    std::deque<job> jobs;  // guarded by mtx
    bool stopping = false; // guarded by mtx
  };
  std::shared_ptr<dial_queue> dials_ = std::make_shared<dial_queue>();
  std::thread dialer_;
  std::thread pause_watch_;
};

} // namespace presence::cluster
