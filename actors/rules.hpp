// The presence model's pure rules (PROTOCOL.md "Model"): functions of (signals,
// now, configuration) with no actor system and no clock of their own, so that every
// boundary of the state table can be tested by calling them. All times are
// milliseconds since the Unix epoch, server time. Thread-safe: no shared state.
#pragma once

#include "config/settings.hpp"

#include <array>
#include <cstdint>
#include <optional>
#include <string_view>

namespace presence::actors {

/// A session's or user's derived state. The numeric order is the precedence:
/// a greater value wins when a user's sessions are aggregated.
enum class state : uint8_t { offline = 0, stale = 1, away = 2, idle = 3, active = 4 };

/// Number of `state` values, for tables indexed by state.
inline constexpr size_t state_count = 5;

/// What a client declares in a signal (`leave` is a separate operation).
enum class signal_kind : uint8_t { active = 0, idle = 1, background = 2 };

/// A room's phase.
enum class room_phase : uint8_t { empty = 0, gathering = 1, ready = 2, cooling = 3 };

std::string_view to_string(state x);
std::string_view to_string(signal_kind x);
std::string_view to_string(room_phase x);
std::optional<state> parse_state(std::string_view x);
std::optional<signal_kind> parse_signal(std::string_view x);
std::optional<room_phase> parse_phase(std::string_view x);

/// The two clocks of a session and what it last declared.
struct session_clock {
  int64_t last_signal_at = 0;           ///< refreshed by every signal
  int64_t last_active_at = 0;           ///< refreshed by `active` only
  signal_kind declared = signal_kind::active; ///< the last declared signal
  bool left = false;                    ///< explicit leave
  bool ever_active = false;             ///< an `active` signal was received

  /// `last_active_at` as reported to clients: 0 when never active.
  int64_t reported_last_active_at() const {
    return ever_active ? last_active_at : 0;
  }
};

/// Records a signal received at `now`.
void apply_signal(session_clock& c, signal_kind s, int64_t now);

/// A fresh session whose first signal `s` arrives at `now`. A session that opens
/// with `idle` or `background` has never been active: its `last_active_at` is set
/// as if it had been active just before the active window, so it is not active.
session_clock open_session(signal_kind s, int64_t now,
                           const config::presence_section& cfg);

/// The state table, rules 1 to 5, at `now`.
state derive_state(const session_clock& c, int64_t now,
                   const config::presence_section& cfg);

/// The first time after `now` at which `derive_state` changes, or nothing once
/// the session is offline (it never changes again).
std::optional<int64_t> next_transition_at(const session_clock& c, int64_t now,
                                          const config::presence_section& cfg);

/// Precedence: the better of two states (active > idle > away > stale > offline).
constexpr state best_of(state a, state b) {
  return static_cast<uint8_t>(a) >= static_cast<uint8_t>(b) ? a : b;
}

/// The interval the server asks a client in `s` to signal within.
int64_t heartbeat_interval_ms(state s, const config::presence_section& cfg);

/// Confidence in [0, 1] for a session whose last signal was `since_signal_ms`
/// ago and that was last told to signal within `issued_interval_ms`: 1 until
/// interval + grace, then linear down to 0 at `offline_after_ms`.
double confidence(int64_t since_signal_ms, int64_t issued_interval_ms,
                  const config::presence_section& cfg);

/// Visible members per state, indexed by `state`.
using state_counts = std::array<int64_t, state_count>;

/// Members that are not offline.
int64_t present(const state_counts& c);

/// Room readiness in [0, 1] (docs/readiness in README):
///   density  = min(1, present / density_target)
///   engaged  = weight_active * active / present
///            + weight_recent * (active + idle) / present
///            + weight_intent * min(1, pending_intents / present)
///   readiness = density * engaged          (0 when nobody visible is present)
double readiness(const state_counts& visible, int64_t pending_intents,
                 const config::rooms_section& cfg);

/// The next phase from the previous one, with hysteresis: `ready` is entered at
/// `ready_threshold` and left (to `cooling`) only below threshold - hysteresis;
/// `cooling` returns to `ready` at the threshold; `empty` when nobody (visible or
/// not) is present; otherwise `gathering`.
room_phase next_phase(room_phase prev, bool anyone_present, double readiness,
                      const config::rooms_section& cfg);

/// Joins minus leaves per minute, exponentially smoothed with time constant
/// `window_ms`: a steady k joins per minute converges to k; it decays to 0 when
/// nothing happens.
struct momentum {
  double rate_per_min = 0; ///< value at `at`
  int64_t at = 0;

  /// Records `delta` (+1 join, -1 leave) at `now`.
  void add(int64_t now, int delta, int64_t window_ms);

  /// The value at `now` (decayed since the last change).
  double value(int64_t now, int64_t window_ms) const;
};

} // namespace presence::actors
