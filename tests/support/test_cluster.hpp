// Several cluster nodes in one process under CAF's deterministic test
// coordinator: the cluster logic (membership, routing, hand-off, replication)
// without sockets, threads or wall-clock waits, beside the multi-process tests
// in tests/integration/.
//
// Each node is an actor system of its own (so each has its own caf::node_id,
// which the membership logic compares), configured as presenced configures
// one (actors::configure, cluster::configure) but with the testing scheduler
// and the middleman's testing network backend: nothing is published, handles
// go from one system to another directly and messages between them are
// enqueued directly, as if BASP had carried them. What `cluster_node` adds
// around the membership actor is played by the harness:
//   - the connector: `start` sends each node its seeds' membership actors
//     (`seed_atom`), and the first seed `found_atom` after `found_after`;
//   - the dialer: answers at once (the node is joined on adopting a view);
//   - the pause watcher: looks fresh (its tick far ahead of the steady clock),
//     so a member seen down is acted on at once, except on a node that
//     `resume`s from a hang: there it is stale until the watcher reports the
//     pause (`paused_atom`), as after SIGCONT; `watcher_fresh` sets it;
//   - step-down: recorded (`stepped_down`) instead of SIGTERM;
//   - the supervisor: `restart` starts a new incarnation under the same id.
//
// Scheduling: CAF's test coordinator runs a resumed actor of another system
// in the *sender's* coordinator's queue, so `run` takes one job at a time
// from each coordinator in turn until none has one (or, with `shuffle`, one
// picked at random among every node's ready actors). `advance` moves every
// system's clock together, in steps (timers fire in about the order they
// would). Actors of a hung node are not run (their jobs wait in the queues
// until `resume`); their timers still fire into their mailboxes.
//
// Failures are what BASP reports: `kill` stops a node's actors (the others'
// monitors see them down); `hang` and `partition` cut the connections between
// two sets of nodes and deliver down messages for the membership actors on the
// other side. A cut connection loses what crosses it: before an actor runs,
// the messages in its mailbox whose sender is on a node cut from its own are
// dropped (a delegated message counts as its original sender's: close enough
// for views; entity traffic across a cut is not modelled faithfully).
#pragma once

#include "actors/messages.hpp"
#include "actors/node.hpp"
#include "actors/system_config.hpp"
#include "cluster/membership.hpp"
#include "cluster/replication.hpp"
#include "cluster/routing.hpp"
#include "cluster/traffic.hpp"
#include "cluster/view.hpp"
#include "config/settings.hpp"

#include "support/test_node.hpp"

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/scheduled_actor.hpp>
#include <caf/scheduler/test_coordinator.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <deque>
#include <initializer_list>
#include <limits>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace presence::testing {

class test_cluster {
public:
  static constexpr int64_t t0 = test_node::t0;

  /// One node: its actor system, presence node and cluster actors.
  struct member {
    std::string id;
    std::vector<std::string> seeds; ///< ids of the nodes it joins through
    config::settings settings;
    caf::actor_system_config cfg;
    std::unique_ptr<caf::actor_system> sys;
    caf::scheduler::test_coordinator* sched = nullptr;
    std::unique_ptr<actors::node> node;
    std::shared_ptr<cluster::cluster_placement> placement;
    cluster::membership_hooks hooks;
    caf::actor membership;
    caf::actor traffic;
    caf::actor replicator;
    std::unique_ptr<caf::scoped_actor> self;
    std::vector<std::string> log;   ///< the membership actor's lines
    int stops = 0;                  ///< step-downs (SIGTERM in production)
    bool hung = false;
    bool killed = false;
    int64_t hung_since = 0;         ///< now() when it hung
  };

  /// `factor` is cluster.replication_factor on every node. With the
  /// environment variable PRESENCE_CLUSTER_SHUFFLE set to a number, messages
  /// run shuffled by that seed (`shuffle`): every test under other
  /// interleavings, to look for races.
  explicit test_cluster(int64_t factor = 1) : factor_(factor) {
    if (const char* seed = std::getenv("PRESENCE_CLUSTER_SHUFFLE"))
      shuffle(std::strtoull(seed, nullptr, 10));
  }

  ~test_cluster() {
    for (auto& m : nodes_) {
      m->hung = false; // every actor must finish, or the system waits for ever
      m->self.reset();
      m->node->shutdown();
      for (auto& a : {m->membership, m->traffic, m->replicator})
        if (a)
          caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
    }
    run();
    for (auto& m : nodes_)
      m->sched->clock().cancel_all();
    run();
    for (auto& m : nodes_) {
      m->membership = nullptr;
      m->traffic = nullptr;
      m->replicator = nullptr;
      m->placement.reset();
      m->node.reset();
    }
  }

  /// The settings of a node: test_node's thresholds, one-second failure
  /// timeout, no storage (nothing on disk), a cluster secret.
  config::settings settings_for(const std::string& id, std::vector<std::string> seeds) const {
    auto s = test_node::default_settings();
    s.node.id = id;
    s.node.seeds = std::move(seeds);
    s.storage.enabled = false;
    s.cluster.secret = "test-cluster-secret";
    s.cluster.failure_timeout_ms = 1000;
    s.cluster.replication_factor = factor_;
    s.cluster.vnodes = 128;
    return s;
  }

  /// The cluster address of node `id` ("<id>:7400"): the first-seed rule
  /// orders nodes by it, so by id.
  static std::string address_of(const std::string& id) { return id + ":7400"; }

  /// Adds node `id`, which joins through `seeds` (node ids; none: it starts a
  /// view of its own at once). It does nothing until `start`.
  member& add_node(const std::string& id, std::vector<std::string> seeds = {}) {
    auto m = std::make_unique<member>();
    m->id = id;
    m->seeds = seeds;
    std::vector<std::string> seed_addresses;
    for (auto& s : seeds)
      seed_addresses.push_back(address_of(s));
    m->settings = settings_for(id, seed_addresses);
    actors::configure(m->cfg, m->settings);
    cluster::configure(m->cfg, m->settings);
    m->cfg.set("scheduler.policy", caf::atom("testing"));
    // The middleman only gives each system a node id of its own here: no
    // sockets, no multiplexer thread, no heartbeats.
    m->cfg.set("middleman.network-backend", caf::atom("testing"));
    m->cfg.set("middleman.manual-multiplexing", true);
    m->cfg.set("middleman.workers", size_t{0});
    m->cfg.set("middleman.heartbeat-interval", caf::timespan{0});
    m->sys = std::make_unique<caf::actor_system>(m->cfg);
    m->sched = &dynamic_cast<caf::scheduler::test_coordinator&>(m->sys->scheduler());
    m->node = std::make_unique<actors::node>(*m->sys, m->settings, t0 + now());
    m->node->start();
    m->placement = std::make_shared<cluster::cluster_placement>(
      *m->node, id, static_cast<size_t>(m->settings.cluster.vnodes));
    m->node->router().set_placement(m->placement);
    if (factor_ > 1) {
      m->replicator =
        cluster::spawn_replicator(*m->sys, m->placement, static_cast<size_t>(factor_));
      m->node->set_replicator(m->replicator);
    }
    m->traffic = cluster::spawn_traffic(*m->sys, *m->node, m->placement);
    m->node->set_traffic(m->traffic);
    m->hooks.watcher_tick->store(fresh_tick);
    auto* raw = m.get();
    m->hooks.log = [raw](const std::string& line) { raw->log.push_back(line); };
    m->hooks.dial = [](std::vector<std::string>, caf::actor done) {
      caf::anon_send(done, caf::ok_atom::value);
    };
    m->hooks.stop = [raw] { ++raw->stops; };
    m->hooks.vnodes = static_cast<size_t>(m->settings.cluster.vnodes);
    cluster::member_info me;
    me.id = id;
    me.cluster_address = address_of(id);
    me.http_address = id + ":8080";
    me.traffic = m->traffic;
    m->membership = cluster::spawn_membership(*m->sys, *m->node, m->placement, me,
                                              seeds.empty(), m->hooks);
    m->node->set_cluster(m->membership);
    m->self = std::make_unique<caf::scoped_actor>(*m->sys, true);
    auto& out = *m;
    nodes_.push_back(std::move(m));
    members_[id] = &out;
    run();
    return out;
  }

  /// Starts joining on each of `ids`, as cluster_node::start does once it
  /// reached every seed: the seeds' membership actors, and on the first seed
  /// `found_atom` after `found_after`. Runs.
  void start(const std::vector<std::string>& ids) {
    for (auto& id : ids) {
      auto& m = at(id);
      for (auto& s : m.seeds)
        if (s != id)
          caf::anon_send(m.membership, cluster::seed_atom::value, at(s).membership);
      if (!m.seeds.empty()
          && cluster::first_seed(m.settings.node.seeds, address_of(id)) == address_of(id))
        caf::delayed_anon_send(m.membership, cluster::found_after,
                               cluster::found_atom::value);
    }
    run();
  }

  /// Adds `ids`, each with every one of them as its seeds, and starts them.
  void start_together(const std::vector<std::string>& ids) {
    for (auto& id : ids)
      add_node(id, ids);
    start(ids);
  }

  /// Runs every ready message on every node until none is left.
  void run() {
    if (shuffle_) {
      while (run_random()) {
      }
      return;
    }
    for (bool progress = true; progress;) {
      progress = false;
      for (auto& m : nodes_)
        progress = run_one(*m->sched) || progress;
    }
  }

  /// From now on, `run` picks the next message to run at random (among the
  /// ready actors of every node) instead of in turn: another interleaving
  /// for each `seed` (0: in turn again). Not an exact replay: random ids
  /// (sessions, join nonces) and maps ordered by actor address vary between
  /// runs, so a seed that fails once may pass the next time (run a range).
  void shuffle(uint64_t seed) {
    shuffle_ = seed != 0;
    random_.seed(seed);
  }

  /// Moves every node's clock forward by `ms` in steps of `step_ms`, running
  /// what each step makes ready.
  void advance(int64_t ms, int64_t step_ms = 10) {
    while (ms > 0) {
      auto step = std::min(ms, step_ms);
      for (auto& m : nodes_)
        m->sched->advance_time(std::chrono::milliseconds{step});
      now_ += step;
      ms -= step;
      run();
    }
  }

  /// Milliseconds of virtual time since the cluster was created.
  int64_t now() const { return now_; }

  member& at(const std::string& id) {
    auto i = members_.find(id);
    if (i == members_.end())
      throw std::out_of_range("no node " + id);
    return *i->second;
  }

  actors::node& node(const std::string& id) { return *at(id).node; }

  /// The ids of the nodes not killed.
  std::vector<std::string> alive() const {
    std::vector<std::string> out;
    for (auto& [id, m] : members_)
      if (!m->killed)
        out.push_back(id);
    return out;
  }

  /// The view node `id`'s membership actor holds (empty if it does not answer:
  /// hung, or killed).
  cluster::view view_of(const std::string& id) {
    auto v = ask<cluster::view>(id, at(id).membership, caf::get_atom::value);
    return v ? *v : cluster::view{};
  }

  /// Stops node `id` as a crash would: every actor of it exits (the others'
  /// monitors see its membership actor down).
  void kill(const std::string& id) {
    auto& m = at(id);
    m.killed = true;
    m.hung = false;
    m.node->shutdown();
    for (auto& a : {m.membership, m.traffic, m.replicator})
      if (a)
        caf::anon_send_exit(a, caf::exit_reason::kill);
    run();
  }

  /// Node `id` stands still (SIGSTOP) past the failure timeout: its actors
  /// stop running, its connections are cut, and every other node is told its
  /// membership actor is down, as BASP reports a connection that timed out.
  void hang(const std::string& id) {
    auto& m = at(id);
    m.hung = true;
    m.hung_since = now_;
    for (auto& [other, o] : members_)
      if (other != id && !o->killed) {
        cut(id, other);
        deliver_down(*o, m);
      }
    run();
  }

  /// Node `id` goes on after a hang (SIGCONT): its connections to every other
  /// node were closed meanwhile (they stay cut; down messages for each), and
  /// its pause watcher, stale until it looks, reports the gap
  /// `watch_after_ms` later.
  void resume(const std::string& id, int64_t watch_after_ms = 50) {
    auto& m = at(id);
    m.hung = false;
    m.hooks.watcher_tick->store(0);
    for (auto& [other, o] : members_)
      if (other != id && !o->killed)
        deliver_down(m, *o);
    run();
    advance(watch_after_ms);
    m.hooks.watcher_tick->store(fresh_tick);
    caf::anon_send(m.membership, cluster::paused_atom::value, now_ - m.hung_since);
    run();
  }

  /// Whether node `id`'s pause watcher looks fresh (the default) or has not
  /// looked for long (a process starved of CPU, or just back from a pause):
  /// then the membership actor weighs the members it sees down together,
  /// 300 ms later, instead of acting on each at once.
  void watcher_fresh(const std::string& id, bool fresh) {
    at(id).hooks.watcher_tick->store(fresh ? fresh_tick : 0);
  }

  /// Node `id` comes back as a new incarnation (its supervisor started it
  /// again after a crash, or after it stepped down): the current one is
  /// killed unless it is already, and a new one with the same id and seeds
  /// starts joining.
  member& restart(const std::string& id) {
    if (!at(id).killed)
      kill(id);
    auto seeds = at(id).seeds;
    members_.erase(id);
    auto& m = add_node(id, seeds);
    start({id});
    return m;
  }

  /// Cuts every connection between `left` and `right`: each side is told the
  /// other's membership actors are down, and loses what the other sends.
  void partition(const std::vector<std::string>& left,
                 const std::vector<std::string>& right) {
    for (auto& l : left)
      for (auto& r : right) {
        cut(l, r);
        deliver_down(at(l), at(r));
        deliver_down(at(r), at(l));
      }
    run();
  }

  /// True once node `id` stepped down (it would stop and rejoin).
  bool stepped_down(const std::string& id) { return at(id).stops > 0; }

  /// Sends a request from node `id` and returns the reply, after running.
  template <class T, class... Ts>
  caf::expected<T> ask(const std::string& id, const caf::actor& dest, Ts&&... xs) {
    auto& self = *at(id).self;
    auto handle = self->request(dest, caf::infinite, std::forward<Ts>(xs)...);
    run();
    if (self->mailbox().empty())
      return caf::make_error(caf::sec::request_timeout);
    caf::expected<T> result{caf::make_error(caf::sec::unexpected_response)};
    std::move(handle).receive([&](T& x) { result = std::move(x); },
                              [&](caf::error& e) { result = std::move(e); });
    return result;
  }

  /// Opens a session for `user` on node `id`.
  actors::opened_session open(const std::string& id, const std::string& user,
                              actors::signal_kind sig = actors::signal_kind::active,
                              const std::string& device = "web") {
    auto out = node(id).router().open_session({user, device, sig, {}, {}});
    run();
    return out;
  }

  /// User `user` as node `id` reads it (through its router: the local entity,
  /// or a stub to its owner).
  caf::expected<actors::user_view> user_via(const std::string& id, const std::string& user) {
    return ask<actors::user_view>(id, node(id).router().user(user), caf::get_atom::value);
  }

  /// The node whose ring owns `key` in node `id`'s view.
  std::string owner_of(const std::string& key, const std::string& id) {
    for (auto& [other, m] : members_)
      if (other != id && at(id).placement->owner_handle(key) == m->traffic)
        return other;
    return at(id).placement->is_local(key) ? id : std::string{};
  }

  /// A user id whose key ("user:<id>") node `on`'s view places on node
  /// `owner`, the first of "u0", "u1", ... not in `taken`.
  std::string user_owned_by(const std::string& owner, const std::string& on,
                            const std::set<std::string>& taken = {}) {
    for (int i = 0; i < 100000; ++i) {
      auto u = "u" + std::to_string(i);
      if (taken.count(u) == 0 && owner_of("user:" + u, on) == owner)
        return u;
    }
    ADD_FAILURE() << "no user owned by " << owner;
    return {};
  }

private:
  /// A pause-watcher tick that always looks fresh (never "long ago").
  static constexpr int64_t fresh_tick = std::numeric_limits<int64_t>::max() / 2;

  // Tells `to` (as BASP would) that `of`'s membership actor is down.
  void deliver_down(member& to, member& of) {
    caf::anon_send(to.membership,
                   caf::down_msg{of.membership.address(),
                                 caf::exit_reason::remote_link_unreachable});
  }

  void cut(const std::string& x, const std::string& y) {
    cuts_.emplace(at(x).sys->node(), at(y).sys->node());
    cuts_.emplace(at(y).sys->node(), at(x).sys->node());
  }

  // The member whose actor `job` is (nullptr if none: a system's own job).
  member* owner_of_job(caf::resumable* job) const {
    auto* a = dynamic_cast<caf::scheduled_actor*>(job);
    if (a == nullptr)
      return nullptr;
    for (auto& m : nodes_)
      if (&a->home_system() == m->sys.get())
        return m.get();
    return nullptr;
  }

  // Drops what `q` holds from nodes cut from `home`.
  template <class Queue>
  void drop_cut(Queue& q, const caf::node_id& home) {
    std::vector<typename Queue::unique_pointer> kept;
    while (auto x = q.take_front())
      if (!x->sender || cuts_.count({home, x->sender->node()}) == 0)
        kept.push_back(std::move(x));
    for (auto& x : kept)
      q.push_back(std::move(x));
  }

  bool runnable(caf::resumable* job) const {
    auto* m = owner_of_job(job);
    return m == nullptr || !m->hung;
  }

  // Runs the first job of `s` that belongs to no hung node; false if none.
  bool run_one(caf::scheduler::test_coordinator& s) {
    auto& jobs = s.jobs;
    auto i = std::find_if(jobs.begin(), jobs.end(),
                          [this](caf::resumable* r) { return runnable(r); });
    if (i == jobs.end())
      return false;
    run_job(s, i);
    return true;
  }

  // Runs a job picked at random among the runnable ones of every node; false
  // if none.
  bool run_random() {
    std::vector<std::pair<caf::scheduler::test_coordinator*, size_t>> ready;
    for (auto& m : nodes_)
      for (size_t i = 0; i < m->sched->jobs.size(); ++i)
        if (runnable(m->sched->jobs[i]))
          ready.emplace_back(m->sched, i);
    if (ready.empty())
      return false;
    auto [s, i] = ready[std::uniform_int_distribution<size_t>{0, ready.size() - 1}(random_)];
    run_job(*s, s->jobs.begin() + static_cast<ptrdiff_t>(i));
    return true;
  }

  // Runs job `i` of `s`, without what reached it over a cut connection.
  void run_job(caf::scheduler::test_coordinator& s, std::deque<caf::resumable*>::iterator i) {
    auto& jobs = s.jobs;
    if (i != jobs.begin())
      std::rotate(jobs.begin(), i, i + 1);
    if (!cuts_.empty())
      if (auto* a = dynamic_cast<caf::scheduled_actor*>(jobs.front())) {
        auto home = a->home_system().node();
        auto& mailbox = a->mailbox();
        mailbox.fetch_more();
        auto& queues = mailbox.queue().queues();
        drop_cut(std::get<caf::scheduled_actor::urgent_queue_index>(queues), home);
        drop_cut(std::get<caf::scheduled_actor::normal_queue_index>(queues), home);
      }
    s.run_once();
  }

  int64_t factor_;
  int64_t now_ = 0;
  bool shuffle_ = false;
  std::mt19937_64 random_;
  /// Pairs of nodes whose connection is cut (both ways listed).
  std::set<std::pair<caf::node_id, caf::node_id>> cuts_;
  /// Every node ever added, each incarnation (a restarted node's earlier
  /// ones stay until the end: the others may still hold their handles).
  std::vector<std::unique_ptr<member>> nodes_;
  /// The current incarnation of each node, by id.
  std::map<std::string, member*> members_;
};

} // namespace presence::testing
