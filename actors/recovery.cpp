#include "actors/recovery.hpp"

#include "actors/intent_actor.hpp"
#include "actors/node.hpp"
#include "actors/room_actor.hpp"
#include "actors/session_actor.hpp"
#include "actors/user_actor.hpp"
#include "storage/records.hpp"

#include <caf/actor_system.hpp>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <set>
#include <unordered_map>

namespace presence::actors {

namespace {

/// Records scanned between two progress lines.
constexpr size_t progress_every = 200'000;

class scanner {
public:
  scanner(storage::store& s, const recovery_log& log, recovery_report& report,
          runtime_metrics& m)
    : store_(s), log_(log), report_(report), metrics_(m) {}

  // Calls f(record&&) for every readable record of kind `k`.
  template <class F>
  void each(storage::kind k, F&& f) {
    auto err = store_.scan(k, [&](std::string_view key, std::string_view bytes) {
      std::string why;
      auto r = storage::decode_record(k, bytes, &why);
      if (!r) {
        ++report_.skipped;
        metrics_.records_skipped.fetch_add(1, std::memory_order_relaxed);
        if (log_)
          log_("recovery: skipped " + std::string{to_string(k)} + " record '"
               + printable(key) + "': " + why);
      } else {
        f(std::move(*r));
      }
      if (++scanned_ % progress_every == 0 && log_)
        log_("recovery: " + std::to_string(scanned_) + " records read ("
             + std::string{to_string(k)} + ")");
    });
    if (err) {
      metrics_.storage_read_errors.fetch_add(1, std::memory_order_relaxed);
      if (report_.failed.empty())
        report_.failed = std::string{to_string(k)} + ": " + *err;
      if (log_)
        log_("recovery: " + *err);
    }
  }

private:
  static std::string printable(std::string_view key) {
    std::string out;
    for (unsigned char c : key.substr(0, 128))
      out += (c >= 0x20 && c < 0x7f) ? static_cast<char>(c) : '?';
    return out;
  }

  storage::store& store_;
  const recovery_log& log_;
  recovery_report& report_;
  runtime_metrics& metrics_;
  size_t scanned_ = 0;
};

} // namespace

recovery_report recover(node& n, storage::store& s, const recovery_log& log,
                        bool after_crash, bool hold) {
  using storage::kind;
  auto started = std::chrono::steady_clock::now();
  recovery_report report;
  scanner scan{s, log, report, n.metrics()};
  auto* w = n.writer();
  auto& cfg = n.presence();
  auto now = n.now_ms();

  std::unordered_map<std::string, storage::user_record> users;
  scan.each(kind::users, [&](storage::record&& r) {
    auto u = std::get<storage::user_record>(std::move(r));
    auto id = u.user_id;
    users.insert_or_assign(std::move(id), std::move(u));
  });

  // Sessions: drop the expired ones, fold every clock into its user.
  std::unordered_map<std::string, std::vector<storage::session_record>> live;
  std::unordered_map<std::string, int64_t> expired_at; // user -> latest expiry
  scan.each(kind::sessions, [&](storage::record&& r) {
    auto sr = std::get<storage::session_record>(std::move(r));
    auto clk = clock_of(sr);
    auto& u = users[sr.user_id];
    if (u.user_id.empty())
      u.user_id = sr.user_id;
    u.last_active_at = std::max(u.last_active_at, clk.reported_last_active_at());
    u.last_seen_at = std::max(u.last_seen_at, sr.last_signal_at);
    if (derive_state(clk, now, cfg) == state::offline) {
      ++report.sessions_dropped;
      auto& e = expired_at[sr.user_id];
      e = std::max(e, sr.last_signal_at + cfg.offline_after_ms);
      if (w != nullptr)
        w->erase(kind::sessions, sr.session_id);
      return;
    }
    live[sr.user_id].push_back(std::move(sr));
  });

  // Rooms and their timelines (keys sort each room's samples by time).
  std::unordered_map<std::string, room_restore> rooms;
  scan.each(kind::rooms, [&](storage::record&& r) {
    auto rr = std::get<storage::room_record>(std::move(r));
    auto id = rr.room_id;
    rooms[id].rec = std::move(rr);
  });
  scan.each(kind::timeline, [&](storage::record&& r) {
    auto t = std::get<storage::timeline_record>(std::move(r));
    auto& room = rooms[t.room_id];
    if (room.rec.room_id.empty())
      room.rec.room_id = t.room_id;
    room.timeline.push_back(std::move(t));
  });
  auto max_samples = static_cast<size_t>(n.rooms().timeline_max_samples);
  for (auto& [id, room] : rooms) {
    auto& tl = room.timeline;
    if (tl.size() > max_samples) {
      auto surplus = tl.size() - max_samples;
      for (size_t i = 0; i < surplus; ++i)
        if (w != nullptr)
          w->erase(kind::timeline, storage::timeline_key(id, tl[i].t));
      tl.erase(tl.begin(), tl.begin() + static_cast<std::ptrdiff_t>(surplus));
      report.timeline_dropped += surplus;
    }
    report.timeline_samples += tl.size();
  }
  // Each room learns how many restored members will come back to it.
  for (auto& [user_id, sessions] : live) {
    std::set<std::string> joined;
    for (auto& sr : sessions)
      for (auto& [room_id, visible] : sr.rooms)
        joined.insert(room_id);
    for (auto& room_id : joined) {
      auto& room = rooms[room_id];
      if (room.rec.room_id.empty())
        room.rec.room_id = room_id;
      room.members += 1;
    }
  }

  std::vector<storage::intent_record> intents;
  scan.each(kind::intents, [&](storage::record&& r) {
    auto ir = std::get<storage::intent_record>(std::move(r));
    if (ir.retain_until != 0 && ir.retain_until <= now) {
      ++report.intents_dropped;
      if (w != nullptr)
        w->erase(kind::intents, ir.intent_id);
      return;
    }
    intents.push_back(std::move(ir));
  });

  report.read_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                     std::chrono::steady_clock::now() - started)
                     .count();
  if (!report.failed.empty()) {
    // A kind could not be read: restoring the rest would rewrite users with
    // seq 0 and forget rooms. Nothing is spawned or written.
    report.elapsed_ms = report.read_ms;
    return report;
  }
  // Spawn in dependency order: rooms, users (who tell their rooms), sessions
  // (who find their users), intents (who find both).
  auto& sys = n.system();
  auto& r = n.router();
  size_t live_sessions = 0;
  for (auto& [user_id, sessions] : live)
    live_sessions += sessions.size();
  r.reserve(rooms.size() + live.size() + live_sessions + intents.size());
  for (auto& [id, room] : rooms) {
    // A key the cluster handed this node before recovery reached it (the
    // node joins while it reads) keeps that copy: nothing is started for it.
    r.adopt("room:" + id, [&] { return sys.spawn(room_actor_restored, &n, std::move(room)); });
    ++report.rooms;
  }
  for (auto& [id, u] : users) {
    if (after_crash)
      u.seq = next_seq_generation(u.seq);
    auto i = live.find(id);
    if (i == live.end()) {
      if (u.published != static_cast<uint8_t>(state::offline)) {
        // Its sessions expired while the node was down: offline since then.
        u.published = static_cast<uint8_t>(state::offline);
        u.seq += 1;
        auto e = expired_at.find(id);
        u.since = std::max(u.since, e != expired_at.end() ? e->second : now);
      }
      auto rec = u;
      if (r.keep_dormant(std::move(rec)) && w != nullptr)
        w->put(std::move(u));
      ++report.users_dormant;
      continue;
    }
    r.adopt("user:" + id, [&] {
      return sys.spawn(user_actor_restored, &n, user_restore{std::move(u), i->second, hold});
    });
    ++report.users;
  }
  auto& by_state = n.metrics().sessions_by_state;
  for (auto& [user_id, sessions] : live) {
    for (auto& sr : sessions) {
      session_init init;
      init.session_id = std::move(sr.session_id);
      init.user_id = std::move(sr.user_id);
      init.device = std::move(sr.device);
      std::memcpy(init.resume_hash.data(), sr.resume_hash.data(), init.resume_hash.size());
      init.clk = clock_of(sr);
      init.initial = derive_state(init.clk, now, cfg);
      init.heartbeat_ms = sr.heartbeat_ms;
      init.rooms = std::move(sr.rooms);
      init.restored = true;
      init.held = hold;
      auto key = "session:" + init.session_id;
      r.adopt(key, [&] {
        by_state[static_cast<size_t>(init.initial)].fetch_add(1, std::memory_order_relaxed);
        return sys.spawn(session_actor, &n, std::move(init));
      });
      if (++report.sessions % progress_every == 0 && log)
        log("recovery: " + std::to_string(report.sessions) + " sessions restored");
    }
  }
  for (auto& ir : intents) {
    auto v = to_view(ir);
    auto key = "intent:" + v.intent_id;
    r.adopt(key, [&] {
      return sys.spawn(intent_actor_restored, &n, std::move(v), ir.retain_until);
    });
    ++report.intents;
  }
  report.elapsed_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                        std::chrono::steady_clock::now() - started)
                        .count();
  auto& m = n.metrics();
  m.records_recovered.store(report.sessions + report.users + report.users_dormant
                              + report.rooms + report.intents,
                            std::memory_order_relaxed);
  m.recovery_ms.store(report.elapsed_ms, std::memory_order_relaxed);
  return report;
}

} // namespace presence::actors
