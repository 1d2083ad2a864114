// Counters the actors update on their paths and the gateway exports. Lock-free
// (relaxed atomics): any thread may update or read them at any time.
#pragma once

#include "actors/rules.hpp"

#include <array>
#include <atomic>
#include <cstdint>

namespace presence::actors {

/// A histogram of timer lateness in 1 ms buckets up to 1 s, then one overflow.
class lateness_histogram {
public:
  static constexpr size_t buckets = 1001;

  /// Records one firing `late_ms` after its due time.
  void record(int64_t late_ms);

  /// The smallest lateness below which a fraction `q` of firings landed (the
  /// overflow bucket reports 1000).
  int64_t quantile(double q) const;

  uint64_t count() const;
  void reset();

private:
  std::array<std::atomic<uint64_t>, buckets> counts_{};
};

struct runtime_metrics {
  std::array<std::atomic<int64_t>, state_count> sessions_by_state{};
  std::array<std::atomic<int64_t>, state_count> users_by_state{};
  std::atomic<int64_t> rooms{0};
  std::atomic<uint64_t> passivated{0}; ///< idle users and rooms stopped
  std::atomic<int64_t> intents{0};
  std::atomic<uint64_t> signals{0};
  std::atomic<uint64_t> sessions_opened{0};  ///< new sessions (HTTP or hello)
  std::atomic<uint64_t> sessions_resumed{0}; ///< resumes with the right token
  std::atomic<uint64_t> session_transitions{0};
  std::atomic<uint64_t> user_transitions{0};
  std::atomic<uint64_t> events_sent{0};
  std::atomic<int64_t> replication_pending{0}; ///< changes not yet sent to replicas
  std::atomic<uint64_t> replicated{0};         ///< changes sent to replica nodes
  std::atomic<int64_t> replicas_held{0};       ///< replicas this node holds for others
  std::atomic<int64_t> handoffs_pending{0};    ///< entities waiting for their state
  std::atomic<uint64_t> timer_fires{0};
  lateness_histogram timer_lateness;
  std::atomic<uint64_t> records_skipped{0};   ///< unreadable records at recovery
  std::atomic<uint64_t> records_recovered{0}; ///< entities restored at start
  std::atomic<int64_t> recovery_ms{0};        ///< duration of the last recovery

  /// Moves one session (or user) from one state gauge to another.
  static void move(std::array<std::atomic<int64_t>, state_count>& gauge,
                   state from, state to) {
    gauge[static_cast<size_t>(from)].fetch_sub(1, std::memory_order_relaxed);
    gauge[static_cast<size_t>(to)].fetch_add(1, std::memory_order_relaxed);
  }
};

} // namespace presence::actors
