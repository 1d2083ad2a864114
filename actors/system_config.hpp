// The CAF settings every presenced process uses (tests that need deterministic
// time override the scheduler policy afterwards).
#pragma once

#include "config/settings.hpp"

#include <caf/actor_system_config.hpp>

namespace presence::actors {

/// Scheduler: `node.worker_threads` threads (2 on a 2-core machine; CAF's default
/// of 4 was slower there) and the `sharing` policy: with work stealing, one actor
/// waking 100k others (a timer tick, a fan-out) made idle workers' steals walk
/// the victim's whole queue (0.2M vs 1.1M msgs/s measured). Registers the
/// project's message types and its error category.
void configure(caf::actor_system_config& cfg, const config::settings& s);

} // namespace presence::actors
