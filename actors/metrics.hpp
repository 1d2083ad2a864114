// Counters the actors update on their paths and the gateway exports. Lock-free
// (relaxed atomics): any thread may update or read them at any time. Every
// labelled metric is an array indexed by a fixed table (states, phases, intent
// statuses, member statuses), so nothing a client sends can add a series.
#pragma once

#include "actors/rules.hpp"

#include <array>
#include <atomic>
#include <cstdint>
#include <initializer_list>
#include <string_view>

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

/// A histogram of durations with fixed upper bounds in milliseconds (a sample
/// lands in the first bucket whose bound is >= it, as Prometheus' `le`), plus
/// an overflow bucket; exported in seconds.
class duration_histogram {
public:
  static constexpr size_t max_bounds = 16;

  /// `bounds_ms`: increasing, at most `max_bounds` of them.
  duration_histogram(std::initializer_list<int64_t> bounds_ms);

  /// Records one sample (a negative one counts as 0).
  void record(int64_t ms);

  size_t bounds() const { return n_; }
  int64_t bound_ms(size_t i) const { return bounds_ms_[i]; }
  /// Samples in bucket `i` alone (not cumulative); `i == bounds()` is the overflow.
  uint64_t bucket(size_t i) const { return counts_[i].load(std::memory_order_relaxed); }
  uint64_t count() const;
  int64_t sum_ms() const { return sum_ms_.load(std::memory_order_relaxed); }

private:
  std::array<int64_t, max_bounds> bounds_ms_{};
  size_t n_ = 0;
  std::array<std::atomic<uint64_t>, max_bounds + 1> counts_{};
  std::atomic<int64_t> sum_ms_{0};
};

/// A member's status in the current view as this node sees it (the values of
/// GET /v1/cluster's `status`).
enum class member_status : uint8_t { up = 0, draining, unreachable };
inline constexpr size_t member_status_count = 3;
std::string_view to_string(member_status x);

/// Intent statuses (messages.hpp's `intent_status`, pending .. cancelled).
inline constexpr size_t intent_status_count = 6;
/// The first final status (accepted); final statuses follow it.
inline constexpr size_t first_final_intent_status = 2;
inline constexpr size_t final_intent_status_count = 4;

inline constexpr size_t room_phase_count = 4;

struct runtime_metrics {
  std::array<std::atomic<int64_t>, state_count> sessions_by_state{};
  std::array<std::atomic<int64_t>, state_count> users_by_state{};
  std::atomic<int64_t> rooms{0};
  std::atomic<uint64_t> passivated{0}; ///< idle users and rooms stopped
  std::atomic<int64_t> intents{0};
  std::atomic<uint64_t> signals{0};
  std::atomic<uint64_t> sessions_opened{0};  ///< new sessions (HTTP or hello)
  std::atomic<uint64_t> sessions_resumed{0}; ///< resumes with the right token
  std::atomic<uint64_t> sessions_taken_over{0}; ///< sockets superseded by a newer one
  std::atomic<uint64_t> session_transitions{0};
  std::atomic<uint64_t> user_transitions{0};
  std::atomic<uint64_t> events_sent{0};
  std::atomic<int64_t> replication_pending{0}; ///< changes replicas have not confirmed
  std::atomic<uint64_t> replicated{0};         ///< changes sent to replica nodes
  std::atomic<int64_t> replicas_held{0};       ///< replicas this node holds for others
  std::atomic<int64_t> handoffs_pending{0};    ///< entities waiting for their state
  std::atomic<uint64_t> timer_fires{0};
  lateness_histogram timer_lateness;
  std::atomic<uint64_t> records_skipped{0};   ///< unreadable records at recovery
  std::atomic<uint64_t> records_recovered{0}; ///< entities restored at start
  std::atomic<int64_t> recovery_ms{0};        ///< duration of the last recovery
  std::atomic<uint64_t> storage_read_errors{0}; ///< scans that failed at recovery

  /// Room actors by phase (sums to `rooms`).
  std::array<std::atomic<int64_t>, room_phase_count> rooms_by_phase{};
  /// Intent actors by status (sums to `intents`; finished ones are kept for
  /// their retention).
  std::array<std::atomic<int64_t>, intent_status_count> intents_by_status{};
  /// Intents finished here, by final status and whether they had been
  /// delivered: index `(status - first_final_intent_status) * 2 + delivered`.
  std::array<std::atomic<uint64_t>, final_intent_status_count * 2> intents_finished{};
  /// Created to delivered.
  duration_histogram intent_delivery{100,   500,    1000,   5000,    15000,   30000,
                                     60000, 300000, 900000, 3600000, 86400000};
  /// Delivered to accepted, and delivered to declined (intents answered here).
  duration_histogram intent_answer_accepted{100,   500,    1000,   5000,    15000,   30000,
                                            60000, 300000, 900000, 3600000, 86400000};
  duration_histogram intent_answer_declined{100,   500,    1000,   5000,    15000,   30000,
                                            60000, 300000, 900000, 3600000, 86400000};
  /// How much later than its issued `heartbeat_ms` a session's signal came
  /// (0: on time).
  duration_histogram heartbeat_lateness{0,     100,   500,   1000,   2500,  5000,
                                        10000, 30000, 60000, 120000, 300000};

  /// The current view's epoch (0 before this node is in one).
  std::atomic<int64_t> cluster_epoch{0};
  /// The fraction of keys the ring gives this node, in millionths.
  std::atomic<int64_t> cluster_share_ppm{0};
  /// Members of the current view by status.
  std::array<std::atomic<int64_t>, member_status_count> cluster_members{};
  /// When (node clock, ms) the oldest change its replica nodes have not
  /// confirmed yet was handed to the replicator; 0 when none waits.
  std::atomic<int64_t> replication_oldest_pending_at{0};

  /// Counts one finished intent.
  void intent_finished(size_t final_status, bool delivered) {
    intents_finished[(final_status - first_final_intent_status) * 2 + (delivered ? 1 : 0)]
      .fetch_add(1, std::memory_order_relaxed);
  }

  /// Moves one session (or user) from one state gauge to another.
  static void move(std::array<std::atomic<int64_t>, state_count>& gauge,
                   state from, state to) {
    gauge[static_cast<size_t>(from)].fetch_sub(1, std::memory_order_relaxed);
    gauge[static_cast<size_t>(to)].fetch_add(1, std::memory_order_relaxed);
  }

  /// Moves one entity from slot `from` of a gauge to slot `to`.
  template <size_t N>
  static void move(std::array<std::atomic<int64_t>, N>& gauge, size_t from, size_t to) {
    if (from == to)
      return;
    gauge[from].fetch_sub(1, std::memory_order_relaxed);
    gauge[to].fetch_add(1, std::memory_order_relaxed);
  }
};

} // namespace presence::actors
