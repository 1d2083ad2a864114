// A room's `start_when` rule (issue 14, part 3) as pure rules: whether its
// conditions hold at a level of the room, and the debounce that turns that into
// the room event `threshold` (holding true once the conditions held for
// `for_ms`, false as soon as they stop). No clock of its own: the room actor
// calls `step` on every re-evaluation and when the debounce timer it arms at
// `wake_at` fires. Thread-safe: no shared state.
#pragma once

#include "storage/records.hpp"

#include <cstdint>
#include <optional>
#include <string>

namespace presence::actors::start_when {

using rule = storage::start_when_rule;

/// Longest debounce a rule may ask for (one hour).
inline constexpr int64_t max_for_ms = 3600000;

/// Most active visible members a rule may ask for.
inline constexpr int64_t max_members = 1000000;

/// The problem with a rule given by a client, or nothing. A rule needs at
/// least one condition: `readiness_at_least` in (0, 1] or
/// `active_at_least` in 1..max_members; `for_ms` in 0..max_for_ms.
std::optional<std::string> check(const rule& r);

/// Readiness is a sum of weighted shares: two active members compute to
/// 0.8999999999999999, not 0.9. A readiness this close below a rule's value meets it.
inline constexpr double readiness_tolerance = 1e-9;

/// Whether every condition the rule sets holds (false for a rule with none):
/// readiness >= readiness_at_least (within readiness_tolerance) and active
/// visible members >= active_at_least.
bool met(const rule& r, double readiness, int64_t active_visible);

/// What a step decided.
struct step_result {
  bool changed = false; ///< `holding` changed: subscribers are told
  int64_t at = 0;       ///< when it changed (crossing: met_since + for_ms)
  int64_t wake_at = 0;  ///< step again then (the debounce's end); 0: no need
};

/// Advances the debounce of `s` to `now`, where the conditions hold (`met_now`)
/// or not. Met since `met_since`: holding from met_since + for_ms on. Not met:
/// not holding at once. A rule with no condition never holds.
step_result step(storage::start_when_state& s, bool met_now, int64_t now);

} // namespace presence::actors::start_when
