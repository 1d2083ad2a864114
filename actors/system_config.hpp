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

/// The CAF worker threads to run: `node.worker_threads`, or when 0 the cores
/// left after the I/O threads (at least 1). On 2 cores that is 1: a second
/// worker mostly added futex wake-ups (in process 884k vs 659k signals/s;
/// through sockets 25.9 vs 34.7 us of CPU per signal).
size_t worker_threads(const config::settings& s);

} // namespace presence::actors
