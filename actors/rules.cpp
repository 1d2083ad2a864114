#include "actors/rules.hpp"

#include <algorithm>
#include <cmath>

namespace presence::actors {

namespace {

constexpr std::string_view state_names[] = {"offline", "stale", "away", "idle",
                                            "active"};
constexpr std::string_view signal_names[] = {"active", "idle", "background"};
constexpr std::string_view phase_names[] = {"empty", "gathering", "ready",
                                            "cooling"};

template <class Enum, size_t N>
std::optional<Enum> parse_enum(const std::string_view (&names)[N],
                               std::string_view x) {
  for (size_t i = 0; i < N; ++i)
    if (names[i] == x)
      return static_cast<Enum>(i);
  return std::nullopt;
}

} // namespace

std::string_view to_string(state x) {
  return state_names[static_cast<size_t>(x)];
}

std::string_view to_string(signal_kind x) {
  return signal_names[static_cast<size_t>(x)];
}

std::string_view to_string(room_phase x) {
  return phase_names[static_cast<size_t>(x)];
}

std::optional<state> parse_state(std::string_view x) {
  return parse_enum<state>(state_names, x);
}

std::optional<signal_kind> parse_signal(std::string_view x) {
  return parse_enum<signal_kind>(signal_names, x);
}

std::optional<room_phase> parse_phase(std::string_view x) {
  return parse_enum<room_phase>(phase_names, x);
}

void apply_signal(session_clock& c, signal_kind s, int64_t now) {
  c.last_signal_at = std::max(c.last_signal_at, now);
  if (s == signal_kind::active) {
    c.last_active_at = std::max(c.last_active_at, now);
    c.ever_active = true;
  }
  c.declared = s;
}

session_clock open_session(signal_kind s, int64_t now,
                           const config::presence_section& cfg) {
  session_clock c;
  c.last_signal_at = now;
  c.declared = s;
  c.ever_active = s == signal_kind::active;
  c.last_active_at = c.ever_active ? now : now - cfg.active_window_ms;
  return c;
}

state derive_state(const session_clock& c, int64_t now,
                   const config::presence_section& cfg) {
  auto a = now - c.last_active_at;
  auto s = now - c.last_signal_at;
  if (c.left || s >= cfg.offline_after_ms)
    return state::offline;
  if (s >= cfg.stale_after_ms)
    return state::stale;
  if (c.declared == signal_kind::background || a >= cfg.idle_after_ms)
    return state::away;
  if (a >= cfg.active_window_ms)
    return state::idle;
  return state::active;
}

std::optional<int64_t> next_transition_at(const session_clock& c, int64_t now,
                                          const config::presence_section& cfg) {
  auto current = derive_state(c, now, cfg);
  if (current == state::offline)
    return std::nullopt;
  // The state is constant between these boundaries, so the first one after `now`
  // whose state differs is exact.
  std::array<int64_t, 4> boundaries = {
    c.last_active_at + cfg.active_window_ms,
    c.last_active_at + cfg.idle_after_ms,
    c.last_signal_at + cfg.stale_after_ms,
    c.last_signal_at + cfg.offline_after_ms,
  };
  std::sort(boundaries.begin(), boundaries.end());
  for (auto t : boundaries)
    if (t > now && derive_state(c, t, cfg) != current)
      return t;
  // Unreachable: the offline boundary is always after `now` while not offline.
  return c.last_signal_at + cfg.offline_after_ms;
}

int64_t heartbeat_interval_ms(state s, const config::presence_section& cfg) {
  switch (s) {
    case state::idle:
      return cfg.heartbeat_idle_ms;
    case state::away:
      return cfg.heartbeat_background_ms;
    default: // active, and stale or offline sessions should come back quickly
      return cfg.heartbeat_active_ms;
  }
}

double confidence(int64_t since_signal_ms, int64_t issued_interval_ms,
                  const config::presence_section& cfg) {
  auto full_until = issued_interval_ms + cfg.grace_ms;
  if (since_signal_ms <= full_until)
    return 1.0;
  if (since_signal_ms >= cfg.offline_after_ms || full_until >= cfg.offline_after_ms)
    return 0.0;
  return static_cast<double>(cfg.offline_after_ms - since_signal_ms)
         / static_cast<double>(cfg.offline_after_ms - full_until);
}

int64_t present(const state_counts& c) {
  int64_t n = 0;
  for (size_t i = 1; i < state_count; ++i)
    n += c[i];
  return n;
}

double readiness(const state_counts& visible, int64_t pending_intents,
                 const config::rooms_section& cfg) {
  auto n = present(visible);
  if (n == 0)
    return 0.0;
  auto np = static_cast<double>(n);
  auto active = static_cast<double>(visible[static_cast<size_t>(state::active)]);
  auto idle = static_cast<double>(visible[static_cast<size_t>(state::idle)]);
  auto density = std::min(1.0, np / cfg.density_target);
  auto intents = std::min(1.0, static_cast<double>(pending_intents) / np);
  auto engaged = cfg.weight_active * active / np
                 + cfg.weight_recent * (active + idle) / np
                 + cfg.weight_intent * intents;
  return std::clamp(density * engaged, 0.0, 1.0);
}

room_phase next_phase(room_phase prev, bool anyone_present, double r,
                      const config::rooms_section& cfg) {
  if (!anyone_present)
    return room_phase::empty;
  if (r >= cfg.ready_threshold)
    return room_phase::ready;
  switch (prev) {
    case room_phase::ready:
      return r < cfg.ready_threshold - cfg.ready_hysteresis ? room_phase::cooling
                                                            : room_phase::ready;
    case room_phase::cooling:
      return room_phase::cooling;
    default:
      return room_phase::gathering;
  }
}

void momentum::add(int64_t now, int delta, int64_t window_ms) {
  rate_per_min = value(now, window_ms)
                 + static_cast<double>(delta) * 60000.0
                     / static_cast<double>(window_ms);
  at = std::max(at, now);
}

double momentum::value(int64_t now, int64_t window_ms) const {
  auto dt = static_cast<double>(std::max<int64_t>(0, now - at));
  return rate_per_min * std::exp(-dt / static_cast<double>(window_ms));
}

} // namespace presence::actors
