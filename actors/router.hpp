// The one way to reach an entity: by key ("session:<id>", "user:<id>",
// "room:<id>", "intent:<id>"). On a single node every key is local; the cluster
// replaces the lookup with ring placement behind this same interface. Users and
// rooms are spawned on first use; sessions and intents only by their create calls
// (a signal to an unknown session is `session_not_found`). Thread-safe: sharded
// maps, each behind a mutex; spawning happens outside the locks.
#pragma once

#include "actors/messages.hpp"
#include "storage/records.hpp"

#include <caf/actor.hpp>
#include <caf/message.hpp>
#include <caf/node_id.hpp>
#include <caf/result.hpp>
#include <caf/scheduled_actor.hpp>

#include <array>
#include <atomic>
#include <memory>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace presence::actors {

class node;

/// What a client asks for when it opens a session.
struct session_spec {
  std::string user_id;
  std::string device;
  signal_kind initial = signal_kind::active;
  std::string session_id;   ///< empty: a random id is chosen
  std::string resume_token; ///< empty: a random token is chosen
};

/// The answer to opening a session.
struct opened_session {
  std::string session_id;
  std::string user_id;
  std::string resume_token;
  state current = state::offline;
  int64_t heartbeat_ms = 0;
  int64_t server_time = 0;
  caf::actor handle;
};

/// What a client asks for when it creates an intent.
struct intent_spec {
  std::string from_user;
  std::string to_user; ///< exactly one of to_user and to_room
  std::string to_room;
  std::string kind = "call";
  std::string note;
  int64_t ttl_ms = 0; ///< 0: default_intent_ttl_ms
};

/// Default and bounds of an intent's time to live.
inline constexpr int64_t default_intent_ttl_ms = 300'000;
inline constexpr int64_t max_intent_ttl_ms = 86'400'000;
/// How long a finished intent stays readable by id.
inline constexpr int64_t finished_intent_retention_ms = 300'000;

/// A passivated room's durable state (its record and timeline, oldest first).
struct dormant_room {
  storage::room_record rec;
  std::vector<storage::timeline_record> timeline;
};

/// Where keys live once the node is part of a cluster: the cluster sets one
/// (before the node is ready); without it every key is local. Thread-safe.
class placement {
public:
  virtual ~placement() = default;

  /// True if this node owns `key` in the current view.
  virtual bool is_local(const std::string& key) const = 0;

  /// A local actor that forwards every message it receives to the current owner
  /// of `key` (replies go straight back to the original sender).
  virtual caf::actor make_stub(const std::string& key) = 0;

  /// A fresh id for a session or intent created here: one that names this node,
  /// so that the entity is found here whatever the view (they never move).
  virtual std::string pinned_id(const std::string& random_part) const = 0;

  /// The epoch of the view in use.
  virtual uint64_t epoch() const = 0;

  /// The traffic actor of the node that owned `key` in the previous view,
  /// when this node owns it now and that node is still a member (the entity is
  /// pulled from there: handoff.hpp); else an invalid handle.
  virtual caf::actor handoff_source(const std::string& key) const = 0;

  /// The replica of `key` (its transfer), taken out of this node's replicas,
  /// when this node owns the key now and its previous owner left the view
  /// without handing it off (it died); else nothing.
  virtual std::optional<caf::message> take_replica(const std::string& key) = 0;
  /// Removes and returns this node's replica of `key`, if it holds one,
  /// whatever the view says: its owner's node went down under a pull, before
  /// a view without it.
  virtual std::optional<caf::message> take_lost_replica(const std::string& key) = 0;

  /// True if `key` names a session or intent pinned to a node that left the
  /// view by failing (not by draining) so recently that the entity may come
  /// back with it (a restart recovers it from disk): a request for it is
  /// answered `unavailable` (try again), not "no such session".
  virtual bool awaited(const std::string& key) const { (void)key; return false; }

  /// Tells the owner of `key` (not this node) to pull it from here.
  virtual void hand_off(const std::string& key) = 0;

  /// True if actors of `n` may be watched: this node, or a member of the
  /// current view. A handle from a replica may name an actor of a node that
  /// is gone, and monitoring the proxy of a node whose connection just closed
  /// crashed inside CAF.
  virtual bool watchable(const caf::node_id& n) const = 0;

  /// Sends `content` on from a forwarder of `key` (an entity that moved):
  /// through `via` with `epoch` while this node's view is older than that,
  /// else to the key's owner in this node's view. `hops`: the route hops the
  /// message took to reach the forwarder (0 from a held handle).
  virtual caf::result<caf::message> forward(caf::scheduled_actor* self,
                                            const std::string& key, const caf::actor& via,
                                            uint64_t epoch, caf::message content,
                                            uint8_t hops = 0) = 0;
};

class router {
public:
  explicit router(node& n);

  /// Routes keys this node does not own through `p` (set once, before serving).
  void set_placement(std::shared_ptr<placement> p) { placement_ = std::move(p); }
  placement* where() const { return placement_.get(); }

  /// True if actors of `n` may be monitored (placement::watchable; always on a
  /// single node, never once the node stops).
  bool watchable(const caf::node_id& n) const {
    if (closed())
      return false;
    return !placement_ || placement_->watchable(n);
  }

  /// True if this node owns `key` (always without a cluster).
  bool owns(const std::string& key) const { return !remote(key); }

  /// The local entity of `key` ("user:<id>" and "room:<id>" are spawned on first
  /// use), ignoring placement: for the cluster's resolver on the owner node.
  caf::actor local(const std::string& key);

  /// Every local session (re-announced to their users after a view change).
  std::vector<caf::actor> local_sessions() const;

  /// Every local intent (pending ones watch their targets again after a view
  /// change).
  std::vector<caf::actor> local_intents() const;

  /// True once the node stops (clear() ran): nothing is handed out.
  bool closed() const { return closed_.load(std::memory_order_acquire); }

  /// The keys of every local entity and dormant user (hand-off after a view
  /// change).
  std::vector<std::string> local_keys() const;

  /// The local entity of `key`, if there is one (nothing is spawned).
  caf::actor find_local(const std::string& key) const;

  /// Starts `key` here by pulling it from `source` (a hand-off hint from the
  /// old owner, sent under its view `epoch`). An entity of that key that this node recovered from its own
  /// disk is replaced (the cluster's copy is newer: it carried on while this
  /// node was down) and forwards to the pulled one. Returns false when another
  /// entity of the key is here already (nothing is pulled).
  bool take_over(const std::string& key, const caf::actor& source, uint64_t epoch);

  /// The entity of `key` if this node recovered it from disk and the cluster
  /// has not reconciled it yet (it then no longer counts as recovered).
  caf::actor take_recovered(const std::string& key);

  /// Removes and returns the replica of `key` this node holds, if any: the
  /// fallback of a pull whose old owner went down.
  std::optional<caf::message> take_lost_replica(const std::string& key);

  /// Nothing counts as recovered from now on (the cluster had its chance to
  /// hand this node newer copies: what it recovered is the live copy). Returns
  /// the sessions and users among them, which were held (told nothing to
  /// anyone) and are to be released (`release_atom`).
  std::vector<caf::actor> release_recovered();

  /// Removes and returns the dormant record of `key` ("user:<id>"), if any.
  std::optional<storage::user_record> take_dormant(const std::string& key);

  /// The actor for `key`, or an invalid handle if it does not exist.
  caf::actor find(const std::string& key) const;

  caf::actor session(const std::string& id) const { return find("session:" + id); }
  caf::actor intent(const std::string& id) const { return find("intent:" + id); }

  /// The user's actor, spawned on first use.
  caf::actor user(const std::string& id);

  /// For a read of the user: its actor if one runs here, is on its way here or
  /// lives on another node (a stub); else an invalid handle, and `*rest` holds
  /// its dormant record if it has one (nothing is spawned: a read of an
  /// unknown id costs no actor).
  caf::actor user_for_read(const std::string& id,
                           std::optional<storage::user_record>* rest);

  /// For a read of the room: as `user_for_read`; an invalid handle means a room
  /// that never held anything (its view is empty). A dormant room is started.
  caf::actor room_for_read(const std::string& id);

  /// The entity of a "user:" or "room:" key wherever it lives (spawned on
  /// first use), as `user` and `room`.
  caf::actor entity(const std::string& key);

  /// An idle user or room stops: `key` is unregistered if it still maps to
  /// `who`, and what it leaves behind is kept dormant (`user` for a user,
  /// `room` for a room; nothing for an entity with nothing durable). Returns
  /// false (nothing changes) when `key` maps to another actor or the node
  /// stops.
  bool passivate(const std::string& key, const caf::actor_addr& who,
                 std::optional<storage::user_record> user,
                 std::optional<dormant_room> room);

  /// Dormant rooms (tests, diagnostics).
  size_t dormant_rooms() const;

  /// The room's actor, spawned on first use.
  caf::actor room(const std::string& id);

  /// Opens a session (spawns its actor). Ids must already be valid. In a
  /// cluster the random session id names this node: a session lives on the
  /// node its client talks to, whatever the view.
  opened_session open_session(const session_spec& spec);

  /// Creates a pending intent; returns its first view and actor, or an error
  /// (`invalid_argument`) for a bad spec.
  caf::expected<std::pair<intent_view, caf::actor>> create_intent(intent_spec spec);

  /// Registers the actor `spawn` returns (recovery) under `key`, unless one is
  /// there already (the cluster handed this node its copy first): then
  /// nothing is spawned and the result is empty. It counts as recovered until
  /// the cluster's copy replaces it or the node owns it (`take_over`). Spawns
  /// under the key's lock: a spawned actor starts later, on a worker.
  caf::actor adopt(const std::string& key, const std::function<caf::actor()>& spawn);

  /// Keeps a restored user that has no live session as a record only: its actor
  /// is spawned from it on first use (so a node restarted with many offline
  /// users does not hold an actor for each).
  /// Returns false (keeps nothing) when the user has an actor here already.
  bool keep_dormant(storage::user_record rec);

  /// Makes room for `n` more entities (recovery: no rehashing while it spawns).
  void reserve(size_t n);

  /// Dormant users (tests, diagnostics).
  size_t dormant() const;

  /// Removes `key` if it still maps to `who` (an entity that terminates).
  void forget(const std::string& key, const caf::actor_addr& who);

  /// Removes `key` (as `forget`) for an entity handed to another node, which
  /// lives on as a forwarder; it is told to exit with the node (`all`). While
  /// this node's view still gives it the key (the new owner's view is newer),
  /// the forwarder stays registered, so that nothing here starts the entity
  /// again; `drop_forwarders` removes it once the view moved on.
  void retire(const std::string& key, const caf::actor_addr& who);

  /// A pending entity of `key` pulls it from node `from` (until `pulled`):
  /// that node's own pull of the key from here would wait for this one, and
  /// this one for it (both until the hand-off timeout), so it is refused.
  void note_pulling(const std::string& key, const caf::node_id& from);
  void pulled(const std::string& key);
  bool pulls_from(const std::string& key, const caf::node_id& n) const;

  /// Whether `who` is a forwarder `retire` kept registered under `key`.
  bool forwards(const std::string& key, const caf::actor_addr& who) const;

  /// Keeps `who` (an actor no longer registered under a key: a forwarder, a
  /// passivated entity) to be told to exit when the node stops (at once if it
  /// is stopping): whoever still holds it would keep it, and the stop waiting.
  void stop_with_node(const caf::actor_addr& who);

  /// Unregisters the forwarders `retire` kept (after a view change).
  void drop_forwarders();

  /// Every registered actor (shutdown, diagnostics).
  std::vector<caf::actor> all() const;

  /// Number of registered entities.
  size_t size() const;

  /// Drops every reference (shutdown, after the entities were told to exit);
  /// from then on nothing is spawned (a late message cannot start an entity
  /// that the stopping node would wait for).
  void clear();

private:
  static constexpr size_t shard_count = 32;
  /// Stubs of remote keys kept per shard for reuse (then the shard's are dropped).
  static constexpr size_t max_stubs_per_shard = 256;
  struct shard {
    mutable std::mutex mtx;
    std::unordered_map<std::string, caf::actor> actors; // guarded by mtx
    std::unordered_map<std::string, storage::user_record> dormant; // guarded by mtx
    std::unordered_map<std::string, dormant_room> dormant_rooms; // guarded by mtx
    std::unordered_map<std::string, caf::actor> stubs; // guarded by mtx: remote keys
    std::unordered_set<std::string> recovered; // guarded by mtx: from disk, not reconciled
    std::unordered_map<std::string, caf::node_id> pulling; // guarded by mtx: note_pulling
  };

  bool remote(const std::string& key) const {
    return placement_ && !placement_->is_local(key);
  }
  caf::actor stub(const std::string& key);
  caf::actor local_user(const std::string& id);
  caf::actor local_room(const std::string& id);
  // Spawns the pending entity of `key` that pulls its state from `source`;
  // registers it unless another is there; returns the registered one.
  caf::actor pull(const std::string& key, const caf::actor& source,
                  std::optional<storage::user_record> dormant, uint64_t epoch = 0);
  // The entity of `key` if it is on its way here: pulled from the node that
  // owned it in the previous view, or promoted from its replica (that node
  // died); else nothing. `dormant` is what a pulled user falls back to.
  caf::actor arriving(const std::string& key,
                      const std::optional<storage::user_record>& dormant);
  // Spawns the entity of `key` here from its replica (its owner died), or
  // nothing if there is none; registers it as `settle` does.
  caf::actor promote(const std::string& key);
  // Registers a freshly spawned `fresh` under `key` unless one is there (then
  // `fresh` exits); returns the registered one. Drops a dormant record of it.
  /// `recovered`: the key counts as recovered (a stale copy the cluster's
  /// may replace) if `fresh` is registered.
  caf::actor settle(const std::string& key, caf::actor fresh, bool start,
                    bool recovered = false);
  // A random id with `prefix`; in a cluster, one pinned to this node.
  std::string owned_id(const char* prefix, size_t bytes) const;

  // Entries of `map` over every shard (each shard locked in turn).
  template <class Map>
  size_t count(Map shard::*map) const;
  // Every local entity whose key starts with `prefix`.
  std::vector<caf::actor> local_of(const char* prefix) const;

  shard& shard_of(const std::string& key);
  const shard& shard_of(const std::string& key) const;

  /// Inserts `fresh` under `key` unless an actor is there; returns the winner.
  caf::actor insert(const std::string& key, caf::actor fresh, bool* inserted);

  node& node_;
  std::shared_ptr<placement> placement_;
  std::atomic<bool> closed_{false};
  mutable std::mutex retired_mtx_;
  std::vector<caf::actor_addr> retired_; // guarded by retired_mtx_: forwarders
  std::vector<std::pair<std::string, caf::actor_addr>> forwarding_; // guarded by
                                         // retired_mtx_: registered forwarders
  std::array<shard, shard_count> shards_;
};

} // namespace presence::actors
