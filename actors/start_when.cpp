#include "actors/start_when.hpp"

namespace presence::actors::start_when {

std::optional<std::string> check(const rule& r) {
  if (!(r.readiness_at_least >= 0 && r.readiness_at_least <= 1))
    return "readiness_at_least must be in (0, 1]";
  if (r.active_at_least < 0 || r.active_at_least > max_members)
    return "active_visible_members_at_least must be in 1.." + std::to_string(max_members);
  if (r.for_ms < 0 || r.for_ms > max_for_ms)
    return "for_ms must be in 0.." + std::to_string(max_for_ms);
  if (!r.set())
    return "start_when needs readiness_at_least or active_visible_members_at_least";
  return std::nullopt;
}

bool met(const rule& r, double readiness, int64_t active_visible) {
  if (!r.set())
    return false;
  if (r.readiness_at_least > 0 && readiness + readiness_tolerance < r.readiness_at_least)
    return false;
  if (r.active_at_least > 0 && active_visible < r.active_at_least)
    return false;
  return true;
}

step_result step(storage::start_when_state& s, bool met_now, int64_t now) {
  step_result out;
  if (!met_now || !s.rule.set()) {
    s.met_since = 0;
    if (s.holding) {
      s.holding = false;
      out.changed = true;
      out.at = now;
    }
    return out;
  }
  if (s.met_since == 0 || s.met_since > now)
    s.met_since = now;
  if (s.holding)
    return out;
  auto due = s.met_since + s.rule.for_ms;
  if (now >= due) {
    s.holding = true;
    out.changed = true;
    out.at = due;
  } else {
    out.wake_at = due;
  }
  return out;
}

} // namespace presence::actors::start_when
