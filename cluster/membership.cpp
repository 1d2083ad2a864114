#include "cluster/membership.hpp"

#include "actors/messages.hpp"
#include "actors/node.hpp"
#include "cluster/replication.hpp"
#include "cluster/ring.hpp"
#include "cluster/routing.hpp"
#include "cluster/traffic.hpp"
#include "actors/census.hpp"
#include "actors/errors.hpp"
#include "actors/handoff.hpp"
#include "actors/ids.hpp"

#include <caf/event_based_actor.hpp>
#include <caf/io/middleman.hpp>
#include <caf/send.hpp>
#include <caf/stateful_actor.hpp>

#include <openssl/crypto.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <charconv>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <chrono>
#include <map>
#include <set>
#include <stdexcept>

#include <sys/types.h>
#include <unistd.h>

namespace presence::cluster {

namespace {

using actors::join_atom;

/// How long a request to another node may take before it counts as unanswered.
constexpr auto remote_timeout = std::chrono::seconds{2};
/// Pause between two attempts to join through a seed.
constexpr auto rejoin_pause = std::chrono::milliseconds{500};

struct membership_state {
  actors::node* node = nullptr;
  std::shared_ptr<cluster_placement> placement;
  member_info me;
  view current;
  std::set<caf::actor_addr> monitored;
  std::set<std::string> dead; ///< members seen down, not yet out of the view
  /// What keep-majority weighs a burst of removals against: the view before
  /// the first of them (`burst_window`). Weighed against the view it had
  /// issued itself one removal earlier, a leader cut off from both others
  /// removed one (2 of 3), then the other (1 of 2 with the smallest id), and
  /// went on alone beside the others' view: a split brain.
  view base;
  int64_t last_removal_at = 0; ///< node ms of the latest view without a member
  bool settle_pending = false; ///< a settle_atom is on its way
  /// When the pause watcher last looked (steady ms): long ago means this
  /// process may just have stood still.
  std::shared_ptr<std::atomic<int64_t>> watcher_tick;
  bool announce_pending = false; ///< joined, announcing once connected
  std::shared_ptr<std::atomic<bool>> joined;
  std::shared_ptr<std::atomic<bool>> minority; ///< set once: the process stops
  cluster_node::log_fn log;
  /// Connects directly to the members at these addresses, then sends the
  /// actor (caf::ok_atom): the node is then joined.
  std::function<void(std::vector<std::string>, caf::actor)> dial;
  /// Stops the process after a step-down (empty: SIGTERM to itself).
  std::function<void()> stop;
  size_t vnodes = ring::default_vnodes;
  bool refresh_pending = false; ///< leader: the view goes out again soon
  /// A seed that is a member did not answer a join in time (it is busy): the
  /// first seed then waits instead of founding a second cluster.
  bool seed_busy = false;
  /// A seed answered as a member of a cluster (it gave a challenge) since
  /// the first seed last looked: it waits for that cluster meanwhile.
  bool cluster_seen = false;
  /// The cluster refused this node (it does not hold the secret): the first
  /// seed never founds another.
  bool refused = false;
  bool said_waiting = false; ///< logged that it waits for the cluster it saw
  /// The seeds this node reached (their nodes). A first seed that founds the
  /// cluster waits (not ready) until those join, up to `found_after`: after a
  /// full restart it answered alone for every key meanwhile (sessions of the
  /// others "not found", users offline).
  std::set<caf::node_id> reached;
  std::set<caf::node_id> awaited;
  std::string secret; ///< the cluster secret (cluster.secret or auth.secret)
  /// Join nonces used here, with their expiry (Unix ms): each joins once.
  std::map<std::string, int64_t> nonces;

  static inline const char* name = "presence.membership";
};

using suspect_atom = caf::atom_constant<caf::atom("suspect")>;
using settle_atom = caf::atom_constant<caf::atom("settle")>;
using awaited_atom = caf::atom_constant<caf::atom("awaited")>;
using refresh_atom = caf::atom_constant<caf::atom("refresh")>;

/// How long a node that may just have stood still collects the members it
/// sees down before it acts on them (its pause watcher reports meanwhile):
/// one at a time, each step kept a "majority" of the view before it.
constexpr auto settle_after = std::chrono::milliseconds{300};
/// The pause watcher looks every 50 ms: no look for this long means the
/// process may have stood still.
constexpr int64_t pause_suspect_ms = 150;

/// How long the leader waits before issuing the view again for a member that
/// another node saw down but the leader sees alive.
constexpr auto refresh_delay = std::chrono::milliseconds{300};

using membership_actor_type = caf::stateful_actor<membership_state>;

std::string members_path(const config::settings& s) {
  return s.node.data_dir + "/MEMBERS";
}

// The node ids of the current view, one per line, replaced atomically (a
// rename): read at the next start (cluster_placement::await_nodes).
void write_members(const std::string& path, const std::vector<std::string>& ids) {
  auto tmp = path + ".tmp";
  {
    std::ofstream out{tmp, std::ios::trunc};
    for (auto& id : ids)
      out << id << '\n';
    if (!out)
      return;
  }
  std::rename(tmp.c_str(), path.c_str());
}

std::vector<std::string> read_members(const std::string& path) {
  std::vector<std::string> ids;
  std::ifstream in{path};
  for (std::string line; std::getline(in, line);)
    if (!line.empty())
      ids.push_back(line);
  return ids;
}

bool is_leader(const membership_state& st, const view& v) {
  auto* l = v.leader();
  return l != nullptr && l->id == st.me.id;
}

// Tells every local session and view listener that owners may have moved.
void announce_all(membership_actor_type* self) {
  auto& st = self->state;
  st.announce_pending = false;
  for (auto& s : st.node->router().local_sessions())
    self->send(s, actors::announce_atom::value);
  // Pending intents watch their targets again (moved, or promoted from a
  // replica that may not know them).
  for (auto& i : st.node->router().local_intents())
    self->send(i, actors::announce_atom::value);
  for (auto& l : st.node->view_listeners())
    self->send(l, actors::announce_atom::value);
}

/// Keys per hand-off hint message.
constexpr size_t hint_batch = 2000;

// After a view change, on a helper (the membership actor goes on with views):
//  - promotes the replicas of keys whose owner left the view and that this
//    node owns now (they start from their replica before anyone asks);
//  - tells the owners of what this node holds and no longer owns to pull it;
//  - drops the replicas this node no longer holds for anyone;
//  - asks every entity it owns for its state again, for the replicas that
//    the new view adds.
// The helper of hand_off_all (arguments, not captures: CAF 0.17 dereferences
// an empty argument tuple when an actor is spawned without any).
void hand_off_helper(caf::event_based_actor* helper, actors::node* n,
                     std::shared_ptr<cluster_placement> placement, caf::actor me,
                     size_t factor) {
  actors::census::track(helper, actors::census::kind::helper);
  auto& r = n->router();
  auto& replicas = placement->replicas();
  std::vector<std::string> drop;
  for (auto& key : replicas.keys()) {
    if (placement->promotes(key))
      r.local(key);
    else if (!placement->holds_replica(key, factor))
      drop.push_back(key);
  }
  replicas.drop(drop);
  n->metrics().replicas_held.store(static_cast<int64_t>(replicas.size()),
                                   std::memory_order_relaxed);
  auto keys = r.local_keys();
  auto by_owner = placement->owners_elsewhere(keys);
  auto epoch = placement->epoch();
  for (auto& [owner, mine] : by_owner)
    for (size_t i = 0; i < mine.size(); i += hint_batch) {
      auto end = std::min(mine.size(), i + hint_batch);
      helper->send(owner, actors::handoff_atom::value,
                   std::vector<std::string>(mine.begin() + static_cast<ptrdiff_t>(i),
                                            mine.begin() + static_cast<ptrdiff_t>(end)),
                   me, epoch);
    }
  if (n->replicator())
    for (auto& key : keys)
      if (r.owns(key))
        if (auto a = r.find_local(key))
          helper->send(a, actors::replicate_atom::value);
  helper->quit();
}

void hand_off_all(membership_actor_type* self) {
  auto& st = self->state;
  auto factor = static_cast<size_t>(
    std::max<int64_t>(1, st.node->cfg().cluster.replication_factor));
  // The owners pull from this node's traffic actor, and tell it back what
  // they hold already.
  self->spawn(hand_off_helper, st.node, st.placement, st.me.traffic, factor);
}

// Makes `v` the current view; if this node issued it, sends it to the others.
// The view as /metrics shows it: epoch, this node's share, members by status.
void publish_view(membership_state& st) {
  auto& m = st.node->metrics();
  m.cluster_epoch.store(static_cast<int64_t>(st.current.epoch), std::memory_order_relaxed);
  double share = 0;
  if (st.current.find(st.me.id) != nullptr)
    share = st.placement->shares({st.me.id}).front();
  m.cluster_share_ppm.store(static_cast<int64_t>(share * 1e6 + 0.5), std::memory_order_relaxed);
  auto c = count_members(st.current, st.dead);
  using actors::member_status;
  m.cluster_members[static_cast<size_t>(member_status::up)].store(c.up);
  m.cluster_members[static_cast<size_t>(member_status::draining)].store(c.draining);
  m.cluster_members[static_cast<size_t>(member_status::unreachable)].store(c.unreachable);
}

} // namespace

bool rewrite_members(std::vector<std::string> before, std::vector<std::string> after) {
  std::sort(before.begin(), before.end());
  std::sort(after.begin(), after.end());
  return after != before && !std::includes(before.begin(), before.end(), after.begin(), after.end());
}

namespace {

// Members removed within this long of each other count as one burst of
// downs (a partition's heartbeats time out within about one failure timeout
// of each other); failures further apart are weighed one view at a time.
int64_t burst_window(const membership_state& st) {
  return 2 * std::max<int64_t>(1000, st.node->cfg().cluster.failure_timeout_ms);
}

bool in_burst(const membership_state& st) {
  return !st.base.members.empty()
         && st.node->now_ms() - st.last_removal_at <= burst_window(st);
}

void adopt(membership_actor_type* self, view v, bool issued) {
  auto& st = self->state;
  auto before = st.current.ids();
  {
    // The reference of keep-majority: a view that adds a member is agreed on
    // by its leader; the first removal of a burst keeps the view before it.
    bool grows = false;
    bool shrinks = false;
    for (auto& m : v.members)
      grows = grows || st.current.find(m.id) == nullptr;
    for (auto& m : st.current.members)
      shrinks = shrinks || v.find(m.id) == nullptr;
    if (shrinks) {
      if (!in_burst(st))
        st.base = st.current;
      st.last_removal_at = st.node->now_ms();
    } else if (grows) {
      st.base = v;
    }
  }
  st.current = std::move(v);
  st.placement->update(st.current);
  if (st.node->cfg().storage.enabled && rewrite_members(before, st.current.ids())
      && st.current.find(st.me.id) != nullptr)
    write_members(members_path(st.node->cfg()), st.current.ids());
  st.node->router().drop_forwarders();
  bool member = st.current.find(st.me.id) != nullptr;
  bool was_member = std::find(before.begin(), before.end(), st.me.id) != before.end();
  bool dialing = member && !was_member && st.current.members.size() > 1 && st.dial;
  if (member && !was_member) {
    // Sessions recovered from disk stay quiet until the members had the time
    // to hand this node their newer copies (they do on adopting this view);
    // the rest are the live copies and act from then on.
    auto hold = std::max<int64_t>(1000, st.node->cfg().cluster.failure_timeout_ms);
    self->delayed_send(self, std::chrono::milliseconds{hold}, actors::release_atom::value);
  }
  if (st.current.ids() != before && member) {
    // Owners moved (or this node just joined, maybe with sessions it recovered
    // from disk): every local session tells its user (wherever it lives now) of
    // itself and its rooms, so presence heals on the new owners. A node that
    // just joined does so once it is connected to every member.
    if (dialing)
      st.announce_pending = true;
    else
      announce_all(self);
  }
  if (member)
    hand_off_all(self);
  // What waited in the traffic actor for this view goes on.
  if (st.me.traffic)
    self->send(st.me.traffic, view_atom::value, st.current.epoch);
  for (auto& m : st.current.members) {
    if (m.id == st.me.id || !m.handle)
      continue;
    if (st.monitored.insert(m.handle.address()).second)
      self->monitor(m.handle);
  }
  // The leader keeps whom it saw down; the others believe the leader's view
  // (a member it still lists is watched again, and reported again if down).
  bool leading = is_leader(st, st.current);
  for (auto i = st.dead.begin(); i != st.dead.end();)
    i = st.current.find(*i) == nullptr || !leading ? st.dead.erase(i) : std::next(i);
  publish_view(st);
  if (issued)
    for (auto& m : st.current.members)
      if (m.id != st.me.id && m.handle)
        self->send(m.handle, view_atom::value, st.current);
  if (dialing) {
    // Just joined: connect directly to every member before this node is ready,
    // so that no message to or from them takes (or races with) a route through
    // the node that introduced them. Only joiners dial: two nodes never open
    // connections to each other at the same time.
    std::vector<std::string> addresses;
    for (auto& m : st.current.members)
      if (m.id != st.me.id && !m.cluster_address.empty())
        addresses.push_back(m.cluster_address);
    st.dial(std::move(addresses), caf::actor_cast<caf::actor>(self));
  } else if (!member) {
    st.joined->store(false, std::memory_order_release);
  } else if (!st.dial || st.current.members.size() == 1) {
    st.joined->store(true, std::memory_order_release);
  }
  if (member && !st.awaited.empty()) {
    for (auto& m : st.current.members)
      if (m.handle)
        st.awaited.erase(m.handle.node());
    st.joined->store(st.awaited.empty(), std::memory_order_release);
  }
  if (st.log) {
    std::string ids;
    for (auto& m : st.current.members)
      ids += (ids.empty() ? "" : ", ") + m.id;
    st.log("cluster view " + std::to_string(st.current.epoch) + ": [" + ids + "], leader "
           + (st.current.leader() != nullptr ? st.current.leader()->id : std::string{"-"}));
  }
}

// This node may not go on (the minority side, or back from a pause the others
// took for a death): it stops serving at once and the process stops, to come
// back as a new incarnation that rejoins (Akka downs the minority the same
// way). It issues no view: no second cluster forms.
void step_down(membership_actor_type* self, const std::string& why) {
  auto& st = self->state;
  if (st.minority->exchange(true))
    return;
  if (st.log)
    st.log("cluster: " + why + ": it stops (exit code 3) to rejoin as a new incarnation");
  st.node->set_ready(false);
  st.joined->store(false, std::memory_order_release);
  if (st.stop)
    st.stop();
  else
    ::kill(::getpid(), SIGTERM);
}

// Removes every member seen down; the leader of what remains issues the view.
void settle_dead(membership_actor_type* self) {
  auto& st = self->state;
  auto next = st.current;
  bool changed = false;
  for (auto& id : st.dead)
    if (auto v = without_member(next, id)) {
      next = std::move(*v);
      changed = true;
    }
  const auto& base = in_burst(st) ? st.base : st.current;
  if (changed && !keeps_majority(base, next)) {
    step_down(self, "this node reaches " + std::to_string(next.members.size()) + " of the "
                      + std::to_string(base.members.size()) + " members of view "
                      + std::to_string(base.epoch) + ": it is on the minority side");
    return;
  }
  if (!changed || !is_leader(st, next) || st.minority->load())
    return;
  next.epoch = st.current.epoch + 1; // one step, however many left
  adopt(self, std::move(next), true);
}

// Issues `next` (this node leads) and answers with its epoch; or passes the
// request on to the leader.
template <class... Ts>
caf::result<uint64_t> via_leader(membership_actor_type* self, Ts... xs) {
  auto& st = self->state;
  auto rp = self->make_response_promise<uint64_t>();
  self->request(st.current.leader()->handle, remote_timeout, xs...)
    .then([rp](uint64_t epoch) mutable { rp.deliver(epoch); },
          [rp](caf::error& e) mutable { rp.deliver(std::move(e)); });
  return rp;
}

int64_t steady_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
           std::chrono::steady_clock::now().time_since_epoch())
    .count();
}

/// How many used join nonces are remembered at most (within their lifetime).
constexpr size_t max_nonces = 1024;
/// Pause before a refused node tries again (its operator has to fix the secret).
constexpr auto refused_pause = std::chrono::seconds{5};

// Joins through `seed`: the leader's challenge, then the join with its proof;
// the answer's view is adopted only if it proves the same secret.
void try_join(membership_actor_type* self, const caf::actor& seed) {
  auto retry = [self, seed](caf::error& e) {
    // "Not joined yet" is request_receiver_down; a timeout means a member
    // that is busy (or hung).
    if (e != caf::sec::request_receiver_down)
      self->state.seed_busy = true;
    if (!self->state.joined->load())
      self->delayed_send(self, rejoin_pause, seed_atom::value, seed);
  };
  self->request(seed, remote_timeout, challenge_atom::value)
    .then(
      [self, seed, retry](std::string& nonce) {
        auto& st = self->state;
        st.cluster_seen = true;
        auto mine = actors::random_id("", 16);
        auto proof = join_proof(st.secret, nonce, st.me.id, st.me.cluster_address);
        self->request(seed, remote_timeout, join_atom::value, st.me, nonce, proof, mine)
          .then(
            [self, seed, mine](view& v, std::string& signature) {
              auto& st = self->state;
              if (signature != view_proof(st.secret, mine, v.epoch, v.ids())) {
                st.refused = true;
                if (st.log)
                  st.log("cluster: refused the view of the node it joined through: "
                         "it does not prove this node's cluster secret "
                         "(cluster.secret, else auth.secret)");
                self->delayed_send(self, refused_pause, seed_atom::value, seed);
                return;
              }
              if (newer(v, st.current))
                adopt(self, std::move(v), false);
            },
            [self, seed, retry](caf::error& e) mutable {
              if (actors::code_of(e) == actors::errc::forbidden) {
                // A member already (joined through another seed): a join
                // still on its way was answered by this node itself.
                auto& st = self->state;
                if (st.current.find(st.me.id) != nullptr)
                  return;
                st.refused = true;
                if (st.log)
                  st.log("cluster: the cluster refused this node: " + actors::render(e));
                self->delayed_send(self, refused_pause, seed_atom::value, seed);
                return;
              }
              retry(e);
            });
      },
      retry);
}

// Unix time in ms (join nonces are checked on another node than the one
// that issued them: a steady clock is not shared).
int64_t unix_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
           std::chrono::system_clock::now().time_since_epoch())
    .count();
}

// True if `proof` answers a valid join nonce, used once here (a member's
// nonce may be checked by another: the leader, or one elected since).
bool check_join(membership_actor_type* self, const member_info& m,
                const std::string& nonce, const std::string& proof) {
  auto& st = self->state;
  auto now = unix_ms();
  if (!join_nonce_valid(st.secret, nonce, now))
    return false;
  for (auto i = st.nonces.begin(); i != st.nonces.end();)
    i = i->second < now ? st.nonces.erase(i) : std::next(i);
  if (st.nonces.size() >= max_nonces)
    return false; // the joiner tries again
  if (!st.nonces.emplace(nonce, now + join_nonce_ttl_ms).second)
    return false; // replayed
  auto expected = join_proof(st.secret, nonce, m.id, m.cluster_address);
  return expected.size() == proof.size()
         && CRYPTO_memcmp(expected.data(), proof.data(), proof.size()) == 0;
}

caf::behavior membership_actor(membership_actor_type* self, actors::node* n,
                               std::shared_ptr<cluster_placement> placement,
                               member_info me, bool bootstrap, membership_hooks hooks) {
  auto& st = self->state;
  st.node = n;
  st.placement = std::move(placement);
  st.me = std::move(me);
  st.me.handle = caf::actor_cast<caf::actor>(self);
  st.joined = std::move(hooks.joined);
  st.minority = std::move(hooks.minority);
  st.watcher_tick = std::move(hooks.watcher_tick);
  st.secret = n->cfg().cluster.secret.empty() ? n->cfg().auth.secret
                                              : n->cfg().cluster.secret;
  st.log = std::move(hooks.log);
  st.dial = std::move(hooks.dial);
  st.stop = std::move(hooks.stop);
  st.vnodes = hooks.vnodes;
  self->set_down_handler([self](caf::down_msg& dm) {
    auto& st = self->state;
    st.monitored.erase(dm.source);
    auto* m = st.current.find(dm.source);
    if (m == nullptr)
      return; // an earlier incarnation, already replaced
    if (st.log)
      st.log("cluster: node " + m->id + " is down (" + to_string(dm.reason) + ")");
    st.dead.insert(m->id);
    publish_view(st);
    // Right after this process stood still, every peer looks silent at once
    // and the pause watcher has not had its look yet: wait for it (and for
    // the other downs) before acting. Otherwise act at once.
    auto since_tick = steady_ms() - st.watcher_tick->load(std::memory_order_relaxed);
    if (since_tick > pause_suspect_ms) {
      if (!st.settle_pending) {
        st.settle_pending = true;
        self->delayed_send(self, settle_after, settle_atom::value);
      }
    } else if (!st.settle_pending) {
      settle_dead(self);
    }
    // Not the leader: it may see the member alive (this node lost only its
    // connection, or never had one yet). It checks and, if so, issues the
    // view again, with handles that reach the member.
    if (auto* l = st.current.leader(); l != nullptr && l->id != st.me.id && st.current.find(dm.source) != nullptr)
      self->send(l->handle, suspect_atom::value, st.current.find(dm.source)->id);
  });
  // A stray reply or unknown message is logged, never fatal; nor is an
  // error that answers one of its plain sends (an announce to a session that
  // became a forwarder and found no owner): CAF's default stopped this actor,
  // and with it the node's place in the cluster.
  self->set_default_handler(caf::print_and_drop);
  actors::keep_on_errors(self);
  actors::census::track(self, actors::census::kind::membership);
  if (bootstrap)
    adopt(self, view{1, {st.me}}, false);
  return {
    [self](seed_atom, const caf::actor& seed) {
      auto& st = self->state;
      if (seed)
        st.reached.insert(seed.node());
      // (A founder waiting for the seeds it reached is a member already.)
      if (!st.joined->load() && st.current.find(st.me.id) == nullptr)
        try_join(self, seed);
    },
    [self](awaited_atom) {
      auto& st = self->state;
      if (st.awaited.empty())
        return;
      if (st.log)
        st.log("cluster: " + std::to_string(st.awaited.size())
               + " reached seed(s) did not join in time; ready without them");
      st.awaited.clear();
      if (st.current.find(st.me.id) != nullptr)
        st.joined->store(true, std::memory_order_release);
    },
    [self](found_atom) {
      auto& st = self->state;
      if (!st.current.members.empty())
        return; // joined a cluster (or is joining one)
      if (st.refused) {
        // A cluster refused this node (another secret): never a second one.
        return;
      }
      if (st.cluster_seen) {
        // A seed answered as a member since the last look: joining that
        // cluster is the only way, so the first seed looks again later. Only
        // as long as one keeps answering: waiting for good, a restarted first
        // seed that saw a member about to step down waited for a cluster that
        // was gone, and no node ever founded one again.
        st.cluster_seen = false;
        if (st.log && !st.said_waiting)
          st.log("cluster: a seed is in a cluster: this first seed joins it instead of "
                 "founding one");
        st.said_waiting = true;
        self->delayed_send(self, found_after, found_atom::value);
        return;
      }
      if (st.seed_busy) {
        // A seed is in a cluster but slow to answer: joining it is right.
        st.seed_busy = false;
        self->delayed_send(self, found_after, found_atom::value);
        return;
      }
      if (st.log)
        st.log("cluster: no seed is in a cluster; this node is the first seed and "
               "founds one");
      st.awaited = st.reached;
      st.awaited.erase(self->node());
      if (!st.awaited.empty())
        self->delayed_send(self, found_after, awaited_atom::value);
      adopt(self, view{1, {st.me}}, false);
    },
    [self](challenge_atom) -> caf::result<std::string> {
      auto& st = self->state;
      if (st.current.members.empty())
        return caf::make_error(caf::sec::request_receiver_down); // not joined yet
      return issue_join_nonce(st.secret, unix_ms(), actors::random_id("", 16));
    },
    [self](join_atom, member_info& m, std::string& nonce, std::string& proof,
           std::string& theirs) -> caf::result<view, std::string> {
      auto& st = self->state;
      if (st.current.members.empty())
        return caf::make_error(caf::sec::request_receiver_down); // not joined yet
      if (!is_leader(st, st.current)) {
        // The leader numbers views: pass the request on, answer with its reply.
        auto rp = self->make_response_promise<view, std::string>();
        self->request(st.current.leader()->handle, remote_timeout, join_atom::value,
                      std::move(m), std::move(nonce), std::move(proof), std::move(theirs))
          .then([rp](view& v, std::string& p) mutable { rp.deliver(std::move(v), std::move(p)); },
                [rp](caf::error& e) mutable { rp.deliver(std::move(e)); });
        return rp;
      }
      if (!check_join(self, m, nonce, proof)) {
        // This node's own join through another seed, passed on to it once it
        // became the leader (its nonce came from the leader before): it is a
        // member already, and refusing itself is no news for the log.
        bool own = m.id == st.me.id && m.handle == st.me.handle;
        if (st.log && !own)
          st.log("cluster: refused node '" + m.id + "' at " + m.cluster_address
                 + ": it does not prove the cluster secret (cluster.secret, else "
                   "auth.secret)");
        return caf::make_error(actors::errc::forbidden,
                               std::string{"node '"} + m.id
                                 + "' does not hold the cluster secret");
      }
      st.dead.erase(m.id);
      auto next = with_member(st.current, std::move(m));
      adopt(self, next, true);
      auto signature = view_proof(st.secret, theirs, next.epoch, next.ids());
      return caf::result<view, std::string>{std::move(next), std::move(signature)};
    },
    [self](leave_atom, const std::string& id) {
      auto& st = self->state;
      if (st.current.find(id) == nullptr)
        return;
      if (!is_leader(st, st.current)) {
        self->send(st.current.leader()->handle, leave_atom::value, id);
        return;
      }
      auto next = without_member(st.current, id);
      if (!next)
        return;
      if (id == st.me.id) {
        // The leader itself stops: the others get the view without it; this
        // node keeps its own until it exits.
        for (auto& m : next->members)
          if (m.handle)
            self->send(m.handle, view_atom::value, *next);
        return;
      }
      adopt(self, std::move(*next), true);
    },
    [self](view_atom, view& v) {
      // Only a member of this node's view may tell it a new one.
      auto& st = self->state;
      auto sender = self->current_sender();
      bool trusted = sender && sender->node() == self->node();
      for (auto& m : st.current.members)
        trusted = trusted || (sender && m.handle && m.handle.node() == sender->node());
      if (!trusted) {
        // A joiner gets its first view as the (signed) answer to its join.
        if (st.log && !st.current.members.empty())
          st.log("cluster: ignored a view from a node that is not a member");
        return;
      }
      if (newer(v, self->state.current)) {
        adopt(self, std::move(v), false);
        settle_dead(self); // a member this node saw die may still be listed
      }
    },
    [self](caf::put_atom, const std::string& cluster_address) {
      auto& st = self->state;
      st.me.cluster_address = cluster_address;
      for (auto& m : st.current.members)
        if (m.id == st.me.id)
          m.cluster_address = cluster_address;
    },
    [self](caf::ok_atom) {
      // The dialer connected to every member of the view this node joined.
      auto& st = self->state;
      if (st.current.find(st.me.id) != nullptr) {
        if (st.announce_pending)
          announce_all(self);
        st.joined->store(true, std::memory_order_release);
      }
    },
    [self](caf::get_atom) { return self->state.current; },
    [self](settle_atom) {
      self->state.settle_pending = false;
      settle_dead(self);
    },
    [self](paused_atom, int64_t gap_ms) {
      // The whole process stood still (SIGSTOP, a VM or GC-like pause) past
      // the failure timeout: the others have declared this node down and
      // carried on. Acting on what it sees now (every peer silent) would
      // form a second cluster.
      auto& st = self->state;
      if (st.current.find(st.me.id) == nullptr || st.current.members.size() < 2)
        return;
      step_down(self, "this node stood still for " + std::to_string(gap_ms)
                        + " ms, past cluster.failure_timeout_ms: the others have taken it "
                          "for dead");
    },
    [self](suspect_atom, const std::string& id) {
      auto& st = self->state;
      if (!is_leader(st, st.current) || st.current.find(id) == nullptr || st.dead.count(id) > 0
          || st.refresh_pending)
        return;
      // Alive for the leader: the view again in a moment (once the suspecting
      // node can reach it), so that every node monitors it anew.
      st.refresh_pending = true;
      self->delayed_send(self, refresh_delay, refresh_atom::value);
    },
    [self](refresh_atom) {
      auto& st = self->state;
      st.refresh_pending = false;
      if (is_leader(st, st.current))
        adopt(self, renumbered(st.current), true);
    },
    [self](drain_atom, const std::string& id) -> caf::result<uint64_t> {
      auto& st = self->state;
      if (st.current.find(id) == nullptr)
        return caf::make_error(actors::errc::invalid_argument,
                               std::string{"no such node in the cluster: "} + id);
      if (!is_leader(st, st.current))
        return via_leader(self, drain_atom::value, id);
      auto next = with_draining(st.current, id);
      if (!next)
        return st.current.epoch; // drains already
      if (next->owner_ids().empty())
        return caf::make_error(actors::errc::conflict,
                               std::string{"the last node that owns keys cannot drain"});
      if (st.log)
        st.log("cluster: draining node " + id);
      adopt(self, *next, true);
      return st.current.epoch;
    },
    [self](rebalance_atom) -> caf::result<uint64_t> {
      auto& st = self->state;
      if (st.current.members.empty())
        return caf::make_error(caf::sec::request_receiver_down);
      if (!is_leader(st, st.current))
        return via_leader(self, rebalance_atom::value);
      adopt(self, renumbered(st.current), true);
      return st.current.epoch;
    },
    [self](actors::handoff_atom) {
      // Recovery is done (the node may have joined while it read its disk).
      hand_off_all(self);
      // What it recovered after the release was due is released in turn, once
      // the members had the time to hand their copies over (a held session
      // recovered late told its user nothing until its own client came back).
      auto& st = self->state;
      if (st.current.find(st.me.id) != nullptr) {
        auto hold = std::max<int64_t>(1000, st.node->cfg().cluster.failure_timeout_ms);
        self->delayed_send(self, std::chrono::milliseconds{hold},
                           actors::release_atom::value);
      }
    },
    [self](actors::release_atom) {
      for (auto& s : self->state.node->router().release_recovered())
        self->send(s, actors::release_atom::value);
    },
    [self](caf::get_atom, stats_atom) {
      auto& st = self->state;
      return node_stats{st.me.id, static_cast<int64_t>(st.node->router().size())};
    },
    [self](caf::get_atom, status_atom) -> caf::result<cluster_status> {
      auto& st = self->state;
      auto out = std::make_shared<cluster_status>();
      out->epoch = st.current.epoch;
      out->leader = st.current.leader() != nullptr ? st.current.leader()->id : "";
      auto shares = st.placement->shares(st.current.ids());
      for (size_t i = 0; i < st.current.members.size(); ++i) {
        auto& m = st.current.members[i];
        out->nodes.push_back(node_status{m.id, m.http_address, m.cluster_address,
                                         "unreachable", shares[i], -1});
      }
      auto rp = self->make_response_promise<cluster_status>();
      auto pending = std::make_shared<size_t>(st.current.members.size());
      if (*pending == 0) {
        rp.deliver(*out);
        return rp;
      }
      for (size_t i = 0; i < st.current.members.size(); ++i) {
        auto done = [out, pending, rp]() mutable {
          if (--*pending == 0)
            rp.deliver(*out);
        };
        self->request(st.current.members[i].handle, remote_timeout, caf::get_atom::value,
                      stats_atom::value)
          .then(
            [out, i, done, draining = st.current.members[i].draining](node_stats& ns) mutable {
              out->nodes[i].status = draining ? "draining" : "up";
              out->nodes[i].actors = ns.actors;
              done();
            },
            [done](caf::error&) mutable { done(); });
      }
      return rp;
    },
  };
}

std::pair<std::string, uint16_t> split_host_port(const std::string& hp) {
  auto colon = hp.rfind(':');
  return {hp.substr(0, colon), static_cast<uint16_t>(std::stoi(hp.substr(colon + 1)))};
}

} // namespace

caf::actor spawn_membership(caf::actor_system& sys, actors::node& n,
                            std::shared_ptr<cluster_placement> placement, member_info me,
                            bool bootstrap, membership_hooks hooks) {
  return sys.spawn(membership_actor, &n, std::move(placement), std::move(me), bootstrap,
                   std::move(hooks));
}

namespace {

std::string hmac_hex(const std::string& key, const std::string& data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), out, &len);
  static const char* digits = "0123456789abcdef";
  std::string hex;
  for (unsigned int i = 0; i < len; ++i) {
    hex += digits[out[i] >> 4];
    hex += digits[out[i] & 15];
  }
  return hex;
}

} // namespace

std::string join_proof(const std::string& secret, const std::string& nonce,
                       const std::string& id, const std::string& address) {
  return hmac_hex(secret, "presenced-join\n" + nonce + "\n" + id + "\n" + address);
}

std::string issue_join_nonce(const std::string& secret, int64_t now_unix_ms,
                             const std::string& random) {
  auto body = std::to_string(now_unix_ms + join_nonce_ttl_ms) + "." + random;
  return body + "." + hmac_hex(secret, "presenced-nonce\n" + body);
}

bool join_nonce_valid(const std::string& secret, const std::string& nonce,
                      int64_t now_unix_ms) {
  auto dot = nonce.rfind('.');
  auto first = nonce.find('.');
  if (dot == std::string::npos || first == dot || first == 0)
    return false;
  auto body = nonce.substr(0, dot);
  auto mac = nonce.substr(dot + 1);
  auto expected = hmac_hex(secret, "presenced-nonce\n" + body);
  if (expected.size() != mac.size()
      || CRYPTO_memcmp(expected.data(), mac.data(), mac.size()) != 0)
    return false;
  int64_t expiry = 0;
  auto digits = nonce.substr(0, first);
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), expiry);
  if (ec != std::errc{} || end != digits.data() + digits.size())
    return false;
  return expiry >= now_unix_ms && expiry <= now_unix_ms + join_nonce_ttl_ms;
}

std::string view_proof(const std::string& secret, const std::string& nonce,
                       uint64_t epoch, const std::vector<std::string>& ids) {
  std::string data = "presenced-view\n" + nonce + "\n" + std::to_string(epoch);
  for (auto& id : ids)
    data += "\n" + id;
  return hmac_hex(secret, data);
}

std::string first_seed(const std::vector<std::string>& seeds, const std::string& self) {
  auto key = [](const std::string& hp) {
    auto [host, port] = split_host_port(hp);
    return std::make_pair(host, port);
  };
  std::string best = self;
  for (auto& s : seeds)
    if (key(s) < key(best))
      best = s;
  return best;
}



std::string advertised_address(const config::settings& s, uint16_t port) {
  return (s.node.advertise.empty() ? s.node.bind : s.node.advertise) + ":"
         + std::to_string(port);
}

void configure(caf::actor_system_config& cfg, const config::settings& s) {
  cfg.load<caf::io::middleman>();
  // A hung peer: the connection times out after failure_timeout_ms without
  // traffic; heartbeats keep healthy connections busy.
  auto timeout = std::chrono::milliseconds{s.cluster.failure_timeout_ms};
  cfg.set("middleman.heartbeat-interval", caf::timespan{timeout / 3});
  cfg.set("middleman.connection-timeout", caf::timespan{timeout});
  // Joiners connect to every member themselves (cluster_node's dialer); CAF's
  // own automatic connections would race with them.
  cfg.set("middleman.enable-automatic-connections", false);
  cfg.add_message_type<member_info>("presence.member_info");
  cfg.add_message_type<view>("presence.cluster_view");
  cfg.add_message_type<node_stats>("presence.node_stats");
  cfg.add_message_type<cluster_status>("presence.cluster_status");
  cfg.add_message_type<replica_batch>("presence.replica_batch");
}

cluster_node::cluster_node(caf::actor_system& sys, actors::node& n,
                           const config::settings& s, log_fn log)
  : sys_(sys), node_(n), cfg_(s), log_(std::move(log)) {
}

cluster_node::~cluster_node() {
  stop();
}

uint16_t cluster_node::start(uint16_t http_port) {
  member_info me;
  me.id = cfg_.node.id;
  me.http_address = advertised_address(cfg_, http_port);
  bool bootstrap = cfg_.node.seeds.empty();
  auto placement = std::make_shared<cluster_placement>(
    node_, me.id, static_cast<size_t>(cfg_.cluster.vnodes));
  // The members of the last view before this start may come back after this
  // node (a full restart): their sessions and intents are awaited.
  if (cfg_.storage.enabled)
    placement->await_nodes(read_members(members_path(cfg_)));
  node_.router().set_placement(placement);
  if (cfg_.cluster.replication_factor > 1)
    node_.set_replicator(spawn_replicator(
      sys_, placement, static_cast<size_t>(cfg_.cluster.replication_factor)));
  std::function<void(std::vector<std::string>, caf::actor)> dial =
    [q = dials_](std::vector<std::string> addresses, caf::actor done) {
      std::lock_guard<std::mutex> guard{q->mtx};
      q->jobs.push_back({std::move(addresses), std::move(done)});
      q->cv.notify_one();
    };
  watcher_tick_->store(steady_ms());
  traffic_ = spawn_traffic(sys_, node_, placement);
  me.traffic = traffic_;
  membership_hooks hooks;
  hooks.joined = joined_;
  hooks.minority = minority_;
  hooks.watcher_tick = watcher_tick_;
  hooks.log = log_;
  hooks.dial = std::move(dial);
  hooks.vnodes = static_cast<size_t>(cfg_.cluster.vnodes);
  actor_ = spawn_membership(sys_, node_, placement, me, bootstrap, std::move(hooks));
  dialer_ = std::thread{[this] { dial_loop(); }};
  pause_watch_ = std::thread{[this, a = actor_] { pause_loop(a); }};
  auto port = sys_.middleman().publish(actor_, static_cast<uint16_t>(cfg_.node.cluster_port),
                                       cfg_.node.bind.c_str(), true);
  if (!port) {
    caf::anon_send_exit(actor_, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(traffic_, caf::exit_reason::user_shutdown);
    actor_ = nullptr;
    traffic_ = nullptr;
    throw std::runtime_error("node.cluster_port: cannot listen on " + cfg_.node.bind + ":"
                             + std::to_string(cfg_.node.cluster_port) + ": "
                             + sys_.render(port.error()));
  }
  // Where the others reach this node's CAF endpoint (tests bind port 0); sent
  // before any join starts.
  caf::anon_send(actor_, caf::put_atom::value, advertised_address(cfg_, *port));
  if (!cfg_.node.seeds.empty() && cfg_.cluster.secret.empty() && cfg_.auth.secret.empty()
      && log_)
    log_("cluster: WARNING: no cluster.secret and no auth.secret: any process that "
         "reaches node.cluster_port can join this cluster");
  if (!bootstrap) {
    auto self_address = advertised_address(cfg_, *port);
    // Seeds started together all wait for a cluster: the first seed founds it
    // if none has one (found_after), the others join it (Akka's rule).
    if (first_seed(cfg_.node.seeds, self_address) == self_address) {
      if (log_)
        log_("cluster: this node (" + self_address + ") is the first seed");
      caf::delayed_anon_send(actor_, found_after, found_atom::value);
    }
    connector_ = std::thread{[this, self_address] {
      // Reach every seed (but itself); the actor joins through each one it is
      // told of until one has a view for it. Every seed is looked up again on
      // each round: a seed that stopped and started again (a new process on
      // the same port) is a new handle, told to the actor in turn. (Reached
      // once, a seed was never looked up again: after a double kill the
      // survivor stepped down and restarted, the restarted others kept asking
      // its dead incarnation, and the cluster never formed again.)
      std::map<std::string, caf::actor> told;
      while (!stopping_.load() && !joined()) {
        for (auto& seed : cfg_.node.seeds) {
          if (stopping_.load() || joined())
            return;
          if (seed == self_address)
            continue;
          auto [host, p] = split_host_port(seed);
          auto handle = sys_.middleman().remote_actor(host, p);
          if (handle && told[seed] != *handle) {
            if (log_)
              log_("cluster: reached seed " + seed + (told[seed] ? " (a new incarnation)" : ""));
            told[seed] = *handle;
            caf::anon_send(actor_, seed_atom::value, *handle);
          }
        }
        std::this_thread::sleep_for(std::chrono::milliseconds{200});
      }
    }};
  }
  return *port;
}

void cluster_node::dial_loop() {
  for (;;) {
    dial_queue::job job;
    {
      std::unique_lock<std::mutex> lock{dials_->mtx};
      dials_->cv.wait(lock, [this] { return dials_->stopping || !dials_->jobs.empty(); });
      if (dials_->stopping)
        return;
      job = std::move(dials_->jobs.front());
      dials_->jobs.pop_front();
    }
    // Opens (or reuses) a direct BASP connection; the handle itself is not needed.
    // A busy member may miss one attempt (CAF's connect timeout): a few more,
    // before this node counts as joined without that connection.
    constexpr int attempts = 5;
    for (auto& address : job.addresses) {
      auto [host, port] = split_host_port(address);
      for (int i = 1; i <= attempts && !stopping_.load(); ++i) {
        auto handle = sys_.middleman().remote_actor(host, port);
        if (handle)
          break;
        if (log_)
          log_("cluster: cannot connect to member at " + address + " (attempt "
               + std::to_string(i) + " of " + std::to_string(attempts)
               + "): " + sys_.render(handle.error()));
        std::this_thread::sleep_for(std::chrono::milliseconds{100 * i});
      }
    }
    caf::anon_send(job.done, caf::ok_atom::value);
  }
}

void cluster_node::pause_loop(caf::actor membership) {
  // A thread of its own, not an actor: it must not mistake a busy scheduler
  // for a pause. SIGSTOP stops it with the rest; the first look after SIGCONT
  // sees the gap.
  constexpr auto tick = std::chrono::milliseconds{50};
  auto limit = std::chrono::milliseconds{cfg_.cluster.failure_timeout_ms};
  auto last = std::chrono::steady_clock::now();
  while (!stopping_.load()) {
    std::this_thread::sleep_for(tick);
    auto now = std::chrono::steady_clock::now();
    auto gap = now - last - tick;
    last = now;
    watcher_tick_->store(steady_ms(), std::memory_order_relaxed);
    if (gap >= limit)
      caf::anon_send(membership, paused_atom::value,
                     static_cast<int64_t>(
                       std::chrono::duration_cast<std::chrono::milliseconds>(gap + tick).count()));
  }
}

void cluster_node::stop() {
  stopping_.store(true);
  if (pause_watch_.joinable())
    pause_watch_.join();
  if (connector_.joinable())
    connector_.join();
  {
    std::lock_guard<std::mutex> guard{dials_->mtx};
    dials_->stopping = true;
    dials_->cv.notify_all();
  }
  if (dialer_.joinable())
    dialer_.join();
  if (actor_) {
    caf::anon_send(actor_, leave_atom::value, cfg_.node.id);
    caf::anon_send_exit(actor_, caf::exit_reason::user_shutdown);
    actor_ = nullptr;
  }
  if (traffic_) {
    caf::anon_send_exit(traffic_, caf::exit_reason::user_shutdown);
    traffic_ = nullptr;
  }
}

} // namespace presence::cluster
