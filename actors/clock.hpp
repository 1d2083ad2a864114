// The node's clock in milliseconds since the Unix epoch, read from CAF's actor
// clock so that tests driving CAF's deterministic test coordinator control it:
// now = wall time at start + (actor clock now - actor clock at start).
// Thread-safe in production (steady clock); tests use it from one thread.
#pragma once

#include <caf/actor_clock.hpp>

#include <cstdint>

namespace presence::actors {

class clock {
public:
  /// `wall_start_ms` is the epoch time that `source.now()` at construction maps to.
  clock(const caf::actor_clock& source, int64_t wall_start_ms);

  /// Milliseconds since the Unix epoch, server time.
  int64_t now_ms() const;

  /// The current wall-clock time of this machine in epoch milliseconds.
  static int64_t system_now_ms();

private:
  const caf::actor_clock* source_;
  caf::actor_clock::time_point start_;
  int64_t wall_start_ms_;
};

} // namespace presence::actors
