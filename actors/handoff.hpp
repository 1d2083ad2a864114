// Hand-off of an entity between nodes, when the view gives its key to another
// node (a node joins, is drained, or an operator rebalances). The new owner
// pulls: its router starts the entity as a *pending* actor that asks the old
// owner's traffic actor for the entity's state (`handoff_atom, key`) and
// keeps every message it receives meanwhile in its mailbox (CAF's `skip`). On
// the old owner the entity answers with its transfer, stops acting (gauges,
// timers and its stored record go with it, and the router forgets it) and
// becomes a forwarder: whoever still holds its handle reaches the new owner
// through it. So at no moment do two nodes act for one key, nothing sent to
// the entity is dropped, and its rooms and subscribers see no leave and join.
// The old owner also tells each new owner which keys it gave away (a hint), so
// entities move without waiting to be used.
//
// The transfers are plain CAF-serializable structs: the durable record of the
// entity (storage/records.hpp) plus what lives only in memory (subscribers,
// sockets, memberships, open intents).
#pragma once

#include "actors/census.hpp"
#include "actors/errors.hpp"
#include "actors/messages.hpp"
#include "actors/router.hpp"
#include "storage/records.hpp"

#include <caf/actor.hpp>
#include <caf/actor_addr.hpp>
#include <caf/atom.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/meta/type_name.hpp>
#include <caf/scheduled_actor.hpp>
#include <caf/skip.hpp>

#include <atomic>
#include <chrono>
#include <string>
#include <utility>
#include <vector>

namespace presence::storage {

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, session_record& x) {
  return f(caf::meta::type_name("session_record"), x.session_id, x.user_id, x.device,
           x.resume_hash, x.last_signal_at, x.last_active_at, x.declared, x.ever_active,
           x.heartbeat_ms, x.rooms);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, user_record& x) {
  return f(caf::meta::type_name("user_record"), x.user_id, x.published, x.seq, x.since,
           x.last_active_at, x.last_seen_at, x.intents);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, room_record& x) {
  return f(caf::meta::type_name("room_record"), x.room_id, x.media_attached, x.phase,
           x.momentum_rate, x.momentum_at, x.analytics, x.start_when);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, intent_record& x) {
  return f(caf::meta::type_name("intent_record"), x.intent_id, x.from_user, x.to_user,
           x.to_room, x.kind, x.note, x.status, x.created_at, x.expires_at,
           x.delivered_at, x.ready_at, x.retain_until);
}

} // namespace presence::storage

namespace presence::actors {

using handoff_atom = caf::atom_constant<caf::atom("handoff")>;
using export_atom = caf::atom_constant<caf::atom("export")>;
using start_atom = caf::atom_constant<caf::atom("hstart")>;
using replica_atom = caf::atom_constant<caf::atom("replica")>;
using replicate_atom = caf::atom_constant<caf::atom("replicate")>;

/// How often an entity's changes go to its replicas at most (cluster/replication.hpp).
inline constexpr auto replicate_interval = std::chrono::milliseconds{50};

/// How long a pending entity waits for its old owner's answer before it
/// starts without the state. A dead old owner fails the request at once (its
/// connection closes); this bounds a hung one. Long, because an answer that
/// comes after the timeout is dropped, and with it the state (the old entity
/// forwards by then): under a big drain, pulls queue up for seconds.
inline constexpr auto handoff_timeout = std::chrono::seconds{60};

/// One of a user's live sessions, as the user knows it.
struct handoff_session {
  std::string session_id;
  std::string device;
  state current = state::offline;
  int64_t last_signal_at = 0;
  int64_t last_active_at = 0;
  int64_t heartbeat_ms = 0;
  caf::actor_addr ref;
};

/// One of a user's room memberships.
struct handoff_membership {
  std::string room_id;
  std::vector<std::string> sessions;
  bool visible = true;
};

struct user_transfer {
  storage::user_record rec;
  std::vector<handoff_session> sessions;
  std::vector<caf::actor> subscribers;
  std::vector<caf::actor> inbox;
  std::vector<handoff_membership> rooms;
  std::vector<intent_view> intents;
};

/// One member of a room.
struct handoff_member {
  std::string user_id;
  state current = state::offline;
  bool visible = true;
  int64_t last_active_at = 0;
  int64_t joined_at = 0;  ///< 0: unknown (a member restored at start)
  bool saw_ready = false; ///< the room was ready during this visit
};

struct room_transfer {
  storage::room_record rec;
  double readiness = 0;
  std::vector<handoff_member> members;
  std::vector<timeline_sample> timeline;
  std::vector<caf::actor> subscribers;
  std::vector<intent_view> intents;
};

struct session_transfer {
  storage::session_record rec;
};

struct intent_transfer {
  storage::intent_record rec;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, handoff_session& x) {
  return f(caf::meta::type_name("handoff_session"), x.session_id, x.device, x.current,
           x.last_signal_at, x.last_active_at, x.heartbeat_ms, x.ref);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, handoff_membership& x) {
  return f(caf::meta::type_name("handoff_membership"), x.room_id, x.sessions, x.visible);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, user_transfer& x) {
  return f(caf::meta::type_name("user_transfer"), x.rec, x.sessions, x.subscribers,
           x.inbox, x.rooms, x.intents);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, handoff_member& x) {
  return f(caf::meta::type_name("handoff_member"), x.user_id, x.current, x.visible,
           x.last_active_at, x.joined_at, x.saw_ready);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, room_transfer& x) {
  return f(caf::meta::type_name("room_transfer"), x.rec, x.readiness, x.members,
           x.timeline, x.subscribers, x.intents);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, session_transfer& x) {
  return f(caf::meta::type_name("session_transfer"), x.rec);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, intent_transfer& x) {
  return f(caf::meta::type_name("intent_transfer"), x.rec);
}

class node;

/// Turns `self` into a forwarder of `key` (after it exported its state): the
/// router retires it (router::retire), and every message goes on to the key's owner (through `via` with `epoch` while this
/// node's view is older), replies straight back to the sender.
void become_forwarder(caf::event_based_actor* self, node* n, std::string key,
                      caf::actor via, uint64_t epoch);

/// Hands `payload` (the entity's transfer; empty: it ended) to the node's
/// replicator, if the node replicates.
void replicate(node* n, std::string key, caf::message payload);

/// Asks `self` for a `replicate_atom` one interval from now, unless one is on
/// its way (`scheduled`) or the node does not replicate.
void replicate_soon(caf::event_based_actor* self, node* n, bool& scheduled);

/// The `replicate_atom` asked for by `replicate_soon` arrived (or will not
/// matter: the entity moved); clears `scheduled`.
void replicate_fired(node* n, bool& scheduled);

/// The behavior of an entity that waits for its state from `source` (the old
/// owner's traffic actor; `via` is this node's, `epoch` this node's view).
/// Messages other than `start_atom` wait in the mailbox (skipped); on
/// `start_atom` (sent by the router once the entity is registered) it pulls
/// the transfer. Its real behavior then comes from `started(Transfer&)`; from
/// `fresh()` when the old owner answers it has nothing; when the old owner
/// cannot answer (its node went down while the pull was on its way, or it did
/// not answer in time), from `promoted(Transfer&)` with this node's replica of
/// the entity if it holds one, else from `fresh()`. A remote old owner is watched: its node going
/// down ends the wait at once (a pull from a node stopped during a rolling
/// restart waited the whole `handoff_timeout`, and every request to the entity
/// with it).
template <class Transfer, class Self, class Started, class Fresh, class Promoted>
caf::behavior await_handoff(Self* self, std::string key, caf::actor source,
                            caf::actor via, uint64_t epoch, router& r,
                            std::atomic<int64_t>& pending, Started started, Fresh fresh,
                            Promoted promoted) {
  auto lost = [&r, key, fresh, promoted]() mutable {
    auto replica = r.take_lost_replica(key);
    if (replica && replica->template match_elements<Transfer>())
      return promoted(replica->template get_mutable_as<Transfer>(0));
    return fresh();
  };
  self->set_default_handler(caf::skip);
  // Counted as waiting until the entity takes its real behavior.
  auto waiting = std::make_shared<census::token>(census::kind::handoff);
  auto settled = std::make_shared<bool>(false);
  if (source)
    r.note_pulling(key, source.node());
  // Takes the real behavior once (the answer, the error or the down). The
  // old owner is watched no longer: its down later found no handler (CAF's
  // default printed "unhandled down message" through aout, racing its printer).
  auto settle = [self, &pending, &r, key, settled, from = source.address()](auto next) {
    if (*settled)
      return;
    *settled = true;
    r.pulled(key);
    pending.fetch_sub(1, std::memory_order_relaxed);
    if (from && from.node() != self->node())
      self->demonitor(from);
    self->set_down_handler(nullptr);
    self->set_default_handler(caf::print_and_drop);
    self->become(next());
  };
  return {
    [self, key, source, via, epoch, &pending, started, fresh, lost, waiting,
     settle](start_atom) mutable {
      // `then`, not `await`: an exit (the node stops) is handled at once, while
      // every other message still waits (skip) for the state.
      pending.fetch_add(1, std::memory_order_relaxed);
      if (source && source.node() != self->node()) {
        self->set_down_handler([settle, lost, from = source.address()](caf::down_msg& dm) {
          if (dm.source == from)
            settle(lost);
        });
        self->monitor(source);
      }
      self->request(source, handoff_timeout, handoff_atom::value, key, epoch, via)
        .then([settle, started](Transfer& t) mutable { settle([&] { return started(t); }); },
              [settle, fresh, lost](caf::error& e) mutable {
                if (code_of(e) == errc::session_not_found)
                  settle(fresh); // the old owner has nothing
                else
                  settle(lost);
              });
    },
  };
}

/// What a session or intent that waited for its state becomes when nobody has
/// it (the old owner had nothing, or was lost without a replica here): it is
/// no longer registered under `key`, answers what waited for it with `code`
/// ("no such session" or "no such intent") and stops. (It quit still
/// registered: the key answered `unavailable` on every node for good, and
/// every read of an unknown id right after a node rejoined kept one entry.)
///
/// A session or intent pinned to a node that failed a moment ago (awaited: a
/// restart brings it back from disk) answers `unavailable` instead: after a
/// full restart, a resume that reached a node whose old owner had nothing was
/// refused while the session's own node was about to come back with it.
template <class Self>
caf::behavior gone_after_pull(Self* self, router& r, const std::string& key, errc code,
                              std::string message) {
  r.forget(key, self->address());
  if (auto* where = r.where(); where != nullptr && where->awaited(key)) {
    code = errc::unavailable;
    message = "its node is down and may come back with it: try again";
  }
  self->set_default_handler(
    [code, message](caf::scheduled_actor*, caf::message_view&) -> caf::result<caf::message> {
      return caf::make_error(code, message);
    });
  // Queued before this, so it comes after everything that waited.
  self->send(self, release_atom::value);
  return {[self](release_atom) { self->quit(); }};
}

/// Whether `mine` (this node's recovered copy) is fresher than `theirs` (the
/// copy another node handed over; after a full restart that one may be a
/// recovered copy too, from a node that held the key earlier). Ties go to
/// theirs. Sessions compare their last signal, users the last time one of
/// their sessions was seen, intents their stage; rooms take theirs (their
/// members come back from their users).
inline bool fresher(const session_transfer& mine, const session_transfer& theirs) {
  return mine.rec.last_signal_at > theirs.rec.last_signal_at;
}
inline bool fresher(const user_transfer& mine, const user_transfer& theirs) {
  return mine.rec.last_seen_at > theirs.rec.last_seen_at;
}
inline bool fresher(const intent_transfer& mine, const intent_transfer& theirs) {
  return stage(static_cast<intent_status>(mine.rec.status))
         > stage(static_cast<intent_status>(theirs.rec.status));
}
inline bool fresher(const room_transfer&, const room_transfer&) {
  return false;
}

/// A source to pull from that falls back to a copy of this node's own: it asks
/// `source` (the old owner) for the transfer and, when that has nothing or does
/// not answer, takes the transfer of `stale` (an entity this node recovered from
/// disk) instead of letting the puller start empty; when both have one, the
/// fresher (`fresher`). Whichever copy is not taken
/// stops acting and forwards to the puller. One pull, then it quits; told its
/// puller (start_atom), it quits when that goes down.
template <class Transfer>
caf::behavior fallback_source(caf::event_based_actor* self, caf::actor source,
                              caf::actor stale) {
  keep_on_errors(self);
  census::track(self, census::kind::handoff);
  // It lives no longer than its puller (a node that stops must not wait for
  // its pending request).
  self->set_down_handler([self](caf::down_msg&) { self->quit(); });
  return {
    [self](start_atom, const caf::actor& puller) {
      if (puller)
        self->monitor(puller);
      else
        self->quit();
    },
    [self, source, stale](handoff_atom, const std::string& key, uint64_t epoch,
                          const caf::actor& via) -> caf::result<Transfer> {
      struct pull {
        bool settled = false;
        caf::typed_response_promise<Transfer> rp;
      };
      auto p = std::make_shared<pull>(pull{false, self->template make_response_promise<Transfer>()});
      // The recovered copy answers instead (the old owner has nothing, did
      // not answer, or its node went down meanwhile).
      auto use_stale = [self, stale, via, epoch, p]() {
        if (p->settled)
          return;
        p->settled = true;
        p->rp.delegate(stale, export_atom::value, via, epoch);
        self->quit();
      };
      if (source && source.node() != self->node()) {
        self->set_down_handler([self, use_stale, from = source.address()](caf::down_msg& dm) {
          if (dm.source == from)
            use_stale();
          else
            self->quit(); // the puller
        });
        self->monitor(source);
      }
      // Shorter than the puller's own wait, so that the fallback still reaches it.
      self->request(source, handoff_timeout - std::chrono::seconds{10}, handoff_atom::value,
                    key, epoch, via)
        .then(
          [self, stale, via, epoch, p](Transfer& t) {
            if (p->settled)
              return;
            p->settled = true;
            // The cluster's copy wins unless the recovered one is fresher.
            // The recovered one erases its record as it gives way, and the puller, on this
            // node too, writes the same key once it has the transfer: the
            // puller gets it only after the erase, or the erase could land
            // last and the entity live on in memory only (a full restart
            // then lost it).
            self->request(stale, handoff_timeout, export_atom::value, via, epoch)
              .then(
                [self, p, t](Transfer& mine) mutable {
                  // Both copies are in hand now (each forwards to the
                  // puller): the fresher one goes on.
                  p->rp.deliver(fresher(mine, t) ? std::move(mine) : std::move(t));
                  self->quit();
                },
                [self, p, t](caf::error&) mutable {
                  p->rp.deliver(std::move(t));
                  self->quit();
                });
          },
          [use_stale](caf::error&) { use_stale(); });
      auto rp = p->rp;
      return rp;
    },
  };
}

} // namespace presence::actors
