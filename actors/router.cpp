#include "actors/router.hpp"

#include "actors/errors.hpp"
#include "actors/handoff.hpp"
#include "actors/ids.hpp"
#include "actors/intent_actor.hpp"
#include "actors/node.hpp"
#include "actors/room_actor.hpp"
#include "actors/session_actor.hpp"
#include "actors/user_actor.hpp"

#include <caf/actor_system.hpp>
#include <caf/send.hpp>

#include <algorithm>
#include <functional>

namespace presence::actors {

router::router(node& n) : node_(n) {
}

router::shard& router::shard_of(const std::string& key) {
  return shards_[std::hash<std::string>{}(key) % shard_count];
}

const router::shard& router::shard_of(const std::string& key) const {
  return shards_[std::hash<std::string>{}(key) % shard_count];
}

caf::actor router::find(const std::string& key) const {
  if (remote(key))
    return const_cast<router*>(this)->stub(key);
  if (auto found = find_local(key))
    return found;
  // Not here yet: it may be moving here (pulled) or coming back from a replica.
  if (placement_ && (key.rfind("session:", 0) == 0 || key.rfind("intent:", 0) == 0)) {
    if (auto a = const_cast<router*>(this)->local(key))
      return a;
    // Its node failed a moment ago and may bring it back: a stub, which
    // answers `unavailable` (cluster_placement::route) until then.
    if (placement_->awaited(key))
      return const_cast<router*>(this)->stub(key);
  }
  return {};
}

caf::actor router::find_local(const std::string& key) const {
  auto& sh = shard_of(key);
  std::lock_guard<std::mutex> guard{sh.mtx};
  auto i = sh.actors.find(key);
  return i == sh.actors.end() ? caf::actor{} : i->second;
}

caf::actor router::insert(const std::string& key, caf::actor fresh,
                          bool* inserted) {
  auto& sh = shard_of(key);
  std::lock_guard<std::mutex> guard{sh.mtx};
  if (closed_.load(std::memory_order_acquire)) {
    if (inserted != nullptr)
      *inserted = false;
    caf::anon_send_exit(fresh, caf::exit_reason::user_shutdown);
    return fresh;
  }
  auto [i, added] = sh.actors.try_emplace(key, std::move(fresh));
  if (inserted != nullptr)
    *inserted = added;
  return i->second;
}

caf::actor router::adopt(const std::string& key, const std::function<caf::actor()>& spawn) {
  auto& sh = shard_of(key);
  std::lock_guard<std::mutex> guard{sh.mtx};
  if (closed_.load(std::memory_order_acquire) || sh.actors.count(key) != 0)
    return {};
  auto a = spawn();
  sh.actors.emplace(key, a);
  if (placement_)
    sh.recovered.insert(key);
  return a;
}

bool router::keep_dormant(storage::user_record rec) {
  auto key = "user:" + rec.user_id;
  auto& sh = shard_of(key);
  std::lock_guard<std::mutex> guard{sh.mtx};
  if (sh.actors.count(key) != 0)
    return false;
  sh.dormant.insert_or_assign(std::move(key), std::move(rec));
  return true;
}

void router::reserve(size_t n) {
  for (auto& sh : shards_) {
    std::lock_guard<std::mutex> guard{sh.mtx};
    sh.actors.reserve(sh.actors.size() + n / shard_count + 1);
  }
}

template <class Map>
size_t router::count(Map shard::*map) const {
  size_t n = 0;
  for (auto& sh : shards_) {
    std::lock_guard<std::mutex> guard{sh.mtx};
    n += (sh.*map).size();
  }
  return n;
}

size_t router::dormant() const {
  return count(&shard::dormant);
}

caf::actor router::stub(const std::string& key) {
  if (closed_.load(std::memory_order_acquire))
    return {};
  auto& sh = shard_of(key);
  {
    std::lock_guard<std::mutex> guard{sh.mtx};
    if (auto i = sh.stubs.find(key); i != sh.stubs.end())
      return i->second;
  }
  auto fresh = placement_->make_stub(key);
  std::lock_guard<std::mutex> guard{sh.mtx};
  if (closed_.load(std::memory_order_acquire)) {
    // The node began to stop while the stub was made: clear() has emptied
    // this shard already, and a stub kept now was never told to exit (the
    // stop waited for it: "waiting for 1 actors (1 stub)", exit 1).
    caf::anon_send_exit(fresh, caf::exit_reason::user_shutdown);
    return {};
  }
  // Bounded: reads of random remote ids must not grow the map. A stub dropped
  // here lives on while a holder still uses it; a new lookup makes another.
  if (sh.stubs.size() >= max_stubs_per_shard && sh.stubs.count(key) == 0)
    sh.stubs.clear();
  auto [i, added] = sh.stubs.try_emplace(key, fresh);
  if (!added)
    caf::anon_send_exit(fresh, caf::exit_reason::user_shutdown);
  return i->second;
}

caf::actor router::local(const std::string& key) {
  if (key.rfind("user:", 0) == 0)
    return local_user(key.substr(5));
  if (key.rfind("room:", 0) == 0)
    return local_room(key.substr(5));
  if (auto found = find_local(key))
    return found;
  // A session or intent that moved here (its node drains), or whose node died.
  if (closed_.load(std::memory_order_acquire))
    return {};
  return arriving(key, std::nullopt);
}

caf::actor router::arriving(const std::string& key,
                            const std::optional<storage::user_record>& dormant) {
  if (!placement_)
    return {};
  if (auto source = placement_->handoff_source(key))
    return pull(key, source, dormant);
  return promote(key);
}

std::optional<caf::message> router::take_lost_replica(const std::string& key) {
  if (!placement_)
    return std::nullopt;
  return placement_->take_lost_replica(key);
}

caf::actor router::promote(const std::string& key) {
  if (closed_.load(std::memory_order_acquire))
    return {}; // the node stops: nothing new starts (nor monitors remote actors)
  auto replica = placement_->take_replica(key);
  if (!replica)
    return {};
  auto& msg = *replica;
  caf::actor fresh;
  if (msg.match_elements<user_transfer>())
    fresh = node_.system().spawn(user_actor_promoted, &node_, msg.get_as<user_transfer>(0));
  else if (msg.match_elements<room_transfer>())
    fresh = node_.system().spawn(room_actor_promoted, &node_, msg.get_as<room_transfer>(0));
  else if (msg.match_elements<session_transfer>())
    fresh = node_.system().spawn(session_actor_promoted, &node_,
                                 msg.get_as<session_transfer>(0));
  else if (msg.match_elements<intent_transfer>())
    fresh = node_.system().spawn(intent_actor_promoted, &node_,
                                 msg.get_as<intent_transfer>(0));
  else
    return {};
  return settle(key, std::move(fresh), false);
}

caf::actor router::pull(const std::string& key, const caf::actor& source,
                        std::optional<storage::user_record> dormant, uint64_t epoch) {
  if (closed_.load(std::memory_order_acquire))
    return {};
  // The view that gives the key here: this node's, or the hint's when newer
  // (the old owner's forwarder sends to this node under it).
  epoch = std::max(epoch, placement_ ? placement_->epoch() : 0);
  caf::actor fresh;
  if (key.rfind("user:", 0) == 0)
    fresh = node_.system().spawn(user_actor_handoff, &node_, key.substr(5), source, epoch,
                                 std::move(dormant));
  else if (key.rfind("room:", 0) == 0)
    fresh = node_.system().spawn(room_actor_handoff, &node_, key.substr(5), source, epoch);
  else if (key.rfind("session:", 0) == 0)
    fresh = node_.system().spawn(session_actor_handoff, &node_, key.substr(8), source, epoch);
  else if (key.rfind("intent:", 0) == 0)
    fresh = node_.system().spawn(intent_actor_handoff, &node_, key.substr(7), source, epoch);
  else
    return {};
  return settle(key, std::move(fresh), true);
}

caf::actor router::settle(const std::string& key, caf::actor fresh, bool start,
                          bool recovered) {
  bool inserted = false;
  caf::actor winner;
  {
    auto& sh = shard_of(key);
    std::lock_guard<std::mutex> guard{sh.mtx};
    if (closed_.load(std::memory_order_acquire)) {
      // The node stops: nothing new may start (clear() has run or will not
      // see it).
      caf::anon_send_exit(fresh, caf::exit_reason::user_shutdown);
      return {};
    }
    auto [i, added] = sh.actors.try_emplace(key, fresh);
    inserted = added;
    winner = i->second;
    if (added && recovered)
      sh.recovered.insert(key);
    sh.dormant.erase(key);
    sh.dormant_rooms.erase(key);
  }
  // A racing spawn of the same key loses and exits before it received
  // anything (a pending one has not pulled yet: it waits for start_atom).
  if (!inserted)
    caf::anon_send_exit(fresh, caf::exit_reason::user_shutdown);
  else if (start)
    caf::anon_send(fresh, start_atom::value);
  return winner;
}

bool router::take_over(const std::string& key, const caf::actor& source, uint64_t epoch) {
  if (closed_.load(std::memory_order_acquire))
    return true;
  std::optional<storage::user_record> dormant;
  caf::actor stale;
  {
    auto& sh = shard_of(key);
    std::lock_guard<std::mutex> guard{sh.mtx};
    if (auto i = sh.actors.find(key); i != sh.actors.end()) {
      if (sh.recovered.erase(key) == 0)
        return false; // pulled, promoted or created here since: it stays
      stale = std::move(i->second);
      sh.actors.erase(i);
    }
    if (auto i = sh.dormant.find(key); i != sh.dormant.end())
      dormant = i->second;
  }
  if (!stale) {
    pull(key, source, std::move(dormant), epoch);
    return true;
  }
  // The recovered entity is the fallback of the pull: when the old owner has
  // nothing (or does not answer), the entity starts from what this node
  // recovered, not empty (a user then read offline with seq 0 while its
  // sessions signalled, and resumes of its sessions were refused).
  caf::actor via;
  auto& sys = node_.system();
  if (key.rfind("user:", 0) == 0)
    via = sys.spawn(fallback_source<user_transfer>, source, stale);
  else if (key.rfind("room:", 0) == 0)
    via = sys.spawn(fallback_source<room_transfer>, source, stale);
  else if (key.rfind("session:", 0) == 0)
    via = sys.spawn(fallback_source<session_transfer>, source, stale);
  else
    via = sys.spawn(fallback_source<intent_transfer>, source, stale);
  caf::anon_send(via, start_atom::value, pull(key, via, std::move(dormant), epoch));
  return true;
}

std::vector<caf::actor> router::release_recovered() {
  std::vector<caf::actor> held;
  for (auto& sh : shards_) {
    std::lock_guard<std::mutex> guard{sh.mtx};
    for (auto& key : sh.recovered)
      if (key.rfind("session:", 0) == 0 || key.rfind("user:", 0) == 0)
        if (auto a = sh.actors.find(key); a != sh.actors.end())
          held.push_back(a->second);
    sh.recovered.clear();
  }
  return held;
}

caf::actor router::take_recovered(const std::string& key) {
  auto& sh = shard_of(key);
  std::lock_guard<std::mutex> guard{sh.mtx};
  if (sh.recovered.erase(key) == 0)
    return {};
  auto i = sh.actors.find(key);
  return i == sh.actors.end() ? caf::actor{} : i->second;
}

std::optional<storage::user_record> router::take_dormant(const std::string& key) {
  auto& sh = shard_of(key);
  std::lock_guard<std::mutex> guard{sh.mtx};
  auto i = sh.dormant.find(key);
  if (i == sh.dormant.end())
    return std::nullopt;
  auto out = std::move(i->second);
  sh.dormant.erase(i);
  return out;
}

std::vector<std::string> router::local_keys() const {
  std::unordered_set<std::string> forwarding;
  {
    std::lock_guard<std::mutex> guard{retired_mtx_};
    for (auto& [key, who] : forwarding_)
      forwarding.insert(key);
  }
  std::vector<std::string> out;
  for (auto& sh : shards_) {
    std::lock_guard<std::mutex> guard{sh.mtx};
    for (auto& [key, a] : sh.actors)
      if (forwarding.count(key) == 0)
        out.push_back(key);
    for (auto& [key, rec] : sh.dormant)
      out.push_back(key);
    for (auto& [key, rec] : sh.dormant_rooms)
      out.push_back(key);
  }
  return out;
}

std::vector<caf::actor> router::local_sessions() const {
  return local_of("session:");
}

std::vector<caf::actor> router::local_intents() const {
  return local_of("intent:");
}

std::vector<caf::actor> router::local_of(const char* prefix) const {
  std::vector<caf::actor> out;
  for (auto& sh : shards_) {
    std::lock_guard<std::mutex> guard{sh.mtx};
    for (auto& [key, a] : sh.actors)
      if (key.rfind(prefix, 0) == 0)
        out.push_back(a);
  }
  return out;
}

std::string router::owned_id(const char* prefix, size_t bytes) const {
  auto id = random_id(prefix, bytes);
  return placement_ ? placement_->pinned_id(id) : id;
}

caf::actor router::user(const std::string& id) {
  if (remote("user:" + id))
    return stub("user:" + id);
  return local_user(id);
}

caf::actor router::local_user(const std::string& id) {
  if (closed_.load(std::memory_order_acquire))
    return {};
  auto key = "user:" + id;
  std::optional<storage::user_record> dormant;
  {
    auto& sh = shard_of(key);
    std::lock_guard<std::mutex> guard{sh.mtx};
    if (auto i = sh.actors.find(key); i != sh.actors.end())
      return i->second;
    if (auto i = sh.dormant.find(key); i != sh.dormant.end())
      dormant = i->second; // stays until an actor is registered: a racing
                           // spawn also starts from it
  }
  // Moved here from a node that still holds it (the dormant record is what it
  // starts from if that node has nothing), or its owner died.
  if (auto moved = arriving(key, dormant))
    return moved;
  if (placement_ && placement_->epoch() == 0) {
    // Not a member of its cluster yet (a restarted node reads its disk, and a
    // recovered intent or room looks its users up): the cluster may hold a
    // newer copy. This one is held, and replaced by the cluster's (or
    // released) like the copies read from disk. (Started from its dormant
    // record, it published "offline" to the watchers that subscribed once
    // the view gave it this node, while the user's sessions lived on.)
    storage::user_record rec;
    if (dormant)
      rec = std::move(*dormant);
    else
      rec.user_id = id;
    return settle(key,
                  node_.system().spawn(user_actor_restored, &node_,
                                       user_restore{std::move(rec), {}, true}),
                  false, true);
  }
  // Spawned outside the lock. A dormant user wakes with its record.
  auto fresh = dormant ? node_.system().spawn(user_actor_restored, &node_,
                                              user_restore{std::move(*dormant), {}})
                       : node_.system().spawn(user_actor, &node_, id);
  return settle(key, std::move(fresh), false);
}

caf::actor router::room(const std::string& id) {
  if (remote("room:" + id))
    return stub("room:" + id);
  return local_room(id);
}

caf::actor router::local_room(const std::string& id) {
  if (closed_.load(std::memory_order_acquire))
    return {};
  auto key = "room:" + id;
  std::optional<dormant_room> dormant;
  {
    auto& sh = shard_of(key);
    std::lock_guard<std::mutex> guard{sh.mtx};
    if (auto i = sh.actors.find(key); i != sh.actors.end())
      return i->second;
    if (auto i = sh.dormant_rooms.find(key); i != sh.dormant_rooms.end())
      dormant = i->second; // stays until an actor is registered
  }
  if (auto moved = arriving(key, std::nullopt))
    return moved;
  if (dormant)
    return settle(key,
                  node_.system().spawn(room_actor_restored, &node_,
                                       room_restore{std::move(dormant->rec),
                                                    std::move(dormant->timeline), 0}),
                  false);
  return settle(key, node_.system().spawn(room_actor, &node_, id), false);
}

caf::actor router::user_for_read(const std::string& id,
                                 std::optional<storage::user_record>* rest) {
  auto key = "user:" + id;
  if (remote(key))
    return stub(key);
  if (closed_.load(std::memory_order_acquire))
    return {};
  {
    auto& sh = shard_of(key);
    std::lock_guard<std::mutex> guard{sh.mtx};
    if (auto i = sh.actors.find(key); i != sh.actors.end())
      return i->second;
    if (auto i = sh.dormant.find(key); i != sh.dormant.end())
      *rest = i->second;
  }
  return arriving(key, *rest);
}

caf::actor router::room_for_read(const std::string& id) {
  auto key = "room:" + id;
  if (remote(key))
    return stub(key);
  if (closed_.load(std::memory_order_acquire))
    return {};
  bool dormant = false;
  {
    auto& sh = shard_of(key);
    std::lock_guard<std::mutex> guard{sh.mtx};
    if (auto i = sh.actors.find(key); i != sh.actors.end())
      return i->second;
    dormant = sh.dormant_rooms.count(key) > 0;
  }
  if (auto moved = arriving(key, std::nullopt))
    return moved;
  return dormant ? local_room(id) : caf::actor{};
}

caf::actor router::entity(const std::string& key) {
  if (key.rfind("user:", 0) == 0)
    return user(key.substr(5));
  if (key.rfind("room:", 0) == 0)
    return room(key.substr(5));
  return find(key);
}

bool router::passivate(const std::string& key, const caf::actor_addr& who,
                       std::optional<storage::user_record> user,
                       std::optional<dormant_room> room) {
  caf::actor released;
  auto& sh = shard_of(key);
  std::lock_guard<std::mutex> guard{sh.mtx};
  if (closed_.load(std::memory_order_acquire))
    return false;
  auto i = sh.actors.find(key);
  if (i == sh.actors.end() || i->second.address() != who)
    return false;
  released = std::move(i->second);
  sh.actors.erase(i);
  sh.recovered.erase(key);
  if (user)
    sh.dormant.insert_or_assign(key, std::move(*user));
  if (room)
    sh.dormant_rooms.insert_or_assign(key, std::move(*room));
  return true;
}

size_t router::dormant_rooms() const {
  return count(&shard::dormant_rooms);
}

opened_session router::open_session(const session_spec& spec) {
  node_.metrics().sessions_opened.fetch_add(1, std::memory_order_relaxed);
  opened_session out;
  out.session_id = spec.session_id.empty() ? owned_id("s_", 12)
                                            : spec.session_id;
  out.user_id = spec.user_id;
  out.resume_token = spec.resume_token.empty() ? random_id("", 24)
                                               : spec.resume_token;
  out.server_time = node_.now_ms();
  auto clk = actors::open_session(spec.initial, out.server_time, node_.presence());
  out.current = derive_state(clk, out.server_time, node_.presence());
  out.heartbeat_ms = heartbeat_interval_ms(out.current, node_.presence());
  // Counted before the answer leaves, so that the gauges agree with it.
  node_.metrics().sessions_by_state[static_cast<size_t>(out.current)].fetch_add(
    1, std::memory_order_relaxed);
  session_init init;
  init.session_id = out.session_id;
  init.user_id = spec.user_id;
  init.device = spec.device;
  init.resume_hash = hash_token(out.resume_token);
  init.clk = clk;
  init.initial = out.current;
  out.handle = node_.system().spawn(session_actor, &node_, std::move(init));
  auto key = "session:" + out.session_id;
  insert(key, out.handle, nullptr);
  if (remote(key))
    placement_->hand_off(key); // created on a draining node: it moves at once
  return out;
}

caf::expected<std::pair<intent_view, caf::actor>>
router::create_intent(intent_spec spec) {
  if (spec.to_user.empty() == spec.to_room.empty())
    return caf::make_error(errc::invalid_argument,
                           std::string{"exactly one of to_user and to_room"});
  if (!valid_id(spec.from_user)
      || !(spec.to_user.empty() ? valid_id(spec.to_room) : valid_id(spec.to_user)))
    return caf::make_error(errc::invalid_argument, std::string{"invalid id"});
  if (spec.to_user == spec.from_user)
    return caf::make_error(errc::invalid_argument,
                           std::string{"an intent to oneself"});
  if (spec.ttl_ms == 0)
    spec.ttl_ms = default_intent_ttl_ms;
  if (spec.ttl_ms < 0 || spec.ttl_ms > max_intent_ttl_ms)
    return caf::make_error(errc::invalid_argument,
                           std::string{"ttl_ms must be in 1..86400000"});
  intent_view v;
  v.intent_id = owned_id("i_", 12);
  v.from_user = std::move(spec.from_user);
  v.to_user = std::move(spec.to_user);
  v.to_room = std::move(spec.to_room);
  v.kind = spec.kind.empty() ? "call" : std::move(spec.kind);
  v.note = std::move(spec.note);
  v.status = intent_status::pending;
  v.created_at = node_.now_ms();
  v.expires_at = v.created_at + spec.ttl_ms;
  auto handle = node_.system().spawn(intent_actor, &node_, v, int64_t{0});
  auto key = "intent:" + v.intent_id;
  insert(key, handle, nullptr);
  if (remote(key))
    placement_->hand_off(key);
  return std::make_pair(std::move(v), std::move(handle));
}

void router::forget(const std::string& key, const caf::actor_addr& who) {
  caf::actor released;
  auto& sh = shard_of(key);
  std::lock_guard<std::mutex> guard{sh.mtx};
  auto i = sh.actors.find(key);
  if (i != sh.actors.end() && i->second.address() == who) {
    released = std::move(i->second);
    sh.actors.erase(i);
  }
}

void router::retire(const std::string& key, const caf::actor_addr& who) {
  bool kept = !remote(key);
  if (!kept)
    forget(key, who);
  if (kept) {
    std::lock_guard<std::mutex> guard{retired_mtx_};
    forwarding_.emplace_back(key, who);
  }
  stop_with_node(who);
}

void router::note_pulling(const std::string& key, const caf::node_id& from) {
  auto& sh = shard_of(key);
  std::lock_guard<std::mutex> guard{sh.mtx};
  sh.pulling[key] = from;
}

void router::pulled(const std::string& key) {
  auto& sh = shard_of(key);
  std::lock_guard<std::mutex> guard{sh.mtx};
  sh.pulling.erase(key);
}

bool router::pulls_from(const std::string& key, const caf::node_id& n) const {
  auto& sh = shard_of(key);
  std::lock_guard<std::mutex> guard{sh.mtx};
  auto i = sh.pulling.find(key);
  return i != sh.pulling.end() && i->second == n;
}

bool router::forwards(const std::string& key, const caf::actor_addr& who) const {
  std::lock_guard<std::mutex> guard{retired_mtx_};
  for (auto& [k, a] : forwarding_)
    if (a == who && k == key)
      return true;
  return false;
}

void router::stop_with_node(const caf::actor_addr& who) {
  if (closed()) {
    // Retired while the node stops (a view arrived during the stop): nothing
    // will tell it to exit later, and the stop waits for it.
    caf::anon_send_exit(who, caf::exit_reason::user_shutdown);
    return;
  }
  std::lock_guard<std::mutex> guard{retired_mtx_};
  // Forwarders that are gone (nobody held them) make room.
  if (retired_.size() >= 1024 && (retired_.size() & (retired_.size() - 1)) == 0)
    retired_.erase(std::remove_if(retired_.begin(), retired_.end(),
                                  [](const caf::actor_addr& a) {
                                    return !caf::actor_cast<caf::actor>(a);
                                  }),
                   retired_.end());
  retired_.push_back(who);
}

void router::drop_forwarders() {
  std::vector<std::pair<std::string, caf::actor_addr>> xs;
  {
    std::lock_guard<std::mutex> guard{retired_mtx_};
    xs.swap(forwarding_);
  }
  for (auto& [key, who] : xs)
    forget(key, who);
}

std::vector<caf::actor> router::all() const {
  std::vector<caf::actor> out;
  {
    std::lock_guard<std::mutex> guard{retired_mtx_};
    for (auto& a : retired_)
      if (auto h = caf::actor_cast<caf::actor>(a))
        out.push_back(std::move(h));
  }
  for (auto& sh : shards_) {
    std::lock_guard<std::mutex> guard{sh.mtx};
    for (auto& [key, a] : sh.actors)
      out.push_back(a);
    for (auto& [key, a] : sh.stubs)
      out.push_back(a);
  }
  return out;
}

size_t router::size() const {
  return count(&shard::actors);
}

void router::clear() {
  closed_.store(true, std::memory_order_release);
  for (auto& sh : shards_) {
    std::unordered_map<std::string, caf::actor> released;
    {
      std::lock_guard<std::mutex> guard{sh.mtx};
      released.swap(sh.actors);
      sh.dormant.clear();
      sh.dormant_rooms.clear();
      sh.recovered.clear();
      sh.pulling.clear();
      for (auto& [key, a] : sh.stubs)
        released.emplace(key, std::move(a));
      sh.stubs.clear();
    }
    // Told to exit again: one registered after `all()` was taken must stop too.
    for (auto& [key, a] : released)
      caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
  }
  std::lock_guard<std::mutex> guard{retired_mtx_};
  retired_.clear();
  forwarding_.clear();
}

} // namespace presence::actors
