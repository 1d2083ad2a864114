// The CAF settings every presenced process uses (tests that need deterministic
// time override the scheduler policy afterwards).
#pragma once

#include "config/settings.hpp"

#include <caf/actor_system_config.hpp>

namespace presence::actors {

/// Scheduler: `worker_threads(s)` threads and the `sharing` policy. With work
/// stealing, one actor waking 100k others (a timer tick, a fan-out) made idle
/// workers' steals walk the victim's whole queue (141k vs 659k signals/s
/// measured). Registers the project's message types and its error category.
void configure(caf::actor_system_config& cfg, const config::settings& s);

/// The CAF worker threads to run: `node.worker_threads`, or when 0 one per core.
/// Measured on 2 cores: two workers keep timers within the protocol's 100 ms at
/// 1M sessions under load (p99 85 ms, one worker 217 ms); one worker costs less
/// CPU per signal at moderate load (fewer futex wake-ups): see the README.
size_t worker_threads(const config::settings& s);

} // namespace presence::actors
